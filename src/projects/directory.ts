import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'

/**
 * What the directory answered for a set of external project ids: each one's internal id, or
 * null for a project it does not list; or why it could not answer.
 */
export type DirectoryAnswer =
  | { ok: true; ids: ReadonlyMap<string, string | null>; lookups: number }
  | { ok: false; reason: 'timeout' | 'error'; detail: string }

/** The project directory: external `entity/project` -> internal project id. */
export type ProjectDirectory = {
  resolve(projects: readonly string[]): Promise<DirectoryAnswer>
}

/** The cache's bound per isolate: a deployment with more active projects re-reads the oldest. */
export const CACHE_MAX_ENTRIES = 10_000

// KV refuses keys longer than this (in UTF-8 bytes), and the keys "", "." and "..": no such
// project can be listed, so it is absent rather than a directory failure.
const KV_KEY_MAX_BYTES = 512
const utf8 = new TextEncoder()
const listable = (project: string) =>
  project !== '' &&
  project !== '.' &&
  project !== '..' &&
  (project.length * 3 <= KV_KEY_MAX_BYTES || utf8.encode(project).length <= KV_KEY_MAX_BYTES)

type Entry = { id: string | null; expires: number }

/** Resolved ids (absences too) per KV binding, so a test's stand-in binding has its own. */
const caches = new WeakMap<object, Map<string, Entry>>()

/**
 * The directory over a KV namespace (key: external id exactly as sent; value: the internal id as
 * plain text). Answers are cached per isolate for `cacheSeconds`, absences included, so a burst
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
  return {
    async resolve(projects) {
      const ids = new Map<string, string | null>()
      const misses: string[] = []
      const now = Date.now()
      for (const project of projects) {
        if (ids.has(project)) continue
        const hit = options.cacheSeconds > 0 ? entries.get(project) : undefined
        if (hit !== undefined && hit.expires > now) ids.set(project, hit.id)
        else if (!listable(project)) ids.set(project, null)
        else {
          ids.set(project, null)
          misses.push(project)
        }
      }
      if (misses.length === 0) return { ok: true, ids, lookups: 0 }
      let values: (string | null)[] | typeof TIMED_OUT
      try {
        values = await withTimeout(
          Promise.all(misses.map((p) => kv.get(p, 'text'))),
          options.timeoutMs,
        )
      } catch (err) {
        return { ok: false, reason: 'error', detail: err instanceof Error ? err.message : 'error' }
      }
      if (values === TIMED_OUT) {
        return { ok: false, reason: 'timeout', detail: `no answer within ${options.timeoutMs} ms` }
      }
      const expires = Date.now() + options.cacheSeconds * 1000
      misses.forEach((project, i) => {
        const value = values[i]
        const id = typeof value === 'string' && value !== '' ? value : null
        ids.set(project, id)
        if (options.cacheSeconds > 0) {
          entries.delete(project)
          // Insertion order is age order: the oldest entry goes first.
          if (entries.size >= CACHE_MAX_ENTRIES) entries.delete(entries.keys().next().value ?? '')
          entries.set(project, { id, expires })
        }
      })
      return { ok: true, ids, lookups: misses.length }
    },
  }
}
