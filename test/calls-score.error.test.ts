import { describe, expect, it } from 'vitest'
import {
  answer,
  call,
  createKey,
  delivered,
  fetchWorker,
  jobIdOf,
  KAFKA_UNAVAILABLE,
  scoreOnFreshTopic,
  sinkFault,
  uniqueTopic,
  validBody,
} from './helpers.ts'

// Kafka REST failures: the direct produce gives up at its deadline, the missing jobs go to the
// durable queue (Miniflare's, consumed by this same worker), the client gets {} once the queue
// holds them, and every job reaches the sink once the fault has ended.

const UNAVAILABLE = KAFKA_UNAVAILABLE
const CALL_IDS = Array.from({ length: 250 }, (_, i) => `c${i}`)

/** One request (250 call ids, 3 messages) with a fault, a 1 s budget and one direct retry. */
const score = ({
  fault,
  vars = {},
}: {
  fault?: Record<string, unknown>
  vars?: Record<string, unknown>
}) =>
  scoreOnFreshTopic({
    fault,
    callIds: CALL_IDS,
    vars: { KAFKA_PRODUCE_TIMEOUT_MS: '1000', KAFKA_PRODUCE_RETRIES: '1', ...vars },
  })

/** Every chunk of the request landed exactly once, each with its own job id. */
async function expectAllDeliveredOnce(topic: string) {
  const messages = await delivered(topic, 3)
  const chunks = messages.map((m) => (JSON.parse(m.value) as { call_ids: string[] }).call_ids)
  expect(chunks.flat().sort()).toEqual([...CALL_IDS].sort())
  const ids = messages.map(jobIdOf)
  expect(new Set(ids).size).toBe(3)
  expect(ids.every((id) => typeof id === 'string' && /^[0-9a-f-]{36}:[0-2]$/.test(id))).toBe(true)
}

