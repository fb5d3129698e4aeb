import type { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { AppDeps } from '../app.ts'
import { apiKeyAuth } from '../auth/basic-auth.ts'
import { grantsProject } from '../auth/keys.ts'
import { requireConfig } from '../config.ts'
import type { AppEnv } from '../env.ts'
import { ApiError, jsonResponse, RequestValidationError } from '../errors.ts'
import { fastapiJsonBody } from '../fastapi/body.ts'
import { edgeErrors } from '../fastapi/validation.ts'
import { buildScoreJobs } from '../kafka/jobs.ts'
import { produceWithPolicy } from '../kafka/producer.ts'
import { validateJson } from '../lib/validator.ts'
import { CallsScoreReq, CLIENT_REF } from '../schemas/calls-score.ts'

/**
 * `POST /calls/score`: authenticate, read and validate the body like FastAPI, apply the edge's
 * checks, authorize every project involved, then answer `{}` only once Kafka acknowledged every
 * job. Other methods get FastAPI's 405.
 */
export function registerCallsScore(app: Hono<AppEnv>, deps: AppDeps): void {
  app.post(
    '/calls/score',
    requireConfig,
    apiKeyAuth,
    (c, next) =>
      bodyLimit({
        maxSize: c.get('config').maxBodyBytes,
        onError: (ctx) => {
          throw new ApiError(
            'payload_too_large',
            `Request body too large: the limit is ${ctx.get('config').maxBodyBytes} bytes`,
          )
        },
      })(c, next),
    fastapiJsonBody,
    validateJson(CallsScoreReq),
    async (c) => {
      const req = c.req.valid('json')
      const config = c.get('config')
      const log = c.get('log')
      Object.assign(log, {
        project_id: req.project_id,
        call_ids: req.call_ids.length,
        scorer_refs: req.scorer_refs.length,
      })

      const invalid = edgeErrors(req, config)
      if (invalid.length > 0) throw new RequestValidationError(invalid)

      const grants = c.get('principal').projects
      const projects = new Set([req.project_id])
      for (const ref of req.scorer_refs) {
        const [, entity, project] = CLIENT_REF.exec(ref) ?? []
        projects.add(`${entity}/${project}`)
      }
      for (const project of projects) {
        if (!grantsProject(grants, project)) {
          throw new ApiError('forbidden', `Not authorized for project ${project}`)
        }
      }

      const messages = buildScoreJobs(req, c.get('principal').wb_user_id, {
        topic: config.topic,
        projectBuckets: config.projectBuckets,
      })
      log.messages = messages.length
      if (messages.length === 0) return jsonResponse(200, {})

      const { result, attempts } = await produceWithPolicy(deps.producerFor(config), messages, {
        timeoutMs: config.produceTimeoutMs,
        retries: config.produceRetries,
        backoffMs: 100,
      })
      log.kafka_attempts = attempts
      if (!result.ok) {
        throw new ApiError(
          'kafka_unavailable',
          'Kafka is unavailable: the scoring jobs were not accepted. Retry later.',
          { 'Retry-After': String(config.retryAfterSeconds) },
          {
            level: result.reason === 'unauthorized' ? 'alarm' : 'error',
            kafka_reason: result.reason,
            kafka_status: result.status,
            kafka_detail: result.detail,
            kafka_acknowledged: result.acknowledged.filter(Boolean).length,
          },
        )
      }
      return jsonResponse(200, {})
    },
  )
  app.all('/calls/score', () =>
    jsonResponse(405, { detail: 'Method Not Allowed' }, { Allow: 'POST' }),
  )
}
