/**
 * Faults of the broker's state rather than its availability: the topic missing (auto-creation is
 * off, as in production) and a hung broker (its process frozen: connections open, no answers).
 * In both the client gets `{}` within the produce deadline because the queue holds the jobs, and
 * the jobs are on Kafka once the broker can take them.
 */
import { describe, expect, it } from 'vitest'
import {
  createTopic,
  nativeVars,
  pauseBroker,
  recordsOnBroker,
  resumeBroker,
  score,
} from './helpers.ts'

const PRODUCE_TIMEOUT_MS = 2_000

describe('broker state faults under the native transport', () => {
  it('topic missing: {} with the jobs queued, and on Kafka once an operator creates the topic', async () => {
    const topic = `weave.score_calls.missing.${crypto.randomUUID()}`
    const answer = await score(topic, ['m-1'], {
      ...nativeVars(''),
      KAFKA_PRODUCE_TIMEOUT_MS: String(PRODUCE_TIMEOUT_MS),
    })
    expect(answer.status).toBe(200)
    expect(answer.body).toBe('{}')
    expect(answer.line).toMatchObject({ outcome: 'queued', queued: 1 })
    expect(answer.line.kafka_reason).toBeDefined()
    // The broker did not create it: auto-creation is off, so nothing can have landed yet.
    await createTopic('missing', { name: topic })
    const records = await recordsOnBroker(topic, 1)
    expect(records.map((r) => JSON.parse(r.value).call_ids)).toEqual([['m-1']])
  })

  it('hung broker: {} within the deadline with the jobs queued, each on Kafka at least once after', async () => {
    const topic = await createTopic('hung')
    await new Promise((r) => setTimeout(r, 1_500))
    // A first request opens nothing that outlives it, so the hang meets a fresh connection too.
    await pauseBroker()
    let answer: Awaited<ReturnType<typeof score>>
    try {
      answer = await score(topic, ['h-1', 'h-2'], {
        ...nativeVars(''),
        KAFKA_PRODUCE_TIMEOUT_MS: String(PRODUCE_TIMEOUT_MS),
      })
    } finally {
      await resumeBroker()
    }
    expect(answer.status).toBe(200)
    expect(answer.body).toBe('{}')
    expect(answer.line).toMatchObject({ outcome: 'queued', queued: 1 })
    // A producer already connected sent and got no answer (`timeout`: it may land); a fresh one
    // got no handshake answer and sent nothing (`unreachable`).
    expect(['timeout', 'unreachable']).toContain(answer.line.kafka_reason)
    // Bounded: the produce deadline, plus the queue send and the request's own work.
    expect(answer.ms).toBeLessThan(PRODUCE_TIMEOUT_MS + 3_000)
    const records = await recordsOnBroker(topic, 1)
    const ids = records.map((r) => r.headers.find(([k]) => k === 'weave-job-id')?.[1])
    // A produce the frozen broker read before it froze may land as well as the queued copy:
    // at least once, and the duplicate is visible by its job id.
    expect(new Set(ids).size).toBe(1)
    expect(records.length).toBeGreaterThanOrEqual(1)
    console.info(
      `hung broker: ${records.length} record(s) for 1 job (${records.length - 1} duplicate)`,
    )
  })
})
