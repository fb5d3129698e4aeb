import type { MiddlewareHandler } from 'hono'
import * as z from 'zod'
import type { AppEnv } from './env.ts'
import { ApiError } from './errors.ts'

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** Wrangler vars and secrets, checked once per isolate and env object. */
const ConfigSchema = z.object({
  KAFKA_TOPIC: z.string().min(1),
  KAFKA_PROJECT_BUCKETS: int(1, 1_000_000),
  UPSTASH_KAFKA_REST_URL: z.url({ protocol: /^https?$/ }),
  UPSTASH_KAFKA_REST_USERNAME: z.string().min(1),
  UPSTASH_KAFKA_REST_PASSWORD: z.string().min(1),
  KAFKA_PRODUCE_TIMEOUT_MS: int(1, 60_000),
  KAFKA_PRODUCE_RETRIES: int(0, 10),
  RETRY_AFTER_SECONDS: int(0, 86_400),
  MAX_CALL_IDS: int(0, 1_000_000),
  MAX_SCORER_REFS: int(0, 100_000),
  MAX_BODY_BYTES: int(1, 100 * 1024 * 1024),
  AUTH_REALM: z.string().min(1),
})

/** Typed configuration derived from the Worker's bindings. */
export type Config = {
  topic: string
  projectBuckets: number
  kafka: { url: string; username: string; password: string }
  produceTimeoutMs: number
  produceRetries: number
  retryAfterSeconds: number
  maxCallIds: number
  maxScorerRefs: number
  maxBodyBytes: number
  authRealm: string
}

/** Either a usable configuration or the list of settings that are wrong, for the operator's log. */
export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] }

const cache = new WeakMap<object, ConfigResult>()

/** Parses (and caches per env object) the configuration; never throws. */
export function loadConfig(env: Env): ConfigResult {
  const cached = cache.get(env)
  if (cached) return cached
  const parsed = ConfigSchema.safeParse(env)
  const result: ConfigResult = parsed.success
    ? {
        ok: true,
        config: {
          topic: parsed.data.KAFKA_TOPIC,
          projectBuckets: parsed.data.KAFKA_PROJECT_BUCKETS,
          kafka: {
            url: parsed.data.UPSTASH_KAFKA_REST_URL,
            username: parsed.data.UPSTASH_KAFKA_REST_USERNAME,
            password: parsed.data.UPSTASH_KAFKA_REST_PASSWORD,
          },
          produceTimeoutMs: parsed.data.KAFKA_PRODUCE_TIMEOUT_MS,
          produceRetries: parsed.data.KAFKA_PRODUCE_RETRIES,
          retryAfterSeconds: parsed.data.RETRY_AFTER_SECONDS,
          maxCallIds: parsed.data.MAX_CALL_IDS,
          maxScorerRefs: parsed.data.MAX_SCORER_REFS,
          maxBodyBytes: parsed.data.MAX_BODY_BYTES,
          authRealm: parsed.data.AUTH_REALM,
        },
      }
    : {
        ok: false,
        // Names only: a secret's value must never reach a log line.
        problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      }
  cache.set(env, result)
  return result
}

/**
 * Refuses every request loudly while the deployment is misconfigured, before anything is read:
 * a missing Kafka URL or secret is an operator's problem and must never look like success.
 */
export const requireConfig: MiddlewareHandler<AppEnv> = async (c, next) => {
  const result = loadConfig(c.env)
  if (!result.ok) {
    throw new ApiError(
      'misconfigured',
      'Service misconfigured',
      {},
      {
        level: 'error',
        config_problems: result.problems,
      },
    )
  }
  c.set('config', result.config)
  await next()
}
