/**
 * Confluent REST API v3 produce:
 * `POST {/v3|/kafka/v3}/clusters/{cluster_id}/topics/{topic}/records` (self-managed REST Proxy
 * serves `/v3`, Confluent Cloud and Confluent Server `/kafka/v3`).
 *
 * Sources (confluentinc/kafka-rest @985d0e0):
 * - api/v3/openapi.yaml: request/response schemas, the error examples quoted below;
 * - resources/v3/ProduceAction.java: per-record flow, partition_id < 0 check, key/value `type`;
 * - entities/v3/ProduceRequest.java, ProduceResponse.java: field names, which fields are omitted;
 * - controllers/NoSchemaRecordSerializer.java: BINARY/JSON/STRING serialisation and messages;
 * - response/StreamingResponse.java, ChunkedOutputFactory.java: the answer is HTTP 200 as soon
 *   as the stream starts, one report per record separated by "\r\n", errors inside the body;
 * - response/JsonStreamMessageBodyReader.java: application/json only, UTF-8/ISO-8859-1 charset;
 * - Errors.java and confluentinc/rest-utils KafkaExceptionMapper.java: error codes.
 */
import type { StreamItem } from '../codec.ts'
import {
  decodeGuavaBase64,
  decodeJacksonBase64,
  jacksonJson,
  splitConcatenatedJson,
} from '../codec.ts'
import { reason } from '../faults.ts'
import type {
  DialectContext,
  DialectModule,
  ProduceOutcome,
  SinkReply,
  SinkRequest,
} from '../http.ts'
import { invalidPartition, json, mediaType } from '../http.ts'
import type { NewRecord } from '../store.ts'

type ErrorResponse = { error_code: number; message: string }

const error = (status: number, errorCode: number, message: string): SinkReply =>
  json(status, { error_code: errorCode, message })

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Java's Instant#toString (ISO_INSTANT): no fraction when the milliseconds are zero. */
function isoInstant(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z')
}

/** Jackson's wording for a value of the wrong JSON type. */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'Array value (token `JsonToken.START_ARRAY`)'
  if (typeof v === 'string') return `String value (${JSON.stringify(v)})`
  if (typeof v === 'number')
    return `${Number.isInteger(v) ? 'Integer' : 'Floating-point'} value (${v})`
  if (typeof v === 'boolean') return `Boolean value (${v})`
  return 'value'
}

const FORMATS = ['BINARY', 'JSON', 'STRING', 'AVRO', 'JSONSCHEMA', 'PROTOBUF'] as const
type Format = (typeof FORMATS)[number]

const REQUEST_CLASS = 'io.confluent.kafkarest.entities.v3.ProduceRequest'
const DATA_CLASS = `${REQUEST_CLASS}$ProduceRequestData`
const HEADER_CLASS = `${REQUEST_CLASS}$ProduceRequestHeader`

/** A per-record failure, as its report reads. */
class RecordError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.code = code
  }
}

const badRequest = (detail: string) => new RecordError(400, `Bad Request: ${detail}`)

/**
 * Serialises key or value data like NoSchemaRecordSerializer: null data means a null key/value
 * (the format is still reported); BINARY is base64, STRING is UTF-8, and JSON is the compact
 * Jackson serialisation of the JsonNode (KafkaJsonSerializer), so `{"a": 1}` is stored as the
 * bytes `{"a":1}` and the string "x" as `"x"` with its quotes.
 */
function serialize(raw: unknown): { format: Format | null; bytes: Buffer | null } {
  if (raw === undefined || raw === null) return { format: null, bytes: null }
  if (!isRecord(raw)) {
    throw new RecordError(
      400,
      `Cannot deserialize value of type \`${DATA_CLASS}\` from ${jsonKind(raw)}`,
    )
  }
  const known = [
    'type',
    'subject',
    'subject_name_strategy',
    'schema_id',
    'schema_version',
    'schema',
    'data',
  ]
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) {
      throw new RecordError(
        400,
        `Unrecognized field "${k}" (class ${DATA_CLASS}), not marked as ignorable`,
      )
    }
  }
  const type = raw.type
  if (type !== undefined && type !== null && !FORMATS.includes(type as Format)) {
    throw new RecordError(
      400,
      'Cannot deserialize value of type `io.confluent.kafkarest.entities.EmbeddedFormat` from ' +
        `${jsonKind(type)}: not one of the values accepted for Enum class: [${FORMATS.join(', ')}]`,
    )
  }
  const format = (type ?? null) as Format | null
  if (format === null || format === 'AVRO' || format === 'JSONSCHEMA' || format === 'PROTOBUF') {
    // No `type` means "use a schema"; this sink, like Confluent Cloud's produce API, has no
    // Schema Registry (SchemaManagerThrowing -> Errors.invalidPayloadException, code 42206).
    throw new RecordError(
      42206,
      'Payload error. Schema Registry must be configured when using schemas.',
    )
  }
  const data = raw.data
  if (data === undefined || data === null) return { format, bytes: null }
  switch (format) {
    case 'BINARY': {
      if (typeof data !== 'string')
        throw badRequest(`data=${jacksonJson(data)} is not a base64 string.`)
      const bytes = decodeGuavaBase64(data)
      if (!bytes) throw badRequest(`data=${jacksonJson(data)} is not a valid base64 string.`)
      return { format, bytes }
    }
    case 'STRING':
      if (typeof data !== 'string') throw badRequest(`data=${jacksonJson(data)} is not a string.`)
      return { format, bytes: Buffer.from(data, 'utf8') }
    case 'JSON':
      return { format, bytes: Buffer.from(jacksonJson(data), 'utf8') }
  }
}

