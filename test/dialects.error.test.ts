import { describe, expect, it } from 'vitest'
import { createProducer } from '../src/kafka/select.ts'
import {
  answer,
  call,
  captureLogs,
  createKey,
  DIALECT_TARGETS,
  type DialectTarget,
  KAFKA_UNAVAILABLE,
  scoreOnFreshTopic,
  sinkMessages,
  sinkProduceCount,
  sinkUrl,
  uniqueTopic,
  validBody,
} from './helpers.ts'

// How each REST dialect's failures map onto the same outcomes, through the real sink's faults.
// The durable queue is unbound here (self-hosted mode), so the direct produce's verdict is the
// answer: {} or 503, and the log line says why.

const UNAVAILABLE = KAFKA_UNAVAILABLE
/** 150 call ids: two messages, chunks starting at c0 and c100. */
const CALL_IDS = Array.from({ length: 150 }, (_, i) => `c${i}`)
const REST_TARGETS = DIALECT_TARGETS.filter((t) => t.dialect !== 'upstash')
const byName = (name: string) => {
  const target = DIALECT_TARGETS.find((t) => t.name.includes(name))
  if (!target) throw new Error(`no target ${name}`)
  return target
}

type Scenario = {
  fault?: Record<string, unknown>
  vars?: Record<string, unknown>
  callIds?: string[]
}

/** One request through a dialect, with the queue unbound so the direct verdict is the answer. */
const score = (target: DialectTarget, { fault, vars = {}, callIds = CALL_IDS }: Scenario) =>
  scoreOnFreshTopic({
    fault,
    callIds,
    vars: {
      KAFKA_PRODUCE_TIMEOUT_MS: '1000',
      KAFKA_PRODUCE_RETRIES: '1',
      SCORE_QUEUE: undefined,
      ...target.vars,
      ...vars,
    },
  })

/** First call id of each message that landed, in arrival order. */
const firstIds = async (topic: string) =>
  (await sinkMessages(topic)).map(
    (m) => (JSON.parse(m.value) as { call_ids: string[] }).call_ids[0],
  )

