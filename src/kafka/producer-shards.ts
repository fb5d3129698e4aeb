/**
 * Where direct delivery's native connections live: Durable Objects that keep a kafkajs producer
 * connected across the requests they receive. A socket opened during one request cannot be used
 * by the next one of the same isolate ("Cannot perform I/O on behalf of a different request"),
 * but one held by a Durable Object can, so a request pays an RPC instead of a TCP (+TLS, +SASL)
 * handshake and a metadata round trip (docs/native-kafka.md has the figures). Requests spread at
 * random over `KAFKA_PRODUCER_SHARDS` objects.
 *
 * A shard sends one produce at a time per connection: the records of calls that arrive while it
 * is in flight (or within `KAFKA_PRODUCER_LINGER_MS`) go out together in the next one, and each
 * caller is answered for its own records. A write that outlives its caller's deadline keeps
 * running, and the shard remembers what became of it, so the queue consumer that re-sends the
 * caller's jobs can ask instead of producing them twice (docs/delivery.md, "Duplicates").
 */
import { DurableObject } from 'cloudflare:workers'
import type { Producer } from 'kafkajs'
import type { ProducerShards } from '../config.ts'
import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'
import { jobIdOf } from './jobs.ts'
import {
  type Connected,
  closeNativeProducer,
  connectNative,
  type NativeConnection,
  nativeFailureReason,
  nativeRequestSize,
  sendOver,
} from './native.ts'
import type {
  Deadline,
  JobProducer,
  KafkaMessage,
  ProduceResult,
  WriteOutcome,
} from './producer.ts'
import { failAll } from './rest.ts'

/**
 * How long a shard's write may run past its caller's deadline so that its outcome becomes
 * known: the broker's wait for the in-sync replicas and kafkajs's request timeout. Longer than
 * a dead replica takes to leave the in-sync set (up to `broker.session.timeout.ms`, 9 s by
 * default), so an `acks=all` write stalled by a crash ends in an answer, not in a guess.
 */
export const OUTCOME_WINDOW_MS = 15_000

/** How long a shard remembers the outcome of a write that its caller gave up on. */
export const OUTCOME_RETENTION_MS = 10 * 60_000

/** At most this many remembered outcomes per shard (records, oldest forgotten first). */
const OUTCOME_MAX = 100_000

/**
 * A call answered this close to its deadline may reach a caller that has given up already: its
 * outcome is remembered too (the RPC's way back and the two clocks).
 */
const LATE_MARGIN_MS = 250

/** One produce call as a shard receives it. */
export type ShardProduce = {
  /** The connection settings' identity, computed once per configuration by the caller. */
  key: string
  connection: NativeConnection
  messages: readonly KafkaMessage[]
  deadlineAt: number
  maxBytes: number
  /** `KAFKA_PRODUCER_LINGER_MS`: how long an idle shard waits for more calls before sending. */
  lingerMs: number
  /** `KAFKA_PRODUCER_IDLE_SECONDS` in ms: a producer unused this long is disconnected. */
  idleMs: number
  /**
   * The caller reads `true` as `{ ok: true }`: a primitive answer costs the RPC less than an
   * object (about 14 µs of CPU per call under workerd). Absent (a caller from before it, during
   * a deploy), every answer is the result object.
   */
  compact?: boolean
}

/** What a shard answers: the result, or `true` for `{ ok: true }` to a compact caller. */
export type ShardAnswer = ProduceResult | true

type Call = {
  messages: readonly KafkaMessage[]
  deadlineAt: number
  bytes: number
  resolve: (result: ProduceResult) => void
}

/** The calls of one produce request, and its completion. */
type Batch = { calls: Call[]; deadlineAt: number; done: Promise<void> }

/** One producer (one set of connection settings) and the calls queued for it. */
type Line = {
  key: string
  connection: NativeConnection
  connecting: Promise<Connected>
  producer: Producer | undefined
  waiting: Call[]
  /** The batch new calls wait behind, while its callers' deadlines have not passed. */
  current: Batch | undefined
  /** Every batch still in flight, late ones included. */
  running: Set<Batch>
  lastUsed: number
  lingering: boolean
  maxBytes: number
  lingerMs: number
  closed: boolean
}

const recordBytes = (messages: readonly KafkaMessage[]) => {
  let bytes = 0
  for (const m of messages) bytes += nativeRequestSize.record(m)
  return bytes
}

/** A batch's result as one of its callers sees it: its own records only. */
function sliceOf(result: ProduceResult, from: number, count: number): ProduceResult {
  if (result.ok) return result
  const acknowledged = result.acknowledged.slice(from, from + count)
  return acknowledged.every(Boolean) ? { ok: true } : { ...result, acknowledged }
}

