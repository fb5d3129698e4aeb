/**
 * A write that outlives its request: the broker frozen (SIGSTOP) past the produce deadline, then
 * let go. The request's jobs are queued with the shard that still holds the write; the write
 * lands; the queue consumer learns that from the shard and does not produce the jobs again.
 * Without a queue (self-hosted), the request waits for the late acknowledgement instead of a 503.
 */
import { describe, expect, it } from 'vitest'
import { consumeBatch } from '../helpers.ts'
import {
  type BrokerRecord,
  freshTopic,
  kafka,
  nativeVars,
  pauseBroker,
  readRecords,
  recordsOnBroker,
  resumeBroker,
  score,
} from './helpers.ts'

const jobIdOf = (r: BrokerRecord) => r.headers.find(([k]) => k === 'weave-job-id')?.[1]
const callIdOf = (r: BrokerRecord) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids[0]

/** One shard, retries off, and connection settings of this test alone (a fresh producer). */
const shardVars = (copies: number) => ({
  ...nativeVars(''),
  KAFKA_BROKERS: Array(copies).fill(kafka.bootstrap).join(','),
  KAFKA_PRODUCER_SHARDS: '1',
  KAFKA_PRODUCE_RETRIES: '0',
})

/** A request sent while the broker is frozen, the broker let go `frozenMs` after it was sent. */
async function frozenWhile(send: () => ReturnType<typeof score>, frozenMs: number) {
  await pauseBroker()
  let answer: Awaited<ReturnType<typeof score>> | undefined
  try {
    const answered = send().then((a) => {
      answer = a
    })
    await new Promise((r) => setTimeout(r, frozenMs))
    await resumeBroker()
    await answered
  } finally {
    await resumeBroker()
  }
  if (!answer) throw new Error('no answer')
  return answer
}

describe('a write that times out for its request', () => {
  it('queued with its shard; the consumer finds it landed and does not produce it twice', async () => {
    const topic = await freshTopic('late-queued')
    const vars = shardVars(3)
    // Connected first, so the frozen broker stalls the write itself.
    expect((await score(topic, ['warm'], vars)).line).toMatchObject({ outcome: 'accepted' })
    const answer = await frozenWhile(() => score(topic, ['late'], vars), 3_000)
    expect(answer.status).toBe(200)
    expect(answer.line).toMatchObject({
      outcome: 'queued',
      kafka_reason: 'timeout',
      queued: 1,
      queued_unknown_outcome: 1,
    })
    expect(answer.ms).toBeLessThan(6_000)
    // The shard's write lands; Miniflare's consumer gets the queued copy meanwhile (retried
    // while the shard reports it in flight, acknowledged once landed).
    const landed = await recordsOnBroker(topic, 2)
    await new Promise((r) => setTimeout(r, 4_000))
    const records = await readRecords(topic)
    expect(records.map(callIdOf).sort()).toEqual(['late', 'warm'])
    expect(landed).toHaveLength(2)
    // The queued job as the consumer receives it: the shard says it landed, nothing produced.
    const late = records.find((r) => callIdOf(r) === 'late') as BrokerRecord
    const { result, logs } = await consumeBatch(
      [
        {
          topic,
          key: late.key,
          value: late.value,
          headers: [{ key: 'weave-job-id', value: jobIdOf(late) }],
          shard: 'producer-0',
        },
      ],
      { vars: { ...vars, KAFKA_TOPIC: topic } },
    )
    expect(result.explicitAcks).toEqual(['m0'])
    expect(logs.find((l) => l.msg === 'queue_batch')).toMatchObject({ already_landed: 1 })
    await new Promise((r) => setTimeout(r, 1_000))
    expect(await readRecords(topic)).toHaveLength(2)
  })

  it('self-hosted (no queue): {} once the write lands within the answer budget, no 503', async () => {
    const topic = await freshTopic('late-no-queue')
    const vars = { ...shardVars(4), SCORE_QUEUE: undefined }
    expect((await score(topic, ['warm'], vars)).line).toMatchObject({ outcome: 'accepted' })
    const answer = await frozenWhile(() => score(topic, ['late'], vars), 3_000)
    expect(answer.status).toBe(200)
    expect(answer.line).toMatchObject({ outcome: 'accepted', kafka_late_acknowledged: 1 })
    expect(answer.ms).toBeLessThan(6_000)
    const records = await recordsOnBroker(topic, 2)
    expect(records.map(callIdOf).sort()).toEqual(['late', 'warm'])
  })
})
