import { env } from 'cloudflare:workers'
import {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSRequestTimeoutError,
  KafkaJSSASLAuthenticationError,
  Partitioners,
} from 'kafkajs'
// kafkajs's own hash, the one its DefaultPartitioner places keys with (no types: internal module).
// @ts-expect-error untyped internal module of kafkajs
import kafkajsMurmur2 from 'kafkajs/src/producer/partitioners/default/murmur2.js'
import { describe, expect, it } from 'vitest'
import { type Config, loadConfig } from '../src/config.ts'
import { breakerKey } from '../src/delivery/deliver.ts'
import {
  NativeProducer,
  nativeFailureReason,
  nativeRequestSize,
  seedOrder,
} from '../src/kafka/native.ts'
import type { KafkaMessage, ProduceResult } from '../src/kafka/producer.ts'
import {
  type ShardAnswer,
  ShardedProducer,
  type ShardProduce,
} from '../src/kafka/producer-shards.ts'
import { producerFor } from '../src/kafka/select.ts'
import { splitBySize } from '../src/kafka/split.ts'
import { KAFKA_MURMUR2_VECTORS } from './fixtures/murmur2-vectors.ts'
import { javaPartition } from './kafka/murmur2.ts'

const base = env as unknown as Record<string, string>
const load = (over: Record<string, string | null | undefined>) =>
  loadConfig({ ...base, ...over } as unknown as Env)
const problems = (over: Record<string, string | null | undefined>) => {
  const result = load(over)
  return result.ok ? [] : result.problems
}
// Without the producer shards' binding (tested on its own below), the settings are plain data.
const NATIVE = {
  KAFKA_TRANSPORT: 'native',
  KAFKA_BROKERS: 'b1.example.com:9093',
  KAFKA_PRODUCERS: undefined,
}

