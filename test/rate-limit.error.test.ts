import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { hashApiKey } from '../src/auth/keys.ts'
import {
  answer,
  call,
  captureLogs,
  createKey,
  sinkMessages,
  uniqueTopic,
  validBody,
} from './helpers.ts'

// Per-key rate limiting through Miniflare's simulation of the Workers Rate Limiting binding.
// RATE_LIMIT_TEST (vitest.config.ts) allows 2 requests per 60 s window; it stands in for
// wrangler.toml's RATE_LIMITER (100 per 60 s) so that a test can exceed it in a few requests.

const LIMIT = 2
const RATE_LIMITED = {
  status: 429,
  body: { detail: 'Rate limit exceeded for this API key. Retry later.' },
}

function testLimiter(): RateLimit {
  const binding: unknown = Reflect.get(env, 'RATE_LIMIT_TEST')
  if (typeof binding !== 'object' || binding === null || !('limit' in binding)) {
    throw new Error('RATE_LIMIT_TEST is not bound: see vitest.config.ts')
  }
  return binding as RateLimit
}

/** The test limiter, recording the keys it is asked about. */
function recordingLimiter(keys: string[], limiter: RateLimit = testLimiter()): RateLimit {
  return {
    limit: (options) => {
      keys.push(options.key)
      return limiter.limit(options)
    },
  }
}

/**
 * `n` sequential requests with one key. Windows are aligned to the clock, so a run may straddle
 * two of them; it takes far less than a window, so it straddles at most one, and `2 * LIMIT + 1`
 * requests always include a refused one.
 */
async function burst(key: string, n: number, vars: Record<string, unknown>, body: unknown = {}) {
  const answers: { res: Response; status: number }[] = []
  const logs = await captureLogs(async () => {
    for (let i = 0; i < n; i++) {
      const res = await call({ key, body, vars })
      answers.push({ res, status: res.status })
    }
  })
  return { answers, statuses: answers.map((a) => a.status), logs }
}

const statuses = async (key: string, n: number, vars: Record<string, unknown>) =>
  (await burst(key, n, vars)).statuses

describe('per-key rate limiting', () => {
  it('wrangler.toml binds RATE_LIMITER, and a request under its limit goes through', async () => {
    expect(typeof env.RATE_LIMITER.limit).toBe('function')
    const res = await call({ key: await createKey(), body: {} })
    expect(res.status).toBe(422)
  })

  it('over the limit: 429, Retry-After, a FastAPI detail, and the request is logged as such', async () => {
    const { answers, statuses, logs } = await burst(await createKey(), 2 * LIMIT + 1, {
      RATE_LIMITER: testLimiter(),
    })
    expect(statuses.slice(0, LIMIT)).toEqual([422, 422])
    const refused = answers.find((a) => a.status === 429)?.res
    if (!refused) throw new Error(`no request was refused: ${statuses.join()}`)
    expect(await answer(refused)).toEqual(RATE_LIMITED)
    expect(refused.headers.get('retry-after')).toBe('60')
    const id = refused.headers.get('x-request-id')
    expect(id).toBeTruthy()
    expect(logs.find((l) => l.request_id === id)).toMatchObject({
      status: 429,
      outcome: 'rate_limited',
    })
  })

  it('a refused request enqueues nothing', async () => {
    const topic = uniqueTopic('ratelimited')
    const vars = { RATE_LIMITER: testLimiter(), KAFKA_TOPIC: topic }
    const { statuses } = await burst(await createKey(), 2 * LIMIT + 1, vars, validBody())
    expect(statuses).toContain(429)
    expect(statuses.filter((s) => s !== 429).every((s) => s === 200)).toBe(true)
    // One message per accepted request (one call id each), none for the refused ones.
    const accepted = statuses.filter((s) => s === 200).length
    expect(await sinkMessages(topic)).toHaveLength(accepted)
  })

  it('counts each key on its own', async () => {
    const vars = { RATE_LIMITER: testLimiter() }
    expect(await statuses(await createKey(), 2 * LIMIT + 1, vars)).toContain(429)
    expect(await statuses(await createKey(), LIMIT, vars)).toEqual([422, 422])
  })

  it('counts under the SHA-256 of the key, never the key itself', async () => {
    const keys: string[] = []
    const key = await createKey()
    await call({ key, body: {}, vars: { RATE_LIMITER: recordingLimiter(keys) } })
    expect(keys).toEqual([await hashApiKey(key)])
    expect(keys.join()).not.toContain(key)
  })

  it('counts only authenticated requests: a bad or missing key is a 401 and costs nothing', async () => {
    const keys: string[] = []
    const vars = { RATE_LIMITER: recordingLimiter(keys) }
    expect((await call({ key: 'not-a-key', body: {}, vars })).status).toBe(401)
    expect((await call({ body: {}, vars })).status).toBe(401)
    expect(keys).toEqual([])
  })

  it('no binding, no limit', async () => {
    const key = await createKey()
    const seen = await statuses(key, 2 * LIMIT + 1, { RATE_LIMITER: undefined })
    expect(seen).toEqual(Array(2 * LIMIT + 1).fill(422))
  })

  it('a failing binding lets the request through and says so in the log', async () => {
    const broken: RateLimit = { limit: () => Promise.reject(new Error('limiter down')) }
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await call({ key: await createKey(), body: {}, vars: { RATE_LIMITER: broken } })
    })
    expect(res?.status).toBe(422)
    expect(logs.find((l) => l.msg === 'request')).toMatchObject({
      rate_limit_error: 'limiter down',
    })
  })

  it('an unusable RATE_LIMIT_RETRY_AFTER_SECONDS is a misconfiguration, not a silent default', async () => {
    const res = await call({
      key: await createKey(),
      body: {},
      vars: { RATE_LIMITER: testLimiter(), RATE_LIMIT_RETRY_AFTER_SECONDS: 'soon' },
    })
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
  })
})