/** Reads one ProduceRequest object into a record, or throws its RecordError. */
function readRecord(
  raw: unknown,
  partitions: number,
): { record: NewRecord; partition: number | null; key: Format | null; value: Format | null } {
  if (!isRecord(raw)) {
    throw new RecordError(
      400,
      `Cannot deserialize value of type \`${REQUEST_CLASS}$Builder\` from ${jsonKind(raw)}`,
    )
  }
  const known = ['partition_id', 'headers', 'key', 'value', 'timestamp']
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) {
      throw new RecordError(
        400,
        `Unrecognized field "${k}" (class ${REQUEST_CLASS}$Builder), not marked as ignorable ` +
          `(5 known properties: ${known.map((p) => `"${p}"`).join(', ')})`,
      )
    }
  }
  let partition: number | null = null
  if (raw.partition_id !== undefined && raw.partition_id !== null) {
    if (typeof raw.partition_id !== 'number' || !Number.isInteger(raw.partition_id)) {
      throw new RecordError(
        400,
        `Cannot deserialize value of type \`java.lang.Integer\` from ${jsonKind(raw.partition_id)}`,
      )
    }
    partition = raw.partition_id
  }
  const headers: NewRecord['headers'] = []
  if (raw.headers !== undefined && raw.headers !== null) {
    if (!Array.isArray(raw.headers)) {
      throw new RecordError(
        400,
        `Cannot deserialize value of type \`java.util.ArrayList<${HEADER_CLASS}>\` ` +
          `from ${jsonKind(raw.headers)}`,
      )
    }
    for (const h of raw.headers) {
      if (!isRecord(h) || typeof h.name !== 'string') {
        throw new RecordError(
          400,
          `Cannot construct instance of \`${HEADER_CLASS}\`, problem: Null name`,
        )
      }
      if (h.value === undefined || h.value === null) {
        headers.push({ key: h.name, value: null })
        continue
      }
      if (typeof h.value !== 'string') {
        throw new RecordError(
          400,
          `Cannot deserialize value of type \`byte[]\` from ${jsonKind(h.value)}`,
        )
      }
      const decoded = decodeJacksonBase64(h.value)
      if (typeof decoded === 'string') throw new RecordError(400, decoded)
      headers.push({ key: h.name, value: decoded })
    }
  }
  let timestamp: number | undefined
  if (raw.timestamp !== undefined && raw.timestamp !== null) {
    // Jackson's InstantDeserializer: ISO-8601 text, or a number of epoch *seconds*.
    const t = raw.timestamp
    const ms = typeof t === 'string' ? Date.parse(t) : typeof t === 'number' ? t * 1000 : Number.NaN
    if (!Number.isFinite(ms)) {
      throw new RecordError(
        400,
        `Cannot deserialize value of type \`java.time.Instant\` from ${jsonKind(t)}: ` +
          'Failed to deserialize java.time.Instant',
      )
    }
    timestamp = Math.trunc(ms)
  }
  const key = serialize(raw.key)
  const value = serialize(raw.value)
  if (partition !== null) {
    // ProduceAction: a negative partition_id is Errors.partitionNotFoundException (40402).
    if (partition < 0) throw new RecordError(40402, 'Partition not found.')
    // The Java producer refuses an unknown partition with a KafkaException (50002).
    if (partition >= partitions) {
      throw new RecordError(50002, invalidPartition(partition, partitions))
    }
  }
  return {
    record: {
      key: key.bytes,
      value: value.bytes,
      headers,
      ...(timestamp === undefined ? {} : { timestamp }),
    },
    partition,
    key: key.format,
    value: value.format,
  }
}

