/**
 * What tests of the real-broker suite share: the broker's addresses and the control service that
 * reads records back from the broker (never through the worker's own path) and reshapes it.
 */
import { inject } from 'vitest'
import { eventually, scoreOnTopic } from '../helpers.ts'
import { javaPartition } from './murmur2.ts'

export const kafka = inject('kafka')

/** A record as read from the broker; `key` and `value` are the exact bytes, decoded as UTF-8. */
export type BrokerRecord = {
  partition: number
  offset: number
  key: string
  value: string
  keyBytes: Uint8Array
  valueBytes: Uint8Array
  headers: [string, string][]
}

const fromBase64 = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

async function control(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${kafka.controlUrl}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  })
  const json = (await res.json()) as unknown
  if (!res.ok)
    throw new Error(`kafka control ${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** Every record on `topic`, read from the broker by a consumer of the test harness. */
export async function readRecords(topic: string = kafka.topic): Promise<BrokerRecord[]> {
  const raw = (await control('GET', `/records?topic=${encodeURIComponent(topic)}`)) as {
    partition: number
    offset: number
    key: string
    value: string
    headers: [string, string][]
  }[]
  return raw.map((r) => {
    const keyBytes = fromBase64(r.key)
    const valueBytes = fromBase64(r.value)
    return {
      partition: r.partition,
      offset: r.offset,
      keyBytes,
      valueBytes,
      key: utf8.decode(keyBytes),
      value: utf8.decode(valueBytes),
      headers: r.headers.map(([k, v]) => [k, utf8.decode(fromBase64(v))]),
    }
  })
}

/** A fresh topic (the suite's partition count unless told), so tests never see each other's records. */
export async function createTopic(
  label: string,
  options: { partitions?: number; configs?: Record<string, string>; name?: string } = {},
): Promise<string> {
  const name = options.name ?? `weave.score_calls.${label}.${crypto.randomUUID()}`
  await control('POST', '/topics', {
    name,
    partitions: options.partitions ?? kafka.partitions,
    configs: options.configs,
  })
  return name
}

export const deleteTopic = (name: string) =>
  control('DELETE', `/topics/${encodeURIComponent(name)}`)
/** Kills the broker process (an outage); its data stays for {@link startBroker}. */
export const stopBroker = () => control('POST', '/broker/stop')
/** Starts the broker again on the same ports; resolves once it serves metadata. */
export const startBroker = () => control('POST', '/broker/start')
/** Freezes the broker (SIGSTOP): it holds its connections and answers nothing, a hung broker. */
export const pauseBroker = () => control('POST', '/broker/pause')
/** Lets the frozen broker go on (SIGCONT). */
export const resumeBroker = () => control('POST', '/broker/resume')
/** A record produced by the harness's own client (for the harness's tests). */
export const produceDirect = (record: {
  topic: string
  key: string
  value: string
  headers?: Record<string, string>
}) => control('POST', '/produce', record)

/** Where the Java client, and so Weave's producer, puts `key` on a topic of `partitions`. */
export const expectedPartition = (key: string, partitions: number = kafka.partitions) =>
  javaPartition(key, partitions)

/**
 * Vars selecting the native transport against the suite's broker: the PLAINTEXT listener without
 * a mechanism, the SASL_PLAINTEXT one with it. TLS is off: the local broker has no TLS listener
 * (docs/native-kafka.md says what that leaves untested).
 */
export const nativeVars = (
  mechanism: '' | 'plain' | 'scram-sha-256' | 'scram-sha-512',
  over: { username?: string; password?: string } = {},
): Record<string, string> => ({
  KAFKA_TRANSPORT: 'native',
  KAFKA_BROKERS: mechanism === '' ? kafka.bootstrap : kafka.saslBootstrap,
  KAFKA_TLS: 'false',
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_USERNAME: over.username ?? kafka.username,
  KAFKA_PASSWORD: over.password ?? kafka.password,
})

/**
 * A fresh topic ready for produce. Right after creation the metadata already names a leader
 * while that leader still answers NOT_LEADER_OR_FOLLOWER for a moment; a produce then is retried
 * by our policy (at least once), and a test counting records would see the duplicate.
 */
export async function freshTopic(
  label: string,
  options: { partitions?: number; configs?: Record<string, string> } = {},
): Promise<string> {
  const name = await createTopic(label, options)
  await new Promise((r) => setTimeout(r, 1_500))
  return name
}

/** One request through the worker to `topic`, with its answer, its time and its request log line. */
export async function score(topic: string, callIds: string[], vars: Record<string, unknown>) {
  // KAFKA_TOPIC last: the test's vars never move the request off its topic.
  const { res, elapsed, line } = await scoreOnTopic(topic, callIds, { ...vars, KAFKA_TOPIC: topic })
  return { status: res.status, body: await res.text(), ms: elapsed, line }
}

/** Waits until the topic holds `count` records, then a moment more to catch duplicates. */
export async function recordsOnBroker(
  topic: string,
  count: number,
  timeoutMs = 45_000,
): Promise<BrokerRecord[]> {
  await eventually(
    async () => ((await readRecords(topic)).length >= count ? true : undefined),
    timeoutMs,
  )
  await new Promise((r) => setTimeout(r, 1_500))
  return readRecords(topic)
}
