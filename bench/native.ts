/**
 * `npm run bench:native`: the worker producing over the native transport (kafkajs over TCP) into
 * a real Apache Kafka broker against the same worker producing over Kafka REST (the
 * kafka-rest-v2 dialect, Strimzi's bridge's) into the local sink, each in both delivery modes, all
 * in one run and side by side. Then the start-up cost of kafkajs in the bundle.
 *
 * The four are each a `wrangler dev` of the worker (the queue mode needs Cloudflare Queues, which
 * self-hosted workerd lacks, so the direct mode runs under `wrangler dev` too: one runtime for the
 * four); the direct pair also runs as the production bundle under plain workerd (self-hosted
 * mode), where the worker's own cost is not buried under the dev runtime's. Ratios pair variants
 * of one runtime and delivery mode only. Each variant gets its own topic. The broker and the sink
 * each sit behind a counting TCP proxy (bench/lib.ts startCountingProxy) that the worker
 * connects to: the broker advertises the proxy's
 * port for the listener the worker uses (scripts/lib/kafka.ts `proxiedListener`), so kafkajs's
 * second connection, to the broker named in the metadata, goes through it too.
 *
 * Per round every variant gets one fixed-length autocannon run with the small body (10 call ids,
 * one job per request); the order reverses every round. A run's window lasts until every job it
 * had accepted has landed (read from the broker's high watermarks or the sink's counters, at most
 * 30 s): CPU per request (of the variant's workerd processes) and connections opened per 1,000 jobs
 * cover the queue consumer's work too. At the end every topic is read back in full: jobs missing
 * and duplicated (by weave-job-id). Printed: per-variant medians and the median per-round ratios
 * native/REST per delivery mode; bench/out/native.json keeps every run and
 * docs/performance-native.svg is redrawn.
 *
 * Start-up: `wrangler check startup` (a CPU profile of the worker's start-up in local workerd)
 * of the bundle as built and of the same bundle with kafkajs replaced by bench/kafkajs-stub.js,
 * alternating, BENCH_STARTUP_RUNS times each.
 *
 * Settings (environment): BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_CONNECTIONS (8), BENCH_RTT_MS
 * (0: a round trip the proxies add, see startCountingProxy), BENCH_VARIANTS (every id in
 * {@link VARIANTS}), BENCH_STARTUP_RUNS (5; 0 skips it), BENCH_SMOKE (1: four variants, covering
 * both runtimes, transports, delivery modes and the shards' config edit; one round of 1 s, no
 * warm-up, one start-up run each, the picture in a temporary folder).
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import { type RunningKafka, readTopic } from '../scripts/lib/kafka.ts'
import { hashKey, putKeyRecord } from '../scripts/lib/keys.ts'
import { writeLocalDevVars } from '../scripts/lib/local-secrets.ts'
import {
  buildBundle,
  readWorkerSettings,
  serve,
  writeApiKeysFile,
} from '../scripts/lib/selfhosted.ts'
import { type NativeResults, type NativeRun, renderNativeSvg } from './chart.ts'
import {
  type Bench,
  boundBench,
  type CountingProxy,
  chartFile,
  cpuUs,
  expectAccepted,
  freePort,
  load,
  median,
  positiveSetting,
  requestBody,
  SMOKE,
  startCountingProxy,
  startProxiedKafka,
  startSinkProcess,
  startWranglerDev,
  stoppersBench,
  WARMUP_SECONDS,
  withoutBinding,
} from './lib.ts'

/** One way of running the worker; `config` edits its wrangler.toml (the bench's copy). */
type Variant = {
  id: string
  /** `wrangler dev` (Queues, and what wrangler.toml binds) or plain workerd (self-hosted mode). */
  runtime: 'wrangler-dev' | 'workerd'
  transport: 'native' | 'rest'
  mode: 'direct' | 'queue'
  config?: (toml: string) => string
}

