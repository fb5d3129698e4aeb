/**
 * Self-hosted mode: the production bundle (what `wrangler deploy` uploads) served by plain
 * `workerd`, configured from environment variables named like the wrangler vars and secrets.
 * Shared by `npm start`, `npm run bench` and the self-test.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { unstable_readConfig } from 'wrangler'
import { ApiKeyRecordSchema } from '../../src/auth/key-record.ts'
import { hashKey } from './keys.ts'
import { untilServing } from './processes.ts'
import { entriesProblems, reverseEntries } from './projects.ts'

const require = createRequire(import.meta.url)
const WORKERD = require.resolve('workerd/bin/workerd')
const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js')
const FILE_KV_MODULE = fileURLToPath(new URL('./file-kv.js', import.meta.url).href)
const FILE_KV_MODULE_NAME = 'weave-selfhosted:file-kv'
/** KV bindings self-hosted mode serves from files. */
const FILE_KV_BINDINGS = ['API_KEYS', 'PROJECT_IDS']

/** A wrangler var's default: wrangler allows strings and JSON values. */
type VarValue = string | number | boolean | null | VarValue[] | { [key: string]: VarValue }

/** What self-hosted mode takes from `wrangler.toml`. */
export type WorkerSettings = {
  /** Absolute path of the Worker's entry module. */
  main: string
  compatibilityDate: string
  compatibilityFlags: string[]
  /**
   * `[vars]`: the defaults used when the environment does not set a variable (with
   * {@link SELF_HOSTED_DEFAULTS} over them).
   */
  vars: Record<string, VarValue>
  /** `[secrets] required`: always read from the environment. */
  secrets: string[]
  /** KV namespaces by binding name. */
  kvNamespaces: string[]
  /** Durable Object namespaces of this Worker's own classes: binding name and class name. */
  durableObjects: { name: string; className: string }[]
  /** Bindings of Cloudflare services that self-hosted mode does not provide, described. */
  notProvided: string[]
}

/**
 * Self-hosted defaults that differ from `wrangler.toml`'s (a variable set in the environment
 * still wins). workerd runs every Durable Object of the worker in the worker's own isolate, on the
 * process's one JavaScript thread: more producer shards add no parallelism there, they only split
 * the calls one shard would gather into a produce request (docs/self-hosting.md).
 */
export const SELF_HOSTED_DEFAULTS: Readonly<Record<string, string>> = {
  KAFKA_PRODUCER_SHARDS: '1',
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []
const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isRecord) : [])

/** Reads `wrangler.toml` (or another config) the way wrangler does, keeping what workerd needs. */
export function readWorkerSettings(configPath = 'wrangler.toml'): WorkerSettings {
  const config: unknown = unstable_readConfig({ config: configPath })
  if (!isRecord(config)) throw new Error(`could not read ${configPath}`)
  const { main, compatibility_date: date } = config
  if (typeof main !== 'string' || typeof date !== 'string') {
    throw new Error(`${configPath} must set main and compatibility_date`)
  }
  const queues = isRecord(config.queues) ? config.queues : {}
  const durableBindings = list(
    isRecord(config.durable_objects) ? config.durable_objects.bindings : [],
  )
  const named = (key: string, field: string, what: string) =>
    list(config[key]).map((b) => `${String(b[field])} (${what})`)
  const notProvided = [
    ...list(config.kv_namespaces)
      .filter((b) => !FILE_KV_BINDINGS.includes(String(b.binding)))
      .map((b) => `${String(b.binding)} (KV namespace)`),
    ...list(queues.producers).map((q) => `${String(q.binding)} (queue producer)`),
    ...list(queues.consumers).map((q) => `queue consumer of ${String(q.queue)}`),
    ...named('ratelimits', 'name', 'rate limiter'),
    ...named('analytics_engine_datasets', 'binding', 'Analytics Engine dataset'),
    ...named('r2_buckets', 'binding', 'R2 bucket'),
    ...named('d1_databases', 'binding', 'D1 database'),
    ...named('services', 'binding', 'service binding'),
    // Another Worker's classes (script_name) cannot run here; this Worker's own can.
    ...durableBindings
      .filter((b) => b.script_name !== undefined)
      .map((b) => `${String(b.name)} (Durable Object namespace of ${String(b.script_name)})`),
  ]
  const vars: Record<string, VarValue> = {}
  if (isRecord(config.vars)) {
    for (const [name, value] of Object.entries(config.vars)) {
      vars[name] = SELF_HOSTED_DEFAULTS[name] ?? (value as VarValue)
    }
  }
  return {
    main: resolve(main),
    compatibilityDate: date,
    compatibilityFlags: strings(config.compatibility_flags),
    vars,
    secrets: strings(isRecord(config.secrets) ? config.secrets.required : []),
    kvNamespaces: list(config.kv_namespaces).map((b) => String(b.binding)),
    durableObjects: durableBindings
      .filter((b) => b.script_name === undefined)
      .map((b) => ({ name: String(b.name), className: String(b.class_name) })),
    notProvided,
  }
}

