import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { readV3Answer, splitReports, v3Record } from '../src/kafka/confluent-v3.ts'
import { readV2Answer, v2Body } from '../src/kafka/kafka-rest-v2.ts'
import type { KafkaMessage, ProduceResult } from '../src/kafka/producer.ts'
import type { HttpAnswer } from '../src/kafka/rest.ts'
import {
  basicAuthorization,
  joinUrl,
  kafkaCodeReason,
  parseRetryAfter,
  produceByTopic,
  restCodeReason,
  utf8Base64,
} from '../src/kafka/rest.ts'

const reply = (status: number, body: unknown, extra: Partial<HttpAnswer> = {}): HttpAnswer => ({
  status,
  contentType: 'application/json',
  text: typeof body === 'string' ? body : JSON.stringify(body),
  ...extra,
})

/** The parts of a result these tests compare. */
const summary = (r: ProduceResult) =>
  r.ok ? { ok: true } : { reason: r.reason, acknowledged: r.acknowledged, status: r.status }

describe('request encoding', () => {
  const message: KafkaMessage = {
    topic: 't',
    key: 'acme/é',
    value: '{"a":"ctl\\u001f😀"}',
    headers: [{ key: 'weave-job-id', value: 'id:0' }],
  }

  it('v3: STRING key and value carry the text itself, headers base64', () => {
    expect(JSON.parse(v3Record(message))).toEqual({
      key: { type: 'STRING', data: 'acme/é' },
      value: { type: 'STRING', data: '{"a":"ctl\\u001f😀"}' },
      headers: [{ name: 'weave-job-id', value: btoa('id:0') }],
    })
    expect(JSON.parse(v3Record({ topic: 't', key: 'k', value: 'v' }))).not.toHaveProperty('headers')
  })

  it('v2: base64 of the UTF-8 bytes, padded; no headers', () => {
    const body = JSON.parse(v2Body([message])) as { records: Record<string, string>[] }
    expect(body.records).toEqual([
      { key: utf8Base64('acme/é'), value: utf8Base64('{"a":"ctl\\u001f😀"}') },
    ])
    expect(utf8Base64('é')).toBe('w6k=')
    expect(utf8Base64('x'.repeat(100_000))).toHaveLength(133_336)
  })

  it('Basic credentials are UTF-8; base URLs keep their path', () => {
    expect(basicAuthorization('ü', 'p:w')).toBe(`Basic ${utf8Base64('ü:p:w')}`)
    expect(joinUrl('https://pkc-1.confluent.cloud:443/kafka/', 'v3', 'clusters', 'lkc-1')).toBe(
      'https://pkc-1.confluent.cloud:443/kafka/v3/clusters/lkc-1',
    )
    expect(joinUrl('http://h:8082', 'topics', 'a/b c')).toBe('http://h:8082/topics/a%2Fb%20c')
  })
})

describe('status, codes and Retry-After', () => {
  it.each([
    [40101, 'unauthorized'],
    [40301, 'unauthorized'],
    [50003, 'unavailable'],
    [50002, 'unavailable'],
    [42206, 'rejected'],
    [40403, 'rejected'],
    [429, 'unavailable'],
    [400, 'rejected'],
  ])('REST error_code %i is %s', (code, reason) => {
    expect(restCodeReason(code)).toBe(reason)
  })

  it.each([
    [19, 'unavailable'],
    [6, 'unavailable'],
    [3, 'unavailable'],
    [29, 'unauthorized'],
    [58, 'unauthorized'],
    [10, 'rejected'],
    [87, 'rejected'],
    [-1, 'rejected'],
  ])('Kafka error code %i is %s', (code, reason) => {
    expect(kafkaCodeReason(code)).toBe(reason)
  })

  it('Retry-After: seconds or an HTTP-date; anything else ignored', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('7', now)).toBe(7)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30)
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter('-5', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })
})

