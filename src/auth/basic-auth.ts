import type { MiddlewareHandler } from 'hono'
import { basicAuth } from 'hono/basic-auth'
import type { AppEnv } from '../env.ts'
import { perSetting } from '../lib/per-setting.ts'
import { lookupApiKey } from './keys.ts'

const BASIC_SCHEME = /^ *basic +/i

const forRealm = perSetting(
  (realm: string): MiddlewareHandler<AppEnv> =>
    basicAuth({
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
    }),
)

/**
 * HTTP Basic authentication against the `API_KEYS` KV namespace, before the body is read. The
 * password is the API key (Weave clients send the username `api`; any username is accepted).
 * Failures are basic auth's own 401 with `WWW-Authenticate`, worded like FastAPI's HTTPBasic:
 * "Not authenticated" without Basic credentials, "Invalid authentication credentials" otherwise.
 */
export const apiKeyAuth: MiddlewareHandler<AppEnv> = (c, next) =>
  forRealm(c.get('config').authRealm)(c, next)