/**
 * The variants, in one place. Native direct runs as wrangler.toml configures it: through the
 * `KAFKA_PRODUCERS` producer shards (Durable Objects that stay connected); the `per-request`
 * variants drop that binding, so each request connects for itself (docs/native-kafka.md).
 */
const VARIANTS: Variant[] = [
  { id: 'native-direct', runtime: 'wrangler-dev', transport: 'native', mode: 'direct' },
  {
    id: 'native-direct-per-request',
    runtime: 'wrangler-dev',
    transport: 'native',
    mode: 'direct',
    config: withoutBinding('KAFKA_PRODUCERS'),
  },
  { id: 'rest-direct', runtime: 'wrangler-dev', transport: 'rest', mode: 'direct' },
  { id: 'native-queue', runtime: 'wrangler-dev', transport: 'native', mode: 'queue' },
  { id: 'rest-queue', runtime: 'wrangler-dev', transport: 'rest', mode: 'queue' },
  // Direct delivery needs no Queues: the same variants in the production runtime alone, where
  // the worker's own CPU is not buried under the dev runtime's.
  { id: 'workerd-native-direct', runtime: 'workerd', transport: 'native', mode: 'direct' },
  {
    id: 'workerd-native-direct-per-request',
    runtime: 'workerd',
    transport: 'native',
    mode: 'direct',
    config: withoutBinding('KAFKA_PRODUCERS'),
  },
  { id: 'workerd-rest-direct', runtime: 'workerd', transport: 'rest', mode: 'direct' },
]

const ROUNDS = positiveSetting('BENCH_ROUNDS', 3, 1)
const SECONDS = positiveSetting('BENCH_SECONDS', 5, 1)
const CONNECTIONS = positiveSetting('BENCH_CONNECTIONS', 8)
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 0)
if (!Number.isFinite(RTT_MS) || RTT_MS < 0) throw new Error('BENCH_RTT_MS must be >= 0')
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? (SMOKE ? 1 : 5))
if (!Number.isInteger(STARTUP_RUNS) || STARTUP_RUNS < 0) {
  throw new Error('BENCH_STARTUP_RUNS must be an integer >= 0')
}
const DRAIN_SECONDS = 30
// A smoke run starts one variant of each runtime, transport, delivery mode and config edit.
const SMOKE_VARIANTS =
  'native-queue,rest-queue,workerd-native-direct,workerd-native-direct-per-request'
const wanted = (
  process.env.BENCH_VARIANTS ?? (SMOKE ? SMOKE_VARIANTS : VARIANTS.map((v) => v.id).join(','))
).split(',')
const variants = VARIANTS.filter((v) => wanted.includes(v.id))
if (variants.length === 0) {
  throw new Error(`BENCH_VARIANTS names none of ${VARIANTS.map((v) => v.id).join(', ')}`)
}

const OUT = 'bench/out/native'
const PROJECT = 'bench/project'
/** The small body: 10 call ids, one Kafka message (job) per request. */
const BODY = requestBody('small')
const JOBS_PER_REQUEST = 1

let bench: Bench | undefined
const budgetMs =
  ((ROUNDS + 1) * variants.length * (SECONDS + DRAIN_SECONDS / 3 + 2) +
    STARTUP_RUNS * 2 * 15 +
    240) *
  1000
const watchdog = boundBench('bench:native', budgetMs, () => bench)

type Running = {
  variant: Variant
  topic: string
  dev: { url: string; cpuUs(): number; stop(): Promise<unknown> }
  /** Accepted jobs so far (every 2xx, warm-up included). */
  expected: number
  runs: NativeRun[]
}

const stoppers: (() => Promise<unknown>)[] = []
bench = stoppersBench(stoppers)

