import * as z from 'zod'
import type { Config } from '../config.ts'
import { CallsScoreReq, CallsScoreRes } from '../schemas/calls-score.ts'
import {
  HealthSchema,
  HTTPErrorSchema,
  HTTPValidationErrorSchema,
  ValidationErrorSchema,
} from './schemas.ts'

/** The deployment's limits, as far as the document states them. */
export type DocumentedLimits = Pick<Config, 'maxCallIds' | 'maxScorerRefs' | 'maxBodyBytes'>

/** A JSON value, for walking zod's JSON Schema output. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` })

/**
 * Rewrites zod's JSON Schema into pydantic's spelling of the same constraints, so that the
 * document equals the Python server's: `type: [a, b]` becomes `anyOf: [{type: a}, {type: b}]`,
 * and the ±2^53−1 bounds zod puts on every integer (a JavaScript artefact; Python's int is
 * unbounded) are dropped.
 */
function pydanticSpelling(node: Json): Json {
  if (Array.isArray(node)) return node.map(pydanticSpelling)
  if (node === null || typeof node !== 'object') return node
  const out: { [key: string]: Json } = {}
  for (const [key, value] of Object.entries(node)) {
    if (key === 'type' && Array.isArray(value)) out.anyOf = value.map((type) => ({ type }))
    else out[key] = pydanticSpelling(value)
  }
  if (
    out.type === 'integer' &&
    out.minimum === Number.MIN_SAFE_INTEGER &&
    out.maximum === Number.MAX_SAFE_INTEGER
  ) {
    delete out.minimum
    delete out.maximum
  }
  return out
}

let componentSchemas: Record<string, Json> | undefined

/**
 * `components.schemas`, converted from the very zod schemas that validate requests (once per
 * isolate: the schemas are static). Titles and descriptions come from their `.meta()`.
 */
function schemas(): Record<string, Json> {
  if (componentSchemas) return componentSchemas
  const registry = z.registry<{ id: string }>()
  registry.add(CallsScoreReq, { id: 'CallsScoreReq' })
  registry.add(CallsScoreRes, { id: 'CallsScoreRes' })
  registry.add(HTTPValidationErrorSchema, { id: 'HTTPValidationError' })
  registry.add(ValidationErrorSchema, { id: 'ValidationError' })
  registry.add(HTTPErrorSchema, { id: 'HTTPError' })
  registry.add(HealthSchema, { id: 'Health' })
  // Requests are what a client sends, so the input side is described; for the responses both
  // sides are the same (no transforms), and the input side is what pydantic emits for them.
  const converted = z.toJSONSchema(registry, {
    io: 'input',
    uri: (id) => ref(id).$ref,
  }).schemas
  const result: Record<string, Json> = {}
  for (const [id, schema] of Object.entries(converted)) {
    // Component schemas are not standalone documents: no dialect, no id of their own.
    const { $schema: _dialect, $id: _id, ...rest } = schema
    result[id] = pydanticSpelling(JSON.parse(JSON.stringify(rest)) as Json)
  }
  componentSchemas = result
  return result
}

const json = (schemaId: string) => ({ 'application/json': { schema: ref(schemaId) } })

const retryAfter = {
  'Retry-After': {
    description: 'Seconds to wait before retrying.',
    schema: { type: 'integer' },
  },
}

function describeLimits(limits: DocumentedLimits | undefined): string {
  if (!limits) {
    return 'The limits on call ids, scorer refs and body size are those of the deployment.'
  }
  return [
    `At most ${limits.maxCallIds} call ids and ${limits.maxScorerRefs} scorer refs per request`,
    '(`422` `too_long` above, like a pydantic `max_length`);',
    `a body of at most ${limits.maxBodyBytes} bytes (\`413\` above).`,
  ].join(' ')
}

/**
 * The worker's OpenAPI 3.1 document. For `POST /calls/score` it is the Python server's
 * (operation id, tags, summary, request and response schemas, `HTTPBasic`); the edge's own
 * answers (400, 401, 403, 404, 413, 429, 503), its limits and `GET /health` are added to it.
 * `limits` is absent when the deployment's configuration does not load.
 */
