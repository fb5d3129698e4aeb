import type { Hono, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { AppDeps } from '../app.ts'
import { apiKeyAuth } from '../auth/basic-auth.ts'
import { grantsProject } from '../auth/keys.ts'
import { requireConfig } from '../config.ts'
import { deliverJobs } from '../delivery/deliver.ts'
import type { AppEnv } from '../env.ts'
import { ApiError, jsonResponse, methodNotAllowed, RequestValidationError } from '../errors.ts'
import { fastapiJsonBody } from '../fastapi/body.ts'
import { edgeErrors } from '../fastapi/validation.ts'
import { buildScoreJobs } from '../kafka/jobs.ts'
import { perSetting } from '../lib/per-setting.ts'
import { validateJson } from '../lib/validator.ts'
import { rateLimitPerKey } from '../middleware/rate-limit.ts'
import { REQUEST_ID_HEADER } from '../middleware/request-context.ts'
import { kvDirectory } from '../projects/directory.ts'
import { resolveInternalIds } from '../projects/internal-ids.ts'
import { CallsScoreReq, CLIENT_REF, isPlainCallsScoreRequest } from '../schemas/calls-score.ts'
import { callIdRefProjects } from '../schemas/weave-ref.ts'

const tooLarge = (maxSize: number) =>
  new ApiError('payload_too_large', `Request body too large: the limit is ${maxSize} bytes`)

const bodyLimitOf = perSetting(
  (maxSize: number): MiddlewareHandler<AppEnv> =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw tooLarge(maxSize)
      },
    }),
)

/**
 * `MAX_BODY_BYTES`: a 413 with our detail above it. A declared length (every real client sends
 * one) is compared here the way Hono's bodyLimit compares it, without reading `request.body`:
 * touching it makes workerd build a JavaScript stream for the body, and the body is then read
 * through it (measured: 6% of a small request's CPU). A body without a declared length is counted
 * by Hono's bodyLimit as it streams.
 */
const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  const { maxBodyBytes } = c.get('config')
  const declared = c.req.header('content-length')
  if (declared === undefined || c.req.header('transfer-encoding') !== undefined) {
    return bodyLimitOf(maxBodyBytes)(c, next)
  }
  if (Number.parseInt(declared, 10) > maxBodyBytes) throw tooLarge(maxBodyBytes)
  return next()
}

/**
 * `POST /calls/score`: authenticate, read and validate the body like FastAPI, apply the edge's
 * checks, authorize every project involved, then answer `{}` only once every job is durably held:
 * acknowledged by Kafka, or accepted by the queue (`deliverJobs`). Other methods get FastAPI's 405.
 */
export function registerCallsScore(app: Hono<AppEnv>, deps: AppDeps): void {
  app.post(
    '/calls/score',
    requireConfig,
    apiKeyAuth,
    rateLimitPerKey,
    limitBody,
    fastapiJsonBody,
    validateJson(CallsScoreReq, isPlainCallsScoreRequest),
    async (c) => {
      const req = c.req.valid('json')
      const config = c.get('config')
      const accepted = () => jsonResponse(200, {}, { [REQUEST_ID_HEADER]: c.get('requestId') })
      const log = c.get('log')
      Object.assign(log, {
        project_id: req.project_id,
        call_ids: req.call_ids.length,
        scorer_refs: req.scorer_refs.length,
      })

      const invalid = edgeErrors(req, config, c.get('body').wellFormed)
      if (invalid.length > 0) throw new RequestValidationError(invalid)

      const grants = c.get('principal').projects
      const projects = new Set([req.project_id])
      for (const ref of req.scorer_refs) {
        // Internal refs (internal id form only) name no external project: the directory
        // resolves and checks theirs (resolveInternalIds).
        const [, entity, project] = CLIENT_REF.exec(ref) ?? []
        if (entity !== undefined) projects.add(`${entity}/${project}`)
      }
      // Weave converts a weave:/// call id like a ref, access check included: both id forms.
      for (const project of callIdRefProjects(req.call_ids)) projects.add(project)
      for (const project of projects) {
        if (!grantsProject(grants, project)) {
          throw new ApiError('forbidden', `Not authorized for project ${project}`)
        }
      }

      // Internal form (docs/internal-ids.md): every id resolved, or nothing is built.
      const ids =
        config.ids.form === 'internal'
          ? await resolveInternalIds(req, {
              directory: kvDirectory(c.env.PROJECT_IDS, config.ids),
              grants,
              retryAfterSeconds: config.retryAfterSeconds,
              log,
            })
          : undefined
      const messages = buildScoreJobs(req, c.get('principal').wb_user_id, {
        topic: config.topic,
        projectBuckets: config.projectBuckets,
        jobId: crypto.randomUUID(),
        ids,
      })
      log.messages = messages.length
      if (messages.length === 0) return accepted()

      await deliverJobs(messages, {
        config,
        producer: deps.producerFor(config),
        queue: c.env.SCORE_QUEUE,
        log,
      })
      return accepted()
    },
  )
  app.all('/calls/score', methodNotAllowed('POST'))
}
