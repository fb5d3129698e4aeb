import * as z from 'zod'
import { intSetting, settingProblems } from '../lib/settings.ts'

/** What `200 {}` waits for (docs/scaling.md, "DELIVERY_MODE"). */
export const DELIVERY_MODES = ['direct', 'queue'] as const

/** One of {@link DELIVERY_MODES}. */
export type DeliveryMode = (typeof DELIVERY_MODES)[number]

const DeliveryConfigSchema = z.object({
  DELIVERY_MODE: z.preprocess(
    (v) => (v === undefined || v === '' ? 'direct' : v),
    z.enum(DELIVERY_MODES, { error: `must be one of ${DELIVERY_MODES.join(', ')}` }),
  ),
  // Below 64 KiB one maximal job (100 ids, 100 refs) would not fit a request on its own.
  KAFKA_REST_MAX_REQUEST_BYTES: intSetting(65_536, 100 * 1024 * 1024),
  KAFKA_THROTTLE_PAUSE_SECONDS: intSetting(0, 3_600),
  KAFKA_THROTTLE_MAX_PAUSE_SECONDS: intSetting(0, 3_600),
})

/** How accepted jobs travel to Kafka (wrangler vars). */
export type DeliveryConfig = {
  mode: DeliveryMode
  /** Largest produce body sent in one Kafka REST request, as the dialect encodes it. */
  maxRequestBytes: number
  /** Pause after a throttle answer without a usable `Retry-After`. */
  throttlePauseSeconds: number
  /** Longest pause a `Retry-After` can impose before one request probes again. */
  throttleMaxPauseSeconds: number
}

const isQueueBinding = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  typeof Reflect.get(value, 'sendBatch') === 'function'

/** Parses the delivery settings; problems come back as a list (`loadConfig` caches the result). */
export function loadDeliveryConfig(env: Env): DeliveryConfig | string[] {
  const parsed = DeliveryConfigSchema.safeParse(env)
  if (!parsed.success) return settingProblems(parsed.error)
  const settings = parsed.data
  if (settings.KAFKA_THROTTLE_PAUSE_SECONDS > settings.KAFKA_THROTTLE_MAX_PAUSE_SECONDS) {
    // The maximum would silently cut the default pause: say which of the two is wrong.
    return [
      'KAFKA_THROTTLE_PAUSE_SECONDS: must not exceed KAFKA_THROTTLE_MAX_PAUSE_SECONDS, which caps every pause',
    ]
  }
  if (settings.DELIVERY_MODE === 'queue' && !isQueueBinding(env.SCORE_QUEUE)) {
    // Every request would fail with a 503 that blames Kafka: say what is wrong instead.
    return ['SCORE_QUEUE: a queue producer binding is required when DELIVERY_MODE is queue']
  }
  return {
    mode: settings.DELIVERY_MODE,
    maxRequestBytes: settings.KAFKA_REST_MAX_REQUEST_BYTES,
    throttlePauseSeconds: settings.KAFKA_THROTTLE_PAUSE_SECONDS,
    throttleMaxPauseSeconds: settings.KAFKA_THROTTLE_MAX_PAUSE_SECONDS,
  }
}
