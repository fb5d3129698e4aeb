import { describe, expect, it } from 'vitest'
import {
  answer,
  call,
  captureLogs,
  createKey,
  fetchWorker,
  INTERNAL_FORM,
  KAFKA_UNAVAILABLE,
  scoreOnFreshTopic,
  sdkReaction,
  sinkMessages,
  uniqueTopic,
  validBody,
  weaveSdkBody,
  weaveSdkHeaders,
} from './helpers.ts'

// Weave's SDK retries by itself (its Stainless client: 408, 409, 429, every 5xx, connection
// errors; twice more by default). Every answer it would retry is one where a retry can help and
// nothing was half-done, or it carries `x-should-retry: false`. `sdkReaction` is the client's
// decision, read from weave/vendor/weave_server_sdk/_base_client.py.

const refusingQueue = { sendBatch: () => Promise.reject(new Error('Queue is overloaded')) }
const refusingLimiter: RateLimit = { limit: async () => ({ success: false }) }

describe('what the SDK does with each answer it would retry', () => {
  it('429 over the rate limit: it waits exactly Retry-After (60 s) and retries; nothing enqueued', async () => {
    const topic = uniqueTopic('retry-429')
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: { RATE_LIMITER: refusingLimiter, KAFKA_TOPIC: topic },
    })
    expect(res.status).toBe(429)
    expect(sdkReaction(res)).toEqual({ retries: true, wait: 60, error: 'RateLimitError' })
    expect(await sinkMessages(topic)).toEqual([])
  })

  it('503 when Kafka and the queue both failed: it waits Retry-After (5 s); nothing was held', async () => {
    const { res, topic, line } = await scoreOnFreshTopic({
      fault: { kind: 'status', status: 500 },
      callIds: ['c1'],
      vars: { KAFKA_PRODUCE_TIMEOUT_MS: '1000', SCORE_QUEUE: refusingQueue },
    })
    expect(await answer(res)).toEqual(KAFKA_UNAVAILABLE)
    expect(sdkReaction(res)).toEqual({ retries: true, wait: 5, error: 'InternalServerError' })
    expect(res.headers.get('x-should-retry')).toBeNull()
    expect(line).toMatchObject({ kafka_acknowledged: 0 })
    expect(await sinkMessages(topic)).toEqual([])
  })

  it('503 when the project directory did not answer: it waits Retry-After; nothing produced', async () => {
    const topic = uniqueTopic('retry-directory')
    const failing = { get: () => Promise.reject(new Error('KV GET failed: 503')) }
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: { ...INTERNAL_FORM, PROJECT_IDS: failing, KAFKA_TOPIC: topic },
    })
    expect(res.status).toBe(503)
    expect(sdkReaction(res)).toEqual({ retries: true, wait: 5, error: 'InternalServerError' })
    expect(await sinkMessages(topic)).toEqual([])
  })

  it('503 Service misconfigured: x-should-retry false, so it raises at once', async () => {
    const res = await call({
      key: await createKey(),
      body: validBody(),
      vars: { UPSTASH_KAFKA_REST_URL: '' },
    })
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
    expect(res.headers.get('x-should-retry')).toBe('false')
    expect(sdkReaction(res)).toEqual({ retries: false, wait: null, error: 'InternalServerError' })
  })

  it('503 because Kafka refused our credentials and the queue failed too: x-should-retry false', async () => {
    const { res, line } = await scoreOnFreshTopic({
      fault: { kind: 'status', status: 401 },
      callIds: ['c1'],
      vars: { SCORE_QUEUE: refusingQueue },
    })
    expect(await answer(res)).toEqual(KAFKA_UNAVAILABLE)
    expect(line).toMatchObject({ kafka_reason: 'unauthorized', level: 'error' })
    expect(res.headers.get('x-should-retry')).toBe('false')
    // Retry-After stays for other clients; Stainless obeys x-should-retry first.
    expect(res.headers.get('retry-after')).toBe('5')
    expect(sdkReaction(res).retries).toBe(false)
  })

  it.each([
    [400, 'BadRequestError'],
    [401, 'AuthenticationError'],
    [403, 'PermissionDeniedError'],
    [404, 'NotFoundError'],
    [405, 'APIStatusError'],
    [413, 'APIStatusError'],
    [422, 'UnprocessableEntityError'],
  ])('%i is not retried: it raises %s with the parsed detail', async (status, error) => {
    const res = new Response('{"detail":"x"}', { status })
    expect(sdkReaction(res)).toEqual({ retries: false, wait: null, error })
  })
})

describe("the log line counts the client's attempts", () => {
  const logged = async (headers: Record<string, string>) => {
    const key = await createKey()
    const topic = uniqueTopic('retry-log')
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await fetchWorker(
        new Request('https://worker.test/calls/score', {
          method: 'POST',
          headers: { ...weaveSdkHeaders(key), ...headers },
          body: weaveSdkBody(),
        }),
        { KAFKA_TOPIC: topic },
      )
    })
    return { res, line: logs.find((l) => l.msg === 'request') ?? {} }
  }

  it('x-stainless-retry-count as a number, X-Weave-Retry-Id as sent', async () => {
    const { res, line } = await logged({ 'x-stainless-retry-count': '2' })
    expect(res?.status).toBe(200)
    expect(line).toMatchObject({
      client_retry_count: 2,
      client_retry_id: '6f1c2d0e-8a4b-4c1e-9d2f-3b5a7e9c1d42',
      outcome: 'accepted',
    })
  })

  it('bounded and sanitised: at most 64 safe characters, never raw control or quote bytes', async () => {
    const { line } = await logged({
      'x-stainless-retry-count': 'one"\t}{',
      'X-Weave-Retry-Id': `${'a'.repeat(60)}"<script>\u00ff${'b'.repeat(100)}`,
    })
    expect(line.client_retry_count).toBe('one____')
    expect(line.client_retry_id).toBe(`${'a'.repeat(60)}__sc`)
    expect(String(line.client_retry_id)).toHaveLength(64)
  })

  it('absent headers leave the fields out', async () => {
    const key = await createKey()
    const logs = await captureLogs(() =>
      call({ key, body: validBody(), vars: { KAFKA_TOPIC: uniqueTopic('retry-none') } }),
    )
    const line = logs.find((l) => l.msg === 'request') ?? {}
    expect(line).not.toHaveProperty('client_retry_count')
    expect(line).not.toHaveProperty('client_retry_id')
  })
})
