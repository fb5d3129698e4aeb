/**
 * What the Kafka REST adapters we write ourselves (Confluent v3, Kafka REST v2) share: one POST
 * under the caller's deadline, Basic credentials, base64, `Retry-After`, and the mapping of
 * statuses and error codes onto {@link ProduceFailureReason}.
 */
import type { Deadline, KafkaMessage, ProduceFailureReason, ProduceResult } from './producer.ts'

/** Where and as whom to produce. */
export type RestEndpoint = { url: string; username: string; password: string }

/** A failed {@link ProduceResult}. */
export type ProduceFailure = Extract<ProduceResult, { ok: false }>

/** An HTTP answer, read completely before the deadline. */
export type HttpAnswer = {
  status: number
  /** Media type, lower-cased, parameters dropped ('' when absent). */
  contentType: string
  text: string
  /** From the answer's `Retry-After`, when it carries a usable one. */
  retryAfterSeconds?: number
}

/** What one record's slot in an answer says. */
export type RecordOutcome =
  | { ok: true }
  | { ok: false; reason: ProduceFailureReason; detail: string }

const utf8 = new TextEncoder()

/** Standard base64 with padding: every Kafka REST implementation decodes it (Redpanda strictly). */
export function base64(bytes: Uint8Array): string {
  let binary = ''
  // `apply` over chunks: a spread of a large array is several times slower and can overflow.
  for (let i = 0; i < bytes.length; i += 8192) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[])
  }
  return btoa(binary)
}

/**
 * Base64 of a string's UTF-8 bytes. ASCII text (almost every job) is its own UTF-8 and goes to
 * btoa directly, about fifty times faster than through the bytes.
 */
export const utf8Base64 = (text: string): string =>
  /[\u0080-\uffff]/.test(text) ? base64(utf8.encode(text)) : btoa(text)

/** `Authorization` value for HTTP Basic (RFC 7617, UTF-8). */
export const basicAuthorization = (username: string, password: string): string =>
  `Basic ${utf8Base64(`${username}:${password}`)}`

/**
 * Appends path segments to a base URL that may itself carry a path (Confluent Cloud's `/kafka`,
 * a gateway prefix). Segments are percent-encoded; the base's trailing slashes are dropped.
 */
export function joinUrl(base: string, ...segments: string[]): string {
  return [base.replace(/\/+$/, ''), ...segments.map(encodeURIComponent)].join('/')
}

/**
 * `Retry-After` as seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value)
  // HTTP-dates end in GMT; Date.parse alone would read '-5' as a year.
  const at = /GMT$/.test(value) ? Date.parse(value) : Number.NaN
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000))
}

/** The reason an HTTP status stands for: 401/403 credentials, 429/5xx retriable, the rest refused. */
export function statusReason(status: number): ProduceFailureReason {
  if (status === 401 || status === 403) return 'unauthorized'
  if (status === 429 || status >= 500) return 'unavailable'
  return 'rejected'
}

/**
 * Confluent's REST error codes (kafka-rest Errors.java, rest-utils KafkaExceptionMapper) are an
 * HTTP status, optionally followed by two digits: 40101 is a 401, 50003 a retriable 500, 42206 a
 * 422. Their reason is their status's.
 */
export function restCodeReason(code: number): ProduceFailureReason {
  return statusReason(code >= 10_000 ? Math.floor(code / 100) : code)
}

/**
 * Kafka protocol error codes (org.apache.kafka.common.protocol.Errors) that a retry can cure:
 * the RetriableException family plus BROKER_NOT_AVAILABLE (8) and THROTTLING_QUOTA_EXCEEDED (89).
 */
const KAFKA_RETRIABLE = new Set([
  2, 3, 5, 6, 7, 8, 13, 14, 15, 16, 19, 20, 56, 74, 75, 89, 100, 102,
])
/** TOPIC/GROUP/CLUSTER/TRANSACTIONAL_ID_AUTHORIZATION_FAILED, SASL_AUTHENTICATION_FAILED. */
const KAFKA_AUTH = new Set([29, 30, 31, 53, 58])
/** Names of the codes an operator is most likely to meet in a produce answer. */
const KAFKA_NAMES: Record<number, string> = {
  [-1]: 'UNKNOWN_SERVER_ERROR',
  2: 'CORRUPT_MESSAGE',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  10: 'MESSAGE_TOO_LARGE',
  19: 'NOT_ENOUGH_REPLICAS',
  20: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  31: 'CLUSTER_AUTHORIZATION_FAILED',
  58: 'SASL_AUTHENTICATION_FAILED',
  87: 'INVALID_RECORD',
}

/** The reason a Kafka protocol error code stands for (Redpanda reports them inside a 200). */
export function kafkaCodeReason(code: number): ProduceFailureReason {
  if (KAFKA_AUTH.has(code)) return 'unauthorized'
  if (KAFKA_RETRIABLE.has(code)) return 'unavailable'
  return 'rejected'
}

/** `3 (UNKNOWN_TOPIC_OR_PARTITION)`, for the log. */
export const kafkaCodeName = (code: number): string =>
  KAFKA_NAMES[code] ? `${code} (${KAFKA_NAMES[code]})` : String(code)

