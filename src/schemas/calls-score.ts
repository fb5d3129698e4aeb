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

/** Weave's `CallsScoreRes`: always the empty object (no `extra="forbid"` on the pydantic model). */
export const CallsScoreRes = z.object({}).meta({
  id: 'CallsScoreRes',
  title: 'CallsScoreRes',
  description:
    'Empty response for calls_score.\n\nDefined as a model (rather than returning None) to follow the convention\nused throughout this interface and to allow fields to be added later\nwithout a breaking change.',
})

/**
 * A client scorer ref: `weave:///<entity>/<project>/(object|op)/<name>:<digest>` with optional
 * further path segments. Captures entity and project for authorization.
 */
export const CLIENT_REF = /^weave:\/\/\/([^/]+)\/([^/]+)\/(?:object|op)\/[^/:]+:[^/]+(?:\/[^/]+)*$/
