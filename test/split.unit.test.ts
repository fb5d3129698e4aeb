import { describe, expect, it } from 'vitest'
import { v3Record, v3RequestSize } from '../src/kafka/confluent-v3.ts'
import { buildScoreJobs } from '../src/kafka/jobs.ts'
import { v2Body, v2RequestSize } from '../src/kafka/kafka-rest-v2.ts'
import {
  isThrottled,
  type JobProducer,
  type KafkaMessage,
  type ProduceFailureReason,
  type ProduceResult,
  produceWithPolicy,
} from '../src/kafka/producer.ts'
import {
  jsonStringLength,
  PARTS_IN_FLIGHT,
  type RequestSize,
  SizeLimitedProducer,
  splitBySize,
} from '../src/kafka/split.ts'
import { upstashRequestSize } from '../src/kafka/upstash.ts'

const utf8 = (s: string) => new TextEncoder().encode(s).length

const message = (value: string, key = 'acme/support-bot', id = 'job:0'): KafkaMessage => ({
  topic: 't',
  key,
  value,
  headers: [{ key: 'weave-job-id', value: id }],
})

// ASCII, JSON text with quotes, control escapes, non-ASCII (2-, 3- and 4-byte UTF-8).
const samples: KafkaMessage[] = [
  message('{"project_id":"acme/support-bot","call_ids":["a"],"scorer_refs":[],"wb_user_id":"u"}'),
  message('{"call_ids":["x\\u001fy","\\"q\\""]}', 'acme/é-bot', 'job:1'),
  message('{"call_ids":["日本語","😀"]}', 'ключ', 'job:2'),
  message('', '', 'job:3'),
]

/** The bytes each dialect really sends for these messages in one request. */
const encoded: Record<string, (ms: readonly KafkaMessage[]) => number> = {
  'confluent-v3': (ms) => utf8(ms.map(v3Record).join('\n')),
  'kafka-rest-v2': (ms) => utf8(v2Body(ms)),
  // What @upstash/kafka posts: JSON.stringify of the array, value moved last.
  upstash: (ms) => utf8(JSON.stringify(ms.map(({ value, ...rest }) => ({ ...rest, value })))),
}
const sizes: Record<string, RequestSize> = {
  'confluent-v3': v3RequestSize,
  'kafka-rest-v2': v2RequestSize,
  upstash: upstashRequestSize,
}

const total = (size: RequestSize, ms: readonly KafkaMessage[]) =>
  size.base + ms.reduce((n, m) => n + size.record(m), 0) + size.separator * (ms.length - 1)

describe.each(Object.keys(sizes))('%s request size', (dialect) => {
  const size = sizes[dialect] as RequestSize
  const real = encoded[dialect] as (ms: readonly KafkaMessage[]) => number

  it('is exactly the encoded body, for one record and for many, ASCII or not', () => {
    for (const m of samples) expect(total(size, [m])).toBe(real([m]))
    expect(total(size, samples)).toBe(real(samples))
  })

  it('splits so that no request is over the limit, and as few as possible', () => {
    const many = Array.from({ length: 40 }, (_, i) =>
      message(`{"call_ids":["${'é'.repeat(i * 7)}"]}`, 'k', `job:${i}`),
    )
    const limit = Math.floor(real(many) / 3)
    const groups = splitBySize(many, size, limit)
    expect(groups.flat()).toEqual(many.map((_, i) => i))
    for (const g of groups)
      expect(real(g.map((i) => many[i] as KafkaMessage))).toBeLessThanOrEqual(limit)
    // Greedy: each group but the last would be over the limit with the next message added.
    for (const [k, g] of groups.slice(0, -1).entries()) {
      const next = groups[k + 1]?.[0] as number
      expect(real([...g, next].map((i) => many[i] as KafkaMessage))).toBeGreaterThan(limit)
    }
  })
})

describe('jsonStringLength', () => {
  it.each([
    '',
    'plain',
    '{"a":["b","c\\"d"]}',
    'back\\slash \\u001f',
    'tab\there\u001f',
    'del\u007f',
    'é日本😀',
    'lone \ud800 surrogate',
    '\u2028\u2029',
  ])('is the UTF-8 length of JSON.stringify(%j)', (text) => {
    expect(jsonStringLength(text)).toBe(utf8(JSON.stringify(text)))
  })
})