export function openApiDocument(limits: DocumentedLimits | undefined) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Weave calls/score edge',
      version: '0.1.0',
      description: [
        "The edge front door for W&B Weave's `POST /calls/score`: validates a request exactly as",
        "Weave's FastAPI server does, authenticates and authorizes it, and turns it into scoring",
        'jobs on Kafka. Every answer carries `X-Request-Id` (a well-formed incoming one is kept).',
      ].join(' '),
    },
    servers: [],
    security: [],
    paths: {
      '/calls/score': {
        post: {
          tags: ['Scores'],
          summary: 'Calls Score',
          description: [
            'Enqueues one job per chunk of 100 distinct call ids for the scoring worker, and',
            'answers `{}` only once every job is held by Kafka or, when Kafka is slow or down, by',
            'the durable fallback queue.',
            '\n\nAuthentication: HTTP Basic, the password is the API key (any username; Weave',
            'clients send `api`). The key must grant `project_id` and the project of every',
            'scorer ref and `weave:///` call id (`entity/project` or `entity/*`).',
            `\n\nLimits: ${describeLimits(limits)} Requests per API key are rate limited (\`429\`).`,
          ]
            .join(' ')
            .replaceAll(' \n', '\n'),
          operationId: 'calls_score_calls_score_post',
          requestBody: { content: json('CallsScoreReq'), required: true },
          responses: {
            '200': { description: 'Successful Response', content: json('CallsScoreRes') },
            '400': {
              description:
                'The body could not be parsed (JSON nested deeper than 1000 levels). In the internal id form also a `weave-trace-internal:///` scorer ref of a project neither the request\'s nor granted, answered as Weave answers `InvalidExternalRef`: `{"reason": "Encountered unexpected internal ref format."}`.',
              content: json('HTTPError'),
            },
            '401': {
              description:
                'No Basic credentials (`Not authenticated`), or an unknown API key (`Invalid authentication credentials`).',
              headers: {
                'WWW-Authenticate': {
                  description: 'The Basic challenge, `Basic realm="<AUTH_REALM>"`.',
                  schema: { type: 'string' },
                },
              },
              content: json('HTTPError'),
            },
            '403': {
              description:
                'The API key does not grant `project_id`, the project of a scorer ref or that of a `weave:///` call id; nothing was enqueued.',
              content: json('HTTPError'),
            },
            '404': {
              description:
                'Internal id form (`KAFKA_ID_FORM=internal`) only: a granted project (`project_id`, or that of a scorer ref) is not in the project directory, `Project not found: <entity>/<project>`; nothing was enqueued.',
              content: json('HTTPError'),
            },
            '413': {
              description: limits
                ? `The body is larger than ${limits.maxBodyBytes} bytes.`
                : "The body is larger than the deployment's limit.",
              content: json('HTTPError'),
            },
            '422': { description: 'Validation Error', content: json('HTTPValidationError') },
            '429': {
              description: 'Too many requests with this API key; nothing was enqueued.',
              headers: retryAfter,
              content: json('HTTPError'),
            },
            '503': {
              description:
                'Neither Kafka nor the fallback queue took every job in time, or (internal id form) the project directory did not answer in time (both with `Retry-After`: retry the request), or the deployment is misconfigured (`Service misconfigured`).',
              headers: retryAfter,
              content: json('HTTPError'),
            },
          },
          security: [{ HTTPBasic: [] }],
          ...(limits && {
            'x-limits': {
              max_call_ids: limits.maxCallIds,
              max_scorer_refs: limits.maxScorerRefs,
              max_body_bytes: limits.maxBodyBytes,
            },
          }),
        },
      },
      '/health': {
        get: {
          tags: ['Operations'],
          summary: 'Health',
          description: 'Liveness only: reads no configuration and calls no Kafka.',
          operationId: 'health',
          responses: { '200': { description: 'The worker is up.', content: json('Health') } },
        },
      },
    },
    components: {
      schemas: schemas(),
      securitySchemes: { HTTPBasic: { type: 'http', scheme: 'basic' } },
    },
  }
}
