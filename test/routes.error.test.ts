import { describe, expect, it, vi } from 'vitest'
import { answer, call } from './helpers.ts'

// Paths and methods outside the API answer like FastAPI; /health stays cheap and independent of
// the configuration.

const NOT_FOUND = { status: 404, body: { detail: 'Not Found' } }
const METHOD_NOT_ALLOWED = { status: 405, body: { detail: 'Method Not Allowed' } }

/** Bindings that fail loudly if anything reads them. */
const untouchable = new Proxy(
  {},
  {
    get: (_, name) => {
      throw new Error(`binding read: ${String(name)}`)
    },
  },
)

describe('GET /health', () => {
  it('answers {"status":"ok"} with a request id', async () => {
    const res = await call({ method: 'GET', path: '/health', contentType: null })
    expect(res.headers.get('x-request-id')).toBeTruthy()
    expect(await answer(res)).toEqual({ status: 200, body: { status: 'ok' } })
  })

  it('reads no configuration, secret, key or limiter and calls nothing, even when all are broken', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch')
    const res = await call({
      method: 'GET',
      path: '/health',
      contentType: null,
      vars: {
        UPSTASH_KAFKA_REST_URL: '',
        UPSTASH_KAFKA_REST_USERNAME: undefined,
        UPSTASH_KAFKA_REST_PASSWORD: undefined,
        MAX_CALL_IDS: 'lots',
        API_KEYS: untouchable,
        RATE_LIMITER: untouchable,
        SCORE_QUEUE: untouchable,
      },
    })
    expect(await answer(res)).toEqual({ status: 200, body: { status: 'ok' } })
    expect(fetchSpy).not.toHaveBeenCalled()
  })

  it('HEAD is answered like GET, without a body', async () => {
    const res = await call({ method: 'HEAD', path: '/health', contentType: null })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
  })
})

describe('unknown paths: 404 {"detail":"Not Found"}', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['POST', '/calls'],
    ['POST', '/calls/score/extra'],
    ['GET', '/health/'],
    ['GET', '/openapi.yaml'],
    ['GET', '/docs/oauth2-redirect'],
  ])('%s %s', async (method, path) => {
    const res = await call({ method, path, contentType: null })
    expect(await answer(res)).toEqual(NOT_FOUND)
    expect(res.headers.get('x-request-id')).toBeTruthy()
  })
})

describe('wrong methods: 405 {"detail":"Method Not Allowed"} with Allow', () => {
  it.each([
    ['/health', 'GET'],
    ['/openapi.json', 'GET'],
    ['/docs', 'GET'],
    ['/calls/score', 'POST'],
  ])('%s allows only %s', async (path, allow) => {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      if (method === allow) continue
      const res = await call({ method, path, contentType: null })
      expect(await answer(res), `${method} ${path}`).toEqual(METHOD_NOT_ALLOWED)
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow)
    }
  })
})
