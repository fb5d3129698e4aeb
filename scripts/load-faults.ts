/**
 * `npm run load`: many requests at concurrency >= 32 against `wrangler dev` while the local sink
 * fails a share of produce calls at random (5xx, 401, HTML pages, hangs, partial answers); then
 * the faults end, the queue drains, and every accepted job must have reached the sink.
 *
 * Options (env): LOAD_REQUESTS (5000), LOAD_CONCURRENCY (32), LOAD_FAULT_SHARE (0.3),
 * LOAD_DRAIN_SECONDS (180). Exits 1 when any accepted job is missing.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSink } from '../dev/sink/sink.ts'
import type { Fault, StoredMessage } from '../dev/sink/types.ts'
import { hashKey } from './lib/keys.ts'

const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 5000)
const CONCURRENCY = Math.max(32, Number(process.env.LOAD_CONCURRENCY ?? 32))
const SHARE = Number(process.env.LOAD_FAULT_SHARE ?? 0.3)
const DRAIN_SECONDS = Number(process.env.LOAD_DRAIN_SECONDS ?? 180)
const PORT = Number(process.env.LOAD_PORT ?? 8797)
const TOPIC = 'weave.score_calls'
const PROJECT = 'load/test'

const sink = await startSink({ port: 0, username: 'dev', password: 'dev-password' })
const state = mkdtempSync(join(tmpdir(), 'calls-score-load-'))
const apiKey = randomBytes(24).toString('hex')
const put = spawnSync(
  'wrangler',
  [
    'kv',
    'key',
    'put',
    '--binding',
    'API_KEYS',
    '--local',
    '--persist-to',
    state,
    hashKey(apiKey),
    JSON.stringify({ wb_user_id: 'load-user', projects: [`${PROJECT.split('/')[0]}/*`] }),
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
)
if (put.status !== 0) throw new Error('could not provision the API key')
writeFileSync(
  join(state, '.dev.vars'),
  'UPSTASH_KAFKA_REST_USERNAME=dev\nUPSTASH_KAFKA_REST_PASSWORD=dev-password\n',
)

// The worker as configured, minus per-key rate limiting: this run is about delivery under
// faults, and one key at this rate would otherwise be a 429 test.
const config = '.wrangler/load.wrangler.toml'
writeFileSync(
  config,
  readFileSync('wrangler.toml', 'utf8')
    .replace(/^main = "(.*)"$/m, 'main = "../$1"')
    .replace(/^\[\[ratelimits\]\][^[]*/m, ''),
)

const vars = {
  UPSTASH_KAFKA_REST_URL: sink.url,
  KAFKA_PRODUCE_TIMEOUT_MS: '1000',
  QUEUE_RETRY_BASE_SECONDS: '1',
  QUEUE_RETRY_MAX_SECONDS: '5',
}
const wrangler = spawn(
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
    'error',
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
)
const base = `http://127.0.0.1:${PORT}`
const cleanup = async () => {
  wrangler.kill('SIGINT')
  await sink.close()
  rmSync(state, { recursive: true, force: true })
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

for (let i = 0; ; i++) {
  if (i > 240 || wrangler.exitCode !== null) throw new Error('wrangler dev did not start')
  if (
    await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break
  await new Promise((r) => setTimeout(r, 500))
}

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

const auth = `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`
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
    const n = 1 + ((i * 7919) % 250)
    const callIds = Array.from({ length: n }, (_, j) => `r${i}-c${j}`)
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
    worstMs = Math.max(worstMs, performance.now() - t0)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status === 200) {
      accepted++
      for (let j = 0; j < n; j += 100) expected.set(callIds[j] as string, i)
    }
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, client))
const loadSeconds = (Date.now() - started) / 1000
clearInterval(rotation)
sink.setFault(null)

// Drain: wait until every expected chunk is on the sink (or the drain budget runs out).
const firstIdOf = (m: StoredMessage) =>
  (JSON.parse(m.value ?? '{}') as { call_ids?: string[] }).call_ids?.[0] ?? ''
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
const jobIds = messages.map((m) => m.headers.find((h) => h.key === 'weave-job-id')?.value ?? '')
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
await cleanup()
// Nothing accepted proves nothing: that is a failed run too.
process.exit(missing === 0 && accepted > 0 ? 0 : 1)
