import type * as z from 'zod'
import {
  CALLS_SCORE_FIELDS,
  type CallsScoreRequest,
  CLIENT_REF,
  INTERNAL_CLIENT_REF,
} from '../schemas/calls-score.ts'
import {
  EXTERNAL_PREFIX,
  extraProblem,
  INTERNAL_PREFIX,
  projectProblem,
  splitExternalRef,
} from '../schemas/weave-ref.ts'
import type { PyObject, PyValue } from './pyjson.ts'

/** One entry of FastAPI's `{"detail": [...]}`, keys in pydantic's order. */
export type PydanticError = {
  type: string
  loc: (string | number)[]
  msg: string
  input: unknown
  ctx?: Record<string, unknown>
}

/** pydantic's `missing`; for a missing field its input is the whole body object. */
export const missingError = (loc: (string | number)[], input: unknown): PydanticError => ({
  type: 'missing',
  loc,
  msg: 'Field required',
  input,
})

/** What FastAPI answers for a body it did not parse as JSON, or a JSON value that is no object. */
export const notAnObjectError = (input: unknown): PydanticError => ({
  type: 'model_attributes_type',
  loc: ['body'],
  msg: 'Input should be a valid dictionary or object to extract fields from',
  input,
})

const isObject = (v: PyValue): v is PyObject => v instanceof Map

const fieldRank = new Map<string | number, number>(CALLS_SCORE_FIELDS.map((f, i) => [f, i]))

/**
 * Turns zod's issues for `CallsScoreReq` into exactly the errors pydantic v2 (Python/lax mode)
 * reports, in pydantic's order: model fields in definition order, list items by index, then one
 * `extra_forbidden` per unknown key in body order. Inputs come from `root`, the body as Python's
 * json module parsed it, so numbers, key order and duplicate keys echo as FastAPI echoes them.
 */
export function pydanticErrors(
  issues: readonly z.core.$ZodIssue[],
  root: PyValue,
): PydanticError[] {
  if (!isObject(root))
    return [root === null ? missingError(['body'], null) : notAnObjectError(root)]
  const keyOrder = new Map<string, number>()
  for (const key of root.keys()) keyOrder.set(key, keyOrder.size)
  const ranked: { rank: number; index: number; error: PydanticError }[] = []
  const add = (rank: number, index: number, error: PydanticError) =>
    ranked.push({ rank, index, error })

  for (const issue of issues) {
    const [field, index] = issue.path
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        add(CALLS_SCORE_FIELDS.length + (keyOrder.get(key) ?? 0), 0, {
          type: 'extra_forbidden',
          loc: ['body', key],
          msg: 'Extra inputs are not permitted',
          input: root.get(key) ?? null,
        })
      }
      continue
    }
    if (typeof field !== 'string') continue
    const rank = fieldRank.get(field) ?? CALLS_SCORE_FIELDS.length
    const value = root.get(field)
    if (value === undefined) {
      add(rank, -1, missingError(['body', field], root))
    } else if (typeof index === 'number' && Array.isArray(value)) {
      add(rank, index, stringTypeError(['body', field, index], value[index] ?? null))
    } else if (issue.code === 'invalid_type' && issue.expected === 'array') {
      add(rank, -1, {
        type: 'list_type',
        loc: ['body', field],
        msg: 'Input should be a valid list',
        input: value,
      })
    } else {
      add(rank, -1, stringTypeError(['body', field], value))
    }
  }
  ranked.sort((a, b) => a.rank - b.rank || a.index - b.index)
  return ranked.map((r) => r.error)
}

const stringTypeError = (loc: (string | number)[], input: unknown): PydanticError => ({
  type: 'string_type',
  loc,
  msg: 'Input should be a valid string',
  input,
})

/** pydantic's `value_error` as FastAPI renders it: the exception in ctx encodes to `{}`. */
const valueError = (loc: (string | number)[], message: string, input: unknown): PydanticError => ({
  type: 'value_error',
  loc,
  msg: `Value error, ${message}`,
  input,
  ctx: { error: {} },
})

const tooLong = (field: string, list: readonly string[], max: number): PydanticError => ({
  type: 'too_long',
  loc: ['body', field],
  msg: `List should have at most ${max} item${max === 1 ? '' : 's'} after validation, not ${list.length}`,
  input: list,
  ctx: { field_type: 'List', max_length: max, actual_length: list.length },
})

const LONE_SURROGATE = 'string contains a lone surrogate and cannot be encoded as UTF-8'
const BAD_REF =
  'scorer ref must be a client ref weave:///<entity>/<project>/(object|op)/<name>:<digest>'

const INTERNAL_REF_IN_EXTERNAL_FORM =
  'scorer ref weave-trace-internal:/// is accepted only where the worker writes internal ids (KAFKA_ID_FORM=internal); this deployment writes the external ids clients send, so send weave:///<entity>/<project>/(object|op)/<name>:<digest>'
const BAD_INTERNAL_REF =
  'scorer ref must be a client ref weave:///<entity>/<project>/(object|op)/<name>:<digest> or weave-trace-internal:///<internal project id>/(object|op)/<name>:<digest>'