/**
 * The producers one object holds, one per connection settings (a rotated password is a new
 * producer). A producer whose send failed for any reason other than a refused record is closed
 * and forgotten once its other writes are done, so a broken connection never serves a later
 * call: the next one connects afresh, to the seeds in a new order.
 */
export class KafkaProducerShard extends DurableObject<Env> {
  readonly #lines = new Map<string, Line>()
  readonly #outcomes = new Map<string, { outcome: WriteOutcome; at: number }>()
  #idleMs = 60_000
  #idleTimer: ReturnType<typeof setTimeout> | undefined

  produce(call: ShardProduce): Promise<ShardAnswer> | ShardAnswer {
    const { messages, deadlineAt } = call
    const now = Date.now()
    if (deadlineAt <= now) {
      return failAll(messages.length, 'timeout', 'deadline passed before sending')
    }
    const line =
      this.#lines.get(call.key) ??
      this.#open(call.key, call.connection, deadlineAt, call.maxBytes, call.lingerMs)
    line.lastUsed = now
    line.maxBytes = call.maxBytes
    line.lingerMs = call.lingerMs
    if (this.#idleMs !== call.idleMs || this.#idleTimer === undefined) {
      this.#idleMs = call.idleMs
      this.#armIdle()
    }
    return new Promise<ShardAnswer>((resolve) => {
      line.waiting.push({
        messages,
        deadlineAt,
        bytes: recordBytes(messages),
        resolve: call.compact ? (result) => resolve(result.ok || result) : resolve,
      })
      if (line.producer) this.#schedule(line)
    })
  }

  /**
   * What became of these jobs' records (by `weave-job-id`), waiting up to `waitMs` for those
   * still in flight or queued here.
   */
  async outcomes(jobIds: readonly string[], waitMs = 0): Promise<WriteOutcome[]> {
    const now = Date.now()
    this.#forget(now)
    if (waitMs > 0) {
      const pending = this.#pendingIds()
      if (jobIds.some((id) => pending.has(id))) {
        const running = [...this.#lines.values()].flatMap((l) => [...l.running].map((b) => b.done))
        // Queued calls go out (or expire) when the batch ahead of them completes.
        await withTimeout(Promise.all(running), waitMs)
      }
    }
    const pending = this.#pendingIds()
    return jobIds.map(
      (id) => this.#outcomes.get(id)?.outcome ?? (pending.has(id) ? 'pending' : 'unknown'),
    )
  }

  #open(
    key: string,
    connection: NativeConnection,
    deadlineAt: number,
    maxBytes: number,
    lingerMs: number,
  ): Line {
    const line: Line = {
      key,
      connection,
      connecting: connectNative(connection, deadlineAt, OUTCOME_WINDOW_MS + 2_000),
      producer: undefined,
      waiting: [],
      current: undefined,
      running: new Set(),
      lastUsed: Date.now(),
      lingering: false,
      maxBytes,
      lingerMs,
      closed: false,
    }
    this.#lines.set(key, line)
    void line.connecting.then((connected) => {
      if (!connected.ok) {
        const { reason, detail } = nativeFailureReason(connected.error)
        this.#drop(line, failAll(0, reason, `connect: ${detail}`))
        return
      }
      line.producer = connected.producer
      if (line.closed) void closeNativeProducer(connected.producer)
      else this.#schedule(line)
    })
    return line
  }

