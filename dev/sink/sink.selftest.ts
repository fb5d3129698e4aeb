/**
 * Self-test of the Kafka REST sink, run by Node (not workerd):
 *
 *   node --test dev/sink/sink.selftest.ts
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { Kafka } from '@upstash/kafka'
import { KAFKA_MURMUR2_VECTORS } from '../../test/fixtures/murmur2-vectors.ts'
import {
  decodeGuavaBase64,
  decodeJacksonBase64,
  jacksonJson,
  pythonJson,
  rapidJson,
} from './codec.ts'
import type { RunningSink, SinkOptions } from './sink.ts'
import { startSink } from './sink.ts'
import { murmur2, toPositive } from './store.ts'

const AUTH = `Basic ${Buffer.from('dev:dev-password').toString('base64')}`
const V2_JSON = 'application/vnd.kafka.json.v2+json'
const V2_BINARY = 'application/vnd.kafka.binary.v2+json'

type Answer = { status: number; type: string | null; text: string; json: unknown }

/** POSTs a body (objects JSON-encoded) with dev credentials unless told otherwise. */
async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  init: RequestInit = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
  const text = await res.text()
  let parsed: unknown = null
  try {
    parsed = JSON.parse(text)
  } catch {
    // Not JSON (HTML pages, Concatenated JSON): callers read `text`.
  }
  return { status: res.status, type: res.headers.get('content-type'), text, json: parsed }
}

/** The reports of a Confluent v3 answer (Concatenated JSON, one per line). */
const reports = (text: string) =>
  text
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)

const v3Url = (sink: RunningSink, topic: string, base = '/kafka/v3', cluster = 'local-cluster') =>
  `${sink.url}${base}/clusters/${cluster}/topics/${encodeURIComponent(topic)}/records`

