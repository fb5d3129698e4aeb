import * as z from 'zod'
import { intSetting, settingProblems } from '../lib/settings.ts'

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

/** Parses the queue settings; problems come back as a list (`loadConfig` caches the result). */
export function loadQueueConfig(env: Env): QueueConfig | string[] {
  const parsed = QueueConfigSchema.safeParse(env)
  if (!parsed.success) return settingProblems(parsed.error)
  return {
    sendTimeoutMs: parsed.data.QUEUE_SEND_TIMEOUT_MS,
    maxAttempts: parsed.data.QUEUE_MAX_ATTEMPTS,
    retryBaseSeconds: parsed.data.QUEUE_RETRY_BASE_SECONDS,
    retryMaxSeconds: parsed.data.QUEUE_RETRY_MAX_SECONDS,
    produceTimeoutMs: parsed.data.QUEUE_PRODUCE_TIMEOUT_MS,
    deadLetterQueueName: parsed.data.DEAD_LETTER_QUEUE_NAME,
  }
}
