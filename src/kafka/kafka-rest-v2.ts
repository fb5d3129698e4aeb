/**
 * Kafka REST API v2 produce, `POST {url}/topics/{topic}`, as Confluent's REST Proxy, Redpanda's
 * HTTP Proxy and Aiven's Karapace serve it. One request shape; three ways of answering.
 */
import type { Deadline, JobProducer, KafkaMessage, ProduceResult } from './producer.ts'
import type { HttpAnswer, RecordOutcome, RestEndpoint } from './rest.ts'
import {
  basicAuthorization,
  failAll,
  failByStatus,
  fromOutcomes,
  joinUrl,
  kafkaCodeName,
  kafkaCodeReason,
  postBeforeDeadline,
  produceByTopic,
  restCodeReason,
  utf8Base64,
} from './rest.ts'
import { type RequestSize, utf8Length } from './split.ts'

/**
 * The binary embedded format: key and value travel as base64 and land as exactly those bytes on
 * all three. With `json.v2` each proxy re-writes the value its own way (Karapace escapes every
 * non-ASCII character, Redpanda and Confluent write control escapes in upper-case hex), and a
 * JSON key lands with its quotes (`"acme/support-bot"`).
 */
export const V2_CONTENT_TYPE = 'application/vnd.kafka.binary.v2+json'
/** The answer type all three accept in `Accept` (Redpanda refuses `application/json` with 406). */
export const V2_ACCEPT = 'application/vnd.kafka.v2+json'

/** The request body. v2 has no record headers: they are dropped (docs/kafka-rest-dialects.md). */
export function v2Body(messages: readonly KafkaMessage[]): string {
  return JSON.stringify({
    records: messages.map((m) => ({ key: utf8Base64(m.key), value: utf8Base64(m.value) })),
  })
}

const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3)

/**
 * `{"records":[` + records joined by commas + `]}`; a record is `{"key":"…","value":"…"}` around
 * two base64 strings, whose length follows from the UTF-8 length alone.
 */
export const v2RequestSize: RequestSize = {
  base: '{"records":[]}'.length,
  separator: 1,
  record: (m) =>
    '{"key":"","value":""}'.length +
    base64Length(utf8Length(m.key)) +
    base64Length(utf8Length(m.value)),
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const hasCode = (entry: Record<string, unknown>) =>
  entry.error_code !== undefined && entry.error_code !== null

/**
 * One entry of a per-record answer: Confluent's `{partition, offset, error_code: null, error:
 * null}` or `{partition: null, offset: null, error_code: 50003, error}`; Karapace's `{offset,
 * partition}` or `{error_code: 1 | 2, error}` (1 is final, 2 retriable).
 */
function recordOutcome(entry: unknown): RecordOutcome {
  if (!isObject(entry))
    return { ok: false, reason: 'invalid_response', detail: 'entry not an object' }
  if (!hasCode(entry)) {
    return typeof entry.offset === 'number' && entry.offset >= 0
      ? { ok: true }
      : { ok: false, reason: 'invalid_response', detail: 'entry without an offset' }
  }
  const code = entry.error_code
  if (typeof code !== 'number') {
    return { ok: false, reason: 'invalid_response', detail: 'error_code not a number' }
  }
  const reason = code < 100 ? (code === 2 ? 'unavailable' : 'rejected') : restCodeReason(code)
  return { ok: false, reason, detail: `error_code ${code}: ${String(entry.error ?? '')}` }
}

/**
 * Reads a v2 produce answer for `count` records.
 *
 * - Confluent and Karapace answer one `offsets` entry per record, in request order, next to
 *   `key_schema_id`/`value_schema_id`; that pair is how such an answer is recognised. Karapace
 *   turns the whole answer into a 422 when any record failed; its entries still say which.
 * - Redpanda answers one entry per partition, `{partition, offset}` with the batch's base offset,
 *   and a Kafka error code inside the 200 when a batch failed. Which records went to a partition
 *   is the proxy's choice, so a failed entry fails every record of the request (a retry may
 *   duplicate the others: at least once), and only an answer whose entries all succeeded
 *   acknowledges them all.
 * - Anything else is read by its HTTP status; a 2xx we cannot read acknowledges nothing.
 */
export function readV2Answer(answer: HttpAnswer, count: number): ProduceResult {
  let body: unknown
  try {
    body = JSON.parse(answer.text)
  } catch {
    body = undefined
  }
  const ok = answer.status >= 200 && answer.status <= 299
  if (!isObject(body) || !Array.isArray(body.offsets)) {
    return ok
      ? failAll(count, 'invalid_response', `HTTP ${answer.status}: not a produce answer`, answer)
      : failByStatus(count, answer)
  }
  const entries: unknown[] = body.offsets
  if ('key_schema_id' in body || 'value_schema_id' in body) {
    if (entries.length !== count) {
      return failAll(
        count,
        'invalid_response',
        `HTTP ${answer.status}: ${entries.length} offsets for ${count} records`,
        answer,
      )
    }
    return fromOutcomes(entries.map(recordOutcome), answer)
  }
  // Per partition (Redpanda).
  // Kafka's own success code is 0; Redpanda leaves error_code out instead.
  const failed = entries.find(
    (e) =>
      !isObject(e) ||
      (hasCode(e) && e.error_code !== 0) ||
      typeof e.offset !== 'number' ||
      e.offset < 0,
  )
  if (failed === undefined && ok && entries.length >= 1 && entries.length <= count) {
    return { ok: true }
  }
  if (isObject(failed) && typeof failed.error_code === 'number') {
    return failAll(
      count,
      kafkaCodeReason(failed.error_code),
      `HTTP ${answer.status}: partition ${String(failed.partition)} failed with Kafka error ` +
        `${kafkaCodeName(failed.error_code)}; ${entries.length} partition entries for ${count} records`,
      answer,
    )
  }
  return ok
    ? failAll(
        count,
        'invalid_response',
        `HTTP ${answer.status}: ${entries.length} unreadable partition entries for ${count} records`,
        answer,
      )
    : failByStatus(count, answer)
}

/**
 * The Kafka REST v2 adapter: every record of a topic in one request, key and value as base64,
 * acknowledgements read as conservatively as each implementation's answer allows.
 */
export class KafkaRestV2Producer implements JobProducer {
  readonly #config: RestEndpoint
  readonly #authorization: string

  constructor(config: RestEndpoint) {
    this.#config = config
    this.#authorization = basicAuthorization(config.username, config.password)
  }

  produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    return produceByTopic(messages, async (topic, batch) => {
      const sent = await postBeforeDeadline(
        joinUrl(this.#config.url, 'topics', topic),
        {
          authorization: this.#authorization,
          'content-type': V2_CONTENT_TYPE,
          accept: V2_ACCEPT,
        },
        v2Body(batch),
        deadline,
        batch.length,
      )
      return 'failure' in sent ? sent.failure : readV2Answer(sent.answer, batch.length)
    })
  }
}
