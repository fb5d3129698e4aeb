import * as z from 'zod'
import { intSetting, settingProblems } from '../lib/settings.ts'

/** The id forms the Kafka messages can carry (docs/internal-ids.md). */
export const ID_FORMS = ['external', 'internal'] as const

/**
 * Which ids the messages carry. `internal`: resolved through the `PROJECT_IDS` directory, cached
 * per isolate for `cacheSeconds` (0: not at all), each lookup bounded by `timeoutMs`.
 */
export type IdConfig =
  | { form: 'external' }
  | { form: 'internal'; cacheSeconds: number; timeoutMs: number }

const IdConfigSchema = z.object({
  // No default: a deployment that lost this setting must not silently write external ids.
  KAFKA_ID_FORM: z.enum(ID_FORMS, { error: `must be one of ${ID_FORMS.join(', ')}` }),
  PROJECT_IDS_CACHE_SECONDS: intSetting(0, 86_400),
  PROJECT_IDS_TIMEOUT_MS: intSetting(1, 60_000),
})

const isKvBinding = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && typeof Reflect.get(value, 'get') === 'function'

/** Parses the id form's settings; problems come back as a list (`loadConfig` caches the result). */
export function loadIdConfig(env: Env): IdConfig | string[] {
  const parsed = IdConfigSchema.safeParse(env)
  if (!parsed.success) return settingProblems(parsed.error)
  if (parsed.data.KAFKA_ID_FORM === 'external') return { form: 'external' }
  if (!isKvBinding(env.PROJECT_IDS)) {
    return ['PROJECT_IDS: a KV namespace binding is required when KAFKA_ID_FORM is internal']
  }
  return {
    form: 'internal',
    cacheSeconds: parsed.data.PROJECT_IDS_CACHE_SECONDS,
    timeoutMs: parsed.data.PROJECT_IDS_TIMEOUT_MS,
  }
}
