import * as z from 'zod'
import { type Config, loadConfig } from '../config.ts'
import { produceUnlessThrottled } from '../delivery/deliver.ts'
import { jobIdOf } from '../kafka/jobs.ts'
import type { JobProducer, ProduceResult } from '../kafka/producer.ts'
import { shardOutcomes } from '../kafka/producer-shards.ts'
import type { ProducerUse } from '../kafka/select.ts'
import type { QueueConfig } from './config.ts'
import type { QueuedJob } from './jobs-queue.ts'

const QueuedJobSchema = z.object({
  topic: z.string().min(1),
  key: z.string(),
  value: z.string(),
  headers: z.array(z.object({ key: z.string(), value: z.string() })),
  shard: z.string().optional(),
})

type Failure = Extract<ProduceResult, { ok: false }>

const log = (line: Record<string, unknown>) => {
  const text = JSON.stringify(line)
  if (line.level === 'info') console.log(text)
  else console.error(text)
}

/** Exponential backoff for queue redelivery, never shorter than what Kafka REST asked for. */
export function retryDelaySeconds(attempts: number, config: QueueConfig, retryAfter = 0): number {
  const exponential = config.retryBaseSeconds * 2 ** Math.max(0, attempts - 1)
  return Math.max(Math.min(exponential, config.retryMaxSeconds), Math.min(retryAfter, 43_200))
}

/**
 * The fallback queue's consumer: produces queued jobs to Kafka under its own policy. Each job is
 * acknowledged only once Kafka acknowledged it; failures are redelivered with exponential
 * backoff (honouring Retry-After). A job still failing after `QUEUE_MAX_ATTEMPTS` is moved to the
 * dead-letter queue with a loud log line and a metric; it is never dropped. A credential
 * rejected by Kafka is logged as an alarm and retried like any outage.
 *
 * A batch from the dead-letter queue itself (when an operator attaches it to this worker to
 * replay it) is re-sent to the main queue as it is.
 */
