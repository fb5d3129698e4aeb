/**
 * What `npm run bench` and `npm run bench:profile` share: the request bodies, the set-up (sink,
 * production bundles under workerd, an API key) and the load generator. Loopback only.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import autocannon from 'autocannon'
import { KafkaSetupError, type RunningKafka, startKafka } from '../scripts/lib/kafka.ts'
import { freePort } from '../scripts/lib/ports.ts'
import { stopGroup, untilServing } from '../scripts/lib/processes.ts'
import {
  type Bundle,
  buildBundle,
  type RunningWorkerd,
  readWorkerSettings,
  serve,
  writeApiKeysFile,
} from '../scripts/lib/selfhosted.ts'

export { freePort }

const OUT = 'bench/out'
const PROJECT = 'bench/project'

/** The three bodies: call ids and scorer refs per request. */
export const BODIES = {
  small: { ids: 10, scorers: 2 },
  large: { ids: 1000, scorers: 5 },
  max: { ids: 10_000, scorers: 100 },
} as const
export type BodyName = keyof typeof BODIES

/**
 * The servers a run can start: the worker, its floor (bench/floor-worker.ts), the stack floor
 * (bench/stack-worker.ts: the floor's work on the worker's required stack) and the baseline (the
 * worker's own `src/` as of another git revision, for measuring a change against the code before
 * it in the same run).
 */
export const SERVERS = ['worker', 'floor', 'stack', 'baseline'] as const
export type ServerName = (typeof SERVERS)[number]

// The baseline's sources go inside the repository so that its imports resolve node_modules.
const BASELINE_SOURCES = join(OUT, 'baseline-src')

const ENTRIES: Record<Exclude<ServerName, 'worker'>, string> = {
  floor: 'bench/floor-worker.ts',
  stack: 'bench/stack-worker.ts',
  baseline: join(BASELINE_SOURCES, 'src/index.ts'),
}

/**
 * A config edit that drops every `[[…]]` table naming `binding` (its `name = ` or `binding = `
 * line), e.g. a Durable Object binding, and the migrations that would then name a missing class.
 */
export function withoutBinding(binding: string): (toml: string) => string {
  return (toml) =>
    toml
      .split(/^(?=\[)/m)
      .filter(
        (block) =>
          !(
            block.startsWith('[[') &&
            new RegExp(`^(name|binding)\\s*=\\s*"${binding}"`, 'm').test(block)
          ) && !block.startsWith('[[migrations]]'),
      )
      .join('')
}

/**
 * A copy of wrangler.toml at `file` (its `main` still pointing at the worker's entry), edited by
 * `edit`: the bench's variants of the worker's own config.
 */
export function writeConfigCopy(file: string, edit: (toml: string) => string = (t) => t): string {
  const dir = resolve(file, '..')
  mkdirSync(dir, { recursive: true })
  const toml = readFileSync('wrangler.toml', 'utf8').replace(
    /^main = "(.*)"$/m,
    (_, main: string) => `main = "${relative(dir, resolve(main))}"`,
  )
  writeFileSync(file, edit(toml))
  return file
}

/** Writes `src/` as of git revision `ref` where the baseline server is built from. */
function extractBaseline(ref: string): void {
  rmSync(BASELINE_SOURCES, { recursive: true, force: true })
  mkdirSync(BASELINE_SOURCES, { recursive: true })
  const archive = execFileSync('git', ['archive', '--format=tar', ref, 'src'], {
    maxBuffer: 64 * 1024 * 1024,
  })
  execFileSync('tar', ['-x', '-C', BASELINE_SOURCES], { input: archive })
}

/** A body's size: call ids and scorer refs. */
export type BodyShape = { ids: number; scorers: number }

/** A request body like the SDK's: UUIDv7-shaped call ids, client scorer refs of one project. */
export function requestBody(shape: BodyName | BodyShape): string {
  const { ids, scorers } = typeof shape === 'string' ? BODIES[shape] : shape
  const hex = (n: number, width: number) => n.toString(16).padStart(width, '0')
  return JSON.stringify({
    project_id: PROJECT,
    call_ids: Array.from(
      { length: ids },
      (_, i) => `0190a1b2-${hex(i >>> 12, 4)}-7000-8000-${hex(i, 12)}`,
    ),
    scorer_refs: Array.from(
      { length: scorers },
      (_, i) => `weave:///${PROJECT}/object/Scorer${i}:${hex(i * 2654435761, 16)}`,
    ),
  })
}

/** The sink in its own process (dev/sink/cli.ts runs startSink), so it does not share our CPU. */
export function startSinkProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['dev/sink/cli.ts', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1]
      if (url) resolve({ url, child })
    })
    child.once('exit', (code) => reject(new Error(`sink exited (${code})`)))
  })
}