describe('native transport configuration', () => {
  it('rest is the default transport, also for an empty KAFKA_TRANSPORT', () => {
    for (const transport of [undefined, '', 'rest']) {
      const result = load({ KAFKA_TRANSPORT: transport, UPSTASH_KAFKA_REST_URL: 'https://u.test' })
      expect(result.ok && result.config.kafka.dialect).toBe('upstash')
    }
  })

  it('native: brokers in order, TLS on by default, no SASL without a mechanism', () => {
    const result = load({
      ...NATIVE,
      KAFKA_BROKERS: ' b1.example.com:9093, 10.0.0.2:9094 ,[::1]:9092,',
      KAFKA_TLS: undefined,
      KAFKA_SASL_MECHANISM: undefined,
      // The REST settings are not needed, not even checked.
      UPSTASH_KAFKA_REST_URL: '',
      KAFKA_REST_DIALECT: 'nonsense',
    })
    expect(result.ok && result.config.kafka).toEqual({
      dialect: 'native',
      brokers: ['b1.example.com:9093', '10.0.0.2:9094', '[::1]:9092'],
      tls: true,
    })
    expect(load({ ...NATIVE, KAFKA_TLS: '' }).ok && true).toBe(true)
  })

  it('native without a mechanism needs no SASL secrets, unset as on Cloudflare or null as under workerd', () => {
    // `npm start` binds every secret with workerd's fromEnvironment: an unset one is null there.
    for (const unset of [undefined, null, '']) {
      const result = load({
        ...NATIVE,
        KAFKA_TLS: 'false',
        KAFKA_SASL_MECHANISM: '',
        KAFKA_USERNAME: unset,
        KAFKA_PASSWORD: unset,
      })
      expect(result.ok ? result.config.kafka : result.problems).toEqual({
        dialect: 'native',
        brokers: ['b1.example.com:9093'],
        tls: false,
      })
    }
    // With a mechanism, a null secret is as missing as an unset one.
    expect(
      problems({
        ...NATIVE,
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_USERNAME: null,
        KAFKA_PASSWORD: 'p',
      }),
    ).toEqual(['KAFKA_USERNAME: required when KAFKA_SASL_MECHANISM is set'])
  })

  it('native: each SASL mechanism with the secrets', () => {
    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
      const result = load({
        ...NATIVE,
        KAFKA_TLS: 'false',
        KAFKA_SASL_MECHANISM: mechanism,
        KAFKA_USERNAME: 'u',
        KAFKA_PASSWORD: 'p',
      })
      expect(result.ok && result.config.kafka).toEqual({
        dialect: 'native',
        brokers: ['b1.example.com:9093'],
        tls: false,
        sasl: { mechanism, username: 'u', password: 'p' },
      })
    }
  })

  it('a misconfiguration is loud and names the setting, never a secret', () => {
    expect(problems({ KAFKA_TRANSPORT: 'tcp' })).toEqual([
      'KAFKA_TRANSPORT: must be one of rest, native',
    ])
    expect(problems({ ...NATIVE, KAFKA_BROKERS: '' })).toEqual([
      'KAFKA_BROKERS: a comma-separated host:port list is required when KAFKA_TRANSPORT is native',
    ])
    expect(problems({ ...NATIVE, KAFKA_BROKERS: ' , ' })).toHaveLength(1)
    for (const broker of ['b1.example.com', 'b1:0', 'b1:65536', 'http://b1:9092', 'b1:9092/x']) {
      expect(problems({ ...NATIVE, KAFKA_BROKERS: `ok:1,${broker}` })).toEqual([
        'KAFKA_BROKERS.1: every broker must be host:port',
      ])
    }
    expect(problems({ ...NATIVE, KAFKA_TLS: 'ture' })).toEqual(['KAFKA_TLS: must be true or false'])
    expect(problems({ ...NATIVE, KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256' })).toEqual([
      'KAFKA_SASL_MECHANISM: must be one of plain, scram-sha-256, scram-sha-512, or empty for none',
    ])
    const missing = problems({
      ...NATIVE,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_USERNAME: '',
      KAFKA_PASSWORD: 'top-secret-value',
    })
    expect(missing).toEqual(['KAFKA_USERNAME: required when KAFKA_SASL_MECHANISM is set'])
    expect(JSON.stringify(missing)).not.toContain('top-secret-value')
  })

  it('the breaker key names the native brokers, distinct from every REST endpoint', () => {
    const a = load({ ...NATIVE, KAFKA_TOPIC: 'x' })
    const b = load({ ...NATIVE, KAFKA_BROKERS: 'b2.example.com:9093', KAFKA_TOPIC: 'x' })
    const rest = load({ UPSTASH_KAFKA_REST_URL: 'https://b1.example.com:9093', KAFKA_TOPIC: 'x' })
    const keys = [a, b, rest].map((r) => breakerKey((r.ok && r.config) as Config))
    expect(keys[0]).toBe('native tls://b1.example.com:9093 x')
    expect(new Set(keys).size).toBe(3)
  })
})

describe('kafkajs errors mapped onto the port', () => {
  const protocol = (type: string, code: number, retriable = false) =>
    new KafkaJSProtocolError({ type, code, retriable, message: type } as unknown as Error)

  it.each([
    [
      // Typed without arguments, constructed with a message by kafkajs itself.
      new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(
        'SASL PLAIN failed',
      ),
      'unauthorized',
    ],
    [protocol('MESSAGE_TOO_LARGE', 10), 'rejected'],
    [protocol('RECORD_LIST_TOO_LARGE', 18), 'rejected'],
    [protocol('INVALID_RECORD', 87), 'rejected'],
    [protocol('TOPIC_AUTHORIZATION_FAILED', 29), 'unauthorized'],
    [protocol('SASL_AUTHENTICATION_FAILED', 58), 'unauthorized'],
    [protocol('NOT_LEADER_FOR_PARTITION', 6, true), 'unavailable'],
    [protocol('UNKNOWN_TOPIC_OR_PARTITION', 3, true), 'unavailable'],
    [protocol('NOT_ENOUGH_REPLICAS', 19, true), 'unavailable'],
    [new KafkaJSConnectionError('Connection error: ECONNREFUSED'), 'unreachable'],
    [new KafkaJSConnectionError('Connection timeout'), 'unreachable'],
    [new KafkaJSRequestTimeoutError('Request Produce(key: 0, version: 7) timed out'), 'timeout'],
    [new Error('something else'), 'unavailable'],
  ])('%s is %s', (error, reason) => {
    expect(nativeFailureReason(error).reason).toBe(reason)
  })

  it('looks through kafkajs wrappers to the error that caused them', () => {
    const wrapped = new KafkaJSNumberOfRetriesExceeded(protocol('MESSAGE_TOO_LARGE', 10), {
      retryCount: 0,
      retryTime: 0,
    })
    const { reason, detail } = nativeFailureReason(wrapped)
    expect(reason).toBe('rejected')
    expect(detail).toContain('10 (MESSAGE_TOO_LARGE)')
  })
})

