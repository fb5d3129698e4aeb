import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.ts'

/**
 * Fields of the one JSON log line written per request. Handlers add to it as they learn things;
 * it must never hold a key, a password or an Authorization header.
 */
export type RequestLog = Record<string, unknown> & { outcome?: string }

const REQUEST_ID = /^[\w\-=]{1,255}$/

/** How long a client's retry header may be in the log; longer values are cut. */
export const CLIENT_HEADER_MAX_CHARS = 64

// Anything else becomes `_`, so a client cannot forge log structure or smuggle control bytes.
const UNSAFE = /[^\w.:=+/-]/g

/** A client header as the log may hold it: at most 64 characters, none outside a safe set. */
export function sanitizeClientHeader(value: string): string {
  return value.slice(0, CLIENT_HEADER_MAX_CHARS).replace(UNSAFE, '_')
}

/**
 * The client's own retry bookkeeping, for an operator counting retries: Stainless clients send
 * their attempt (`x-stainless-retry-count`: 0, 1, 2), Weave's retry wrapper one id per logical
 * call (`X-Weave-Retry-Id`), the same on each attempt. A count is logged as a number when it is one.
 */
function clientAttempt(c: Parameters<MiddlewareHandler<AppEnv>>[0]): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  const count = c.req.header('x-stainless-retry-count')
  if (count !== undefined) {
    fields.client_retry_count = /^\d{1,6}$/.test(count)
      ? Number(count)
      : sanitizeClientHeader(count)
  }
  const retryId = c.req.header('x-weave-retry-id')
  if (retryId !== undefined) fields.client_retry_id = sanitizeClientHeader(retryId)
  return fields
}

/** The header every answer carries the request id in. */
export const REQUEST_ID_HEADER = 'X-Request-Id'

/**
 * Outermost middleware: picks the request id (a well-formed incoming `X-Request-Id` is kept so
 * callers can correlate), stamps it on every response, errors included, and writes the log line.
 */
export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = Date.now()
  const incoming = c.req.header('x-request-id')
  const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
  const log: RequestLog = {}
  c.set('requestId', requestId)
  c.set('log', log)
  await next()
  // Handlers on the hot path put it in their Response already: setting a header on a built
  // Response costs workerd more than building the Response did.
  if (!c.res.headers.has(REQUEST_ID_HEADER)) c.res.headers.set(REQUEST_ID_HEADER, requestId)
  const status = c.res.status
  const line = {
    level: status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info',
    msg: 'request',
    request_id: requestId,
    method: c.req.method,
    path: c.req.path,
    status,
    outcome: status < 400 ? 'accepted' : `http_${status}`,
    ...clientAttempt(c),
    ...log,
    latency_ms: Date.now() - started,
  }
  if (status >= 500) console.error(JSON.stringify(line))
  else console.log(JSON.stringify(line))
}