describe.each(REST_TARGETS)('$name: failures map onto the shared outcomes', (target) => {
  it.each([
    ['5xx: retried, then 503', { kind: 'status', status: 500 }, 2, 'unavailable'],
    [
      '429: a throttle, not retried in the request',
      { kind: 'status', status: 429 },
      1,
      'unavailable',
    ],
    [
      '503 with Retry-After: a throttle, not retried',
      { kind: 'status', status: 503, retryAfter: '1' },
      1,
      'unavailable',
    ],
    ['a proxy HTML 502: retried', { kind: 'html', status: 502 }, 2, 'unavailable'],
    [
      'an HTML page inside a 200: unreadable, retried',
      { kind: 'status', status: 200, body: '<html><body>maintenance</body></html>' },
      2,
      'invalid_response',
    ],
    ['401: an alarm, never retried', { kind: 'status', status: 401 }, 1, 'unauthorized'],
    ['403: an alarm, never retried', { kind: 'status', status: 403 }, 1, 'unauthorized'],
    ['another 4xx: refused, never retried', { kind: 'status', status: 400 }, 1, 'rejected'],
  ])('%s', async (_, fault, attempts, reason) => {
    const { res, topic, elapsed, line } = await score(target, { fault })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(line).toMatchObject({
      outcome: 'kafka_unavailable',
      kafka_attempts: attempts,
      kafka_reason: reason,
      kafka_acknowledged: 0,
    })
    expect(await sinkProduceCount(topic)).toBe(attempts)
    expect(elapsed).toBeLessThan(3000)
  })

  it('wrong credentials (the sink refuses them its own way): one attempt, an alarm', async () => {
    const { res, topic, line } = await score(target, { vars: { KAFKA_REST_PASSWORD: 'wrong' } })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({ kafka_reason: 'unauthorized', kafka_attempts: 1 })
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('a transient 503 is absorbed by the retry; each job lands once', async () => {
    const { res, topic, line } = await score(target, {
      fault: { kind: 'status', status: 503, times: 1 },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(line).toMatchObject({ outcome: 'accepted', kafka_attempts: 2 })
    expect(await firstIds(topic)).toEqual(['c0', 'c100'])
  })

  it('Retry-After is honoured: a wait beyond the budget is not attempted', async () => {
    const { res, topic, line } = await score(target, {
      fault: { kind: 'status', status: 502, retryAfter: '30' },
      vars: { KAFKA_PRODUCE_RETRIES: '3' },
    })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({ kafka_reason: 'unavailable', kafka_attempts: 1 })
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('Retry-After within the budget (not a throttle): the retry waits for it', async () => {
    const { res, elapsed } = await score(target, {
      fault: { kind: 'status', status: 502, retryAfter: '1', times: 1 },
      vars: { KAFKA_PRODUCE_TIMEOUT_MS: '3000' },
    })
    expect(res.status).toBe(200)
    expect(elapsed).toBeGreaterThanOrEqual(1000)
  })

  it('one record failing inside the answer: only what was not acknowledged is retried', async () => {
    const { res, topic, line } = await score(target, {
      fault: { kind: 'partial', failIndexes: [1], times: 1 },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(line).toMatchObject({ kafka_attempts: 2 })
    // Redpanda fails the whole partition batch (both jobs share a key), the others one record.
    expect(await firstIds(topic)).toEqual(['c0', 'c100'])
  })

  it('a partial failure without retries: 503, with the acknowledged count logged', async () => {
    const { res, line } = await score(target, {
      fault: { kind: 'partial', failIndexes: [1] },
      vars: { KAFKA_PRODUCE_RETRIES: '0' },
    })
    expect(res.status).toBe(503)
    // Redpanda's per-partition answer cannot say which record failed: nothing is acknowledged.
    expect(line).toMatchObject({
      kafka_reason: 'unavailable',
      kafka_acknowledged: target.flavor === 'redpanda' ? 0 : 1,
    })
  })

  it('a hang answers 503 at the deadline', async () => {
    const { res, elapsed, line } = await score(target, {
      fault: { kind: 'hang', ms: 3000 },
      vars: { KAFKA_PRODUCE_TIMEOUT_MS: '500' },
    })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(line).toMatchObject({ kafka_reason: 'timeout' })
    expect(elapsed).toBeGreaterThanOrEqual(450)
    expect(elapsed).toBeLessThan(2500)
  })

  it('connection refused answers 503 quickly', async () => {
    const { res, elapsed, line } = await score(target, {
      vars: { KAFKA_REST_URL: 'http://127.0.0.1:9' },
    })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(line).toMatchObject({ kafka_reason: 'unreachable', kafka_attempts: 2 })
    expect(elapsed).toBeLessThan(3000)
  })
})

describe('Confluent v3: reports inside the 200', () => {
  const v3 = byName('REST Proxy')
  const ok = (offset: number) =>
    JSON.stringify({
      error_code: 200,
      cluster_id: 'local-cluster',
      topic_name: 't',
      partition_id: 0,
      offset,
    })

  it('a final per-record error (42206) is a refusal; the other record counts', async () => {
    const body = `${ok(0)}\r\n${JSON.stringify({ error_code: 42206, message: 'Payload error.' })}\r\n`
    const { res, line } = await score(v3, { fault: { kind: 'status', status: 200, body } })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({
      kafka_reason: 'rejected',
      kafka_attempts: 1,
      kafka_acknowledged: 1,
    })
  })

  it('an answer cut short: the reported record counts, the retry sends only the other', async () => {
    const { res, topic } = await score(v3, {
      fault: { kind: 'status', status: 200, body: `${ok(0)}\r\n{"error_code":20`, times: 1 },
    })
    expect(res.status).toBe(200)
    // The first attempt's answer was faked: only the retry stored anything, and only c100.
    expect(await firstIds(topic)).toEqual(['c100'])
  })

  it('an unknown cluster id is a 404: refused, never retried', async () => {
    const { res, topic, line } = await score(v3, { vars: { KAFKA_CLUSTER_ID: 'lkc-nope' } })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({ kafka_reason: 'rejected', kafka_status: 404, kafka_attempts: 1 })
    expect(await sinkProduceCount(topic)).toBe(1)
  })
})

describe('Redpanda: Kafka error codes inside a 200, one entry per partition', () => {
  const redpanda = byName('redpanda')
  const entry = (code: number) =>
    JSON.stringify({ offsets: [{ partition: 0, error_code: code, offset: -1 }] })

  it.each([
    [29, 'TOPIC_AUTHORIZATION_FAILED', 'unauthorized', 1],
    [10, 'MESSAGE_TOO_LARGE', 'rejected', 1],
    [3, 'UNKNOWN_TOPIC_OR_PARTITION', 'unavailable', 2],
  ])('error_code %i (%s) is %s', async (code, _, reason, attempts) => {
    const { res, line } = await score(redpanda, {
      fault: { kind: 'status', status: 200, body: entry(code) },
    })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({
      kafka_reason: reason,
      kafka_attempts: attempts,
      kafka_acknowledged: 0,
    })
  })

  it('one failed partition fails the request: the retry may duplicate (at least once)', async () => {
    // Four jobs over three partitions; the batch holding job 0 fails once.
    const callIds = Array.from({ length: 400 }, (_, i) => `spread-${i}`)
    const { res, topic } = await score(redpanda, {
      fault: { kind: 'partial', failIndexes: [0], times: 1 },
      vars: { KAFKA_PROJECT_BUCKETS: '16' },
      callIds,
    })
    expect(res.status).toBe(200)
    const landed = await firstIds(topic)
    expect(new Set(landed)).toEqual(new Set(['spread-0', 'spread-100', 'spread-200', 'spread-300']))
    expect(landed.filter((id) => id === 'spread-0')).toHaveLength(1)
    // Jobs in the partitions that succeeded were sent again with the rest.
    expect(landed.length).toBeGreaterThan(4)
  })
})

describe('Karapace: a 422 for the whole answer when any record fails', () => {
  const karapace = byName('karapace')

  it('error_code 1 (final) is a refusal; the record with an offset counts', async () => {
    const body = JSON.stringify({
      key_schema_id: null,
      offsets: [
        { offset: 0, partition: 0 },
        { error_code: 1, error: 'Local: Unknown partition' },
      ],
      value_schema_id: null,
    })
    const { res, line } = await score(karapace, {
      fault: { kind: 'status', status: 422, body },
    })
    expect(res.status).toBe(503)
    expect(line).toMatchObject({
      kafka_reason: 'rejected',
      kafka_status: 422,
      kafka_attempts: 1,
      kafka_acknowledged: 1,
    })
  })

  it('a 422 without offsets (a malformed request) refuses every record', async () => {
    const body = JSON.stringify({ error_code: 422, message: 'Invalid request format' })
    const { line } = await score(karapace, { fault: { kind: 'status', status: 422, body } })
    expect(line).toMatchObject({
      kafka_reason: 'rejected',
      kafka_acknowledged: 0,
      kafka_attempts: 1,
    })
  })
})

describe('a deadline already passed (a later part of a split request)', () => {
  const rest = { url: sinkUrl, username: 'dev', password: 'dev-password' }
  it.each([
    ['upstash', { dialect: 'upstash' as const, ...rest }],
    ['confluent-v3', { dialect: 'confluent-v3' as const, ...rest, clusterId: 'local-cluster' }],
    ['kafka-rest-v2', { dialect: 'kafka-rest-v2' as const, ...rest }],
  ])('%s: a timeout without sending the request', async (_, settings) => {
    const topic = uniqueTopic('late')
    const result = await createProducer(settings).produce([{ topic, key: 'k', value: '1' }], {
      at: Date.now() - 1,
    })
    expect(result).toMatchObject({ ok: false, reason: 'timeout', acknowledged: [false] })
    expect(await sinkProduceCount(topic)).toBe(0)
  })
})

describe('misconfiguration fails loudly at the first request', () => {
  const rest = { KAFKA_REST_USERNAME: 'dev', KAFKA_REST_PASSWORD: 'dev-password' }

  it.each([
    [
      'an unknown dialect',
      { KAFKA_REST_DIALECT: 'kafka-rest-v3' },
      'KAFKA_REST_DIALECT: must be one of upstash, confluent-v3, kafka-rest-v2',
    ],
    [
      'confluent-v3 without a cluster id',
      { KAFKA_REST_DIALECT: 'confluent-v3', KAFKA_REST_URL: 'http://127.0.0.1:1', ...rest },
      'KAFKA_CLUSTER_ID: required when KAFKA_REST_DIALECT is confluent-v3',
    ],
    [
      'kafka-rest-v2 without a URL',
      { KAFKA_REST_DIALECT: 'kafka-rest-v2', KAFKA_REST_URL: '', ...rest },
      'KAFKA_REST_URL: an http(s) URL is required when KAFKA_REST_DIALECT is kafka-rest-v2',
    ],
    [
      'kafka-rest-v2 with a URL that is not http(s)',
      { KAFKA_REST_DIALECT: 'kafka-rest-v2', KAFKA_REST_URL: 'kafka://broker:9092', ...rest },
      'KAFKA_REST_URL: an http(s) URL is required when KAFKA_REST_DIALECT is kafka-rest-v2',
    ],
    [
      'confluent-v3 without credentials',
      {
        KAFKA_REST_DIALECT: 'confluent-v3',
        KAFKA_REST_URL: 'http://127.0.0.1:1',
        KAFKA_CLUSTER_ID: 'lkc-1',
        KAFKA_REST_USERNAME: '',
        KAFKA_REST_PASSWORD: undefined,
      },
      'KAFKA_REST_PASSWORD: required when KAFKA_REST_DIALECT is confluent-v3',
    ],
  ])('%s: 503 and the problem in the log', async (_, vars, problem) => {
    const topic = uniqueTopic('misconfigured')
    const key = await createKey()
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await call({ key, body: validBody(), vars: { KAFKA_TOPIC: topic, ...vars } })
    })
    if (!res) throw new Error('no response')
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
    const line = logs.find((l) => l.msg === 'request')
    expect(line).toMatchObject({ level: 'error', outcome: 'misconfigured' })
    expect(line?.config_problems).toContain(problem)
    expect(JSON.stringify(line)).not.toContain('dev-password')
    expect(await sinkProduceCount(topic)).toBe(0)
  })

  it("the other dialect's settings are not required", async () => {
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: {
        KAFKA_TOPIC: uniqueTopic('only-v2'),
        ...byName('karapace').vars,
        UPSTASH_KAFKA_REST_URL: '',
        UPSTASH_KAFKA_REST_USERNAME: '',
      },
    })
    expect(res.status).toBe(200)
  })
})
