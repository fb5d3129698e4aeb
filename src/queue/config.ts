import * as z from 'zod'
import { intSetting } from '../lib/settings.ts'

const QueueConfigSchema = z.object({
  QUEUE_SEND_TIMEOUT_MS: intSetting(1, 10_000),
  QUEUE_MAX_ATTEMPTS: intSetting(1, 100),
  QUEUE_RETRY_BASE_SECONDS: intSetting(0, 43_200),
  QUEUE_RETRY_MAX_SECONDS: intSetting(0, 43_200),
  QUEUE_PRODUCE_TIMEOUT_MS: intSetting(1, 120_000),
  DEAD_LETTER_QUEUE_NAME: z.string().min(1),
})

/** The durable fallback's settings (wrangler vars). */
export type QueueConfig = {
  sendTimeoutMs: number
  maxAttempts: number
  retryBaseSeconds: number
  retryMaxSeconds: number
  produceTimeoutMs: number
  deadLetterQueueName: string
}

const cache = new WeakMap<object, QueueConfig | string[]>()

/** Parses (and caches per env object) the queue settings; problems come back as a list. */
export function loadQueueConfig(env: Env): QueueConfig | string[] {
  const cached = cache.get(env)
  if (cached) return cached
  const parsed = QueueConfigSchema.safeParse(env)
  const result = parsed.success
    ? {
        sendTimeoutMs: parsed.data.QUEUE_SEND_TIMEOUT_MS,
        maxAttempts: parsed.data.QUEUE_MAX_ATTEMPTS,
        retryBaseSeconds: parsed.data.QUEUE_RETRY_BASE_SECONDS,
        retryMaxSeconds: parsed.data.QUEUE_RETRY_MAX_SECONDS,
        produceTimeoutMs: parsed.data.QUEUE_PRODUCE_TIMEOUT_MS,
        deadLetterQueueName: parsed.data.DEAD_LETTER_QUEUE_NAME,
      }
    : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  cache.set(env, result)
  return result
}
