/**
 * `npm run messages`: what landed on Kafka in `npm run dev`, read from what is running now. With
 * the local sink, read back through `@upstash/kafka`'s own consumer (the same REST dialect the
 * worker produces with); with `npm run dev -- --kafka`, from the real broker by a Kafka consumer,
 * with partition, offset and headers.
 *
 * Which one: the sink at SINK_URL when that is set; otherwise the broker recorded in
 * `.wrangler/dev/` by the last `npm run dev -- --kafka` if it still accepts connections, else the
 * sink recorded there or the default one. When nothing answers, one line says so.
 */
import { existsSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { Kafka } from '@upstash/kafka'
import { readTopic } from './lib/kafka.ts'

const DEFAULT_SINK = 'http://127.0.0.1:8788'
const PROBE_MS = 1000

type DevState = { sinkUrl?: string; kafkaBootstrap?: string; topic?: string }

function fail(message: string): never {
  process.stderr.write(`npm run messages: ${message}\n`)
  process.exit(1)
}

function readState(): DevState {
  try {
    return existsSync('.wrangler/dev/api-key.json')
      ? (JSON.parse(readFileSync('.wrangler/dev/api-key.json', 'utf8')) as DevState)
      : {}
  } catch {
    return {}
  }
}

/** Whether something accepts TCP connections at `host:port` within PROBE_MS. */
function listening(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(colon + 1))
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: PROBE_MS })
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

/** Whether an HTTP server answers at `url` (any status) within PROBE_MS. */
const answers = (url: string): Promise<boolean> =>
  fetch(url, { signal: AbortSignal.timeout(PROBE_MS) }).then(
    async (res) => {
      await res.body?.cancel()
      return true
    },
    () => false,
  )

async function fromBroker(bootstrap: string, topic: string): Promise<void> {
  const records = await readTopic(bootstrap, topic)
  for (const r of records) {
    const headers = r.headers.map(([k, v]) => `${k}=${v.toString('utf8')}`).join(' ')
    console.log(
      `${topic}[${r.partition}]@${r.offset} key=${JSON.stringify(r.key.toString('utf8'))}${headers ? ` ${headers}` : ''}\n  ${r.value.toString('utf8')}`,
    )
  }
  console.log(`${records.length} message(s) on ${topic} at the broker ${bootstrap}`)
}

async function fromSink(url: string, topic: string): Promise<void> {
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
      console.log(
        `${m.topic}[${m.partition}]@${m.offset} key=${JSON.stringify(m.key)}\n  ${m.value}`,
      )
    }
  }
  console.log(`${count} message(s) on ${topic} at ${url}`)
}

const state = readState()
const topic = process.env.KAFKA_TOPIC ?? 'weave.score_calls'
try {
  const sinkUrl = process.env.SINK_URL
  if (sinkUrl) {
    if (!(await answers(sinkUrl))) fail(`nothing answers at SINK_URL=${sinkUrl}`)
    await fromSink(sinkUrl, topic)
  } else if (state.kafkaBootstrap && (await listening(state.kafkaBootstrap))) {
    await fromBroker(state.kafkaBootstrap, process.env.KAFKA_TOPIC ?? state.topic ?? topic)
  } else {
    const candidates = [...new Set([state.sinkUrl, DEFAULT_SINK])].filter(
      (u): u is string => typeof u === 'string' && u.startsWith('http'),
    )
    let found: string | undefined
    for (const url of candidates) {
      if (await answers(url)) {
        found = url
        break
      }
    }
    if (found === undefined) {
      const broker = state.kafkaBootstrap ? ` nor a broker at ${state.kafkaBootstrap}` : ''
      fail(
        `nothing is running: no sink at ${candidates.join(' or ')}${broker}. Start one with npm run dev (or npm run dev -- --kafka), or set SINK_URL.`,
      )
    }
    await fromSink(found, topic)
  }
} catch (e) {
  fail(e instanceof Error ? e.message : String(e))
}
