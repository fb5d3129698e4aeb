import { JOB_ID_HEADER, jobIdOf, messageKey } from '../kafka/jobs.ts'
import type { KafkaMessage } from '../kafka/producer.ts'
import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'

/**
 * A job on the fallback queue: the Kafka record exactly as it would have been produced, so the
 * consumer needs no knowledge of HTTP requests.
 */
export type QueuedJob = {
  topic: string
  key: string
  value: string
  headers: { key: string; value: string }[]
  /**
   * The producer shard whose write of this job timed out for the request and may still land:
   * the consumer asks it before producing (docs/delivery.md, "Duplicates").
   */
  shard?: string | undefined
}

// Cloudflare Queues: 128 KB per message, 100 messages and 256 KB per sendBatch. Margins cover
// the runtime's own envelope around each body.
const MAX_MESSAGE_BYTES = 120_000
const MAX_BATCH_BYTES = 240_000
const MAX_BATCH_MESSAGES = 100

const utf8 = new TextEncoder()
const size = (job: QueuedJob) => utf8.encode(JSON.stringify(job)).length

type WeaveValue = {
  project_id: string
  call_ids: string[]
  scorer_refs: string[]
  wb_user_id: string
}

/**
 * Fits a job into the queue's message limit. A chunk of 100 ids whose record is over the limit
 * is split into smaller chunks (the consumer handles any chunk size; values keep Weave's exact
 * format, keys are recomputed from each new first id). `null` when even one id is too large.
 */
export function toQueuedJobs(
  message: KafkaMessage,
  projectBuckets: number,
  heldBy?: string,
): QueuedJob[] | null {
  const job: QueuedJob = {
    topic: message.topic,
    key: message.key,
    value: message.value,
    headers: [...(message.headers ?? [])],
    ...(heldBy === undefined ? {} : { shard: heldBy }),
  }
  if (size(job) <= MAX_MESSAGE_BYTES) return [job]
  const parsed = JSON.parse(message.value) as WeaveValue
  if (parsed.call_ids.length <= 1) return null
  const half = Math.ceil(parsed.call_ids.length / 2)
  const jobId = jobIdOf(message) ?? 'job'
  const parts: QueuedJob[] = []
  for (const [i, ids] of [parsed.call_ids.slice(0, half), parsed.call_ids.slice(half)].entries()) {
    const value = JSON.stringify({ ...parsed, call_ids: ids })
    const sub = toQueuedJobs(
      {
        topic: message.topic,
        key: messageKey(parsed.project_id, ids[0] as string, projectBuckets),
        value,
        headers: [{ key: JOB_ID_HEADER, value: `${jobId}.${i}` }],
      },
      projectBuckets,
    )
    if (!sub) return null
    parts.push(...sub)
  }
  return parts
}

/** Groups jobs into `sendBatch` calls within the per-batch count and byte limits. */
export function batchesOf(jobs: readonly QueuedJob[]): QueuedJob[][] {
  const batches: QueuedJob[][] = []
  let current: QueuedJob[] = []
  let bytes = 0
  for (const job of jobs) {
    const n = size(job)
    if (
      current.length > 0 &&
      (current.length === MAX_BATCH_MESSAGES || bytes + n > MAX_BATCH_BYTES)
    ) {
      batches.push(current)
      current = []
      bytes = 0
    }
    current.push(job)
    bytes += n
  }
  if (current.length > 0) batches.push(current)
  return batches
}

/** Outcome of handing jobs to the fallback queue. */
export type EnqueueResult =
  | { ok: true; queued: number }
  | { ok: false; reason: 'no_queue' | 'too_large' | 'refused' | 'timeout'; detail: string }

/**
 * Hands jobs to the fallback queue within `timeoutMs`. Success means the queue accepted every
 * one of them (durably stored); anything else means the client must not get `{}`.
 */
export async function enqueueJobs(
  queue: Queue<QueuedJob> | undefined,
  messages: readonly KafkaMessage[],
  options: { timeoutMs: number; projectBuckets: number; heldBy?: string | undefined },
): Promise<EnqueueResult> {
  if (!queue) return { ok: false, reason: 'no_queue', detail: 'no queue bound' }
  const jobs: QueuedJob[] = []
  for (const message of messages) {
    const fitted = toQueuedJobs(message, options.projectBuckets, options.heldBy)
    if (!fitted) return { ok: false, reason: 'too_large', detail: 'a job exceeds the queue limit' }
    jobs.push(...fitted)
  }
  try {
    const sent = await withTimeout(
      Promise.all(
        batchesOf(jobs).map((batch) =>
          queue.sendBatch(batch.map((body) => ({ body, contentType: 'json' as const }))),
        ),
      ),
      options.timeoutMs,
    )
    if (sent === TIMED_OUT) return { ok: false, reason: 'timeout', detail: 'queue did not answer' }
    return { ok: true, queued: jobs.length }
  } catch (e) {
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    return { ok: false, reason: 'refused', detail: detail.slice(0, 200) }
  }
}