const BAD_CALL_REF = 'a call id starting with weave:/// must be a ref weave:///<entity>/<project>/…'
const EMBEDDED_REF =
  'a call id may be a weave:/// ref as a whole, but may not hold a weave:/// or weave-trace-internal:/// ref'
const badExtra = (problem: string) =>
  `a ref's path after <name>:<digest> ${problem}, as Weave's ref parser requires`

/** Why a scorer ref is refused, or undefined when it passes the edge's check. */
function scorerRefProblem(ref: string, internalForm: boolean): string | undefined {
  const client = CLIENT_REF.exec(ref)
  if (client !== null) {
    const project = projectProblem(`${client[1]}/${client[2]}`)
    if (project !== undefined) return `scorer ref's ${project}`
    // weave:///<entity>/<project>/<kind>/<name>:<digest>/<extra…>
    const extra = extraProblem(ref.split('/').slice(7))
    return extra === undefined ? undefined : badExtra(extra)
  }
  if (!ref.startsWith(INTERNAL_PREFIX)) return internalForm ? BAD_INTERNAL_REF : BAD_REF
  if (!internalForm) return INTERNAL_REF_IN_EXTERNAL_FORM
  if (!INTERNAL_CLIENT_REF.test(ref)) return BAD_INTERNAL_REF
  // weave-trace-internal:///<id>/<kind>/<name>:<digest>/<extra…>
  const extra = extraProblem(ref.split('/').slice(6))
  return extra === undefined ? undefined : badExtra(extra)
}

/**
 * Why a call id is refused, or undefined. Weave's converter rewrites every string of the request
 * that starts with `weave:///`, call ids included, so such a call id names a project, which must
 * be a W&B project name and is then authorized like the request's own, in both id forms. Refused
 * where Weave would raise or re-serialise: no `entity/project/` part (Weave: "Invalid URI"), and
 * an id that is no `weave:///` ref itself but holds an external or internal ref (newer Weave
 * rewrites refs embedded in JSON text and checks internal refs against project access; the edge
 * can do neither, and real call ids are UUIDs).
 */
function callIdProblem(id: string): string | undefined {
  // One cheap test per id; the scheme checks only for the rare id that passes it.
  if (!id.includes(':///')) return undefined
  if (id.startsWith(EXTERNAL_PREFIX)) {
    const parts = splitExternalRef(id)
    if (parts === undefined) return BAD_CALL_REF
    const project = projectProblem(parts.project)
    return project === undefined ? undefined : `call id ref's ${project}`
  }
  return id.includes(EXTERNAL_PREFIX) || id.includes(INTERNAL_PREFIX) ? EMBEDDED_REF : undefined
}

/**
 * The edge's own checks on a body FastAPI would accept, in the same 422 shape: list limits
 * (pydantic's `too_long`), W&B project names (the request's, its refs' and its call-id refs'),
 * client-form scorer refs with the paths Weave's ref parser accepts (in the internal id form,
 * internal refs of that shape too: their projects are checked later), call ids Weave would not
 * convert, and strings that cannot reach Kafka as UTF-8. The same in both id forms.
 */
export function edgeErrors(
  req: CallsScoreRequest,
  limits: { maxCallIds: number; maxScorerRefs: number; ids?: { form: string } },
  bodyWellFormed = false,
): PydanticError[] {
  const internalForm = limits.ids?.form === 'internal'
  const errors: PydanticError[] = []
  // A body known to hold no lone surrogate spares testing each of up to 10,000 strings.
  const wellFormed = (s: string) => bodyWellFormed || s.isWellFormed()
  const project = projectProblem(req.project_id)
  if (!wellFormed(req.project_id)) {
    errors.push(valueError(['body', 'project_id'], LONE_SURROGATE, req.project_id))
  } else if (project !== undefined) {
    errors.push(valueError(['body', 'project_id'], `project_id's ${project}`, req.project_id))
  }
  if (req.call_ids.length > limits.maxCallIds) {
    errors.push(tooLong('call_ids', req.call_ids, limits.maxCallIds))
  } else {
    req.call_ids.forEach((id, i) => {
      if (!wellFormed(id)) errors.push(valueError(['body', 'call_ids', i], LONE_SURROGATE, id))
      else {
        const problem = callIdProblem(id)
        if (problem !== undefined) errors.push(valueError(['body', 'call_ids', i], problem, id))
      }
    })
  }
  if (req.scorer_refs.length > limits.maxScorerRefs) {
    errors.push(tooLong('scorer_refs', req.scorer_refs, limits.maxScorerRefs))
  } else {
    req.scorer_refs.forEach((ref, i) => {
      const problem = scorerRefProblem(ref, internalForm)
      if (problem !== undefined) errors.push(valueError(['body', 'scorer_refs', i], problem, ref))
      else if (!wellFormed(ref)) {
        errors.push(valueError(['body', 'scorer_refs', i], LONE_SURROGATE, ref))
      }
    })
  }
  return errors
}
