import { describe, expect, inject, it, vi } from 'vitest'
import { call } from './helpers.ts'

// GET /openapi.json against the Python server's document (spec/calls-score.openapi.yaml, parsed
// in the global setup, which fails the run without it), and GET /docs, Swagger UI over it.

type Doc = {
  openapi: string
  paths: Record<string, Record<string, Record<string, unknown>>>
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> }
}

const python = inject('pythonOpenApi') as Doc

async function fetchDocument(vars: Record<string, unknown> = {}) {
  const res = await call({ method: 'GET', path: '/openapi.json', contentType: null, vars })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('application/json')
  return (await res.json()) as Doc
}

/** The operation as the Python server describes it, or a failed assertion saying why not. */
function pythonOperation(): Record<string, unknown> {
  const operation = python.paths['/calls/score']?.post
  expect(operation).toBeDefined()
  return operation ?? {}
}

const EDGE_RESPONSES = ['400', '401', '403', '404', '413', '429', '503']

describe('GET /openapi.json is the Python server’s document, plus the edge’s additions', () => {
  it('is OpenAPI 3.1 and describes POST /calls/score and GET /health', async () => {
    const doc = await fetchDocument()
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.paths).sort()).toEqual(['/calls/score', '/health'])
    expect(Object.keys(doc.paths['/calls/score'] ?? {})).toEqual(['post'])
  })

  it('POST /calls/score: the same operation id, tags, summary, body, 200, 422 and security', async () => {
    const theirs = pythonOperation()
    const ours = (await fetchDocument()).paths['/calls/score']?.post ?? {}
    for (const [field, value] of Object.entries(theirs)) {
      if (field === 'responses') continue
      expect(ours[field], field).toStrictEqual(value)
    }
    expect(Object.keys(ours).filter((k) => !(k in theirs))).toEqual(['description', 'x-limits'])
    const theirResponses = theirs.responses as Record<string, unknown>
    const ourResponses = ours.responses as Record<string, unknown>
    for (const [status, response] of Object.entries(theirResponses)) {
      expect(ourResponses[status], status).toStrictEqual(response)
    }
    expect(Object.keys(ourResponses).filter((s) => !(s in theirResponses))).toEqual(EDGE_RESPONSES)
  })

  it('the component schemas are pydantic’s, titles and descriptions included', async () => {
    const theirs = python.components
    const ours = (await fetchDocument()).components
    for (const name of [
      'CallsScoreReq',
      'CallsScoreRes',
      'HTTPValidationError',
      'ValidationError',
    ]) {
      expect(ours.schemas[name], name).toStrictEqual(theirs.schemas[name])
    }
    expect(Object.keys(theirs.schemas).sort()).toEqual([
      'CallsScoreReq',
      'CallsScoreRes',
      'HTTPValidationError',
      'ValidationError',
    ])
    expect(Object.keys(ours.schemas).sort()).toEqual([
      'CallsScoreReq',
      'CallsScoreRes',
      'HTTPError',
      'HTTPValidationError',
      'Health',
      'ValidationError',
    ])
    expect(ours.securitySchemes).toStrictEqual(theirs.securitySchemes)
  })

  it('every $ref points at a component it defines', async () => {
    const doc = await fetchDocument()
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]*"/g) ?? []
    expect(refs.length).toBeGreaterThan(10)
    for (const ref of refs) {
      const name = /#\/components\/schemas\/([^"]+)"$/.exec(ref)?.[1]
      expect(name && doc.components.schemas[name], ref).toBeTruthy()
    }
  })

  it('documents the edge’s answers: an error body, Retry-After on 429 and 503, the Basic challenge', async () => {
    const responses = (await fetchDocument()).paths['/calls/score']?.post?.responses as Record<
      string,
      { description: string; headers?: Record<string, unknown>; content: unknown }
    >
    for (const status of EDGE_RESPONSES) {
      expect(responses[status]?.content, status).toStrictEqual({
        'application/json': { schema: { $ref: '#/components/schemas/HTTPError' } },
      })
      expect(responses[status]?.description.length, status).toBeGreaterThan(10)
    }
    expect(Object.keys(responses['429']?.headers ?? {})).toEqual(['Retry-After'])
    expect(Object.keys(responses['503']?.headers ?? {})).toEqual(['Retry-After'])
    expect(Object.keys(responses['401']?.headers ?? {})).toEqual(['WWW-Authenticate'])
  })

  it('states the deployment’s limits, from its configuration', async () => {
    const operation = (
      await fetchDocument({ MAX_CALL_IDS: '250', MAX_SCORER_REFS: '7', MAX_BODY_BYTES: '65536' })
    ).paths['/calls/score']?.post
    expect(operation?.['x-limits']).toStrictEqual({
      max_call_ids: 250,
      max_scorer_refs: 7,
      max_body_bytes: 65536,
    })
    expect(operation?.description).toContain(
      'At most 250 call ids and 7 scorer refs per request (`422` `too_long` above',
    )
    expect(operation?.description).toContain('a body of at most 65536 bytes (`413` above)')
    const responses = operation?.responses as Record<string, { description: string }>
    expect(responses['413']?.description).toBe('The body is larger than 65536 bytes.')
  })

  it('is served by a misconfigured deployment too, without the limits', async () => {
    const doc = await fetchDocument({ UPSTASH_KAFKA_REST_URL: '', MAX_CALL_IDS: 'many' })
    const operation = doc.paths['/calls/score']?.post
    expect(operation?.operationId).toBe('calls_score_calls_score_post')
    expect(operation).not.toHaveProperty('x-limits')
  })

  it('documents GET /health', async () => {
    const health = (await fetchDocument()).paths['/health']?.get
    expect(health?.operationId).toBe('health')
    expect(health?.responses).toStrictEqual({
      '200': {
        description: 'The worker is up.',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Health' } } },
      },
    })
  })
})

describe('GET /docs is Swagger UI over the document', () => {
  it('serves a page that loads /openapi.json, with Swagger UI pinned from the CDN', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch')
    const res = await call({ method: 'GET', path: '/docs', contentType: null })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('x-request-id')).toBeTruthy()
    const page = await res.text()
    expect(page).toContain('<div id="swagger-ui"></div>')
    expect(page).toMatch(
      /<script src="https:\/\/cdn\.jsdelivr\.net\/npm\/swagger-ui-dist@5\.35\.0\/swagger-ui-bundle\.js" integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous"><\/script>/,
    )
    expect(page).toMatch(
      /<link rel="stylesheet" href="https:\/\/cdn\.jsdelivr\.net\/npm\/swagger-ui-dist@5\.35\.0\/swagger-ui\.css" integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous" \/>/,
    )
    // The worker serves the page; the browser, not the worker, fetches Swagger UI.
    expect(fetchSpy).not.toHaveBeenCalled()

    // The URL Swagger UI is told to load, resolved like the browser does, is the document.
    const url = /SwaggerUIBundle\(\{[^}]*url: '([^']+)'/.exec(page)?.[1]
    expect(url).toBe('/openapi.json')
    const target = new URL(url ?? '', 'https://worker.test/docs')
    const doc = await call({ method: 'GET', path: target.pathname, contentType: null })
    expect(doc.status).toBe(200)
    expect(((await doc.json()) as Doc).openapi).toBe('3.1.0')
  })
})
