import { describe, expect, it } from 'vitest'
import fixtures from './fixtures/internal-ids.json' with { type: 'json' }
import {
  answer,
  call,
  createKey,
  DIALECT_TARGETS,
  delivered,
  INTERNAL_FORM,
  jobIdOf,
  putProjects,
  scoreOnFreshTopic,
  sinkMessages,
  uniqueTopic,
} from './helpers.ts'

// Internal form end to end through the real local sink. The expected keys and values come from
// test/fixtures/internal-ids.py, which follows Weave's own converter and producer.

type Case = (typeof fixtures.cases)[number]

async function produce(c: Case, vars: Record<string, unknown> = {}) {
  // The directory as `npm run projects` stores it: forward and reverse entries.
  await putProjects(c.kv as Record<string, string>)
  const topic = uniqueTopic('internal')
  const res = await call({
    key: await createKey(c.grants, c.wb_user_id),
    body: c.request,
    vars: { KAFKA_TOPIC: topic, KAFKA_PROJECT_BUCKETS: String(c.buckets), ...vars },
  })
  return { res, topic }
}

describe('KAFKA_ID_FORM=internal: the messages Weave writes after id conversion', () => {
  it.each(fixtures.cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const { res, topic } = await produce(c, INTERNAL_FORM)
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    const messages = await sinkMessages(topic)
    expect(messages.map((m) => ({ key: m.key, value: m.value }))).toEqual(c.messages)
  })

  it('the fixtures cover what the issue asks for', () => {
    const values = fixtures.cases.flatMap((c) => c.messages.map((m) => m.value))
    expect(fixtures.cases.some((c) => c.buckets > 1 && c.messages.length > 1)).toBe(true)
    expect(values.some((v) => /[^ -~]/.test(v))).toBe(true)
    expect(values.every((v) => !v.includes('weave:///'))).toBe(true)
    expect(new Set(fixtures.cases.flatMap((c) => Object.values(c.directory))).size).toBeGreaterThan(
      3,
    )
  })

  it('the default form (external) is unchanged with a directory present', async () => {
    const [own] = fixtures.cases
    if (!own) throw new Error('no fixture')
    const { res, topic } = await produce(own)
    expect(res.status).toBe(200)
    const [message] = await sinkMessages(topic)
    expect(message?.key).toBe('acme/support-bot')
    expect(message?.value).toBe(
      '{"project_id":"acme/support-bot","call_ids":["0190a1b2-0000-7000-8000-000000000001","0190a1b2-0000-7000-8000-000000000002"],"scorer_refs":["weave:///acme/support-bot/object/Toxicity:9f2c","weave:///acme/support-bot/op/Judge:abc123"],"wb_user_id":"VXNlcjoxMjM0"}',
    )
  })

  it('a directory change shows once the isolate cache has expired (PROJECT_IDS_CACHE_SECONDS)', async () => {
    const project = `acme/moved-${crypto.randomUUID()}`
    await putProjects({ [project]: 'first-id' })
    const key = await createKey([project])
    const send = async (cacheSeconds: string) => {
      const topic = uniqueTopic('cache')
      const res = await call({
        key,
        body: { project_id: project, call_ids: ['c1'], scorer_refs: [] },
        vars: { KAFKA_TOPIC: topic, PROJECT_IDS_CACHE_SECONDS: cacheSeconds, ...INTERNAL_FORM },
      })
      expect(res.status).toBe(200)
      return (await sinkMessages(topic))[0]?.key
    }
    expect(await send('1')).toBe('first-id')
    await putProjects({ [project]: 'second-id' })
    expect(await send('1')).toBe('first-id')
    await new Promise((r) => setTimeout(r, 1100))
    expect(await send('1')).toBe('second-id')
    await putProjects({ [project]: 'third-id' })
    expect(await send('0'), 'PROJECT_IDS_CACHE_SECONDS=0: no isolate cache').toBe('third-id')
  })
})

describe('internal form downstream: every dialect carries the converted records unchanged', () => {
  const unicode = fixtures.cases.find((c) => c.name.startsWith('unicode'))
  it.each(DIALECT_TARGETS.map((t) => [t.name, t] as const))('%s', async (_, target) => {
    if (!unicode) throw new Error('no unicode fixture')
    const { res, topic } = await produce(unicode, { ...INTERNAL_FORM, ...target.vars })
    expect(res.status).toBe(200)
    const messages = await sinkMessages(topic)
    expect(messages.map((m) => ({ key: m.key, value: m.value }))).toEqual(unicode.messages)
  })
})

describe('internal scorer refs Weave accepts land unchanged, in every dialect', () => {
  const accepted = fixtures.cases.filter((c) => c.name.startsWith('an internal ref'))
  it('the fixtures hold own-project and granted cross-project internal refs', () => {
    expect(accepted).toHaveLength(2)
  })
  it.each(DIALECT_TARGETS.flatMap((t) => accepted.map((c) => [t.name, c.name, t, c] as const)))(
    '%s: %s',
    async (_, __, target, c) => {
      const { res, topic } = await produce(c, { ...INTERNAL_FORM, ...target.vars })
      expect(await answer(res)).toEqual({ status: 200, body: {} })
      const messages = await sinkMessages(topic)
      expect(messages.map((m) => ({ key: m.key, value: m.value }))).toEqual(c.messages)
      for (const ref of c.request.scorer_refs.filter((r) =>
        r.startsWith('weave-trace-internal:'),
      )) {
        expect(messages[0]?.value).toContain(JSON.stringify(ref))
      }
    },
  )
})

describe('internal form downstream: the queue carries the converted records unchanged', () => {
  it('Kafka down: {} from the queue, and the consumer delivers the internal-form jobs', async () => {
    await putProjects({ 'acme/support-bot': 'UHJvamVjdEludGVybmFsSWQ6MTAx' })
    const callIds = Array.from({ length: 150 }, (_, i) => `q${i}`)
    const { res, topic, line } = await scoreOnFreshTopic({
      fault: { kind: 'status', status: 500, times: 2 },
      callIds,
      vars: { KAFKA_PRODUCE_TIMEOUT_MS: '1000', KAFKA_PRODUCE_RETRIES: '1', ...INTERNAL_FORM },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(line).toMatchObject({ outcome: 'queued', queued: 2 })
    const messages = await delivered(topic, 2)
    expect(messages.map((m) => m.key)).toEqual([
      'UHJvamVjdEludGVybmFsSWQ6MTAx',
      'UHJvamVjdEludGVybmFsSWQ6MTAx',
    ])
    const values = messages.map((m) => JSON.parse(m.value) as Record<string, unknown>)
    for (const v of values) {
      expect(v).toMatchObject({
        project_id: 'UHJvamVjdEludGVybmFsSWQ6MTAx',
        scorer_refs: ['weave-trace-internal:///UHJvamVjdEludGVybmFsSWQ6MTAx/object/Toxicity:9f2c'],
      })
    }
    expect(messages.map(jobIdOf).every((id) => /^[0-9a-f-]{36}:[01]$/.test(id ?? ''))).toBe(true)
  })
})
