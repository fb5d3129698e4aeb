import { describe, expect, it } from 'vitest'
import { parseAllowedOrigins } from '../src/middleware/cors.ts'
import { answer, call, createKey, uniqueTopic, validBody } from './helpers.ts'

// CORS: only the origins of CORS_ALLOWED_ORIGINS get CORS headers, on every answer; any other
// origin is treated as if there were no CORS at all (FastAPI without CORSMiddleware).

const UI = 'https://wandb.ai'
const ALLOWED = { CORS_ALLOWED_ORIGINS: ` ${UI}/ , https://weave.example.com` }

const preflight = (
  origin: string,
  vars: Record<string, unknown> = ALLOWED,
  path = '/calls/score',
) =>
  call({
    method: 'OPTIONS',
    path,
    contentType: null,
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
    vars,
  })

const ALLOW_HEADERS =
  'Accept,Authorization,Content-Type,X-Request-Id,X-Stainless-Lang,X-Stainless-Package-Version,X-Stainless-OS,X-Stainless-Arch,X-Stainless-Runtime,X-Stainless-Runtime-Version,X-Stainless-Async,X-Stainless-Retry-Count,X-Stainless-Read-Timeout,X-Stainless-Timeout,X-Stainless-Raw-Response,X-Weave-Retry-Id'
const EXPOSE_HEADERS = 'X-Request-Id,Retry-After,retry-after-ms,x-should-retry'

/** Every request header Weave's Python SDK sends on `POST /calls/score`, lower-cased as browsers list them. */
const WEAVE_SDK_REQUEST_HEADERS = [
  'accept',
  'authorization',
  'content-type',
  'x-stainless-arch',
  'x-stainless-async',
  'x-stainless-lang',
  'x-stainless-os',
  'x-stainless-package-version',
  'x-stainless-read-timeout',
  'x-stainless-retry-count',
  'x-stainless-runtime',
  'x-stainless-runtime-version',
  'x-weave-retry-id',
]

const corsHeaders = (res: Response) =>
  [...res.headers.keys()].filter((name) => name.startsWith('access-control-'))

describe('an allowed origin', () => {
  it('gets its preflight answered: methods, Authorization and Content-Type, a max age', async () => {
    const res = await preflight(UI)
    expect(res.status).toBe(204)
    expect(await res.text()).toBe('')
    expect(res.headers.get('access-control-allow-origin')).toBe(UI)
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,HEAD,POST')
    expect(res.headers.get('access-control-allow-headers')).toBe(ALLOW_HEADERS)
    expect(res.headers.get('access-control-max-age')).toBe('600')
    expect(res.headers.get('vary')).toContain('Origin')
    expect(res.headers.get('x-request-id')).toBeTruthy()
    // Basic credentials travel in a header the page sets, never as cookies: no credentials mode.
    expect(res.headers.get('access-control-allow-credentials')).toBeNull()
  })

  it("allows every header Weave's clients send (a browser checks each one case-insensitively)", async () => {
    const res = await call({
      method: 'OPTIONS',
      contentType: null,
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': WEAVE_SDK_REQUEST_HEADERS.join(','),
      },
      vars: ALLOWED,
    })
    expect(res.status).toBe(204)
    const allowed = new Set(
      (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(','),
    )
    for (const header of [...WEAVE_SDK_REQUEST_HEADERS, 'x-stainless-timeout', 'x-request-id']) {
      expect(allowed.has(header), header).toBe(true)
    }
  })

  it('gets the CORS headers on a success, with X-Request-Id and the retry headers exposed', async () => {
    const res = await call({
      key: await createKey(),
      body: validBody(),
      headers: { origin: 'https://weave.example.com' },
      vars: { ...ALLOWED, KAFKA_TOPIC: uniqueTopic('cors') },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(res.headers.get('access-control-allow-origin')).toBe('https://weave.example.com')
    expect(res.headers.get('access-control-expose-headers')).toBe(EXPOSE_HEADERS)
    expect(res.headers.get('vary')).toContain('Origin')
  })

  it.each([
    ['401 without credentials', {}, 401],
    ['422 for a bad body', { body: {} }, 422],
    ['404 for an unknown path', { path: '/nope', method: 'GET' }, 404],
    ['405 for a wrong method', { method: 'PUT' }, 405],
    ['503 when misconfigured', { vars: { ...ALLOWED, UPSTASH_KAFKA_REST_URL: '' } }, 503],
  ] as const)('gets them on errors too, so the page can read them: %s', async (_, over, status) => {
    const key = 'body' in over ? await createKey() : undefined
    const res = await call({
      ...(key !== undefined && { key }),
      headers: { origin: UI },
      vars: ALLOWED,
      ...over,
    })
    expect(res.status).toBe(status)
    expect(res.headers.get('access-control-allow-origin')).toBe(UI)
    expect(res.headers.get('access-control-expose-headers')).toBe(EXPOSE_HEADERS)
    if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Basic realm="weave"')
  })

  it('gets them on GET /openapi.json, so a browser tool can load the document', async () => {
    const res = await call({
      method: 'GET',
      path: '/openapi.json',
      contentType: null,
      headers: { origin: UI },
      vars: ALLOWED,
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBe(UI)
  })
})

describe('any other origin gets no CORS headers at all', () => {
  it.each([
    ['an unlisted origin', 'https://evil.example'],
    ['a listed origin as a prefix', 'https://wandb.ai.evil.example'],
    ['another scheme', 'http://wandb.ai'],
    ['another case', 'https://WANDB.AI'],
    ['the opaque origin', 'null'],
  ])(
    '%s: its preflight is 405 like FastAPI, its requests carry no CORS headers',
    async (_, origin) => {
      const pre = await preflight(origin)
      expect(await answer(pre)).toEqual({ status: 405, body: { detail: 'Method Not Allowed' } })
      expect(pre.headers.get('allow')).toBe('POST')
      expect(corsHeaders(pre)).toEqual([])
      // Shared caches must not serve this answer to an allowed origin.
      expect(pre.headers.get('vary')).toContain('Origin')

      const res = await call({ body: {}, headers: { origin }, vars: ALLOWED })
      expect(res.status).toBe(401)
      expect(corsHeaders(res)).toEqual([])
    },
  )

  it('and by default (CORS_ALLOWED_ORIGINS empty) no origin is allowed', async () => {
    const pre = await preflight(UI, {})
    expect(pre.status).toBe(405)
    expect(corsHeaders(pre)).toEqual([])
    const res = await call({ key: await createKey(), body: {}, headers: { origin: UI } })
    expect(res.status).toBe(422)
    expect(corsHeaders(res)).toEqual([])
  })
})

describe('CORS_ALLOWED_ORIGINS', () => {
  it('is a comma-separated list; blanks and trailing slashes are ignored', () => {
    expect([...parseAllowedOrigins(' https://a.example/, ,https://b.example:8443 ,')]).toEqual([
      'https://a.example',
      'https://b.example:8443',
    ])
    expect(parseAllowedOrigins('').size).toBe(0)
  })
})
