import * as z from 'zod'

/**
 * An integer setting (a wrangler var, so a string) within `min`..`max`. An empty or blank value is
 * refused like a missing one: `Number('')` is 0, and a var emptied by mistake must be a loud
 * misconfiguration, not a silent 0 (no throttle pause, no directory cache, `Retry-After: 0`).
 */
export const intSetting = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.coerce
      .number({ error: `must be an integer from ${min} to ${max}` })
      .int()
      .min(min)
      .max(max),
  )

/** A failed settings parse as the operator's log names it: one `SETTING: message` per problem. */
export const settingProblems = (error: z.ZodError): string[] =>
  error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
