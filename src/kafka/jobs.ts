import type { CallsScoreRequest } from '../schemas/calls-score.ts'
import { crc32 } from './crc32.ts'
import type { KafkaMessage } from './producer.ts'
import { declareValueQuotes } from './split.ts'

/** The Python server's chunk size: one Kafka message per 100 call ids. */
export const CHUNK_SIZE = 100

const utf8 = new TextEncoder()

/** Kafka header carrying a job's stable id, the same on every retry and re-send. */
export const JOB_ID_HEADER = 'weave-job-id'

/** A message's `weave-job-id` header, if it carries one. */
export const jobIdOf = (message: {
  headers?: readonly { key: string; value: string }[] | undefined
}): string | undefined => message.headers?.find((h) => h.key === JOB_ID_HEADER)?.value

/**
 * Where and how jobs are keyed. `jobId` is unique per request (never the client's request id,
 * which a client may reuse); message i gets `<jobId>:<i>`.
 */
export type JobOptions = {
  topic: string
  projectBuckets: number
  jobId: string
  /** Internal form (docs/internal-ids.md): the ids as Weave's producer sees them after conversion. */
  ids?: IdMapping | undefined
}

/**
 * The request's internal project id and the conversion of its ids, applied after duplicates are
 * dropped on the ids as sent. `callId` is absent when no call id needs converting.
 */
export type IdMapping = {
  projectId: string
  scorerRef: (ref: string) => string
  callId?: ((id: string) => string) | undefined
}

/**
 * Turns a validated request into the `call_scoring_worker`'s messages (docs/compatibility.md):
 * duplicates dropped (first occurrence kept), chunks of 100 call ids in request order, every
 * message carrying all scorer refs and the caller's `wb_user_id`, value the compact JSON in field
 * order. Each value is one native `JSON.stringify` of the chunk's object: a flat string, which
 * the producer's own serialisation copies fastest (values concatenated from a shared head and tail
 * are rope strings that V8 must flatten first; that cost more than re-serialising the refs).
 */
export function buildScoreJobs(
  request: Pick<CallsScoreRequest, 'project_id' | 'call_ids' | 'scorer_refs'>,
  wbUserId: string,
  options: JobOptions,
): KafkaMessage[] {
  const { ids } = options
  const callIds = ids?.callId ? unique(request.call_ids).map(ids.callId) : unique(request.call_ids)
  if (callIds.length === 0) return []
  const scorerRefs = ids
    ? unique(request.scorer_refs).map(ids.scorerRef)
    : unique(request.scorer_refs)
  const projectId = ids?.projectId ?? request.project_id
  // The value's length if none of its strings needs an escape: the empty object's, each string
  // with its quotes, the commas between list items.
  const unescaped = EMPTY_VALUE_LENGTH + projectId.length + wbUserId.length + listLength(scorerRefs)
  const messages: KafkaMessage[] = []
  for (let start = 0; start < callIds.length; start += CHUNK_SIZE) {
    const chunk = callIds.slice(start, start + CHUNK_SIZE)
    const message: KafkaMessage = {
      topic: options.topic,
      key: messageKey(projectId, callIds[start] as string, options.projectBuckets),
      // Field order is the wire format's (docs/compatibility.md, "The Kafka messages").
      value: JSON.stringify({
        project_id: projectId,
        call_ids: chunk,
        scorer_refs: scorerRefs,
        wb_user_id: wbUserId,
      }),
      headers: [{ key: JOB_ID_HEADER, value: `${options.jobId}:${messages.length}` }],
    }
    // JSON.stringify lengthens every string holding a quote, a backslash, a control character
    // or a lone surrogate; at this length none did, so the value's quotes are exactly its
    // strings' (keys included) and the request size needs no scan of it (src/kafka/split.ts).
    if (message.value.length === unescaped + listLength(chunk)) {
      declareValueQuotes(message, 2 * (VALUE_FIXED_STRINGS + chunk.length + scorerRefs.length))
    }
    messages.push(message)
  }
  return messages
}

/** A value's own strings: its four keys, `project_id` and `wb_user_id`. */
const VALUE_FIXED_STRINGS = 6
const EMPTY_VALUE_LENGTH = JSON.stringify({
  project_id: '',
  call_ids: [],
  scorer_refs: [],
  wb_user_id: '',
}).length

/** Characters of a list's strings in JSON with no escape: each with its quotes, commas between. */
function listLength(list: readonly string[]): number {
  let n = list.length > 0 ? list.length - 1 : 0
  for (let i = 0; i < list.length; i++) n += (list[i] as string).length + 2
  return n
}

