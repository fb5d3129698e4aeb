/**
 * `npm run load` (scenario `faults`, the default): many requests at concurrency >= 32 against
 * `wrangler dev` while the local sink fails a share of produce calls at random (5xx, 401, HTML
 * pages, hangs, partial answers); then the faults end, the queue drains, and every accepted job
 * must have reached the sink.
 *
 * Options (env): LOAD_REQUESTS (5000), LOAD_CONCURRENCY (32), LOAD_FAULT_SHARE (0.3),
 * LOAD_DRAIN_SECONDS (180). Exits 1 when any accepted job is missing.
 *
 * `npm run load -- scale`: a burst against a sink throttled like a managed Kafka REST endpoint
 * (SCALE_RATE produce requests a second, 429 + Retry-After beyond), once per DELIVERY_MODE
 * (direct, then queue), each with a fresh `wrangler dev`. Prints client requests, accepted, answer
 * times, Kafka REST requests (total, throttled) and per client request, jobs expected, delivered,
 * missing and duplicated, and the time from the burst's end until the last job landed.
 *
 * Options (env): SCALE_REQUESTS (600), SCALE_CONCURRENCY (12), SCALE_RATE (10),
 * SCALE_DRAIN_SECONDS (120), SCALE_MODES (direct,queue). Exits 1 when a job is missing or a
 * request was not accepted. `npm run load -- all` runs both scenarios.
 *
 * `npm run load -- kafka`: the same burst into a real Apache Kafka broker (Java 17+ and Maven;
 * docs/real-kafka.md) over the native transport, once per DELIVERY_MODE, each on a fresh topic.
 * Prints accepted, landed on the broker (read back from it), produce calls per client request
 * (from the worker's log lines), answer times and the time until the last job was on Kafka.
 * Options (env): SCALE_REQUESTS, SCALE_CONCURRENCY, SCALE_DRAIN_SECONDS, SCALE_MODES as above.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSink } from '../dev/sink/sink.ts'
import type { Fault, StoredMessage } from '../dev/sink/types.ts'
import { KafkaSetupError, type RunningKafka, readTopic, startKafka } from './lib/kafka.ts'
import { hashKey, putKeyRecord } from './lib/keys.ts'
import { writeLocalDevVars } from './lib/local-secrets.ts'

const SCENARIO = process.argv[2] ?? process.env.LOAD_SCENARIO ?? 'faults'
if (!['faults', 'scale', 'all', 'kafka'].includes(SCENARIO)) {
  throw new Error(`unknown scenario ${SCENARIO}: faults, scale, all or kafka`)
}
const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 5000)
const CONCURRENCY = Math.max(32, Number(process.env.LOAD_CONCURRENCY ?? 32))
const SHARE = Number(process.env.LOAD_FAULT_SHARE ?? 0.3)
const DRAIN_SECONDS = Number(process.env.LOAD_DRAIN_SECONDS ?? 180)
const PORT = Number(process.env.LOAD_PORT ?? 8797)
const SCALE_REQUESTS = Number(process.env.SCALE_REQUESTS ?? 600)
const SCALE_CONCURRENCY = Number(process.env.SCALE_CONCURRENCY ?? 12)
const SCALE_RATE = Number(process.env.SCALE_RATE ?? 10)
const SCALE_DRAIN_SECONDS = Number(process.env.SCALE_DRAIN_SECONDS ?? 120)
const SCALE_MODES = (process.env.SCALE_MODES ?? 'direct,queue').split(',')
const TOPIC = 'weave.score_calls'
const PROJECT = 'load/test'

let broker: RunningKafka | undefined
if (SCENARIO === 'kafka') {
  try {
    broker = await startKafka({ log: (line) => console.log(line) })
  } catch (e) {
    console.error(e instanceof KafkaSetupError ? e.message : (e as Error).message)
    process.exit(1)
  }
}
const sink = await startSink({ port: 0, username: 'dev', password: 'dev-password' })
const state = mkdtempSync(join(tmpdir(), 'calls-score-load-'))
const apiKey = randomBytes(24).toString('hex')
putKeyRecord({ local: true, persistTo: state }, hashKey(apiKey), {
  wb_user_id: 'load-user',
  projects: [`${PROJECT.split('/')[0]}/*`],
})
writeLocalDevVars(join(state, '.dev.vars'))

// The worker as configured, minus per-key rate limiting: these runs are about delivery, and one
// key at this rate would otherwise be a 429 test.
const config = '.wrangler/load.wrangler.toml'
mkdirSync('.wrangler', { recursive: true })
writeFileSync(
  config,
  readFileSync('wrangler.toml', 'utf8')
    .replace(/^main = "(.*)"$/m, 'main = "../$1"')
    .replace(/^\[\[ratelimits\]\][^[]*/m, ''),
)

