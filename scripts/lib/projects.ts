/**
 * The project directory of the internal id form (docs/internal-ids.md) in the `PROJECT_IDS` KV
 * namespace, through wrangler (scripts/lib/kv.ts): key the external `entity/project` exactly as
 * clients send it, value the internal project id as plain text. The id is also written as KV
 * metadata, so a listing of thousands of projects needs no read per project. Every internal id
 * also has its reverse entry, `*internal/<id>` -> the JSON list of its external projects (sorted;
 * more than one for aliases), which the worker reads to accept internal scorer refs of granted
 * projects; every write here keeps both directions. Shared by `npm run projects`, `npm run dev`
 * and self-hosted mode.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REVERSE_PREFIX, reverseKey } from '../../src/projects/reverse.ts'
import { getKv, getKvMany, type KvTarget, kvArgs, listKv, wrangler } from './kv.ts'

const BINDING = 'PROJECT_IDS'
// KV refuses longer keys, and longer metadata (`{"id":…}`, so a listing reads no values), in
// UTF-8 bytes. An id whose metadata does not fit would fail its write, and in a bulk import
// after the other entries were written.
const KEY_MAX_BYTES = 512
const METADATA_MAX_BYTES = 1024

/** An external project id as clients send it: `entity/project`, neither part empty. */
const PROJECT = /^[^\s/*]+\/[^\s/*]+$/

/** Why a directory entry cannot be stored, or undefined when it can. */
export function entryProblem(project: string, id: unknown): string | undefined {
  if (!PROJECT.test(project)) return `${project}: not an external project id (entity/project)`
  if (Buffer.byteLength(project) > KEY_MAX_BYTES) {
    return `${project.slice(0, 40)}…: longer than KV's ${KEY_MAX_BYTES}-byte keys`
  }
  if (typeof id !== 'string' || !/^[^\s\p{Cc}]+$/u.test(id)) {
    return `${project}: the internal id must be a non-empty string without spaces or control characters`
  }
  if (Buffer.byteLength(JSON.stringify({ id })) > METADATA_MAX_BYTES) {
    return `${project}: the internal id is too long (KV metadata holds ${METADATA_MAX_BYTES} bytes)`
  }
  if (Buffer.byteLength(reverseKey(id)) > KEY_MAX_BYTES) {
    return `${project}: the internal id is too long for its reverse entry (KV keys hold ${KEY_MAX_BYTES} bytes)`
  }
  return undefined
}

/** The reverse entries of a directory: `*internal/<id>` -> the JSON list of its projects, sorted. */
export function reverseEntries(directory: Record<string, string>): Record<string, string> {
  const byId = new Map<string, string[]>()
  for (const [project, id] of Object.entries(directory)) {
    const list = byId.get(id)
    if (list) list.push(project)
    else byId.set(id, [project])
  }
  const out: Record<string, string> = {}
  for (const [id, projects] of byId) out[reverseKey(id)] = JSON.stringify(projects.sort())
  return out
}

/** A reverse entry's metadata, when it fits KV's: then a listing needs no read of it. */
const reverseMetadata = (value: string): { projects: string[] } | undefined =>
  Buffer.byteLength(`{"projects":${value}}`) <= METADATA_MAX_BYTES
    ? { projects: JSON.parse(value) as string[] }
    : undefined

function putReverse(target: KvTarget, id: string, projects: readonly string[]): void {
  if (projects.length === 0) {
    wrangler(['kv', 'key', 'delete', ...kvArgs(BINDING, target), reverseKey(id)])
    return
  }
  const value = JSON.stringify([...projects].sort())
  const metadata = reverseMetadata(value)
  wrangler([
    'kv',
    'key',
    'put',
    ...kvArgs(BINDING, target),
    ...(metadata ? ['--metadata', JSON.stringify(metadata)] : []),
    reverseKey(id),
    value,
  ])
}

/** The projects a reverse entry lists (none when absent or unreadable). */
function reverseOf(target: KvTarget, id: string): string[] {
  const value = getKv(BINDING, target, reverseKey(id))
  try {
    const parsed: unknown = value === undefined ? [] : JSON.parse(value)
    return Array.isArray(parsed) ? parsed.filter((p): p is string => typeof p === 'string') : []
  } catch {
    return []
  }
}

/** Takes `project` off the reverse entry of `id`, deleting the entry once it lists none. */
function dropReverse(target: KvTarget, id: string, project: string): void {
  putReverse(
    target,
    id,
    reverseOf(target, id).filter((p) => p !== project),
  )
}

/** Every problem of a set of entries; empty when all of them can be stored. */
export function entriesProblems(entries: Record<string, unknown>): string[] {
  return Object.entries(entries).flatMap(([project, id]) => entryProblem(project, id) ?? [])
}

/** Lists one project under its internal id, and updates the reverse entries of its old and new id. */
export function putProject(target: KvTarget, project: string, id: string): void {
  const problem = entryProblem(project, id)
  if (problem) throw new Error(problem)
  const before = getProject(target, project)
  wrangler([
    'kv',
    'key',
    'put',
    ...kvArgs(BINDING, target),
    '--metadata',
    JSON.stringify({ id }),
    project,
    id,
  ])
  const listed = reverseOf(target, id)
  if (!listed.includes(project)) putReverse(target, id, [...listed, project])
  if (before !== undefined && before !== id) dropReverse(target, before, project)
}

/** A project's internal id, or undefined when it is not listed. */
export const getProject = (target: KvTarget, project: string): string | undefined =>
  getKv(BINDING, target, project)

/** Removes a project from the directory, and from its id's reverse entry. */
export function deleteProject(target: KvTarget, project: string): void {
  const id = getProject(target, project)
  wrangler(['kv', 'key', 'delete', ...kvArgs(BINDING, target), project])
  if (id !== undefined) dropReverse(target, id, project)
}

const metadataId = (metadata: unknown): string | undefined => {
  const id = (metadata as { id?: unknown } | null | undefined)?.id
  return typeof id === 'string' ? id : undefined
}

/**
 * The whole directory, `{ "entity/project": "<internal id>" }` in key order (the format
 * {@link importProjects} takes): ids from the metadata, read in bulk only for entries
 * written without it (by hand or by other tools), 100 to a wrangler call.
 */
export function listProjects(target: KvTarget): Record<string, string> {
  return readDirectory(target).projects
}

const metadataProjects = (metadata: unknown): string | undefined => {
  const projects = (metadata as { projects?: unknown } | null | undefined)?.projects
  return Array.isArray(projects) ? JSON.stringify(projects) : undefined
}

/**
 * Both directions in one listing: the projects, and the reverse entries as stored (their values,
 * JSON lists), values read in bulk only for entries without metadata.
 */
function readDirectory(target: KvTarget): {
  projects: Record<string, string>
  reverse: Record<string, string>
} {
  const entries = listKv(BINDING, target)
  const known = (name: string, metadata: unknown) =>
    name.startsWith(REVERSE_PREFIX) ? metadataProjects(metadata) : metadataId(metadata)
  const unlabelled = entries
    .filter((e) => known(e.name, e.metadata) === undefined)
    .map((e) => e.name)
  const read = getKvMany(BINDING, target, unlabelled)
  const projects: Record<string, string> = {}
  const reverse: Record<string, string> = {}
  for (const { name, metadata } of entries) {
    const value = known(name, metadata) ?? read.get(name)
    if (value === undefined) continue
    if (name.startsWith(REVERSE_PREFIX)) reverse[name] = value
    else projects[name] = value
  }
  return { projects, reverse }
}

/** What an import changed. */
export type ImportSummary = { added: number; changed: number; unchanged: number; removed: number }

/**
 * Syncs the directory to `entries` with one bulk write (wrangler splits it into API batches):
 * new and changed projects are written, unchanged ones skipped; with `prune`, listed projects
 * absent from `entries` are deleted (one bulk delete). Every entry is checked first: one bad
 * entry and nothing is written.
 */
export function importProjects(
  target: KvTarget,
  entries: Record<string, string>,
  options: { prune: boolean },
): ImportSummary {
  const problems = entriesProblems(entries)
  if (problems.length > 0) throw new Error(`nothing imported:\n  ${problems.join('\n  ')}`)
  const { projects: current, reverse: currentReverse } = readDirectory(target)
  const writes = Object.entries(entries).filter(([project, id]) => current[project] !== id)
  const stale = options.prune ? Object.keys(current).filter((p) => !Object.hasOwn(entries, p)) : []
  // The reverse entries the directory must end with, written and removed in the same bulk calls.
  const final = options.prune ? entries : { ...current, ...entries }
  const reverse = reverseEntries(final)
  const reverseWrites = Object.entries(reverse).filter(
    ([key, value]) => currentReverse[key] !== value,
  )
  const reverseStale = Object.keys(currentReverse).filter((key) => !Object.hasOwn(reverse, key))
  const dir = mkdtempSync(join(tmpdir(), 'projects-import-'))
  try {
    if (writes.length > 0 || reverseWrites.length > 0) {
      const file = join(dir, 'put.json')
      writeFileSync(
        file,
        JSON.stringify([
          ...writes.map(([key, value]) => ({ key, value, metadata: { id: value } })),
          ...reverseWrites.map(([key, value]) => {
            const metadata = reverseMetadata(value)
            return metadata ? { key, value, metadata } : { key, value }
          }),
        ]),
      )
      wrangler(['kv', 'bulk', 'put', file, ...kvArgs(BINDING, target)])
    }
    if (stale.length > 0 || reverseStale.length > 0) {
      const file = join(dir, 'delete.json')
      writeFileSync(file, JSON.stringify([...stale, ...reverseStale]))
      wrangler(['kv', 'bulk', 'delete', file, '--force', ...kvArgs(BINDING, target)])
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const added = writes.filter(([project]) => current[project] === undefined).length
  return {
    added,
    changed: writes.length - added,
    unchanged: Object.keys(entries).length - writes.length,
    removed: stale.length,
  }
}