/**
 * First occurrences in order; the list itself when nothing repeats (the usual case). An
 * open-addressing table over seeded hashes: a `Set` of 10,000 strings fresh from JSON.parse was
 * the largest cost of a maximal request (about 3 ms in V8, against 0.5 ms for a full-string
 * hash). The first pass hashes only each id's last five characters, read as hex digits (call ids
 * are UUIDs whose random part is at the end): a few independent operations per id, where a
 * multiply chain over more characters measured several times dearer. Ids whose tails collide too
 * often (a crafted list, or ids sharing their last characters) exhaust its probe budget, and the
 * full hash takes over, so no input costs much more than the full hash alone.
 */
export function unique(list: readonly string[]): readonly string[] {
  if (list.length < 2) return list
  if (list.length <= SMALL_LIST) return uniqueSmall(list)
  // Seeded per isolate (lazily: workerd allows no randomness at startup), so a list crafted to
  // collide offline does not collide here.
  seed ??= crypto.getRandomValues(new Uint32Array(1))[0] ?? 0
  return (
    uniqueHashed(list, tailHash, 2 * list.length) ?? uniqueHashed(list, fullHash, Infinity) ?? list
  )
}

/** How many trailing characters the first pass hashes. */
export const TAIL_CHARS = 5

let seed: number | undefined

/** Seeded FNV-1a of the id's length and its characters from `start` on. */
function fnvFrom(id: string, start: number): number {
  let hash = Math.imul(0x811c9dc5 ^ (seed ?? 0) ^ id.length, 0x01000193)
  for (let j = start; j < id.length; j++) hash = Math.imul(hash ^ id.charCodeAt(j), 0x01000193)
  return hash
}

const fullHash = (id: string) => fnvFrom(id, 0)

// A character's value as a hex digit for 0-9, a-f and A-F; any other character maps somewhere.
const hexDigit = (c: number) => (c & 15) + 9 * (c >> 6)

/** The length and the last TAIL_CHARS characters as hex digits, seeded and mixed. */
function tailHash(id: string): number {
  const n = id.length
  if (n < TAIL_CHARS) return fullHash(id)
  const packed =
    hexDigit(id.charCodeAt(n - 1)) |
    (hexDigit(id.charCodeAt(n - 2)) << 4) |
    (hexDigit(id.charCodeAt(n - 3)) << 8) |
    (hexDigit(id.charCodeAt(n - 4)) << 12) |
    (hexDigit(id.charCodeAt(n - 5)) << 16)
  const mixed = Math.imul(packed ^ (n << 20) ^ (seed ?? 0), 0x9e3779b1)
  return mixed ^ (mixed >>> 15)
}

/** The dedupe over one hash; undefined once more than `budget` probes hit other ids. */
function uniqueHashed(
  list: readonly string[],
  hash: (id: string) => number,
  budget: number,
): readonly string[] | undefined {
  const size = 2 ** Math.ceil(Math.log2(list.length * 2))
  const mask = size - 1
  const table = new Int32Array(size).fill(-1)
  let probes = 0
  let firsts: string[] | undefined
  for (let i = 0; i < list.length; i++) {
    const id = list[i] as string
    let slot = hash(id) & mask
    let seen = false
    for (let t = table[slot] as number; t !== -1; t = table[slot] as number) {
      if (list[t] === id) {
        seen = true
        break
      }
      if (++probes > budget) return undefined
      slot = (slot + 1) & mask
    }
    if (seen) firsts ??= list.slice(0, i)
    else {
      table[slot] = i
      firsts?.push(id)
    }
  }
  return firsts ?? list
}

// Up to this length, comparing each item with those before it beats allocating a table.
const SMALL_LIST = 16

function uniqueSmall(list: readonly string[]): readonly string[] {
  let firsts: string[] | undefined
  for (let i = 1; i < list.length; i++) {
    const id = list[i] as string
    let seen = false
    for (let j = 0; j < i; j++) {
      if (list[j] === id) {
        seen = true
        break
      }
    }
    if (seen) firsts ??= list.slice(0, i)
    else firsts?.push(id)
  }
  return firsts ?? list
}

/** `project_id`, or `project_id:<crc32(first call id) mod N>` when N > 1 buckets spread a project. */
export function messageKey(projectId: string, firstCallId: string, buckets: number): string {
  return buckets > 1 ? `${projectId}:${crc32(utf8.encode(firstCallId)) % buckets}` : projectId
}
