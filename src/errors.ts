import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { AppEnv } from './env.ts'
import { renderJson } from './fastapi/pyjson.ts'
import type { PydanticError } from './fastapi/validation.ts'

/** Every failure the worker answers with, besides validation errors and basic auth's own 401. */
export type ErrorCode =
  | 'body_parse'
  | 'payload_too_large'
  | 'forbidden'
  | 'kafka_unavailable'
  | 'directory_unavailable'
  | 'misconfigured'
  | 'not_found'
  | 'project_not_found'
  | 'method_not_allowed'
  | 'rate_limited'
  | 'internal'

const statusOf = {
  body_parse: 400,
  forbidden: 403,
  not_found: 404,
  project_not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  kafka_unavailable: 503,
  directory_unavailable: 503,
  misconfigured: 503,
} as const satisfies Record<ErrorCode, number>

/**
 * A failure with a FastAPI-shaped `{"detail": "..."}` body. The detail is what the client sees;
 * anything an operator needs goes to the request log through `logFields`, never to the wire.
 */
export class ApiError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly logFields: Readonly<Record<string, unknown>> = {},
  ) {
    super(statusOf[code], { message: detail })
  }
}

/** The header with which a Stainless client (Weave's SDKs) is told not to retry, whatever the status. */
export const NO_RETRY = { 'x-should-retry': 'false' } as const

/**
 * Answers Weave's SDK would retry (429, every 5xx) where a retry within its few seconds of
 * backoff cannot help: a deployment missing settings or secrets, and Kafka refusing our
 * credentials while the fallback queue also failed. Both need an operator; retrying only
 * multiplies the load and the alarms. Every other retried answer is one where nothing is held
 * for the client's jobs unless they were also sent to Kafka, which a retry duplicates at worst
 * and never loses (docs/operations.md, "How Weave's SDK reacts").
 */
function retryIsFutile(err: ApiError): boolean {
  if (err.code === 'misconfigured') return true
  return err.code === 'kafka_unavailable' && err.logFields.kafka_reason === 'unauthorized'
}

/**
 * Weave's `InvalidExternalRef`, as its server answers it: `400` with the error registry's body
 * `{"reason": "<message>"}` (`weave/trace_server/errors.py`), not FastAPI's `detail`, so a client
 * sees what the Python server would have said.
 */
export class InvalidExternalRef extends Error {
  constructor(readonly reason: string) {
    super(reason)
  }
}

/** FastAPI's RequestValidationError: a 422 whose detail is pydantic's error list. */
export class RequestValidationError extends Error {
  constructor(readonly errors: readonly PydanticError[]) {
    super('request validation failed')
  }
}

/** Rendered the way Starlette's JSONResponse does (compact, UTF-8, Python number reprs). */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(renderJson(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

/** FastAPI's answer to a method a path does not serve: `405` with the methods it does, in `Allow`. */
export const methodNotAllowed = (allow: string) => () =>
  jsonResponse(405, { detail: 'Method Not Allowed' }, { Allow: allow })

/**
 * The one place that maps failures to the wire. HTTPExceptions that already carry a response
 * (basic auth's 401 with WWW-Authenticate) go out untouched; anything unexpected is logged and
 * becomes FastAPI's plain 500 without details.
 */
export function handleError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof RequestValidationError) {
    c.get('log').outcome = 'invalid'
    return jsonResponse(422, { detail: err.errors })
  }
  if (err instanceof InvalidExternalRef) {
    c.get('log').outcome = 'invalid_ref'
    return jsonResponse(400, { reason: err.reason })
  }
  if (err instanceof ApiError) {
    Object.assign(c.get('log'), { outcome: err.code }, err.logFields)
    const headers = retryIsFutile(err) ? { ...err.headers, ...NO_RETRY } : { ...err.headers }
    return jsonResponse(err.status, { detail: err.detail }, headers)
  }
  if (err instanceof HTTPException) {
    c.get('log').outcome = err.status === 401 ? 'unauthenticated' : `http_${err.status}`
    return err.getResponse()
  }
  Object.assign(c.get('log'), {
    outcome: 'internal',
    error: err.name,
    error_message: err.message,
  })
  return jsonResponse(500, { detail: 'Internal Server Error' })
}