describe('a Kafka REST failure falls back to the queue: {} in bounded time, nothing lost', () => {
  it.each([
    ['5xx', { kind: 'status', status: 500, times: 2 }, 2, 'unavailable'],
    [
      '429, not retried in the request',
      { kind: 'status', status: 429, times: 2 },
      1,
      'unavailable',
    ],
    ['a non-JSON error page', { kind: 'html', status: 502, times: 2 }, 2, 'invalid_response'],
    [
      'a rejected credential (401), never retried',
      { kind: 'status', status: 401, times: 1 },
      1,
      'unauthorized',
    ],
    ['another 4xx, never retried', { kind: 'status', status: 400, times: 1 }, 1, 'rejected'],
  ])('%s', async (_, fault, attempts, reason) => {
    const { res, topic, elapsed, line } = await score({ fault })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(elapsed).toBeLessThan(3000)
    expect(line).toMatchObject({
      outcome: 'queued',
      kafka_attempts: attempts,
      kafka_reason: reason,
      queued: 3,
    })
    await expectAllDeliveredOnce(topic)
  })

  it('a hang: {} at the deadline, not after 15 s', async () => {
    const { res, topic, elapsed, line } = await score({
      fault: { kind: 'hang', ms: 3000, times: 1 },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(elapsed).toBeGreaterThanOrEqual(950)
    expect(elapsed).toBeLessThan(3000)
    expect(line).toMatchObject({ outcome: 'queued', kafka_reason: 'timeout' })
    await expectAllDeliveredOnce(topic)
  })

  it('connection refused', async () => {
    const { res, topic, elapsed, line } = await score({
      vars: { UPSTASH_KAFKA_REST_URL: 'http://127.0.0.1:9' },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(elapsed).toBeLessThan(3000)
    expect(line).toMatchObject({ outcome: 'queued', kafka_reason: 'unreachable' })
    await expectAllDeliveredOnce(topic)
  })

  it('wrong Kafka credentials in the request path: one attempt, then the queue', async () => {
    const { res, topic, line } = await score({ vars: { UPSTASH_KAFKA_REST_PASSWORD: 'wrong' } })
    expect(res.status).toBe(200)
    expect(line).toMatchObject({ level: 'alarm', kafka_attempts: 1, kafka_reason: 'unauthorized' })
    await expectAllDeliveredOnce(topic)
  })

  it('a partial acknowledgement queues only the missing messages', async () => {
    const { res, topic, line } = await score({
      fault: { kind: 'partial', failIndexes: [1], times: 1 },
      vars: { KAFKA_PRODUCE_RETRIES: '0' },
    })
    expect(res.status).toBe(200)
    expect(line).toMatchObject({ outcome: 'queued', kafka_acknowledged: 2, queued: 1 })
    await expectAllDeliveredOnce(topic)
  })

  it('a transient failure absorbed by the direct retry never touches the queue', async () => {
    const { res, topic, line } = await score({ fault: { kind: 'status', status: 503, times: 1 } })
    expect(res.status).toBe(200)
    expect(line).toMatchObject({ outcome: 'accepted', kafka_attempts: 2 })
    expect(line.queued).toBeUndefined()
    await expectAllDeliveredOnce(topic)
  })

  it('jobs over the queue message limit are split into smaller chunks, values still Weave-shaped', async () => {
    const topic = uniqueTopic('split')
    await sinkFault(topic, { kind: 'status', status: 500, times: 2 })
    const ids = Array.from(
      { length: 100 },
      (_, i) => `${String(i).padStart(4, '0')}-${'x'.repeat(2000)}`,
    )
    const res = await call({
      key: await createKey(),
      body: validBody({ call_ids: ids }),
      vars: { KAFKA_TOPIC: topic, KAFKA_PRODUCE_TIMEOUT_MS: '1000' },
    })
    expect(res.status).toBe(200)
    const messages = await delivered(topic, 2)
    const values = messages.map((m) => JSON.parse(m.value) as { call_ids: string[] })
    expect(values.length).toBeGreaterThan(1)
    expect(values.flatMap((v) => v.call_ids).sort()).toEqual(ids)
    expect(
      messages.every((m) => m.value.startsWith('{"project_id":"acme/support-bot","call_ids":[')),
    ).toBe(true)
  })
})

describe('only a refusal by the queue too is a 503', () => {
  const down = { kind: 'status', status: 500 }

  it('the queue rejects: 503 with Retry-After', async () => {
    const refusing = { sendBatch: () => Promise.reject(new Error('Queue is overloaded')) }
    const { res, line } = await score({ fault: down, vars: { SCORE_QUEUE: refusing } })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(res.headers.get('retry-after')).toBe('5')
    expect(line).toMatchObject({ outcome: 'kafka_unavailable', queue_reason: 'refused' })
  })

  it('the queue hangs: 503 once QUEUE_SEND_TIMEOUT_MS has passed, well under 6 s', async () => {
    const hanging = { sendBatch: () => new Promise(() => {}) }
    const { res, elapsed, line } = await score({
      fault: { kind: 'hang', ms: 3000 },
      vars: { SCORE_QUEUE: hanging, QUEUE_SEND_TIMEOUT_MS: '1000' },
    })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(elapsed).toBeGreaterThanOrEqual(1900)
    expect(elapsed).toBeLessThan(4000)
    expect(line).toMatchObject({ queue_reason: 'timeout', kafka_reason: 'timeout' })
  })

  it('no queue bound (self-hosted mode): 503', async () => {
    const { res, line } = await score({ fault: down, vars: { SCORE_QUEUE: undefined } })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(line).toMatchObject({ queue_reason: 'no_queue' })
  })
})

describe('configuration and routing', () => {
  it('a deployment without a Kafka URL refuses loudly with 503', async () => {
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: { UPSTASH_KAFKA_REST_URL: '' },
    })
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
  })

  it('broken queue settings refuse loudly with 503', async () => {
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: { QUEUE_MAX_ATTEMPTS: 'lots' },
    })
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
  })

  it('unknown paths answer like FastAPI', async () => {
    const res = await call({ path: '/nope', method: 'GET' })
    expect(await answer(res)).toEqual({ status: 404, body: { detail: 'Not Found' } })
    expect(res.headers.get('x-request-id')).toBeTruthy()
  })

  it.each(['GET', 'PUT', 'DELETE', 'PATCH'])(
    '%s /calls/score is 405 with Allow: POST',
    async (method) => {
      const res = await call({ method })
      expect(await answer(res)).toEqual({ status: 405, body: { detail: 'Method Not Allowed' } })
      expect(res.headers.get('allow')).toBe('POST')
    },
  )

  it('a trailing slash is redirected (307) like Starlette, to a relative Location', async () => {
    const res = await call({ path: '/calls/score/?a=1', key: await createKey(), body: validBody() })
    expect(res.status).toBe(307)
    expect(res.headers.get('location')).toBe('/calls/score?a=1')
  })

  it('the redirect never names the Host a client sent: no open redirect behind a proxy', async () => {
    const res = await fetchWorker(
      new Request('https://evil.example/calls/score/', {
        method: 'POST',
        headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
      }),
    )
    expect(res.status).toBe(307)
    const location = res.headers.get('location') ?? ''
    expect(location).toBe('/calls/score')
    expect(new URL(location, 'https://worker.test').host).toBe('worker.test')
  })
})
