/**
 * The native transport over the cluster's TLS listeners (SSL, and SASL_SSL with PLAIN and
 * SCRAM-SHA-512), their certificates signed by a CA made for the run: in the Workers runtime,
 * which trusts it as `wrangler dev` would (NODE_EXTRA_CA_CERTS, vitest.kafka.config.ts), and
 * self-hosted under plain workerd, which trusts it through TRUSTED_CA_FILE.
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

const LISTENERS = [
  { name: 'SSL', mechanism: '' },
  { name: 'SASL_SSL PLAIN', mechanism: 'plain' },
  { name: 'SASL_SSL SCRAM-SHA-512', mechanism: 'scram-sha-512' },
] as const

const callIdsOn = async (topic: string) =>
  (await readRecords(topic)).map((r) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids)

describe('TLS listeners of a real cluster', () => {
  for (const { name, mechanism } of LISTENERS) {
    it(`produces over ${name} in the Workers runtime, the CA trusted`, async () => {
      const topic = await freshTopic(`tls-workers-${mechanism || 'ssl'}`)
      const answer = await score(topic, ['tls-1'], tlsVars(mechanism))
      expect(answer.status).toBe(200)
      expect(answer.line).toMatchObject({ outcome: 'accepted' })
      expect(await callIdsOn(topic)).toEqual([['tls-1']])
    })

    it(`produces over ${name} self-hosted, the CA trusted through TRUSTED_CA_FILE`, async () => {
      const topic = await freshTopic(`tls-selfhosted-${mechanism || 'ssl'}`)
      const worker = await startSelfHosted(
        { ...tlsVars(mechanism), KAFKA_TOPIC: topic },
        { trustCa: true },
      )
      try {
        expect(await selfHostedSender(worker)('tls-2')).toBe(200)
        expect((await worker.scoreLines())[0]).toMatchObject({
          outcome: 'accepted',
        })
      } finally {
        await worker.stop()
      }
      expect(await callIdsOn(topic)).toEqual([['tls-2']])
    })
  }
})
