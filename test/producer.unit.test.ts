import { describe, expect, it } from 'vitest'
import {
  type JobProducer,
  type KafkaMessage,
  type ProduceResult,
  produceWithPolicy,
} from '../src/kafka/producer.ts'

const messages: KafkaMessage[] = ['a', 'b', 'c'].map((v) => ({ topic: 't', key: 'k', value: v }))

/** A producer that answers from a script and records what each attempt sent. */
function scripted(...answers: ((sent: readonly KafkaMessage[]) => ProduceResult)[]) {
  const attempts: string[][] = []
  const producer: JobProducer = {
    produce: async (sent) => {
      attempts.push(sent.map((m) => m.value))
      const next = answers[Math.min(attempts.length - 1, answers.length - 1)]
      if (!next) throw new Error('no scripted answer')
      return next(sent)
    },
  }
  return { producer, attempts }
}

const fail =
  (
    reason: Extract<ProduceResult, { ok: false }>['reason'],
    acked: (v: string) => boolean = () => false,
  ) =>
  (sent: readonly KafkaMessage[]): ProduceResult => ({
    ok: false,
    reason,
    detail: reason,
    acknowledged: sent.map((m) => acked(m.value)),
  })

const policy = { timeoutMs: 1000, retries: 2, backoffMs: 1 }

describe('produceWithPolicy', () => {
  it('succeeds on the first acknowledgement', async () => {
    const { producer, attempts } = scripted(() => ({ ok: true }))
    expect(await produceWithPolicy(producer, messages, policy)).toEqual({
      result: { ok: true },
      attempts: 1,
    })
    expect(attempts).toEqual([['a', 'b', 'c']])
  })

  it('re-sends only what was not acknowledged', async () => {
    const { producer, attempts } = scripted(
      fail('unavailable', (v) => v !== 'b'),
      () => ({ ok: true }),
    )
    const { result } = await produceWithPolicy(producer, messages, policy)
    expect(result.ok).toBe(true)
    expect(attempts).toEqual([['a', 'b', 'c'], ['b']])
  })

  it('never retries a rejected credential or a rejected request', async () => {
    for (const reason of ['unauthorized', 'rejected'] as const) {
      const { producer, attempts } = scripted(fail(reason))
      const { result } = await produceWithPolicy(producer, messages, policy)
      expect(result).toMatchObject({ ok: false, reason })
      expect(attempts).toHaveLength(1)
    }
  })

  it('stops after the configured retries and reports what was acknowledged', async () => {
    const { producer, attempts } = scripted(
      fail('unreachable', (v) => v === 'a'),
      fail('timeout'),
    )
    const { result } = await produceWithPolicy(producer, messages, policy)
    expect(attempts).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
      ['b', 'c'],
    ])
    expect(result).toMatchObject({
      ok: false,
      reason: 'timeout',
      acknowledged: [true, false, false],
    })
  })

  it('does not start an attempt the budget cannot cover', async () => {
    let clock = 0
    const { producer, attempts } = scripted((sent) => {
      clock += 900
      return fail('unavailable')(sent)
    })
    await produceWithPolicy(
      producer,
      messages,
      { timeoutMs: 1000, retries: 5, backoffMs: 200 },
      () => clock,
    )
    expect(attempts).toHaveLength(1)
  })

  it('honours an upstream Retry-After only when the budget allows it', async () => {
    const { producer, attempts } = scripted((sent) => ({
      ...fail('unavailable')(sent),
      retryAfterSeconds: 30,
    }))
    await produceWithPolicy(producer, messages, policy)
    expect(attempts).toHaveLength(1)
  })

  it.each([
    ['a 429', 429, undefined],
    ['a 429 with Retry-After', 429, 1],
    ['a 503 with Retry-After', 503, 1],
  ])('never retries a throttle answer (%s) inside the request', async (_, status, retryAfter) => {
    const { producer, attempts } = scripted((sent) => ({
      ...fail('unavailable')(sent),
      status,
      ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
    }))
    const { result } = await produceWithPolicy(producer, messages, { ...policy, timeoutMs: 5000 })
    expect(attempts).toHaveLength(1)
    expect(result).toMatchObject({ ok: false, status })
  })

  it('still retries a 503 without Retry-After', async () => {
    const { producer, attempts } = scripted(
      (sent) => ({ ...fail('unavailable')(sent), status: 503 }),
      () => ({ ok: true }),
    )
    expect((await produceWithPolicy(producer, messages, policy)).result.ok).toBe(true)
    expect(attempts).toHaveLength(2)
  })
})
