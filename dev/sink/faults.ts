import { TopicScoped } from './scoped.ts'
import type { Fault, FaultKind, V2Flavor } from './types.ts'

const KINDS: readonly FaultKind[] = ['status', 'hang', 'html', 'partial', 'delay']
const FLAVORS: readonly V2Flavor[] = ['confluent', 'redpanda', 'karapace']

/** Why a fault definition was refused (the control API answers 400 with the message). */
export class FaultError extends Error {
  override name = 'FaultError'
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const nonNegativeInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0

/**
 * Checks a fault received as JSON (control API) or passed to `setFault`, so a typo fails loudly
 * instead of silently never applying.
 */
export function parseFault(input: unknown): Fault {
  if (!isRecord(input)) throw new FaultError('a fault must be a JSON object')
  const kind = input.kind
  if (typeof kind !== 'string' || !KINDS.includes(kind as FaultKind)) {
    throw new FaultError(`kind must be one of ${KINDS.join(', ')}`)
  }
  const allowed = new Set(['kind', 'times', 'probability', 'topic', 'v2Flavor'])
  const extra: Record<FaultKind, string[]> = {
    status: ['status', 'body', 'contentType', 'retryAfter'],
    hang: ['ms'],
    html: ['status'],
    partial: ['failIndexes'],
    delay: ['ms'],
  }
  for (const k of extra[kind as FaultKind]) allowed.add(k)
  for (const k of Object.keys(input)) {
    if (!allowed.has(k)) throw new FaultError(`unknown field '${k}' for a ${kind} fault`)
  }
  if (input.times !== undefined && !(nonNegativeInt(input.times) && input.times > 0)) {
    throw new FaultError('times must be a positive integer')
  }
  const p = input.probability
  if (p !== undefined && !(typeof p === 'number' && p >= 0 && p <= 1)) {
    throw new FaultError('probability must be a number from 0 to 1')
  }
  if (input.topic !== undefined && (typeof input.topic !== 'string' || input.topic === '')) {
    throw new FaultError('topic must be a non-empty string')
  }
  if (input.v2Flavor !== undefined && !FLAVORS.includes(input.v2Flavor as V2Flavor)) {
    throw new FaultError(`v2Flavor must be one of ${FLAVORS.join(', ')}`)
  }
  const status = input.status
  const validStatus = (s: unknown) => nonNegativeInt(s) && s >= 100 && s <= 599
  switch (kind) {
    case 'status':
      if (!validStatus(status)) throw new FaultError('status must be an HTTP status (100-599)')
      for (const k of ['body', 'contentType', 'retryAfter']) {
        if (input[k] !== undefined && typeof input[k] !== 'string') {
          throw new FaultError(`${k} must be a string`)
        }
      }
      break
    case 'html':
      if (status !== undefined && !validStatus(status)) {
        throw new FaultError('status must be an HTTP status (100-599)')
      }
      break
    case 'hang':
      if (input.ms !== undefined && !nonNegativeInt(input.ms)) {
        throw new FaultError('ms must be a non-negative integer')
      }
      break
    case 'delay':
      if (!nonNegativeInt(input.ms)) throw new FaultError('ms must be a non-negative integer')
      break
    case 'partial': {
      const f = input.failIndexes
      if (f !== undefined && !(Array.isArray(f) && f.every(nonNegativeInt))) {
        throw new FaultError('failIndexes must be an array of non-negative integers')
      }
      break
    }
  }
  // Validated field by field above; a structured clone keeps the caller's object untouched.
  return structuredClone(input) as Fault
}

type Entry = { fault: Fault; remaining: number | null }

/**
 * The installed faults: one global, plus one per topic. A produce request matches a topic fault
 * when it writes to that topic; a topic fault wins over the global one.
 */
export class FaultRegistry {
  readonly #entries = new TopicScoped<Entry>()
  readonly #random: () => number

  constructor(random: () => number = Math.random) {
    this.#random = random
  }

  /** Installs a fault (replacing the one with the same scope); `null` removes all. */
  set(fault: Fault | null): void {
    if (fault === null) this.clear()
    else this.#entries.set(fault.topic, { fault, remaining: fault.times ?? null })
  }

  /** Removes one topic's fault, or every fault. */
  clear(topic?: string): void {
    this.#entries.clear(topic)
  }

  /** Installed faults, for the control API. */
  list(): Fault[] {
    return this.#entries.list().map((e) => e.fault)
  }

  /**
   * Decides whether a fault applies to one produce request writing to `topics`, and consumes
   * one of its `times` if so. `probability` is rolled per request; a miss consumes nothing.
   */
  take(topics: readonly string[]): Fault | null {
    const found = this.#entries.find(topics)
    if (!found) return null
    const { entry, topic } = found
    const p = entry.fault.probability
    if (p !== undefined && !(this.#random() < p)) return null
    if (entry.remaining !== null) {
      entry.remaining -= 1
      if (entry.remaining <= 0) this.#entries.remove(topic)
    }
    return entry.fault
  }
}

/** The failing record indexes of a partial fault for a request of `count` records. */
export function failingIndexes(fault: Fault, count: number): ReadonlySet<number> {
  if (fault.kind !== 'partial') return new Set()
  return new Set(fault.failIndexes ?? (count > 0 ? [count - 1] : []))
}

/** Standard reason phrases, for default error bodies. */
export const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

export const reason = (status: number): string => REASONS[status] ?? `HTTP ${status}`

/**
 * An HTML error page like the ones nginx or a cloud load balancer put in front of a REST proxy
 * (the openapi of confluentinc/kafka-rest even documents Jetty's HTML 429 page). Clients that
 * parse every answer as JSON (as `@upstash/kafka` does) trip over it.
 */
export function htmlErrorPage(status: number): string {
  const title = `${status} ${reason(status)}`
  return (
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n` +
    `<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`
  )
}
