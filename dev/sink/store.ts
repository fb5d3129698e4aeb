import type { Dialect, StoredHeader, StoredMessage } from './types.ts'

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils#murmur2), the hash of the Java
 * client's default partitioner, as a signed 32-bit int. `Math.imul` keeps Java's int overflow.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  const m = 0x5bd1e995
  let h = (0x9747b28c ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k =
      ((data[i4] ?? 0) & 0xff) |
      (((data[i4 + 1] ?? 0) & 0xff) << 8) |
      (((data[i4 + 2] ?? 0) & 0xff) << 16) |
      (((data[i4 + 3] ?? 0) & 0xff) << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m)
    h ^= k
  }
  const tail = length & ~3
  // Java's switch falls through from case 3 to case 1.
  const rest = length % 4
  if (rest === 3) h ^= ((data[tail + 2] ?? 0) & 0xff) << 16
  if (rest >= 2) h ^= ((data[tail + 1] ?? 0) & 0xff) << 8
  if (rest >= 1) {
    h ^= (data[tail] ?? 0) & 0xff
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** Kafka's Utils#toPositive: clears the sign bit (not Math.abs, which differs for MIN_VALUE). */
export const toPositive = (n: number): number => n & 0x7fffffff

/** A record ready to be appended: raw bytes, as the dialect decoded them. */
export type NewRecord = {
  key: Buffer | null
  value: Buffer | null
  headers: { key: string; value: Buffer | null }[]
  /** Producer timestamp in ms; arrival time when absent. */
  timestamp?: number
}

type Partition = { messages: StoredMessage[] }
type Topic = { partitions: Partition[]; roundRobin: number }

/**
 * In-memory topics: per partition an append-only list whose index is the offset. Readers that
 * long-poll (Upstash fetch/consume) wait on {@link MessageStore.waitForAppend}.
 */
export class MessageStore {
  readonly #partitions: number
  readonly #autoCreate: boolean
  readonly #declared: readonly string[]
  #topics = new Map<string, Topic>()
  /** Every stored message in arrival order, for the control API. */
  #all: StoredMessage[] = []
  #waiters = new Set<() => void>()

  constructor(options: { partitions: number; autoCreate: boolean; topics: readonly string[] }) {
    this.#partitions = options.partitions
    this.#autoCreate = options.autoCreate
    this.#declared = options.topics
    this.reset()
  }

  /** Whether a topic exists (or would be created on first write). */
  topicExists(topic: string): boolean {
    return this.#topics.has(topic) || this.#autoCreate
  }

  /** Partition count of an existing (or auto-creatable) topic; 0 if it cannot exist. */
  partitionCount(topic: string): number {
    const t = this.#topics.get(topic)
    if (t) return t.partitions.length
    return this.#autoCreate ? this.#partitions : 0
  }

  /**
   * The Java client's choice for a record without an explicit partition: murmur2 of the key
   * bytes for keyed records, round-robin for null keys (the pre-2.4 DefaultPartitioner; newer
   * clients use a sticky partitioner for null keys, which only changes batching).
   */
  choosePartition(topic: string, key: Uint8Array | null): number {
    const t = this.#topic(topic)
    const n = t.partitions.length
    if (key !== null) return toPositive(murmur2(key)) % n
    const p = t.roundRobin % n
    t.roundRobin = (t.roundRobin + 1) % n
    return p
  }

  /** Appends one record; the caller has checked that the topic and partition exist. */
  append(topic: string, partition: number, record: NewRecord, dialect: Dialect): StoredMessage {
    const p = this.#topic(topic).partitions[partition]
    if (!p) throw new RangeError(`partition ${partition} of ${topic} does not exist`)
    const message: StoredMessage = {
      topic,
      partition,
      offset: p.messages.length,
      timestamp: record.timestamp ?? Date.now(),
      key: record.key === null ? null : record.key.toString('utf8'),
      keyBase64: record.key === null ? null : record.key.toString('base64'),
      value: record.value === null ? null : record.value.toString('utf8'),
      valueBase64: record.value === null ? null : record.value.toString('base64'),
      headers: record.headers.map(
        (h): StoredHeader => ({
          key: h.key,
          value: h.value === null ? null : h.value.toString('utf8'),
          valueBase64: h.value === null ? null : h.value.toString('base64'),
        }),
      ),
      dialect,
    }
    p.messages.push(message)
    this.#all.push(message)
    for (const wake of this.#waiters) wake()
    return message
  }

  /** Messages of a partition from `offset` on (at most `max`). */
  read(topic: string, partition: number, offset: number, max = 500): StoredMessage[] {
    const p = this.#topics.get(topic)?.partitions[partition]
    if (!p) return []
    return p.messages.slice(Math.max(0, offset), Math.max(0, offset) + max)
  }

  /** Offset the next record of a partition will get (the "log end offset"). */
  endOffset(topic: string, partition: number): number {
    return this.#topics.get(topic)?.partitions[partition]?.messages.length ?? 0
  }

  /** Topics that currently exist, with their partition counts. */
  topics(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, t] of this.#topics) out[name] = t.partitions.length
    return out
  }

  /** Every stored message in arrival order, optionally of one topic. */
  messages(topic?: string): StoredMessage[] {
    return topic === undefined ? [...this.#all] : this.#all.filter((m) => m.topic === topic)
  }

  /**
   * Resolves on the next append, or after `ms`, or when `signal` aborts (close/reset), whichever
   * comes first. Long-polling readers loop on it.
   */
  waitForAppend(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      this.#waiters.add(done)
      signal.addEventListener('abort', done, { once: true })
      if (signal.aborted) done()
    })
  }

  /** Drops every message and auto-created topic; declared topics stay, empty. */
  reset(): void {
    this.#topics = new Map()
    this.#all = []
    for (const name of this.#declared) this.#topics.set(name, this.#newTopic())
  }

  #newTopic(): Topic {
    return {
      partitions: Array.from({ length: this.#partitions }, () => ({ messages: [] })),
      roundRobin: 0,
    }
  }

  #topic(name: string): Topic {
    let t = this.#topics.get(name)
    if (!t) {
      if (!this.#autoCreate) throw new RangeError(`topic ${name} does not exist`)
      t = this.#newTopic()
      this.#topics.set(name, t)
    }
    return t
  }
}
