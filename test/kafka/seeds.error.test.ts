/**
 * Every bootstrap broker counts: with a dead broker listed first (one that refuses, or one that
 * accepts and never answers), the producer shards, the per-request producer and the queue
 * consumer connect through the live one within the produce budget, without the queue.
 */
import { describe, expect, it } from 'vitest'
import { seedOrder } from '../../src/kafka/native.ts'
import { consumeBatch, queuedJob } from '../helpers.ts'
import { freshTopic, kafka, nativeVars, readRecords, score } from './helpers.ts'

const DEAD = [
  ['refused', kafka.refusedBroker],
  ['silent', kafka.silentBroker],
] as const

/** The per-seed connect limit (src/kafka/native.ts) and what the live seed needs on loopback. */
const ONE_CONNECT_TIMEOUT_MS = 1_500

describe.each(DEAD)('a %s broker listed first', (label, dead) => {
  // The live broker twice, under a name no other test uses, so every producer here is new.
  const brokers = (n: number) =>
    `${dead},${kafka.bootstrap},${Array(n).fill(kafka.bootstrap).join(',')}`

  it('producer shards: new producers connect through the next seed, nothing queued', async () => {
    const topic = await freshTopic(`seeds-shards-${label}`)
    // Three new producers (three connection settings), each at most one connect timeout late.
    for (let n = 1; n <= 3; n++) {
      const answer = await score(topic, [`${label}-s${n}`], {
        ...nativeVars(''),
        KAFKA_BROKERS: brokers(n),
        KAFKA_PRODUCER_SHARDS: '1',
      })
      expect(answer.status).toBe(200)
      expect(answer.line).toMatchObject({ outcome: 'accepted', kafka_attempts: 1 })
      expect(answer.ms).toBeLessThan(ONE_CONNECT_TIMEOUT_MS + 1_000)
    }
    expect(await readRecords(topic)).toHaveLength(3)
  })

  it('the per-request producer connects through the next seed, nothing queued', async () => {
    const topic = await freshTopic(`seeds-request-${label}`)
    for (let n = 1; n <= 2; n++) {
      const answer = await score(topic, [`${label}-r${n}`], {
        ...nativeVars(''),
        KAFKA_BROKERS: brokers(n),
        KAFKA_PRODUCERS: undefined,
      })
      expect(answer.status).toBe(200)
      expect(answer.line).toMatchObject({ outcome: 'accepted', kafka_attempts: 1 })
      expect(answer.ms).toBeLessThan(ONE_CONNECT_TIMEOUT_MS + 1_000)
    }
    expect(await readRecords(topic)).toHaveLength(2)
  })

  it('the queue consumer delivers through the next seed', async () => {
    const topic = await freshTopic(`seeds-queue-${label}`)
    const { result, logs } = await consumeBatch([queuedJob(topic, 1), queuedJob(topic, 2)], {
      vars: { ...nativeVars(''), KAFKA_TOPIC: topic, KAFKA_BROKERS: brokers(1) },
    })
    expect(result.explicitAcks.sort()).toEqual(['m0', 'm1'])
    expect(logs.find((l) => l.msg === 'queue_batch')).toMatchObject({ acknowledged: 2 })
    expect(await readRecords(topic)).toHaveLength(2)
  })
})

it('seeds that failed lately go last for the next new producers', async () => {
  const topic = await freshTopic('seeds-dead')
  // Only dead seeds, so both are tried (no queue: a 503, nothing left for the consumer).
  const answer = await score(topic, ['dead'], {
    ...nativeVars(''),
    KAFKA_BROKERS: `${kafka.refusedBroker},${kafka.silentBroker}`,
    KAFKA_PRODUCERS: undefined,
    KAFKA_PRODUCE_RETRIES: '0',
    // Time for both: the silent seed takes its whole share (1.5 s at most) on a busy machine too.
    KAFKA_PRODUCE_TIMEOUT_MS: '5000',
    SCORE_QUEUE: undefined,
  })
  expect(answer).toMatchObject({ status: 503, line: { kafka_reason: 'unreachable' } })
  for (let i = 0; i < 20; i++) {
    expect(seedOrder([kafka.refusedBroker, kafka.silentBroker, kafka.bootstrap])[0]).toBe(
      kafka.bootstrap,
    )
  }
})