describe("kafkajs's placement is the Java client's", () => {
  it("murmur2 matches Kafka's UtilsTest vectors", () => {
    for (const [key, hash] of KAFKA_MURMUR2_VECTORS) {
      expect((kafkajsMurmur2 as (k: string) => number)(key)).toBe(hash)
    }
  })

  it('DefaultPartitioner places keys as the Java client does', () => {
    const partition = Partitioners.DefaultPartitioner()
    for (const partitions of [1, 3, 6, 12]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
        partitionId: i,
        leader: 1,
        partitionErrorCode: 0,
        replicas: [1],
        isr: [1],
      }))
      for (const key of ['acme/support-bot', 'acme/support-bot:3', 'dev/playground', 'k-é', '21']) {
        expect(partition({ topic: 't', partitionMetadata, message: { key, value: '' } })).toBe(
          javaPartition(key, partitions),
        )
      }
    }
  })
})

describe('native produce calls under the batch limit', () => {
  it('bounds a record above its bytes, headers included', () => {
    const m = { topic: 't', key: 'k', value: 'v'.repeat(1000), headers: [{ key: 'h', value: 'x' }] }
    expect(nativeRequestSize.record(m)).toBeGreaterThanOrEqual(1000 + 1 + 2)
    // 100 maximal jobs (about 10 KB each) of one request do not fit one 1 MB batch: split.
    const big = { topic: 't', key: 'k', value: 'v'.repeat(10_500) }
    const groups = splitBySize(Array(100).fill(big), nativeRequestSize, 1_000_000)
    expect(groups.length).toBe(2)
  })
})

describe('bootstrap seeds', () => {
  it('every order of the seeds comes up: no listed broker carries every new connection', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) seen.add(seedOrder(['a:1', 'b:2', 'c:3']).join(','))
    expect(seen.size).toBe(6)
  })
})

