/**
 * `npm run bench:weave`: the worker against Weave's own path, side by side on one real Apache
 * Kafka broker (scripts/lib/kafka.ts), in one run.
 *
 * Three servers, each producing to its own topic:
 * - **worker**: `npm start` (scripts/start.ts: the production bundle under plain workerd) with the
 *   native transport, the producer shards and direct delivery, as wrangler.toml configures them;
 * - **python-acknowledged** and **python-fire-and-forget**: bench/weave-peer/peer.py, a peer of
 *   Weave's server written from its public behaviour (FastAPI, pydantic v2 with extra="forbid",
 *   HTTP Basic, 100-id chunks, librdkafka through Debian's python3-confluent-kafka with Weave's
 *   producer settings) under uvicorn; fire-and-forget answers after `flush(0)` as Weave does, the
 *   acknowledged form once every chunk's delivery report is in.
 *
 * Every server reaches the broker through one counting proxy in its own process
 * (bench/kafka-proxy.ts; the broker advertises the proxy's port on an extra listener), which
 * counts the Produce requests it relays: only one server is under load at a time, so a run's count
 * is its server's. Per case (body × connections) and round, each server gets one fixed-length
 * autocannon run, in an order that reverses every round, after every server got the same
 * start-up load (BENCH_WARMUP_SECONDS over every body). A run's window lasts until every job it
 * accepted is on its topic (high watermarks; at most 30 s): CPU per request is the CPU time of the
 * server's process tree (/proc) over the window, per request sent. After the runs, each server's
 * idle CPU (its Kafka connections open, no request) is measured over a few seconds, right after
 * the load and again once settled (BENCH_IDLE_SETTLE_SECONDS later; the target is the settled
 * figure), and every topic
 * is read back in full: jobs missing and duplicated, by the weave-job-id header.
 *
 * Printed: per case and server the medians, the ratios worker/python-acknowledged and
 * worker/python-fire-and-forget (medians of per-round ratios), idle CPU and the read-back, and
 * the issue's targets; bench/out/weave.json keeps every run and docs/performance-weave.svg is
 * redrawn.
 *
 * Settings (environment): BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_BODIES (small,large),
 * BENCH_CONNECTIONS (16,64: a list here), BENCH_WARMUP_SECONDS (10), BENCH_IDLE_SECONDS (5),
 * BENCH_IDLE_SETTLE_SECONDS (10), BENCH_PYTHON (/usr/bin/python3, the interpreter the peer's venv
 * is made from), BENCH_SMOKE (1: one round of 1 s at 16 connections, no warm-up, no settling, the
 * picture in a temporary folder).
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import { readTopic } from '../scripts/lib/kafka.ts'
import { stopGroup, untilServing } from '../scripts/lib/processes.ts'
import { writeApiKeysFile } from '../scripts/lib/selfhosted.ts'
import { renderWeaveSvg, type WeaveResults, type WeaveRun } from './chart.ts'
import {
  BODIES,
  type BodyName,
  boundBench,
  chartFile,
  expectAccepted,
  freePort,
  load,
  median,
  nonNegativeSetting,
  positiveList,
  positiveSetting,
  requestBody,
  SMOKE,
  startProxiedKafka,
  stoppersBench,
  treeCpuUs,
  WARMUP_SECONDS,
} from './lib.ts'

export const WEAVE_SERVERS = ['worker', 'python-acknowledged', 'python-fire-and-forget'] as const
export type WeaveServer = (typeof WEAVE_SERVERS)[number]

const ROUNDS = positiveSetting('BENCH_ROUNDS', 3, 1)
const SECONDS = positiveSetting('BENCH_SECONDS', 5, 1)
const IDLE_SECONDS = positiveSetting('BENCH_IDLE_SECONDS', 5, 1)
const IDLE_SETTLE_SECONDS = SMOKE ? 0 : nonNegativeSetting('BENCH_IDLE_SETTLE_SECONDS', 10)
const STARTUP_WARMUP_SECONDS = SMOKE ? 0 : nonNegativeSetting('BENCH_WARMUP_SECONDS', 10)
const BODY_NAMES = (process.env.BENCH_BODIES ?? 'small,large')
  .split(',')
  .filter((b): b is BodyName => b in BODIES)
const CONNECTIONS = positiveList('BENCH_CONNECTIONS', SMOKE ? '16' : '16,64')
if (BODY_NAMES.length === 0) throw new Error('BENCH_BODIES names none of small, large, max')
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3'
const DRAIN_SECONDS = 30
const OUT = 'bench/out/weave'
const VENV = 'bench/.venv'
const PEER_PACKAGES = ['fastapi', 'pydantic', 'uvicorn', 'uvloop', 'httptools']
const PRODUCE_API_KEY = 0
/** Jobs (Kafka messages) per request: one per 100 call ids. */
const jobsPerRequest = (body: BodyName) => Math.ceil(BODIES[body].ids / 100)

