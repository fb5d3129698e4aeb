import type { ApiKeyRecord } from './auth/keys.ts'
import type { Config } from './config.ts'
import type { ParsedBody } from './fastapi/body.ts'
import type { RequestLog } from './middleware/request-context.ts'

/** Hono's environment: the generated Worker bindings plus what middleware hands to handlers. */
export type AppEnv = {
  Bindings: Env
  Variables: {
    requestId: string
    log: RequestLog
    config: Config
    principal: ApiKeyRecord
    /** SHA-256 of the caller's API key, computed once by authentication (never the key). */
    keyHash: string
    body: ParsedBody
  }
}
