/**
 * Kafka REST v2 produce, `POST /topics/{topic}` (and `/topics/{topic}/partitions/{p}`): one
 * request shape, `{records: [{key?, value?, partition?}]}`, answered three different ways.
 *
 * - `confluent`: Confluent REST Proxy. confluentinc/kafka-rest @985d0e0
 *   resources/v2/ProduceToTopicAction.java + AbstractProduceAction.java (one offsets entry per
 *   record; failures carry partition/offset null and error_code 40101/40301/50003/50002),
 *   entities/v2/ProduceResponse.java (401/403 status when an entry has an auth error),
 *   entities/v2/Binary*ProduceRequest.java + EntityUtils.java (lenient base64), Versions.java.
 * - `redpanda`: Redpanda HTTP Proxy (pandaproxy). redpanda-data/redpanda
 *   src/v/pandaproxy/rest/handlers.cc post_topics_name, json/requests/produce.h (strict parser:
 *   only `records` and per record `partition`/`key`/`value`; answer serialised from the Kafka
 *   produce response, one entry per partition with the base offset and the Kafka error code),
 *   kafka/client/client.cc produce_records (keyless records get an empty key; unknown topic goes
 *   to partition 0), parsing/httpd.h (Content-Type/Accept checks), reply.h, error.cc, json/error.cc
 *   (422 "parse error at offset N"), rest/test/produce.cc (`{"partition":0,"error_code":3,
 *   "offset":-1}` for an unknown topic), auth_utils.h (401 wrong credentials, 403 none).
 * - `karapace`: Aiven's Karapace. Aiven-Open/karapace @3bbc1f8 src/karapace/kafka_rest_apis/
 *   __init__.py publish/serialize/validate_publish_request_format/produce_messages (allowed keys,
 *   falsy values become empty bytes, per-record `{error_code: 1|2, error}` and HTTP 422 when any
 *   failed, 404 40401 for an unknown topic), error_codes.py, authentication.py (401 without
 *   credentials, 403 when Kafka refuses them), src/karapace/rapu.py (415/400 texts, sorted keys,
 *   `application/vnd.kafka.json.v2+json` answers), core/utils.py json_encode (ensure_ascii).
 *
 * No flavor supports headers or timestamps in v2.
 */