/** The production bundle: a directory and its main module's file name. */
export type Bundle = { dir: string; main: string }

/**
 * Builds the bundle `wrangler deploy` would upload (`--dry-run --outdir`), for the config's
 * `main` or for another entry built with the same config (the benchmark's floor worker).
 */
export function buildBundle(options: { outDir: string; config?: string; entry?: string }): Bundle {
  // A stale module from an earlier build must not be served alongside this one.
  rmSync(options.outDir, { recursive: true, force: true })
  const args = [WRANGLER, 'deploy', '--dry-run', '--outdir', options.outDir]
  if (options.config) args.push('--config', options.config)
  if (options.entry) args.push(options.entry)
  const built = spawnSync(process.execPath, args, {
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    encoding: 'utf8',
  })
  if (built.status !== 0) {
    throw new Error(`wrangler deploy --dry-run failed:\n${built.stdout}\n${built.stderr}`)
  }
  const entry = options.entry ?? readWorkerSettings(options.config).main
  const main = `${basename(entry, extname(entry))}.js`
  const modules = readdirSync(options.outDir).filter((f) => /\.(m?js|wasm|bin|txt)$/.test(f))
  if (!modules.includes(main) || modules.length !== 1) {
    throw new Error(`expected one module ${main} in ${options.outDir}, found ${modules.join(', ')}`)
  }
  return { dir: resolve(options.outDir), main }
}

/** Writes an `API_KEYS_FILE` granting one key (stored under its SHA-256) this record. */
export function writeApiKeysFile(
  file: string,
  apiKey: string,
  record: { wb_user_id: string; projects: string[] },
): void {
  writeFileSync(file, JSON.stringify({ [hashKey(apiKey)]: record }))
}

/**
 * Checks an `API_KEYS_FILE` before workerd embeds it: `{ "<sha256 hex>": {wb_user_id, projects} }`,
 * each record valid for the worker's own schema. Returns the number of keys; throws with every
 * problem found.
 */
export function checkApiKeysFile(path: string): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new Error(`API_KEYS_FILE ${path}: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!isRecord(parsed)) throw new Error(`API_KEYS_FILE ${path}: expected a JSON object`)
  const problems: string[] = []
  for (const [hash, record] of Object.entries(parsed)) {
    if (!/^[0-9a-f]{64}$/.test(hash)) {
      problems.push(`${hash.slice(0, 16)}…: keys must be the lowercase hex SHA-256 of an API key`)
    }
    if (!ApiKeyRecordSchema.safeParse(record).success) {
      problems.push(`${hash.slice(0, 16)}…: expected {"wb_user_id": "…", "projects": ["…", …]}`)
    }
  }
  if (problems.length > 0) throw new Error(`API_KEYS_FILE ${path}:\n  ${problems.join('\n  ')}`)
  return Object.keys(parsed).length
}

/**
 * Checks a `PROJECT_IDS_FILE` (the project directory of the internal id form) before workerd
 * embeds it: `{ "entity/project": "<internal id>" }`, each entry one `npm run projects` would
 * store. Returns the number of projects; throws with every problem found.
 */
export function checkProjectIdsFile(path: string): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new Error(`PROJECT_IDS_FILE ${path}: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!isRecord(parsed)) {
    throw new Error(`PROJECT_IDS_FILE ${path}: expected {"entity/project": "<internal id>", …}`)
  }
  const problems = entriesProblems(parsed)
  if (problems.length > 0) throw new Error(`PROJECT_IDS_FILE ${path}:\n  ${problems.join('\n  ')}`)
  return Object.keys(parsed).length
}