/**
 * One fixed-length load run: mean requests/s, latency percentiles (ms), failures, and the
 * server's CPU time per request (µs; NaN where /proc is missing): on a shared machine the CPU a
 * request costs is steadier than the throughput.
 */
export type Run = {
  rps: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  cpuUsPerRequest: number
  /** Requests sent, and of those answered 2xx. */
  requests: number
  accepted: number
}

/** CPU time (user + system) a process has used so far, in µs, from /proc (Linux). */
export function cpuUs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return (ticks * 1_000_000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}
// USER_HZ: 100 on every Linux architecture Node supports.
const CLOCK_TICKS = 100

/** Drives `POST /calls/score` with one body at a fixed concurrency for `seconds`. */
export function load(
  url: string,
  body: string,
  auth: string,
  seconds: number,
  connections: number,
  pid?: number,
): Promise<Run> {
  const cpuBefore = cpuUs(pid)
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/calls/score`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body,
        connections,
        duration: seconds,
      },
      (err, result) => {
        if (err) return reject(err)
        resolve({
          cpuUsPerRequest: (cpuUs(pid) - cpuBefore) / result.requests.total,
          rps: result.requests.average,
          p50: result.latency.p50,
          p99: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors,
          requests: result.requests.total,
          accepted: result['2xx'],
        })
      },
    )
  })
}

/** Everything a benchmark run started; `stop` ends all of it. */
export type Bench = {
  servers: Partial<Record<ServerName, RunningWorkerd>>
  bundles: Partial<Record<ServerName, Bundle>>
  /** `Authorization` header of the bench's API key. */
  auth: string
  sinkUrl: string
  /** Drops what the sink stored (it keeps every record in memory). */
  resetSink(): Promise<void>
  stop(): Promise<void>
}

/**
 * A bench that serves nothing itself (its servers are the caller's): `stop()` runs `stoppers`
 * in reverse order of registration, each failure ignored, so a watchdog can stop everything.
 */
export function stoppersBench(stoppers: (() => Promise<unknown>)[]): Bench {
  return {
    servers: {},
    bundles: {},
    auth: '',
    sinkUrl: '',
    resetSink: async () => {},
    stop: async () => {
      for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => {})
    },
  }
}

/**
 * Builds the production bundle (and the floors' and baseline's, with the same wrangler config), starts the sink
 * and serves each bundle under workerd on a free loopback port, with a fresh API key.
 */
export async function startBench(options: {
  servers: readonly ServerName[]
  inspector?: string
  /** Each server writes workerd's async activity trace to `bench/out/<server>/async-trace.jsonl`. */
  asyncTrace?: boolean
  /** Git revision the `baseline` server is built from (required when it is one of `servers`). */
  baseline?: string
  /** Settings over the bench's own (e.g. the native transport's, for bench:profile's `native`). */
  env?: Record<string, string>
}): Promise<Bench> {
  mkdirSync(OUT, { recursive: true })
  if (options.servers.includes('baseline')) {
    if (!options.baseline) throw new Error('the baseline server needs a git revision')
    extractBaseline(options.baseline)
  }
  // The floors export no Durable Object class (and the baseline may predate the producer
  // shards): they are built and served with the worker's config minus that binding.
  const floorConfig = writeConfigCopy(
    join(OUT, 'floors.wrangler.toml'),
    withoutBinding('KAFKA_PRODUCERS'),
  )
  const settingsOf = (name: ServerName) =>
    readWorkerSettings(name === 'worker' ? 'wrangler.toml' : floorConfig)
  const bundles: Bench['bundles'] = {}
  for (const name of options.servers) {
    bundles[name] = buildBundle(
      name === 'worker'
        ? { outDir: join(OUT, name) }
        : { outDir: join(OUT, name), entry: ENTRIES[name], config: floorConfig },
    )
  }
  const sink = await startSinkProcess()
  const servers: Bench['servers'] = {}
  const stop = async () => {
    await Promise.allSettled(Object.values(servers).map((s) => s.stop()))
    sink.child.kill('SIGTERM')
  }
  try {
    const apiKey = `bench-${randomBytes(24).toString('hex')}`
    const keysFile = join(OUT, 'api-keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'bench-user', projects: ['bench/*'] })
    // BENCH_ID_FORM=internal: the worker resolves ids through a PROJECT_IDS_FILE (internal-ids.md).
    const projectIdsFile = join(OUT, 'project-ids.json')
    writeFileSync(projectIdsFile, JSON.stringify({ [PROJECT]: 'YmVuY2gvcHJvamVjdA==' }))
    const env = {
      ...process.env,
      KAFKA_ID_FORM: process.env.BENCH_ID_FORM ?? 'external',
      KAFKA_TOPIC: 'bench.score_calls',
      UPSTASH_KAFKA_REST_URL: sink.url,
      UPSTASH_KAFKA_REST_USERNAME: 'dev',
      UPSTASH_KAFKA_REST_PASSWORD: 'dev-password',
      ...options.env,
    }
    for (const name of options.servers) {
      const bundle = bundles[name]
      if (!bundle) continue
      servers[name] = await serve({
        bundle,
        settings: settingsOf(name),
        stateDir: join(OUT, name),
        host: '127.0.0.1',
        port: await freePort(),
        ...(name === 'floor' ? {} : { apiKeysFile: keysFile, projectIdsFile }),
        ...(options.inspector ? { inspector: options.inspector } : {}),
        ...(options.asyncTrace ? { asyncTrace: asyncTraceFile(name) } : {}),
        env,
        stdio: 'ignore',
      })
    }
    return {
      servers,
      bundles,
      auth: `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`,
      sinkUrl: sink.url,
      resetSink: async () => {
        await (await fetch(`${sink.url}/__sink/reset`, { method: 'POST' })).arrayBuffer()
      },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/** Where a server started with `asyncTrace` writes its trace. */
export const asyncTraceFile = (server: ServerName): string =>
  resolve(OUT, server, 'async-trace.jsonl')

/** Median of a list of figures (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Median of the per-round ratios `a / b` of one figure: runs taken side by side, so a noisy
 * round moves both.
 */
export const pairedRatio = (a: readonly Run[], b: readonly Run[], figure: keyof Run): number =>
  median(a.map((run, i) => run[figure] / (b[i]?.[figure] ?? Number.NaN)))

/**
 * One `POST /calls/score`; throws unless the answer is 200 `{}` (a fast 4xx/5xx would look like
 * speed).
 */
export async function expectAccepted(
  name: string,
  url: string,
  auth: string,
  body: string,
): Promise<void> {
  const answer = await fetch(`${url}/calls/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body,
  })
  const text = await answer.text()
  if (answer.status !== 200 || text !== '{}') {
    throw new Error(`${name} answered ${answer.status} ${text.slice(0, 300)}`)
  }
}

