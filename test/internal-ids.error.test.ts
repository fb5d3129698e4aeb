import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import fixtures from './fixtures/internal-ids.json' with { type: 'json' }
import {
  answer,
  call,
  captureLogs,
  createKey,
  DIALECT_TARGETS,
  INTERNAL_FORM,
  putProjects,
  sinkMessages,
  uniqueTopic,
} from './helpers.ts'

// Internal form when ids cannot be resolved: the whole request fails, nothing reaches Kafka.

const fresh = (label: string) => `acme/${label}-${crypto.randomUUID()}`
const ref = (project: string, tail = 'object/Toxicity:9f2c') => `weave:///${project}/${tail}`

/** One internal-form request on a topic of its own, with its log line and what was produced. */
async function attempt({
  grants,
  body,
  vars = {},
}: {
  grants: string[]
  body: Record<string, unknown>
  vars?: Record<string, unknown>
}) {
  const topic = uniqueTopic('internal-error')
  const key = await createKey(grants)
  let res: Response | undefined
  const started = Date.now()
  const logs = await captureLogs(async () => {
    res = await call({ key, body, vars: { KAFKA_TOPIC: topic, ...INTERNAL_FORM, ...vars } })
  })
  if (!res) throw new Error('no response')
  return {
    answer: await answer(res),
    retryAfter: res.headers.get('retry-after'),
    elapsed: Date.now() - started,
    line: logs.find((l) => l.msg === 'request') ?? {},
    produced: await sinkMessages(topic),
  }
}

/** A stand-in for the KV binding, for faults the real (Miniflare) KV cannot produce. */
const kvDouble = (get: (key: string) => Promise<string | null>) =>
  ({ get }) as unknown as KVNamespace

describe('a project the directory does not list: 404, nothing produced', () => {
  it("the request's own project", async () => {
    const project = fresh('unlisted')
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
    })
    expect(r.answer).toEqual({ status: 404, body: { detail: `Project not found: ${project}` } })
    expect(r.line).toMatchObject({ outcome: 'project_not_found' })
    expect(r.produced).toEqual([])
  })

  it("a scorer ref's project, while the request's is listed", async () => {
    const [own, other] = [fresh('own'), fresh('scorers')]
    await putProjects({ [own]: 'own-internal-id' })
    const r = await attempt({
      grants: ['acme/*'],
      body: { project_id: own, call_ids: ['c1'], scorer_refs: [ref(own), ref(other)] },
    })
    expect(r.answer).toEqual({ status: 404, body: { detail: `Project not found: ${other}` } })
    expect(r.produced).toEqual([])
  })

  it("a weave:/// call id's project", async () => {
    const [own, archive] = [fresh('own'), fresh('archive')]
    await putProjects({ [own]: 'own-internal-id' })
    const r = await attempt({
      grants: ['acme/*'],
      body: { project_id: own, call_ids: ['c1', ref(archive, 'call/c2')], scorer_refs: [] },
    })
    expect(r.answer).toEqual({ status: 404, body: { detail: `Project not found: ${archive}` } })
    expect(r.produced).toEqual([])
  })

  it('even without call ids, as in Weave, where conversion comes before the producer', async () => {
    const project = fresh('empty')
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: [], scorer_refs: [] },
    })
    expect(r.answer.status).toBe(404)
  })

  it('an empty directory value counts as absent', async () => {
    const project = fresh('blank')
    await putProjects({ [project]: '' })
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
    })
    expect(r.answer.status).toBe(404)
  })

  it('a project id KV could not store (over 512 bytes) is absent, not a directory failure', async () => {
    // The longest name W&B allows (128 code points), four UTF-8 bytes each: over KV's 512.
    const project = `acme/${'\u{1d4ab}'.repeat(128)}`
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
    })
    expect(r.answer).toEqual({ status: 404, body: { detail: `Project not found: ${project}` } })
  })
})

describe('authorization comes first: the directory never answers for an ungranted project', () => {
  it('an ungranted, unlisted request project is a 403, not a 404', async () => {
    const r = await attempt({
      grants: ['acme/granted'],
      body: { project_id: fresh('foreign'), call_ids: ['c1'], scorer_refs: [] },
    })
    expect(r.answer.status).toBe(403)
    expect(r.line.directory_lookups).toBeUndefined()
  })

  it("an ungranted weave:/// call id's project is a 403 before any lookup", async () => {
    const own = fresh('own')
    await putProjects({ [own]: 'own-internal-id' })
    const r = await attempt({
      grants: [own],
      body: { project_id: own, call_ids: [ref('other/secret', 'call/c2')], scorer_refs: [] },
    })
    expect(r.answer).toEqual({
      status: 403,
      body: { detail: 'Not authorized for project other/secret' },
    })
    expect(r.line.directory_lookups).toBeUndefined()
    expect(r.produced).toEqual([])
  })
})