describe('Confluent v3 answers', () => {
  const ok = (offset: number) => ({ error_code: 200, partition_id: 0, offset })

  it('Concatenated JSON: CRLF, newlines, back to back, strings with braces', () => {
    const text = `${JSON.stringify(ok(0))}\r\n{"error_code":400,"message":"a } and \\" {"}${JSON.stringify(ok(2))}`
    expect(splitReports(text)).toEqual({
      reports: [ok(0), { error_code: 400, message: 'a } and " {' }, ok(2)],
      complete: true,
    })
    expect(splitReports(`${JSON.stringify(ok(0))}\r\n{"error_co`)).toEqual({
      reports: [ok(0)],
      complete: false,
    })
    expect(splitReports('<html>')).toEqual({ reports: [], complete: false })
  })

  it('every record 200 with an offset: ok', () => {
    const text = [ok(0), ok(1)].map((r) => JSON.stringify(r)).join('\r\n')
    expect(readV3Answer(reply(200, text), 2)).toEqual({ ok: true })
  })

  it('failures inside the 200: per record; a final one wins over a retriable one', () => {
    const text = [ok(0), { error_code: 50003, message: 'isr' }, { error_code: 42206, message: 'x' }]
      .map((r) => JSON.stringify(r))
      .join('\r\n')
    expect(summary(readV3Answer(reply(200, text), 3))).toEqual({
      reason: 'rejected',
      acknowledged: [true, false, false],
      status: 200,
    })
  })

  it('a missing or extra report: unreadable; extra ones cannot be attributed', () => {
    expect(summary(readV3Answer(reply(200, JSON.stringify(ok(0))), 2))).toEqual({
      reason: 'invalid_response',
      acknowledged: [true, false],
      status: 200,
    })
    const three = [ok(0), ok(1), ok(2)].map((r) => JSON.stringify(r)).join('')
    expect(summary(readV3Answer(reply(200, three), 2))).toMatchObject({
      acknowledged: [false, false],
    })
    expect(summary(readV3Answer(reply(200, { error_code: 200 }), 1))).toMatchObject({
      reason: 'invalid_response',
    })
  })

  it('pre-stream errors go by status; Retry-After is kept', () => {
    const busy = readV3Answer(
      reply(429, '<html>Too Many Requests</html>', { retryAfterSeconds: 3 }),
      2,
    )
    expect(busy).toMatchObject({ reason: 'unavailable', retryAfterSeconds: 3, status: 429 })
    const auth = readV3Answer(
      reply(401, { error_code: 40101, message: 'Authentication failed' }),
      1,
    )
    expect(auth).toMatchObject({
      reason: 'unauthorized',
      detail: 'HTTP 401: error_code 40101: Authentication failed',
    })
    expect(readV3Answer(reply(404, { error_code: 40403, message: 'no topic' }), 1)).toMatchObject({
      reason: 'rejected',
    })
    expect(readV3Answer(reply(307, ''), 1)).toMatchObject({ reason: 'rejected' })
  })
})

describe('Kafka REST v2 answers', () => {
  const schemaIds = { key_schema_id: null, value_schema_id: null }

  it('Confluent: one entry per record, failures with error_code', () => {
    const good = { partition: 1, offset: 4, error_code: null, error: null }
    const bad = { partition: null, offset: null, error_code: 50003, error: 'isr' }
    expect(readV2Answer(reply(200, { offsets: [good, good], ...schemaIds }), 2)).toEqual({
      ok: true,
    })
    expect(summary(readV2Answer(reply(200, { offsets: [good, bad], ...schemaIds }), 2))).toEqual({
      reason: 'unavailable',
      acknowledged: [true, false],
      status: 200,
    })
    const denied = { ...bad, error_code: 40301, error: 'denied' }
    expect(readV2Answer(reply(403, { offsets: [denied], ...schemaIds }), 1)).toMatchObject({
      reason: 'unauthorized',
    })
  })

  it('Karapace: a 422 whose entries still say which record failed', () => {
    const offsets = [
      { offset: 0, partition: 0 },
      { error_code: 2, error: 'isr' },
      { error_code: 1, error: 'unknown partition' },
    ]
    expect(summary(readV2Answer(reply(422, { ...schemaIds, offsets }), 3))).toEqual({
      reason: 'rejected',
      acknowledged: [true, false, false],
      status: 422,
    })
    expect(
      summary(readV2Answer(reply(422, { ...schemaIds, offsets: offsets.slice(0, 2) }), 2)),
    ).toEqual({ reason: 'unavailable', acknowledged: [true, false], status: 422 })
  })

  it('a per-record answer of the wrong length cannot be attributed', () => {
    const offsets = [{ offset: 0, partition: 0 }]
    expect(summary(readV2Answer(reply(200, { ...schemaIds, offsets }), 2))).toEqual({
      reason: 'invalid_response',
      acknowledged: [false, false],
      status: 200,
    })
  })

  it('Redpanda: entries per partition; all fine acknowledges all, one error none', () => {
    const p = (partition: number, offset: number) => ({ partition, offset })
    expect(readV2Answer(reply(200, { offsets: [p(0, 7)] }), 3)).toEqual({ ok: true })
    expect(readV2Answer(reply(200, { offsets: [p(0, 7), p(2, 1)] }), 3)).toEqual({ ok: true })
    expect(
      readV2Answer(reply(200, { offsets: [{ partition: 0, offset: 3, error_code: 0 }] }), 1),
    ).toEqual({ ok: true })
    const failed = readV2Answer(
      reply(200, { offsets: [p(0, 7), { partition: 2, error_code: 19, offset: -1 }] }),
      3,
    )
    expect(summary(failed)).toEqual({
      reason: 'unavailable',
      acknowledged: [false, false, false],
      status: 200,
    })
    expect(failed).toMatchObject({ detail: expect.stringContaining('19 (NOT_ENOUGH_REPLICAS)') })
    const denied = readV2Answer(
      reply(200, { offsets: [{ partition: 0, error_code: 29, offset: -1 }] }),
      1,
    )
    expect(denied).toMatchObject({ reason: 'unauthorized' })
  })

  it('more partition entries than records, none, or no offsets: unreadable', () => {
    const p = { partition: 0, offset: 1 }
    expect(readV2Answer(reply(200, { offsets: [p, p] }), 1)).toMatchObject({
      reason: 'invalid_response',
    })
    expect(readV2Answer(reply(200, { offsets: [] }), 1)).toMatchObject({
      reason: 'invalid_response',
    })
    expect(readV2Answer(reply(200, '<html></html>'), 1)).toMatchObject({
      reason: 'invalid_response',
    })
    expect(readV2Answer(reply(200, { offsets: [{ partition: 0 }] }), 1)).toMatchObject({
      reason: 'invalid_response',
    })
  })

  it('errors without offsets go by status; Karapace 403 without an error_code too', () => {
    expect(readV2Answer(reply(403, { message: 'Forbidden' }), 1)).toMatchObject({
      reason: 'unauthorized',
      detail: 'HTTP 403: Forbidden',
    })
    expect(
      readV2Answer(reply(422, { error_code: 422, message: 'parse error at offset 3' }), 1),
    ).toMatchObject({ reason: 'rejected' })
    expect(readV2Answer(reply(503, 'upstream down', { retryAfterSeconds: 2 }), 1)).toMatchObject({
      reason: 'unavailable',
      retryAfterSeconds: 2,
      detail: 'HTTP 503: upstream down',
    })
  })
})

