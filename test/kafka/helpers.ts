/**
 * What tests of the real-broker suite share: the broker's addresses and the control service that
 * reads records back from the broker (never through the worker's own path) and reshapes it.
 */
import { inject } from 'vitest'
import { basic, call, createKey, eventually, scoreOnTopic, validBody } from '../helpers.ts'
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
/** Kills every node of the cluster (an outage); their data stays for {@link startBroker}. */
export const stopBroker = () => control('POST', '/broker/stop')
/** Starts every node again on the same ports; resolves once every replica is in sync. */
export const startBroker = () => control('POST', '/broker/start')
/** Freezes every node (SIGSTOP): they hold their connections and answer nothing, a hung cluster. */
export const pauseBroker = () => control('POST', '/broker/pause')
/** Lets the frozen nodes go on (SIGCONT). */
export const resumeBroker = () => control('POST', '/broker/resume')
/** Stops one node: SIGKILL, a crash; SIGTERM, a controlled shutdown (leaderships moved first). */
export const stopNode = (id: number, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL') =>
  control('POST', `/node/stop?node=${id}&signal=${signal}`)
/** Starts one node again; resolves once it is registered and every partition has a leader. */
export const startNode = (id: number) => control('POST', `/node/start?node=${id}`)
/** Resolves once every partition has a leader (and, with `fullIsr`, all its replicas in sync). */
export const waitForCluster = (fullIsr = false) =>
  control('POST', `/cluster/wait${fullIsr ? '?isr=full' : ''}`)
/** The leader's node id of each partition of `topic`. */
export const leaders = async (topic: string) =>
  (await control('GET', `/leaders?topic=${encodeURIComponent(topic)}`)) as number[]

/** `npm start`'s self-hosted worker (plain workerd, no queue) with these settings. */
export type SelfHosted = {
  url: string
  apiKey: string
  /** Its request log lines of `POST /calls/score` so far (not the start-up probe's). */
  scoreLines(): Promise<Record<string, unknown>[]>
  stop(): Promise<void>
}

export async function startSelfHosted(
  env: Record<string, string>,
  options: { trustCa?: boolean } = {},
): Promise<SelfHosted> {
  const { id, url, apiKey } = (await control('POST', '/selfhosted', { env, ...options })) as {
    id: string
    url: string
    apiKey: string
  }
  return {
    url,
    apiKey,
    async scoreLines() {
      const lines = (await control('GET', `/selfhosted/${id}`)) as string[]
      return lines.flatMap((l) => {
        try {
          const line = JSON.parse(l) as Record<string, unknown>
          return line.msg === 'request' && line.path === '/calls/score' ? [line] : []
        } catch {
          return []
        }
      })
    },
    stop: async () => {
      await control('DELETE', `/selfhosted/${id}`)
    },
  }
}
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
 * Vars selecting the native transport against the suite's cluster (every node listed): the
 * PLAINTEXT listeners without a mechanism, the SASL_PLAINTEXT ones with it. The TLS listeners
 * have their own vars ({@link tlsVars}).
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

/**
 * Vars selecting the native transport over TLS: the SSL listeners without a mechanism, the
 * SASL_SSL ones with it; `listeners` picks the refused ones (an untrusted CA, a wrong name).
 */
export const tlsVars = (
  mechanism: '' | 'plain' | 'scram-sha-256' | 'scram-sha-512',
  listeners: 'good' | 'untrusted' | 'wrongName' = 'good',
): Record<string, string> => ({
  KAFKA_TRANSPORT: 'native',
  KAFKA_BROKERS:
    listeners === 'untrusted'
      ? kafka.tls.untrustedBootstrap
      : listeners === 'wrongName'
        ? kafka.tls.wrongNameBootstrap
        : mechanism === ''
          ? kafka.tls.bootstrap
          : kafka.tls.saslBootstrap,
  KAFKA_TLS: 'true',
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_USERNAME: kafka.username,
  KAFKA_PASSWORD: kafka.password,
})

/** What a request under load came to: its answer and how long it took. */
export type LoadAnswer = { id: string; status: number; ms: number }

/** A crash test's figures, as printed. */
export type LoadFigures = {
  requests: number
  ok: number
  errors: number
  /** Answered 200 because the queue held the jobs (Workers runtime). */
  queued: number
  /** Accepted (200) and not on Kafka once everything had time to land. */
  lost: number
  /** Records on Kafka beyond one per accepted job. */
  duplicates: number
  p99Ms: number
  maxMs: number
  /** Answers by status (0: no answer), and request log lines by outcome where they were seen. */
  statuses: Record<string, number>
  outcomes: Record<string, number>
}

const tally = (values: (string | number)[]) => {
  const counts: Record<string, number> = {}
  for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1
  return counts
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
}

/**
 * Requests from `clients` loops, one call id each, for at least `minMs` and until `faults` is
 * done, then a moment more (`tailMs`); `faults` runs beside them (kills, restarts).
 */
export async function underLoad(
  send: (id: string) => Promise<number>,
  faults: () => Promise<void>,
  { clients = 4, minMs = 20_000, tailMs = 2_000, label = 'load' } = {},
): Promise<LoadAnswer[]> {
  const answers: LoadAnswer[] = []
  const started = Date.now()
  let faultsDone = false
  let stopAt = Number.POSITIVE_INFINITY
  const faultRun = faults().finally(() => {
    faultsDone = true
    stopAt = Math.max(started + minMs, Date.now() + tailMs)
  })
  let n = 0
  const client = async () => {
    while (Date.now() < stopAt) {
      const id = `${label}-${String(n++).padStart(5, '0')}`
      const t = Date.now()
      const status = await send(id).catch(() => 0)
      answers.push({ id, status, ms: Date.now() - t })
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  await Promise.all([faultRun, ...Array.from({ length: clients }, client)])
  if (!faultsDone) throw new Error('faults did not finish')
  return answers
}

/** The call id a record carries (one per request under load). */
const callIdOf = (r: BrokerRecord) => (JSON.parse(r.value) as { call_ids: string[] }).call_ids[0]

/**
 * The figures of a load on `topic`: waits (up to `timeoutMs`) until every accepted request's job
 * is on Kafka, then counts what is missing and what is there twice.
 */
export async function loadFigures(
  topic: string,
  answers: LoadAnswer[],
  outcomes: string[],
  timeoutMs = 60_000,
): Promise<LoadFigures> {
  const queued = outcomes.filter((o) => o.startsWith('queued')).length
  const accepted = new Set(answers.filter((a) => a.status === 200).map((a) => a.id))
  const until = Date.now() + timeoutMs
  let records = await readRecords(topic)
  while (Date.now() < until) {
    const landed = new Set(records.map(callIdOf))
    if ([...accepted].every((id) => landed.has(id))) break
    await new Promise((r) => setTimeout(r, 1_000))
    records = await readRecords(topic)
  }
  // A moment more for a late duplicate (a queued copy of a write that landed after all).
  await new Promise((r) => setTimeout(r, 2_000))
  records = await readRecords(topic)
  const landed = new Set(records.map(callIdOf))
  const ms = answers.map((a) => a.ms)
  return {
    requests: answers.length,
    ok: accepted.size,
    errors: answers.length - accepted.size,
    queued,
    lost: [...accepted].filter((id) => !landed.has(id)).length,
    duplicates: records.length - landed.size,
    p99Ms: percentile(ms, 99),
    maxMs: Math.max(0, ...ms),
    statuses: tally(answers.map((a) => a.status)),
    outcomes: tally(outcomes),
  }
}

/** Prints a crash test's figures through the control service (passing tests print nothing here). */
export async function printFigures(name: string, f: LoadFigures): Promise<void> {
  const line = `${name}: ${f.requests} requests, ${f.ok} 200 (${((100 * f.ok) / Math.max(1, f.requests)).toFixed(1)}%), ${f.errors} not 200, ${f.queued} queued, ${f.lost} lost, ${f.duplicates} duplicate(s), p99 ${f.p99Ms} ms, max ${f.maxMs} ms; statuses ${JSON.stringify(f.statuses)}, outcomes ${JSON.stringify(f.outcomes)}`
  await control('POST', '/figures', { line })
}

/**
 * Sends one request per call id through the worker in the Workers runtime (its queue behind
 * it), collecting the request log lines of the whole run in one place: requests run side by
 * side, so one capture for all of them, not one each.
 */
export async function workersRuntimeSender(topic: string, vars: Record<string, string>) {
  const key = await createKey()
  const lines: Record<string, unknown>[] = []
  const log = console.log
  const error = console.error
  const keep = (line: unknown) => {
    try {
      const parsed = JSON.parse(String(line)) as Record<string, unknown>
      if (parsed.msg === 'request') lines.push(parsed)
    } catch {
      // not a log line of ours
    }
  }
  return {
    send: async (id: string) => {
      const res = await call({
        key,
        body: validBody({ call_ids: [id] }),
        // One key for the whole load: its rate limit (100 a minute) would answer most of it 429.
        vars: { ...vars, KAFKA_TOPIC: topic, RATE_LIMITER: undefined },
      })
      await res.arrayBuffer()
      return res.status
    },
    capture() {
      console.log = keep
      console.error = keep
    },
    release() {
      console.log = log
      console.error = error
    },
    outcomes: () =>
      lines.map((l) =>
        l.outcome === 'kafka_unavailable' || l.outcome === 'queued'
          ? `${l.outcome}:${String(l.kafka_reason ?? l.queue_reason ?? '?')}`
          : String(l.outcome),
      ),
    lines,
  }
}

/** Sends one request per call id to a self-hosted worker (plain workerd, no queue). */
export function selfHostedSender(worker: SelfHosted) {
  return async (id: string) => {
    const res = await fetch(`${worker.url}/calls/score`, {
      method: 'POST',
      headers: { authorization: basic(worker.apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({ ...validBody({ call_ids: [id] }), project_id: 'acme/support-bot' }),
      signal: AbortSignal.timeout(15_000),
    })
    await res.arrayBuffer()
    return res.status
  }
}