/**
 * Checks that every server really accepts `body` with `{}` (a fast 4xx/5xx would look like
 * speed), warms each isolate (JIT, outbound connections), then measures: per round, each server
 * gets one fixed-length run, in an order that alternates between rounds so that none always runs
 * on the warmer machine; the sink is emptied before each run.
 */
export async function measure(
  bench: Bench,
  servers: readonly ServerName[],
  body: string,
  options: { rounds: number; seconds: number; connections: number },
  report: (name: ServerName, round: number, run: Run) => void = () => {},
): Promise<Partial<Record<ServerName, Run[]>>> {
  const server = (name: ServerName) => {
    const running = bench.servers[name]
    if (!running) throw new Error(`${name} did not start`)
    return running
  }
  for (const name of servers) await expectAccepted(name, server(name).url, bench.auth, body)
  if (WARMUP_SECONDS > 0) {
    for (const name of servers) {
      await load(server(name).url, body, bench.auth, WARMUP_SECONDS, options.connections)
    }
  }
  const runs: Partial<Record<ServerName, Run[]>> = Object.fromEntries(
    servers.map((name) => [name, []]),
  )
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse()
    for (const name of order) {
      await bench.resetSink()
      const { url, process } = server(name)
      const run = await load(
        url,
        body,
        bench.auth,
        options.seconds,
        options.connections,
        process.pid,
      )
      runs[name]?.push(run)
      report(name, round, run)
    }
  }
  return runs
}

/**
 * `BENCH_SMOKE=1`: the smoke run CI makes of every bench command, to prove that it still builds,
 * starts, measures and reports; its figures mean nothing and are never asserted. Each command's
 * defaults shrink to one short round with the least warm-up, and no committed file (docs/*.svg) is
 * rewritten: pictures go to a temporary folder ({@link chartFile}).
 */
