import { env } from 'cloudflare:workers'
import { describe, expect, it, vi } from 'vitest'
import { hashApiKey } from '../src/auth/keys.ts'
import {
  answer,
  call,
  createKey,
  INTERNAL_FORM,
  putProjects,
  sinkMessages,
  uniqueTopic,
  validBody,
} from './helpers.ts'

const REF = 'weave:///acme/support-bot/object/Toxicity:9f2c'

describe('authentication comes first', () => {
  const expect401 = async (res: Response, detail: string) => {
    expect(await answer(res)).toEqual({ status: 401, body: { detail } })
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="weave"')
    expect(res.headers.get('x-request-id')).toBeTruthy()
  }

  it('without credentials: 401 Not authenticated, even for a broken body', async () => {
    await expect401(await call({ body: '{"broken' }), 'Not authenticated')
    await expect401(await call({ body: validBody() }), 'Not authenticated')
  })

  it('announces the configured realm, and follows a change of it', async () => {
    const other = await call({ body: validBody(), vars: { AUTH_REALM: 'weave-staging' } })
    expect(other.headers.get('www-authenticate')).toBe('Basic realm="weave-staging"')
    await expect401(await call({ body: validBody() }), 'Not authenticated')
  })

  it('with a non-Basic scheme: 401 Not authenticated', async () => {
    const res = await call({ body: validBody(), headers: { authorization: 'Bearer abc' } })
    await expect401(res, 'Not authenticated')
  })

  it.each([
    ['bad base64', 'Basic !!!notbase64'],
    ['no colon', `Basic ${btoa('api')}`],
    ['empty password', `Basic ${btoa('api:')}`],
    ['unknown key', `Basic ${btoa('api:not-a-real-key')}`],
  ])('%s: 401 Invalid authentication credentials', async (_, authorization) => {
    const res = await call({ body: '{"broken', headers: { authorization } })
    await expect401(res, 'Invalid authentication credentials')
  })

  it('accepts any username; the password is the key', async () => {
    const key = await createKey()
    const res = await call({
      body: validBody({ call_ids: [] }),
      headers: { authorization: `Basic ${btoa(`someone-else:${key}`)}` },
    })
    expect(res.status).toBe(200)
  })

  it('treats a corrupt key record as an unknown key', async () => {
    const key = `corrupt-${crypto.randomUUID()}`
    await env.API_KEYS.put(await hashApiKey(key), '{"projects":"not-a-list"}')
    await expect401(await call({ key, body: validBody() }), 'Invalid authentication credentials')
  })

  it('stores keys only as their SHA-256 hex digest', async () => {
    expect(await hashApiKey('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    )
  })

  it('never logs the key, the password or the Authorization header', async () => {
    const key = await createKey()
    const lines: string[] = []
    vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line))
    vi.spyOn(console, 'error').mockImplementation((line: string) => lines.push(line))
    await call({ key, body: validBody({ call_ids: [] }) })
    await call({ key: `${key}x`, body: validBody() })
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      expect(line).not.toContain(key)
      expect(line).not.toContain(btoa(`api:${key}`))
      expect(line.toLowerCase()).not.toContain('authorization')
      expect(JSON.parse(line)).toMatchObject({ msg: 'request', request_id: expect.any(String) })
    }
  })
})