/**
 * When records fail for different reasons, the request's reason is the one that decides best
 * what to do next: a credential or a refusal will fail again, so they win over retriable ones.
 */
const PRECEDENCE: readonly ProduceFailureReason[] = [
  'unauthorized',
  'rejected',
  'unavailable',
  'invalid_response',
  'timeout',
  'unreachable',
]

const clip = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max)}…` : text)

/** A failure for every record, with what the answer (if any) adds for the log and the policy. */
export function failAll(
  count: number,
  reason: ProduceFailureReason,
  detail: string,
  answer?: HttpAnswer,
): ProduceFailure {
  return {
    ok: false,
    reason,
    detail: clip(detail),
    acknowledged: Array.from({ length: count }, () => false),
    ...(answer ? { status: answer.status } : {}),
    ...(answer?.retryAfterSeconds === undefined
      ? {}
      : { retryAfterSeconds: answer.retryAfterSeconds }),
  }
}

/** A non-2xx answer without per-record reports: the status decides, the body explains. */
export function failByStatus(count: number, answer: HttpAnswer): ProduceFailure {
  let explained = answer.text.trim()
  try {
    const body: unknown = JSON.parse(answer.text)
    if (typeof body === 'object' && body !== null && 'message' in body) {
      const { error_code: code, message } = body as { error_code?: unknown; message?: unknown }
      explained = `${code === undefined ? '' : `error_code ${String(code)}: `}${String(message)}`
    }
  } catch {
    // An HTML page or plain text: its first characters are the best explanation we have.
  }
  return failAll(
    count,
    statusReason(answer.status),
    `HTTP ${answer.status}: ${explained.slice(0, 200)}`,
    answer,
  )
}

/** Folds per-record outcomes (request order) into one result. */
export function fromOutcomes(
  outcomes: readonly RecordOutcome[],
  answer: HttpAnswer,
): ProduceResult {
  const failed = outcomes.flatMap((o, i) => (o.ok ? [] : [{ ...o, index: i }]))
  if (failed.length === 0) return { ok: true }
  const reason = PRECEDENCE.find((r) => failed.some((f) => f.reason === r)) ?? 'invalid_response'
  const first = failed.find((f) => f.reason === reason)
  const detail = `HTTP ${answer.status}: ${failed.length} of ${outcomes.length} records failed; record ${first?.index}: ${first?.detail}`
  return {
    ...failAll(outcomes.length, reason, detail, answer),
    acknowledged: outcomes.map((o) => o.ok),
  }
}

/**
 * POSTs once and reads the whole answer, both before the deadline: the AbortSignal ends a hang
 * (and frees the connection), unlike `@upstash/kafka`, whose fetch takes none. Redirects are not
 * followed, so credentials never travel to another origin. Never throws.
 */
export async function postBeforeDeadline(
  url: string,
  headers: Record<string, string>,
  body: string,
  deadline: Deadline,
  count: number,
): Promise<{ answer: HttpAnswer } | { failure: ProduceFailure }> {
  const remaining = deadline.at - Date.now()
  if (remaining <= 0)
    return { failure: failAll(count, 'timeout', 'deadline passed before sending') }
  const signal = AbortSignal.timeout(remaining)
  try {
    const res = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'manual' })
    const text = await res.text()
    const retryAfterSeconds = parseRetryAfter(res.headers.get('retry-after'))
    return {
      answer: {
        status: res.status,
        contentType:
          (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '',
        text,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      },
    }
  } catch (e) {
    // The request may still land after a timeout: at least once, as for every producer here.
    if (signal.aborted)
      return { failure: failAll(count, 'timeout', 'no answer before the deadline') }
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    return { failure: failAll(count, 'unreachable', message) }
  }
}

/**
 * Runs `send` once per topic (both REST dialects name the topic in the path) and puts the
 * acknowledgements back in request order. Jobs of one request share a topic, so this is one HTTP
 * request in practice.
 */
export async function produceByTopic(
  messages: readonly KafkaMessage[],
  send: (topic: string, batch: readonly KafkaMessage[]) => Promise<ProduceResult>,
): Promise<ProduceResult> {
  const byTopic = new Map<string, number[]>()
  messages.forEach((m, i) => {
    const indexes = byTopic.get(m.topic) ?? []
    indexes.push(i)
    byTopic.set(m.topic, indexes)
  })
  const groups = [...byTopic]
  const [single] = groups
  if (!single) return { ok: true }
  if (groups.length === 1) return send(single[0], messages)
  const results = await Promise.all(
    groups.map(([topic, indexes]) =>
      send(
        topic,
        indexes.map((i) => messages[i] as KafkaMessage),
      ),
    ),
  )
  const acknowledged = messages.map(() => true)
  let worst: ProduceFailure | undefined
  for (const [g, result] of results.entries()) {
    if (result.ok) continue
    for (const [j, index] of (groups[g]?.[1] ?? []).entries()) {
      acknowledged[index] = result.acknowledged[j] ?? false
    }
    if (!worst || PRECEDENCE.indexOf(result.reason) < PRECEDENCE.indexOf(worst.reason)) {
      worst = result
    }
  }
  return worst ? { ...worst, acknowledged } : { ok: true }
}