  #schedule(line: Line): void {
    if (line.waiting.length === 0) return
    const current = line.current
    // A batch past its earliest caller's deadline (answered by its own timer) holds none back.
    if (current && current.deadlineAt > Date.now()) return
    if (line.lingerMs > 0 && !current) {
      if (line.lingering) return
      line.lingering = true
      setTimeout(() => {
        line.lingering = false
        this.#flush(line)
      }, line.lingerMs)
      return
    }
    this.#flush(line)
  }

  /** Sends the queued calls that fit one request; calls whose deadline passed are not sent. */
  #flush(line: Line): void {
    const producer = line.producer
    if (!producer || line.closed) return
    const now = Date.now()
    const calls: Call[] = []
    let bytes = nativeRequestSize.base
    let deadlineAt = Number.POSITIVE_INFINITY
    let taken = 0
    for (const call of line.waiting) {
      if (call.deadlineAt <= now) {
        taken++
        const result = failAll(call.messages.length, 'timeout', 'not sent before the deadline')
        this.#remember(call.messages, result, now, true)
        call.resolve(result)
        continue
      }
      if (calls.length > 0 && bytes + call.bytes > line.maxBytes) break
      taken++
      calls.push(call)
      bytes += call.bytes
      if (call.deadlineAt < deadlineAt) deadlineAt = call.deadlineAt
    }
    line.waiting.splice(0, taken)
    if (calls.length === 0) return
    const batch: Batch = { calls, deadlineAt, done: Promise.resolve() }
    line.current = batch
    line.running.add(batch)
    batch.done = this.#send(line, producer, batch)
  }

  async #send(line: Line, producer: Producer, batch: Batch): Promise<void> {
    const { calls } = batch
    const messages =
      calls.length === 1 ? (calls[0] as Call).messages : calls.flatMap((c) => c.messages)
    let result: ProduceResult
    try {
      // The write's own clock is the outcome window, not the callers' deadlines: a caller that
      // gave up is answered by its own timer, and the write ends in a known outcome.
      result = await sendOver(
        producer,
        messages,
        { at: Date.now() + OUTCOME_WINDOW_MS },
        line.maxBytes,
      )
    } catch (e) {
      const { reason, detail } = nativeFailureReason(e)
      result = failAll(messages.length, reason, detail)
    }
    line.running.delete(batch)
    if (line.current === batch) line.current = undefined
    const now = Date.now()
    let from = 0
    for (const call of calls) {
      const own = calls.length === 1 ? result : sliceOf(result, from, call.messages.length)
      from += call.messages.length
      if (now >= call.deadlineAt - LATE_MARGIN_MS) this.#remember(call.messages, own, now)
      call.resolve(own)
    }
    if (!result.ok && result.reason !== 'rejected') this.#drop(line, result, true)
    else if (line.closed) this.#closeWhenDone(line)
    else this.#schedule(line)
  }

  /**
   * Forgets the line, and closes its producer once its writes in flight are done, so their
   * outcomes are still learnt. Its queued calls were never sent: after a failed send they wait on
   * a fresh connection (`handOver`), since one broken connection says nothing about their records
   * and failing them would spend their callers' retries; otherwise (the connect itself failed, or
   * the line went idle) they are answered with the cause.
   */
  #drop(line: Line, cause: ProduceResult, handOver = false): void {
    if (this.#lines.get(line.key) === line) this.#lines.delete(line.key)
    line.closed = true
    const waiting = line.waiting.splice(0)
    const now = Date.now()
    const latest = waiting.reduce((at, call) => Math.max(at, call.deadlineAt), 0)
    if (handOver && latest > now) {
      const next =
        this.#lines.get(line.key) ??
        this.#open(line.key, line.connection, latest, line.maxBytes, line.lingerMs)
      next.waiting.push(...waiting)
      if (next.producer) this.#schedule(next)
    } else {
      const detail = cause.ok ? 'producer closed' : `producer closed after: ${cause.detail}`
      for (const call of waiting) {
        const result = cause.ok
          ? failAll(call.messages.length, 'unavailable', detail)
          : { ...cause, acknowledged: call.messages.map(() => false) }
        this.#remember(call.messages, result, now, true)
        call.resolve(result)
      }
    }
    this.#closeWhenDone(line)
  }

  #closeWhenDone(line: Line): void {
    if (line.running.size > 0 || !line.producer) return
    const producer = line.producer
    line.producer = undefined
    void closeNativeProducer(producer)
  }

  /** Outcomes of records whose caller may have given up, by job id. */
  #remember(
    messages: readonly KafkaMessage[],
    result: ProduceResult,
    now: number,
    unsent = false,
  ): void {
    messages.forEach((m, i) => {
      const id = jobIdOf(m)
      if (id === undefined) return
      const landed = result.ok || result.acknowledged[i] === true
      // A refused or unsent record is known not to be on Kafka; after any other failure it may be.
      const outcome: WriteOutcome = landed
        ? 'landed'
        : unsent || result.ok || result.reason === 'rejected'
          ? 'failed'
          : 'unknown'
      this.#outcomes.set(id, { outcome, at: now })
    })
    this.#forget(now)
  }

  #forget(now: number): void {
    const before = now - OUTCOME_RETENTION_MS
    for (const [id, { at }] of this.#outcomes) {
      if (at >= before && this.#outcomes.size <= OUTCOME_MAX) break
      this.#outcomes.delete(id)
    }
  }

  /** The jobs with a record queued or in flight here. */
  #pendingIds(): Set<string> {
    const ids = new Set<string>()
    const add = (calls: Iterable<Call>) => {
      for (const call of calls) {
        for (const m of call.messages) {
          const id = jobIdOf(m)
          if (id !== undefined) ids.add(id)
        }
      }
    }
    for (const line of this.#lines.values()) {
      add(line.waiting)
      for (const batch of line.running) add(batch.calls)
    }
    return ids
  }

  /**
   * One timer per shard, not per call: when it fires, producers unused for the idle time (and
   * with nothing in flight) are disconnected, and it is armed again for the others.
   */
  #armIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => this.#closeIdle(), this.#idleMs)
  }

  #closeIdle(): void {
    this.#idleTimer = undefined
    const now = Date.now()
    let next = this.#idleMs
    for (const line of this.#lines.values()) {
      const idleFor = now - line.lastUsed
      if (idleFor >= this.#idleMs && line.running.size === 0 && line.waiting.length === 0) {
        this.#drop(line, { ok: true })
      } else {
        next = Math.min(next, Math.max(1_000, this.#idleMs - idleFor))
      }
    }
    if (this.#lines.size > 0) this.#idleTimer = setTimeout(() => this.#closeIdle(), next)
  }
}

/** The name a shard's object is derived from, and that a held write's `heldBy` gives. */
const shardName = (index: number) => `producer-${index}`

/**
 * Direct delivery's native producer: each call's jobs to one shard, chosen at random, by RPC.
 * An RPC that fails (the object reset, overloaded, or its isolate gone) is `unavailable`, so
 * the policy retries and then queues; one not answered by the deadline is a `timeout` held by
 * that shard, which can later tell whether its records landed ({@link outcomeOf}).
 */
export class ShardedProducer implements JobProducer {
  readonly #shards: ProducerShards
  readonly #connection: NativeConnection
  readonly #key: string
  readonly #maxBytes: number
  readonly #ids: (DurableObjectId | undefined)[]

  constructor(shards: ProducerShards, connection: NativeConnection, options: { maxBytes: number }) {
    this.#shards = shards
    this.#connection = connection
    this.#key = JSON.stringify(connection)
    this.#maxBytes = options.maxBytes
    this.#ids = new Array(shards.count)
  }

  /** The shard's stub; ids are derived once per configuration. */
  #stub(index: number) {
    const { namespace } = this.#shards
    let id = this.#ids[index]
    if (!id) {
      id = namespace.idFromName(shardName(index))
      this.#ids[index] = id
    }
    return namespace.get(id)
  }

  async produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    if (messages.length === 0) return { ok: true }
    const remaining = deadline.at - Date.now()
    if (remaining <= 0) return failAll(messages.length, 'timeout', 'deadline passed before sending')
    const { count, lingerMs, idleSeconds } = this.#shards
    const shard = Math.floor(Math.random() * count)
    const name = shardName(shard)
    try {
      // The RPC's result type is a union of wrapped promises; the value is a ShardAnswer.
      const answer = this.#stub(shard).produce({
        key: this.#key,
        connection: this.#connection,
        messages,
        deadlineAt: deadline.at,
        maxBytes: this.#maxBytes,
        lingerMs,
        idleMs: idleSeconds * 1000,
        compact: true,
      }) as Promise<ShardAnswer>
      const result = await withTimeout(answer, remaining)
      if (result === true) return { ok: true }
      if (result !== TIMED_OUT) return result
      return {
        ...failAll(
          messages.length,
          'timeout',
          `producer shard ${shard}: no answer before the deadline`,
        ),
        heldBy: name,
      }
    } catch (e) {
      const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
      return failAll(messages.length, 'unavailable', `producer shard ${shard}: ${detail}`)
    }
  }

  async outcomeOf(
    heldBy: string,
    messages: readonly KafkaMessage[],
    waitMs: number,
  ): Promise<readonly WriteOutcome[]> {
    return shardOutcomes(
      this.#shards,
      heldBy,
      messages.map((m) => jobIdOf(m) ?? ''),
      waitMs,
    )
  }
}

/**
 * Asks the shard that held a timed-out write what became of these jobs; `unknown` for each when
 * the shard cannot say in time (reset, unreachable).
 */
export async function shardOutcomes(
  shards: ProducerShards,
  heldBy: string,
  jobIds: readonly string[],
  waitMs = 0,
): Promise<readonly WriteOutcome[]> {
  const unknown = () => jobIds.map((): WriteOutcome => 'unknown')
  try {
    const stub = shards.namespace.get(shards.namespace.idFromName(heldBy))
    const answer = stub.outcomes(jobIds, waitMs) as Promise<WriteOutcome[]>
    const outcomes = await withTimeout(answer, waitMs + 500)
    return outcomes === TIMED_OUT ? unknown() : outcomes
  } catch {
    return unknown()
  }
}
