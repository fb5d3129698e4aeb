import * as z from 'zod'

/**
 * Weave's `CallsScoreReq`, field for field and in field order (the order decides both the order of
 * validation errors and the bytes of every Kafka message). `strictObject` is pydantic's
 * `extra="forbid"`. Titles and descriptions are the pydantic model's, so the generated OpenAPI
 * document matches the Python server's.
 */
export const CallsScoreReq = z
  .strictObject({
    project_id: z.string().meta({ title: 'Project Id' }),
    call_ids: z
      .array(z.string())
      .meta({ title: 'Call Ids', description: 'List of call IDs to score' }),
    scorer_refs: z
      .array(z.string())
      .meta({ title: 'Scorer Refs', description: 'List of scorer refs to apply' }),
    wb_user_id: z.string().nullable().optional().meta({
      title: 'Wb User Id',
      description: 'Do not set directly. Server will automatically populate this field.',
    }),
  })
  .meta({
    id: 'CallsScoreReq',
    title: 'CallsScoreReq',
    description:
      'Request to enqueue scoring jobs for a list of calls.\n\nScoring is performed asynchronously by the call_scoring_worker, which\nconsumes messages from Kafka and applies each scorer_ref to each call_id.',
  })

/** A validated `POST /calls/score` body. */
export type CallsScoreRequest = z.infer<typeof CallsScoreReq>

/** The model's fields in definition order: pydantic reports errors in this order. */
export const CALLS_SCORE_FIELDS = ['project_id', 'call_ids', 'scorer_refs', 'wb_user_id'] as const

const isStringArray = (value: unknown): value is string[] => {
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') return false
  return true
}

/**
 * True only for a value `CallsScoreReq` accepts as it is (its output would be an equal copy): an
 * object with no keys but the model's, string `project_id`, lists of strings, and a string, null
 * or absent `wb_user_id`. The hot path takes such a body as validated without zod: zod copies
 * every list into a new holey array, which costs more to allocate than the check itself and makes
 * every later `JSON.stringify` of its slices take V8's slow path. Anything else, every invalid
 * body included, goes to zod, which stays the judge of what is valid and the source of the errors.
 */
export function isPlainCallsScoreRequest(value: unknown): value is CallsScoreRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  if (Object.getPrototypeOf(value) !== Object.prototype) return false
  const body = value as Record<string, unknown>
  for (const key in body) {
    if (!Object.hasOwn(body, key) || !(CALLS_SCORE_FIELDS as readonly string[]).includes(key)) {
      return false
    }
  }
  const user = body.wb_user_id
  return (
    typeof body.project_id === 'string' &&
    isStringArray(body.call_ids) &&
    isStringArray(body.scorer_refs) &&
    (user === undefined || user === null || typeof user === 'string')
  )
}

/** Weave's `CallsScoreRes`: always the empty object (no `extra="forbid"` on the pydantic model). */
export const CallsScoreRes = z.object({}).meta({
  id: 'CallsScoreRes',
  title: 'CallsScoreRes',
  description:
    'Empty response for calls_score.\n\nDefined as a model (rather than returning None) to follow the convention\nused throughout this interface and to allow fields to be added later\nwithout a breaking change.',
})

/**
 * A client scorer ref: `weave:///<entity>/<project>/(object|op)/<name>:<digest>` with optional
 * further path segments (whose pairs src/schemas/weave-ref.ts checks). One colon, as Weave's
 * parser splits `<name>:<digest>` into exactly two. Captures entity and project for
 * authorization.
 */
export const CLIENT_REF = /^weave:\/\/\/([^/]+)\/([^/]+)\/(?:object|op)\/[^/:]+:[^/:]+(?:\/[^/]+)*$/

/**
 * A scorer ref already in Weave's internal form, `weave-trace-internal:///<internal project id>/
 * (object|op)/<name>:<digest>[/…]`: accepted in the internal id form when the project is the
 * request's own or one the key grants (docs/internal-ids.md). Captures the internal project id.
 */
export const INTERNAL_CLIENT_REF =
  /^weave-trace-internal:\/\/\/([^/]+)\/(?:object|op)\/[^/:]+:[^/:]+(?:\/[^/]+)*$/
