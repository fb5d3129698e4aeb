/**
 * Throttle awareness: once Kafka REST answers "too many requests", this isolate stops calling it
 * for the pause it asked for, sends jobs to the queue instead, then lets one call probe.
 */
import { isThrottled, type ProduceResult } from '../kafka/producer.ts'

/** What a caller may do now: call Kafka, call it as the one probe, or skip it. */
export type Admission = 'call' | 'probe' | 'skip'

/** How long to pause after a throttle answer. */
export type PauseSettings = {
  /** When the answer carries no usable `Retry-After`. */
  defaultSeconds: number
  /** Upper bound of any pause, whatever `Retry-After` says. */
  maxSeconds: number
}

type Log = (line: Record<string, unknown>) => void

const defaultLog: Log = (line) => {
  const text = JSON.stringify(line)
  if (line.level === 'info') console.log(text)
  else console.error(text)
}

/**
 * The breaker's state machine, with an injected clock. Closed: every call goes through. A
 * throttle answer opens it for the pause (`Retry-After`, else the default, at most the maximum);
 * while open every caller is told to skip. Once the pause is over, one caller is admitted as the
 * probe (a lease, in case its answer never comes); a throttle answer to it reopens the breaker,
 * any other answer closes it, since the endpoint no longer throttles and the ordinary policy
 * applies again. Answers to calls admitted before it opened only extend an open pause: only the
 * probe closes it, so a call that was already in flight cannot end the pause early.
 */
export class ThrottleBreaker {
  readonly #now: () => number
  readonly #log: Log
  readonly #name: string
  /** Closed when undefined; else when the pause ends (ms). */
  #openUntil: number | undefined
  #openedAt = 0
  /** While a probe is out: when its lease ends (ms). */
  #probeUntil = 0
  #skipped = 0

  constructor(name: string, now: () => number = Date.now, log: Log = defaultLog) {
    this.#name = name
    this.#now = now
    this.#log = log
  }

  /** Whether the breaker is open (Kafka is being skipped or probed). */
  get open(): boolean {
    return this.#openUntil !== undefined
  }

  /** Seconds until a probe may be sent, rounded up (0 when closed or due). */
  remainingSeconds(): number {
    if (this.#openUntil === undefined) return 0
    const until = Math.max(this.#openUntil, this.#probeUntil)
    return Math.max(0, Math.ceil((until - this.#now()) / 1000))
  }

  /**
   * Admits a call. `leaseMs` is how long the call may take at most: if it is the probe and no
   * answer has been recorded by then, another caller becomes the probe.
   */
  admit(leaseMs: number): Admission {
    if (this.#openUntil === undefined) return 'call'
    const now = this.#now()
    if (now < this.#openUntil || now < this.#probeUntil) {
      this.#skipped++
      return 'skip'
    }
    this.#probeUntil = now + leaseMs
    return 'probe'
  }

  /** Records the answer to an admitted call. */
  record(result: ProduceResult, admission: Exclude<Admission, 'skip'>, pause: PauseSettings): void {
    const probe = admission === 'probe'
    if (isThrottled(result)) {
      const failure = result as Extract<ProduceResult, { ok: false }>
      const seconds = Math.min(pause.maxSeconds, failure.retryAfterSeconds ?? pause.defaultSeconds)
      const now = this.#now()
      const until = now + seconds * 1000
      if (probe) this.#probeUntil = 0
      if (this.#openUntil === undefined || probe) {
        if (this.#openUntil === undefined) {
          this.#openedAt = now
          this.#skipped = 0
        }
        this.#openUntil = until
        this.#log({
          level: 'warn',
          msg: 'kafka_throttle_open',
          breaker: this.#name,
          reopened: probe,
          pause_seconds: seconds,
          kafka_status: failure.status,
          retry_after: failure.retryAfterSeconds ?? null,
        })
      } else {
        this.#openUntil = Math.max(this.#openUntil, until)
      }
      return
    }
    if (!probe || this.#openUntil === undefined) return
    const now = this.#now()
    this.#log({
      level: 'info',
      msg: 'kafka_throttle_closed',
      breaker: this.#name,
      open_ms: now - this.#openedAt,
      skipped: this.#skipped,
      probe_outcome: result.ok ? 'acknowledged' : result.reason,
    })
    this.#openUntil = undefined
    this.#probeUntil = 0
    this.#skipped = 0
  }
}

const breakers = new Map<string, ThrottleBreaker>()

/**
 * The isolate's breaker for one Kafka REST endpoint and topic (a deployment produces to one
 * topic, so in practice one per endpoint, which is what providers throttle). Module state: it
 * lives as long as the isolate and is shared by its requests and its queue consumer.
 */
export function breakerFor(key: string): ThrottleBreaker {
  let breaker = breakers.get(key)
  if (!breaker) {
    breaker = new ThrottleBreaker(key)
    breakers.set(key, breaker)
  }
  return breaker
}
