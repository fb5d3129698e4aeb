/**
 * The project directory of the internal id form (docs/internal-ids.md) in the `PROJECT_IDS` KV
 * namespace, through wrangler (scripts/lib/kv.ts): key the external `entity/project` exactly as
 * clients send it, value the internal project id as plain text. The id is also written as KV
 * metadata, so a listing of thousands of projects needs no read per project. Shared by
 * `npm run projects` and `npm run dev`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
  return undefined
}

/** Every problem of a set of entries; empty when all of them can be stored. */
export function entriesProblems(entries: Record<string, unknown>): string[] {
  return Object.entries(entries).flatMap(([project, id]) => entryProblem(project, id) ?? [])
}

/** Lists one project under its internal id. */
export function putProject(target: KvTarget, project: string, id: string): void {
  const problem = entryProblem(project, id)
  if (problem) throw new Error(problem)
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
}

/** A project's internal id, or undefined when it is not listed. */
export const getProject = (target: KvTarget, project: string): string | undefined =>
  getKv(BINDING, target, project)

/** Removes a project from the directory. */
export function deleteProject(target: KvTarget, project: string): void {
  wrangler(['kv', 'key', 'delete', ...kvArgs(BINDING, target), project])
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
  const entries = listKv(BINDING, target)
  const unlabelled = entries.filter((e) => metadataId(e.metadata) === undefined).map((e) => e.name)
  const read = getKvMany(BINDING, target, unlabelled)
  const out: Record<string, string> = {}
  for (const { name, metadata } of entries) {
    const id = metadataId(metadata) ?? read.get(name)
    if (id !== undefined) out[name] = id
  }
  return out
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
  const current = listProjects(target)
  const writes = Object.entries(entries).filter(([project, id]) => current[project] !== id)
  const stale = options.prune ? Object.keys(current).filter((p) => !Object.hasOwn(entries, p)) : []
  const dir = mkdtempSync(join(tmpdir(), 'projects-import-'))
  try {
    if (writes.length > 0) {
      const file = join(dir, 'put.json')
      writeFileSync(
        file,
        JSON.stringify(writes.map(([key, value]) => ({ key, value, metadata: { id: value } }))),
      )
      wrangler(['kv', 'bulk', 'put', file, ...kvArgs(BINDING, target)])
    }
    if (stale.length > 0) {
      const file = join(dir, 'delete.json')
      writeFileSync(file, JSON.stringify(stale))
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