const base = `http://127.0.0.1:${PORT}`
let wrangler: ChildProcess | undefined
/** The worker's JSON log lines of the running `wrangler dev`, when asked to keep them. */
let workerLines: Record<string, unknown>[] = []

/** Starts `wrangler dev` with these vars on top of wrangler.toml's; resolves once it answers. */
async function startWorker(vars: Record<string, string>, keepLog = false): Promise<void> {
  const child = spawn(
    'wrangler',
    [
      'dev',
      '--config',
      config,
      '--port',
      String(PORT),
      '--ip',
      '127.0.0.1',
      '--persist-to',
      state,
      '--env-file',
      join(state, '.dev.vars'),
      '--log-level',
      keepLog ? 'log' : 'error',
      ...Object.entries({ UPSTASH_KAFKA_REST_URL: sink.url, ...vars }).flatMap(([k, v]) => [
        '--var',
        `${k}:${v}`,
      ]),
    ],
    // The worker's own log lines (one per request) stay out of the figures, or are counted.
    { stdio: ['ignore', keepLog ? 'pipe' : 'ignore', 'inherit'] },
  )
  wrangler = child
  workerLines = []
  if (keepLog && child.stdout) {
    let rest = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        const at = line.indexOf('{')
        if (at < 0) continue
        try {
          workerLines.push(JSON.parse(line.slice(at)) as Record<string, unknown>)
        } catch {
          // wrangler's own output
        }
      }
    })
  }
  for (let i = 0; ; i++) {
    if (i > 240 || child.exitCode !== null) throw new Error('wrangler dev did not start')
    if (
      await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** Stops the running `wrangler dev` and waits for it to be gone. */
async function stopWorker(): Promise<void> {
  const child = wrangler
  wrangler = undefined
  if (!child || child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGINT')
  await exited
}

const cleanup = async () => {
  await stopWorker()
  await sink.close()
  await broker?.close()
  rmSync(state, { recursive: true, force: true })
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

const auth = `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`
const firstIdOf = (m: StoredMessage) =>
  (JSON.parse(m.value ?? '{}') as { call_ids?: string[] }).call_ids?.[0] ?? ''
const jobIdOf = (m: StoredMessage) => m.headers.find((h) => h.key === 'weave-job-id')?.value ?? ''

/** Request i's call ids: 1 to 250 of them, that is 1 to 3 jobs. */
const callIdsOf = (i: number, tag: string) =>
  Array.from({ length: 1 + ((i * 7919) % 250) }, (_, j) => `${tag}r${i}-c${j}`)

/** One POST /calls/score; its status (0 when the connection failed) and answer time. */
async function score(callIds: string[]): Promise<{ status: number; ms: number }> {
  const t0 = performance.now()
  let status = 0
  try {
    const res = await fetch(`${base}/calls/score`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        project_id: PROJECT,
        call_ids: callIds,
        scorer_refs: [`weave:///${PROJECT}/object/Toxicity:9f2c`],
      }),
    })
    status = res.status
    await res.arrayBuffer()
  } catch {
    status = 0
  }
  return { status, ms: performance.now() - t0 }
}

/** Waits until every expected first call id is on the sink, or `seconds` have passed. */
async function drain(expected: ReadonlyMap<string, unknown>, seconds: number) {
  const started = Date.now()
  let lastLanded = started
  let missing = expected.size
  for (;;) {
    const seen = new Set(sink.messages(TOPIC).map(firstIdOf))
    const now = [...expected.keys()].filter((id) => !seen.has(id)).length
    if (now < missing) lastLanded = Date.now()
    missing = now
    if (missing === 0 || Date.now() - started > seconds * 1000) break
    await new Promise((r) => setTimeout(r, 250))
  }
  return { missing, lastLandedMs: lastLanded - started }
}

/** The faults scenario; true when nothing accepted was lost. */
async function faultsScenario(): Promise<boolean> {
  await startWorker({
    KAFKA_PRODUCE_TIMEOUT_MS: '1000',
    QUEUE_RETRY_BASE_SECONDS: '1',
    QUEUE_RETRY_MAX_SECONDS: '5',
  })

  // The faults rotate every two seconds so that every failure kind meets the load.
  const faults: Fault[] = [
    { kind: 'status', status: 503, probability: SHARE },
    { kind: 'status', status: 401, probability: SHARE },
    { kind: 'html', status: 502, probability: SHARE },
    { kind: 'hang', ms: 3000, probability: SHARE },
    { kind: 'partial', failIndexes: [0], probability: SHARE },
    { kind: 'status', status: 429, probability: SHARE },
  ]
  let faultIndex = 0
  sink.setFault(faults[0] ?? null)
  const rotation = setInterval(() => {
    faultIndex = (faultIndex + 1) % faults.length
    sink.setFault(faults[faultIndex] ?? null)
  }, 2000)

  const expected = new Map<string, number>() // first call id of each chunk -> request index
  let next = 0
  let accepted = 0
  let worstMs = 0
  const statuses = new Map<number, number>()
  const started = Date.now()

  async function client() {
    for (;;) {
      const i = next++
      if (i >= REQUESTS) return
      const callIds = callIdsOf(i, '')
      const { status, ms } = await score(callIds)
      worstMs = Math.max(worstMs, ms)
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status === 200) {
        accepted++
        for (let j = 0; j < callIds.length; j += 100) expected.set(callIds[j] as string, i)
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, client))
  const loadSeconds = (Date.now() - started) / 1000
  clearInterval(rotation)
  sink.setFault(null)

  // Drain: wait until every expected chunk is on the sink (or the drain budget runs out).
  const drainStarted = Date.now()
  let messages: StoredMessage[] = []
  for (;;) {
    messages = sink.messages(TOPIC)
    const seen = new Set(messages.map(firstIdOf))
    const missing = [...expected.keys()].filter((id) => !seen.has(id)).length
    if (missing === 0 || Date.now() - drainStarted > DRAIN_SECONDS * 1000) break
    await new Promise((r) => setTimeout(r, 1000))
  }
  await new Promise((r) => setTimeout(r, 2000))
  messages = sink.messages(TOPIC)

  const seen = new Set(messages.map(firstIdOf))
  const missing = [...expected.keys()].filter((id) => !seen.has(id)).length
  const jobIds = messages.map(jobIdOf)
  const duplicates = jobIds.length - new Set(jobIds).size
  const fromRefused = messages.filter((m) => !expected.has(firstIdOf(m))).length

  console.log(`
load with faults against wrangler dev (${CONCURRENCY} concurrent, fault share ${SHARE}, kinds rotating every 2 s)
  requests           ${REQUESTS}  (${(REQUESTS / loadSeconds).toFixed(0)} req/s over ${loadSeconds.toFixed(1)} s)
  statuses           ${[...statuses].map(([s, c]) => `${s}: ${c}`).join(', ')}
  accepted           ${accepted}
  messages expected  ${expected.size}
  messages delivered ${messages.length - fromRefused}  (+${fromRefused} from requests answered non-200)
  missing            ${missing}
  duplicates         ${duplicates}  (same job id delivered twice)
  worst answer time  ${worstMs.toFixed(0)} ms
  queue drained in   ${((Date.now() - drainStarted) / 1000).toFixed(1)} s
`)
  await stopWorker()
  sink.reset()
  // Nothing accepted proves nothing: that is a failed run too.
  return missing === 0 && accepted > 0
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0

type ScaleFigures = {
  mode: string
  requests: number
  accepted: number
  p50: number
  p99: number
  burstSeconds: number
  rest: number
  throttled: number
  expected: number
  delivered: number
  missing: number
  duplicated: number
  drainSeconds: number
}

/**
 * SCALE_REQUESTS requests at SCALE_CONCURRENCY: the first call id of every accepted job (mapped
 * to its request), each answer time, and how many were accepted.
 */
async function burst(tag: string) {
  const expected = new Map<string, number>()
  const times: number[] = []
  let accepted = 0
  let next = 0
  await Promise.all(
    Array.from({ length: SCALE_CONCURRENCY }, async () => {
      for (;;) {
        const i = next++
        if (i >= SCALE_REQUESTS) return
        const callIds = callIdsOf(i, tag)
        const { status, ms } = await score(callIds)
        times.push(ms)
        if (status !== 200) continue
        accepted++
        for (let j = 0; j < callIds.length; j += 100) expected.set(callIds[j] as string, i)
      }
    }),
  )
  return { expected, times, accepted }
}

/** One burst in one delivery mode against the throttled sink. */
async function scaleRun(mode: string): Promise<ScaleFigures> {
  sink.reset()
  await startWorker({
    DELIVERY_MODE: mode,
    QUEUE_RETRY_BASE_SECONDS: '1',
    QUEUE_RETRY_MAX_SECONDS: '5',
  })
  // Throttling starts once the worker is up: its start-up sends nothing to Kafka, and the
  // bucket starts full, as a quiet endpoint's does.
  sink.setThrottle({ ratePerSecond: SCALE_RATE })
  const started = Date.now()
  const { expected, times, accepted } = await burst(mode)
  const burstSeconds = (Date.now() - started) / 1000
  const { missing, lastLandedMs } = await drain(expected, SCALE_DRAIN_SECONDS)
  // A moment more, to catch late duplicates and the consumer's last requests.
  await new Promise((r) => setTimeout(r, 2000))
  const messages = sink.messages(TOPIC).filter((m) => expected.has(firstIdOf(m)))
  const jobIds = messages.map(jobIdOf)
  const stats = sink.stats()
  await stopWorker()
  sink.setThrottle(null)
  times.sort((a, b) => a - b)
  return {
    mode,
    requests: SCALE_REQUESTS,
    accepted,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    burstSeconds,
    rest: stats.produceRequests,
    throttled: stats.throttled,
    expected: expected.size,
    delivered: new Set(jobIds).size,
    missing,
    duplicated: jobIds.length - new Set(jobIds).size,
    drainSeconds: lastLandedMs / 1000,
  }
}

/** The scale scenario, every mode; true when each met the bar it prints. */
async function scaleScenario(): Promise<boolean> {
  const runs: ScaleFigures[] = []
  for (const mode of SCALE_MODES) runs.push(await scaleRun(mode))
  const row = (label: string, f: (r: ScaleFigures) => string) =>
    `  ${label.padEnd(34)}${runs.map((r) => f(r).padStart(16)).join('')}`
  const perRequest = (r: ScaleFigures) => r.rest / r.requests
  const met = (r: ScaleFigures) =>
    r.accepted === r.requests &&
    r.p99 <= 1500 &&
    r.missing === 0 &&
    r.drainSeconds <= 60 &&
    perRequest(r) <= 0.25
  console.log(`
scale: ${SCALE_REQUESTS} requests at concurrency ${SCALE_CONCURRENCY} against wrangler dev; the sink admits ${SCALE_RATE} produce requests/s (429 + Retry-After beyond)
${row('DELIVERY_MODE', (r) => r.mode)}
${row('client requests', (r) => String(r.requests))}
${row('accepted (200)', (r) => String(r.accepted))}
${row('burst duration', (r) => `${r.burstSeconds.toFixed(1)} s`)}
${row('answer time p50', (r) => `${r.p50.toFixed(0)} ms`)}
${row('answer time p99', (r) => `${r.p99.toFixed(0)} ms`)}
${row('Kafka REST requests', (r) => String(r.rest))}
${row('  of which throttled (429)', (r) => String(r.throttled))}
${row('REST requests per client request', (r) => perRequest(r).toFixed(3))}
${row('jobs expected', (r) => String(r.expected))}
${row('jobs delivered', (r) => String(r.delivered))}
${row('jobs missing', (r) => String(r.missing))}
${row('jobs duplicated', (r) => String(r.duplicated))}
${row('last job landed after burst end', (r) => `${r.drainSeconds.toFixed(1)} s`)}
${row('bar met', (r) => (met(r) ? 'yes' : 'NO'))}
  (bar: all accepted, p99 <= 1500 ms, none missing, drained <= 60 s, <= 0.25 REST requests per client request)
`)
  return runs.every((r) => r.missing === 0 && r.accepted === r.requests)
}

/** One burst in one delivery mode into the real broker over the native transport. */
async function kafkaRun(kafka: RunningKafka, mode: string) {
  const topic = `weave.score_calls.load-${mode}-${Date.now()}`
  await kafka.createTopic(topic, kafka.partitions)
  await startWorker(
    {
      KAFKA_TRANSPORT: 'native',
      KAFKA_BROKERS: kafka.bootstrap,
      KAFKA_TLS: 'false',
      KAFKA_SASL_MECHANISM: '',
      KAFKA_TOPIC: topic,
      DELIVERY_MODE: mode,
      QUEUE_RETRY_BASE_SECONDS: '1',
      QUEUE_RETRY_MAX_SECONDS: '5',
    },
    true,
  )
  const started = Date.now()
  const { expected, times, accepted } = await burst(mode)
  const burstEnd = Date.now()
  // Read back from the broker until every accepted job is there (or the budget is spent).
  let landedAt = burstEnd
  let records: Awaited<ReturnType<typeof readTopic>> = []
  let missing = expected.size
  for (;;) {
    records = await readTopic(kafka.bootstrap, topic)
    const seen = new Set(
      records.map(
        (r) => (JSON.parse(r.value.toString('utf8')) as { call_ids: string[] }).call_ids[0] ?? '',
      ),
    )
    const now = [...expected.keys()].filter((id) => !seen.has(id)).length
    if (now < missing) landedAt = Date.now()
    missing = now
    if (missing === 0 || Date.now() - burstEnd > SCALE_DRAIN_SECONDS * 1000) break
    await new Promise((r) => setTimeout(r, 500))
  }
  await new Promise((r) => setTimeout(r, 2000))
  records = await readTopic(kafka.bootstrap, topic)
  const jobIds = records.map(
    (r) => r.headers.find(([k]) => k === 'weave-job-id')?.[1].toString('utf8') ?? '',
  )
  // Produce calls: a direct request's attempts, or one per consumer batch that produced.
  const produceCalls = workerLines.reduce(
    (n, l) =>
      n +
      (typeof l.kafka_attempts === 'number' ? l.kafka_attempts : 0) +
      (l.msg === 'queue_batch' && Number(l.acknowledged ?? 0) + Number(l.retried ?? 0) > 0 ? 1 : 0),
    0,
  )
  await stopWorker()
  await kafka.deleteTopic(topic)
  times.sort((a, b) => a - b)
  return {
    mode,
    requests: SCALE_REQUESTS,
    accepted,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    burstSeconds: (burstEnd - started) / 1000,
    produceCalls,
    expected: expected.size,
    landed: new Set(jobIds).size,
    missing,
    duplicated: jobIds.length - new Set(jobIds).size,
    lastJobSeconds: (landedAt - burstEnd) / 1000,
  }
}

/** The kafka scenario, every mode; true when nothing accepted is missing from the broker. */
async function kafkaScenario(kafka: RunningKafka): Promise<boolean> {
  const runs: Awaited<ReturnType<typeof kafkaRun>>[] = []
  for (const mode of SCALE_MODES) runs.push(await kafkaRun(kafka, mode))
  const row = (label: string, f: (r: (typeof runs)[number]) => string) =>
    `  ${label.padEnd(36)}${runs.map((r) => f(r).padStart(16)).join('')}`
  console.log(`
kafka: ${SCALE_REQUESTS} requests at concurrency ${SCALE_CONCURRENCY} against wrangler dev, native transport into Apache Kafka (${kafka.partitions} partitions)
${row('DELIVERY_MODE', (r) => r.mode)}
${row('client requests', (r) => String(r.requests))}
${row('accepted (200)', (r) => String(r.accepted))}
${row('burst duration', (r) => `${r.burstSeconds.toFixed(1)} s`)}
${row('answer time p50', (r) => `${r.p50.toFixed(0)} ms`)}
${row('answer time p99', (r) => `${r.p99.toFixed(0)} ms`)}
${row('Kafka produce calls', (r) => String(r.produceCalls))}
${row('produce calls per client request', (r) => (r.produceCalls / r.requests).toFixed(3))}
${row('jobs expected', (r) => String(r.expected))}
${row('jobs landed on the broker', (r) => String(r.landed))}
${row('jobs missing', (r) => String(r.missing))}
${row('jobs duplicated', (r) => String(r.duplicated))}
${row('last job on Kafka after burst end', (r) => `${r.lastJobSeconds.toFixed(1)} s`)}
`)
  return runs.every((r) => r.missing === 0 && r.accepted === r.requests)
}

let ok = true
try {
  if (SCENARIO === 'kafka' && broker) ok = await kafkaScenario(broker)
  if (SCENARIO === 'faults' || SCENARIO === 'all') ok = (await faultsScenario()) && ok
  if (SCENARIO === 'scale' || SCENARIO === 'all') ok = (await scaleScenario()) && ok
} finally {
  await cleanup()
}
process.exit(ok ? 0 : 1)
