import { env } from 'cloudflare:workers'
import { describe, expect, it, vi } from 'vitest'
import { hashApiKey } from '../src/auth/keys.ts'
import { answer, call, createKey, sinkMessages, uniqueTopic, validBody } from './helpers.ts'

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
    expect(
      (await score(['acme/*'], { project_id: 'acme/bot/x', scorer_refs: [] })).res.status,
    ).toBe(403)
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
