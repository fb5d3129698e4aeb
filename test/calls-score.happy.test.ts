import { Kafka } from '@upstash/kafka'
import { describe, expect, it } from 'vitest'
import { crc32 } from '../src/kafka/crc32.ts'
import {
  answer,
  call,
  createKey,
  sinkMessages,
  sinkUrl,
  uniqueTopic,
  validBody,
} from './helpers.ts'

const REF = 'weave:///acme/support-bot/object/Toxicity:9f2c'
const ids = (n: number, prefix = 'call') =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`)

describe('POST /calls/score through the real sink', () => {
  it('answers {} and lands the job byte for byte', async () => {
    const topic = uniqueTopic('one')
    const key = await createKey(['acme/support-bot'], 'VXNlcjoxMjM0')
    const res = await call({
      key,
      body: validBody({ call_ids: ['0190a', '0190b'], scorer_refs: [REF] }),
      vars: { KAFKA_TOPIC: topic },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    const messages = await sinkMessages(topic)
    expect(messages.map((m) => [m.key, m.value])).toEqual([
      [
        'acme/support-bot',
        '{"project_id":"acme/support-bot","call_ids":["0190a","0190b"],"scorer_refs":["weave:///acme/support-bot/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjoxMjM0"}',
      ],
    ])
  })

  it('splits 250 call ids into chunks of 100, 100 and 50 in request order', async () => {
    const topic = uniqueTopic('chunks')
    const callIds = ids(250)
    const res = await call({
      key: await createKey(),
      body: validBody({ call_ids: callIds }),
      vars: { KAFKA_TOPIC: topic },
    })
    expect(res.status).toBe(200)
    const values = (await sinkMessages(topic)).map(
      (m) => JSON.parse(m.value) as { call_ids: string[] },
    )
    expect(values.map((v) => v.call_ids.length)).toEqual([100, 100, 50])
    expect(values.flatMap((v) => v.call_ids)).toEqual(callIds)
  })

  it('keys each chunk project_id:<crc32(first id) mod N> when buckets are configured', async () => {
    const topic = uniqueTopic('buckets')
    const callIds = ids(300, 'bucketed')
    await call({
      key: await createKey(),
      body: validBody({ call_ids: callIds }),
      vars: { KAFKA_TOPIC: topic, KAFKA_PROJECT_BUCKETS: '8' },
    })
    const keys = (await sinkMessages(topic)).map((m) => m.key)
    const expected = [0, 100, 200].map((i) => {
      const first = new TextEncoder().encode(callIds[i])
      return `acme/support-bot:${crc32(first) % 8}`
    })
    expect(keys).toEqual(expected)
    // zlib.crc32(b"bucketed-00000") computed with Python, to pin the algorithm itself.
    expect(crc32(new TextEncoder().encode('bucketed-00000'))).toBe(2_102_754_452)
  })

  it('drops duplicate call ids and scorer refs before chunking, first occurrence kept', async () => {
    const topic = uniqueTopic('dupes')
    const other = 'weave:///acme/support-bot/op/Judge:abc/attr/x'
    await call({
      key: await createKey(),
      body: validBody({ call_ids: ['b', 'a', 'b', 'c', 'a'], scorer_refs: [REF, other, REF] }),
      vars: { KAFKA_TOPIC: topic },
    })
    const [message] = await sinkMessages(topic)
    expect(JSON.parse(message?.value ?? 'null')).toEqual({
      project_id: 'acme/support-bot',
      call_ids: ['b', 'a', 'c'],
      scorer_refs: [REF, other],
      wb_user_id: 'VXNlcjoxMjM0',
    })
  })

  it('writes non-ASCII as UTF-8, not \\u escapes, and escapes what JSON must', async () => {
    const topic = uniqueTopic('unicode')
    const key = await createKey(['équipe/bøt'], 'usér-😀')
    const ref = 'weave:///équipe/bøt/object/Tóxico:9f2c'
    await call({
      key,
      body: {
        project_id: 'équipe/bøt',
        call_ids: ['id-😀', 'quote"back\\slash\nnl'],
        scorer_refs: [ref],
      },
      vars: { KAFKA_TOPIC: topic },
    })
    const [message] = await sinkMessages(topic)
    expect(message?.value).toBe(
      '{"project_id":"équipe/bøt","call_ids":["id-😀","quote\\"back\\\\slash\\nnl"],"scorer_refs":["weave:///équipe/bøt/object/Tóxico:9f2c"],"wb_user_id":"usér-😀"}',
    )
    expect(message?.key).toBe('équipe/bøt')
  })

  it('takes wb_user_id from the key record, ignoring the one in the body', async () => {
    const topic = uniqueTopic('user')
    await call({
      key: await createKey(['acme/support-bot'], 'real-user'),
      body: validBody({ wb_user_id: 'spoofed-user' }),
      vars: { KAFKA_TOPIC: topic },
    })
    const [message] = await sinkMessages(topic)
    expect(JSON.parse(message?.value ?? '{}')).toMatchObject({ wb_user_id: 'real-user' })
    expect(message?.value).not.toContain('spoofed')
  })

  it('answers {} and produces nothing when there are no call ids', async () => {
    const topic = uniqueTopic('empty')
    const res = await call({
      key: await createKey(),
      body: validBody({ call_ids: [] }),
      vars: { KAFKA_TOPIC: topic },
    })
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(await sinkMessages(topic)).toEqual([])
  })

  it('accepts a 10,000-id, 100-scorer request: 100 messages', async () => {
    const topic = uniqueTopic('max')
    const refs = Array.from(
      { length: 100 },
      (_, i) => `weave:///acme/support-bot/object/S${i}:d${i}`,
    )
    const res = await call({
      key: await createKey(),
      body: validBody({ call_ids: ids(10_000), scorer_refs: refs }),
      vars: { KAFKA_TOPIC: topic },
    })
    expect(res.status).toBe(200)
    const messages = await sinkMessages(topic)
    expect(messages).toHaveLength(100)
    expect(JSON.parse(messages[99]?.value ?? '{}')).toMatchObject({ scorer_refs: refs })
  })

  it('keeps a well-formed incoming X-Request-Id', async () => {
    const res = await call({
      key: await createKey(),
      body: validBody({ call_ids: [] }),
      headers: { 'x-request-id': 'trace-abc_123' },
    })
    expect(res.headers.get('x-request-id')).toBe('trace-abc_123')
  })

  it("lands messages that @upstash/kafka's own consumer reads back", async () => {
    const topic = uniqueTopic('consumer')
    await call({ key: await createKey(), body: validBody(), vars: { KAFKA_TOPIC: topic } })
    const [stored] = await sinkMessages(topic)
    const consumer = new Kafka({
      url: sinkUrl,
      username: 'dev',
      password: 'dev-password',
    }).consumer()
    const fetched = await consumer.fetch({
      topic,
      partition: stored?.partition ?? 0,
      offset: 0,
      timeout: 100,
    })
    expect(fetched.map((m) => m.value)).toEqual([stored?.value])
  })
})
