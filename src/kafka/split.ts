/**
 * Keeps every Kafka REST request under a byte limit (`KAFKA_REST_MAX_REQUEST_BYTES`): a layer
 * above the dialect adapters, so that the direct produce and the queue consumer split alike and
 * each adapter still sends exactly the messages it is given in one request.
 */
import {
  type Deadline,
  isThrottled,
  type JobProducer,
  type KafkaMessage,
  type ProduceResult,
} from './producer.ts'

/**
 * How a dialect's produce body grows with its records, in UTF-8 bytes as sent: a fixed part,
 * one record's encoding, and what separates two records. Exact for every dialect: measured from
 * the same encoding the adapter sends.
 */
export type RequestSize = {
  /** Bytes of an empty request body's envelope (`{"records":[]}` is 14). */
  base: number
  /** Bytes between two records (a comma, a newline). */
  separator: number
  /** Bytes of one record's encoding. */
  record(message: KafkaMessage): number
}

const utf8 = new TextEncoder()

let scratch = new Uint8Array(16 * 1024)

/**
 * UTF-8 length of a string: its length when ASCII (almost always), else encoded. ASCII is told by
 * the runtime's own encoder writing one byte per character into a buffer as long as the text (a
 * native copy, several times cheaper than a regular expression's scan of the same text).
 */
export function utf8Length(text: string): number {
  if (scratch.length < text.length) scratch = new Uint8Array(2 * text.length)
  const { read, written } = utf8.encodeInto(text, scratch)
  return read === text.length && written === read ? written : utf8.encode(text).length
}

/**
 * Values whose builder knows how many `"` they hold and that they hold no `\` and no control
 * character (a JSON text whose strings needed no escape), by message: their JSON-string length
 * follows from their UTF-8 length without scanning them.
 */
const valueQuotes = new WeakMap<KafkaMessage, number>()

/**
 * Declares that `message.value` holds exactly `quotes` double quotes, no backslash and no
 * character below U+0020 or lone surrogate. Only a builder that knows it exactly may declare it:
 * the request size is then computed from it.
 */
export function declareValueQuotes(message: KafkaMessage, quotes: number): void {
  valueQuotes.set(message, quotes)
}

/**
 * UTF-8 length of `JSON.stringify(message.value)`: each `"` gains a backslash, nothing else is
 * escaped, when the value's quotes are declared; else measured on the text.
 */
export function valueJsonLength(message: KafkaMessage): number {
  const quotes = valueQuotes.get(message)
  return quotes === undefined
    ? jsonStringLength(message.value)
    : utf8Length(message.value) + 2 + quotes
}

/**
 * UTF-8 length of `JSON.stringify(text)` without building it when the text is printable ASCII (a
 * job's value is JSON text, almost always ASCII): the quotes, plus one byte for each `"` and `\`
 * it escapes. Anything else is stringified. Half the cost of stringifying a maximal request.
 */
export function jsonStringLength(text: string): number {
  if (/[^\u0020-\u007e]/.test(text)) return utf8Length(JSON.stringify(text))
  let bytes = text.length + 2
  for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) bytes++
  for (let i = text.indexOf('\\'); i !== -1; i = text.indexOf('\\', i + 1)) bytes++
  return bytes
}

/**
 * A cheap bound no dialect's encoding of the message exceeds: at most 6 bytes per UTF-16 unit
 * (a `\u001f` escape; UTF-8 needs 3, base64 of it 4) plus room for the record's field names.
 * Requests under the limit by this bound (nearly all) are sent without being measured.
 */
function upperBound(message: KafkaMessage): number {
  let units = message.key.length + message.value.length
  let headers = 0
  for (const h of message.headers ?? []) {
    units += h.key.length + h.value.length
    headers++
  }
  return 128 + 32 * headers + 6 * units
}

/**
 * Groups message indexes, in order, into requests of at most `maxBytes` by `size`. A message that
 * is over the limit on its own goes alone: the endpoint's answer (a 413) then decides its fate,
 * as it would have without the limit.
 */
