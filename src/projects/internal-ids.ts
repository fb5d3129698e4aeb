import { grantsProject } from '../auth/keys.ts'
import { ApiError, InvalidExternalRef } from '../errors.ts'
import type { IdMapping } from '../kafka/jobs.ts'
import type { RequestLog } from '../middleware/request-context.ts'
import { type CallsScoreRequest, INTERNAL_CLIENT_REF } from '../schemas/calls-score.ts'
import {
  callIdRefProjects,
  EXTERNAL_PREFIX,
  INTERNAL_PREFIX,
  splitExternalRef,
} from '../schemas/weave-ref.ts'
import type { ProjectDirectory } from './directory.ts'

/**
 * Internal form, after authentication and authorization and before anything is built: resolves
 * the request's project, every scorer ref's and every call-id ref's through the directory, and
 * returns the conversion Weave's `ExternalTraceServer` applies before its producer runs. Either
 * every id resolves or the request fails whole (404 for a project the directory does not list,
 * 503 with Retry-After when it does not answer in time), so no half-converted job exists.
 * Scorer refs are client refs here (the edge's validation refused every other form), external
 * or internal. An internal one passes unchanged, as Weave's converter passes it, when its project
 * is the request's own or listed (reverse entry) under an external project the key grants;
 * otherwise the request is Weave's `InvalidExternalRef` (400), nothing built.
 */
export async function resolveInternalIds(
  req: Pick<CallsScoreRequest, 'project_id' | 'call_ids' | 'scorer_refs'>,
  context: {
    directory: ProjectDirectory
    grants: readonly string[]
    retryAfterSeconds: number
    log: RequestLog
  },
): Promise<IdMapping> {
  // Every project here was authorized with the request's (call-id refs' too), before any
  // lookup, so the directory never tells a caller about a project it may not use.
  const fromCallIds = callIdRefProjects(req.call_ids)
  const projects = [req.project_id]
  const internalRefs: { ref: string; id: string }[] = []
  for (const ref of req.scorer_refs) {
    if (ref.startsWith(EXTERNAL_PREFIX)) projects.push(splitExternalRef(ref)?.project ?? '')
    else internalRefs.push({ ref, id: INTERNAL_CLIENT_REF.exec(ref)?.[1] ?? '' })
  }
  projects.push(...fromCallIds)

  // Both directions at once: one round of KV reads (own-project refs need no reverse entry,
  // but which those are is known only once the request's project is resolved).
  const [answer, reverse] = await Promise.all([
    context.directory.resolve(projects),
    internalRefs.length > 0
      ? context.directory.projectsOf([...new Set(internalRefs.map((r) => r.id))])
      : undefined,
  ])
  const failed = !answer.ok ? answer : reverse?.ok === false ? reverse : undefined
  if (failed) {
    throw new ApiError(
      'directory_unavailable',
      'The project directory is unavailable: the scoring jobs were not accepted. Retry later.',
      { 'Retry-After': String(context.retryAfterSeconds) },
      { level: 'error', directory_reason: failed.reason, directory_detail: failed.detail },
    )
  }
  if (!answer.ok) throw new Error('unreachable')
  context.log.directory_lookups = answer.lookups + (reverse?.ok ? reverse.lookups : 0)
  for (const project of projects) {
    if (answer.ids.get(project) == null) {
      throw new ApiError('project_not_found', `Project not found: ${project}`)
    }
  }
  const ids = answer.ids as ReadonlyMap<string, string>
  const own = ids.get(req.project_id) as string
  for (const { id } of internalRefs) {
    if (id === own) continue
    const listed = reverse?.ok ? (reverse.projects.get(id) ?? []) : []
    if (!listed.some((project) => grantsProject(context.grants, project))) {
      context.log.invalid_ref_project = id.length > 64 ? `${id.slice(0, 64)}…` : id
      throw new InvalidExternalRef('Encountered unexpected internal ref format.')
    }
  }
  const convert = (ref: string): string => {
    if (!ref.startsWith(EXTERNAL_PREFIX)) return ref
    const parts = splitExternalRef(ref) as { project: string; tail: string }
    return `${INTERNAL_PREFIX}${ids.get(parts.project)}/${parts.tail}`
  }
  return {
    projectId: own,
    scorerRef: convert,
    callId: fromCallIds.length > 0 ? convert : undefined,
  }
}