import {
  decodeLenientBase64,
  decodePythonBase64,
  decodeStrictBase64,
  jacksonJson,
  pythonJson,
  rapidJson,
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
import type { V2Flavor } from '../types.ts'

const CONFLUENT_TYPE = 'application/vnd.kafka.v2+json'
const REDPANDA_TYPE = 'application/vnd.kafka.v2+json'
const KARAPACE_TYPE = 'application/vnd.kafka.json.v2+json'
/** rapu.py REST_CONTENT_TYPE_RE, anchored (the format group is the embedded format). */
const KARAPACE_CONTENT_TYPE = new RegExp(
  '^application/(?:vnd\\.kafka(?:\\.(avro|json|protobuf|binary|jsonschema))?(?:\\.v[12])?' +
    '\\+json|json|octet-stream)$',
)

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const refuse = (reply: SinkReply): ProduceOutcome => ({ reply, stored: 0, failed: 1 })

/** Python truthiness, which decides whether Karapace serialises a key/value at all. */
const pythonFalsy = (v: unknown): boolean =>
  v === null ||
  v === undefined ||
  v === false ||
  v === 0 ||
  v === '' ||
  (Array.isArray(v) && v.length === 0) ||
  (isRecord(v) && Object.keys(v).length === 0)

/** The embedded format named by a v2 Content-Type, or null. */
function embeddedFormat(contentType: string | undefined): string | null {
  const m = /^application\/vnd\.kafka\.(binary|json|avro|jsonschema|protobuf)\.v2\+json$/.exec(
    mediaType(contentType),
  )
  return m?.[1] ?? null
}

type Target = { topic: string; partition: number | null }

/** Parses the JSON body; a SinkReply is the flavor's refusal. */
function parseJson(
  req: SinkRequest,
  onError: (message: string, empty: boolean) => SinkReply,
): { ok: true; value: unknown } | SinkReply {
  const text = req.body.toString('utf8')
  if (text.trim() === '') return onError('Missing request JSON body', true)
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (e) {
    return onError(e instanceof Error ? e.message : String(e), false)
  }
}

/** Confluent REST Proxy v2. */
function confluent(ctx: DialectContext, req: SinkRequest, target: Target): ProduceOutcome {
  const reply = (status: number, body: unknown) => json(status, body, CONFLUENT_TYPE)
  const err = (status: number, code: number, message: string) =>
    refuse(reply(status, { error_code: code, message }))
  const format = embeddedFormat(req.headers['content-type'])
  if (format === null) return err(415, 415, 'HTTP 415 Unsupported Media Type')
  const parsed = parseJson(req, (message) =>
    // JsonParseExceptionMapper (rest-utils): 400 with Jackson's message.
    reply(400, { error_code: 400, message }),
  )
  if ('status' in parsed) return refuse(parsed)
  const body = parsed.value
  const kind =
    (format === 'binary' ? 'Binary' : 'Json') + (target.partition === null ? 'Topic' : 'Partition')
  const requestClass = `io.confluent.kafkarest.entities.v2.${kind}ProduceRequest`
  if (!isRecord(body)) return err(400, 400, `Cannot deserialize value of type \`${requestClass}\``)
  const topKeys = ['records', 'key_schema', 'key_schema_id', 'value_schema', 'value_schema_id']
  const recordKeys = target.partition === null ? ['key', 'value', 'partition'] : ['key', 'value']
  for (const k of Object.keys(body)) {
    if (!topKeys.includes(k)) {
      return err(
        400,
        400,
        `Unrecognized field "${k}" (class ${requestClass}), not marked as ignorable`,
      )
    }
  }
  if (!Array.isArray(body.records) || body.records.length === 0) {
    // @NotEmpty on `records`, reported by the constraint-violation mapper.
    return err(422, 422, 'records must not be empty')
  }
  if (format !== 'binary' && format !== 'json') {
    // Schema formats need Schema Registry, which the sink does not have.
    return err(422, 42206, 'Payload error. Schema Registry must be configured when using schemas.')
  }
  type Planned = { partition: number | null; key: Buffer | null; value: Buffer | null }
  const planned: Planned[] = []
  for (const r of body.records) {
    if (!isRecord(r))
      return err(400, 400, `Cannot deserialize value of type \`${requestClass}$Record\``)
    for (const k of Object.keys(r)) {
      if (!recordKeys.includes(k)) {
        return err(
          400,
          400,
          `Unrecognized field "${k}" (class ${requestClass}$Record), not marked as ignorable`,
        )
      }
    }
    const bytes = (field: 'key' | 'value'): Buffer | null | SinkReply => {
      const v = r[field]
      if (v === undefined || v === null) return null
      if (format === 'json') return Buffer.from(jacksonJson(v), 'utf8')
      if (typeof v !== 'string') {
        const shape = Array.isArray(v) ? 'Array' : typeof v === 'object' ? 'Object' : typeof v
        return reply(400, {
          error_code: 400,
          message: `Cannot deserialize value of type \`java.lang.String\` from ${shape} value`,
        })
      }
      return decodeLenientBase64(v)
    }
    const key = bytes('key')
    if (key !== null && !Buffer.isBuffer(key)) return refuse(key)
    const value = bytes('value')
    if (value !== null && !Buffer.isBuffer(value)) return refuse(value)
    let partition = target.partition
    if (r.partition !== undefined && r.partition !== null) {
      if (!Number.isInteger(r.partition))
        return err(400, 400, 'Cannot deserialize value of type `java.lang.Integer`')
      if ((r.partition as number) < 0) {
        return err(422, 422, 'records[].partition must be greater than or equal to 0')
      }
      partition = r.partition as number
    }
    planned.push({ partition, key, value })
  }
  const exists = ctx.store.topicExists(target.topic)
  const count = ctx.store.partitionCount(target.topic)
  const fails = ctx.failIndexes(planned.length)
  const offsets: Record<string, unknown>[] = []
  let stored = 0
  let failed = 0
  for (const [i, p] of planned.entries()) {
    if (!exists) {
      // The Java producer waits max.block.ms (60 s) for metadata of a missing topic, then fails
      // with a retriable TimeoutException -> 50003. The sink answers at once.
      offsets.push({
        partition: null,
        offset: null,
        error_code: 50003,
        error: `Topic ${target.topic} not present in metadata after 60000 ms.`,
      })
      failed++
      continue
    }
    if (p.partition !== null && p.partition >= count) {
      // KafkaProducer#send throws this synchronously: it escapes the action as HTTP 500 after
      // the records before it were already sent.
      return {
        reply: reply(500, {
          error_code: 50002,
          message: invalidPartition(p.partition, count),
        }),
        stored,
        failed: failed + 1,
      }
    }
    if (fails.has(i)) {
      offsets.push({
        partition: null,
        offset: null,
        error_code: 50003,
        error: 'Messages are rejected since there are fewer in-sync replicas than required.',
      })
      failed++
      continue
    }
    const partition = p.partition ?? ctx.store.choosePartition(target.topic, p.key)
    const m = ctx.store.append(
      target.topic,
      partition,
      { key: p.key, value: p.value, headers: [] },
      'kafka-rest-v2',
    )
    stored++
    offsets.push({ partition: m.partition, offset: m.offset, error_code: null, error: null })
  }
  return {
    reply: reply(200, { offsets, key_schema_id: null, value_schema_id: null }),
    stored,
    failed,
  }
}

/** Redpanda HTTP Proxy. */
function redpanda(ctx: DialectContext, req: SinkRequest, target: Target): ProduceOutcome {
  const reply = (status: number, body: unknown) => json(status, body, REDPANDA_TYPE)
  const err = (status: number, code: number, message: string) =>
    refuse(reply(status, { error_code: code, message }))
  if (target.partition !== null) return err(404, 404, 'Not found')
  // parse::content_type_header / accept_header split the header on ",; " and look for an exact
  // name: only binary.v2 and json.v2 bodies; Accept must be empty, */* or vnd.kafka.v2+json.
  const tokens = (h: string | undefined) => (h ?? '').split(/[,; ]+/).filter((t) => t !== '')
  const contentTypes = tokens(req.headers['content-type'])
  const format = contentTypes.includes('application/vnd.kafka.binary.v2+json')
    ? 'binary'
    : contentTypes.includes('application/vnd.kafka.json.v2+json')
      ? 'json'
      : null
  if (format === null) return err(415, 415, 'HTTP 415 Unsupported Media Type')
  const accept = tokens(typeof req.headers.accept === 'string' ? req.headers.accept : undefined)
  const acceptable = accept.length === 0 || accept.some((a) => a === '*/*' || a === REDPANDA_TYPE)
  if (!acceptable) return err(406, 406, 'HTTP 406 Not Acceptable')
  // rjson_parse failures are "parse error at offset N" (422); the offset here is best effort.
  const parseError = (offset: number) => err(422, 422, `parse error at offset ${offset}`)
  const text = req.body.toString('utf8')
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (e) {
    const at = /position (\d+)/.exec(e instanceof Error ? e.message : '')
    return parseError(at?.[1] ? Number(at[1]) : text.length)
  }
  const fail = () => parseError(text.length)
  if (
    !isRecord(body) ||
    Object.keys(body).some((k) => k !== 'records') ||
    !Array.isArray(body.records)
  ) {
    return fail()
  }
  type Planned = { partition: number | null; key: Buffer; keyed: boolean; value: Buffer | null }
  const planned: Planned[] = []
  for (const r of body.records) {
    if (!isRecord(r) || Object.keys(r).some((k) => !['partition', 'key', 'value'].includes(k))) {
      return fail()
    }
    let partition: number | null = null
    if ('partition' in r) {
      if (typeof r.partition !== 'number' || !Number.isInteger(r.partition)) return fail()
      partition = r.partition
    }
    const bytes = (field: 'key' | 'value'): Buffer | null | 'absent' => {
      if (!(field in r)) return 'absent'
      const v = r[field]
      // json.v2 re-writes the value token by token, so a JSON null is stored as the text `null`.
      if (format === 'json') return Buffer.from(rapidJson(v), 'utf8')
      // binary.v2 accepts only base64 strings (a null is a parse error).
      return typeof v === 'string' ? decodeStrictBase64(v) : null
    }
    const key = bytes('key')
    const value = bytes('value')
    if (key === null || value === null) return fail()
    // produce_records adds records with `key.value_or(iobuf{})`: no key means an empty key.
    planned.push({
      partition,
      key: key === 'absent' ? Buffer.alloc(0) : key,
      keyed: key !== 'absent',
      value: value === 'absent' ? null : value,
    })
  }
  const exists = ctx.store.topicExists(target.topic)
  const count = ctx.store.partitionCount(target.topic)
  const fails = ctx.failIndexes(planned.length)
  // Group by partition in order of first appearance; each partition is one record batch.
  const batches = new Map<number, { records: Planned[]; indexes: number[] }>()
  for (const [i, p] of planned.entries()) {
    // Unknown topic: the partitioner fails and the client assumes partition 0.
    const partition =
      p.partition ?? (exists ? ctx.store.choosePartition(target.topic, p.keyed ? p.key : null) : 0)
    const batch = batches.get(partition) ?? { records: [], indexes: [] }
    batch.records.push(p)
    batch.indexes.push(i)
    batches.set(partition, batch)
  }
  const offsets: Record<string, unknown>[] = []
  let stored = 0
  let failed = 0
  for (const [partition, batch] of batches) {
    if (!exists || partition < 0 || partition >= count) {
      // Kafka error code 3, UNKNOWN_TOPIC_OR_PARTITION, inside a 200.
      offsets.push({ partition, error_code: 3, offset: -1 })
      failed += batch.records.length
      continue
    }
    if (batch.indexes.some((i) => fails.has(i))) {
      // A batch fails as a whole; 19 is NOT_ENOUGH_REPLICAS.
      offsets.push({ partition, error_code: 19, offset: -1 })
      failed += batch.records.length
      continue
    }
    const first = ctx.store.endOffset(target.topic, partition)
    for (const p of batch.records) {
      ctx.store.append(
        target.topic,
        partition,
        { key: p.key, value: p.value, headers: [] },
        'kafka-rest-v2',
      )
      stored++
    }
    offsets.push({ partition, offset: first })
  }
  return { reply: reply(200, { offsets }), stored, failed }
}

/** Karapace. */
function karapace(ctx: DialectContext, req: SinkRequest, target: Target): ProduceOutcome {
  // rapu.py writes dict answers with json_encode(sort_keys=True).
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : isRecord(v)
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted(v[k])]),
          )
        : v
  const reply = (status: number, body: unknown) => json(status, sorted(body), KARAPACE_TYPE)
  const err = (status: number, code: number, message: string) =>
    refuse(reply(status, { error_code: code, message }))
  const text = (status: number, message: string) =>
    refuse({ status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: message })
  const parsed = parseJson(
    req,
    (_message, empty) =>
      text(400, empty ? 'Missing request JSON body' : 'Invalid request JSON body').reply,
  )
  if ('status' in parsed) return refuse(parsed)
  const data = parsed.value
  if (!isRecord(data)) return refuse(json(400, { error_code: 400, message: 'Malformed request' }))
  // REST_CONTENT_TYPE_RE: vnd.kafka[.format][.v1|.v2]+json, application/json or octet-stream;
  // without an embedded format the body is binary.
  const ct = mediaType(req.headers['content-type'] || KARAPACE_TYPE)
  const m = KARAPACE_CONTENT_TYPE.exec(ct)
  if (!m) return err(415, 415, 'HTTP 415 Unsupported Media Type')
  const format = m[1] ?? 'binary'
  if (!ctx.store.topicExists(target.topic))
    return err(404, 40401, `Topic ${target.topic} not found`)
  const count = ctx.store.partitionCount(target.topic)
  if (target.partition !== null && (target.partition < 0 || target.partition >= count)) {
    return err(404, 40402, `Partition ${target.partition} not found`)
  }
  const publishKeys = ['records', 'value_schema', 'value_schema_id', 'key_schema', 'key_schema_id']
  const records = data.records
  if (
    !('records' in data) ||
    Object.keys(data).some((k) => !publishKeys.includes(k)) ||
    pythonFalsy(records)
  ) {
    return err(422, 422, 'Invalid request format')
  }
  if (!Array.isArray(records)) return err(400, 400, "'records' must be an array")
  for (const r of records) {
    if (!isRecord(r)) return err(400, 400, 'Produce record must be an object')
    if (Object.keys(r).some((k) => !['key', 'value', 'partition'].includes(k))) {
      return err(422, 422, 'Invalid request format')
    }
  }
  if (format !== 'binary' && format !== 'json') {
    return err(
      422,
      42202,
      'Request includes values and uses a format that requires schemas but does not include the ' +
        'value_schema or value_schema_id fields',
    )
  }
  const serialize = (v: unknown): Buffer | SinkReply => {
    // serialize(): `if not obj: return b""`.
    if (pythonFalsy(v)) return Buffer.alloc(0)
    if (format === 'json') return Buffer.from(pythonJson(v), 'utf8')
    const decoded = typeof v === 'string' ? decodePythonBase64(v) : null
    if (decoded) return decoded
    // Two spaces before "is", as in the source.
    return reply(400, {
      error_code: 400,
      message: `data=${JSON.stringify(v)}  is not a base64 string.`,
    })
  }
  type Planned = { partition: number | null; key: Buffer | null; value: Buffer }
  const planned: Planned[] = []
  for (const r of records as Record<string, unknown>[]) {
    const key = r.key === undefined || r.key === null ? null : serialize(r.key)
    if (key !== null && !Buffer.isBuffer(key)) return refuse(key)
    const value = serialize(r.value)
    if (!Buffer.isBuffer(value)) return refuse(value)
    let partition = target.partition
    if (r.partition !== undefined && r.partition !== null) {
      // convert_to_int accepts integers and numeric strings.
      const n = typeof r.partition === 'string' ? Number(r.partition) : r.partition
      if (typeof n !== 'number' || !Number.isInteger(n)) {
        return err(422, 42205, `partition is not a valid int: ${String(r.partition)}`)
      }
      partition = n
    }
    planned.push({ partition, key, value })
  }
  const fails = ctx.failIndexes(planned.length)
  const offsets: Record<string, unknown>[] = []
  let stored = 0
  let failed = 0
  for (const [i, p] of planned.entries()) {
    if (p.partition !== null && (p.partition < 0 || p.partition >= count)) {
      // The producer refuses it locally: a non-retriable failure (error_code 1).
      offsets.push({
        error_code: 1,
        error: 'KafkaError{code=_UNKNOWN_PARTITION,val=-190,str="Local: Unknown partition"}',
      })
      failed++
      continue
    }
    if (fails.has(i)) {
      // A retriable broker error (BrokerResponseError with retriable=True) is error_code 2.
      offsets.push({
        error_code: 2,
        error: 'Messages are rejected since there are fewer in-sync replicas than required.',
      })
      failed++
      continue
    }
    const partition = p.partition ?? ctx.store.choosePartition(target.topic, p.key)
    const m = ctx.store.append(
      target.topic,
      partition,
      { key: p.key, value: p.value, headers: [] },
      'kafka-rest-v2',
    )
    stored++
    offsets.push({ offset: m.offset, partition: m.partition })
  }
  const body = {
    key_schema_id: data.key_schema_id ?? null,
    offsets,
    value_schema_id: data.value_schema_id ?? null,
  }
  // publish(): any record with an "error" turns the whole answer into 422.
  return { reply: reply(failed > 0 ? 422 : 200, body), stored, failed }
}

