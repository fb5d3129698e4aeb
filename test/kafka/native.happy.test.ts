import { describe, expect, it } from 'vitest'
import { nativeConnectionsOpened } from '../../src/kafka/native.ts'
import {
  answer,
  call,
  captureLogs,
  consumeBatch,
  createKey,
  queuedJob,
  validBody,
} from '../helpers.ts'
import { expectedPartition, freshTopic, kafka, nativeVars, readRecords } from './helpers.ts'

const REF = 'weave:///acme/support-bot/object/Toxicity:9f2c'
const ids = (n: number, prefix = 'call') =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)

const LISTENERS = [
  { name: 'PLAINTEXT', mechanism: '' },
  { name: 'SASL PLAIN', mechanism: 'plain' },
  { name: 'SASL SCRAM-SHA-256', mechanism: 'scram-sha-256' },
  { name: 'SASL SCRAM-SHA-512', mechanism: 'scram-sha-512' },
] as const

describe('the native transport against the real broker', () => {
  for (const { name, mechanism } of LISTENERS) {
    it(`lands a request's jobs byte for byte, with headers, on murmur2's partitions (${name})`, async () => {
      const topic = await freshTopic('native')
      const callIds = ids(300, 'n')
      const res = await call({
        key: await createKey(['acme/support-bot'], 'VXNlcjoxMjM0'),
        body: validBody({ call_ids: callIds, scorer_refs: [REF] }),
        // Four buckets: the three chunks carry different keys, so placement is really tested.
        vars: { ...nativeVars(mechanism), KAFKA_TOPIC: topic, KAFKA_PROJECT_BUCKETS: '4' },
      })
      expect(await answer(res)).toEqual({ status: 200, body: {} })
      const records = await readRecords(topic)
      expect(records).toHaveLength(3)
      const byJob = [...records].sort((a, b) =>
        (a.headers[0]?.[1] ?? '').localeCompare(b.headers[0]?.[1] ?? ''),
      )
      const jobId = byJob[0]?.headers[0]?.[1]?.split(':')[0]
      expect(jobId).toMatch(/^[0-9a-f-]{36}$/)
      byJob.forEach((r, i) => {
        const chunk = callIds.slice(i * 100, i * 100 + 100)
        expect(r.value).toBe(
          JSON.stringify({
            project_id: 'acme/support-bot',
            call_ids: chunk,
            scorer_refs: [REF],
            wb_user_id: 'VXNlcjoxMjM0',
          }),
        )
        expect(r.key).toMatch(/^acme\/support-bot:[0-3]$/)
        expect(r.headers).toEqual([['weave-job-id', `${jobId}:${i}`]])
        expect(r.partition).toBe(expectedPartition(r.key))
      })
    })
  }

  it('places keys exactly where the Java client does, over many keys', async () => {
    const topic = await freshTopic('placement')
    const jobs = Array.from({ length: 60 }, (_, n) => ({
      ...queuedJob(topic, n),
      key: `entity-${n}/project-é${n}`,
    }))
    const { result, logs } = await consumeBatch(jobs, {
      vars: { ...nativeVars(''), KAFKA_TOPIC: topic },
    })
    expect(result.explicitAcks, JSON.stringify(logs)).toHaveLength(60)
    const records = await readRecords(topic)
    expect(records).toHaveLength(60)
    const partitions = new Set(records.map((r) => r.partition))
    expect(partitions.size).toBeGreaterThan(1)
    for (const r of records) expect(r.partition).toBe(expectedPartition(r.key))
  })

  it('produces a queue batch of 100 jobs in one invocation, over one connection set', async () => {
    const topic = await freshTopic('batch')
    const jobs = Array.from({ length: 100 }, (_, n) => queuedJob(topic, n))
    const { result, logs } = await consumeBatch(jobs, {
      vars: { ...nativeVars('scram-sha-512'), KAFKA_TOPIC: topic },
    })
    expect(result.explicitAcks, JSON.stringify(logs)).toHaveLength(100)
    expect(logs.find((l) => l.msg === 'queue_batch')).toMatchObject({ acknowledged: 100 })
    const records = await readRecords(topic)
    expect(records.map((r) => r.value).sort()).toEqual(jobs.map((j) => j.value).sort())
    expect(records.every((r) => r.headers[0]?.[0] === 'weave-job-id')).toBe(true)
  })

  it('delivers a maximal request (10,000 ids) split under the batch limit', async () => {
    const topic = await freshTopic('max', { partitions: 1 })
    const callIds = ids(10_000, '0190a1b2-0000-7000-8000-00000000')
    const logs = await captureLogs(async () => {
      const res = await call({
        key: await createKey(),
        body: validBody({
          call_ids: callIds,
          scorer_refs: Array.from({ length: 100 }, (_, i) => `${REF}${i}`),
        }),
        vars: { ...nativeVars(''), KAFKA_TOPIC: topic, KAFKA_REST_MAX_REQUEST_BYTES: '65536' },
      })
      expect(res.status).toBe(200)
    })
    expect(logs.find((l) => l.msg === 'request')).toMatchObject({
      outcome: 'accepted',
      kafka_attempts: 1,
    })
    const records = await readRecords(topic)
    expect(records).toHaveLength(100)
    expect(
      records.flatMap((r) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids),
    ).toEqual(callIds)
  })
})

describe('where direct delivery keeps its connections', () => {
  const requests = async (topic: string, extra: Record<string, unknown>) => {
    const key = await createKey()
    const send = async (n: number) => {
      const res = await call({
        key,
        body: validBody({ call_ids: [`shard-${n}`] }),
        vars: { ...nativeVars('scram-sha-256'), KAFKA_TOPIC: topic, ...extra },
      })
      expect(await answer(res)).toEqual({ status: 200, body: {} })
    }
    const start = nativeConnectionsOpened()
    await send(0)
    const before = nativeConnectionsOpened()
    for (let n = 1; n <= 5; n++) await send(n)
    expect(await readRecords(topic)).toHaveLength(6)
    return { first: before - start, later: nativeConnectionsOpened() - before }
  }
  // Connection settings no other test uses (the broker named twice), so the shard's producer
  // for them is new here and its first connections are seen.
  const once = `${kafka.saslBootstrap},${kafka.saslBootstrap}`

  it('a producer shard stays connected: later requests open no connection', async () => {
    const topic = await freshTopic('shard')
    const opened = await requests(topic, { KAFKA_PRODUCER_SHARDS: '1', KAFKA_BROKERS: once })
    expect(opened.first).toBeGreaterThan(0)
    expect(opened.later).toBe(0)
  })

  it('without the KAFKA_PRODUCERS binding, each request connects for itself', async () => {
    const topic = await freshTopic('no-shard')
    const opened = await requests(topic, { KAFKA_PRODUCERS: undefined })
    expect(opened.later).toBeGreaterThanOrEqual(5)
  })
})

it('uses the suite cluster, every node listed', () => {
  expect(kafka.bootstrap).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/)
})
