/**
 * kafkajs 2.2.4 as patched at install (patches/, applied by `npm ci`'s postinstall): the defects
 * of the unmaintained client that the project carries a fix for.
 */
// @ts-expect-error untyped internal module of kafkajs
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js'
// @ts-expect-error untyped internal module of kafkajs
import murmur2 from 'kafkajs/src/producer/partitioners/default/murmur2.js'
// @ts-expect-error untyped internal module of kafkajs
import crc32C from 'kafkajs/src/protocol/recordBatch/crc32C/index.js'
// @ts-expect-error untyped internal module of kafkajs
import Record from 'kafkajs/src/protocol/recordBatch/record/v0/index.js'
// @ts-expect-error untyped internal module of kafkajs
import encodeRequest from 'kafkajs/src/protocol/request.js'
// @ts-expect-error untyped internal module of kafkajs
import produceV7 from 'kafkajs/src/protocol/requests/produce/v7/request.js'
import { describe, expect, it, vi } from 'vitest'
import { murmur2 as javaMurmur2 } from './kafka/murmur2.ts'

const quiet = { debug() {}, info() {}, warn() {}, error() {}, namespace: () => quiet }

describe('kafkajs patched at install', () => {
  it('an idle request queue arms no timer (no zero-delay spin with nothing pending)', async () => {
    const timeout = vi.spyOn(globalThis, 'setTimeout')
    const queue = new RequestQueue({
      maxInFlightRequests: null,
      requestTimeout: 30_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'b:9092',
      logger: quiet,
      isConnected: () => true,
    })
    // What a connection does after each answer: check the queue, with nothing waiting in it.
    queue.checkPendingRequests()
    await new Promise((r) => setImmediate(r))
    const armed = timeout.mock.calls.length
    timeout.mockRestore()
    queue.destroy()
    // Unpatched, every check re-armed a zero-delay timer, for ever.
    expect(armed).toBe(0)
  })
})

// The produce path's encoders, patched for speed in workerd (whose Buffer is a JS polyfill):
// the bytes must stay exactly what unpatched kafkajs 2.2.4 writes.

type Message = { key: string | null; value: string | null; headers: object; timestamp?: number }

/** A produce request with what the encoders must get right: UTF-8, headers, nulls, timestamps. */
function produceRequest(): { topicData: unknown } {
  const big = `${'x'.repeat(5000)}é😀`
  const messages: Message[] = Array.from({ length: 12 }, (_, i) => ({
    key: `proj-${i}`,
    value: `${i % 3 ? big : `{"a":${i}}`}${i}`,
    headers: { 'weave-job-id': `id-${i}`, h2: i % 2 ? Buffer.from([1, 2, 3]) : 'v' },
    ...(i === 5 ? { timestamp: 1765000000000 - 123456 } : {}),
  }))
  return {
    topicData: [
      {
        topic: 'scoring',
        partitions: [
          { partition: 0, messages },
          { partition: 3, messages: messages.slice(0, 1) },
        ],
      },
      {
        topic: 'other-ü',
        partitions: [{ partition: 1, messages: [{ key: null, value: null, headers: {} }] }],
      },
    ],
  }
}

/** SHA-256 of produceRequest() as the unpatched package (npm pack kafkajs@2.2.4) encodes it. */
const UNPATCHED_SHA256 = '4470f696d8b94964fda80ed70ad2ff00f09b00f95c4ceed6a39ec9f9a99a5acd'

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** CRC-32C one bit at a time, the definition the table-driven code must agree with. */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = ~0
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1))
  }
  return ~crc >>> 0
}

