import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { loadQueueConfig, type QueueConfig } from '../src/queue/config.ts'
import { retryDelaySeconds } from '../src/queue/consumer.ts'
import { consumeBatch, delivered, jobIdOf, queuedJob, sinkFault, uniqueTopic } from './helpers.ts'

/** A queue binding that records what it was given. */
function recordingQueue() {
  const sent: unknown[] = []
  return {
    sent,
    send: async (body: unknown) => {
      sent.push(body)
    },
    sendBatch: async (batch: { body: unknown }[]) => {
      sent.push(...batch.map((m) => m.body))
    },
  }
}

describe('the fallback queue consumer', () => {
  it('produces every job and acknowledges it once Kafka did', async () => {
    const topic = uniqueTopic('consumer')
    const { result } = await consumeBatch([queuedJob(topic, 1), queuedJob(topic, 2)])
    expect(result.explicitAcks.sort()).toEqual(['m0', 'm1'])
    expect(result.retryMessages).toEqual([])
    const messages = await delivered(topic, 2)
    expect(messages.map(jobIdOf)).toEqual(['job-1', 'job-2'])
    expect(messages[0]?.value).toBe(queuedJob(topic, 1).value)
  })

  it('redelivers failed jobs with backoff, and only those', async () => {
    const topic = uniqueTopic('consumer-partial')
    await sinkFault(topic, { kind: 'partial', failIndexes: [0], times: 1 })
    const { result, delays } = await consumeBatch([queuedJob(topic, 1), queuedJob(topic, 2)], {
      attempts: 3,
    })
    expect(result.explicitAcks).toEqual(['m1'])
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    // Base 1 s in the test bindings, third attempt: 1 * 2^2.
    expect(delays).toEqual({ m0: 4 })
  })

  it('treats a rejected credential as an alarm and keeps the jobs', async () => {
    const topic = uniqueTopic('consumer-401')
    await sinkFault(topic, { kind: 'status', status: 401, times: 1 })
    const { result, logs, delays } = await consumeBatch([queuedJob(topic, 1)])
    expect(result.explicitAcks).toEqual([])
    expect(delays).toEqual({ m0: 1 })
    expect(logs.find((l) => l.msg === 'queue_batch')).toMatchObject({
      level: 'alarm',
      kafka_reason: 'unauthorized',
      retried: 1,
    })
  })

  it('dead-letters a job after QUEUE_MAX_ATTEMPTS, loudly and with a metric', async () => {
    const topic = uniqueTopic('consumer-dlq')
    await sinkFault(topic, { kind: 'status', status: 500 })
    const dlq = recordingQueue()
    const points: unknown[] = []
    const { result, logs } = await consumeBatch([queuedJob(topic, 7)], {
      attempts: 32,
      vars: { DEAD_LETTER_QUEUE: dlq, METRICS: { writeDataPoint: (p: unknown) => points.push(p) } },
    })
    expect(result.explicitAcks).toEqual(['m0'])
    expect(dlq.sent).toEqual([queuedJob(topic, 7)])
    expect(logs.find((l) => l.msg === 'job_dead_lettered')).toMatchObject({
      level: 'error',
      job_id: 'job-7',
      topic,
      attempts: 32,
    })
    expect(points).toEqual([
      {
        indexes: ['job_dead_lettered'],
        blobs: ['job_dead_lettered', topic, expect.stringContaining('unavailable')],
        doubles: [1],
      },
    ])
  })

  it('never drops a job the dead-letter queue refuses: it stays on the main queue', async () => {
    const topic = uniqueTopic('consumer-dlq-down')
    await sinkFault(topic, { kind: 'status', status: 500 })
    const refusing = { send: () => Promise.reject(new Error('down')) }
    const { result, logs, delays } = await consumeBatch([queuedJob(topic, 1)], {
      attempts: 40,
      vars: { DEAD_LETTER_QUEUE: refusing },
    })
    expect(result.explicitAcks).toEqual([])
    expect(delays).toEqual({ m0: 300 })
    expect(logs.some((l) => l.msg === 'dead_letter_failed' && l.level === 'alarm')).toBe(true)
  })

  it('dead-letters a malformed message at once', async () => {
    const dlq = recordingQueue()
    const { result } = await consumeBatch([{ nope: true }], { vars: { DEAD_LETTER_QUEUE: dlq } })
    expect(result.explicitAcks).toEqual(['m0'])
    expect(dlq.sent).toEqual([{ nope: true }])
  })

  it('replays a dead-letter batch into the main queue when attached to the DLQ', async () => {
    const main = recordingQueue()
    const bodies = [queuedJob('t', 1), queuedJob('t', 2)]
    const { result } = await consumeBatch(bodies, {
      queue: 'weave-score-calls-dlq',
      vars: { SCORE_QUEUE: main },
    })
    expect(result.ackAll).toBe(true)
    expect(main.sent).toEqual(bodies)
  })

  it('retries the whole batch while misconfigured, never dropping it', async () => {
    const { result, logs, retryAll } = await consumeBatch([queuedJob('t', 1)], {
      vars: { UPSTASH_KAFKA_REST_URL: '' },
    })
    expect(result.retryBatch).toMatchObject({ retry: true })
    expect(retryAll).toHaveBeenCalledWith({ delaySeconds: 60 })
    expect(logs[0]).toMatchObject({ level: 'alarm', msg: 'queue_consumer_misconfigured' })
  })
})

describe('retryDelaySeconds', () => {
  const config = loadQueueConfig({ ...env, QUEUE_RETRY_BASE_SECONDS: '5' } as Env) as QueueConfig
  it('doubles from the base up to the cap, never below Retry-After', () => {
    expect([1, 2, 3, 6, 7, 30].map((a) => retryDelaySeconds(a, config))).toEqual([
      5, 10, 20, 160, 300, 300,
    ])
    expect(retryDelaySeconds(1, config, 42)).toBe(42)
  })
})
