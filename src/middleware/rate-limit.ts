import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../errors.ts'

/**
 * Per-key rate limiting with the Workers Rate Limiting binding `RATE_LIMITER` (limit and period
 * in `wrangler.toml`, `[[ratelimits]]`). Mounted after authentication, so only a known key is
 * counted, and counted under its SHA-256: the raw key never leaves the worker. Over the limit:
 * `429` with `Retry-After` (`RATE_LIMIT_RETRY_AFTER_SECONDS`, the binding's period). Without
 * the binding there is no limit. If the binding itself fails, the request goes through: the
 * limit protects capacity, it is not what keeps anyone out.
 */
export const rateLimitPerKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  const limiter: RateLimit | undefined = c.env.RATE_LIMITER
  if (limiter === undefined) return next()
  // Basic auth has accepted the key already and hashed it once; the limit counts that hash.
  const keyHash: string | undefined = c.get('keyHash')
  if (keyHash === undefined) return next()
  let allowed: boolean
  try {
    allowed = (await limiter.limit({ key: keyHash })).success
  } catch (err) {
    c.get('log').rate_limit_error = err instanceof Error ? err.message : String(err)
    return next()
  }
  if (!allowed) {
    throw new ApiError('rate_limited', 'Rate limit exceeded for this API key. Retry later.', {
      'Retry-After': String(c.get('config').rateLimitRetryAfterSeconds),
    })
  }
  await next()
}