describe('one request per topic', () => {
  const m = (topic: string, value: string): KafkaMessage => ({ topic, key: 'k', value })

  it('acknowledgements come back in request order; the most final reason wins', async () => {
    const result = await produceByTopic(
      [m('a', '1'), m('b', '2'), m('a', '3'), m('c', '4')],
      async (topic, batch): Promise<ProduceResult> => {
        if (topic === 'a') return { ok: true }
        const reason = topic === 'b' ? 'unavailable' : 'rejected'
        return { ok: false, reason, detail: topic, acknowledged: batch.map(() => false) }
      },
    )
    expect(summary(result)).toEqual({
      reason: 'rejected',
      acknowledged: [true, false, true, false],
      status: undefined,
    })
  })

  it('a single topic is passed through as one batch', async () => {
    const seen: string[][] = []
    await produceByTopic([m('a', '1'), m('a', '2')], async (_, batch) => {
      seen.push(batch.map((x) => x.value))
      return { ok: true }
    })
    expect(seen).toEqual([['1', '2']])
  })
})

describe('configuration per dialect', () => {
  const base = env as unknown as Record<string, string>
  const load = (over: Record<string, string | undefined>) =>
    loadConfig({ ...base, ...over } as unknown as Env)

  it('upstash is the default, also for an empty KAFKA_REST_DIALECT', () => {
    for (const dialect of [undefined, '', 'upstash']) {
      const result = load({ KAFKA_REST_DIALECT: dialect, UPSTASH_KAFKA_REST_URL: 'https://u.test' })
      expect(result.ok && result.config.kafka).toEqual({
        dialect: 'upstash',
        url: 'https://u.test',
        username: base.UPSTASH_KAFKA_REST_USERNAME,
        password: base.UPSTASH_KAFKA_REST_PASSWORD,
      })
    }
  })

  it('confluent-v3 and kafka-rest-v2 take KAFKA_REST_* (and the cluster id)', () => {
    const common = {
      KAFKA_REST_URL: 'https://pkc-1.confluent.cloud:443/kafka',
      KAFKA_REST_USERNAME: 'key',
      KAFKA_REST_PASSWORD: 'secret',
      UPSTASH_KAFKA_REST_URL: '',
    }
    const v3 = load({ ...common, KAFKA_REST_DIALECT: 'confluent-v3', KAFKA_CLUSTER_ID: 'lkc-1' })
    expect(v3.ok && v3.config.kafka).toEqual({
      dialect: 'confluent-v3',
      url: common.KAFKA_REST_URL,
      username: 'key',
      password: 'secret',
      clusterId: 'lkc-1',
    })
    const v2 = load({ ...common, KAFKA_REST_DIALECT: 'kafka-rest-v2', KAFKA_CLUSTER_ID: '' })
    expect(v2.ok && v2.config.kafka).toEqual({
      dialect: 'kafka-rest-v2',
      url: common.KAFKA_REST_URL,
      username: 'key',
      password: 'secret',
    })
  })

  it('problems name every setting at once, never a value', () => {
    const result = load({
      KAFKA_REST_DIALECT: 'confluent-v3',
      KAFKA_REST_URL: 'ftp://x',
      KAFKA_REST_USERNAME: 's3cret-user',
      KAFKA_REST_PASSWORD: '',
      KAFKA_CLUSTER_ID: undefined,
      MAX_CALL_IDS: 'many',
    })
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.problems).toEqual([
      expect.stringMatching(/^MAX_CALL_IDS: /),
      'KAFKA_REST_URL: an http(s) URL is required when KAFKA_REST_DIALECT is confluent-v3',
      'KAFKA_REST_PASSWORD: required when KAFKA_REST_DIALECT is confluent-v3',
      'KAFKA_CLUSTER_ID: required when KAFKA_REST_DIALECT is confluent-v3',
    ])
    expect(result.problems.join()).not.toContain('s3cret')
  })
})