/** The issue's targets (issue 27), printed as met or missed; nothing here fails on a figure. */
const TARGETS = { cpuRatio: 1.0, rpsRatio: 1.0, idleMsPerSecond: 10, producePer1000Jobs: 250 }

const stoppers: (() => Promise<unknown>)[] = []
const bench = stoppersBench(stoppers)
const cases = BODY_NAMES.length * CONNECTIONS.length
const budgetMs =
  (cases * (ROUNDS + 1) * WEAVE_SERVERS.length * (SECONDS + 4) +
    WEAVE_SERVERS.length * (STARTUP_WARMUP_SECONDS + 30) +
    2 * IDLE_SECONDS +
    IDLE_SETTLE_SECONDS +
    300) *
  1000
const watchdog = boundBench('bench:weave', budgetMs, () => bench)

/**
 * The peer's Python: a venv made from BENCH_PYTHON with the system's packages (Debian's
 * python3-confluent-kafka) and FastAPI, pydantic and uvicorn from pip, in bench/.venv
 * (gitignored), made once.
 */
function peerPython(): string {
  const python = resolve(VENV, 'bin/python')
  const has = (modules: string) =>
    existsSync(python) &&
    spawnSync(python, ['-c', `import ${modules}`], { stdio: 'ignore' }).status === 0
  if (spawnSync(PYTHON, ['-c', 'import confluent_kafka'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `${PYTHON} cannot import confluent_kafka: apt-get install -y python3-confluent-kafka`,
    )
  }
  if (has('fastapi, pydantic, uvicorn, uvloop, httptools, confluent_kafka')) return python
  console.log(`making ${VENV} (${PYTHON} -m venv --system-site-packages; pip install)…`)
  rmSync(VENV, { recursive: true, force: true })
  const steps: [string, string[]][] = [
    [PYTHON, ['-m', 'venv', '--system-site-packages', VENV]],
    // No retries: an index that cannot be reached is passed over at once, not after minutes.
    [python, ['-m', 'pip', 'install', '--quiet', '--retries', '0', ...PEER_PACKAGES]],
  ]
  for (const [command, args] of steps) {
    const run = spawnSync(command, args, { encoding: 'utf8' })
    if (run.status !== 0) {
      throw new Error(`${command} ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`)
    }
  }
  if (!has('fastapi, pydantic, uvicorn, confluent_kafka')) {
    throw new Error(`${VENV} cannot import the peer's packages`)
  }
  return python
}

/** The peer's versions, one line: Python, FastAPI, pydantic, uvicorn, confluent-kafka, librdkafka. */
function peerVersions(python: string): string {
  const script = [
    'import sys, fastapi, pydantic, uvicorn, confluent_kafka',
    'print(f"Python {sys.version.split()[0]}, FastAPI {fastapi.__version__}, pydantic {pydantic.VERSION}, uvicorn {uvicorn.__version__}, confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}")',
  ].join('\n')
  return spawnSync(python, ['-c', script], { encoding: 'utf8' }).stdout.trim()
}

/** The Kafka proxy process (bench/kafka-proxy.ts). */
async function startKafkaProxy() {
  const child = fork('bench/kafka-proxy.ts', [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const replies: ((message: unknown) => void)[] = []
  child.on('message', (message) => replies.shift()?.(message))
  const next = <T>() => new Promise<T>((done) => replies.push(done as (m: unknown) => void))
  const { port } = await next<{ port: number }>()
  return {
    port,
    setTarget: (target: string) => child.send({ target }),
    async produceRequests(): Promise<number> {
      const reply = next<{ requests: Record<number, number> }>()
      child.send({ counts: true })
      return (await reply).requests[PRODUCE_API_KEY] ?? 0
    },
    close: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((done) => child.once('exit', done))
        child.disconnect()
        await gone
      }
    },
  }
}

/** A server process the bench started, in its own process group. */
type Served = { name: WeaveServer; url: string; pid: number; topic: string }

/** Starts `command` in its own process group; resolves once `url`/health answers. */
async function startServer(
  name: WeaveServer,
  topic: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<Served> {
  const child: ChildProcess = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  stoppers.push(() => stopGroup(child, 'SIGTERM'))
  const url = `http://127.0.0.1:${port}`
  if (!(await untilServing(url, child, { timeoutMs: 120_000, intervalMs: 250 }))) {
    throw new Error(`${name} did not start:\n${stderr.trim().split('\n').slice(-15).join('\n')}`)
  }
  return { name, url, pid: child.pid ?? 0, topic }
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

try {
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })
  const python = peerPython()
  const peer = peerVersions(python)
  console.log(`Python peer: ${peer}`)

  // The proxy first: the broker must be told its port before it starts.
  const proxy = await startKafkaProxy()
  stoppers.push(() => proxy.close())
  const kafka = await startProxiedKafka(proxy, stoppers)
  const brokers = `127.0.0.1:${proxy.port}`

  const offsets = new Consumer({
    clientId: 'bench-weave-offsets',
    groupId: `bench-weave-${randomBytes(6).toString('hex')}`,
    bootstrapBrokers: [kafka.bootstrap],
    retries: 3,
    timeout: 10_000,
  })
  stoppers.push(() => offsets.close(true))
  const landed = async (topic: string): Promise<number> => {
    const high = (await offsets.listOffsets({ topics: [topic] })).get(topic) ?? []
    return high.reduce((n, h) => n + Number(h), 0)
  }

  const apiKey = `bench-${randomBytes(24).toString('hex')}`
  const auth = `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`
  const keysFile = resolve(OUT, 'api-keys.json')
  writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'bench-user', projects: ['bench/*'] })

  console.log(`starting ${WEAVE_SERVERS.join(', ')}…`)
  const servers: Served[] = []
  for (const name of WEAVE_SERVERS) {
    const topic = `bench.weave.${name}`
    await kafka.createTopic(topic, kafka.partitions)
    const port = await freePort()
    if (name === 'worker') {
      // What `npm start` runs, with the native transport and the config's producer shards.
      servers.push(
        await startServer(
          name,
          topic,
          process.execPath,
          ['scripts/start.ts'],
          {
            HOST: '127.0.0.1',
            PORT: String(port),
            API_KEYS_FILE: keysFile,
            SELFHOSTED_STATE_DIR: join(OUT, 'worker'),
            KAFKA_TRANSPORT: 'native',
            KAFKA_BROKERS: brokers,
            KAFKA_TLS: 'false',
            KAFKA_SASL_MECHANISM: '',
            KAFKA_TOPIC: topic,
            DELIVERY_MODE: 'direct',
            KAFKA_USERNAME: 'unused',
            KAFKA_PASSWORD: 'unused',
            KAFKA_REST_USERNAME: 'unused',
            KAFKA_REST_PASSWORD: 'unused',
            UPSTASH_KAFKA_REST_USERNAME: 'unused',
            UPSTASH_KAFKA_REST_PASSWORD: 'unused',
          },
          port,
        ),
      )
    } else {
      servers.push(
        await startServer(
          name,
          topic,
          python,
          [
            '-m',
            'uvicorn',
            'peer:app',
            '--app-dir',
            'bench/weave-peer',
            '--host',
            '127.0.0.1',
            '--port',
            String(port),
            '--no-access-log',
            '--log-level',
            'warning',
          ],
          {
            PEER_MODE: name === 'python-acknowledged' ? 'acknowledged' : 'fire-and-forget',
            PEER_BROKERS: brokers,
            PEER_TOPIC: topic,
            PEER_API_KEYS_FILE: keysFile,
          },
          port,
        ),
      )
    }
  }

  const expected: Record<string, number> = Object.fromEntries(WEAVE_SERVERS.map((s) => [s, 0]))
  // Requests autocannon still had in flight when a run ended are answered and land, uncounted: at
  // most one per connection per run, the most a topic may hold beyond the jobs accepted.
  const inFlight: Record<string, number> = Object.fromEntries(WEAVE_SERVERS.map((s) => [s, 0]))
  const drain = async (topic: string, target: number): Promise<number> => {
    const until = Date.now() + DRAIN_SECONDS * 1000
    for (;;) {
      const now = await landed(topic)
      if (now >= target || Date.now() > until) return now
      await sleep(50)
    }
  }

  // A server runs for days: every one gets the same start-up load before the first case, so the
  // figures are steady state (the worker's JIT and heap sizing settle over some seconds of load;
  // its first 5 s round used to cost up to 1.4 times its third).
  if (STARTUP_WARMUP_SECONDS > 0) {
    console.log(`warming each server up: ${STARTUP_WARMUP_SECONDS} s, every body`)
    const each = Math.max(1, Math.round(STARTUP_WARMUP_SECONDS / BODY_NAMES.length))
    for (const s of servers) {
      for (const bodyName of BODY_NAMES) {
        const warm = await load(s.url, requestBody(bodyName), auth, each, CONNECTIONS[0] ?? 16)
        const jobsEach = jobsPerRequest(bodyName)
        expected[s.name] = (expected[s.name] ?? 0) + warm.accepted * jobsEach
        inFlight[s.name] = (inFlight[s.name] ?? 0) + (CONNECTIONS[0] ?? 16) * jobsEach
      }
      await drain(s.topic, expected[s.name] ?? 0)
    }
  }

  console.log(
    `${ROUNDS} round(s) × ${SECONDS} s per server and case; bodies ${BODY_NAMES.join(', ')}; ${CONNECTIONS.join(', ')} connections`,
  )
  const runs: WeaveRun[] = []
  for (const bodyName of BODY_NAMES) {
    const body = requestBody(bodyName)
    const jobsEach = jobsPerRequest(bodyName)
    for (const connections of CONNECTIONS) {
      // Every server answers 200 {} (a fast 4xx/5xx would look like speed), then warms up.
      for (const s of servers) {
        await expectAccepted(s.name, s.url, auth, body)
        expected[s.name] = (expected[s.name] ?? 0) + jobsEach
        if (WARMUP_SECONDS > 0) {
          const warm = await load(s.url, body, auth, WARMUP_SECONDS, connections)
          expected[s.name] = (expected[s.name] ?? 0) + warm.accepted * jobsEach
          inFlight[s.name] = (inFlight[s.name] ?? 0) + connections * jobsEach
        }
        await drain(s.topic, expected[s.name] ?? 0)
      }
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? servers : [...servers].reverse()
        for (const s of order) {
          const before = {
            cpu: treeCpuUs(s.pid),
            produce: await proxy.produceRequests(),
            landed: await landed(s.topic),
          }
          const t0 = performance.now()
          const run = await load(s.url, body, auth, SECONDS, connections)
          const jobs = run.accepted * jobsEach
          expected[s.name] = (expected[s.name] ?? 0) + jobs
          inFlight[s.name] = (inFlight[s.name] ?? 0) + connections * jobsEach
          const now = await drain(s.topic, before.landed + jobs)
          const cpu = treeCpuUs(s.pid) - before.cpu
          const windowSeconds = (performance.now() - t0) / 1000
          const produceRequests = (await proxy.produceRequests()) - before.produce
          const figures: WeaveRun = {
            server: s.name,
            body: bodyName,
            connections,
            round,
            requests: run.requests,
            accepted: run.accepted,
            failed: run.non2xx + run.errors,
            rps: run.rps,
            p50: run.p50,
            p99: run.p99,
            cpuUsPerRequest: cpu / run.requests,
            jobs,
            landed: now - before.landed,
            produceRequests,
            producePer1000Jobs: (produceRequests * 1000) / jobs,
            windowSeconds,
          }
          runs.push(figures)
          console.log(
            `  ${bodyName.padEnd(5)} ${String(connections).padStart(3)} conns  round ${round + 1}  ${s.name.padEnd(22)} ${figures.rps.toFixed(0).padStart(5)} req/s  p50 ${figures.p50} ms  p99 ${figures.p99} ms  ${figures.cpuUsPerRequest.toFixed(0).padStart(5)} µs CPU/req  ${figures.producePer1000Jobs.toFixed(0)} produce/1000 jobs  landed ${figures.landed}/${jobs}${figures.failed ? `  (${figures.failed} failed)` : ''}`,
          )
        }
      }
    }
  }

  // Idle: every server connected to the broker and serving nothing, all measured in one window,
  // twice: a second after the last run (what the load leaves behind: collecting the heap it
  // grew), and once settled, the steady state the target is about.
  const idleWindow = async (): Promise<Record<string, number>> => {
    const before = servers.map((s) => treeCpuUs(s.pid))
    const t0 = performance.now()
    await sleep(IDLE_SECONDS * 1000)
    const seconds = (performance.now() - t0) / 1000
    return Object.fromEntries(
      servers.map((s, i) => [s.name, (treeCpuUs(s.pid) - (before[i] ?? 0)) / 1000 / seconds]),
    )
  }
  await sleep(1000)
  const idleAfterLoad = await idleWindow()
  await sleep(IDLE_SETTLE_SECONDS * 1000)
  const idle = await idleWindow()

  // Read every topic back in full: each accepted job once.
  const verdicts: WeaveResults['verdicts'] = {}
  for (const s of servers) {
    const want = expected[s.name] ?? 0
    await drain(s.topic, want)
    const records = await readTopic(kafka.bootstrap, s.topic)
    const ids = records.map(
      (r) => r.headers.find(([k]) => k === 'weave-job-id')?.[1].toString('utf8') ?? '',
    )
    const unique = new Set(ids).size
    verdicts[s.name] = {
      expected: want,
      inFlight: inFlight[s.name] ?? 0,
      unique,
      missing: Math.max(0, want - unique),
      duplicates: ids.length - unique,
    }
  }
  await bench.stop()

  const results: WeaveResults = {
    kind: 'weave',
    date: new Date().toISOString(),
    rounds: ROUNDS,
    seconds: SECONDS,
    idleSeconds: IDLE_SECONDS,
    idleSettleSeconds: IDLE_SETTLE_SECONDS,
    warmupSeconds: STARTUP_WARMUP_SECONDS,
    smoke: SMOKE,
    peer,
    runs,
    idleCpuMsPerSecond: idle,
    idleAfterLoadCpuMsPerSecond: idleAfterLoad,
    verdicts,
  }
  report(results)
  writeFileSync('bench/out/weave.json', JSON.stringify(results, null, 2))
  const svg = chartFile('docs/performance-weave.svg')
  writeFileSync(svg, await renderWeaveSvg(results))
  console.log(`wrote bench/out/weave.json and ${svg}`)
  if (Object.values(verdicts).some((v) => v.missing > 0)) {
    console.log('Some accepted jobs are missing.')
    process.exitCode = 1
  }
} finally {
  clearTimeout(watchdog)
  await bench.stop()
}

