import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { MessageStore, NewRecord } from './store.ts'
import type { Dialect, StoredMessage, V2Flavor } from './types.ts'

/** A request, fully read, as the dialect handlers see it. */
export type SinkRequest = {
  method: string
  /** Decoded path segments, e.g. ['produce', 'my topic']. */
  segments: string[]
  query: URLSearchParams
  headers: IncomingHttpHeaders
  body: Buffer
}

/** An answer to write. */
export type SinkReply = {
  status: number
  headers?: Record<string, string>
  body: string
}

/** What a produce handler did, for the answer and for the stats. */
export type ProduceOutcome = {
  reply: SinkReply
  /** Records stored. */
  stored: number
  /** Records refused or reported failed (whole-request refusals count as one). */
  failed: number
}

/** Shared state a dialect's handlers work with. */
export type DialectContext = {
  store: MessageStore
  clusterId: string
  v2Flavor: V2Flavor
  /**
   * Record indexes a partial fault reports failed, for a request of `count` records (empty when
   * no partial fault applies).
   */
  failIndexes(count: number): ReadonlySet<number>
  /** Aborted when the sink resets or closes; long-polls stop waiting. */
  signal: AbortSignal
}

/** A produce route: how to count it before auth, and how to run it. */
export type ProduceRoute = {
  kind: 'produce'
  dialect: Dialect
  /**
   * Topics the request writes to, read leniently (for per-topic stats and topic-scoped faults,
   * which must work even when the request is then refused).
   */
  topics: string[]
  run(ctx: DialectContext): Promise<ProduceOutcome>
}

/** A non-produce route of a dialect (read-back, metadata). */
export type OtherRoute = {
  kind: 'other'
  dialect: Dialect
  run(ctx: DialectContext): Promise<SinkReply>
}

export type Route = ProduceRoute | OtherRoute

/** A dialect: its routes, its auth refusals and its error shape. */
export type DialectModule = {
  dialect: Dialect
  /**
   * The route a request belongs to, or null if it is not this dialect's. Matching looks at the
   * method and path only (and the body just to name topics), never at the v2 flavor, which a
   * fault may still override.
   */
  route(req: SinkRequest): Route | null
  /** Answer to missing or wrong credentials. */
  unauthorized(credentials: 'missing' | 'invalid', flavor: V2Flavor): SinkReply
  /** Default answer of a `status` fault: this dialect's error shape for that status. */
  statusReply(status: number, flavor: V2Flavor): SinkReply
  /** Forgets per-dialect state (consumer groups), on sink reset. */
  reset?(): void
}

/** A JSON answer. */
export const json = (
  status: number,
  body: unknown,
  contentType = 'application/json',
  headers: Record<string, string> = {},
): SinkReply => ({
  status,
  headers: { 'content-type': contentType, ...headers },
  body: JSON.stringify(body),
})

/** Credentials from an `Authorization: Basic` header; null when absent or malformed. */
export function basicCredentials(
  header: string | undefined,
): { username: string; password: string } | null {
  if (header === undefined) return null
  const match = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (!match?.[1]) return null
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return null
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** Constant-time comparison (hash first, so lengths do not leak either). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

/** The media type of a Content-Type header, lower-cased, parameters dropped. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

/** The Java producer's refusal of a partition the topic lacks (KafkaProducer#waitOnMetadata). */
export const invalidPartition = (partition: number, count: number): string =>
  `Invalid partition given with record: ${partition} is not in the range [0...${count}).`

/** A record a dialect has parsed and placed, waiting to be stored. */
export type PlannedRecord = {
  topic: string
  partition: number
  record: NewRecord
}

/**
 * Stores the planned records except those a partial fault fails, returning per index either
 * the stored message or null. Used by every dialect so partial faults behave alike.
 */
export function storeRecords(
  ctx: DialectContext,
  dialect: Dialect,
  planned: readonly PlannedRecord[],
): (StoredMessage | null)[] {
  const fails = ctx.failIndexes(planned.length)
  return planned.map((p, i) =>
    fails.has(i) ? null : ctx.store.append(p.topic, p.partition, p.record, dialect),
  )
}
