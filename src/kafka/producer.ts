/** One Kafka record as the scoring pipeline expects it; `value` is the exact JSON text. */
export type KafkaMessage = {
  topic: string
  key: string
  value: string
  headers?: readonly { key: string; value: string }[]
}

/**
 * Why a produce attempt did not get every message acknowledged:
 * - `unreachable`: no HTTP answer (connection refused, reset, DNS);
 * - `timeout`: no answer within the attempt's deadline (the messages may still land);
 * - `unavailable`: 5xx or 429, worth retrying;
 * - `unauthorized`: Kafka REST rejected our credentials (401/403): an operator alarm, never retried;
 * - `rejected`: another 4xx, the request itself is refused: retrying cannot help;
 * - `invalid_response`: an answer we cannot read as an acknowledgement (an HTML error page...).
 */
export type ProduceFailureReason =
  | 'unreachable'
  | 'timeout'
  | 'unavailable'
  | 'unauthorized'
  | 'rejected'
  | 'invalid_response'

/** Result of one produce call: which messages Kafka acknowledged, and why not the others. */
export type ProduceResult =
  | { ok: true }
  | {
      ok: false
      reason: ProduceFailureReason
      /** Upstream status, for the log. */
      status?: number
      /** Short description for operators; never shown to clients. */
      detail: string
      /** Per message, in request order: acknowledged by Kafka (partial success). */
      acknowledged: readonly boolean[]
      /** Seconds the upstream asked us to wait (its Retry-After), if any. */
      retryAfterSeconds?: number
      /**
       * A `timeout` whose write still runs where it was sent (a producer shard's name): the
       * records may land after the answer, and that shard can tell whether they did.
       */
      heldBy?: string
    }

/**
 * What became of a record whose write timed out for its caller: `landed` (acknowledged by
 * Kafka), `failed` (refused or never sent), `pending` (still in flight), `unknown` (no trace of
 * it: the holder restarted, or forgot it after its retention).
 */
export type WriteOutcome = 'landed' | 'failed' | 'pending' | 'unknown'

/**
 * The port every Kafka REST dialect implements. One call sends all messages in one HTTP request
 * and reports, per message, whether Kafka acknowledged it. Implementations never retry and never
 * throw: the policy (deadline, retries) is `produceWithPolicy`'s.
 */
export interface JobProducer {
  produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult>
  /**
   * For a failure with `heldBy`: the outcome of each of its records, waiting up to `waitMs` for
   * the ones still in flight. Only producers whose writes outlive their caller have it.
   */
  outcomeOf?(
    heldBy: string,
    messages: readonly KafkaMessage[],
    waitMs: number,
  ): Promise<readonly WriteOutcome[]>
}

/** A point in time (ms since epoch) by which an attempt must have an answer. */
export type Deadline = { at: number }

/** Retry and deadline policy for a request's messages. */
export type ProducePolicy = {
  /** Budget for the whole produce, retries included. */
  timeoutMs: number
  /** Extra attempts after a retriable failure. */
  retries: number
  /** First pause between attempts; doubles each time, capped by the remaining budget. */
  backoffMs: number
}

/** Outcome of a produce under policy, with what the request log needs. */
export type PolicyResult = { result: ProduceResult; attempts: number }

const RETRIABLE: ReadonlySet<ProduceFailureReason> = new Set([
  'unreachable',
  'timeout',
  'unavailable',
  'invalid_response',
])

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A throttle answer: a 429, or a 503 carrying `Retry-After` (how REST proxies and gateways say
 * "come back later"). Retrying it inside the request only spends the endpoint's request budget
 * on an attempt bound to be throttled again; other failures keep the ordinary retry policy.
 */
export const isThrottled = (result: ProduceResult): boolean =>
  !result.ok &&
  (result.status === 429 || (result.status === 503 && result.retryAfterSeconds !== undefined))

/**
 * Produces under an explicit policy: one deadline for everything, retries only for retriable
 * failures that are not throttle answers, and a retry re-sends only the messages not yet
 * acknowledged.
 */
export async function produceWithPolicy(
  producer: JobProducer,
  messages: readonly KafkaMessage[],
  policy: ProducePolicy,
  now: () => number = Date.now,
): Promise<PolicyResult> {
  const deadline = { at: now() + policy.timeoutMs }
  // Indices still unacknowledged; undefined until a first failure (all of them), so the usual
  // single successful attempt allocates nothing here.
  let pending: number[] | undefined
  let acknowledged: boolean[] | undefined
  let attempts = 0
  let backoff = policy.backoffMs
  for (;;) {
    attempts++
    const result = await producer.produce(
      pending ? pending.map((i) => messages[i] as KafkaMessage) : messages,
      deadline,
    )
    if (result.ok) return { result, attempts }
    const sent = pending ?? messages.map((_, i) => i)
    acknowledged ??= messages.map(() => false)
    const acked = acknowledged
    sent.forEach((index, j) => {
      if (result.acknowledged[j]) acked[index] = true
    })
    pending = sent.filter((index) => !acked[index])
    const remaining = deadline.at - now()
    const pause = Math.max(backoff, (result.retryAfterSeconds ?? 0) * 1000)
    if (
      pending.length === 0 ||
      !RETRIABLE.has(result.reason) ||
      isThrottled(result) ||
      attempts > policy.retries ||
      remaining <= pause
    ) {
      return pending.length === 0
        ? { result: { ok: true }, attempts }
        : { result: { ...result, acknowledged: acked }, attempts }
    }
    await sleep(pause)
    backoff *= 2
  }
}