/** The tables: per case and server, the ratios, idle CPU and the read-back, the targets. */
function report(results: WeaveResults): void {
  const of = (server: WeaveServer, body: string, connections: number) =>
    results.runs
      .filter((r) => r.server === server && r.body === body && r.connections === connections)
      .sort((a, b) => a.round - b.round)
  const med = (rs: WeaveRun[], f: (r: WeaveRun) => number) => median(rs.map(f))
  const paired = (a: WeaveRun[], b: WeaveRun[], f: (r: WeaveRun) => number) =>
    median(a.map((r, i) => f(r) / f(b[i] as WeaveRun)))
  const caseList = [...new Set(results.runs.map((r) => `${r.body} ${r.connections}`))].map((c) => {
    const [body = '', connections = '0'] = c.split(' ')
    return { body, connections: Number(connections) }
  })
  const rows = [
    '| Body | Conns | Server | req/s | p50 / p99 ms | CPU µs/req | Produce requests per 1,000 jobs | Jobs accepted / landed | Failed |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  const ratioRows = [
    '| Body | Conns | Against | req/s | p50 | p99 | CPU per request |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: |',
  ]
  const targets: string[] = []
  for (const { body, connections } of caseList) {
    for (const server of WEAVE_SERVERS) {
      const rs = of(server, body, connections)
      if (rs.length === 0) continue
      rows.push(
        `| ${body} | ${connections} | ${server} | ${med(rs, (r) => r.rps).toFixed(0)} | ${med(rs, (r) => r.p50)} / ${med(rs, (r) => r.p99)} | ${med(rs, (r) => r.cpuUsPerRequest).toFixed(0)} | ${med(rs, (r) => r.producePer1000Jobs).toFixed(0)} | ${rs.reduce((n, r) => n + r.jobs, 0)} / ${rs.reduce((n, r) => n + r.landed, 0)} | ${rs.reduce((n, r) => n + r.failed, 0)} |`,
      )
    }
    const worker = of('worker', body, connections)
    for (const peer of ['python-acknowledged', 'python-fire-and-forget'] as const) {
      const p = of(peer, body, connections)
      if (worker.length === 0 || p.length === 0) continue
      const x = (f: (r: WeaveRun) => number) => `${paired(worker, p, f).toFixed(2)}x`
      ratioRows.push(
        `| ${body} | ${connections} | worker/${peer} | ${x((r) => r.rps)} | ${x((r) => r.p50)} | ${x((r) => r.p99)} | **${x((r) => r.cpuUsPerRequest)}** |`,
      )
    }
    const ack = of('python-acknowledged', body, connections)
    if (worker.length > 0 && ack.length > 0) {
      const cpu = paired(worker, ack, (r) => r.cpuUsPerRequest)
      const rps = paired(worker, ack, (r) => r.rps)
      const met = cpu <= TARGETS.cpuRatio && rps >= TARGETS.rpsRatio
      targets.push(
        `- ${body}, ${connections} connections: CPU per request ${cpu.toFixed(2)}x (≤ ${TARGETS.cpuRatio}x) and req/s ${rps.toFixed(2)}x (≥ ${TARGETS.rpsRatio}x) the acknowledged peer's: ${met ? 'met' : 'missed'}`,
      )
    }
    if (connections === 64 && worker.length > 0) {
      const produce = med(worker, (r) => r.producePer1000Jobs)
      targets.push(
        `- ${body}, 64 connections: worker's produce requests per 1,000 jobs ${produce.toFixed(0)} (≤ ${TARGETS.producePer1000Jobs}): ${produce <= TARGETS.producePer1000Jobs ? 'met' : 'missed'}`,
      )
    }
  }
  const idleRows = [
    `| Server | Idle CPU, ms per second (${results.idleSeconds} s, settled ${results.idleSettleSeconds ?? 0} s) | Idle CPU right after the load | Jobs accepted | Jobs on the topic (unique) | Beyond accepted (in flight at the runs' ends, at most) | Missing | Duplicates |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const server of WEAVE_SERVERS) {
    const v = results.verdicts[server]
    const afterLoad = results.idleAfterLoadCpuMsPerSecond?.[server] ?? Number.NaN
    idleRows.push(
      `| ${server} | ${(results.idleCpuMsPerSecond[server] ?? Number.NaN).toFixed(1)} | ${afterLoad.toFixed(1)} | ${v?.expected} | ${v?.unique} | ${(v?.unique ?? 0) - (v?.expected ?? 0)} (${v?.inFlight}) | ${v?.missing} | ${v?.duplicates} |`,
    )
  }
  const workerIdle = results.idleCpuMsPerSecond.worker ?? Number.NaN
  targets.push(
    `- worker idle CPU ${workerIdle.toFixed(1)} ms per second (< ${TARGETS.idleMsPerSecond}, 1% of a core): ${workerIdle < TARGETS.idleMsPerSecond ? 'met' : 'missed'}`,
  )
  const clean = Object.values(results.verdicts).every((v) => v.missing === 0 && v.duplicates === 0)
  targets.push(`- no job missing or duplicated in any server: ${clean ? 'met' : 'missed'}`)
  console.log(
    [
      '',
      rows.join('\n'),
      '',
      'Ratios, medians of per-round ratios:',
      '',
      ratioRows.join('\n'),
      '',
      idleRows.join('\n'),
      '',
      `Targets (issue 27)${results.smoke ? ', smoke run: not meaningful' : ''}:`,
      targets.join('\n'),
      '',
    ].join('\n'),
  )
}
