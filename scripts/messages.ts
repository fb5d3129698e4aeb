/**
 * `npm run messages`: what landed on Kafka in `npm run dev`. With the local sink, read back
 * through `@upstash/kafka`'s own consumer (the same REST dialect the worker produces with); with
 * `npm run dev -- --kafka`, read from the real broker by a Kafka consumer, with partition, offset
 * and headers.
 */
import { existsSync, readFileSync } from 'node:fs'
import { Kafka } from '@upstash/kafka'
import { readTopic } from './lib/kafka.ts'

const state = existsSync('.wrangler/dev/api-key.json')
  ? (JSON.parse(readFileSync('.wrangler/dev/api-key.json', 'utf8')) as {
      sinkUrl?: string
      kafkaBootstrap?: string
      topic?: string
    })
  : {}

if (state.kafkaBootstrap) {
  const topic = process.env.KAFKA_TOPIC ?? state.topic ?? 'weave.score_calls'
  const records = await readTopic(state.kafkaBootstrap, topic)
  for (const r of records) {
    const headers = r.headers.map(([k, v]) => `${k}=${v.toString('utf8')}`).join(' ')
    console.log(
      `${topic}[${r.partition}]@${r.offset} key=${JSON.stringify(r.key.toString('utf8'))}${headers ? ` ${headers}` : ''}\n  ${r.value.toString('utf8')}`,
    )
  }
  console.log(`${records.length} message(s) on ${topic} at the broker ${state.kafkaBootstrap}`)
  process.exit(0)
}
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