export const SMOKE = process.env.BENCH_SMOKE === '1'
// Said once, by the bench itself, not by the helper processes it forks (bench/kafka-proxy.ts).
if (SMOKE && process.send === undefined) {
  process.stdout.write('BENCH_SMOKE=1: one short round, figures not meaningful\n')
}

/**
 * A positive integer bench setting from the environment, or its default (`smoke` in a smoke run,
 * when given); anything else throws.
 */
export function positiveSetting(name: string, fallback: number, smoke?: number): number {
  const value = Number(process.env[name] ?? (SMOKE && smoke !== undefined ? smoke : fallback))
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}

/** An environment setting that may be 0 (a phase turned off), `fallback` when unset. */
export function nonNegativeSetting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be an integer of 0 or more`)
  return value
}

/** A comma-separated list of positive integers (`fallback` when unset). */
export function positiveList(name: string, fallback: string): number[] {
  return (process.env[name] ?? fallback).split(',').map((n) => {
    const value = Number(n)
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: positive integers`)
    return value
  })
}

/** Seconds of warm-up per server before measuring: 1, none in a smoke run. */
export const WARMUP_SECONDS = SMOKE ? 0 : 1

let smokeDir: string | undefined
/**
 * Where a bench writes a picture that is committed (`docs/…svg`): there, or in a smoke run a file
 * of the same name in a temporary folder, so that CI never rewrites the docs.
 */
export function chartFile(committed: string): string {
  if (!SMOKE || committed === '') return committed
  smokeDir ??= mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  return join(smokeDir, committed.split('/').pop() ?? 'chart.svg')
}

/**
 * Bounds a bench process: after `budgetMs`, or on Ctrl-C, everything `current()` started is
 * stopped and the process exits. Clear the returned watchdog once the bench is done.
 */
export function boundBench(
  name: string,
  budgetMs: number,
  current: () => Bench | undefined,
): ReturnType<typeof setTimeout> {
  const stop = (code: number) =>
    void (current()?.stop() ?? Promise.resolve()).finally(() => process.exit(code))
  process.once('SIGINT', () => stop(130))
  return setTimeout(() => {
    process.stderr.write(`${name}: still running after ${budgetMs / 1000} s, stopping\n`)
    stop(1)
  }, budgetMs)
}

/** A counting TCP proxy on loopback (bench/native.ts): see {@link startCountingProxy}. */
export type CountingProxy = {
  port: number
  /** Connections accepted so far. */
  connections(): number
  /** Where it forwards to from now on (`host:port`), for a target that starts after the proxy. */
  setTarget(target: string): void
  close(): Promise<void>
}

/**
 * A TCP proxy that counts the connections it accepts and pipes each to `target` (`host:port`,
 * settable later). With `rttMs` > 0 it imitates a peer that far away: the upstream connection
 * opens `rttMs` after accepting (the TCP handshake's round trip, which loopback hides), and every
 * chunk is passed on `rttMs / 2` later in each direction, in order.
 */
export function startCountingProxy(
  options: {
    target?: string
    rttMs?: number
    /** Per accepted connection: a reader of the bytes the client sends (e.g. {@link kafkaRequests}). */
    inspect?: () => (chunk: Buffer) => void
  } = {},
): Promise<CountingProxy> {
  let target = options.target
  const rttMs = options.rttMs ?? 0
  let accepted = 0
  const sockets = new Set<Socket>()
  const relay = (from: Socket, to: Socket, inspect?: (chunk: Buffer) => void) => {
    from.on('data', (chunk: Buffer) => {
      inspect?.(chunk)
      if (rttMs > 0) setTimeout(() => to.destroyed || to.write(chunk), rttMs / 2)
      else to.write(chunk)
    })
    from.on('end', () => setTimeout(() => to.end(), rttMs / 2))
  }
  const server = createServer({ noDelay: true }, (client) => {
    accepted++
    sockets.add(client)
    client.pause()
    const open = () => {
      const [host, port] = (target ?? '').split(':')
      const upstream = connect({ host: host ?? '127.0.0.1', port: Number(port), noDelay: true })
      sockets.add(upstream)
      const drop = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      upstream.once('connect', () => client.resume())
      upstream.on('error', drop).on('close', drop)
      client.on('error', drop).on('close', drop)
      relay(client, upstream, options.inspect?.())
      relay(upstream, client)
    }
    if (rttMs > 0) setTimeout(open, rttMs)
    else open()
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        connections: () => accepted,
        setTarget: (t) => {
          target = t
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          }),
      })
    })
  })
}