export async function consumeScoreJobs(
  batch: MessageBatch<unknown>,
  env: Env,
  producerFor: (config: Config, use?: ProducerUse) => JobProducer,
): Promise<void> {
  const base = loadConfig(env)
  if (!base.ok) {
    log({
      level: 'alarm',
      msg: 'queue_consumer_misconfigured',
      queue: batch.queue,
      config_problems: base.problems,
    })
    batch.retryAll({ delaySeconds: 60 })
    return
  }
  const queueConfig = base.config.queue
  if (batch.queue === queueConfig.deadLetterQueueName) {
    await replayDeadLetters(batch, env)
    return
  }

  const counts = {
    acknowledged: 0,
    retried: 0,
    dead_lettered: 0,
    already_landed: 0,
    still_pending: 0,
  }
  const parsed: { message: Message<unknown>; job: QueuedJob }[] = []
  for (const message of batch.messages) {
    const job = QueuedJobSchema.safeParse(message.body)
    if (job.success) parsed.push({ message, job: job.data })
    else await deadLetter(env, message, undefined, 'malformed queue message', counts)
  }
  const valid = await withoutLanded(parsed)

  // One produce call for the whole batch (up to max_batch_size jobs): one Kafka REST request,
  // or a few when KAFKA_REST_MAX_REQUEST_BYTES or topics split it. While this isolate's throttle
  // breaker is open the batch waits on the queue without calling Kafka, as direct requests do.
  let failure: Failure | undefined
  if (valid.length > 0) {
    const produced = await produceUnlessThrottled(
      base.config,
      producerFor(base.config, 'queue'),
      valid.map(({ job }) => job),
      { timeoutMs: queueConfig.produceTimeoutMs, retries: 0, backoffMs: 0 },
    )
    const result: ProduceResult = produced.skipped
      ? {
          ok: false,
          reason: 'unavailable',
          detail: 'not sent: Kafka REST is throttling this isolate (breaker open)',
          acknowledged: valid.map(() => false),
          retryAfterSeconds: produced.retryAfterSeconds,
        }
      : produced.result
    if (!result.ok) failure = result
    for (const [i, { message, job }] of valid.entries()) {
      if (result.ok || result.acknowledged[i]) {
        message.ack()
        counts.acknowledged++
      } else if (message.attempts >= queueConfig.maxAttempts) {
        await deadLetter(env, message, job, `${result.reason}: ${result.detail}`, counts)
      } else {
        message.retry({
          delaySeconds: retryDelaySeconds(message.attempts, queueConfig, result.retryAfterSeconds),
        })
        counts.retried++
      }
    }
  }

  log({
    level: failure?.reason === 'unauthorized' ? 'alarm' : failure ? 'warn' : 'info',
    msg: 'queue_batch',
    queue: batch.queue,
    messages: batch.messages.length,
    ...counts,
    ...(failure
      ? {
          kafka_reason: failure.reason,
          kafka_status: failure.status,
          kafka_detail: failure.detail,
        }
      : {}),
  })

  /**
   * Jobs queued after their write timed out in a producer shard: that shard is asked what
   * became of the write before anything is produced again. Landed: acknowledged without
   * producing. Still in flight: retried later (until the last attempt, which produces). Failed,
   * or unknown to the shard (restarted, forgotten, unreachable): produced. The rest as they are.
   */
  async function withoutLanded(jobs: { message: Message<unknown>; job: QueuedJob }[]) {
    const shards = base.ok && base.config.kafka.dialect === 'native' && base.config.kafka.shards
    if (!shards || !jobs.some(({ job }) => job.shard)) return jobs
    const byShard = new Map<string, { message: Message<unknown>; job: QueuedJob }[]>()
    const settled = new Set<Message<unknown>>()
    for (const entry of jobs) {
      if (!entry.job.shard || jobIdOf(entry.job) === undefined) continue
      const held = byShard.get(entry.job.shard) ?? []
      held.push(entry)
      byShard.set(entry.job.shard, held)
    }
    await Promise.all(
      [...byShard].map(async ([shard, held]) => {
        const outcomes = await shardOutcomes(
          shards,
          shard,
          held.map(({ job }) => jobIdOf(job) ?? ''),
        )
        held.forEach((entry, i) => {
          const outcome = outcomes[i]
          if (outcome === 'landed') {
            entry.message.ack()
            counts.already_landed++
            settled.add(entry.message)
          } else if (outcome === 'pending' && entry.message.attempts < queueConfig.maxAttempts) {
            entry.message.retry({
              delaySeconds: retryDelaySeconds(entry.message.attempts, queueConfig),
            })
            counts.still_pending++
            settled.add(entry.message)
          }
        })
      }),
    )
    return jobs.filter(({ message }) => !settled.has(message))
  }

  async function deadLetter(
    env: Env,
    message: Message<unknown>,
    job: QueuedJob | undefined,
    reason: string,
    tally: typeof counts,
  ) {
    const dlq: Queue<unknown> | undefined = env.DEAD_LETTER_QUEUE
    try {
      if (!dlq) throw new Error('no dead-letter queue bound')
      await dlq.send(message.body, { contentType: 'json' })
    } catch (e) {
      // Never drop: if the dead-letter queue refuses, keep the job on the main queue.
      message.retry({ delaySeconds: queueConfig.retryMaxSeconds })
      tally.retried++
      log({
        level: 'alarm',
        msg: 'dead_letter_failed',
        job_id: (job && jobIdOf(job)) ?? null,
        error: e instanceof Error ? e.message : String(e),
      })
      return
    }
    message.ack()
    tally.dead_lettered++
    log({
      level: 'error',
      msg: 'job_dead_lettered',
      job_id: (job && jobIdOf(job)) ?? null,
      topic: job?.topic,
      key: job?.key,
      attempts: message.attempts,
      reason,
    })
    const metrics: AnalyticsEngineDataset | undefined = env.METRICS
    metrics?.writeDataPoint({
      indexes: ['job_dead_lettered'],
      blobs: ['job_dead_lettered', job?.topic ?? '', reason.slice(0, 100)],
      doubles: [1],
    })
  }
}

/** Re-sends a dead-letter batch to the main queue; acknowledged only once the queue took it. */
async function replayDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const queue: Queue<unknown> | undefined = env.SCORE_QUEUE
  try {
    if (!queue) throw new Error('no queue bound')
    await queue.sendBatch(
      batch.messages.map((m) => ({ body: m.body, contentType: 'json' as const })),
    )
    batch.ackAll()
    log({
      level: 'warn',
      msg: 'dead_letters_replayed',
      queue: batch.queue,
      messages: batch.messages.length,
    })
  } catch (e) {
    batch.retryAll({ delaySeconds: 60 })
    log({
      level: 'alarm',
      msg: 'dead_letter_replay_failed',
      error: e instanceof Error ? e.message : String(e),
    })
  }
}