/** The path's topic (and partition) when it is a v2 produce path. */
function match(
  segments: readonly string[],
): Target | { topic: string; badPartition: string } | null {
  const [head, topic, partitions, p, ...extra] = segments
  if (head !== 'topics' || !topic || extra.length > 0) return null
  if (partitions === undefined) return { topic, partition: null }
  if (partitions !== 'partitions' || p === undefined) return null
  return /^\d+$/.test(p) ? { topic, partition: Number(p) } : { topic, badPartition: p }
}

/** Error JSON for a status (status faults, body too large), in the flavor's shape. */
function statusReply(status: number, flavor: V2Flavor): SinkReply {
  const type = flavor === 'karapace' ? KARAPACE_TYPE : CONFLUENT_TYPE
  const message =
    flavor === 'karapace' && status === 413 ? 'HTTP Request Entity Too Large' : reason(status)
  return json(status, { error_code: status, message }, type)
}

/** The Kafka REST v2 dialect in its three flavors. */
export function createKafkaRestV2(): DialectModule {
  return {
    dialect: 'kafka-rest-v2',

    route(req: SinkRequest) {
      const target = match(req.segments)
      if (!target || req.method !== 'POST') return null
      return {
        kind: 'produce',
        dialect: 'kafka-rest-v2',
        topics: [target.topic],
        run: async (ctx) => {
          if ('badPartition' in target) {
            return refuse(statusReply(404, ctx.v2Flavor))
          }
          if (ctx.v2Flavor === 'redpanda') return redpanda(ctx, req, target)
          if (ctx.v2Flavor === 'karapace') return karapace(ctx, req, target)
          return confluent(ctx, req, target)
        },
      }
    },

    unauthorized(credentials, flavor) {
      if (flavor === 'karapace') {
        // authentication.py raise_unauthorized() without credentials; with credentials Kafka
        // itself refuses the SASL login and get_user_proxy answers 403.
        return credentials === 'missing'
          ? {
              status: 401,
              headers: {
                'content-type': 'application/json',
                'www-authenticate': 'Basic realm="Karapace REST Proxy"',
              },
              body: JSON.stringify({ message: 'Unauthorized' }),
            }
          : json(403, { message: 'Forbidden' })
      }
      if (flavor === 'redpanda') {
        // auth_utils.h: 401 for wrong credentials, 403 when none are given.
        return credentials === 'missing'
          ? json(403, { error_code: 40301, message: 'kafka_authorization_error' }, REDPANDA_TYPE)
          : json(401, { error_code: 40101, message: 'kafka_authentication_error' }, REDPANDA_TYPE)
      }
      return json(401, { error_code: 40101, message: 'Authentication failed' }, CONFLUENT_TYPE)
    },

    statusReply,
  }
}
