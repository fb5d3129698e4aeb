import { type Hook, zValidator } from '@hono/zod-validator'
import type * as z from 'zod'
import type { AppEnv } from '../env.ts'
import { RequestValidationError } from '../errors.ts'
import { pydanticErrors } from '../fastapi/validation.ts'

/**
 * `zValidator` for JSON bodies read by `fastapiJsonBody`, with the one hook every route shares:
 * a failed parse becomes FastAPI's 422. Only the failure path pays for the exact
 * (Python-semantics) parse of the body that pydantic's error inputs need.
 *
 * `accepts`, when given, must be true only for values the schema accepts unchanged (output equal
 * to input); those are taken as they are, without running zod over them.
 */
export function validateJson<T extends z.ZodType>(
  schema: T,
  accepts?: (value: unknown) => value is z.infer<T>,
) {
  // Synchronous for a valid body; only a failure waits for the exact parse.
  const hook: Hook<z.infer<T>, AppEnv, string, 'json', object, T> = (result, c) => {
    if (result.success) return
    return c
      .get('body')
      .exact()
      .then((root) => {
        throw new RequestValidationError(pydanticErrors(result.error.issues, root))
      })
  }
  // zValidator parses with safeParseAsync by default; our schemas have no async refinements,
  // and the synchronous parse skips zod's promise machinery. (The cast: zod-validator's result
  // type is conditional on the schema's zod major, which TypeScript cannot resolve for a generic T.)
  return zValidator<T, 'json', AppEnv, string, typeof hook>('json', schema, hook, {
    validationFunction: (s, value) =>
      (accepts?.(value) ? { success: true, data: value } : s.safeParse(value)) as never,
  })
}
