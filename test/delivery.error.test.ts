import { describe, expect, it } from 'vitest'
import {
  answer,
  call,
  captureLogs,
  consumeBatch,
  createKey,
  DIALECT_TARGETS,
  delivered,
  jobIdOf,
  KAFKA_UNAVAILABLE,
  queuedJob,
  sinkMessages,
  sinkProduceCount,
  sinkStats,
  sinkThrottle,
  sinkUnthrottle,
  sinkUrl,
  uniqueTopic,
  validBody,
} from './helpers.ts'

// Scaling past the Kafka REST request ceiling: the throttle breaker, DELIVERY_MODE=queue, and
// request size limits, against the real sink throttled through its control API (per topic, so
// parallel test files are unaffected).

/** One request on `topic` (the breaker is per endpoint and topic); its answer and log lines. */
async function scoreOn(
  topic: string,
  callIds: string[],
  vars: Record<string, unknown> = {},
  key?: string,
) {
  let res: Response | undefined
  const logs = await captureLogs(async () => {
    res = await call({
      key: key ?? (await createKey()),
      body: validBody({ call_ids: callIds }),
      vars: { ...V3, KAFKA_TOPIC: topic, KAFKA_PRODUCE_TIMEOUT_MS: '1000', ...vars },
    })
  })
  if (!res) throw new Error('no response')
  return {
    status: res.status,
    body: await res.text(),
    line: logs.find((l) => l.msg === 'request') ?? {},
    logs,
  }
}

// Confluent v3 (the production dialect), whose adapter reads Retry-After; @upstash/kafka does not
// expose answer headers, so under Upstash every pause is KAFKA_THROTTLE_PAUSE_SECONDS.
const V3 = DIALECT_TARGETS.find((t) => t.dialect === 'confluent-v3')?.vars ?? {}

const ids = (tag: string, n = 1) => Array.from({ length: n }, (_, i) => `${tag}-${i}`)

