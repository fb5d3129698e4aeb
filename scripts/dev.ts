/**
 * `npm run dev`: the worker under `wrangler dev`, wired to a local Kafka REST sink when no external
 * Kafka URL is configured, with a local API key and the dev project's directory entry provisioned
 * and a ready-to-paste curl printed. `KAFKA_ID_FORM=internal npm run dev` starts it in the
 * internal id form (docs/internal-ids.md). `npm run dev -- --kafka` starts a real Apache Kafka broker
 * instead of the sink (Java 17+ and Maven; docs/real-kafka.md) and produces to it over Kafka's own
 * protocol (`KAFKA_TRANSPORT=native`); `KAFKA_SASL_MECHANISM=scram-sha-256` (or plain,
 * scram-sha-512) goes through the broker's SASL listener.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { startSink } from '../dev/sink/sink.ts'
import {
  KAFKA_USER,
  KafkaSetupError,
  type RunningKafka,
  startKafka,
  stopWithLauncher,
} from './lib/kafka.ts'
import { hashKey, putKeyRecord } from './lib/keys.ts'
import { putProject } from './lib/projects.ts'

const WORKER_PORT = Number(process.env.PORT ?? 8787)
const SINK_PORT = Number(process.env.SINK_PORT ?? 8788)
const STATE_DIR = '.wrangler/dev'
const DEV_PROJECT = 'dev/playground'
// Weave's own test converter's choice: the internal id is the base64 of the external one.
const DEV_PROJECT_INTERNAL_ID = Buffer.from(DEV_PROJECT).toString('base64')

if (!existsSync('.dev.vars')) {
  copyFileSync('.dev.vars.example', '.dev.vars')
  console.log('created .dev.vars from .dev.vars.example (local sink credentials)')
}
const devVars = Object.fromEntries(
  readFileSync('.dev.vars', 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
)

// KAFKA_REST_DIALECT (environment or .dev.vars) picks the produce API; an external endpoint for
// that dialect wins, otherwise the local sink, which speaks every dialect, stands in for Kafka.
const setting = (name: string) => process.env[name] ?? devVars[name] ?? ''
const dialect = setting('KAFKA_REST_DIALECT') || 'upstash'
const urlVar = dialect === 'upstash' ? 'UPSTASH_KAFKA_REST_URL' : 'KAFKA_REST_URL'
let kafkaUrl = setting(urlVar)
const vars: Record<string, string> = { KAFKA_REST_DIALECT: dialect }
// Which ids the messages carry (environment or .dev.vars); wrangler.toml's default otherwise.
const idForm = setting('KAFKA_ID_FORM')
if (idForm !== '') vars.KAFKA_ID_FORM = idForm
let closeSink: (() => Promise<void>) | undefined
let broker: RunningKafka | undefined
if (process.argv.includes('--kafka')) {
  try {
    broker = await startKafka({ log: (line) => console.log(line) })
  } catch (e) {
    console.error(e instanceof KafkaSetupError ? e.message : (e as Error).message)
    process.exit(1)
  }
  const mechanism = setting('KAFKA_SASL_MECHANISM')
  Object.assign(vars, {
    KAFKA_TRANSPORT: 'native',
    KAFKA_BROKERS: mechanism ? broker.saslBootstrap : broker.bootstrap,
    // The local broker's listeners are plaintext; production keeps the default, TLS on.
    KAFKA_TLS: 'false',
    KAFKA_SASL_MECHANISM: mechanism,
    KAFKA_USERNAME: KAFKA_USER.username,
    KAFKA_PASSWORD: KAFKA_USER.password,
  })
  kafkaUrl = `kafka://${vars.KAFKA_BROKERS}`
  const running = broker
  closeSink = () => running.close()
  console.log(
    `local Apache Kafka on ${vars.KAFKA_BROKERS} (native transport${mechanism ? `, SASL ${mechanism}` : ''}); topic ${broker.topic} with ${broker.partitions} partitions`,
  )
} else if (kafkaUrl === '') {
  const sink = await startSink({
    port: SINK_PORT,
    username: devVars.UPSTASH_KAFKA_REST_USERNAME ?? 'dev',
    password: devVars.UPSTASH_KAFKA_REST_PASSWORD ?? 'dev-password',
  })
  kafkaUrl = sink.url
  // For kafka-rest-v2, the sink answers as Confluent, Redpanda or Karapace (SINK_V2_FLAVOR).
  const flavor = process.env.SINK_V2_FLAVOR
  vars[urlVar] = dialect === 'kafka-rest-v2' && flavor ? `${sink.url}/flavor/${flavor}` : sink.url
  if (dialect === 'confluent-v3' && setting('KAFKA_CLUSTER_ID') === '') {
    vars.KAFKA_CLUSTER_ID = 'local-cluster'
  }
  closeSink = () => sink.close()
  console.log(`local Kafka REST sink on ${sink.url} (dialect ${dialect})`)
}

mkdirSync(STATE_DIR, { recursive: true })
const keyFile = `${STATE_DIR}/api-key.json`
const apiKey = existsSync(keyFile)
  ? (JSON.parse(readFileSync(keyFile, 'utf8')) as { key: string }).key
  : `dev-${randomBytes(24).toString('hex')}`
writeFileSync(
  keyFile,
  JSON.stringify({
    key: apiKey,
    ...(broker ? { kafkaBootstrap: broker.bootstrap, topic: broker.topic } : { sinkUrl: kafkaUrl }),
  }),
)
// The same path as `npm run keys -- create --local`, with a key kept across runs.
putKeyRecord({ local: true }, hashKey(apiKey), {
  wb_user_id: 'dev-user',
  projects: ['dev/*'],
  created: new Date().toISOString(),
})
// The same path as `npm run projects -- put --local`, so the internal form resolves the dev project.
putProject({ local: true }, DEV_PROJECT, DEV_PROJECT_INTERNAL_ID)

const wrangler = spawn(
  'wrangler',
  [
    'dev',
    '--port',
    String(WORKER_PORT),
    '--ip',
    '127.0.0.1',
    ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      // Offline, wrangler's fetch of Request.cf data fails with a stack trace before falling
      // back to a placeholder; the worker reads nothing from request.cf, so do not fetch it.
      CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? 'false',
      // No dev registry (empty path: off): it watches for other local Workers, and its first
      // update, this worker registering itself, rebuilds the worker and prints the bindings
      // table a second time. This worker binds no other local Worker.
      WRANGLER_REGISTRY_PATH: process.env.WRANGLER_REGISTRY_PATH ?? '',
    },
  },
)

const base = `http://127.0.0.1:${WORKER_PORT}`
for (let i = 0; i < 240; i++) {
  if (wrangler.exitCode !== null) break
  const up = await fetch(`${base}/health`).then(
    () => true,
    () => false,
  )
  if (up) {
    console.log(`
The worker is up on ${base} (${idForm === 'internal' ? `internal id form: ${DEV_PROJECT} is ${DEV_PROJECT_INTERNAL_ID} on Kafka` : 'external id form'}). Enqueue a scoring job:

  curl -s -u 'api:${apiKey}' -H 'content-type: application/json' \\
    -d '{"project_id":"${DEV_PROJECT}","call_ids":["0190a1b2-0000-7000-8000-000000000001"],"scorer_refs":["weave:///${DEV_PROJECT}/object/Toxicity:9f2c"]}' \\
    ${base}/calls/score

Then see what landed on Kafka:  npm run messages
`)
    break
  }
  await new Promise((r) => setTimeout(r, 500))
}

const stop = async () => {
  wrangler.kill('SIGINT')
  await closeSink?.()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
stopWithLauncher(stop)
wrangler.on('exit', async (code) => {
  await closeSink?.()
  process.exit(code ?? 0)
})
