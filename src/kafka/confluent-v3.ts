/**
 * Confluent REST API v3 produce: Confluent Cloud, Confluent Platform's REST Proxy and Confluent
 * Server. `POST {url}/v3/clusters/{cluster_id}/topics/{topic}/records`, where `url` is the REST
 * endpoint's base: `https://pkc-….confluent.cloud:443/kafka` on Confluent Cloud (its API lives
 * under `/kafka/v3`), `http://rest-proxy:8082` for a self-managed REST Proxy (`/v3`).
 */
import type { Deadline, JobProducer, KafkaMessage, ProduceResult } from './producer.ts'
import type { HttpAnswer, RecordOutcome, RestEndpoint } from './rest.ts'
import {
  basicAuthorization,
  failAll,
  failByStatus,
  fromOutcomes,
  joinUrl,
  postBeforeDeadline,
  produceByTopic,
  restCodeReason,
  utf8Base64,
} from './rest.ts'
import { type RequestSize, utf8Length } from './split.ts'

/** Connection settings for Confluent v3: the endpoint plus the cluster id (`lkc-…`). */
export type ConfluentV3Config = RestEndpoint & { clusterId: string }

/**
 * One record of the request. Key and value are `STRING` data: the proxy writes the string's UTF-8
 * bytes as they are. A `JSON` value would be parsed and re-written by Jackson, which escapes
 * control characters with upper-case hex (`\u001F` where Weave writes `\u001f`) and would
 * re-format any number; `BINARY` would keep the bytes too, at a third more request size.
 */
export function v3Record(message: KafkaMessage): string {
  return JSON.stringify({
    key: { type: 'STRING', data: message.key },
    value: { type: 'STRING', data: message.value },
    ...(message.headers && message.headers.length > 0
      ? { headers: message.headers.map((h) => ({ name: h.key, value: utf8Base64(h.value) })) }
      : {}),
  })
}

/**
 * Records measured for a split, kept until the request that sends them is built: measuring a
 * maximal request costs as much as encoding it, so it is encoded once.
 */
const measured = new WeakMap<KafkaMessage, string>()

const encoded = (message: KafkaMessage) => measured.get(message) ?? v3Record(message)

/** The v3 body is the records' JSON objects, one per line. */
export const v3RequestSize: RequestSize = {
  base: 0,
  separator: 1,
  record: (message) => {
    const record = v3Record(message)
    measured.set(message, record)
    return utf8Length(record)
  },
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Splits a Concatenated JSON answer (one report per record, kafka-rest separates them with CRLF)
 * into its objects. Reading stops at the first thing that is not a complete JSON object, so a
 * stream cut short keeps the reports that did arrive.
 */
export function splitReports(text: string): { reports: unknown[]; complete: boolean } {
  const reports: unknown[] = []
  let i = 0
  for (;;) {
    while (i < text.length && /\s/.test(text.charAt(i))) i++
    if (i >= text.length) return { reports, complete: true }
    if (text.charAt(i) !== '{') return { reports, complete: false }
    const start = i
    let depth = 0
    let inString = false
    for (; i < text.length; i++) {
      const ch = text.charAt(i)
      if (inString) {
        if (ch === '\\') i++
        else if (ch === '"') inString = false
      } else if (ch === '"') inString = true
      else if (ch === '{' || ch === '[') depth++
      else if ((ch === '}' || ch === ']') && --depth === 0) break
    }
    if (depth !== 0) return { reports, complete: false }
    i++
    try {
      reports.push(JSON.parse(text.slice(start, i)))
    } catch {
      return { reports, complete: false }
    }
  }
}

/** What one report says about its record: `error_code` 200 with an offset, or why not. */
function outcomeOf(report: unknown): RecordOutcome {
  if (!isObject(report) || typeof report.error_code !== 'number') {
    return { ok: false, reason: 'invalid_response', detail: 'report without an error_code' }
  }
  if (report.error_code === 200) {
    return typeof report.offset === 'number'
      ? { ok: true }
      : { ok: false, reason: 'invalid_response', detail: 'error_code 200 without an offset' }
  }
  return {
    ok: false,
    reason: restCodeReason(report.error_code),
    detail: `error_code ${report.error_code}: ${String(report.message ?? '')}`,
  }
}

/**
 * Reads a v3 produce answer for `count` records. Errors found before the stream starts are an
 * HTTP status with `{error_code, message}`; once it has started the status is 200 and each record
 * has its own report, in request order, failures included. Reports beyond those expected cannot
 * be attributed, so then nothing counts as acknowledged.
 */
export function readV3Answer(answer: HttpAnswer, count: number): ProduceResult {
  if (answer.status < 200 || answer.status > 299) return failByStatus(count, answer)
  const { reports, complete } = splitReports(answer.text)
  if (reports.length > count) {
    return failAll(
      count,
      'invalid_response',
      `HTTP ${answer.status}: ${reports.length} reports for ${count} records`,
      answer,
    )
  }
  const missing: RecordOutcome = {
    ok: false,
    reason: 'invalid_response',
    detail: complete ? 'no report for this record' : 'answer unreadable from here on',
  }
  return fromOutcomes(
    Array.from({ length: count }, (_, i) => (i < reports.length ? outcomeOf(reports[i]) : missing)),
    answer,
  )
}

/**
 * The Confluent v3 adapter: every record of a topic in one non-streamed request (Confluent Cloud
 * admits about 25 of those per second and cluster), per-record success read from the body.
 */
export class ConfluentV3Producer implements JobProducer {
  readonly #config: ConfluentV3Config
  readonly #authorization: string

  constructor(config: ConfluentV3Config) {
    this.#config = config
    this.#authorization = basicAuthorization(config.username, config.password)
  }

  produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    return produceByTopic(messages, async (topic, batch) => {
      const url = joinUrl(
        this.#config.url,
        'v3',
        'clusters',
        this.#config.clusterId,
        'topics',
        topic,
        'records',
      )
      const sent = await postBeforeDeadline(
        url,
        {
          authorization: this.#authorization,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        batch.map(encoded).join('\n'),
        deadline,
        batch.length,
      )
      return 'failure' in sent ? sent.failure : readV3Answer(sent.answer, batch.length)
    })
  }
}
