import { grantsProject } from '../auth/keys.ts'
import { ApiError, InvalidExternalRef, RequestValidationError } from '../errors.ts'
import type { PydanticError } from '../fastapi/validation.ts'
import type { IdMapping } from '../kafka/jobs.ts'
import type { RequestLog } from '../middleware/request-context.ts'
import { type CallsScoreRequest, INTERNAL_CLIENT_REF } from '../schemas/calls-score.ts'
import type { ProjectDirectory } from './directory.ts'

/** The external ref scheme clients send, and the server-internal one the consumer reads. */
export const EXTERNAL_PREFIX = 'weave:///'
export const INTERNAL_PREFIX = 'weave-trace-internal:///'

/**
 * `weave:///<entity>/<project>/<tail>` split as Weave's `universal_ext_to_int_ref_converter`
 * splits it (`rest.split("/", 2)`): the project is `entity/project` (either part may be empty),
 * the tail everything after the second slash, unchanged. Undefined where Weave raises
 * "Invalid URI" (fewer than two slashes after the scheme).
 */
export function splitExternalRef(ref: string): { project: string; tail: string } | undefined {
  const first = ref.indexOf('/', EXTERNAL_PREFIX.length)
  const second = first === -1 ? -1 : ref.indexOf('/', first + 1)
  if (second === -1) return undefined
  return { project: ref.slice(EXTERNAL_PREFIX.length, second), tail: ref.slice(second + 1) }
}

const BAD_CALL_REF = 'a call id starting with weave:/// must be a ref weave:///<entity>/<project>/…'
const EMBEDDED_REF =
  'a call id may be a weave:/// ref as a whole, but may not hold a weave:/// or weave-trace-internal:/// ref'

const callIdError = (index: number, id: string, message: string): PydanticError => ({
  type: 'value_error',
  loc: ['body', 'call_ids', index],
  msg: `Value error, ${message}`,
  input: id,
  ctx: { error: {} },
})

/**
 * Weave's converter rewrites every string of the request that starts with `weave:///`, call ids
 * included. A call id in that form is converted too, so its project must be granted and listed
 * like a scorer ref's. Refused (422), where Weave would raise or re-serialise: a call id whose
 * ref has no `entity/project/` part (Weave: "Invalid URI"), and one that is no `weave:///` ref
 * itself but holds an external or internal ref (newer Weave rewrites refs embedded in JSON text
 * and checks internal refs against project access; the edge can do neither, and real call ids
 * are UUIDs).
 */
function callIdProjects(callIds: readonly string[]): string[] {
  const projects: string[] = []
  const errors: PydanticError[] = []
  for (let i = 0; i < callIds.length; i++) {
    const id = callIds[i] as string
    // One cheap test per id; the two scheme checks only for the rare id that passes it.
    if (!id.includes(':///')) continue
    if (id.startsWith(EXTERNAL_PREFIX)) {
      const parts = splitExternalRef(id)
      if (parts === undefined) errors.push(callIdError(i, id, BAD_CALL_REF))
      else projects.push(parts.project)
    } else if (id.includes(EXTERNAL_PREFIX) || id.includes(INTERNAL_PREFIX)) {
      errors.push(callIdError(i, id, EMBEDDED_REF))
    }
  }
  if (errors.length > 0) throw new RequestValidationError(errors)
  return projects
}

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
  const fromCallIds = callIdProjects(req.call_ids)
  // Refs' projects were authorized with the request's; call-id refs are checked here, before
  // any lookup, so the directory never tells a caller about a project it may not use.
  for (const project of fromCallIds) {
    if (!grantsProject(context.grants, project)) {
      throw new ApiError('forbidden', `Not authorized for project ${project}`)
    }
  }
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
