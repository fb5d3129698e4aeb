import type { MiddlewareHandler } from 'hono'
import { basicAuth } from 'hono/basic-auth'
import type { AppEnv } from '../env.ts'
import { lookupApiKey } from './keys.ts'

const BASIC_SCHEME = /^ *basic +/i

function forRealm(realm: string): MiddlewareHandler<AppEnv> {
  return basicAuth({
    realm,
    verifyUser: async (_username, password, ctx) => {
      if (password === '') return false
      const found = await lookupApiKey(ctx.env.API_KEYS, password)
      if (!found.found) {
        if (found.corrupt) Object.assign(ctx.get('log'), { key_record: 'corrupt' })
        return false
      }
      ctx.set('principal', found.record)
      ctx.set('keyHash', found.keyHash)
      ctx.get('log').wb_user_id = found.record.wb_user_id
      return true
    },
    invalidUserMessage: (ctx) => ({
      detail: BASIC_SCHEME.test(ctx.req.header('authorization') ?? '')
        ? 'Invalid authentication credentials'
        : 'Not authenticated',
    }),
  })
}

// One deployment has one realm; rebuilt only if the var changes under a live isolate.
let cached: { realm: string; handler: MiddlewareHandler<AppEnv> } | undefined

/**
 * HTTP Basic authentication against the `API_KEYS` KV namespace, before the body is read. The
 * password is the API key (Weave clients send the username `api`; any username is accepted).
 * Failures are basic auth's own 401 with `WWW-Authenticate`, worded like FastAPI's HTTPBasic:
 * "Not authenticated" without Basic credentials, "Invalid authentication credentials" otherwise.
 */
export const apiKeyAuth: MiddlewareHandler<AppEnv> = (c, next) => {
  const realm = c.get('config').authRealm
  if (cached?.realm !== realm) cached = { realm, handler: forRealm(realm) }
  return cached.handler(c, next)
}
