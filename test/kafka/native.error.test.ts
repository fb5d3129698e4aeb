/**
 * Faults of a real broker under the native transport: the broker down, wrong credentials, a
 * restart under load, a record over the topic's limit. Whatever Kafka did not acknowledge goes to
 * the queue, whose consumer (Miniflare runs it, with the native transport of
 * vitest.kafka.config.ts) produces it once the broker takes it.
 */
import { describe, expect, it } from 'vitest'
import { consumeBatch, queuedJob } from '../helpers.ts'
import {
  type BrokerRecord,
  freshTopic,
  kafka,
  nativeVars,
  readRecords,
  recordsOnBroker,
  score,
  startBroker,
  stopBroker,
} from './helpers.ts'

const jobIds = (records: BrokerRecord[]) => records.map((r) => r.headers[0]?.[1] ?? '')

describe('native transport faults on the real broker', () => {
  it('broker down: the jobs are queued ({}), and on the broker once it is back', async () => {
    const topic = await freshTopic('down')
    await stopBroker()
    let answer: Awaited<ReturnType<typeof score>>
    try {
      answer = await score(topic, ['d-1', 'd-2'], nativeVars(''))
    } finally {
      await startBroker()
    }
    expect(answer.status).toBe(200)
    expect(answer.line).toMatchObject({ outcome: 'queued', queued: 1, kafka_reason: 'unreachable' })
    const records = await recordsOnBroker(topic, 1)
    expect(records.map((r) => JSON.parse(r.value).call_ids)).toEqual([['d-1', 'd-2']])
  })

  it('wrong credentials: an alarm, the jobs queued and delivered once the credentials are right', async () => {
    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
      const topic = await freshTopic(`creds-${mechanism}`)
      const wrong = nativeVars(mechanism, { password: 'not-the-password' })
      const answer = await score(topic, [`c-${mechanism}`], wrong)
      expect(answer.status).toBe(200)
      expect(answer.line).toMatchObject({
        level: 'alarm',
        outcome: 'queued',
        kafka_reason: 'unauthorized',
      })
      expect(JSON.stringify(answer.line)).not.toContain('not-the-password')
      // The consumer with the same wrong credentials keeps the job (an alarm, retried)...
      const job = queuedJob(topic, 1)
      const refused = await consumeBatch([job], { vars: { ...wrong, KAFKA_TOPIC: topic } })
      expect(refused.result.retryMessages).toHaveLength(1)
      expect(refused.logs.find((l) => l.msg === 'queue_batch')).toMatchObject({
        level: 'alarm',
        kafka_reason: 'unauthorized',
      })
      // ... and delivers it once they are right; the request's job reaches the broker through
      // the queue (the suite's consumer produces over PLAINTEXT).
      const fixed = await consumeBatch([job], {
        vars: { ...nativeVars(mechanism), KAFKA_TOPIC: topic },
      })
      expect(fixed.result.explicitAcks).toHaveLength(1)
      const records = await recordsOnBroker(topic, 2)
      expect(records.map((r) => r.value).sort()).toEqual(
        [
          job.value,
          `{"project_id":"acme/support-bot","call_ids":["c-${mechanism}"],"scorer_refs":["weave:///acme/support-bot/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjoxMjM0"}`,
        ].sort(),
      )
    }
  })

  it('missing SASL secrets: every request a loud 503 misconfiguration, nothing produced', async () => {
    const topic = await freshTopic('misconfigured')
    const answer = await score(topic, ['m-1'], {
      ...nativeVars('scram-sha-256'),
      KAFKA_PASSWORD: '',
    })
    expect(answer.status).toBe(503)
    expect(JSON.parse(answer.body)).toEqual({ detail: 'Service misconfigured' })
    expect(answer.line.config_problems).toEqual([
      'KAFKA_PASSWORD: required when KAFKA_SASL_MECHANISM is set',
    ])
    expect(await readRecords(topic)).toEqual([])
  })

  it('a broker restart under load: every accepted job on the broker, none lost', async () => {
    const topic = await freshTopic('restart')
    const vars = { ...nativeVars(''), KAFKA_PRODUCE_TIMEOUT_MS: '1000' }
    const answers: { id: string; status: number }[] = []
    let n = 0
    const client = async () => {
      for (let i = 0; i < 12; i++) {
        const id = `r-${n++}`
        const a = await score(topic, [id], vars)
        answers.push({ id, status: a.status })
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const restart = async () => {
      await new Promise((r) => setTimeout(r, 600))
      await stopBroker()
      await new Promise((r) => setTimeout(r, 1_500))
      await startBroker()
    }
    await Promise.all([client(), client(), client(), restart()])
    const accepted = answers.filter((a) => a.status === 200).map((a) => a.id)
    // Every request was accepted: the broker's or the queue's; none was refused.
    expect(accepted).toHaveLength(36)
    const records = await recordsOnBroker(topic, accepted.length, 60_000)
    const landed = new Set(
      records.map((r) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids[0]),
    )
    expect(accepted.filter((id) => !landed.has(id))).toEqual([])
  })

  it('a producer shard that could not connect (broker down) connects afresh once it is back', async () => {
    const topic = await freshTopic('shard-down')
    // One shard, and connection settings no other test uses (the broker named twice): the
    // request after the outage meets the very producer whose connect failed.
    const vars = {
      ...nativeVars('plain'),
      KAFKA_BROKERS: `${kafka.saslBootstrap},${kafka.saslBootstrap}`,
      KAFKA_PRODUCER_SHARDS: '1',
      KAFKA_PRODUCE_RETRIES: '0',
    }
    await stopBroker()
    expect((await score(topic, ['during-0'], vars)).line).toMatchObject({
      outcome: 'queued',
      kafka_reason: 'unreachable',
    })
    // Traffic all through the outage keeps the object alive (an idle one may be evicted, and a
    // new one would connect afresh anyway).
    let up = false
    const restarted = startBroker().then(() => {
      up = true
    })
    const sent = ['during-0']
    while (!up) {
      const id = `during-${sent.length}`
      sent.push(id)
      expect((await score(topic, [id], vars)).status).toBe(200)
      await new Promise((r) => setTimeout(r, 500))
    }
    await restarted
    const after: Record<string, unknown>[] = []
    for (let i = 0; i < 3; i++) {
      sent.push(`after-${i}`)
      after.push((await score(topic, [`after-${i}`], vars)).line)
    }
    // A failed connect is never kept: the shard's next call connects again, without the queue.
    for (const line of after) expect(line).toMatchObject({ outcome: 'accepted', kafka_attempts: 1 })
    const records = await recordsOnBroker(topic, sent.length)
    const landed = records.map((r) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids[0])
    expect(new Set(landed)).toEqual(new Set(sent))
    // A whole cluster restarting (a quorum of controllers first) takes longer than one broker.
  }, 150_000)

  it('a record over the topic limit: refused alone, dead-lettered with its reason, its batch delivered', async () => {
    const topic = await freshTopic('too-large', { configs: { 'max.message.bytes': '4096' } })
    const small = [queuedJob(topic, 1), queuedJob(topic, 2), queuedJob(topic, 3)]
    const large = queuedJob(topic, 9, 8_000)
    const jobs = [small[0], large, small[1], small[2]]
    // The last attempt: the refused record goes to the dead-letter queue.
    const { result, logs } = await consumeBatch(jobs, {
      attempts: 32,
      vars: { ...nativeVars(''), KAFKA_TOPIC: topic },
    })
    expect(result.explicitAcks.sort()).toEqual(['m0', 'm1', 'm2', 'm3'])
    const dead = logs.find((l) => l.msg === 'job_dead_lettered')
    expect(dead).toMatchObject({ job_id: 'job-9', topic })
    expect(String(dead?.reason)).toMatch(/^rejected: .*MESSAGE_TOO_LARGE/)
    expect(logs.find((l) => l.msg === 'queue_batch')).toMatchObject({
      acknowledged: 3,
      dead_lettered: 1,
    })
    const records = await readRecords(topic)
    expect(jobIds(records).sort()).toEqual(['job-1', 'job-2', 'job-3'])
  })

  it('a record over the topic limit in a client request: queued (rejected), the rest produced', async () => {
    const topic = await freshTopic('too-large-direct', {
      partitions: 1,
      configs: { 'max.message.bytes': '4096' },
    })
    const callIds = [
      ...Array.from(
        { length: 100 },
        (_, i) => `big-${String(i).padStart(3, '0')}-${'x'.repeat(60)}`,
      ),
      'small-1',
    ]
    const answer = await score(topic, callIds, nativeVars(''))
    expect(answer.status).toBe(200)
    expect(answer.line).toMatchObject({
      outcome: 'queued',
      queued: 1,
      kafka_reason: 'rejected',
      kafka_acknowledged: 1,
    })
    expect(String(answer.line.kafka_detail)).toContain('MESSAGE_TOO_LARGE')
    const records = await readRecords(topic)
    expect(records.map((r) => JSON.parse(r.value).call_ids)).toEqual([['small-1']])
  })

  it('TLS on against a plaintext listener: no produce, the jobs queued', async () => {
    const topic = await freshTopic('tls')
    const answer = await score(topic, ['t-1'], {
      ...nativeVars(''),
      KAFKA_TLS: 'true',
      KAFKA_PRODUCE_TIMEOUT_MS: '1500',
    })
    expect(answer.status).toBe(200)
    expect(answer.line).toMatchObject({ outcome: 'queued' })
    expect(['unreachable', 'timeout']).toContain(answer.line.kafka_reason)
    // The log says TLS failed, not just that something could not connect.
    if (answer.line.kafka_reason === 'unreachable') {
      expect(String(answer.line.kafka_detail)).toMatch(/TLS: handshake failed/)
    }
  })
})

it('the suite cluster is the one the tests stop and start', () => {
  expect(kafka.bootstrap.split(',')).toHaveLength(3)
  expect(kafka.bootstrap).toMatch(/^127\.0\.0\.1:/)
})
