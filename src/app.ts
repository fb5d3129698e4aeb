import { Hono } from 'hono'
import type { Config } from './config.ts'
import type { AppEnv } from './env.ts'
import { handleError, jsonResponse, methodNotAllowed } from './errors.ts'
import type { JobProducer } from './kafka/producer.ts'
import { type ProducerUse, producerFor } from './kafka/select.ts'
import { corsFromEnv } from './middleware/cors.ts'
import { requestContext } from './middleware/request-context.ts'
import { registerCallsScore } from './routes/calls-score.ts'
import { registerOpenApi } from './routes/openapi.ts'

/** What the app needs from the outside world; tests swap the Kafka producer for fault cases. */
export type AppDeps = { producerFor: (config: Config, use?: ProducerUse) => JobProducer }

/** The configured dialect's producer, one per configuration (that is, per isolate and deployment). */
export const defaultDeps: AppDeps = { producerFor }

/**
 * Builds the worker's Hono app. Order matters: the request context (id, log line) wraps
 * everything, so every answer, errors included, carries `X-Request-Id` and is logged once.
 */
export function createApp(deps: AppDeps = defaultDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: true })
  app.use(requestContext)
  // Inside the request context (preflights get an id and a log line), outside everything else
  // (errors to an allowed origin carry CORS headers, so the page can read them).
  app.use(corsFromEnv)
  // Liveness only: no configuration, no secrets, no Kafka call.
  app.get('/health', () => jsonResponse(200, { status: 'ok' }))
  app.all('/health', methodNotAllowed('GET'))
  registerCallsScore(app, deps)
  registerOpenApi(app)
  // Starlette's redirect_slashes: a trailing slash is redirected to the route. Starlette writes
  // an absolute URL built from the Host header; behind a proxy that forwards any Host that is an
  // open redirect, so the Location here is relative (RFC 9110 §10.2.2), query string kept.
  app.all('/calls/score/', (c) => {
    const { search } = new URL(c.req.url)
    return new Response(null, { status: 307, headers: { location: `/calls/score${search}` } })
  })
  app.notFound(() => jsonResponse(404, { detail: 'Not Found' }))
  app.onError(handleError)
  return app
}