describe('the throttle breaker in direct delivery', () => {
  it('opens on a 429, skips Kafka while open, probes after Retry-After, closes on success', async () => {
    const topic = uniqueTopic('breaker')
    const key = await createKey()
    // One request's worth of tokens, then 429 + Retry-After: 1.
    await sinkThrottle(topic, { ratePerSecond: 0.01, burst: 1, retryAfter: 1 })

    const first = await scoreOn(topic, ids('a'), {}, key)
    expect(first.status).toBe(200)
    expect(first.line).toMatchObject({ outcome: 'accepted', kafka_attempts: 1 })

    // Throttled: not retried in the request, queued, and the breaker opens (logged).
    const second = await scoreOn(topic, ids('b'), { KAFKA_PRODUCE_RETRIES: '3' }, key)
    expect(second.status).toBe(200)
    expect(second.line).toMatchObject({
      outcome: 'queued',
      kafka_attempts: 1,
      kafka_status: 429,
      queued: 1,
    })
    expect(second.logs.find((l) => l.msg === 'kafka_throttle_open')).toMatchObject({
      level: 'warn',
      pause_seconds: 1,
      retry_after: 1,
    })

    // While open: straight to the queue, Kafka REST not called.
    const before = await sinkProduceCount(topic)
    const third = await scoreOn(topic, ids('c', 150), {}, key)
    expect(third.status).toBe(200)
    expect(third.line).toMatchObject({ outcome: 'queued', kafka_skipped: 'throttled', queued: 2 })
    expect(third.line.kafka_attempts).toBeUndefined()
    expect(await sinkProduceCount(topic)).toBe(before)

    // The endpoint recovers; after the pause one request probes, and its success closes it.
    await sinkUnthrottle(topic)
    await new Promise((r) => setTimeout(r, 1100))
    const probe = await scoreOn(topic, ids('d'), {}, key)
    expect(probe.line).toMatchObject({ outcome: 'accepted', kafka_probe: true, kafka_attempts: 1 })
    expect(probe.logs.find((l) => l.msg === 'kafka_throttle_closed')).toMatchObject({
      level: 'info',
      probe_outcome: 'acknowledged',
      skipped: 1,
    })
    const after = await scoreOn(topic, ids('e'), {}, key)
    expect(after.line).toMatchObject({ outcome: 'accepted' })
    expect(after.line.kafka_probe).toBeUndefined()

    // Nothing lost: the queued jobs land once the queue consumer gets through.
    const messages = await delivered(topic, 6)
    expect(new Set(messages.map(jobIdOf)).size).toBe(6)
  })

  it('a throttled probe keeps it open: other requests still skip Kafka', async () => {
    const topic = uniqueTopic('breaker-reopen')
    const key = await createKey()
    await sinkThrottle(topic, { ratePerSecond: 0.01, burst: 1, retryAfter: 1 })
    await scoreOn(topic, ids('a'), {}, key)
    await scoreOn(topic, ids('b'), {}, key)
    await new Promise((r) => setTimeout(r, 1100))
    const probe = await scoreOn(topic, ids('c'), {}, key)
    expect(probe.line).toMatchObject({ outcome: 'queued', kafka_probe: true, kafka_status: 429 })
    // The probe's own answer reopens the breaker (another call's late answer may log first).
    expect(
      probe.logs.filter((l) => l.msg === 'kafka_throttle_open').map((l) => l.reopened),
    ).toContain(true)
    const count = await sinkProduceCount(topic)
    const skipped = await scoreOn(topic, ids('d'), {}, key)
    expect(skipped.line).toMatchObject({ kafka_skipped: 'throttled' })
    expect(await sinkProduceCount(topic)).toBe(count)
    await sinkUnthrottle(topic)
  })

  it('a 503 with Retry-After opens it too; other failures keep the retry policy', async () => {
    const topic = uniqueTopic('breaker-503')
    const key = await createKey()
    await fetch(`${sinkUrl}/__sink/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'status', status: 503, times: 2, topic }),
    })
    const bare = await scoreOn(topic, ids('a'), { KAFKA_PRODUCE_RETRIES: '2' }, key)
    // A bare 503 is retried (twice here) and then goes through: no breaker.
    expect(bare.line).toMatchObject({ outcome: 'accepted', kafka_attempts: 3 })
    expect(bare.logs.some((l) => l.msg === 'kafka_throttle_open')).toBe(false)
    await fetch(`${sinkUrl}/__sink/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'status', status: 503, retryAfter: '1', times: 1, topic }),
    })
    const throttled = await scoreOn(topic, ids('b'), { KAFKA_PRODUCE_RETRIES: '2' }, key)
    expect(throttled.line).toMatchObject({ outcome: 'queued', kafka_attempts: 1 })
    expect(throttled.logs.some((l) => l.msg === 'kafka_throttle_open')).toBe(true)
    const skipped = await scoreOn(topic, ids('c'), {}, key)
    expect(skipped.line).toMatchObject({ kafka_skipped: 'throttled' })
  })

  it('while open, a queue refusal is still a 503 with Retry-After', async () => {
    const topic = uniqueTopic('breaker-no-queue')
    const key = await createKey()
    await sinkThrottle(topic, { ratePerSecond: 0.01, burst: 1, retryAfter: 5 })
    await scoreOn(topic, ids('a'), {}, key)
    await scoreOn(topic, ids('b'), {}, key)
    const refused = await scoreOn(topic, ids('c'), { SCORE_QUEUE: undefined }, key)
    expect({ status: refused.status, body: JSON.parse(refused.body) }).toEqual(KAFKA_UNAVAILABLE)
    expect(refused.line).toMatchObject({ kafka_skipped: 'throttled', queue_reason: 'no_queue' })
    await sinkUnthrottle(topic)
  })
})