export function splitBySize(
  messages: readonly KafkaMessage[],
  size: RequestSize,
  maxBytes: number,
): number[][] {
  const groups: number[][] = []
  let current: number[] = []
  let bytes = size.base
  for (const [i, message] of messages.entries()) {
    const n = size.record(message)
    if (current.length > 0 && bytes + size.separator + n > maxBytes) {
      groups.push(current)
      current = []
      bytes = size.base
    }
    bytes += (current.length > 0 ? size.separator : 0) + n
    current.push(i)
  }
  if (current.length > 0) groups.push(current)
  return groups
}

/**
 * Parts of one client request's produce in flight at once. Two, so that a maximal request (about
 * 1.15 MB in the Upstash encoding, two parts under the default limit) waits for one round trip,
 * not two; no more, so that a low limit does not turn one produce into a burst against the
 * endpoint's request budget. The queue consumer, whom no client waits for, sends one at a time.
 */
export const PARTS_IN_FLIGHT = 2

/**
 * A producer that sends through `inner` in requests of at most `maxBytes`. A request that fits
 * (nearly all) goes through untouched. Larger ones are sent in parts, in order, `partsInFlight`
 * at a time (so with more than one, parts may land out of order), under the caller's deadline,
 * and the acknowledgements come back per message, in the caller's order, as from a single
 * request. A part refused for itself (`rejected`: a 413
 * for a message over the limit on its own, a 422) says nothing about the other parts, so they are
 * still sent: one oversized job must not hold back, and in the consumer wear out the attempts of,
 * the jobs batched with it. Any other failure (a throttle, an outage, a timeout, refused
 * credentials) is the endpoint's: no further part is started (a throttled endpoint is not sent
 * the rest), and the parts never sent count as not acknowledged. The failure reported is chosen
 * for the caller's policy (see {@link reportedFailure}).
 */
export class SizeLimitedProducer implements JobProducer {
  readonly #inner: JobProducer
  readonly #size: RequestSize
  readonly #maxBytes: number
  readonly #partsInFlight: number

  constructor(inner: JobProducer, size: RequestSize, maxBytes: number, partsInFlight = 1) {
    this.#inner = inner
    this.#size = size
    this.#maxBytes = maxBytes
    this.#partsInFlight = partsInFlight
  }

  async produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    let bound = this.#size.base
    for (const m of messages) bound += upperBound(m)
    if (bound <= this.#maxBytes) return this.#inner.produce(messages, deadline)
    const groups = splitBySize(messages, this.#size, this.#maxBytes)
    if (groups.length === 1) return this.#inner.produce(messages, deadline)
    const acknowledged = messages.map(() => false)
    const failures: (Failure | undefined)[] = []
    let next = 0
    let ended = false
    const lane = async () => {
      while (next < groups.length && !ended) {
        const g = next++
        const group = groups[g] as number[]
        const result = await this.#inner.produce(
          group.map((i) => messages[i] as KafkaMessage),
          deadline,
        )
        if (result.ok) {
          for (const i of group) acknowledged[i] = true
          continue
        }
        for (const [j, i] of group.entries()) acknowledged[i] = result.acknowledged[j] ?? false
        failures[g] = {
          ...result,
          detail: `request ${g + 1} of ${groups.length}: ${result.detail}`,
        }
        if (result.reason !== 'rejected') ended = true
      }
    }
    const lanes = Math.min(this.#partsInFlight, groups.length)
    await Promise.all(Array.from({ length: lanes }, lane))
    const failure = reportedFailure(failures)
    return failure === undefined ? { ok: true } : { ...failure, acknowledged }
  }
}

type Failure = Extract<ProduceResult, { ok: false }>

/**
 * The failure a split produce reports, when parts in flight side by side failed differently: what
 * the caller's policy must act on comes first. A throttle answer (the one asking for the longest
 * wait), so that nothing is retried into it and the breaker opens; else refused credentials (an
 * operator alarm, never retried); else the earliest other endpoint failure; else the earliest
 * refusal of a part for itself.
 */
function reportedFailure(failures: readonly (Failure | undefined)[]): Failure | undefined {
  const failed = failures.filter((f): f is Failure => f !== undefined)
  const throttles = failed.filter(isThrottled)
  if (throttles.length > 0) {
    return throttles.reduce((a, b) =>
      (b.retryAfterSeconds ?? 0) > (a.retryAfterSeconds ?? 0) ? b : a,
    )
  }
  return (
    failed.find((f) => f.reason === 'unauthorized') ??
    failed.find((f) => f.reason !== 'rejected') ??
    failed[0]
  )
}
