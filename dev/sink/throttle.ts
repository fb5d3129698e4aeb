/**
 * The sink as a throttled endpoint, like a managed Kafka REST service: a produce request rate
 * (token bucket; 429 with `Retry-After` beyond it, as Confluent Cloud answers) and a produce
 * request size (413 beyond it, as Karapace answers above its 1 MiB default).
 */
import { TopicScoped } from './scoped.ts'
import type { Throttle } from './types.ts'

/** Why a throttle definition was refused (the control API answers 400 with the message). */
export class ThrottleError extends Error {
  override name = 'ThrottleError'
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const positive = (v: unknown): v is number => typeof v === 'number' && v > 0 && Number.isFinite(v)

/** Checks a throttle received as JSON or passed to `setThrottle`; a typo fails loudly. */
export function parseThrottle(input: unknown): Throttle {
  if (!isRecord(input)) throw new ThrottleError('a throttle must be a JSON object')
  const allowed = new Set(['ratePerSecond', 'burst', 'retryAfter', 'maxRequestBytes', 'topic'])
  for (const k of Object.keys(input)) {
    if (!allowed.has(k)) throw new ThrottleError(`unknown field '${k}' for a throttle`)
  }
  if (input.ratePerSecond !== undefined && !positive(input.ratePerSecond)) {
    throw new ThrottleError('ratePerSecond must be a positive number')
  }
  if (input.burst !== undefined && !(positive(input.burst) && input.burst >= 1)) {
    throw new ThrottleError('burst must be a number of at least 1')
  }
  const retryAfter = input.retryAfter
  if (retryAfter !== undefined && !(Number.isInteger(retryAfter) && (retryAfter as number) >= 0)) {
    throw new ThrottleError('retryAfter must be a non-negative integer (seconds)')
  }
  const max = input.maxRequestBytes
  if (max !== undefined && !(Number.isInteger(max) && (max as number) > 0)) {
    throw new ThrottleError('maxRequestBytes must be a positive integer')
  }
  if (input.topic !== undefined && (typeof input.topic !== 'string' || input.topic === '')) {
    throw new ThrottleError('topic must be a non-empty string')
  }
  if (input.ratePerSecond === undefined && max === undefined) {
    throw new ThrottleError('a throttle needs ratePerSecond, maxRequestBytes or both')
  }
  return structuredClone(input) as Throttle
}

/** What the throttle says about one produce request. */
export type Verdict =
  | { kind: 'pass' }
  | { kind: 'throttled'; retryAfter: number }
  | { kind: 'too_large'; limit: number }

type Bucket = { throttle: Throttle; tokens: number; at: number }

/**
 * The installed throttles: one global, plus one per topic (a request writing to a throttled
 * topic is limited by that topic's bucket only, so parallel tests each on their own topic do not
 * disturb one another). Each has its own token bucket, full when installed.
 */
export class ThrottleRegistry {
  readonly #buckets = new TopicScoped<Bucket>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Installs a throttle (replacing the one of the same scope); `null` removes all. */
  set(throttle: Throttle | null): void {
    if (throttle === null) this.clear()
    else {
      const bucket: Bucket = { throttle, tokens: burstOf(throttle), at: this.#now() }
      this.#buckets.set(throttle.topic, bucket)
    }
  }

  /** Removes one topic's throttle, or every throttle. */
  clear(topic?: string): void {
    this.#buckets.clear(topic)
  }

  /** Installed throttles, for the control API. */
  list(): Throttle[] {
    return this.#buckets.list().map((b) => b.throttle)
  }

  /**
   * Decides on one produce request writing to `topics` with a body of `bytes`: the rate first
   * (every request costs a token, as every request costs the endpoint), then the size.
   */
  check(topics: readonly string[], bytes: number): Verdict {
    const bucket = this.#buckets.find(topics)?.entry
    if (!bucket) return { kind: 'pass' }
    const { throttle } = bucket
    const rate = throttle.ratePerSecond
    if (rate !== undefined) {
      const now = this.#now()
      bucket.tokens = Math.min(burstOf(throttle), bucket.tokens + ((now - bucket.at) * rate) / 1000)
      bucket.at = now
      if (bucket.tokens < 1) {
        const wait = Math.max(1, Math.ceil((1 - bucket.tokens) / rate))
        return { kind: 'throttled', retryAfter: throttle.retryAfter ?? wait }
      }
      bucket.tokens -= 1
    }
    const limit = throttle.maxRequestBytes
    if (limit !== undefined && bytes > limit) return { kind: 'too_large', limit }
    return { kind: 'pass' }
  }
}

/** A bucket's size: `burst`, else one second's worth of requests (at least one). */
const burstOf = (t: Throttle) => t.burst ?? Math.max(1, t.ratePerSecond ?? 1)
