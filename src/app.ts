import { Hono } from 'hono'
import type { Config } from './config.ts'
import type { AppEnv } from './env.ts'
import { handleError, jsonResponse } from './errors.ts'
import type { JobProducer } from './kafka/producer.ts'
import { UpstashProducer } from './kafka/upstash.ts'
import { requestContext } from './middleware/request-context.ts'
import { registerCallsScore } from './routes/calls-score.ts'

/** What the app needs from the outside world; tests swap the Kafka producer for fault cases. */
export type AppDeps = { producerFor: (config: Config) => JobProducer }

const producers = new WeakMap<Config, JobProducer>()

/** One Kafka client per configuration (that is, per isolate and deployment). */
export const defaultDeps: AppDeps = {
  producerFor: (config) => {
    let producer = producers.get(config)
    if (!producer) {
      producer = new UpstashProducer(config.kafka)
      producers.set(config, producer)
    }
    return producer
  },
}

/**
 * Builds the worker's Hono app. Order matters: the request context (id, log line) wraps
 * everything, so every answer, errors included, carries `X-Request-Id` and is logged once.
 */
export function createApp(deps: AppDeps = defaultDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: true })
  app.use(requestContext)
  // Liveness only: no secrets, no Kafka call.
  app.get('/health', () => jsonResponse(200, { status: 'ok' }))
  registerCallsScore(app, deps)
  // Starlette's redirect_slashes: a trailing slash is redirected to the route.
  app.all('/calls/score/', (c) => {
    const url = new URL(c.req.url)
    url.pathname = '/calls/score'
    return new Response(null, { status: 307, headers: { location: url.toString() } })
  })
  app.notFound(() => jsonResponse(404, { detail: 'Not Found' }))
  app.onError(handleError)
  return app
}
