/**
 * The producer shards on the real broker: concurrent calls coalesced into shared produce
 * requests, each caller answered for its own records, and a producer left unused disconnected.
 */
import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { nativeConnects, nativeSends } from '../../src/kafka/native.ts'
import type { ShardProduce } from '../../src/kafka/producer-shards.ts'
import { call, captureLogs, createKey, validBody } from '../helpers.ts'
import { freshTopic, kafka, nativeVars, readRecords, recordsOnBroker, score } from './helpers.ts'

/** Concurrent requests, one per list of call ids: their statuses, and every request log line. */
async function scoreAll(topic: string, lists: string[][], vars: Record<string, unknown>) {
  const key = await createKey()
  const statuses: number[] = []
  const logs = await captureLogs(() =>
    Promise.all(
      lists.map(async (ids) => {
        const res = await call({
          key,
          body: validBody({ call_ids: ids }),
          vars: { ...vars, KAFKA_TOPIC: topic },
        })
        statuses.push(res.status)
      }),
    ),
  )
  return { statuses, lines: logs.filter((l) => l.msg === 'request') }
}

/** One shard, under connection settings of this test alone (a fresh producer). */
const oneShard = (copies: number, extra: Record<string, string> = {}) => ({
  ...nativeVars(''),
  KAFKA_BROKERS: Array(copies).fill(kafka.bootstrap).join(','),
  KAFKA_PRODUCER_SHARDS: '1',
  ...extra,
})

/** A shard's call for one record, as `ShardedProducer` makes it, to these brokers without TLS. */
function shardCall(brokers: string[], topic: string, id: string): ShardProduce {
  const connection = { brokers, tls: false, sasl: undefined }
  return {
    key: JSON.stringify(connection),
    connection,
    messages: [{ topic, key: 'k', value: '{}', headers: [{ key: 'weave-job-id', value: id }] }],
    deadlineAt: Date.now() + 10_000,
    maxBytes: 1_000_000,
    lingerMs: 0,
    idleMs: 60_000,
  }
}

describe('producer shards', () => {
  it('coalesces the records of concurrent calls into fewer produce requests', async () => {
    const topic = await freshTopic('coalesce')
    const vars = oneShard(5)
    expect((await score(topic, ['warm'], vars)).status).toBe(200)
    const before = nativeSends()
    const ids = Array.from({ length: 24 }, (_, i) => `c-${i}`)
    const { statuses, lines } = await scoreAll(
      topic,
      ids.map((id) => [id]),
      vars,
    )
    const sends = nativeSends() - before
    expect(statuses.filter((s) => s === 200)).toHaveLength(24)
    expect(lines.filter((l) => l.outcome === 'accepted' && l.kafka_attempts === 1)).toHaveLength(24)
    const records = await recordsOnBroker(topic, 25)
    expect(records).toHaveLength(25)
    // One call at a time would be 24 sends; the calls that wait behind one go out together.
    expect(sends).toBeLessThanOrEqual(12)
  })

  it('answers a compact caller `true` for every record landed, a caller from before the object', async () => {
    const topic = await freshTopic('compact')
    const stub = env.KAFKA_PRODUCERS.get(env.KAFKA_PRODUCERS.idFromName('compact-test'))
    const call = (id: string) => shardCall(kafka.bootstrap.split(','), topic, id)
    expect(await stub.produce({ ...call('compact-1'), compact: true })).toBe(true)
    expect(await stub.produce(call('compact-2'))).toEqual({ ok: true })
    // A failure is the whole result either way.
    const past = { ...call('compact-3'), deadlineAt: Date.now() - 1, compact: true }
    expect(await stub.produce(past)).toMatchObject({ ok: false, reason: 'timeout' })
    expect(await recordsOnBroker(topic, 2)).toHaveLength(2)
  })

  it('a record refused for itself fails its own caller only, not the calls sent with it', async () => {
    const topic = await freshTopic('coalesce-refused', {
      partitions: 1,
      configs: { 'max.message.bytes': '4096' },
    })
    // No queue: the refused request answers 503 (and leaves no job for the consumer to retry).
    const vars = { ...oneShard(6), SCORE_QUEUE: undefined }
    expect((await score(topic, ['warm'], vars)).status).toBe(200)
    const big = Array.from({ length: 100 }, (_, i) => `big-${i}-${'x'.repeat(60)}`)
    const small = Array.from({ length: 8 }, (_, i) => [`s-${i}`])
    const { statuses, lines } = await scoreAll(
      topic,
      [...small.slice(0, 4), big, ...small.slice(4)],
      vars,
    )
    expect(statuses.sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 503])
    // The refused record fails its own request; the eight sent beside it are on Kafka.
    expect(lines.filter((l) => l.status === 503)).toMatchObject([
      { outcome: 'kafka_unavailable', kafka_reason: 'rejected', kafka_acknowledged: 0 },
    ])
    expect(lines.filter((l) => l.outcome === 'accepted')).toHaveLength(8)
    const records = await recordsOnBroker(topic, 9)
    const landed = records.map((r) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids[0])
    expect(landed.filter((id) => id?.startsWith('big-'))).toEqual([])
    expect(landed.filter((id) => id?.startsWith('s-')).sort()).toEqual(small.flat().sort())
  })

  it('calls queued behind a failed send go out over a fresh connection, not failed with it', async () => {
    const good = await freshTopic('handover')
    // Never created (the cluster creates no topic on demand): a retriable failure of the send.
    const broken = `weave.score_calls.absent.${crypto.randomUUID()}`
    const stub = env.KAFKA_PRODUCERS.get(env.KAFKA_PRODUCERS.idFromName('handover-test'))
    const brokers = Array(8).fill(kafka.bootstrap).join(',').split(',')
    const call = (topic: string, id: string) => shardCall(brokers, topic, id)
    expect(await stub.produce(call(good, 'h-warm'))).toEqual({ ok: true })
    const before = nativeConnects(brokers)
    // Calls to one object arrive in order: these reach it while the failing write is in flight.
    const failing = stub.produce(call(broken, 'h-broken'))
    const queued = Array.from({ length: 6 }, (_, i) => stub.produce(call(good, `h-${i}`)))
    expect(await failing).toMatchObject({ ok: false, reason: 'unavailable' })
    expect(await Promise.all(queued)).toEqual(Array(6).fill({ ok: true }))
    expect(nativeConnects(brokers)).toBe(before + 1)
    expect(await recordsOnBroker(good, 7)).toHaveLength(7)
  })

  it('a producer unused for KAFKA_PRODUCER_IDLE_SECONDS disconnects; the next call connects', async () => {
    const topic = await freshTopic('idle')
    const vars = oneShard(7, { KAFKA_PRODUCER_IDLE_SECONDS: '1' })
    // Producers connected for this test's bootstrap list alone (its shard's).
    const connected = () => nativeConnects(vars.KAFKA_BROKERS.split(','))
    expect((await score(topic, ['i-0'], vars)).status).toBe(200)
    expect(connected()).toBe(1)
    expect((await score(topic, ['i-1'], vars)).status).toBe(200)
    expect(connected()).toBe(1)
    await new Promise((r) => setTimeout(r, 2_500))
    expect((await score(topic, ['i-2'], vars)).line).toMatchObject({ outcome: 'accepted' })
    expect(connected()).toBe(2)
    expect(await readRecords(topic)).toHaveLength(3)
  })
})
