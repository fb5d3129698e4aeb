import type { MiddlewareHandler } from 'hono'
import { cors } from 'hono/cors'
import type { AppEnv } from '../env.ts'
import { perSetting } from '../lib/per-setting.ts'

/**
 * The origins in `CORS_ALLOWED_ORIGINS`: comma-separated, blanks ignored, a trailing slash
 * dropped (browsers never send one in `Origin`, operators often paste one).
 */
export function parseAllowedOrigins(raw: string): Set<string> {
  const origins = new Set<string>()
  for (const part of raw.split(',')) {
    const origin = part.trim().replace(/\/+$/, '')
    if (origin !== '') origins.add(origin)
  }
  return origins
}

/**
 * The request headers an allowed origin's page may send: what Weave's clients send. A fixed list,
 * not the preflight's own list echoed back: the answer is then the same for every preflight (one
 * cached answer per origin, no `Vary: Access-Control-Request-Headers`), and a page can send nothing
 * the API does not know. The Stainless headers are those of Weave's generated clients (Python's,
 * and the TypeScript generator's `X-Stainless-Timeout`); `X-Weave-Retry-Id` is added by Weave's
 * own retry wrapper. A client that starts sending a new header fails its preflight until it is
 * listed here (docs/operations.md, "Browsers").
 */
export const ALLOWED_REQUEST_HEADERS = [
  'Accept',
  'Authorization',
  'Content-Type',
  'X-Request-Id',
  'X-Stainless-Lang',
  'X-Stainless-Package-Version',
  'X-Stainless-OS',
  'X-Stainless-Arch',
  'X-Stainless-Runtime',
  'X-Stainless-Runtime-Version',
  'X-Stainless-Async',
  'X-Stainless-Retry-Count',
  'X-Stainless-Read-Timeout',
  'X-Stainless-Timeout',
  'X-Stainless-Raw-Response',
  'X-Weave-Retry-Id',
] as const

/** Response headers a page's script may read besides the CORS-safelisted ones. */
export const EXPOSED_RESPONSE_HEADERS = [
  'X-Request-Id',
  'Retry-After',
  'retry-after-ms',
  'x-should-retry',
] as const

type Policy = { origins: Set<string>; handler: MiddlewareHandler<AppEnv> }

const policyFor = perSetting((raw: string): Policy => {
  const origins = parseAllowedOrigins(raw)
  return {
    origins,
    handler: cors({
      origin: (origin) => (origins.has(origin) ? origin : null),
      allowMethods: ['GET', 'HEAD', 'POST'],
      allowHeaders: [...ALLOWED_REQUEST_HEADERS],
      // Not CORS-safelisted, so a browser script could not read them otherwise; a generated
      // client decides on its retry from the last three.
      exposeHeaders: [...EXPOSED_RESPONSE_HEADERS],
      maxAge: 600,
    }),
  }
})

/**
 * CORS for browser clients (such as Weave's UI) on the origins of `CORS_ALLOWED_ORIGINS`, none
 * by default. An allowed origin's preflight is answered here; its other requests get the CORS
 * headers on every answer, errors included, so that a page can read a 401, 422 or 503. Any other
 * origin gets no CORS header at all, and its `OPTIONS` reaches the routes, which answer it like
 * FastAPI without CORS (`405`). Mounted inside the request context, so preflights are logged too.
 */
export const corsFromEnv: MiddlewareHandler<AppEnv> = (c, next) => {
  const { origins, handler } = policyFor(c.env.CORS_ALLOWED_ORIGINS ?? '')
  // Not async: with no origin allowed (the default) this layer costs no promise of its own.
  if (origins.size === 0) return next()
  const origin = c.req.header('origin')
  if (origin !== undefined && origins.has(origin)) return handler(c, next)
  return varyOnOrigin(c, next)
}

// The answer depends on Origin, so shared caches must not hand it to an allowed origin.
const varyOnOrigin: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next()
  c.header('Vary', 'Origin', { append: true })
}