/** Runs one produce request once the pre-stream checks passed. */
function produce(ctx: DialectContext, topic: string, items: readonly StreamItem[]): ProduceOutcome {
  const fails = ctx.failIndexes(items.length)
  const reports: (ErrorResponse | Record<string, unknown>)[] = []
  let stored = 0
  let failed = 0
  let index = 0
  for (const item of items) {
    const i = index++
    if (!item.ok) {
      // A syntax error ends the stream (StreamingResponse#hasNext -> BadRequestException).
      reports.push({
        error_code: 400,
        message: `Bad Request: Error processing message: ${item.error}`,
      })
      failed++
      break
    }
    try {
      const partitions = ctx.store.partitionCount(topic)
      const r = readRecord(item.value, partitions)
      if (fails.has(i)) {
        // A retriable Kafka error (RetriableException -> KafkaExceptionMapper 50003).
        throw new RecordError(
          50003,
          'Messages are rejected since there are fewer in-sync replicas than required.',
        )
      }
      const keyBytes = r.record.key
      const partition = r.partition ?? ctx.store.choosePartition(topic, keyBytes)
      const m = ctx.store.append(topic, partition, r.record, 'confluent-v3')
      stored++
      // RecordMetadata reports -1 as the serialized size of a null key or value.
      const size = (b: Buffer | null) => (b === null ? -1 : b.length)
      reports.push({
        error_code: 200,
        cluster_id: ctx.clusterId,
        topic_name: topic,
        partition_id: m.partition,
        offset: m.offset,
        timestamp: isoInstant(m.timestamp),
        // Key/value reports are omitted (not null) when the request had no key/value.
        ...(r.key === null ? {} : { key: { type: r.key, size: size(r.record.key) } }),
        ...(r.value === null ? {} : { value: { type: r.value, size: size(r.record.value) } }),
      })
    } catch (e) {
      if (!(e instanceof RecordError)) throw e
      failed++
      reports.push({ error_code: e.code, message: e.message })
    }
  }
  const body = reports.map((r) => `${JSON.stringify(r)}\r\n`).join('')
  return {
    reply: { status: 200, headers: { 'content-type': 'application/json' }, body },
    stored,
    failed,
  }
}

const refuse = (reply: SinkReply): ProduceOutcome => ({ reply, stored: 0, failed: 1 })

/** The path's cluster id and topic when it is a v3 produce path. */
function match(segments: readonly string[]): { cluster: string; topic: string } | null {
  const rest = segments[0] === 'kafka' ? segments.slice(1) : segments
  const [v3, clusters, cluster, topics, topic, records, ...extra] = rest
  if (
    v3 === 'v3' &&
    clusters === 'clusters' &&
    topics === 'topics' &&
    records === 'records' &&
    cluster &&
    topic &&
    extra.length === 0
  ) {
    return { cluster, topic }
  }
  return null
}

/** The error JSON for a status, with the texts the openapi documents where it has one. */
function statusReply(status: number): SinkReply {
  switch (status) {
    case 401:
      return error(401, 40101, 'Authentication failed')
    case 403:
      return error(403, 40301, 'Request is not authorized')
    case 413:
      return error(
        413,
        413,
        'The request included a message larger than the maximum message size the server can ' +
          'accept.',
      )
    case 415:
      return error(415, 415, 'HTTP 415 Unsupported Media Type')
    default:
      return error(status, status, reason(status))
  }
}

/** The Confluent v3 dialect. */
export function createConfluentV3(): DialectModule {
  return {
    dialect: 'confluent-v3',

    route(req: SinkRequest) {
      const m = match(req.segments)
      if (!m || req.method !== 'POST') return null
      return {
        kind: 'produce',
        dialect: 'confluent-v3',
        topics: [m.topic],
        run: async (ctx) => {
          if (mediaType(req.headers['content-type']) !== 'application/json') {
            return refuse(statusReply(415))
          }
          const charset = /charset=([^;]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.trim()
          if (charset && !['utf-8', 'iso-8859-1'].includes(charset.toLowerCase())) {
            return refuse(
              error(
                400,
                400,
                'Unsupported charset in Content-Type header. Supports "UTF-8" and "ISO-8859-1".',
              ),
            )
          }
          // The cluster id is validated only in Confluent Cloud; the sink always checks it.
          if (m.cluster !== ctx.clusterId) {
            return refuse(error(404, 404, `Cluster ${m.cluster} cannot be found.`))
          }
          if (!ctx.store.topicExists(m.topic)) {
            return refuse(error(404, 40403, 'This server does not host this topic-partition.'))
          }
          if (req.body.length === 0) {
            return refuse(
              error(422, 422, 'Payload error. Request body is empty. Data is required.'),
            )
          }
          const text = req.body.toString(
            charset?.toLowerCase() === 'iso-8859-1' ? 'latin1' : 'utf8',
          )
          return produce(ctx, m.topic, [...splitConcatenatedJson(text)])
        },
      }
    },

    unauthorized: () => statusReply(401),

    statusReply: (status) => statusReply(status),
  }
}
