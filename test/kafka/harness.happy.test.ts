import { describe, expect, it } from 'vitest'
import {
  createTopic,
  deleteTopic,
  leaders,
  produceDirect,
  readRecords,
  startBroker,
  startNode,
  stopBroker,
  stopNode,
  waitForCluster,
} from './helpers.ts'

// The harness the real-broker tests stand on: if reading back or reshaping the broker lied, every
// other test here could pass on nothing.
describe('the real-broker harness', () => {
  it('reads back exactly the bytes, partition and headers a record was produced with', async () => {
    const topic = await createTopic('harness', { partitions: 3 })
    await produceDirect({
      topic,
      key: 'k-é',
      value: '{"a":"ü"}',
      headers: { 'weave-job-id': 'j1' },
    })
    const records = await readRecords(topic)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({
      key: 'k-é',
      value: '{"a":"ü"}',
      headers: [['weave-job-id', 'j1']],
      offset: 0,
    })
    expect(records[0]?.partition).toBeGreaterThanOrEqual(0)
    await deleteTopic(topic)
  })

  it('reads an empty topic as no records', async () => {
    const topic = await createTopic('empty')
    expect(await readRecords(topic)).toEqual([])
  })

  it('stops and restarts the broker, keeping what was on it', async () => {
    const topic = await createTopic('restart', { partitions: 1 })
    await produceDirect({ topic, key: 'before', value: '1' })
    await stopBroker()
    await expect(produceDirect({ topic, key: 'during', value: '2' })).rejects.toThrow()
    await startBroker()
    await produceDirect({ topic, key: 'after', value: '3' })
    expect((await readRecords(topic)).map((r) => r.key)).toEqual(['before', 'after'])
    // Three nodes killed and started again (a quorum of controllers first) take a while.
  }, 180_000)

  it('kills one node of three: every partition led again by the others, then it rejoins', async () => {
    const topic = await createTopic('one-down', { partitions: 3 })
    const before = await leaders(topic)
    const victim = before[0] ?? 1
    await stopNode(victim, 'SIGKILL')
    try {
      await waitForCluster()
      const during = await leaders(topic)
      expect(during.every((l) => l > 0 && l !== victim)).toBe(true)
      await produceDirect({ topic, key: 'during', value: '1' })
    } finally {
      await startNode(victim)
      await waitForCluster(true)
    }
    expect((await readRecords(topic)).map((r) => r.key)).toEqual(['during'])
  }, 120_000)
})