describe('call ids Weave would reject or re-serialise: 422', () => {
  it.each([
    ['a weave:/// call id without entity/project/', 'weave:///acme/bot'],
    ['a ref embedded in a call id', '["weave:///acme/bot/call/c1"]'],
    ['an internal ref as a call id', 'weave-trace-internal:///UHJvamVjdA/call/c1'],
  ])('%s', async (_, id) => {
    const own = fresh('own')
    await putProjects({ [own]: 'own-internal-id' })
    const r = await attempt({
      grants: ['acme/*'],
      body: { project_id: own, call_ids: ['fine', id], scorer_refs: [] },
    })
    expect(r.answer.status).toBe(422)
    expect(r.answer.body).toMatchObject({
      detail: [{ type: 'value_error', loc: ['body', 'call_ids', 1], input: id }],
    })
    expect(r.produced).toEqual([])
  })
})

describe('the directory fails to answer: 503 with Retry-After, nothing produced', () => {
  it('KV throws', async () => {
    const project = fresh('throws')
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
      vars: {
        PROJECT_IDS: kvDouble(() => Promise.reject(new Error('KV GET failed: 500 Internal'))),
      },
    })
    expect(r.answer).toEqual({
      status: 503,
      body: {
        detail:
          'The project directory is unavailable: the scoring jobs were not accepted. Retry later.',
      },
    })
    expect(r.retryAfter).toBe('5')
    expect(r.line).toMatchObject({
      outcome: 'directory_unavailable',
      directory_reason: 'error',
      directory_detail: 'KV GET failed: 500 Internal',
    })
    expect(r.produced).toEqual([])
  })

  it('KV hangs: 503 once PROJECT_IDS_TIMEOUT_MS has passed', async () => {
    const project = fresh('hangs')
    const r = await attempt({
      grants: [project],
      body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
      vars: {
        PROJECT_IDS: kvDouble(() => new Promise(() => {})),
        PROJECT_IDS_TIMEOUT_MS: '200',
      },
    })
    expect(r.answer.status).toBe(503)
    expect(r.retryAfter).toBe('5')
    expect(r.line).toMatchObject({ directory_reason: 'timeout' })
    expect(r.elapsed).toBeGreaterThanOrEqual(190)
    expect(r.elapsed).toBeLessThan(2000)
    expect(r.produced).toEqual([])
  })

  it("one ref's project failing fails the whole request: never a half-converted job", async () => {
    const [own, flaky] = [fresh('own'), fresh('flaky')]
    const r = await attempt({
      grants: ['acme/*'],
      body: { project_id: own, call_ids: ['c1'], scorer_refs: [ref(flaky)] },
      vars: {
        PROJECT_IDS: kvDouble((key) =>
          key === flaky ? Promise.reject(new Error('KV GET failed')) : Promise.resolve('own-id'),
        ),
      },
    })
    expect(r.answer.status).toBe(503)
    expect(r.produced).toEqual([])
  })
})

describe('KAFKA_ID_FORM and the directory settings are checked like every setting', () => {
  it.each([
    [
      'an unknown form',
      { KAFKA_ID_FORM: 'Internal' },
      'KAFKA_ID_FORM: must be one of external, internal',
    ],
    ['an empty form', { KAFKA_ID_FORM: '' }, 'KAFKA_ID_FORM: must be one of external, internal'],
    [
      'internal form without the PROJECT_IDS binding',
      { KAFKA_ID_FORM: 'internal', PROJECT_IDS: undefined },
      'PROJECT_IDS: a KV namespace binding is required when KAFKA_ID_FORM is internal',
    ],
    [
      'a cache period that is not a number',
      { PROJECT_IDS_CACHE_SECONDS: 'soon' },
      'PROJECT_IDS_CACHE_SECONDS',
    ],
    ['a zero timeout', { PROJECT_IDS_TIMEOUT_MS: '0' }, 'PROJECT_IDS_TIMEOUT_MS'],
    [
      'an emptied cache period (not 0: no cache)',
      { PROJECT_IDS_CACHE_SECONDS: '' },
      'PROJECT_IDS_CACHE_SECONDS',
    ],
  ])('%s: 503 Service misconfigured, the problem named in the log', async (_, vars, problem) => {
    const topic = uniqueTopic('misconfigured')
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await call({
        key: await createKey(),
        body: { project_id: 'acme/support-bot', call_ids: ['c1'], scorer_refs: [] },
        vars: { KAFKA_TOPIC: topic, ...vars },
      })
    })
    if (!res) throw new Error('no response')
    expect(await answer(res)).toEqual({ status: 503, body: { detail: 'Service misconfigured' } })
    const line = logs.find((l) => l.msg === 'request') ?? {}
    expect((line.config_problems as string[]).some((p) => p.startsWith(problem))).toBe(true)
    expect(await sinkMessages(topic)).toEqual([])
  })

  it('the test bindings themselves are the default, external form', () => {
    expect(env.KAFKA_ID_FORM).toBe('external')
  })
})