describe('request size of built jobs', () => {
  // The builder declares a value's quotes when none of its strings needed an escape; the sizes
  // must stay exact whether it did or not.
  const tricky = [
    'plain-0192f3a4',
    'q"uote',
    'back\\slash',
    'ctl\u001f',
    'del\u007f',
    'é日本😀',
    'lone \ud800',
    '\u2028',
  ]
  const build = (callIds: string[], refs: string[], user = 'user-1') =>
    buildScoreJobs({ project_id: 'acme/support-bot', call_ids: callIds, scorer_refs: refs }, user, {
      topic: 't',
      projectBuckets: 1,
      jobId: 'j',
    })
  const ref = 'weave:///acme/support-bot/op/scorer:abc'

  it.each(Object.keys(sizes))('is exact in %s for plain ids and for each tricky string', (d) => {
    const size = sizes[d] as RequestSize
    const real = encoded[d] as (ms: readonly KafkaMessage[]) => number
    const plain = Array.from({ length: 250 }, (_, i) => `0192f3a4-${i}`)
    for (const ms of [
      build(plain, [ref]),
      build(plain, []),
      ...tricky.map((t) => build([...plain.slice(0, 120), t], [ref])),
      ...tricky.map((t) => build(plain.slice(0, 5), [ref, `${ref}/${t}`])),
      ...tricky.map((t) => build(plain.slice(0, 5), [ref], t)),
    ]) {
      expect(total(size, ms)).toBe(real(ms))
    }
  })
})

describe('splitBySize', () => {
  const size: RequestSize = { base: 10, separator: 1, record: (m) => m.value.length }
  const of = (...lengths: number[]) => lengths.map((n) => message('x'.repeat(n)))

  it('keeps everything in one request when it fits, the limit included', () => {
    expect(splitBySize(of(40, 49), size, 100)).toEqual([[0, 1]])
  })

  it('starts a new request at the first message that would go over', () => {
    expect(splitBySize(of(40, 50, 10, 80), size, 100)).toEqual([[0], [1, 2], [3]])
  })

  it('sends a message over the limit on its own rather than never', () => {
    expect(splitBySize(of(10, 500, 10), size, 100)).toEqual([[0], [1], [2]])
  })
})

/** An inner producer that records each request and answers from a script. */
function recording(answer: (sent: readonly KafkaMessage[], n: number) => ProduceResult) {
  const requests: string[][] = []
  const inner: JobProducer = {
    produce: async (sent) => {
      requests.push(sent.map((m) => m.headers?.[0]?.value ?? ''))
      return answer(sent, requests.length)
    },
  }
  return { inner, requests }
}

/**
 * An endpoint failure for the parts `sent`, none acknowledged; `detail` defaults to `HTTP <status>`.
 */
function failed(
  sent: readonly KafkaMessage[],
  reason: ProduceFailureReason,
  status: number,
  extra: { detail?: string; retryAfterSeconds?: number } = {},
): ProduceResult {
  return {
    ok: false,
    reason,
    status,
    detail: extra.detail ?? `HTTP ${status}`,
    acknowledged: sent.map(() => false),
    ...(extra.retryAfterSeconds === undefined
      ? {}
      : { retryAfterSeconds: extra.retryAfterSeconds }),
  }
}

