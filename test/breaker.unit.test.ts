import { describe, expect, it } from 'vitest'
import type { Config } from '../src/config.ts'
import { ThrottleBreaker } from '../src/delivery/breaker.ts'
import { breakerKey } from '../src/delivery/deliver.ts'
import type { ProduceResult } from '../src/kafka/producer.ts'

const pause = { defaultSeconds: 1, maxSeconds: 30 }
const LEASE = 2000

const ok: ProduceResult = { ok: true }
const failure = (status: number, retryAfterSeconds?: number): ProduceResult => ({
  ok: false,
  reason: status === 401 ? 'unauthorized' : 'unavailable',
  status,
  detail: `HTTP ${status}`,
  acknowledged: [false],
  ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
})

/** A breaker on a clock the test moves, with its log lines. */
function breaker() {
  const clock = { now: 1_000_000 }
  const lines: Record<string, unknown>[] = []
  const b = new ThrottleBreaker(
    'test',
    () => clock.now,
    (l) => lines.push(l),
  )
  const advance = (ms: number) => {
    clock.now += ms
  }
  return { b, lines, advance }
}

describe('ThrottleBreaker', () => {
  it('stays closed through successes and non-throttle failures', () => {
    const { b, lines } = breaker()
    for (const result of [ok, failure(500), failure(401), failure(503)]) {
      expect(b.admit(LEASE)).toBe('call')
      b.record(result, 'call', pause)
    }
    expect(b.open).toBe(false)
    expect(lines).toEqual([])
  })

  it('opens on a 429 for its Retry-After, skipping every caller meanwhile, and logs it once', () => {
    const { b, lines, advance } = breaker()
    b.record(failure(429, 3), b.admit(LEASE) as 'call', pause)
    expect(b.open).toBe(true)
    expect(b.remainingSeconds()).toBe(3)
    advance(2999)
    expect([b.admit(LEASE), b.admit(LEASE)]).toEqual(['skip', 'skip'])
    expect(lines).toEqual([
      {
        level: 'warn',
        msg: 'kafka_throttle_open',
        breaker: 'test',
        reopened: false,
        pause_seconds: 3,
        kafka_status: 429,
        retry_after: 3,
      },
    ])
  })

  it('opens on a 503 carrying Retry-After, not on a bare 503', () => {
    const { b } = breaker()
    b.record(failure(503), 'call', pause)
    expect(b.open).toBe(false)
    b.record(failure(503, 2), 'call', pause)
    expect(b.open).toBe(true)
  })

  it('uses the default pause without Retry-After, and caps a long one', () => {
    const { b, advance } = breaker()
    b.record(failure(429), 'call', pause)
    expect(b.remainingSeconds()).toBe(1)
    advance(1000)
    expect(b.admit(LEASE)).toBe('probe')
    b.record(failure(429, 3600), 'probe', pause)
    expect(b.remainingSeconds()).toBe(30)
  })

  it('after the pause lets exactly one probe through; its success closes the breaker', () => {
    const { b, lines, advance } = breaker()
    b.record(failure(429, 1), 'call', pause)
    advance(500)
    b.admit(LEASE)
    advance(500)
    expect(b.admit(LEASE)).toBe('probe')
    expect(b.admit(LEASE)).toBe('skip')
    advance(100)
    b.record(ok, 'probe', pause)
    expect(b.open).toBe(false)
    expect(b.admit(LEASE)).toBe('call')
    expect(lines.at(-1)).toEqual({
      level: 'info',
      msg: 'kafka_throttle_closed',
      breaker: 'test',
      open_ms: 1100,
      skipped: 2,
      probe_outcome: 'acknowledged',
    })
  })

  it('a throttled probe reopens it for the new pause', () => {
    const { b, lines, advance } = breaker()
    b.record(failure(429, 1), 'call', pause)
    advance(1000)
    expect(b.admit(LEASE)).toBe('probe')
    b.record(failure(429, 2), 'probe', pause)
    expect(b.admit(LEASE)).toBe('skip')
    advance(2000)
    expect(b.admit(LEASE)).toBe('probe')
    expect(lines.map((l) => [l.msg, l.reopened])).toEqual([
      ['kafka_throttle_open', false],
      ['kafka_throttle_open', true],
    ])
  })

  it('a probe answered with another failure closes it: the ordinary policy takes over', () => {
    const { b, lines, advance } = breaker()
    b.record(failure(429, 1), 'call', pause)
    advance(1000)
    b.record(failure(500), b.admit(LEASE) as 'probe', pause)
    expect(b.open).toBe(false)
    expect(lines.at(-1)).toMatchObject({
      msg: 'kafka_throttle_closed',
      probe_outcome: 'unavailable',
    })
  })

  it('calls admitted before it opened neither close it nor log again', () => {
    const { b, lines } = breaker()
    const early = [b.admit(LEASE), b.admit(LEASE), b.admit(LEASE)]
    expect(early).toEqual(['call', 'call', 'call'])
    b.record(failure(429, 1), 'call', pause)
    b.record(failure(429, 5), 'call', pause)
    b.record(ok, 'call', pause)
    expect(b.open).toBe(true)
    // The longer pause of a later answer wins; only the first opened it.
    expect(b.remainingSeconds()).toBe(5)
    expect(lines).toHaveLength(1)
  })

  it('a probe whose answer never comes is replaced once its lease ends', () => {
    const { b, advance } = breaker()
    b.record(failure(429, 1), 'call', pause)
    advance(1000)
    expect(b.admit(LEASE)).toBe('probe')
    advance(LEASE - 1)
    expect(b.admit(LEASE)).toBe('skip')
    advance(1)
    expect(b.admit(LEASE)).toBe('probe')
  })
})

describe('breakerKey', () => {
  it('names the endpoint, cluster and topic, never credentials or query', () => {
    const config = {
      topic: 'weave.score_calls',
      kafka: {
        dialect: 'confluent-v3',
        url: 'https://user:secret@pkc-1.example.test:8443/kafka?token=abc',
        clusterId: 'lkc-1',
        username: 'key',
        password: 'password',
      },
    } as Config
    expect(breakerKey(config)).toBe(
      'confluent-v3 https://pkc-1.example.test:8443/kafka lkc-1 weave.score_calls',
    )
  })
})