describe('internal scorer refs Weave refuses (InvalidExternalRef): its 400, nothing produced', () => {
  it.each(
    DIALECT_TARGETS.flatMap((t) => fixtures.refused.map((c) => [t.name, c.name, t, c] as const)),
  )('%s: %s', async (_, __, target, c) => {
    await putProjects(c.kv as Record<string, string>)
    const r = await attempt({ grants: c.grants, body: c.request, vars: target.vars })
    expect(r.answer).toEqual(c.answer)
    expect(r.answer).toEqual({
      status: 400,
      body: { reason: 'Encountered unexpected internal ref format.' },
    })
    expect(r.line).toMatchObject({ outcome: 'invalid_ref', status: 400 })
    expect(r.produced).toEqual([])
  })

  it('a reverse entry naming a project the key does not grant, or nothing usable, lists nothing', async () => {
    const own = fresh('own')
    const n = crypto.randomUUID()
    await putProjects({
      [own]: `own-${n}`,
      [`*internal/garbled-${n}`]: '{"not":"a list"}',
      [`*internal/other-${n}`]: '["rival/private"]',
    })
    for (const id of [`garbled-${n}`, `other-${n}`]) {
      const r = await attempt({
        grants: ['acme/*'],
        body: {
          project_id: own,
          call_ids: ['c1'],
          scorer_refs: [`weave-trace-internal:///${id}/object/Toxicity:9f2c`],
        },
      })
      expect(r.answer.status, id).toBe(400)
      expect(r.produced).toEqual([])
    }
  })

  it('a reverse entry is never taken for a project: project_id "*internal/<id>" is not listed', async () => {
    const id = `reverse-${crypto.randomUUID()}`
    await putProjects({ [`*internal/${id}`]: '["acme/support-bot"]' })
    const r = await attempt({
      grants: ['*internal/*'],
      body: { project_id: `*internal/${id}`, call_ids: ['c1'], scorer_refs: [] },
    })
    // `*` is in no W&B project name: refused before the directory is asked.
    expect(r.answer.status).toBe(422)
    expect(r.line.directory_lookups).toBeUndefined()
  })

  it('the reverse lookups fail like the forward ones: 503 with Retry-After', async () => {
    const own = fresh('own')
    const failing = kvDouble(async (key) => {
      if (key.startsWith('*internal/')) throw new Error('KV GET failed: 503')
      return key === own ? 'own-id' : null
    })
    const r = await attempt({
      grants: ['acme/*'],
      body: {
        project_id: own,
        call_ids: ['c1'],
        scorer_refs: ['weave-trace-internal:///elsewhere/object/Toxicity:9f2c'],
      },
      vars: { PROJECT_IDS: failing },
    })
    expect(r.answer.status).toBe(503)
    expect(r.retryAfter).toBe('5')
    expect(r.produced).toEqual([])
  })

  it("an internal ref not of the client shape is the edge's 422, as for external refs", async () => {
    const own = fresh('own')
    await putProjects({ [own]: 'own-shape-id' })
    for (const bad of [
      'weave-trace-internal:///own-shape-id',
      'weave-trace-internal:///own-shape-id/call/c2',
      'weave-trace-internal:////object/Toxicity:9f2c',
    ]) {
      const r = await attempt({
        grants: [own],
        body: { project_id: own, call_ids: ['c1'], scorer_refs: [bad] },
      })
      expect(r.answer.status, bad).toBe(422)
      expect(JSON.stringify(r.answer.body)).toContain(
        'weave-trace-internal:///<internal project id>',
      )
      expect(r.produced).toEqual([])
    }
  })
})

describe('in the external id form internal refs stay refused, with a detail that says why', () => {
  it.each(DIALECT_TARGETS.map((t) => [t.name, t] as const))('%s', async (_, target) => {
    const [accepted] = fixtures.cases.filter((c) => c.name.startsWith('an internal ref'))
    if (!accepted) throw new Error('no fixture')
    const topic = uniqueTopic('external-internal-ref')
    const res = await call({
      key: await createKey(accepted.grants),
      body: accepted.request,
      vars: { KAFKA_TOPIC: topic, ...target.vars },
    })
    const internalAt = accepted.request.scorer_refs.findIndex((r) =>
      r.startsWith('weave-trace-internal:'),
    )
    expect(await answer(res)).toEqual({
      status: 422,
      body: {
        detail: [
          {
            type: 'value_error',
            loc: ['body', 'scorer_refs', internalAt],
            msg: 'Value error, scorer ref weave-trace-internal:/// is accepted only where the worker writes internal ids (KAFKA_ID_FORM=internal); this deployment writes the external ids clients send, so send weave:///<entity>/<project>/(object|op)/<name>:<digest>',
            input: accepted.request.scorer_refs[internalAt],
            ctx: { error: {} },
          },
        ],
      },
    })
    expect(await sinkMessages(topic)).toEqual([])
  })
})