describe('DELIVERY_MODE=queue', () => {
  it('queues every job without calling Kafka REST in the request; the consumer delivers them in batches', async () => {
    const topic = uniqueTopic('queue-mode')
    const key = await createKey()
    // One after the other: captureLogs swaps console methods for the call it wraps.
    const requests = []
    for (let r = 0; r < 6; r++) {
      const callIds = ids(`q${r}`, 250)
      requests.push({
        callIds,
        ...(await scoreOn(topic, callIds, { DELIVERY_MODE: 'queue' }, key)),
      })
    }
    for (const { status, body, line } of requests) {
      expect({ status, body }).toEqual({ status: 200, body: '{}' })
      expect(line).toMatchObject({ delivery: 'queue', outcome: 'queued', queued: 3 })
      expect(line.kafka_attempts).toBeUndefined()
    }
    const messages = await delivered(topic, 18)
    const landed = messages.flatMap((m) => (JSON.parse(m.value) as { call_ids: string[] }).call_ids)
    expect(landed.sort()).toEqual(requests.flatMap((r) => r.callIds).sort())
    // Queue batches, not requests, make Kafka REST requests: fewer of them than client requests.
    expect(await sinkProduceCount(topic)).toBeLessThan(6)
    // The consumer's batches wait for Miniflare's batch timeout: more than the default 5 s on a
    // busy machine.
  }, 15_000)

  it('a queue refusal is a 503 with Retry-After: never {} for jobs not held', async () => {
    const topic = uniqueTopic('queue-mode-refused')
    const refusing = { sendBatch: () => Promise.reject(new Error('Queue is overloaded')) }
    const res = await scoreOn(topic, ids('r'), { DELIVERY_MODE: 'queue', SCORE_QUEUE: refusing })
    expect({ status: res.status, body: JSON.parse(res.body) }).toEqual(KAFKA_UNAVAILABLE)
    expect(res.line).toMatchObject({ delivery: 'queue', queue_reason: 'refused' })
    expect(await sinkProduceCount(topic)).toBe(0)
  })

  it.each([
    ['an unknown DELIVERY_MODE', { DELIVERY_MODE: 'fast' }],
    ['a request limit too small for one job', { KAFKA_REST_MAX_REQUEST_BYTES: '1000' }],
    ['a throttle pause that is not a number', { KAFKA_THROTTLE_PAUSE_SECONDS: 'soon' }],
    ['an emptied maximum pause (not 0: no pause at all)', { KAFKA_THROTTLE_MAX_PAUSE_SECONDS: '' }],
    [
      'a default pause the maximum would cut',
      { KAFKA_THROTTLE_PAUSE_SECONDS: '60', KAFKA_THROTTLE_MAX_PAUSE_SECONDS: '30' },
    ],
    [
      'queue mode without a queue to deliver to',
      { DELIVERY_MODE: 'queue', SCORE_QUEUE: undefined },
    ],
  ])('%s is a loud 503 misconfiguration, the setting named in the log', async (_, vars) => {
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await call({ key: await createKey(), body: validBody(), vars })
    })
    if (!res) throw new Error('no response')
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
    const line = logs.find((l) => l.msg === 'request') ?? {}
    const problems = (line.config_problems ?? []) as string[]
    expect(problems.some((p) => Object.keys(vars).some((v) => p.startsWith(`${v}:`)))).toBe(true)
  })
})

