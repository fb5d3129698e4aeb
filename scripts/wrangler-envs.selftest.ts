/**
 * Wrangler inherits neither vars nor bindings into `[env.*]`: this checks that every named
 * environment declares everything the top level does, so `wrangler deploy --env …` never ships a
 * worker that is missing a var, a secret or a binding. Run with `node --test`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { unstable_readConfig } from 'wrangler'

const ENVIRONMENTS = ['staging', 'production']

/** The part of wrangler's normalised config this checks (its own type needs a package we lack). */
type WranglerConfig = {
  vars: Record<string, unknown>
  kv_namespaces: { binding: string; id?: string }[]
  ratelimits: { name: string }[]
  queues: {
    producers?: { binding: string; queue: string }[]
    consumers?: { queue: string; dead_letter_queue?: string }[]
  }
  analytics_engine_datasets: { binding: string }[]
  secrets?: { required?: string[] }
}

const read = (env?: string) =>
  unstable_readConfig(
    { config: 'wrangler.toml', ...(env ? { env } : {}) },
    { hideWarnings: true },
  ) as unknown as WranglerConfig
const base = read()
const bindingsOf = (config: WranglerConfig) => ({
  kv: config.kv_namespaces.map((k) => k.binding).sort(),
  ratelimits: config.ratelimits.map((r) => r.name).sort(),
  producers: (config.queues.producers ?? []).map((p) => p.binding).sort(),
  consumers: (config.queues.consumers ?? []).length,
  analytics: config.analytics_engine_datasets.map((a) => a.binding).sort(),
  secrets: [...(config.secrets?.required ?? [])].sort(),
})

describe('named environments', () => {
  for (const name of ENVIRONMENTS) {
    const env = read(name)
    it(`${name} declares every var of the top level`, () => {
      assert.deepEqual(Object.keys(env.vars).sort(), Object.keys(base.vars).sort())
    })
    it(`${name} declares every binding and secret of the top level`, () => {
      assert.deepEqual(bindingsOf(env), bindingsOf(base))
    })
    it(`${name} has queues, a KV namespace and a dataset of its own`, () => {
      const queues = (env.queues.producers ?? []).map((p) => p.queue)
      const baseQueues = (base.queues.producers ?? []).map((p) => p.queue)
      assert.equal(queues.filter((q) => baseQueues.includes(q)).length, 0)
      assert.notEqual(env.kv_namespaces[0]?.id, base.kv_namespaces[0]?.id)
      const dlq = env.queues.consumers?.[0]?.dead_letter_queue
      assert.equal(env.vars.DEAD_LETTER_QUEUE_NAME, dlq)
      assert.ok(queues.includes(String(dlq)))
    })
  }
  it('the top level dead-letters into the queue DEAD_LETTER_QUEUE_NAME names', () => {
    assert.equal(base.vars.DEAD_LETTER_QUEUE_NAME, base.queues.consumers?.[0]?.dead_letter_queue)
  })
})