/** Starts a sink for a describe block and closes it afterwards. */
function useSink(options: SinkOptions = {}): () => RunningSink {
  let sink: RunningSink | null = null
  before(async () => {
    sink = await startSink({ port: 0, ...options })
  })
  after(async () => {
    await sink?.close()
  })
  return () => {
    if (!sink) throw new Error('sink not started')
    return sink
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const partitionOf = (key: string, n = 3) => toPositive(murmur2(Buffer.from(key, 'utf8'))) % n

describe('codecs and partitioner', () => {
  it('murmur2 matches the vectors of Kafka UtilsTest#testMurmur2', () => {
    for (const [s, want] of KAFKA_MURMUR2_VECTORS) assert.equal(murmur2(Buffer.from(s)), want, s)
  })

  it('base64 variants accept and refuse like their originals', () => {
    assert.equal(decodeGuavaBase64('fooba'), null) // kafka-rest's own "invalid base64" fixture
    assert.equal(decodeGuavaBase64('Zm9vYmE')?.toString(), 'fooba') // padding optional
    assert.match(String(decodeJacksonBase64('')), /expects padding/)
    assert.match(String(decodeJacksonBase64('aGk')), /expects padding/)
    assert.match(String(decodeJacksonBase64('a!k=')), /Illegal character '!'/)
    assert.equal((decodeJacksonBase64('aGk=') as Buffer).toString(), 'hi')
  })

  it('JSON re-serialisers: Python escapes non-ASCII, rapidjson upper-cases control escapes', () => {
    assert.equal(pythonJson({ a: 'é😀' }), '{"a":"\\u00e9\\ud83d\\ude00"}')
    assert.equal(rapidJson({ a: '\u001f\\u001f' }), '{"a":"\\u001F\\\\u001f"}')
    // Jackson too (WRITE_HEX_UPPER_CASE); short escapes and raw UTF-8 stay as JSON.stringify has them.
    assert.equal(jacksonJson({ a: '\u001f\\u001f\né/' }), '{"a":"\\u001F\\\\u001f\\né/"}')
  })
})

describe('Upstash dialect through the real @upstash/kafka client', () => {
  const sink = useSink()
  const kafka = () => new Kafka({ url: sink().url, username: 'dev', password: 'dev-password' })

  it('produce() and produceMany() land with exact bytes; fetch() reads them back', async () => {
    const p = kafka().producer()
    const one = await p.produce(
      'up',
      { hello: 'wörld' },
      {
        key: 'acme/support-bot',
        headers: [{ key: 'signature', value: 'abcd' }],
      },
    )
    assert.equal(one.topic, 'up')
    assert.equal(one.partition, partitionOf('acme/support-bot'))
    assert.equal(one.offset, 0)
    const many = await p.produceMany([
      { topic: 'up', value: 'a', key: 'acme/support-bot' },
      { topic: 'up', value: 'b', key: 'acme/support-bot' },
      { topic: 'up2', value: 'c' },
    ])
    assert.deepEqual(
      many.map((m) => [m.topic, m.partition, m.offset]),
      [
        ['up', one.partition, 1],
        ['up', one.partition, 2],
        ['up2', 0, 0],
      ],
    )
    const [stored] = sink().messages('up')
    assert.equal(stored?.value, '{"hello":"wörld"}')
    assert.equal(stored?.key, 'acme/support-bot')
    assert.deepEqual(stored?.headers, [
      { key: 'signature', value: 'abcd', valueBase64: b64('abcd') },
    ])
    assert.equal(stored?.dialect, 'upstash')

    const found = await kafka()
      .consumer()
      .fetch({ topic: 'up', partition: one.partition, offset: 1 })
    assert.deepEqual(
      found.map((m) => m.value),
      ['a', 'b'],
    )
    const first = await kafka()
      .consumer()
      .fetch({ topic: 'up', partition: one.partition, offset: 0 })
    assert.deepEqual(first[0]?.headers, [{ key: 'signature', value: 'abcd' }])
  })

  it('consume() follows the group offset (earliest, auto-commit) and long-polls', async () => {
    const c = kafka().consumer()
    const req = {
      consumerGroupId: 'g1',
      instanceId: 'i1',
      topics: ['cons'],
      autoOffsetReset: 'earliest' as const,
      timeout: 200,
    }
    const p = kafka().producer()
    await p.produceMany([
      { topic: 'cons', value: 'x1' },
      { topic: 'cons', value: 'x2' },
    ])
    const got = await c.consume(req)
    assert.deepEqual(got.map((m) => m.value).sort(), ['x1', 'x2'])
    const none = await c.consume(req)
    assert.deepEqual(none, [])
    setTimeout(() => void p.produce('cons', 'x3'), 50)
    const later = await c.consume({ ...req, timeout: 2000 })
    assert.deepEqual(
      later.map((m) => m.value),
      ['x3'],
    )
  })

  it('a new group with the default `latest` starts at the end', async () => {
    const c = kafka().consumer()
    const req = { consumerGroupId: 'g2', instanceId: 'i1', topics: ['cons'], timeout: 100 }
    assert.deepEqual(await c.consume(req), [])
    await kafka().producer().produce('cons', 'x4')
    assert.deepEqual(
      (await c.consume(req)).map((m) => m.value),
      ['x4'],
    )
  })

  it('GET /produce/:topic/:message answers one object; errors are {error, status}', async () => {
    const res = await fetch(`${sink().url}/produce/up3/hi%20there?key=k`, {
      headers: { authorization: AUTH },
    })
    const body = (await res.json()) as Record<string, unknown>
    assert.equal(body.topic, 'up3')
    assert.equal(sink().messages('up3')[0]?.value, 'hi there')
    const bad = await post(`${sink().url}/produce`, [{ topic: 'up3' }])
    assert.equal(bad.status, 400)
    assert.deepEqual(Object.keys(bad.json as object), ['error', 'status'])
    const auth = await post(`${sink().url}/produce`, [{ topic: 'up3', value: 'v' }], {
      authorization: `Basic ${b64('dev:nope')}`,
    })
    assert.deepEqual(auth.json, { error: 'Unauthorized', status: 401 })
    assert.equal(auth.status, 401)
    assert.equal(sink().messages('up3').length, 1)
  })
})

describe('Confluent v3 dialect', () => {
  const sink = useSink()

  it('multi-record Concatenated JSON: STRING key, JSON value, header; stored bytes', async () => {
    const rec = (i: number) => ({
      key: { type: 'STRING', data: 'acme/support-bot' },
      // Spaces and a non-ASCII character: stored as compact JSON with raw UTF-8.
      value: {
        type: 'JSON',
        data: { project_id: 'acme/support-bot', call_ids: [`c${i}`], n: null, é: 'ü' },
      },
      headers: [{ name: 'content-type', value: b64('application/json') }],
    })
    const str = { value: { type: 'JSON', data: 'just a string' } }
    // Pretty-printed, newline-separated and back-to-back objects are all Concatenated JSON.
    const body = `${JSON.stringify(rec(1), null, 2)}\n${JSON.stringify(rec(2))}${JSON.stringify(str)}`
    const res = await post(v3Url(sink(), 'v3t'), body)
    assert.equal(res.status, 200)
    assert.equal(res.type, 'application/json')
    const r = reports(res.text)
    assert.equal(r.length, 3)
    const p = partitionOf('acme/support-bot')
    assert.deepEqual(r[0], {
      error_code: 200,
      cluster_id: 'local-cluster',
      topic_name: 'v3t',
      partition_id: p,
      offset: 0,
      timestamp: r[0]?.timestamp,
      key: { type: 'STRING', size: 16 },
      value: {
        type: 'JSON',
        size: Buffer.byteLength(
          '{"project_id":"acme/support-bot","call_ids":["c1"],"n":null,"é":"ü"}',
        ),
      },
    })
    assert.match(String(r[0]?.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/)
    assert.equal(r[1]?.offset, 1)
    assert.equal('key' in (r[2] ?? {}), false, 'no key in the request: no key in the report')
    const [m1, , m3] = sink().messages('v3t')
    assert.equal(m1?.key, 'acme/support-bot')
    const compact = '{"project_id":"acme/support-bot","call_ids":["c1"],"n":null,"é":"ü"}'
    assert.equal(m1?.value, compact)
    assert.equal(Buffer.from(m1?.valueBase64 ?? '', 'base64').toString('utf8'), m1?.value)
    assert.deepEqual(m1?.headers, [
      { key: 'content-type', value: 'application/json', valueBase64: b64('application/json') },
    ])
    // Jackson serialises a JSON string node with its quotes.
    assert.equal(m3?.value, '"just a string"')
    assert.equal(m3?.key, null)
  })

  it('per-record failures come inside the 200 body; the other records are stored', async () => {
    const body = [
      { value: { type: 'STRING', data: 'ok-1' } },
      { value: { type: 'BINARY', data: 'fooba' } },
      {
        value: { type: 'STRING', data: 'bad header' },
        headers: [{ name: 'h', value: 'not base64!' }],
      },
      { value: { type: 'BINARY', data: b64('ok-2') }, partition_id: 2 },
      { value: { type: 'STRING', data: 'p' }, partition_id: 9 },
      { value: { data: 'needs a schema' } },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n')
    const res = await post(v3Url(sink(), 'v3f', '/v3'), body)
    assert.equal(res.status, 200)
    const r = reports(res.text)
    assert.deepEqual(
      r.map((x) => x.error_code),
      [200, 400, 400, 200, 50002, 42206],
    )
    assert.equal(r[1]?.message, 'Bad Request: data="fooba" is not a valid base64 string.')
    assert.match(String(r[2]?.message), /^Cannot deserialize value of type `byte\[\]` from String/)
    assert.equal(r[3]?.partition_id, 2)
    assert.deepEqual(
      sink()
        .messages('v3f')
        .map((m) => m.value),
      ['ok-1', 'ok-2'],
    )
  })

  it('a syntax error ends the stream with a 400 report', async () => {
    const res = await post(
      v3Url(sink(), 'v3s'),
      '{"value":{"type":"STRING","data":"a"}} {"value": nope}',
    )
    const r = reports(res.text)
    assert.deepEqual(
      r.map((x) => x.error_code),
      [200, 400],
    )
    assert.match(String(r[1]?.message), /^Bad Request: Error processing message: /)
  })

  it('pre-stream errors: 401, 404 cluster, 415, 422 empty body, 413', async () => {
    const url = v3Url(sink(), 'v3e')
    const one = JSON.stringify({ value: { type: 'STRING', data: 'x' } })
    const auth = await post(url, one, { authorization: `Basic ${b64('dev:wrong')}` })
    assert.deepEqual(
      [auth.status, auth.json],
      [401, { error_code: 40101, message: 'Authentication failed' }],
    )
    const none = await post(url, one, { authorization: '' })
    assert.equal(none.status, 401)
    const cluster = await post(v3Url(sink(), 'v3e', '/kafka/v3', 'lkc-other'), one)
    assert.deepEqual(
      [cluster.status, cluster.json],
      [404, { error_code: 404, message: 'Cluster lkc-other cannot be found.' }],
    )
    const media = await post(url, one, { 'content-type': 'text/plain' })
    assert.deepEqual(
      [media.status, media.json],
      [415, { error_code: 415, message: 'HTTP 415 Unsupported Media Type' }],
    )
    const empty = await post(url, '')
    assert.deepEqual(
      [empty.status, empty.json],
      [
        422,
        { error_code: 422, message: 'Payload error. Request body is empty. Data is required.' },
      ],
    )
    assert.equal(sink().messages('v3e').length, 0)
  })

  it('body over maxBodyBytes: 413 in the v3 shape', async () => {
    const small = await startSink({ port: 0, maxBodyBytes: 64 })
    try {
      const big = JSON.stringify({ value: { type: 'STRING', data: 'x'.repeat(100) } })
      const res = await post(v3Url(small, 't'), big)
      assert.equal(res.status, 413)
      assert.equal((res.json as { error_code: number }).error_code, 413)
    } finally {
      await small.close()
    }
  })
})

describe('unknown topics (autoCreateTopics: false)', () => {
  const sink = useSink({ autoCreateTopics: false, topics: ['known'] })

  it('each dialect refuses its own way', async () => {
    const v3 = await post(
      v3Url(sink(), 'nope'),
      JSON.stringify({ value: { type: 'STRING', data: 'x' } }),
    )
    assert.deepEqual(
      [v3.status, v3.json],
      [404, { error_code: 40403, message: 'This server does not host this topic-partition.' }],
    )
    const up = await post(`${sink().url}/produce`, [{ topic: 'nope', value: 'x' }])
    assert.equal(up.status, 400)
    const body = { records: [{ value: { a: 1 } }] }
    sink().setV2Flavor('confluent')
    const confluent = await post(`${sink().url}/topics/nope`, body, { 'content-type': V2_JSON })
    assert.equal(confluent.status, 200)
    assert.deepEqual((confluent.json as { offsets: unknown[] }).offsets[0], {
      partition: null,
      offset: null,
      error_code: 50003,
      error: 'Topic nope not present in metadata after 60000 ms.',
    })
    sink().setV2Flavor('redpanda')
    const redpanda = await post(`${sink().url}/topics/nope`, body, { 'content-type': V2_JSON })
    assert.equal(redpanda.text, '{"offsets":[{"partition":0,"error_code":3,"offset":-1}]}')
    sink().setV2Flavor('karapace')
    const karapace = await post(`${sink().url}/topics/nope`, body, { 'content-type': V2_JSON })
    assert.deepEqual(
      [karapace.status, karapace.json],
      [404, { error_code: 40401, message: 'Topic nope not found' }],
    )
    const ok = await post(`${sink().url}/topics/known`, body, { 'content-type': V2_JSON })
    assert.equal(ok.status, 200)
    assert.equal(sink().messages().length, 1)
  })
})

describe('Kafka REST v2 flavors', () => {
  const sink = useSink()
  // Three records: two share a key (same partition), one has another key.
  const body = {
    records: [
      { key: 'k1', value: { n: 1, s: 'é' } },
      { key: 'k1', value: { n: 2 } },
      { key: 'k2', value: [1, 2] },
    ],
  }

  it('confluent: one offsets entry per record, vnd.kafka.v2+json, JSON bytes', async () => {
    sink().setV2Flavor('confluent')
    const res = await post(`${sink().url}/topics/v2c`, body, { 'content-type': V2_JSON })
    assert.equal(res.status, 200)
    assert.equal(res.type, 'application/vnd.kafka.v2+json')
    const p1 = partitionOf('"k1"')
    assert.deepEqual(res.json, {
      offsets: [
        { partition: p1, offset: 0, error_code: null, error: null },
        { partition: p1, offset: 1, error_code: null, error: null },
        {
          partition: partitionOf('"k2"'),
          offset: partitionOf('"k2"') === p1 ? 2 : 0,
          error_code: null,
          error: null,
        },
      ],
      key_schema_id: null,
      value_schema_id: null,
    })
    const [m] = sink().messages('v2c')
    // json.v2 keys are JSON too: the key "k1" is stored with its quotes.
    assert.equal(m?.key, '"k1"')
    assert.equal(m?.value, '{"n":1,"s":"é"}')
    assert.equal(m?.dialect, 'kafka-rest-v2')
    const bin = await post(
      `${sink().url}/topics/v2c`,
      { records: [{ value: b64('raw bytes') }] },
      { 'content-type': V2_BINARY },
    )
    assert.equal(bin.status, 200)
    assert.equal(sink().messages('v2c')[3]?.value, 'raw bytes')
    const media = await post(`${sink().url}/topics/v2c`, body)
    assert.equal(media.status, 415)
  })

  it('redpanda: one entry per partition with its base offset; strict record keys', async () => {
    sink().setV2Flavor('redpanda')
    const res = await post(`${sink().url}/topics/v2r`, body, { 'content-type': V2_JSON })
    assert.equal(res.status, 200)
    const p1 = partitionOf('"k1"')
    const p2 = partitionOf('"k2"')
    const want =
      p1 === p2
        ? [{ partition: p1, offset: 0 }]
        : [
            { partition: p1, offset: 0 },
            { partition: p2, offset: 0 },
          ]
    assert.deepEqual(res.json, { offsets: want })
    const again = await post(
      `${sink().url}/topics/v2r`,
      { records: [{ value: 1, partition: p1 }] },
      { 'content-type': V2_JSON },
    )
    assert.deepEqual(again.json, { offsets: [{ partition: p1, offset: 2 }] })
    const strict = await post(
      `${sink().url}/topics/v2r`,
      { records: [{ value: 1, timestamp: 5 }] },
      { 'content-type': V2_JSON },
    )
    assert.equal(strict.status, 422)
    assert.match(
      String((strict.json as { message: string }).message),
      /^parse error at offset \d+$/,
    )
    const accept = await post(`${sink().url}/topics/v2r`, body, {
      'content-type': V2_JSON,
      accept: 'application/json',
    })
    assert.equal(accept.status, 406)
    // A keyless binary record gets an empty (not null) key.
    await post(
      `${sink().url}/topics/v2r`,
      { records: [{ value: b64('v') }] },
      { 'content-type': V2_BINARY },
    )
    assert.equal(sink().messages('v2r').at(-1)?.key, '')
  })

  it('karapace: a failed record makes the answer 422; json.v2 bytes are ASCII-escaped', async () => {
    sink().setV2Flavor('karapace')
    const ok = await post(`${sink().url}/topics/v2k`, body, { 'content-type': V2_JSON })
    assert.equal(ok.status, 200)
    assert.equal(ok.type, 'application/vnd.kafka.json.v2+json')
    assert.deepEqual((ok.json as { offsets: unknown[] }).offsets[0], {
      offset: 0,
      partition: partitionOf('"k1"'),
    })
    assert.equal(sink().messages('v2k')[0]?.value, '{"n":1,"s":"\\u00e9"}')
    const bad = await post(
      `${sink().url}/topics/v2k`,
      { records: [{ value: { a: 1 } }, { value: { a: 2 }, partition: 99 }] },
      { 'content-type': V2_JSON },
    )
    assert.equal(bad.status, 422)
    const offsets = (bad.json as { offsets: Record<string, unknown>[] }).offsets
    assert.equal(offsets[1]?.error_code, 1)
    assert.equal(sink().messages('v2k').length, 4, 'the good record of the 422 request is stored')
    const format = await post(
      `${sink().url}/topics/v2k`,
      { records: [], extra: 1 },
      { 'content-type': V2_JSON },
    )
    assert.deepEqual(
      [format.status, format.json],
      [422, { error_code: 422, message: 'Invalid request format' }],
    )
    const missing = await post(`${sink().url}/topics/v2k`, body, {
      'content-type': V2_JSON,
      authorization: '',
    })
    assert.deepEqual([missing.status, missing.json], [401, { message: 'Unauthorized' }])
    const wrong = await post(`${sink().url}/topics/v2k`, body, {
      'content-type': V2_JSON,
      authorization: `Basic ${b64('dev:x')}`,
    })
    assert.deepEqual([wrong.status, wrong.json], [403, { message: 'Forbidden' }])
  })
})

describe('per-request v2 flavor: /flavor/<name> path prefix', () => {
  const sink = useSink({ v2Flavor: 'confluent' })
  const body = { records: [{ key: b64('k'), value: b64('v') }] }
  const v2 = (prefix: string, topic: string, headers: Record<string, string> = {}) =>
    post(`${sink().url}${prefix}/topics/${topic}`, body, { 'content-type': V2_BINARY, ...headers })

  it('each prefix answers as its flavor, in parallel, without touching the sink setting', async () => {
    const [plain, redpanda, karapace, confluent] = await Promise.all([
      v2('', 'pf'),
      v2('/flavor/redpanda', 'pf'),
      v2('/flavor/karapace', 'pf'),
      v2('/flavor/confluent', 'pf'),
    ])
    const p = partitionOf('k')
    assert.equal(plain.type, 'application/vnd.kafka.v2+json')
    assert.deepEqual((plain.json as { offsets: unknown[] }).offsets[0], {
      partition: p,
      offset: (plain.json as { offsets: { offset: number }[] }).offsets[0]?.offset,
      error_code: null,
      error: null,
    })
    assert.deepEqual(Object.keys(redpanda.json as object), ['offsets'])
    assert.equal(karapace.type, 'application/vnd.kafka.json.v2+json')
    assert.deepEqual(Object.keys(karapace.json as object), [
      'key_schema_id',
      'offsets',
      'value_schema_id',
    ])
    assert.equal('error_code' in ((confluent.json as { offsets: object[] }).offsets[0] ?? {}), true)
    assert.equal(sink().messages('pf').length, 4)
    assert.deepEqual(
      sink()
        .messages('pf')
        .map((m) => [m.key, m.value, m.dialect]),
      Array.from({ length: 4 }, () => ['k', 'v', 'kafka-rest-v2']),
    )
    const config = await fetch(`${sink().url}/__sink/config`)
    assert.equal(((await config.json()) as { v2Flavor: string }).v2Flavor, 'confluent')
  })

  it('auth refusals, 413 and faults follow the prefix; a fault naming a flavor wins', async () => {
    const missing = await v2('/flavor/karapace', 'pa', { authorization: '' })
    assert.deepEqual([missing.status, missing.json], [401, { message: 'Unauthorized' }])
    const redpanda = await v2('/flavor/redpanda', 'pa', { authorization: '' })
    assert.equal(redpanda.status, 403, 'Redpanda answers a request without credentials 403')
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'pa' })
    const partial = await v2('/flavor/redpanda', 'pa')
    assert.deepEqual(partial.json, {
      offsets: [{ partition: partitionOf('k'), error_code: 19, offset: -1 }],
    })
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'pa', v2Flavor: 'karapace' })
    const overridden = await v2('/flavor/redpanda', 'pa')
    assert.equal(overridden.status, 422)
    sink().setFault(null)
    const small = await startSink({ port: 0, maxBodyBytes: 16 })
    try {
      const big = await post(`${small.url}/flavor/karapace/topics/t`, body, {
        'content-type': V2_BINARY,
      })
      assert.deepEqual(
        [big.status, big.type, big.json],
        [
          413,
          'application/vnd.kafka.json.v2+json',
          { error_code: 413, message: 'HTTP Request Entity Too Large' },
        ],
      )
    } finally {
      await small.close()
    }
  })

  it('the prefix is harmless for the other dialects; an unknown one is a 404', async () => {
    const v3 = await post(
      `${sink().url}/flavor/redpanda/v3/clusters/local-cluster/topics/po/records`,
      JSON.stringify({ value: { type: 'STRING', data: 'x' } }),
    )
    assert.equal(reports(v3.text)[0]?.error_code, 200)
    const up = await post(`${sink().url}/flavor/karapace/produce`, [{ topic: 'po', value: 'y' }])
    assert.equal(up.status, 200)
    const unknown = await v2('/flavor/kafka', 'po')
    assert.deepEqual(
      [unknown.status, unknown.json],
      [
        404,
        {
          error_code: 404,
          message: "unknown flavor prefix 'kafka': one of confluent, redpanda, karapace",
        },
      ],
    )
  })
})

