/**
 * Certificates the worker must refuse: a broker whose certificate another CA signed, one whose
 * certificate names another host, and, self-hosted, the run's CA itself when the operator has
 * not named it in TRUSTED_CA_FILE. Each is refused within the produce deadline, nothing lands,
 * and the request's log line names the TLS cause where the runtime tells it. Without a queue
 * (`SCORE_QUEUE` unset, as self-hosted) a refusal is a `503`, so nothing reaches Kafka later
 * either.
 */
import { describe, expect, it } from 'vitest'
import {
  freshTopic,
  readRecords,
  score,
  selfHostedSender,
  startSelfHosted,
  tlsVars,
} from './helpers.ts'

const PRODUCE_TIMEOUT_MS = 2_000

const REFUSED = [
  {
    name: 'a certificate of an untrusted CA',
    listeners: 'untrusted',
    cause: /^connect: .*TLS: (unknown issuer|handshake failed)/,
  },
  {
    name: 'a certificate for another host name',
    listeners: 'wrongName',
    cause: /^connect: .*TLS: (wrong host name|handshake failed)/,
  },
] as const

describe('TLS certificates the worker refuses', () => {
  for (const { name, listeners, cause } of REFUSED) {
    it(`${name}: refused within the deadline in the Workers runtime, nothing produced`, async () => {
      const topic = await freshTopic(`tls-refused-${listeners}`)
      const answer = await score(topic, ['r-1'], {
        ...tlsVars('', listeners),
        KAFKA_PRODUCE_TIMEOUT_MS: String(PRODUCE_TIMEOUT_MS),
        SCORE_QUEUE: undefined as unknown as string,
      })
      expect(answer.status).toBe(503)
      expect(answer.ms).toBeLessThan(PRODUCE_TIMEOUT_MS + 3_000)
      expect(answer.line).toMatchObject({ kafka_reason: 'unreachable' })
      expect(String(answer.line.kafka_detail)).toMatch(cause)
      expect(await readRecords(topic)).toEqual([])
    })

    it(`${name}: refused within the deadline self-hosted, nothing produced`, async () => {
      const topic = await freshTopic(`tls-refused-sh-${listeners}`)
      const worker = await startSelfHosted(
        {
          ...tlsVars('', listeners),
          KAFKA_TOPIC: topic,
          KAFKA_PRODUCE_TIMEOUT_MS: String(PRODUCE_TIMEOUT_MS),
        },
        { trustCa: true },
      )
      try {
        const started = Date.now()
        expect(await selfHostedSender(worker)('r-2')).toBe(503)
        expect(Date.now() - started).toBeLessThan(PRODUCE_TIMEOUT_MS + 3_000)
        const line = (await worker.scoreLines())[0]
        expect(line).toMatchObject({ kafka_reason: 'unreachable' })
        expect(String(line?.kafka_detail)).toMatch(
          /TLS: (unknown issuer|wrong host name|handshake failed)/,
        )
      } finally {
        await worker.stop()
      }
      expect(await readRecords(topic)).toEqual([])
    })
  }

  it('self-hosted without TRUSTED_CA_FILE: the private CA is not trusted, nothing produced', async () => {
    const topic = await freshTopic('tls-no-ca')
    const worker = await startSelfHosted({ ...tlsVars(''), KAFKA_TOPIC: topic })
    try {
      expect(await selfHostedSender(worker)('r-3')).toBe(503)
      const line = (await worker.scoreLines())[0]
      expect(String(line?.kafka_detail)).toMatch(
        /TLS: (unknown issuer|wrong host name|handshake failed)/,
      )
    } finally {
      await worker.stop()
    }
    expect(await readRecords(topic)).toEqual([])
  })
})
