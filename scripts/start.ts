/**
 * `npm start`: self-hosted mode. Builds the production bundle (what `wrangler deploy` uploads)
 * and serves it under plain `workerd` on http://$HOST:$PORT (default 127.0.0.1:8787).
 *
 * Settings are environment variables named like the wrangler vars and secrets (unset vars take
 * their wrangler.toml default); API keys come from the JSON file named by API_KEYS_FILE, and the
 * project directory of the internal id form (KAFKA_ID_FORM=internal) from PROJECT_IDS_FILE, and
 * a private CA for outbound TLS, if any, from TRUSTED_CA_FILE (PEM).
 */
import { lookup } from 'node:dns/promises'
import {
  buildBundle,
  checkApiKeysFile,
  checkProjectIdsFile,
  pemCertificates,
  readWorkerSettings,
  serve,
} from './lib/selfhosted.ts'

// The bundle and the generated workerd config (SELFHOSTED_STATE_DIR moves them, for the self-test).
const STATE_DIR = process.env.SELFHOSTED_STATE_DIR ?? '.wrangler/selfhosted'

function fail(message: string): never {
  process.stderr.write(`npm start: ${message}\n`)
  process.exit(2)
}

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 8787)
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`invalid PORT ${process.env.PORT}`)
const apiKeysFile = process.env.API_KEYS_FILE
if (!apiKeysFile) {
  fail(
    'API_KEYS_FILE is not set: name a JSON file {"<sha256 hex of a key>": {"wb_user_id": "…", "projects": ["entity/*"]}}',
  )
}
let keyCount = 0
try {
  keyCount = checkApiKeysFile(apiKeysFile)
} catch (e) {
  fail(e instanceof Error ? e.message : String(e))
}

// The internal id form needs the directory; without it every request would be a 503.
const projectIdsFile = process.env.PROJECT_IDS_FILE || undefined
if (process.env.KAFKA_ID_FORM === 'internal' && projectIdsFile === undefined) {
  fail(
    'KAFKA_ID_FORM is internal but PROJECT_IDS_FILE is not set: name a JSON file {"entity/project": "<internal project id>"} (docs/internal-ids.md)',
  )
}
let projectCount: number | undefined
if (projectIdsFile !== undefined) {
  try {
    projectCount = checkProjectIdsFile(projectIdsFile)
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e))
  }
}

// A private CA for outbound TLS (a self-hosted broker's or REST endpoint's certificates).
const trustedCaFile = process.env.TRUSTED_CA_FILE || undefined
let caCount = 0
if (trustedCaFile !== undefined) {
  try {
    caCount = pemCertificates(trustedCaFile).length
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e))
  }
}

const settings = readWorkerSettings('wrangler.toml')
// The worker checks its own settings: a wrong one makes /calls/score answer 503 and the log line
// name it (config_problems). Which secrets matter depends on KAFKA_REST_DIALECT, so only say
// which are absent.
const unset = settings.secrets.filter((name) => process.env[name] === undefined)
if (unset.length > 0) console.warn(`secrets not set in the environment: ${unset.join(', ')}`)
if (settings.notProvided.length > 0) {
  console.warn(`off in self-hosted mode: ${settings.notProvided.join(', ')}`)
}

// workerd reports a host that does not resolve as `internal error; reference = …` in the
// worker: name it here, once, where the cause can still be seen.
for (const problem of await unresolvedHosts(settings.vars)) console.warn(problem)

const bundle = buildBundle({ outDir: `${STATE_DIR}/bundle` })
const worker = await serve({
  bundle,
  settings,
  stateDir: STATE_DIR,
  host,
  port,
  apiKeysFile,
  projectIdsFile,
  trustedCaFile,
})
const projectsNote = projectCount === undefined ? '' : ` and ${projectCount} project id(s)`
const caNote =
  trustedCaFile === undefined ? '' : `; trusting ${caCount} CA certificate(s) of ${trustedCaFile}`
console.log(
  `weave-calls-score (self-hosted, workerd) on ${worker.url} with ${keyCount} API key(s)${projectsNote}${caNote}`,
)

let stopping = false
const stop = () => {
  if (stopping) return
  stopping = true
  worker.stop().then(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
worker.process.on('exit', (code, signal) => {
  if (stopping) return
  process.stderr.write(`workerd exited (${code ?? signal})\n`)
  process.exit(code ?? 1)
})

/**
 * The Kafka endpoint hosts this configuration produces to (the selected REST dialect's URL, or
 * the native transport's brokers) that DNS does not resolve, each as one warning line.
 */
async function unresolvedHosts(defaults: Record<string, unknown>): Promise<string[]> {
  const setting = (name: string) => process.env[name] ?? String(defaults[name] ?? '')
  const hosts: { name: string; host: string }[] = []
  if (setting('KAFKA_TRANSPORT') === 'native') {
    for (const broker of setting('KAFKA_BROKERS').split(',')) {
      const host = broker
        .trim()
        .replace(/:\d+$/, '')
        .replace(/^\[|\]$/g, '')
      if (host !== '') hosts.push({ name: 'KAFKA_BROKERS', host })
    }
  } else {
    const name =
      (setting('KAFKA_REST_DIALECT') || 'upstash') === 'upstash'
        ? 'UPSTASH_KAFKA_REST_URL'
        : 'KAFKA_REST_URL'
    try {
      hosts.push({ name, host: new URL(setting(name)).hostname.replace(/^\[|\]$/g, '') })
    } catch {
      // Not a URL: the worker itself names the setting (503, config_problems).
    }
  }
  const problems: string[] = []
  for (const { name, host } of hosts) {
    try {
      await lookup(host)
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e)
      problems.push(
        `${name}: the host ${host} does not resolve (DNS ${code}): producing fails until it does`,
      )
    }
  }
  return problems
}