describe('kafkajs produce encoding, patched', () => {
  it('writes the bytes unpatched kafkajs 2.2.4 writes', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(1765000000000)
    try {
      const request = produceV7({ acks: -1, timeout: 5000, ...produceRequest() })
      const encoded = await encodeRequest({
        correlationId: 42,
        clientId: 'weave-calls-score',
        request,
      })
      const bytes: Uint8Array = encoded.buffer
      expect(bytes.length).toBe(40904)
      expect(await sha256(bytes)).toBe(UNPATCHED_SHA256)
      // The layered encoders (a compressed request's path) write the same bytes.
      const layered = await encodeRequest({
        correlationId: 42,
        clientId: 'weave-calls-score',
        request: { ...request, encodeFramed: undefined },
      })
      expect(await sha256(layered.buffer)).toBe(await sha256(bytes))
    } finally {
      vi.restoreAllMocks()
    }
  })

  it('writes a produce request whole into one buffer, the records straight into it', async () => {
    const unsafe = vi.spyOn(Buffer, 'allocUnsafe')
    try {
      const encoded = await encodeRequest({
        correlationId: 7,
        clientId: 'weave-calls-score',
        request: produceV7({ acks: -1, timeout: 5000, ...produceRequest() }),
      })
      // 14 records in 3 partitions of 2 topics. With a buffer per record copied into the
      // request's, 15 buffers; patched only layer by layer, the records were copied again into a
      // buffer per batch (3 each), partition, topic, request, header and size prefix: 31.
      expect(unsafe).toHaveBeenCalledTimes(1)
      expect(encoded.buf.length).toBe(encoded.offset)
    } finally {
      vi.restoreAllMocks()
    }
  })

  it("checksums long batches with the runtime's native CRC-32C, short ones in JavaScript", async () => {
    const DigestStream = crypto.DigestStream
    const algorithms: string[] = []
    // biome-ignore lint/complexity/useArrowFunction: called with `new`, which an arrow cannot be
    const spy = vi.spyOn(crypto, 'DigestStream').mockImplementation(function (algorithm) {
      algorithms.push(String(algorithm))
      return new DigestStream(algorithm)
    })
    try {
      vi.spyOn(Date, 'now').mockReturnValue(1765000000000)
      // Partition 0's batch is about 40 KB, the two others under 6 KB.
      const encoded = await encodeRequest({
        correlationId: 42,
        clientId: 'weave-calls-score',
        request: produceV7({ acks: -1, timeout: 5000, ...produceRequest() }),
      })
      expect(algorithms).toEqual(['crc32c'])
      // The request unpatched kafkajs 2.2.4 writes, its checksums included.
      expect(await sha256(encoded.buffer)).toBe(UNPATCHED_SHA256)
    } finally {
      spy.mockRestore()
      vi.restoreAllMocks()
    }
  })

  it('checksums with the JavaScript table where the runtime has no native CRC-32C', async () => {
    // A fresh copy of the modules: the patch remembers that the native digest is missing.
    vi.resetModules()
    const missing = vi.spyOn(crypto, 'DigestStream').mockImplementation(() => {
      throw new TypeError('Unsupported digest algorithm')
    })
    try {
      vi.spyOn(Date, 'now').mockReturnValue(1765000000000)
      // Untyped internal modules of kafkajs, the same as imported above.
      const requestModule: string = 'kafkajs/src/protocol/request.js'
      const produceModule: string = 'kafkajs/src/protocol/requests/produce/v7/request.js'
      const { default: encode } = await import(requestModule)
      const { default: produce } = await import(produceModule)
      for (let i = 0; i < 2; i++) {
        const encoded = await encode({
          correlationId: 42,
          clientId: 'weave-calls-score',
          request: produce({ acks: -1, timeout: 5000, ...produceRequest() }),
        })
        expect(await sha256(encoded.buffer)).toBe(UNPATCHED_SHA256)
      }
      // Tried once, then not again.
      expect(missing).toHaveBeenCalledTimes(1)
    } finally {
      vi.restoreAllMocks()
      vi.resetModules()
    }
  })

  it('encodes a record into one buffer of its exact size, with no buffer per varint', () => {
    const from = vi.spyOn(Buffer, 'from')
    try {
      const record = Record({
        offsetDelta: 3,
        timestampDelta: 0,
        key: 'proj',
        value: 'v'.repeat(4000),
        headers: { 'weave-job-id': 'a-job' },
      })
      // Unpatched: a 512-byte buffer doubled up to 8 KiB, and a Buffer.from per varint.
      expect(record.buf.length).toBe(record.offset)
      expect(from).not.toHaveBeenCalled()
    } finally {
      from.mockRestore()
    }
  })

  it('checksums record batches with CRC-32C', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283)
    for (const length of [0, 1, 7, 8, 9, 63, 64, 65, 4099]) {
      const bytes = Buffer.alloc(length)
      for (let i = 0; i < length; i++) bytes[i] = (i * 7919 + length) & 0xff
      expect(crc32C(bytes)).toBe(crc32cBitwise(bytes))
    }
  })
})

describe("kafkajs's murmur2, patched", () => {
  const hash = murmur2 as (key: string | Buffer) => number

  it('hashes in 32-bit ints: no 64-bit Long (a BigInt) per step', () => {
    // The global, which kafkajs's Long (utils/long.js) calls for every value it makes.
    const bigInt = vi.spyOn(globalThis, 'BigInt')
    try {
      hash('acme/support-bot')
      // Unpatched: Longs made, multiplied and xored several times per four bytes of the key.
      expect(bigInt).not.toHaveBeenCalled()
    } finally {
      vi.restoreAllMocks()
    }
  })

  it("gives the Java client's hash for any bytes, every length and tail", () => {
    let seed = 12345
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff
      return seed >> 8
    }
    for (let length = 0; length <= 67; length++) {
      for (let n = 0; n < 20; n++) {
        const bytes = Buffer.alloc(length)
        for (let i = 0; i < length; i++) bytes[i] = next() & 0xff
        expect(hash(bytes)).toBe(javaMurmur2(bytes))
      }
    }
    for (const key of ['acme/support-bot', 'k-é', 'é✓', '😀 entity/project', '']) {
      expect(hash(key)).toBe(javaMurmur2(new TextEncoder().encode(key)))
    }
  })
})