/**
 * The project file as `npm run projects` would store it: its entries and their reverse entries
 * (the worker reads those for internal scorer refs), written next to the generated config.
 */
function withReverseEntries(file: string, stateDir: string): string {
  const entries = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>
  const out = join(stateDir, 'project-ids.json')
  writeFileSync(out, JSON.stringify({ ...entries, ...reverseEntries(entries) }))
  return out
}

/** A Cap'n Proto text literal. */
function text(value: string): string {
  let out = '"'
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return `${out}"`
}

/** How the generated config is wired; everything else comes from {@link WorkerSettings}. */
export type ServeOptions = {
  bundle: Bundle
  settings: WorkerSettings
  /** Directory for the generated config. */
  stateDir: string
  host: string
  port: number
  /** `API_KEYS_FILE`: served as the `API_KEYS` binding. */
  apiKeysFile?: string
  /** `PROJECT_IDS_FILE`: served as the `PROJECT_IDS` binding (the internal id form's directory). */
  projectIdsFile?: string | undefined
  /**
   * `TRUSTED_CA_FILE`: PEM certificates trusted for the Worker's outbound TLS (a Kafka broker or
   * REST endpoint behind a private CA), besides the public CAs.
   */
  trustedCaFile?: string | undefined
  /** The environment workerd reads `fromEnvironment` bindings from (default: this process's). */
  env?: NodeJS.ProcessEnv
}

