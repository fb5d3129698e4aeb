/**
 * The benchmark's stack floor (`BENCH_SERVERS=worker,floor,stack`): the floor's work
 * (bench/floor-worker.ts) done with the parts the worker may not drop, and nothing else. Hono
 * routes the request; `hono/basic-auth` checks the key against the `API_KEYS` binding through
 * the worker's own lookup (SHA-256, KV read, cached record parse); the worker's `@upstash/kafka`
 * adapter produces the messages under a deadline. No validation, no log line, no request id, no
 * dedupe, no configuration checks: whatever the worker costs above this is its own code's price,
 * and what this costs above the floor is the price of the stack the worker is built on.
 */
import { Hono } from 'hono'
import { basicAuth } from 'hono/basic-auth'
import { lookupApiKey } from '../src/auth/keys.ts'
import { UpstashProducer } from '../src/kafka/upstash.ts'
import { type FloorBody, floorMessages } from './floor-messages.ts'

type StackEnv = {
  API_KEYS: KVNamespace
  KAFKA_TOPIC: string
  UPSTASH_KAFKA_REST_URL: string
  UPSTASH_KAFKA_REST_USERNAME: string
  UPSTASH_KAFKA_REST_PASSWORD: string
}

// The worker also keeps one producer per configuration.
let producer: UpstashProducer | undefined

const app = new Hono<{ Bindings: StackEnv }>()
app.post(
  '/calls/score',
  basicAuth({
    verifyUser: async (_username, password, c) =>
      (await lookupApiKey(c.env.API_KEYS, password)).found,
  }),
  async (c) => {
    const env = c.env
    producer ??= new UpstashProducer({
      url: env.UPSTASH_KAFKA_REST_URL,
      username: env.UPSTASH_KAFKA_REST_USERNAME,
      password: env.UPSTASH_KAFKA_REST_PASSWORD,
    })
    const messages = floorMessages((await c.req.raw.json()) as FloorBody, env.KAFKA_TOPIC, 'stack')
    // The worker's default produce deadline.
    const result = await producer.produce(messages, { at: Date.now() + 2000 })
    return new Response('{}', {
      status: result.ok ? 200 : 503,
      headers: { 'content-type': 'application/json' },
    })
  },
)

export default app satisfies ExportedHandler<StackEnv>