/** 100 call ids of about 250 bytes each: one job of about 25 KB. */
const bigIds = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(4, '0')}-${'x'.repeat(240)}`)

describe('KAFKA_REST_MAX_REQUEST_BYTES', () => {
  it.each(DIALECT_TARGETS)(
    '$name: a large request is split under the limit, nothing queued',
    async (target) => {
      const topic = uniqueTopic('split')
      // The sink refuses (413) any produce body over the limit the worker is given.
      await sinkThrottle(topic, { maxRequestBytes: 65_536 })
      const callIds = bigIds('s', 300)
      const { status, line } = await scoreOn(topic, callIds, {
        ...target.vars,
        KAFKA_REST_MAX_REQUEST_BYTES: '65536',
        KAFKA_PRODUCE_TIMEOUT_MS: '5000',
      })
      expect(status).toBe(200)
      expect(line).toMatchObject({ outcome: 'accepted', messages: 3 })
      const stats = await sinkStats(topic)
      expect(stats.tooLarge).toBe(0)
      expect(stats.produceRequests).toBeGreaterThanOrEqual(2)
      // The parts travel side by side and may land in either order (Kafka REST v2 carries no
      // job id header): in the request's order of their first ids, every id exactly once.
      const chunks = (await sinkMessages(topic)).map(
        (m) => (JSON.parse(m.value) as { call_ids: string[] }).call_ids,
      )
      const first = (ids: string[]) => callIds.indexOf(ids[0] ?? '')
      expect(chunks.sort((a, b) => first(a) - first(b)).flat()).toEqual(callIds)
    },
  )

  it('without the limit the same request is one REST request, which this endpoint refuses', async () => {
    const topic = uniqueTopic('split-off')
    await sinkThrottle(topic, { maxRequestBytes: 65_536 })
    const { line } = await scoreOn(topic, bigIds('n', 300), { KAFKA_PRODUCE_TIMEOUT_MS: '5000' })
    // 413 is a refusal: to the queue (where the consumer meets the same refusal; nothing lost,
    // but the limit must match the endpoint's).
    expect(line).toMatchObject({ outcome: 'queued', kafka_status: 413, kafka_reason: 'rejected' })
    expect((await sinkStats(topic)).tooLarge).toBe(1)
  })
})

describe('the queue consumer batches', () => {
  it('a batch of 100 jobs is one Kafka REST request', async () => {
    const topic = uniqueTopic('batch')
    const jobs = Array.from({ length: 100 }, (_, i) => queuedJob(topic, i))
    const { result } = await consumeBatch(jobs, { vars: { KAFKA_TOPIC: topic } })
    expect(result.explicitAcks).toHaveLength(100)
    expect(await sinkProduceCount(topic)).toBe(1)
    expect((await sinkMessages(topic)).map(jobIdOf)).toEqual(jobs.map((j) => j.headers[0]?.value))
  })

  it('a batch over the byte limit is split; a throttled part leaves exactly its jobs and the later ones to retry', async () => {
    const topic = uniqueTopic('batch-split')
    // About 2 KB per job: 30 jobs to a 65,536-byte request, four requests for 100.
    const jobs = Array.from({ length: 100 }, (_, i) => queuedJob(topic, i, 2000))
    // Two requests pass, the third is throttled with Retry-After: 7.
    await sinkThrottle(topic, {
      ratePerSecond: 0.01,
      burst: 2,
      retryAfter: 7,
      maxRequestBytes: 65_536,
    })
    const { result, delays, logs } = await consumeBatch(jobs, {
      vars: {
        ...V3,
        KAFKA_TOPIC: topic,
        KAFKA_REST_MAX_REQUEST_BYTES: '65536',
      },
    })
    const stats = await sinkStats(topic)
    expect([stats.produceRequests, stats.throttled, stats.tooLarge]).toEqual([3, 1, 0])
    const stored = (await sinkMessages(topic)).map(jobIdOf)
    // Acknowledged exactly what landed, in order; the rest waits for Retry-After.
    expect(stored).toEqual(jobs.slice(0, stored.length).map((j) => j.headers[0]?.value))
    expect(result.explicitAcks).toEqual(stored.map((_, i) => `m${i}`))
    expect(result.retryMessages).toHaveLength(100 - stored.length)
    expect(new Set(Object.values(delays))).toEqual(new Set([7]))
    expect(logs.find((l) => l.msg === 'kafka_throttle_open')).toBeTruthy()

    // The breaker is open now: the next batch waits without calling Kafka REST.
    const again = await consumeBatch(jobs.slice(stored.length), {
      vars: {
        ...V3,
        KAFKA_TOPIC: topic,
        KAFKA_REST_MAX_REQUEST_BYTES: '65536',
      },
    })
    expect(again.result.explicitAcks).toEqual([])
    expect((await sinkStats(topic)).produceRequests).toBe(3)
    expect(Math.min(...Object.values(again.delays).map(Number))).toBeGreaterThanOrEqual(1)
    await sinkUnthrottle(topic)
  })
})