/** The certificates of a PEM file, each a PEM block; throws when it holds none. */
export function pemCertificates(file: string): string[] {
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (e) {
    throw new Error(`TRUSTED_CA_FILE ${file}: ${(e as Error).message}`)
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (certs.length === 0) throw new Error(`TRUSTED_CA_FILE ${file}: no PEM certificate in it`)
  return certs
}

/**
 * The workerd config: vars set in the environment and every secret are `fromEnvironment`
 * bindings (secrets never land on disk), unset vars take their `wrangler.toml` default, and
 * `API_KEYS` and `PROJECT_IDS` are wrapped bindings over the keys file and the project file. The Worker may reach public and private
 * addresses (a self-hosted Kafka REST endpoint is usually on the private network).
 */
export function renderConfig(options: ServeOptions): string {
  const env = options.env ?? process.env
  const { settings } = options
  const bindings: string[] = []
  for (const [name, value] of Object.entries(settings.vars)) {
    if (env[name] !== undefined)
      bindings.push(`(name = ${text(name)}, fromEnvironment = ${text(name)})`)
    else if (typeof value === 'string')
      bindings.push(`(name = ${text(name)}, text = ${text(value)})`)
    else bindings.push(`(name = ${text(name)}, json = ${text(JSON.stringify(value))})`)
  }
  for (const name of settings.secrets) {
    bindings.push(`(name = ${text(name)}, fromEnvironment = ${text(name)})`)
  }
  const files: [string, string | undefined][] = [
    ['API_KEYS', options.apiKeysFile],
    ['PROJECT_IDS', options.projectIdsFile],
  ]
  const served = files.filter(
    (f): f is [string, string] => f[1] !== undefined && settings.kvNamespaces.includes(f[0]),
  )
  for (const [name, given] of served) {
    const file = name === 'PROJECT_IDS' ? withReverseEntries(given, options.stateDir) : given
    bindings.push(
      `(name = ${text(name)}, wrapped = (moduleName = ${text(FILE_KV_MODULE_NAME)}, innerBindings = [(name = "records", json = embed ${text(resolve(file))}), (name = "name", text = ${text(name)})]))`,
    )
  }
  // This Worker's Durable Objects, in memory: they keep connections, not data.
  const classes = [...new Set(settings.durableObjects.map((d) => d.className))]
  for (const { name, className } of settings.durableObjects) {
    bindings.push(
      `(name = ${text(name)}, durableObjectNamespace = (className = ${text(className)}))`,
    )
  }
  const durable =
    classes.length > 0
      ? `
  durableObjectNamespaces = [${classes.map((c) => `(className = ${text(c)}, uniqueKey = ${text(`weave-selfhosted-${c}`)})`).join(', ')}],
  durableObjectStorage = (inMemory = void),`
      : ''
  const extensions =
    served.length > 0
      ? [
          `(modules = [(name = ${text(FILE_KV_MODULE_NAME)}, internal = true, esModule = embed ${text(FILE_KV_MODULE)})])`,
        ]
      : []
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  // The public CAs always; a private CA on top when the operator names one (workerd's
  // `trustedCertificates`: a PEM text per certificate).
  const trusted = options.trustedCaFile
    ? `, trustedCertificates = [${pemCertificates(options.trustedCaFile).map(text).join(', ')}]`
    : ''
  return `# Generated by scripts/lib/selfhosted.ts; regenerated on every start.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private"], tlsOptions = (trustBrowserCas = true${trusted}))),
  ],
  sockets = [(name = "http", address = ${text(`${host}:${options.port}`)}, http = (), service = "main")],
  extensions = [${extensions.join(', ')}],
);

const worker :Workerd.Worker = (
  modules = [(name = ${text(options.bundle.main)}, esModule = embed ${text(join(options.bundle.dir, options.bundle.main))})],
  compatibilityDate = ${text(settings.compatibilityDate)},
  compatibilityFlags = [${settings.compatibilityFlags.map(text).join(', ')}],
  bindings = [
    ${bindings.join(',\n    ')},
  ],${durable}
);
`
}

/** A running workerd serving one bundle. */
export type RunningWorkerd = {
  url: string
  process: ChildProcess
  /** Stops workerd (SIGTERM, then SIGKILL after 5 s); resolves once it has exited. */
  stop(): Promise<void>
}

/**
 * Writes the config and starts `workerd serve`; resolves once it answers HTTP. `stdio` is where
 * workerd's output (the request log) goes.
 */
export async function serve(
  options: ServeOptions & {
    stdio?: 'inherit' | 'ignore' | 'pipe'
    /** `host:port` for workerd's V8 inspector (profiling); off by default. */
    inspector?: string
    /** File for workerd's async activity trace (`--async-trace`, bench:turns); off by default. */
    asyncTrace?: string
  },
): Promise<RunningWorkerd> {
  mkdirSync(options.stateDir, { recursive: true })
  const configPath = join(options.stateDir, 'config.capnp')
  writeFileSync(configPath, renderConfig(options))
  chmodSync(configPath, 0o600)
  // `-I /` lets the config embed files by absolute path (the bundle, the keys file).
  const args = ['serve', '-I', '/', configPath]
  if (options.inspector) args.push('--inspector-addr', options.inspector)
  if (options.asyncTrace) args.push('--async-trace', options.asyncTrace)
  const child = spawn(WORKERD, args, {
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit'],
  })
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
  const probeHost = ['0.0.0.0', '::', '*'].includes(options.host) ? '127.0.0.1' : options.host
  const probe = `http://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${options.port}`
  // Any HTTP answer means the socket is served; the floor worker has no /health.
  if (await untilServing(probe, child, { timeoutMs: 30_000, intervalMs: 100, anyAnswer: true })) {
    return { url: probe, process: child, stop }
  }
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(`workerd exited (${child.exitCode ?? child.signalCode}) before serving`)
  }
  await stop()
  throw new Error('workerd did not answer within 30 s')
}
