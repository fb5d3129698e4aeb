/**
 * `npm run bench`: the worker against its floor (bench/floor-worker.ts), both production bundles
 * under plain workerd (self-hosted mode), producing to the local Kafka REST sink, all on loopback.
 *
 * Per body (small, large, max) and round, each server gets a fixed-length autocannon run at a
 * fixed concurrency; the servers' order alternates between rounds so neither always runs on the
 * warmer machine. Prints requests/s and p50/p99 per server, the median ratio worker/floor per
 * body against its target, and the bundle's gzip size; bench/out/results.json keeps the runs.
 *
 * Settings (environment): BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (8),
 * BENCH_BODIES (small,large,max), BENCH_SERVERS (worker,floor; add `stack` for the stack floor,
 * bench/stack-worker.ts, which shows how much of the gap the required stack itself takes).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  type Bench,
  BODIES,
  type BodyName,
  load,
  type Run,
  requestBody,
  SERVERS,
  type ServerName,
  startBench,
} from './lib.ts'

const OUT = 'bench/out'
const TARGETS: Record<BodyName, number> = { small: 0.9, large: 0.8, max: 0.7 }
const BUNDLE_LIMIT_KIB = 64

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}
const ROUNDS = positive('BENCH_ROUNDS', 5)
const SECONDS = positive('BENCH_SECONDS', 5)
const CONNECTIONS = positive('BENCH_CONNECTIONS', 8)
const selected = (process.env.BENCH_BODIES ?? 'small,large,max')
  .split(',')
  .filter((b): b is BodyName => b in BODIES)
const servers: ServerName[] = SERVERS.filter((name) =>
  (process.env.BENCH_SERVERS ?? 'worker,floor').split(',').includes(name),
)
if (!servers.includes('worker') || !servers.includes('floor')) {
  throw new Error('BENCH_SERVERS must include worker and floor (and may add stack)')
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/**
 * Median of the per-round ratios `a / b` of one figure: runs taken side by side, so a noisy
 * round moves both.
 */
const pairedRatio = (a: Run[], b: Run[], figure: 'rps' | 'cpuUsPerRequest'): number =>
  median(a.map((run, i) => run[figure] / (b[i]?.[figure] ?? Number.NaN)))