describe('authorization of every project involved', () => {
  const score = async (projects: string[], body: Record<string, unknown>) => {
    const topic = uniqueTopic('authz')
    const res = await call({
      key: await createKey(projects),
      body: validBody(body),
      vars: { KAFKA_TOPIC: topic },
    })
    return { res, messages: await sinkMessages(topic) }
  }

  it('grants an exact project', async () => {
    const { res, messages } = await score(['acme/support-bot'], {})
    expect(res.status).toBe(200)
    expect(messages).toHaveLength(1)
  })

  it('grants every project of an entity with entity/*', async () => {
    const { res } = await score(['acme/*'], {
      scorer_refs: [REF, 'weave:///acme/shared-scorers/op/Judge:1'],
    })
    expect(res.status).toBe(200)
  })

  it('refuses a project that is only a prefix match, and produces nothing', async () => {
    const { res, messages } = await score(['acme/bot'], {
      project_id: 'acme/bot2',
      scorer_refs: [],
    })
    expect(await answer(res)).toEqual({
      status: 403,
      body: { detail: 'Not authorized for project acme/bot2' },
    })
    expect(messages).toEqual([])
  })

  it('refuses entity/* for another entity and for nested paths', async () => {
    expect((await score(['acme/*'], { project_id: 'acme2/bot', scorer_refs: [] })).res.status).toBe(
      403,
    )
    // A nested path names no W&B project: refused before authorization, nothing produced.
    const nested = await score(['acme/*'], { project_id: 'acme/bot/x', scorer_refs: [] })
    expect(nested.res.status).toBe(422)
    expect(nested.messages).toEqual([])
  })

  it("refuses a scorer ref from a project the key doesn't hold", async () => {
    const { res, messages } = await score(['acme/support-bot'], {
      scorer_refs: [REF, 'weave:///other/secret/object/Scorer:1'],
    })
    expect(await answer(res)).toEqual({
      status: 403,
      body: { detail: 'Not authorized for project other/secret' },
    })
    expect(messages).toEqual([])
  })
})

// Both id forms must answer alike (docs/compatibility.md#project-names-and-ref-paths): the
// external form produces what the client sent, the internal one looks projects up first.
const ID_FORMS = [
  ['external', {}],
  ['internal', INTERNAL_FORM],
] as const

/** One request in an id form with an `acme/*` key; acme/alpha is listed in the directory. */
async function inForm(form: Record<string, string>, body: Record<string, unknown>) {
  await putProjects({ 'acme/alpha': 'YWNtZS9hbHBoYQ', 'acme/beta': 'YWNtZS9iZXRh' })
  const topic = uniqueTopic('names')
  const res = await call({
    key: await createKey(['acme/*']),
    body: { project_id: 'acme/alpha', call_ids: ['c1'], scorer_refs: [], ...body },
    vars: { KAFKA_TOPIC: topic, ...form },
  })
  return { answer: await answer(res), messages: await sinkMessages(topic) }
}

const valueError = (loc: (string | number)[], input: string) => ({
  type: 'value_error',
  loc,
  input,
  ctx: { error: {} },
})

describe.each(ID_FORMS)('project names no W&B project can have: 422 (%s id form)', (_, form) => {
  // The W&B SDK refuses / \ # ? % : and names over 128 characters; `*` is the grant wildcard;
  // `.`/`..` are URL dot segments; surrounding white space makes a lookalike.
  it.each([
    'acme/..',
    'acme/.',
    'acme/*',
    'acme/ ',
    'acme/ alpha',
    'acme/%2e%2e%2fother',
    'acme/a:b',
    'acme/a#b',
    'acme/a?b',
    'acme/a\\b',
    'acme/a\nb',
    `acme/${'p'.repeat(129)}`,
    'acme/',
    '../alpha',
    'acme/alpha/x',
    'alpha',
  ])('project_id %j', async (project) => {
    const r = await inForm(form, { project_id: project })
    expect(r.answer.status).toBe(422)
    expect(r.answer.body).toMatchObject({
      detail: [valueError(['body', 'project_id'], project)],
    })
    expect((r.answer.body as { detail: { msg: string }[] }).detail[0]?.msg).toMatch(
      /^Value error, project_id's /,
    )
    expect(r.messages).toEqual([])
  })

  it.each(['acme/..', 'acme/*', 'acme/ ', 'acme/%2e%2e%2fother'])(
    'a scorer ref in project %j',
    async (project) => {
      const ref = `weave:///${project}/object/Tox:9f2c`
      const r = await inForm(form, { scorer_refs: [ref] })
      expect(r.answer).toMatchObject({
        status: 422,
        body: { detail: [valueError(['body', 'scorer_refs', 0], ref)] },
      })
      expect(r.messages).toEqual([])
    },
  )

  it('a call id ref in project acme/..', async () => {
    const id = 'weave:///acme/../call/c1'
    const r = await inForm(form, { call_ids: ['c0', id] })
    expect(r.answer).toMatchObject({
      status: 422,
      body: { detail: [valueError(['body', 'call_ids', 1], id)] },
    })
    expect(r.messages).toEqual([])
  })

  it('real names pass: Unicode, dots, dashes, spaces inside, 128 code points', async () => {
    for (const project of [
      'acme/alpha',
      'acme/support-bot_v2.1',
      'acme/équipe bøt',
      `acme/${'\u{1d4ab}'.repeat(128)}`,
    ]) {
      const r = await inForm(form, { project_id: project })
      // Internal form: the names pass, then the directory decides (acme/alpha is listed).
      expect(r.answer.status, project).toBe(
        project === 'acme/alpha' || !('KAFKA_ID_FORM' in form) ? 200 : 404,
      )
    }
  })
})