try {
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })

  // The proxies first: the broker must be told the Kafka proxy's port before it starts.
  const kafkaProxy: CountingProxy = await startCountingProxy({ rttMs: RTT_MS })
  stoppers.push(() => kafkaProxy.close())
  const needsKafka = variants.some((v) => v.transport === 'native')
  let kafka: RunningKafka | undefined
  if (needsKafka) {
    kafka = await startProxiedKafka(kafkaProxy, stoppers)
  }
  const sink = await startSinkProcess()
  stoppers.push(async () => sink.child.kill('SIGTERM'))
  const sinkProxy = await startCountingProxy({
    target: new URL(sink.url).host,
    rttMs: RTT_MS,
  })
  stoppers.push(() => sinkProxy.close())

  const offsets = kafka
    ? new Consumer({
        clientId: 'bench-native-offsets',
        groupId: `bench-native-${randomBytes(6).toString('hex')}`,
        bootstrapBrokers: [kafka.bootstrap],
        retries: 3,
        timeout: 10_000,
      })
    : undefined
  if (offsets) stoppers.push(() => offsets.close(true))

  /** Jobs on the variant's topic now. */
  const landed = async (r: Running): Promise<number> => {
    if (r.variant.transport === 'native') {
      const high = (await offsets?.listOffsets({ topics: [r.topic] }))?.get(r.topic) ?? []
      return high.reduce((n, h) => n + Number(h), 0)
    }
    const stats = (await (await fetch(`${sink.url}/__sink/stats?topic=${r.topic}`)).json()) as {
      recordsStored: number
    }
    return stats.recordsStored
  }

  const apiKey = `bench-${randomBytes(24).toString('hex')}`
  const auth = `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`
  const template = readFileSync('wrangler.toml', 'utf8').replace(/^\[\[ratelimits\]\][^[]*/m, '')

  const bundle = variants.some((v) => v.runtime === 'workerd')
    ? buildBundle({ outDir: join(OUT, 'bundle') })
    : undefined
  const keysFile = join(OUT, 'api-keys.json')
  const record = { wb_user_id: 'bench-user', projects: [`${PROJECT.split('/')[0]}/*`] }
  writeApiKeysFile(keysFile, apiKey, record)

  console.log(`starting ${variants.map((v) => `${v.id} (${v.runtime})`).join(', ')}…`)
  // Settled, not Promise.all: a variant still starting when another fails must register its
  // stopper before the bench stops everything, or its wrangler dev outlives the bench.
  const started = await Promise.allSettled(
    variants.map(async (variant): Promise<Running> => {
      const dir = resolve(OUT, variant.id)
      mkdirSync(dir, { recursive: true })
      const topic = `bench.${variant.id}`
      if (variant.transport === 'native') await kafka?.createTopic(topic, kafka.partitions)
      const transport =
        variant.transport === 'native'
          ? {
              KAFKA_TRANSPORT: 'native',
              KAFKA_BROKERS: `127.0.0.1:${kafkaProxy.port}`,
              KAFKA_TLS: 'false',
              KAFKA_SASL_MECHANISM: '',
            }
          : {
              KAFKA_TRANSPORT: 'rest',
              KAFKA_REST_DIALECT: 'kafka-rest-v2',
              KAFKA_REST_URL: `http://127.0.0.1:${sinkProxy.port}`,
            }
      // The variant's copy of the config, for either runtime: self-hosted mode serves what it binds.
      const config = join(dir, 'wrangler.toml')
      const toml = template.replace(
        /^main = "(.*)"$/m,
        (_, main: string) => `main = "${relative(dir, resolve(main))}"`,
      )
      writeFileSync(config, variant.config ? variant.config(toml) : toml)
      if (variant.runtime === 'workerd' && bundle) {
        const served = await serve({
          bundle,
          settings: readWorkerSettings(config),
          stateDir: dir,
          host: '127.0.0.1',
          port: await freePort(),
          apiKeysFile: keysFile,
          env: {
            ...process.env,
            ...transport,
            UPSTASH_KAFKA_REST_URL: sink.url,
            UPSTASH_KAFKA_REST_USERNAME: 'dev',
            UPSTASH_KAFKA_REST_PASSWORD: 'dev-password',
            KAFKA_REST_USERNAME: 'dev',
            KAFKA_REST_PASSWORD: 'dev-password',
            KAFKA_USERNAME: 'unused',
            KAFKA_PASSWORD: 'unused',
            KAFKA_TOPIC: topic,
            DELIVERY_MODE: variant.mode,
          },
          stdio: 'ignore',
        })
        stoppers.push(() => served.stop())
        const pid = served.process.pid
        const dev = { url: served.url, cpuUs: () => cpuUs(pid), stop: served.stop }
        return { variant, topic, dev, expected: 0, runs: [] }
      }
      putKeyRecord({ local: true, persistTo: dir }, hashKey(apiKey), record)
      const envFile = join(dir, '.dev.vars')
      writeLocalDevVars(envFile)
      const wrangler = await startWranglerDev({
        config,
        persistTo: dir,
        envFile,
        vars: {
          ...transport,
          UPSTASH_KAFKA_REST_URL: sink.url,
          KAFKA_TOPIC: topic,
          DELIVERY_MODE: variant.mode,
          QUEUE_RETRY_BASE_SECONDS: '1',
          QUEUE_RETRY_MAX_SECONDS: '5',
        },
      })
      stoppers.push(() => wrangler.stop())
      const dev = {
        url: wrangler.url,
        cpuUs: () => wrangler.workerdPids.reduce((n, pid) => n + cpuUs(pid), 0),
        stop: wrangler.stop,
      }
      return { variant, topic, dev, expected: 0, runs: [] }
    }),
  )
  const running = started.map((s) => {
    if (s.status === 'rejected') throw s.reason
    return s.value
  })

  /** Waits until `target` jobs are on the variant's topic (or the drain budget is spent). */
  const drain = async (r: Running, target: number): Promise<number> => {
    const until = Date.now() + DRAIN_SECONDS * 1000
    for (;;) {
      const now = await landed(r)
      if (now >= target || Date.now() > until) return now
      await new Promise((done) => setTimeout(done, 200))
    }
  }

  // Every variant answers 200 {} (a fast 4xx/5xx would look like speed), then a warm-up run.
  for (const r of running) {
    await expectAccepted(r.variant.id, r.dev.url, auth, BODY)
    r.expected += JOBS_PER_REQUEST
    if (WARMUP_SECONDS > 0) {
      const warm = await load(r.dev.url, BODY, auth, WARMUP_SECONDS, CONNECTIONS)
      r.expected += warm.accepted * JOBS_PER_REQUEST
    }
    await drain(r, r.expected)
  }

  console.log(
    `${ROUNDS} round(s) × ${SECONDS} s per variant, ${CONNECTIONS} connections, small body, proxies add ${RTT_MS} ms round trip`,
  )
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? running : [...running].reverse()
    for (const r of order) {
      const cpu = () => r.dev.cpuUs()
      const proxy = r.variant.transport === 'native' ? kafkaProxy : sinkProxy
      const before = { cpu: cpu(), connections: proxy.connections(), landed: await landed(r) }
      const t0 = performance.now()
      const run = await load(r.dev.url, BODY, auth, SECONDS, CONNECTIONS)
      const jobs = run.accepted * JOBS_PER_REQUEST
      r.expected += jobs
      const now = await drain(r, before.landed + jobs)
      const windowSeconds = (performance.now() - t0) / 1000
      const connections = proxy.connections() - before.connections
      const figures: NativeRun = {
        variant: r.variant.id,
        round,
        requests: run.requests,
        accepted: run.accepted,
        failed: run.non2xx + run.errors,
        p50: run.p50,
        p99: run.p99,
        jobsPerSecond: jobs / SECONDS,
        cpuUsPerRequest: (cpu() - before.cpu) / run.requests,
        connections,
        connectionsPer1000Jobs: (connections * 1000) / jobs,
        landed: now - before.landed,
        windowSeconds,
      }
      r.runs.push(figures)
      console.log(
        `  round ${round + 1}  ${r.variant.id.padEnd(14)} ${figures.jobsPerSecond.toFixed(0).padStart(5)} jobs/s  p50 ${figures.p50} ms  p99 ${figures.p99} ms  ${figures.cpuUsPerRequest.toFixed(0)} µs CPU/req  ${figures.connectionsPer1000Jobs.toFixed(1)} conns/1000 jobs  landed ${figures.landed}/${jobs}${figures.failed ? `  (${figures.failed} failed)` : ''}`,
      )
    }
  }

  // Read every topic back in full: each accepted job once.
  const verdicts = new Map<string, { expected: number; unique: number; duplicates: number }>()
  for (const r of running) {
    await drain(r, r.expected)
    if (r.variant.transport === 'native' && kafka) {
      const records = await readTopic(kafka.bootstrap, r.topic)
      const ids = records.map(
        (rec) => rec.headers.find(([k]) => k === 'weave-job-id')?.[1].toString('utf8') ?? '',
      )
      const unique = new Set(ids).size
      verdicts.set(r.variant.id, { expected: r.expected, unique, duplicates: ids.length - unique })
    } else {
      // Kafka REST v2 has no record headers, so no job ids to tell a duplicate by: a count.
      verdicts.set(r.variant.id, {
        expected: r.expected,
        unique: await landed(r),
        duplicates: Number.NaN,
      })
    }
  }

  const med = (r: Running, f: (run: NativeRun) => number) => median(r.runs.map(f))
  const rows = [
    '| Variant | Jobs/s | p50 / p99 ms | CPU µs/req | Connections per 1,000 jobs | Jobs accepted | Jobs landed | Missing | Duplicates | Failed requests |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of running) {
    const v = verdicts.get(r.variant.id)
    rows.push(
      `| ${r.variant.id} | ${med(r, (x) => x.jobsPerSecond).toFixed(0)} | ${med(r, (x) => x.p50)} / ${med(r, (x) => x.p99)} | ${med(r, (x) => x.cpuUsPerRequest).toFixed(0)} | ${med(r, (x) => x.connectionsPer1000Jobs).toFixed(1)} | ${v?.expected} | ${v?.unique} | ${Math.max(0, (v?.expected ?? 0) - (v?.unique ?? 0))} | ${Number.isNaN(v?.duplicates) ? '–' : v?.duplicates} | ${r.runs.reduce((n, x) => n + x.failed, 0)} |`,
    )
  }
  const ratioRows = [
    '| Delivery mode, runtime | Jobs/s native/REST | p50 native/REST | p99 native/REST | CPU native/REST |',
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  const pairRatio = (a: Running, b: Running, f: (run: NativeRun) => number) =>
    `${median(a.runs.map((x, i) => f(x) / f(b.runs[i] as NativeRun))).toFixed(2)}x`
  for (const native of running.filter((r) => r.variant.transport === 'native')) {
    const { runtime, mode } = native.variant
    const rest = running.find(
      (r) =>
        r.variant.transport === 'rest' && r.variant.runtime === runtime && r.variant.mode === mode,
    )
    if (!rest) continue
    ratioRows.push(
      `| ${mode}, ${runtime} (${native.variant.id}) | ${pairRatio(native, rest, (x) => x.jobsPerSecond)} | ${pairRatio(native, rest, (x) => x.p50)} | ${pairRatio(native, rest, (x) => x.p99)} | ${pairRatio(native, rest, (x) => x.cpuUsPerRequest)} |`,
    )
  }
  const shardRows = [
    '| Runtime | Jobs/s shards/per request | p50 shards/per request | p99 shards/per request | CPU shards/per request |',
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  for (const perRequest of running.filter((r) => r.variant.id.endsWith('-per-request'))) {
    const shards = running.find((r) => `${r.variant.id}-per-request` === perRequest.variant.id)
    if (!shards) continue
    shardRows.push(
      `| ${shards.variant.runtime} (${shards.variant.id}) | ${pairRatio(shards, perRequest, (x) => x.jobsPerSecond)} | ${pairRatio(shards, perRequest, (x) => x.p50)} | ${pairRatio(shards, perRequest, (x) => x.p99)} | ${pairRatio(shards, perRequest, (x) => x.cpuUsPerRequest)} |`,
    )
  }
  console.log(`\n${rows.join('\n')}\n\n${ratioRows.join('\n')}\n\n${shardRows.join('\n')}\n`)

  // Done with the load: stop everything before profiling start-up on the quiet machine.
  await bench.stop()

  const startup = STARTUP_RUNS > 0 ? measureStartup(STARTUP_RUNS) : undefined
  if (startup) {
    const line = (name: string, s: StartupFigures) =>
      `| ${name} | ${s.bundleKiB.toFixed(1)} | ${s.gzipKiB.toFixed(1)} | ${median(s.activeMs).toFixed(1)} (${Math.min(...s.activeMs).toFixed(1)}–${Math.max(...s.activeMs).toFixed(1)}) | ${median(s.windowMs).toFixed(1)} |`
    const ratio = median(
      startup.with.activeMs.map((a, i) => a / (startup.without.activeMs[i] ?? 0)),
    )
    console.log(
      [
        `Start-up (wrangler check startup, ${STARTUP_RUNS} runs each, alternating):`,
        '',
        '| Bundle | KiB | gzip KiB | Start-up CPU ms, median (range) | Profile window ms |',
        '| --- | ---: | ---: | ---: | ---: |',
        line('as built (kafkajs)', startup.with),
        line('kafkajs stubbed out', startup.without),
        '',
        `Start-up CPU with/without kafkajs, median per-run ratio: ${ratio.toFixed(2)}x`,
        '',
      ].join('\n'),
    )
  }

  const results: NativeResults = {
    date: new Date().toISOString(),
    rounds: ROUNDS,
    seconds: SECONDS,
    connections: CONNECTIONS,
    rttMs: RTT_MS,
    runs: running.flatMap((r) => r.runs),
    verdicts: Object.fromEntries(verdicts),
    ...(startup ? { startup } : {}),
  }
  writeFileSync('bench/out/native.json', JSON.stringify(results, null, 2))
  const svg = chartFile('docs/performance-native.svg')
  writeFileSync(svg, await renderNativeSvg(results))
  console.log(`wrote bench/out/native.json and ${svg}`)
  const lost = [...verdicts.values()].some((v) => v.unique < v.expected)
  if (lost) {
    console.log('Some accepted jobs are missing.')
    process.exitCode = 1
  }
} finally {
  clearTimeout(watchdog)
  await bench.stop()
}

type StartupFigures = { bundleKiB: number; gzipKiB: number; activeMs: number[]; windowMs: number[] }

/**
 * `wrangler check startup` of the bundle as built and with kafkajs aliased to a stub, alternating:
 * the bundle sizes it prints and its profile's active CPU time and window, per run.
 */
function measureStartup(runs: number): { with: StartupFigures; without: StartupFigures } {
  const empty = (): StartupFigures => ({ bundleKiB: 0, gzipKiB: 0, activeMs: [], windowMs: [] })
  const figures = { with: empty(), without: empty() }
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const)
    for (const which of order) {
      const args = [
        'node_modules/wrangler/bin/wrangler.js',
        'check',
        'startup',
        '--outfile',
        join(OUT, `startup-${which}.cpuprofile`),
      ]
      if (which === 'without') args.push('--args=--alias kafkajs:./bench/kafkajs-stub.js')
      const check = spawnSync(process.execPath, args, {
        encoding: 'utf8',
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
        timeout: 60_000,
      })
      const out = `${check.stdout}${check.stderr}`
      const bundle = /Bundle: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(out)
      const active = /Active: ([\d.]+) ms/.exec(out)
      const window = /Profile window: ([\d.]+) ms/.exec(out)
      if (!bundle || !active || !window) {
        throw new Error(`wrangler check startup printed no profile:\n${out.slice(-800)}`)
      }
      const f = figures[which]
      f.bundleKiB = Number(bundle[1])
      f.gzipKiB = Number(bundle[2])
      f.activeMs.push(Number(active[1]))
      f.windowMs.push(Number(window[1]))
    }
  }
  return figures
}