let bench: Bench | undefined
// The bench bounds itself: runs are fixed-length, and a watchdog ends everything it started.
const budgetMs = (selected.length * (ROUNDS + 1) * servers.length * (SECONDS + 3) + 180) * 1000
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${budgetMs / 1000} s, stopping\n`)
  void (bench?.stop() ?? Promise.resolve()).finally(() => process.exit(1))
}, budgetMs)
process.once(
  'SIGINT',
  () => void (bench?.stop() ?? Promise.resolve()).finally(() => process.exit(130)),
)

try {
  rmSync(OUT, { recursive: true, force: true })
  console.log(`building ${servers.join(', ')} (wrangler deploy --dry-run)…`)
  bench = await startBench({ servers })
  const { auth } = bench
  const running = bench.servers
  const url = (name: ServerName): string => {
    const server = running[name]
    if (!server) throw new Error(`${name} did not start`)
    return server.url
  }
  const pid = (name: ServerName) => running[name]?.process.pid
  const worker = bench.bundles.worker
  if (!worker) throw new Error('no worker bundle')
  const source = readFileSync(join(worker.dir, worker.main))
  const gzipKiB = gzipSync(source, { level: 9 }).length / 1024

  // The sink keeps every record; resetting it every second keeps a max-body run small in memory.
  const resetter = setInterval(() => void bench?.resetSink().catch(() => {}), 1000)

  const payloads = Object.fromEntries(selected.map((b) => [b, requestBody(b)])) as Record<
    BodyName,
    string
  >
  // Every server must really accept every body: a fast 4xx/5xx would look like speed.
  for (const b of selected) {
    for (const name of servers) {
      const answer = await fetch(`${url(name)}/calls/score`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: payloads[b],
      })
      const text = await answer.text()
      if (answer.status !== 200 || text !== '{}') {
        throw new Error(`${name} answered ${answer.status} ${text.slice(0, 300)} to the ${b} body`)
      }
    }
  }

  console.log(
    `${ROUNDS} round(s) × ${SECONDS} s per server and body, ${CONNECTIONS} connections, sink ${bench.sinkUrl}`,
  )
  const runs = {} as Record<BodyName, Record<ServerName, Run[]>>
  for (const b of selected) {
    const perServer: Record<ServerName, Run[]> = { worker: [], floor: [], stack: [] }
    runs[b] = perServer
    // Warm every isolate (JIT, outbound connections) before measuring.
    for (const name of servers) await load(url(name), payloads[b], auth, 1, CONNECTIONS)
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse()
      for (const name of order) {
        await bench.resetSink()
        const run = await load(url(name), payloads[b], auth, SECONDS, CONNECTIONS, pid(name))
        perServer[name].push(run)
        const failed = run.non2xx + run.errors
        console.log(
          `  ${b.padEnd(5)} round ${round + 1}  ${name.padEnd(6)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  ${run.cpuUsPerRequest.toFixed(0)} µs CPU/req${failed ? `  (${run.non2xx} non-2xx, ${run.errors} errors)` : ''}`,
        )
      }
    }
  }
  clearInterval(resetter)

  const rows = [
    '| Body | Worker req/s | p50 / p99 ms | CPU µs/req | Floor req/s | p50 / p99 ms | CPU µs/req | CPU worker/floor | Worker/floor | Target |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  const stackRows = [
    '| Body | Stack req/s | p50 / p99 ms | CPU µs/req | CPU stack/floor | Stack/floor | Worker/stack |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  const cells = (rs: Run[]) =>
    `${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.p50))} / ${median(rs.map((r) => r.p99))} | ${median(rs.map((r) => r.cpuUsPerRequest)).toFixed(0)}`
  const failures = (rs: Run[]) => rs.reduce((n, run) => n + run.non2xx + run.errors, 0)
  let allMet = true
  for (const b of selected) {
    const { worker: w, floor: f, stack: s } = runs[b]
    const label = `${b} (${BODIES[b].ids.toLocaleString('en')} ids, ${BODIES[b].scorers} scorers)`
    const ratio = pairedRatio(w, f, 'rps')
    const failed = failures(w) + failures(f)
    const met = ratio >= TARGETS[b] && failed === 0
    allMet &&= met
    rows.push(
      `| ${label} | ${cells(w)} | ${cells(f)} | ${pairedRatio(w, f, 'cpuUsPerRequest').toFixed(2)}x | **${ratio.toFixed(2)}x** | ≥ ${TARGETS[b]}x: ${met ? 'met' : 'missed'}${failed ? ` (${failed} failed requests)` : ''} |`,
    )
    if (s.length > 0) {
      const stackFailed = failures(s)
      stackRows.push(
        `| ${label} | ${cells(s)} | ${pairedRatio(s, f, 'cpuUsPerRequest').toFixed(2)}x | ${pairedRatio(s, f, 'rps').toFixed(2)}x | ${pairedRatio(w, s, 'rps').toFixed(2)}x${stackFailed ? ` (${stackFailed} failed requests)` : ''} |`,
      )
    }
  }
  const bundleMet = gzipKiB < BUNDLE_LIMIT_KIB
  console.log(`\n${rows.join('\n')}\n`)
  if (servers.includes('stack')) {
    console.log(
      `Stack floor (bench/stack-worker.ts: Hono, Basic auth against API_KEYS, @upstash/kafka under a deadline; no targets):\n\n${stackRows.join('\n')}\n`,
    )
  }
  console.log(
    `Production bundle (${worker.main}): ${(source.length / 1024).toFixed(1)} KiB, ${gzipKiB.toFixed(1)} KiB gzip (target < ${BUNDLE_LIMIT_KIB} KiB: ${bundleMet ? 'met' : 'missed'})`,
  )
  console.log(allMet && bundleMet ? 'All targets met.' : 'Some targets missed.')
  writeFileSync(
    join(OUT, 'results.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        rounds: ROUNDS,
        seconds: SECONDS,
        connections: CONNECTIONS,
        bundle: { bytes: source.length, gzipBytes: Math.round(gzipKiB * 1024) },
        runs,
      },
      null,
      2,
    ),
  )
} finally {
  clearTimeout(watchdog)
  await bench?.stop()
}
