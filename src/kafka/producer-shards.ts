/**
 * Where direct delivery's native connections live: Durable Objects that keep a kafkajs producer
 * connected across the requests they receive. A socket opened during one request cannot be used
 * by the next one of the same isolate ("Cannot perform I/O on behalf of a different request"),
 * but one held by a Durable Object can, so a request pays an RPC instead of a TCP (+TLS, +SASL)
 * handshake and a metadata round trip (docs/native-kafka.md has the figures). Requests spread at
 * random over `KAFKA_PRODUCER_SHARDS` objects, so no single object is a bottleneck.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Producer } from 'kafkajs'
import type { ProducerShards } from '../config.ts'
import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'
import {
  closeNativeProducer,
  createNativeProducer,
  type NativeConnection,
  nativeFailureReason,
  sendOver,
} from './native.ts'
import type { Deadline, JobProducer, KafkaMessage, ProduceResult } from './producer.ts'
import { failAll } from './rest.ts'

/** One produce call as a shard receives it. */
export type ShardProduce = {
  connection: NativeConnection
  messages: readonly KafkaMessage[]
  deadlineAt: number
  maxBytes: number
  /** The kafkajs request timeout of a producer this call creates: the produce budget. */
  requestTimeoutMs: number
}

type Held = { producer: Producer; connected: Promise<unknown> }

/**
 * The producers one object holds, one per connection settings (a rotated password is a new
 * producer; the old one is closed when it fails). A producer that failed for any reason other
 * than a refused record is closed and forgotten, so a broken connection never serves a later
 * call: the next one connects afresh.
 */
export class KafkaProducerShard extends DurableObject<Env> {
  readonly #held = new Map<string, Held>()

  async produce(call: ShardProduce): Promise<ProduceResult> {
    const { messages, deadlineAt } = call
    const remaining = deadlineAt - Date.now()
    if (remaining <= 0) return failAll(messages.length, 'timeout', 'deadline passed before sending')
    const key = JSON.stringify(call.connection)
    const held = this.#hold(key, call)
    const connected = await withTimeout(
      held.connected.then(
        () => undefined,
        (e: unknown) => e ?? new Error('connect failed'),
      ),
      remaining,
    )
    if (connected === TIMED_OUT) {
      this.#drop(key, held)
      return failAll(messages.length, 'timeout', 'connect: no connection before the deadline')
    }
    if (connected !== undefined) {
      this.#drop(key, held)
      const { reason, detail } = nativeFailureReason(connected)
      return failAll(messages.length, reason, `connect: ${detail}`)
    }
    let result: ProduceResult | typeof TIMED_OUT
    try {
      result = await withTimeout(
        sendOver(held.producer, messages, { at: deadlineAt }, call.maxBytes),
        deadlineAt - Date.now(),
      )
    } catch (e) {
      const { reason, detail } = nativeFailureReason(e)
      result = failAll(messages.length, reason, detail)
    }
    if (result === TIMED_OUT) {
      this.#drop(key, held)
      return failAll(messages.length, 'timeout', 'no acknowledgement before the deadline')
    }
    if (!result.ok && result.reason !== 'rejected') this.#drop(key, held)
    return result
  }

  #hold(key: string, call: ShardProduce): Held {
    const existing = this.#held.get(key)
    if (existing) return existing
    const producer = createNativeProducer(call.connection, {
      connectMs: call.requestTimeoutMs,
      requestMs: call.requestTimeoutMs,
    })
    const held: Held = { producer, connected: producer.connect() }
    // Observed by every call that waits on it; this keeps a failure nobody awaits yet handled.
    held.connected.catch(() => {})
    this.#held.set(key, held)
    return held
  }

  #drop(key: string, held: Held): void {
    if (this.#held.get(key) === held) this.#held.delete(key)
    void closeNativeProducer(held.producer)
  }
}

/**
 * Direct delivery's native producer: each call's jobs to one shard, chosen at random, by RPC.
 * An RPC that fails (the object reset, overloaded, or its isolate gone) is `unavailable`, so
 * the policy retries and then queues; one not answered by the deadline is a `timeout`.
 */
export class ShardedProducer implements JobProducer {
  readonly #shards: ProducerShards
  readonly #connection: NativeConnection
  readonly #maxBytes: number
  readonly #requestTimeoutMs: number

  constructor(
    shards: ProducerShards,
    connection: NativeConnection,
    options: { maxBytes: number; requestTimeoutMs: number },
  ) {
    this.#shards = shards
    this.#connection = connection
    this.#maxBytes = options.maxBytes
    this.#requestTimeoutMs = options.requestTimeoutMs
  }

  async produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    if (messages.length === 0) return { ok: true }
    const remaining = deadline.at - Date.now()
    if (remaining <= 0) return failAll(messages.length, 'timeout', 'deadline passed before sending')
    const { namespace, count } = this.#shards
    const shard = Math.floor(Math.random() * count)
    try {
      const stub = namespace.get(namespace.idFromName(`producer-${shard}`))
      // The RPC's result type is a union of wrapped promises; the value is a ProduceResult.
      const answer = stub.produce({
        connection: this.#connection,
        messages,
        deadlineAt: deadline.at,
        maxBytes: this.#maxBytes,
        requestTimeoutMs: this.#requestTimeoutMs,
      }) as Promise<ProduceResult>
      const result = await withTimeout(answer, remaining)
      return result === TIMED_OUT
        ? failAll(
            messages.length,
            'timeout',
            `producer shard ${shard}: no answer before the deadline`,
          )
        : result
    } catch (e) {
      const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
      return failAll(messages.length, 'unavailable', `producer shard ${shard}: ${detail}`)
    }
  }
}