describe.each(ID_FORMS)("ref paths Weave's parser refuses: 422 (%s id form)", (_, form) => {
  // Weave's validate_extra: after <name>:<digest>, pairs of key|index|attr|id and a value.
  it.each([
    'weave:///acme/alpha/object/Tox:9f2c/../../../beta/object/X:1',
    'weave:///acme/alpha/object/Tox:9f2c/..',
    'weave:///acme/alpha/object/Tox:9f2c/attr',
    'weave:///acme/alpha/object/Tox:9f2c/index/first',
    'weave:///acme/alpha/op/Judge:1/object/X:1',
    'weave:///acme/alpha/object/Tox:9f2c:extra',
  ])('%s', async (ref) => {
    const r = await inForm(form, { scorer_refs: [ref] })
    expect(r.answer).toMatchObject({
      status: 422,
      body: { detail: [valueError(['body', 'scorer_refs', 0], ref)] },
    })
    expect(r.messages).toEqual([])
  })

  it('the paths Weave writes pass: key, attr, id, index pairs, quoted values, a dict key ".."', async () => {
    const refs = [
      'weave:///acme/alpha/object/Dataset:9f2c/attr/rows/id/abc123',
      'weave:///acme/alpha/object/Cfg:1/key/a%2Fb/index/0/key/..',
      'weave:///acme/alpha/op/Judge:1/attr/scorer',
    ]
    const r = await inForm(form, { scorer_refs: refs })
    expect(r.answer).toEqual({ status: 200, body: {} })
    expect(r.messages).toHaveLength(1)
  })
})

describe.each(ID_FORMS)(
  "a call id that is another project's ref: authorized like it (%s id form)",
  (_, form) => {
    // Weave converts every weave:/// string of the request, call ids included, and its
    // converter looks the project up with the caller's access.
    it('an ungranted project is a 403, nothing produced', async () => {
      const topic = uniqueTopic('call-ref')
      await putProjects({ 'acme/alpha': 'YWNtZS9hbHBoYQ', 'acme/beta': 'YWNtZS9iZXRh' })
      const res = await call({
        key: await createKey(['acme/alpha']),
        body: {
          project_id: 'acme/alpha',
          call_ids: ['weave:///acme/beta/call/0190a1b2-0000-7000-8000-000000000001'],
          scorer_refs: [],
        },
        vars: { KAFKA_TOPIC: topic, ...form },
      })
      expect(await answer(res)).toEqual({
        status: 403,
        body: { detail: 'Not authorized for project acme/beta' },
      })
      expect(await sinkMessages(topic)).toEqual([])
    })

    it('a granted one is produced', async () => {
      const r = await inForm(form, {
        call_ids: ['weave:///acme/beta/call/0190a1b2-0000-7000-8000-000000000001'],
      })
      expect(r.answer).toEqual({ status: 200, body: {} })
      expect(r.messages).toHaveLength(1)
    })

    it('a call id holding a ref inside is a 422', async () => {
      const id = '["weave:///acme/beta/call/c1"]'
      const r = await inForm(form, { call_ids: [id] })
      expect(r.answer).toMatchObject({
        status: 422,
        body: { detail: [valueError(['body', 'call_ids', 0], id)] },
      })
    })
  },
)
