import { describe, expect, it } from 'vitest'
import type { StoredMessage } from '../dev/sink/types.ts'
import { crc32 } from '../src/kafka/crc32.ts'
import { createProducer } from '../src/kafka/select.ts'
import {
  answer,
  call,
  createKey,
  DIALECT_TARGETS,
  type DialectTarget,
  sinkProduceCount,
  sinkUrl,
  uniqueTopic,
  validBody,
} from './helpers.ts'

// The same scenarios through every dialect the worker speaks, against the one shared sink: each
// must put the same topic, key and value bytes on Kafka.

const REF = 'weave:///acme/support-bot/object/Toxicity:9f2c'
const USER = 'VXNlcjoxMjM0'
const ids = (n: number, prefix = 'call') =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)

/** Weave's message value for a chunk, written out independently of src/kafka/jobs.ts. */
const weaveValue = (callIds: string[], project = 'acme/support-bot') =>
  `{"project_id":${JSON.stringify(project)},"call_ids":${JSON.stringify(callIds)},"scorer_refs":["${REF}"],"wb_user_id":"${USER}"}`

const b64 = (text: string) => {
  const bytes = new TextEncoder().encode(text)
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''))
}

/** Everything the sink stored for a topic (bytes as base64, headers, which dialect wrote it). */
async function stored(topic: string): Promise<StoredMessage[]> {
  const res = await fetch(`${sinkUrl}/__sink/messages?topic=${encodeURIComponent(topic)}`)
  return ((await res.json()) as { messages: StoredMessage[] }).messages
}

/** One request through a target; answers with what landed. */
async function score(target: DialectTarget, body: Record<string, unknown>, vars = {}) {
  const topic = uniqueTopic('dialect')
  const res = await call({
    key: await createKey(['acme/*'], USER),
    body: validBody({ scorer_refs: [REF], ...body }),
    vars: { KAFKA_TOPIC: topic, ...target.vars, ...vars },
  })
  return { res, topic, messages: await stored(topic) }
}

