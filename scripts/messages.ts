/**
 * `npm run messages`: what landed on the local sink, read back through `@upstash/kafka`'s own
 * consumer (the same REST dialect the worker produces with).
 */
import { existsSync, readFileSync } from 'node:fs'
import { Kafka } from '@upstash/kafka'

const state = existsSync('.wrangler/dev/api-key.json')
  ? (JSON.parse(readFileSync('.wrangler/dev/api-key.json', 'utf8')) as { sinkUrl?: string })
  : {}
const url = process.env.SINK_URL ?? state.sinkUrl ?? 'http://127.0.0.1:8788'
const topic = process.env.KAFKA_TOPIC ?? 'weave.score_calls'
const partitions = Number(process.env.SINK_PARTITIONS ?? 3)

const consumer = new Kafka({
  url,
  username: process.env.UPSTASH_KAFKA_REST_USERNAME ?? 'dev',
  password: process.env.UPSTASH_KAFKA_REST_PASSWORD ?? 'dev-password',
}).consumer()

let count = 0
for (let partition = 0; partition < partitions; partition++) {
  const messages = await consumer.fetch({ topic, partition, offset: 0, timeout: 100 })
  for (const m of messages) {
    count++
    console.log(`${m.topic}[${m.partition}]@${m.offset} key=${JSON.stringify(m.key)}\n  ${m.value}`)
  }
}
console.log(`${count} message(s) on ${topic} at ${url}`)