describe("Weave's value bytes: which embedded types keep them", () => {
  const sink = useSink()
  // Raw UTF-8, an emoji and a control character, as Weave (and Python's json.dumps) writes them.
  const weave = '{"project_id":"acme/é","call_ids":["😀","ctl\\u001f"],"wb_user_id":"u"}'

  it('v3: STRING stores the text as is; JSON re-writes the control escape', async () => {
    const body = [
      { key: { type: 'STRING', data: 'acme/é' }, value: { type: 'STRING', data: weave } },
      { key: { type: 'STRING', data: 'acme/é' }, value: { type: 'JSON', data: JSON.parse(weave) } },
      { key: { type: 'STRING', data: 'acme/é' }, value: { type: 'BINARY', data: b64(weave) } },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n')
    await post(v3Url(sink(), 'wv3'), body)
    const [string, json, binary] = sink().messages('wv3')
    assert.equal(string?.value, weave)
    assert.equal(json?.value, weave.replace('\\u001f', '\\u001F'))
    assert.equal(binary?.value, weave)
    assert.equal(string?.key, 'acme/é')
  })

  it('v2: binary.v2 keeps key and value bytes under every flavor; json.v2 does not', async () => {
    for (const flavor of ['confluent', 'redpanda', 'karapace'] as const) {
      const topic = `wv2-${flavor}`
      const base = `${sink().url}/flavor/${flavor}/topics/${topic}`
      const bin = await post(
        base,
        { records: [{ key: b64('acme/é'), value: b64(weave) }] },
        { 'content-type': V2_BINARY },
      )
      assert.equal(bin.status, 200, flavor)
      const json = await post(
        base,
        { records: [{ key: 'acme/é', value: JSON.parse(weave) }] },
        { 'content-type': V2_JSON },
      )
      assert.equal(json.status, 200, flavor)
      const [b, j] = sink().messages(topic)
      assert.deepEqual([b?.key, b?.value], ['acme/é', weave], flavor)
      assert.notEqual(j?.value, weave, `${flavor} re-writes a json.v2 value`)
      assert.notEqual(j?.key, 'acme/é', `${flavor} stores a json.v2 key as JSON`)
    }
  })
})

describe('faults', () => {
  const sink = useSink()
  const up = (topic: string, values: string[]) =>
    post(
      `${sink().url}/produce`,
      values.map((value) => ({ topic, value })),
    )

  it('status: dialect-shaped default body, Retry-After, times; custom body', async () => {
    sink().setFault({ kind: 'status', status: 503, retryAfter: '7', times: 1, topic: 'f1' })
    const res = await fetch(`${sink().url}/produce`, {
      method: 'POST',
      headers: { authorization: AUTH },
      body: JSON.stringify([{ topic: 'f1', value: 'x' }]),
    })
    assert.equal(res.status, 503)
    assert.equal(res.headers.get('retry-after'), '7')
    assert.deepEqual(await res.json(), { error: 'Service Unavailable', status: 503 })
    assert.equal((await up('f1', ['y'])).status, 200, 'times: 1 is used up')
    sink().setFault({ kind: 'status', status: 500, topic: 'f1b' })
    const v3 = await post(
      v3Url(sink(), 'f1b'),
      JSON.stringify({ value: { type: 'STRING', data: 'x' } }),
    )
    assert.deepEqual(
      [v3.status, v3.json],
      [500, { error_code: 500, message: 'Internal Server Error' }],
    )
    sink().setFault({ kind: 'status', status: 429, body: 'slow down', topic: 'f1c' })
    const custom = await up('f1c', ['x'])
    assert.deepEqual(
      [custom.status, custom.text, custom.type],
      [429, 'slow down', 'text/plain; charset=utf-8'],
    )
    assert.equal(sink().stats('f1').failedByFault, 1)
    assert.equal(sink().stats('f1').produceRequests, 2)
    assert.equal(sink().stats('f1').accepted, 1)
  })

  it('topic-scoped faults leave other topics alone; probability 0 never applies', async () => {
    sink().setFault({ kind: 'status', status: 500, topic: 'f2-bad' })
    assert.equal((await up('f2-good', ['x'])).status, 200)
    assert.equal((await up('f2-bad', ['x'])).status, 500)
    sink().setFault({ kind: 'status', status: 500, probability: 0, topic: 'f2-never' })
    for (let i = 0; i < 5; i++) assert.equal((await up('f2-never', ['x'])).status, 200)
    sink().setFault({ kind: 'status', status: 500, probability: 1, topic: 'f2-always' })
    assert.equal((await up('f2-always', ['x'])).status, 500)
  })

  it('html: an HTML error page (502 by default)', async () => {
    sink().setFault({ kind: 'html', topic: 'f3' })
    const res = await up('f3', ['x'])
    assert.equal(res.status, 502)
    assert.equal(res.type, 'text/html')
    assert.match(res.text, /<title>502 Bad Gateway<\/title>/)
    assert.equal(sink().messages('f3').length, 0)
  })

  it('delay: answers normally after ms', async () => {
    sink().setFault({ kind: 'delay', ms: 150, topic: 'f4' })
    const started = Date.now()
    const res = await up('f4', ['x'])
    assert.equal(res.status, 200)
    assert.ok(Date.now() - started >= 140)
    assert.equal(sink().messages('f4').length, 1)
  })

  it('hang with ms: the connection drops unanswered; without: held until reset', async () => {
    sink().setFault({ kind: 'hang', ms: 100, topic: 'f5' })
    await assert.rejects(up('f5', ['x']))
    assert.equal(sink().messages('f5').length, 0)
    sink().setFault({ kind: 'hang', topic: 'f5b' })
    const pending = up('f5b', ['x'])
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(sink().stats('f5b').faults.hang, 1)
    sink().reset()
    await assert.rejects(pending)
  })

  it('partial, Upstash: an error in the failed slot, the missing records not stored', async () => {
    sink().setFault({ kind: 'partial', failIndexes: [1], topic: 'p-up' })
    const res = await up('p-up', ['a', 'b', 'c'])
    assert.equal(res.status, 200)
    const slots = res.json as Record<string, unknown>[]
    assert.equal(slots.length, 3)
    assert.deepEqual(slots[1], { error: 'message was not acknowledged', status: 500 })
    assert.equal(typeof slots[2]?.offset, 'number')
    assert.deepEqual(
      sink()
        .messages('p-up')
        .map((m) => m.value),
      ['a', 'c'],
    )
    sink().setFault({ kind: 'partial', topic: 'p-up2' })
    const last = await up('p-up2', ['a', 'b'])
    const lastSlots = last.json as Record<string, unknown>[]
    assert.equal(
      lastSlots[1]?.error,
      'message was not acknowledged',
      'default: the last record fails',
    )
  })

  it('partial, Confluent v3 and v2 flavors: each its own per-record failure', async () => {
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'p-v3' })
    const body = ['a', 'b']
      .map((d) => JSON.stringify({ value: { type: 'STRING', data: d } }))
      .join('')
    const v3 = reports((await post(v3Url(sink(), 'p-v3'), body)).text)
    assert.deepEqual(
      v3.map((r) => r.error_code),
      [50003, 200],
    )
    const recs = {
      records: [
        { value: 1, partition: 0 },
        { value: 2, partition: 1 },
      ],
    }
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'p-v2', v2Flavor: 'confluent' })
    const c = await post(`${sink().url}/topics/p-v2`, recs, { 'content-type': V2_JSON })
    assert.deepEqual((c.json as { offsets: unknown[] }).offsets, [
      {
        partition: null,
        offset: null,
        error_code: 50003,
        error: 'Messages are rejected since there are fewer in-sync replicas than required.',
      },
      { partition: 1, offset: 0, error_code: null, error: null },
    ])
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'p-v2r', v2Flavor: 'redpanda' })
    const r = await post(`${sink().url}/topics/p-v2r`, recs, { 'content-type': V2_JSON })
    assert.deepEqual(r.json, {
      offsets: [
        { partition: 0, error_code: 19, offset: -1 },
        { partition: 1, offset: 0 },
      ],
    })
    sink().setFault({ kind: 'partial', failIndexes: [0], topic: 'p-v2k', v2Flavor: 'karapace' })
    const k = await post(`${sink().url}/topics/p-v2k`, recs, { 'content-type': V2_JSON })
    assert.equal(k.status, 422)
    assert.equal((k.json as { offsets: { error_code?: number }[] }).offsets[0]?.error_code, 2)
    for (const t of ['p-v3', 'p-v2', 'p-v2r', 'p-v2k']) {
      assert.equal(sink().stats(t).faults.partial, 1, t)
      assert.equal(sink().stats(t).failedByFault, 1, t)
    }
  })

  it('control API over HTTP: fault validation, per-topic stats, messages, reset', async () => {
    const bad = await post(`${sink().url}/__sink/fault`, { kind: 'status' })
    assert.equal(bad.status, 400)
    const typo = await post(`${sink().url}/__sink/fault`, { kind: 'hang', msec: 5 })
    assert.equal(typo.status, 400)
    const ok = await post(`${sink().url}/__sink/fault`, {
      kind: 'status',
      status: 500,
      topic: 'ctl',
      times: 2,
    })
    assert.equal(ok.status, 200)
    await up('ctl', ['x'])
    await up('ctl', ['x'])
    await up('ctl', ['x'])
    const stats = (await (await fetch(`${sink().url}/__sink/stats?topic=ctl`)).json()) as Record<
      string,
      unknown
    >
    assert.equal(stats.produceRequests, 3)
    assert.equal(stats.failedByFault, 2)
    assert.equal(stats.recordsStored, 1)
    const msgs = (await (await fetch(`${sink().url}/__sink/messages?topic=ctl`)).json()) as {
      messages: unknown[]
    }
    assert.equal(msgs.messages.length, 1)
    await fetch(`${sink().url}/__sink/fault`, { method: 'DELETE' })
    assert.equal((await post(`${sink().url}/__sink/reset`, {})).status, 200)
    assert.equal(sink().messages().length, 0)
    assert.equal(sink().stats().produceRequests, 0)
  })
})