describe('producer shards for direct delivery', () => {
  const WITH_SHARDS = { ...NATIVE, KAFKA_PRODUCERS: base.KAFKA_PRODUCERS }

  it('the binding brings KAFKA_PRODUCER_SHARDS shards; a bad count is loud', () => {
    const result = load(WITH_SHARDS)
    expect(
      result.ok && result.config.kafka.dialect === 'native' && result.config.kafka.shards,
    ).toEqual({
      namespace: base.KAFKA_PRODUCERS,
      count: 2,
      lingerMs: 2,
      idleSeconds: 60,
      lateAckWaitMs: 3000,
    })
    const three = load({ ...WITH_SHARDS, KAFKA_PRODUCER_SHARDS: '3' })
    expect(
      three.ok && three.config.kafka.dialect === 'native' && three.config.kafka.shards,
    ).toMatchObject({ count: 3 })
    for (const bad of ['0', '', '1.5', '1001']) {
      expect(problems({ ...WITH_SHARDS, KAFKA_PRODUCER_SHARDS: bad })).toEqual([
        'KAFKA_PRODUCER_SHARDS: must be an integer from 1 to 1000',
      ])
    }
  })

  it('requests go through the shards, the queue consumer connects per batch', () => {
    const withShards = load(WITH_SHARDS)
    const without = load(NATIVE)
    if (!withShards.ok || !without.ok) throw new Error('configuration expected to load')
    expect(producerFor(withShards.config, 'request')).toBeInstanceOf(ShardedProducer)
    expect(producerFor(withShards.config, 'queue')).toBeInstanceOf(NativeProducer)
    expect(producerFor(without.config, 'request')).toBeInstanceOf(NativeProducer)
  })

  const MESSAGES: KafkaMessage[] = [
    { topic: 't', key: 'k', value: '{}' },
    { topic: 't', key: 'k', value: '[]' },
  ]
  /** A namespace whose objects answer with `answer`, recording which shard each call reached. */
  const fakeShards = (count: number, answer: (call: ShardProduce) => Promise<ShardAnswer>) => {
    const reached: string[] = []
    const calls: ShardProduce[] = []
    const namespace = {
      idFromName: (name: string) => name,
      get: (id: string) => ({
        produce: (call: ShardProduce) => {
          reached.push(id)
          calls.push(call)
          return answer(call)
        },
      }),
    } as unknown as Env['KAFKA_PRODUCERS']
    return {
      shards: { namespace, count, lingerMs: 2, idleSeconds: 60, lateAckWaitMs: 3000 },
      reached,
      calls,
    }
  }
  const CONNECTION = { brokers: ['b1:9093'], tls: true, sasl: undefined }
  const OPTIONS = { maxBytes: 1000 }

  it('spreads calls over every shard and hands each the whole call', async () => {
    const fake = fakeShards(4, async () => true)
    const producer = new ShardedProducer(fake.shards, CONNECTION, OPTIONS)
    const deadline = { at: Date.now() + 1000 }
    for (let i = 0; i < 200; i++)
      expect(await producer.produce(MESSAGES, deadline)).toEqual({ ok: true })
    expect(new Set(fake.reached)).toEqual(
      new Set(['producer-0', 'producer-1', 'producer-2', 'producer-3']),
    )
    expect(fake.calls[0]).toEqual({
      key: JSON.stringify(CONNECTION),
      connection: CONNECTION,
      messages: MESSAGES,
      deadlineAt: deadline.at,
      maxBytes: 1000,
      lingerMs: 2,
      idleMs: 60_000,
      compact: true,
    })
    expect(await producer.produce([], deadline)).toEqual({ ok: true })
    expect(fake.calls).toHaveLength(200)
  })

  it('a failed RPC is unavailable (retried, then queued), a silent shard a timeout', async () => {
    const broken = new ShardedProducer(
      fakeShards(2, () => Promise.reject(new Error('Durable Object reset'))).shards,
      CONNECTION,
      OPTIONS,
    )
    expect(await broken.produce(MESSAGES, { at: Date.now() + 1000 })).toMatchObject({
      ok: false,
      reason: 'unavailable',
      detail: expect.stringMatching(/^producer shard [01]: Error: Durable Object reset$/),
      acknowledged: [false, false],
    })
    const silent = new ShardedProducer(
      fakeShards(1, () => new Promise<ProduceResult>(() => {})).shards,
      CONNECTION,
      OPTIONS,
    )
    const started = Date.now()
    // The shard still holds the write: the answer says which one, to ask it later.
    expect(await silent.produce(MESSAGES, { at: started + 50 })).toMatchObject({
      ok: false,
      reason: 'timeout',
      acknowledged: [false, false],
      heldBy: 'producer-0',
    })
    expect(Date.now() - started).toBeLessThan(1000)
    expect(await silent.produce(MESSAGES, { at: Date.now() - 1 })).toMatchObject({
      reason: 'timeout',
    })
  })

  it('reads a compact `true` and the whole result object (a shard from before) alike', async () => {
    const deadline = { at: Date.now() + 1000 }
    for (const answer of [true, { ok: true }] as const) {
      const producer = new ShardedProducer(
        fakeShards(1, async () => answer).shards,
        CONNECTION,
        OPTIONS,
      )
      expect(await producer.produce(MESSAGES, deadline)).toEqual({ ok: true })
    }
  })

  it("passes a shard's partial answer through unchanged", async () => {
    const partial: ProduceResult = {
      ok: false,
      reason: 'rejected',
      detail: 'Kafka error MESSAGE_TOO_LARGE',
      acknowledged: [true, false],
    }
    const producer = new ShardedProducer(
      fakeShards(1, async () => partial).shards,
      CONNECTION,
      OPTIONS,
    )
    expect(await producer.produce(MESSAGES, { at: Date.now() + 1000 })).toEqual(partial)
  })
})
