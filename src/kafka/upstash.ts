import { Kafka, UpstashError } from '@upstash/kafka'
import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'
import type {
  Deadline,
  JobProducer,
  KafkaMessage,
  ProduceFailureReason,
  ProduceResult,
} from './producer.ts'
import { failAll, statusReason } from './rest.ts'
import { jsonStringLength, type RequestSize, valueJsonLength } from './split.ts'

/** Connection settings for an endpoint that speaks Upstash's Kafka REST dialect. */
export type UpstashConfig = { url: string; username: string; password: string }

type HttpRequest = {
  path: string[]
  body?: unknown
  headers?: Record<string, string>
  retries?: number
}
type HttpClient = { post<T>(req: HttpRequest): Promise<T> }
type Producer = ReturnType<Kafka['producer']>

/**
 * `@upstash/kafka` 1.3.5 (its last release) retries every failure five more times over ~15.5 s and
 * offers no switch; its HttpClient does honour a per-request `retries`. We route the producer's
 * calls through a client that always asks for none, so the policy stays ours.
 */
function producerWithoutRetries(config: UpstashConfig): Producer {
  const producer = new Kafka(config).producer()
  const holder = producer as unknown as { client: HttpClient }
  const inner = holder.client
  holder.client = { post: <T>(req: HttpRequest) => inner.post<T>({ ...req, retries: 0 }) }
  return producer
}

type ProduceRequests = Parameters<Producer['produceMany']>[0]

/**
 * Starts one `produceMany` call. The library builds a placeholder `Error` on every request (its
 * "last error" before the first attempt) and V8 captures a stack trace for it, which profiling
 * showed costing more than the rest of the call; the placeholder is never thrown with retries
 * of 0. The library reaches its `fetch` synchronously, so the limit is restored before any other
 * code runs. Messages go through as they are: the library copies each one itself and only reads
 * the headers.
 */
function sendWithoutStack(producer: Producer, messages: readonly KafkaMessage[]) {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return producer.produceMany(messages as ProduceRequests)
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * `@upstash/kafka` posts `JSON.stringify` of the messages as an array (it moves `value` last,
 * which changes no length).
 */
export const upstashRequestSize: RequestSize = {
  base: 2,
  separator: 1,
  record: (message) => {
    // {"topic":…,"key":…,"value":…} and ,"headers":[{"key":…,"value":…},…] when there are any.
    let bytes =
      '{"topic":,"key":,"value":}'.length +
      jsonStringLength(message.topic) +
      jsonStringLength(message.key) +
      valueJsonLength(message)
    if (message.headers) {
      bytes += ',"headers":[]'.length + Math.max(0, message.headers.length - 1)
      for (const h of message.headers) {
        bytes += '{"key":,"value":}'.length + jsonStringLength(h.key) + jsonStringLength(h.value)
      }
    }
    return bytes
  },
}

type Metadata = { topic: string; partition: number; offset: number }

const isMetadata = (v: unknown): v is Metadata =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Metadata).topic === 'string' &&
  typeof (v as Metadata).partition === 'number' &&
  typeof (v as Metadata).offset === 'number'

/**
 * The Upstash-dialect adapter (`POST /produce` with a JSON array, answered by an array of
 * `{topic, partition, offset, timestamp}` in request order), through `@upstash/kafka`.
 * A message counts as acknowledged only when its slot in the answer carries an offset.
 */
export class UpstashProducer implements JobProducer {
  readonly #producer: Producer

  constructor(config: UpstashConfig) {
    this.#producer = producerWithoutRetries(config)
  }

  async produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    // As postBeforeDeadline does for the other dialects: a request sent after the deadline (a
    // later part of a split request) could only land unacknowledged, spending the endpoint's
    // request budget on a job that goes to the queue anyway.
    const remaining = deadline.at - Date.now()
    if (remaining <= 0) return failAll(messages.length, 'timeout', 'deadline passed before sending')
    try {
      // The library's fetch takes no AbortSignal: on timeout the request is abandoned, and the
      // runtime cancels it when the invocation ends. It may still have landed (at least once).
      const answer = await withTimeout(sendWithoutStack(this.#producer, messages), remaining)
      if (answer === TIMED_OUT) {
        return failAll(messages.length, 'timeout', 'no answer before the deadline')
      }
      // Slots are positional; an answer of another length cannot say which message is missing, so
      // none counts as acknowledged (a retry may then duplicate: at least once, never lost).
      const positional = Array.isArray(answer) && answer.length === messages.length
      const acknowledged = messages.map((_, i) => positional && isMetadata(answer[i]))
      if (acknowledged.every(Boolean)) return { ok: true }
      return {
        ok: false,
        reason: 'invalid_response',
        detail: 'answer did not acknowledge every message',
        acknowledged,
      }
    } catch (e) {
      const { reason, detail, status } = classify(e)
      return {
        ...failAll(messages.length, reason, detail),
        ...(status === undefined ? {} : { status }),
      }
    }
  }
}

function classify(e: unknown): {
  reason: ProduceFailureReason
  detail: string
  status?: number
} {
  if (e instanceof UpstashError) {
    // The library takes the status from the error body's `status` field, not from HTTP.
    const status: unknown = e.status
    if (typeof status !== 'number') {
      return { reason: 'invalid_response', detail: 'error answer without a status' }
    }
    return {
      reason: statusReason(status),
      status,
      detail: `HTTP ${status}: ${String(e.error).slice(0, 200)}`,
    }
  }
  if (e instanceof SyntaxError) {
    // The library parses every answer as JSON before looking at the status: an HTML error page.
    return { reason: 'invalid_response', detail: 'answer was not JSON' }
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  return { reason: 'unreachable', detail: message.slice(0, 200) }
}