describe('throttled endpoint', () => {
  // A global throttle from the start, on a topic nobody else uses here; tests add their own.
  const sink = useSink({ throttle: { ratePerSecond: 1000, topic: 'start' } })
  const up = (topic: string, values: string[]) =>
    post(
      `${sink().url}/produce`,
      values.map((value) => ({ topic, value })),
    )

  it('request rate: a token bucket, then 429 + Retry-After in the dialect shape; counted', async () => {
    sink().setThrottle({ ratePerSecond: 2, burst: 2, topic: 'r1' })
    const first = [await up('r1', ['a']), await up('r1', ['b'])]
    assert.deepEqual(
      first.map((a) => a.status),
      [200, 200],
    )
    const res = await fetch(`${sink().url}/produce`, {
      method: 'POST',
      headers: { authorization: AUTH },
      body: JSON.stringify([{ topic: 'r1', value: 'c' }]),
    })
    assert.equal(res.status, 429)
    assert.equal(res.headers.get('retry-after'), '1')
    assert.deepEqual(await res.json(), { error: 'Too Many Requests', status: 429 })
    const v3 = await post(
      v3Url(sink(), 'r1'),
      JSON.stringify({ value: { type: 'STRING', data: 'x' } }),
    )
    assert.deepEqual([v3.status, v3.json], [429, { error_code: 429, message: 'Too Many Requests' }])
    // Two tokens a second: one is back after half a second.
    await new Promise((r) => setTimeout(r, 550))
    assert.equal((await up('r1', ['d'])).status, 200)
    const stats = sink().stats('r1')
    assert.equal(stats.produceRequests, 5)
    assert.equal(stats.throttled, 2)
    assert.equal(stats.accepted, 3)
    assert.equal(stats.recordsStored, 3)
    assert.equal(sink().stats('r2').throttled, 0, 'other topics are not limited')
  })

  it('a fixed Retry-After is sent as given', async () => {
    sink().setThrottle({ ratePerSecond: 0.5, burst: 1, retryAfter: 3, topic: 'r3' })
    assert.equal((await up('r3', ['a'])).status, 200)
    const res = await fetch(`${sink().url}/produce`, {
      method: 'POST',
      headers: { authorization: AUTH },
      body: JSON.stringify([{ topic: 'r3', value: 'b' }]),
    })
    assert.equal(res.status, 429)
    assert.equal(res.headers.get('retry-after'), '3')
  })

  it('request size: 413 beyond maxRequestBytes in the dialect shape, counted as refused', async () => {
    sink().setThrottle({ maxRequestBytes: 200, topic: 's1' })
    assert.equal((await up('s1', ['small'])).status, 200)
    const big = await up('s1', ['x'.repeat(300)])
    assert.deepEqual([big.status, big.json], [413, { error: 'Payload Too Large', status: 413 }])
    const v2 = await post(
      `${sink().url}/topics/s1`,
      { records: [{ value: b64('y'.repeat(300)) }] },
      { 'content-type': V2_BINARY },
    )
    assert.equal(v2.status, 413)
    const stats = sink().stats('s1')
    assert.deepEqual(
      [stats.produceRequests, stats.tooLarge, stats.rejected, stats.accepted, stats.recordsStored],
      [3, 2, 2, 1, 1],
    )
  })

  it('control API: set, list, validate, clear; reset restores the start-time throttle', async () => {
    const bad = await post(`${sink().url}/__sink/throttle`, { ratePerSecond: 0 })
    assert.equal(bad.status, 400)
    const typo = await post(`${sink().url}/__sink/throttle`, { rate: 5 })
    assert.equal(typo.status, 400)
    const empty = await post(`${sink().url}/__sink/throttle`, { topic: 'c1' })
    assert.equal(empty.status, 400)
    const ok = await post(`${sink().url}/__sink/throttle`, {
      ratePerSecond: 1,
      burst: 1,
      topic: 'c1',
    })
    assert.equal(ok.status, 200)
    assert.equal((await up('c1', ['a'])).status, 200)
    assert.equal((await up('c1', ['b'])).status, 429)
    const listed = (await (await fetch(`${sink().url}/__sink/throttle`)).json()) as {
      throttles: { topic?: string }[]
    }
    assert.ok(listed.throttles.some((t) => t.topic === 'c1'))
    assert.ok(listed.throttles.some((t) => t.topic === 'start'))
    const stats = (await (await fetch(`${sink().url}/__sink/stats?topic=c1`)).json()) as Record<
      string,
      unknown
    >
    assert.equal(stats.throttled, 1)
    await fetch(`${sink().url}/__sink/throttle?topic=c1`, { method: 'DELETE' })
    assert.equal((await up('c1', ['c'])).status, 200)
    sink().setThrottle({ ratePerSecond: 1, topic: 'c2' })
    sink().reset()
    const after = (await (await fetch(`${sink().url}/__sink/throttle`)).json()) as {
      throttles: { topic?: string }[]
    }
    assert.deepEqual(
      after.throttles.map((t) => t.topic),
      ['start'],
    )
  })

  it('cli.ts takes the throttle from flags and the environment, and refuses a bad one', async () => {
    const cwd = new URL('../..', import.meta.url)
    const child = spawn(
      process.execPath,
      ['dev/sink/cli.ts', '--port', '0', '--rate-limit', '1', '--retry-after', '2'],
      { cwd, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SINK_BURST: '1' } },
    )
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()))
      child.once('exit', (code) => reject(new Error(`cli exited ${code}`)))
    })
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0]
    assert.ok(url, line)
    const listed = (await (await fetch(`${url}/__sink/throttle`)).json()) as {
      throttles: unknown[]
    }
    assert.deepEqual(listed.throttles, [{ ratePerSecond: 1, burst: 1, retryAfter: 2 }])
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
    const bad = spawn(process.execPath, ['dev/sink/cli.ts', '--port', '0', '--rate-limit', 'x'], {
      cwd,
      stdio: ['ignore', 'ignore', 'ignore'],
    })
    assert.equal(await new Promise((resolve) => bad.once('exit', resolve)), 2)
  })
})

describe('lifecycle', () => {
  it('close() finishes promptly with a hanging request and keep-alive connections', async () => {
    const sink = await startSink({ port: 0 })
    sink.setFault({ kind: 'hang' })
    const pending = post(`${sink.url}/produce`, [{ topic: 't', value: 'x' }])
    await post(`${sink.url}/__sink/health`, '')
    await new Promise((r) => setTimeout(r, 50))
    const started = Date.now()
    await sink.close()
    assert.ok(Date.now() - started < 500, `close took ${Date.now() - started} ms`)
    await assert.rejects(pending)
  })

  it('refuses to bind anything but loopback', async () => {
    await assert.rejects(startSink({ host: '0.0.0.0' }), /loopback only/)
  })

  it('cli.ts prints one line with its URL and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['dev/sink/cli.ts', '--port', '0'], {
      cwd: new URL('../..', import.meta.url),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()))
      child.once('exit', (code) => reject(new Error(`cli exited ${code}`)))
    })
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0]
    assert.ok(url, line)
    const health = await fetch(`${url}/__sink/health`)
    assert.equal(health.status, 200)
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
  })
})