describe.each(DIALECT_TARGETS)('$name', (target) => {
  it('answers {} and lands the job byte for byte, in one produce request', async () => {
    const { res, topic, messages } = await score(target, { call_ids: ['0190a', '0190b'] })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(messages.map((m) => [m.topic, m.key, m.value, m.dialect])).toEqual([
      [topic, 'acme/support-bot', weaveValue(['0190a', '0190b']), target.dialect],
    ])
    expect(messages[0]?.valueBase64).toBe(b64(weaveValue(['0190a', '0190b'])))
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('250 call ids: three messages in request order, all in one request', async () => {
    const callIds = ids(250)
    const { res, topic, messages } = await score(target, { call_ids: callIds })
    expect(res.status).toBe(200)
    expect(messages.map((m) => m.value)).toEqual([
      weaveValue(callIds.slice(0, 100)),
      weaveValue(callIds.slice(100, 200)),
      weaveValue(callIds.slice(200)),
    ])
    expect(await sinkProduceCount(topic)).toBe(1)
  })

  it('bucketed keys: every chunk lands once under its own key', async () => {
    const callIds = ids(400, 'bucketed')
    const { res, messages } = await score(
      target,
      { call_ids: callIds },
      { KAFKA_PROJECT_BUCKETS: '8' },
    )
    expect(res.status).toBe(200)
    const expected = [0, 100, 200, 300].map((i) => [
      `acme/support-bot:${crc32(new TextEncoder().encode(callIds[i])) % 8}`,
      weaveValue(callIds.slice(i, i + 100)),
    ])
    // Redpanda stores a request partition by partition: compare as a set.
    expect(messages.map((m) => [m.key, m.value]).sort()).toEqual(expected.sort())
  })

  it('non-ASCII and control characters keep their exact bytes (UTF-8, \\u001f lower-case)', async () => {
    const callIds = ['é-ü', '😀', 'tab\there', 'ctl\u001fx', 'quote"back\\slash', '\u2028']
    const { res, messages } = await score(target, {
      project_id: 'acme/support-bot',
      call_ids: callIds,
    })
    expect(res.status).toBe(200)
    const value = weaveValue(callIds)
    expect(value).toContain('\\u001f')
    expect(messages.map((m) => m.valueBase64)).toEqual([b64(value)])
    expect(messages.map((m) => m.keyBase64)).toEqual([b64('acme/support-bot')])
  })

  it('the job-id header travels where the dialect has headers', async () => {
    const { messages } = await score(target, { call_ids: ['h1'] })
    const headers = messages[0]?.headers ?? []
    if (target.dialect === 'kafka-rest-v2') {
      // Kafka REST v2 has no record headers: the id is dropped (docs/delivery.md, "Duplicates").
      expect(headers).toEqual([])
    } else {
      expect(headers.map((h) => h.key)).toEqual(['weave-job-id'])
      expect(headers[0]?.value).toMatch(/^[0-9a-f-]{36}:0$/)
    }
  })
})

describe('all dialects put identical bytes on the topic', () => {
  it('the same request through each, one after another onto one topic', async () => {
    const topic = uniqueTopic('same')
    const key = await createKey(['acme/*'], USER)
    const body = validBody({
      project_id: 'acme/ü-bot',
      call_ids: [...ids(150, 'same'), 'é😀\u001f'],
      scorer_refs: ['weave:///acme/ü-bot/op/Judge:abc/attr/x'],
    })
    const runs: string[][] = []
    let seen = 0
    for (const target of DIALECT_TARGETS) {
      const res = await call({
        key,
        body,
        vars: { KAFKA_TOPIC: topic, KAFKA_PROJECT_BUCKETS: '4', ...target.vars },
      })
      expect(res.status, target.name).toBe(200)
      const all = await stored(topic)
      const mine = all.slice(seen)
      seen = all.length
      expect(new Set(mine.map((m) => m.dialect)), target.name).toEqual(new Set([target.dialect]))
      runs.push(mine.map((m) => `${m.topic} ${m.keyBase64} ${m.valueBase64}`).sort())
    }
    expect(runs[0]).toHaveLength(2)
    for (const run of runs) expect(run).toEqual(runs[0])
  })
})

describe('adapters used directly', () => {
  const deadline = () => ({ at: Date.now() + 2000 })
  const rest = { url: sinkUrl, username: 'dev', password: 'dev-password' }

  it.each([
    ['confluent-v3', { dialect: 'confluent-v3' as const, ...rest, clusterId: 'local-cluster' }],
    ['kafka-rest-v2', { dialect: 'kafka-rest-v2' as const, ...rest }],
  ])(
    '%s: a batch spanning two topics is one request per topic, acknowledged in order',
    async (_, settings) => {
      const [a, b] = [uniqueTopic('multi-a'), uniqueTopic('multi-b')]
      const producer = createProducer(settings)
      const result = await producer.produce(
        [
          { topic: a, key: 'k', value: '1' },
          { topic: b, key: 'k', value: '2' },
          { topic: a, key: 'k', value: '3', headers: [{ key: 'h', value: 'é' }] },
        ],
        deadline(),
      )
      expect(result).toEqual({ ok: true })
      expect((await stored(a)).map((m) => m.value)).toEqual(['1', '3'])
      expect((await stored(b)).map((m) => m.value)).toEqual(['2'])
      expect(await sinkProduceCount(a)).toBe(1)
      const header = (await stored(a))[1]?.headers
      expect(header).toEqual(
        settings.dialect === 'confluent-v3'
          ? [{ key: 'h', value: 'é', valueBase64: b64('é') }]
          : [],
      )
    },
  )

  it('an empty batch sends nothing and succeeds', async () => {
    const producer = createProducer({ dialect: 'kafka-rest-v2', ...rest })
    expect(await producer.produce([], deadline())).toEqual({ ok: true })
  })
})
