import { describe, expect, it } from 'vitest'
import {
  answer,
  call,
  createKey,
  sinkFault,
  sinkMessages,
  sinkProduceCount,
  uniqueTopic,
  validBody,
} from './helpers.ts'

const UNAVAILABLE = {
  status: 503,
  body: { detail: 'Kafka is unavailable: the scoring jobs were not accepted. Retry later.' },
}

/** A request against a topic with a sink fault, timed. */
async function scoreWithFault(
  fault: Record<string, unknown> | null,
  vars: Record<string, string> = {},
) {
  const topic = uniqueTopic('fault')
  if (fault) await sinkFault(topic, fault)
  const key = await createKey()
  const started = Date.now()
  const res = await call({
    key,
    body: validBody({ call_ids: Array.from({ length: 150 }, (_, i) => `c${i}`) }),
    vars: {
      KAFKA_TOPIC: topic,
      KAFKA_PRODUCE_TIMEOUT_MS: '1000',
      KAFKA_PRODUCE_RETRIES: '1',
      ...vars,
    },
  })
  return { res, topic, elapsed: Date.now() - started }
}

describe('Kafka REST failures answer 503 in bounded time', () => {
  it('5xx: retried once within the budget, then 503 with Retry-After', async () => {
    const { res, topic, elapsed } = await scoreWithFault({ kind: 'status', status: 500 })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(res.headers.get('retry-after')).toBe('5')
    expect(await sinkProduceCount(topic)).toBe(2)
    expect(elapsed).toBeLessThan(3000)
  })

  it('a transient 503 is absorbed by the retry and the jobs land once', async () => {
    const { res, topic } = await scoreWithFault({ kind: 'status', status: 503, times: 1 })
    expect(res.status).toBe(200)
    expect(await sinkMessages(topic)).toHaveLength(2)
  })

  it('429 counts as retriable', async () => {
    const { res, topic } = await scoreWithFault({ kind: 'status', status: 429 })
    expect(res.status).toBe(503)
    expect(await sinkProduceCount(topic)).toBe(2)
  })

  it('a credential rejected by Kafka REST (401) is tried once, never again', async () => {
    const { res, topic, elapsed } = await scoreWithFault(
      { kind: 'status', status: 401 },
      {
        KAFKA_PRODUCE_RETRIES: '5',
      },
    )
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(await sinkProduceCount(topic)).toBe(1)
    expect(elapsed).toBeLessThan(3000)
  })

  it('wrong Kafka credentials in the config: 503 after one attempt', async () => {
    const { res, topic } = await scoreWithFault(null, { UPSTASH_KAFKA_REST_PASSWORD: 'wrong' })
    expect(res.status).toBe(503)
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('another 4xx is a rejection: not retried', async () => {
    const { res, topic } = await scoreWithFault({ kind: 'status', status: 400 })
    expect(res.status).toBe(503)
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('a hang past the deadline answers 503 at the deadline, not after 15 s', async () => {
    const { res, elapsed } = await scoreWithFault(
      { kind: 'hang' },
      { KAFKA_PRODUCE_TIMEOUT_MS: '500' },
    )
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(elapsed).toBeGreaterThanOrEqual(450)
    expect(elapsed).toBeLessThan(2500)
  })

  it('connection refused answers 503 quickly', async () => {
    const { res, elapsed } = await scoreWithFault(null, {
      UPSTASH_KAFKA_REST_URL: 'http://127.0.0.1:9',
    })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(elapsed).toBeLessThan(3000)
  })

  it('a non-JSON error page (a proxy 502) answers 503', async () => {
    const { res, topic } = await scoreWithFault({ kind: 'html', status: 502 })
    expect(await answer(res)).toEqual(UNAVAILABLE)
    expect(await sinkProduceCount(topic)).toBe(2)
  })

  it('a partial acknowledgement retries only the missing messages', async () => {
    const { res, topic } = await scoreWithFault({ kind: 'partial', failIndexes: [1], times: 1 })
    expect(res.status).toBe(200)
    const values = (await sinkMessages(topic)).map(
      (m) => (JSON.parse(m.value) as { call_ids: string[] }).call_ids[0],
    )
    expect(values).toEqual(['c0', 'c100'])
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

  it('a trailing slash is redirected (307) like Starlette', async () => {
    const res = await call({ path: '/calls/score/?a=1', key: await createKey(), body: validBody() })
    expect(res.status).toBe(307)
    expect(res.headers.get('location')).toBe('https://worker.test/calls/score?a=1')
  })
})