describe('SizeLimitedProducer', () => {
  const size: RequestSize = { base: 0, separator: 0, record: (m) => m.value.length }
  const jobs = Array.from({ length: 5 }, (_, i) => message('x'.repeat(30_000), 'k', `job:${i}`))
  const deadline = { at: Date.now() + 10_000 }

  it('passes a request that fits through untouched, as one request', async () => {
    const { inner, requests } = recording(() => ({ ok: true }))
    const producer = new SizeLimitedProducer(inner, size, 1_000_000, PARTS_IN_FLIGHT)
    expect(await producer.produce(jobs, deadline)).toEqual({ ok: true })
    expect(requests).toHaveLength(1)
  })

  it('sends a larger one in parts under the limit, in order', async () => {
    const { inner, requests } = recording(() => ({ ok: true }))
    const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
    expect(await producer.produce(jobs, deadline)).toEqual({ ok: true })
    expect(requests).toEqual([['job:0', 'job:1'], ['job:2', 'job:3'], ['job:4']])
  })

  it(`keeps ${PARTS_IN_FLIGHT} parts in flight: a part does not wait for the one before it`, async () => {
    const answers: ((r: ProduceResult) => void)[] = []
    const requests: string[][] = []
    const inner: JobProducer = {
      produce: (sent) => {
        requests.push(sent.map((m) => m.headers?.[0]?.value ?? ''))
        return new Promise((resolve) => answers.push(resolve))
      },
    }
    const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
    const produced = producer.produce(jobs, deadline)
    await Promise.resolve()
    // Two parts sent, neither answered yet; the third waits for a free lane.
    expect(requests).toEqual([
      ['job:0', 'job:1'],
      ['job:2', 'job:3'],
    ])
    answers[1]?.({ ok: true })
    await new Promise((r) => setTimeout(r, 0))
    expect(requests).toHaveLength(3)
    answers[0]?.({ ok: true })
    answers[2]?.({ ok: true })
    expect(await produced).toEqual({ ok: true })
  })

  it('one part in flight (the queue consumer): a throttled endpoint is not sent the next part', async () => {
    const { inner, requests } = recording((sent, n) =>
      n === 1 ? { ok: true } : failed(sent, 'unavailable', 429),
    )
    const result = await new SizeLimitedProducer(inner, size, 65_000, 1).produce(jobs, deadline)
    expect(requests).toEqual([
      ['job:0', 'job:1'],
      ['job:2', 'job:3'],
    ])
    expect(result).toMatchObject({
      detail: 'request 2 of 3: HTTP 429',
      acknowledged: [true, true, false, false, false],
    })
  })

  it('starts no part after an endpoint failure; acknowledgements stay per message, in order', async () => {
    const { inner, requests } = recording((sent, n) =>
      n === 2
        ? { ok: true }
        : failed(sent, 'unavailable', 429, {
            detail: 'HTTP 429: Too Many Requests',
            retryAfterSeconds: 2,
          }),
    )
    const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
    const result = await producer.produce(jobs, deadline)
    // Parts 1 and 2 were in flight together; the throttled endpoint is not sent the third.
    expect(requests).toHaveLength(2)
    expect(result).toEqual({
      ok: false,
      reason: 'unavailable',
      status: 429,
      detail: 'request 1 of 3: HTTP 429: Too Many Requests',
      acknowledged: [false, false, true, true, false],
      retryAfterSeconds: 2,
    })
  })

  it('a part refused for itself (413) does not stop the others: only its jobs stay unacknowledged', async () => {
    // job:2 is over the limit on its own, so it travels alone and the endpoint refuses it.
    const oversized = jobs.map((m, i) => (i === 2 ? message('x'.repeat(70_000), 'k', 'job:2') : m))
    const { inner, requests } = recording((sent) =>
      sent.some((m) => m.value.length > 65_000)
        ? failed(sent, 'rejected', 413, { detail: 'HTTP 413: Payload Too Large' })
        : { ok: true },
    )
    const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
    const result = await producer.produce(oversized, deadline)
    expect(requests).toEqual([['job:0', 'job:1'], ['job:2'], ['job:3', 'job:4']])
    expect(result).toEqual({
      ok: false,
      reason: 'rejected',
      status: 413,
      detail: 'request 2 of 3: HTTP 413: Payload Too Large',
      acknowledged: [true, true, false, true, true],
    })
  })

  it('an endpoint failure is the one reported over an earlier refusal, and ends the produce', async () => {
    const { inner, requests } = recording((sent, n) =>
      n === 1
        ? failed(sent, 'rejected', 422)
        : n === 2
          ? failed(sent, 'unavailable', 429)
          : { ok: true },
    )
    // One job per part: five parts.
    const producer = new SizeLimitedProducer(inner, size, 35_000, PARTS_IN_FLIGHT)
    const result = await producer.produce(jobs, deadline)
    // The refusal freed its lane for part 3 before part 2's throttle came back; nothing after.
    expect(requests).toEqual([['job:0'], ['job:1'], ['job:2']])
    expect(result).toMatchObject({
      reason: 'unavailable',
      status: 429,
      detail: 'request 2 of 5: HTTP 429',
    })
    expect(result.ok ? [] : result.acknowledged).toEqual([false, false, true, false, false])
  })

  describe('two parts failing side by side: the failure the policy must act on is reported', () => {
    // Four jobs of 30,000 bytes: two parts, both in flight at once.
    const four = jobs.slice(0, 4)

    it("a throttle over an earlier part's outage: not retried into, the longest wait kept", async () => {
      const { inner, requests } = recording((sent, n) =>
        n === 1
          ? failed(sent, 'unavailable', 500)
          : failed(sent, 'unavailable', 429, { retryAfterSeconds: 30 }),
      )
      const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
      const { result, attempts } = await produceWithPolicy(producer, four, {
        timeoutMs: 5000,
        retries: 1,
        backoffMs: 1,
      })
      expect(isThrottled(result)).toBe(true)
      expect(result).toMatchObject({ status: 429, retryAfterSeconds: 30 })
      expect(attempts).toBe(1)
      expect(requests).toHaveLength(2)
    })

    it("refused credentials over an earlier part's outage", async () => {
      const { inner } = recording((sent, n) =>
        n === 1 ? failed(sent, 'timeout', 0) : failed(sent, 'unauthorized', 401),
      )
      const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
      expect(await producer.produce(four, deadline)).toMatchObject({
        reason: 'unauthorized',
        detail: 'request 2 of 2: HTTP 401',
      })
    })
  })

  it("keeps a part's own partial acknowledgement", async () => {
    const { inner } = recording((sent, n) =>
      n === 1
        ? {
            ok: false,
            reason: 'unavailable',
            detail: 'one record failed',
            acknowledged: sent.map((_, i) => i === 0),
          }
        : { ok: true },
    )
    const producer = new SizeLimitedProducer(inner, size, 65_000, PARTS_IN_FLIGHT)
    const result = await producer.produce(jobs, deadline)
    // Part 2 was in flight beside part 1 and landed; part 3 was never sent.
    expect(result.ok ? [] : result.acknowledged).toEqual([true, false, true, true, false])
  })
})
