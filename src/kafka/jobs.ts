import type { CallsScoreRequest } from '../schemas/calls-score.ts'
import { crc32 } from './crc32.ts'
import type { KafkaMessage } from './producer.ts'

/** The Python server's chunk size: one Kafka message per 100 call ids. */
export const CHUNK_SIZE = 100

const utf8 = new TextEncoder()

/** Kafka header carrying a job's stable id, the same on every retry and re-send. */
export const JOB_ID_HEADER = 'weave-job-id'

/**
 * Where and how jobs are keyed. `jobId` is unique per request (never the client's request id,
 * which a client may reuse); message i gets `<jobId>:<i>`.
 */
export type JobOptions = { topic: string; projectBuckets: number; jobId: string }

/**
 * Turns a validated request into the `call_scoring_worker`'s messages (weave-wire-format.md):
 * duplicates dropped (first occurrence kept), chunks of 100 call ids in request order, every
 * message carrying all scorer refs and the caller's `wb_user_id`, value the compact JSON in field
 * order. Each chunk's ids are serialised by one native `JSON.stringify` between a shared head and
 * tail, so each id is escaped once and a 10,000-id request is never re-serialised per chunk.
 */
export function buildScoreJobs(
  request: Pick<CallsScoreRequest, 'project_id' | 'call_ids' | 'scorer_refs'>,
  wbUserId: string,
  options: JobOptions,
): KafkaMessage[] {
  const callIds = unique(request.call_ids)
  if (callIds.length === 0) return []
  const head = `{"project_id":${JSON.stringify(request.project_id)},"call_ids":`
  const tail = `,"scorer_refs":${JSON.stringify(unique(request.scorer_refs))},"wb_user_id":${JSON.stringify(wbUserId)}}`
  const messages: KafkaMessage[] = []
  for (let start = 0; start < callIds.length; start += CHUNK_SIZE) {
    messages.push({
      topic: options.topic,
      key: messageKey(request.project_id, callIds[start] as string, options.projectBuckets),
      value: head + JSON.stringify(callIds.slice(start, start + CHUNK_SIZE)) + tail,
      headers: [{ key: JOB_ID_HEADER, value: `${options.jobId}:${messages.length}` }],
    })
  }
  return messages
}

/** First occurrences in order; the list itself when nothing repeats (the usual case). */
function unique(list: readonly string[]): readonly string[] {
  const seen = new Set(list)
  return seen.size === list.length ? list : [...seen]
}

/** `project_id`, or `project_id:<crc32(first call id) mod N>` when N > 1 buckets spread a project. */
export function messageKey(projectId: string, firstCallId: string, buckets: number): string {
  return buckets > 1 ? `${projectId}:${crc32(utf8.encode(firstCallId)) % buckets}` : projectId
}