/**
 * A reader of one connection's client-to-broker bytes in Kafka's protocol that calls `onRequest`
 * with the API key of every request (0 is Produce): each request is a 4-byte size, then its
 * 2-byte API key.
 */
export function kafkaRequests(onRequest: (apiKey: number) => void): (chunk: Buffer) => void {
  let skip = 0
  let head = Buffer.alloc(0)
  return (chunk) => {
    let at = 0
    while (at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at)
        skip -= n
        at += n
        continue
      }
      const take = chunk.subarray(at, at + 6 - head.length)
      head = Buffer.concat([head, take])
      at += take.length
      if (head.length < 6) return
      onRequest(head.readInt16BE(4))
      skip = head.readInt32BE(0) - 2
      head = Buffer.alloc(0)
    }
  }
}

/** CPU time (µs) used so far by a process and every process under it. */
export function treeCpuUs(pid: number): number {
  return descendants(pid).reduce((n, p) => n + (cpuUs(p.pid) || 0), cpuUs(pid))
}

/** The pids of a process's descendants (children, grandchildren, …), from /proc (Linux). */
export function descendants(pid: number): { pid: number; comm: string }[] {
  const parents = new Map<number, { ppid: number; comm: string }>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(Number(entry), { ppid, comm })
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; comm: string }[] = []
  const walk = (parent: number) => {
    for (const [child, { ppid, comm }] of parents) {
      if (ppid !== parent) continue
      out.push({ pid: child, comm })
      walk(child)
    }
  }
  walk(pid)
  return out
}

/** A `wrangler dev` the bench started: its URL, the workerd processes under it, `stop`. */
export type RunningWranglerDev = {
  url: string
  process: ChildProcess
  /**
   * The workerd processes under it: the one serving the worker (its queues included) and
   * wrangler's own proxy runtime. CPU per request is their sum.
   */
  workerdPids: number[]
  stop(): Promise<void>
}

const WRANGLER_BIN = 'node_modules/wrangler/bin/wrangler.js'

/**
 * Starts `wrangler dev` on `config` (queues, local KV under `persistTo`) with `vars` on top of the
 * config's; resolves once `/health` answers and its workerd process is known.
 */
export async function startWranglerDev(options: {
  config: string
  persistTo: string
  envFile: string
  vars: Record<string, string>
}): Promise<RunningWranglerDev> {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [
      WRANGLER_BIN,
      'dev',
      '--config',
      options.config,
      '--port',
      String(port),
      '--ip',
      '127.0.0.1',
      '--inspector-port',
      String(await freePort()),
      '--persist-to',
      options.persistTo,
      '--env-file',
      options.envFile,
      '--log-level',
      'error',
      ...Object.entries(options.vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
    ],
    {
      // Its own process group: stop() ends wrangler and everything under it (workerd, esbuild).
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    },
  )
  const group = child.pid ?? 0
  // SIGINT: wrangler's own shutdown, then whatever it left behind in its group.
  const stop = () => stopGroup(child, 'SIGINT')
  const url = `http://127.0.0.1:${port}`
  try {
    if (!(await untilServing(url, child, { timeoutMs: 120_000, intervalMs: 500 }))) {
      throw new Error('wrangler dev did not start')
    }
    const workerdPids = descendants(group)
      .filter((p) => p.comm === 'workerd')
      .map((p) => p.pid)
    if (workerdPids.length === 0) throw new Error('no workerd process under wrangler dev')
    return { url, process: child, workerdPids, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * Apache Kafka for a bench, behind a proxy that counts what clients send: clients that bootstrap
 * through the proxy are sent back to it for every broker connection. A missing prerequisite
 * (java, mvn) surfaces as its one-line message; `stoppers` gains the broker's clean-up.
 */
export async function startProxiedKafka(
  proxy: { port: number; setTarget(target: string): void },
  stoppers: (() => Promise<unknown>)[],
): Promise<RunningKafka> {
  console.log('starting Apache Kafka…')
  let kafka: RunningKafka
  try {
    kafka = await startKafka({
      log: (line) => console.log(line),
      proxiedListener: { advertisedPort: proxy.port },
    })
  } catch (e) {
    throw e instanceof KafkaSetupError ? new Error(e.message) : e
  }
  const broker = kafka
  stoppers.push(() => broker.close())
  proxy.setTarget(broker.proxiedBootstrap as string)
  return broker
}
