import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'
import { REVERSE_PREFIX, reverseKey } from './reverse.ts'

/**
 * What the directory answered for a set of external project ids: each one's internal id, or
 * null for a project it does not list; or why it could not answer.
 */
export type DirectoryAnswer =
  | { ok: true; ids: ReadonlyMap<string, string | null>; lookups: number }
  | { ok: false; reason: 'timeout' | 'error'; detail: string }

/** What the directory answered for internal ids: the external projects listed under each (empty: none). */
export type ReverseAnswer =
  | { ok: true; projects: ReadonlyMap<string, readonly string[]>; lookups: number }
  | { ok: false; reason: 'timeout' | 'error'; detail: string }

/**
 * The project directory: external `entity/project` -> internal project id, and the reverse
 * entries internal id -> the external projects listed under it (more than one for aliases).
 */
export type ProjectDirectory = {
  resolve(projects: readonly string[]): Promise<DirectoryAnswer>
  projectsOf(internalIds: readonly string[]): Promise<ReverseAnswer>
}

export { REVERSE_PREFIX, reverseKey }

/** The cache's bound per isolate: a deployment with more active projects re-reads the oldest. */
export const CACHE_MAX_ENTRIES = 10_000

// KV refuses keys longer than this (in UTF-8 bytes), and the keys "", "." and "..": no such
// project can be listed, so it is absent rather than a directory failure.
const KV_KEY_MAX_BYTES = 512
const utf8 = new TextEncoder()
const fitsKv = (key: string) =>
  key !== '' &&
  key !== '.' &&
  key !== '..' &&
  (key.length * 3 <= KV_KEY_MAX_BYTES || utf8.encode(key).length <= KV_KEY_MAX_BYTES)
const listable = (project: string) => fitsKv(project) && !project.startsWith(REVERSE_PREFIX)

/** The reverse entry's value: a JSON list of strings; anything else lists no project. */
function parseProjects(value: string | null): readonly string[] {
  if (value === null) return []
  try {
    const parsed: unknown = JSON.parse(value)
    return Array.isArray(parsed) ? parsed.filter((p): p is string => typeof p === 'string') : []
  } catch {
    return []
  }
}

type Entry = { id: string | null; expires: number }

/** Values read (absences too) per KV binding and key, so a test's stand-in binding has its own. */
const caches = new WeakMap<object, Map<string, Entry>>()

/**
 * The directory over a KV namespace (key: external id exactly as sent; value: the internal id as
 * plain text; and the reverse entries under {@link REVERSE_PREFIX}). Answers are cached per isolate for `cacheSeconds`, absences included, so a burst
 * of requests for one project costs one KV read per isolate and period; the misses of one call
 * are read in parallel, all under one `timeoutMs`. An empty value counts as absent: it could
 * only produce refs that name no project.
 */
export function kvDirectory(
  kv: KVNamespace,
  options: { cacheSeconds: number; timeoutMs: number },
): ProjectDirectory {
  let cache = caches.get(kv)
  if (cache === undefined) {
    cache = new Map()
    caches.set(kv, cache)
  }
  const entries = cache

  /** The values of `keys` (null: absent, or not a key KV could hold), cached, misses in parallel. */
  async function read(
    keys: readonly string[],
    readable: (key: string) => boolean,
  ): Promise<DirectoryAnswer> {
    const ids = new Map<string, string | null>()
    const misses: string[] = []
    const now = Date.now()
    for (const key of keys) {
      if (ids.has(key)) continue
      // Checked before the cache, which holds both kinds of entry.
      if (!readable(key)) {
        ids.set(key, null)
        continue
      }
      const hit = options.cacheSeconds > 0 ? entries.get(key) : undefined
      if (hit !== undefined && hit.expires > now) ids.set(key, hit.id)
      else {
        ids.set(key, null)
        misses.push(key)
      }
    }
    if (misses.length === 0) return { ok: true, ids, lookups: 0 }
    let values: (string | null)[] | typeof TIMED_OUT
    try {
      values = await withTimeout(
        Promise.all(misses.map((k) => kv.get(k, 'text'))),
        options.timeoutMs,
      )
    } catch (err) {
      return { ok: false, reason: 'error', detail: err instanceof Error ? err.message : 'error' }
    }
    if (values === TIMED_OUT) {
      return { ok: false, reason: 'timeout', detail: `no answer within ${options.timeoutMs} ms` }
    }
    const expires = Date.now() + options.cacheSeconds * 1000
    misses.forEach((key, i) => {
      const value = values[i]
      const id = typeof value === 'string' && value !== '' ? value : null
      ids.set(key, id)
      if (options.cacheSeconds > 0) {
        entries.delete(key)
        // Insertion order is age order: the oldest entry goes first.
        if (entries.size >= CACHE_MAX_ENTRIES) entries.delete(entries.keys().next().value ?? '')
        entries.set(key, { id, expires })
      }
    })
    return { ok: true, ids, lookups: misses.length }
  }

  return {
    resolve: (projects) => read(projects, listable),
    async projectsOf(internalIds) {
      const answer = await read(internalIds.map(reverseKey), fitsKv)
      if (!answer.ok) return answer
      const projects = new Map<string, readonly string[]>()
      for (const id of internalIds)
        projects.set(id, parseProjects(answer.ids.get(reverseKey(id)) ?? null))
      return { ok: true, projects, lookups: answer.lookups }
    },
  }
}
