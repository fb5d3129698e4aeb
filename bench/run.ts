/**
 * `npm run bench`: the worker against its floor (bench/floor-worker.ts) and its stack floor
 * (bench/stack-worker.ts), all production bundles under plain workerd (self-hosted mode),
 * producing to the local Kafka REST sink, all on loopback.
 *
 * Per body (small, large, max) and round, each server gets a fixed-length autocannon run at a
 * fixed concurrency; the servers' order alternates between rounds so none always runs on the
 * warmer machine. Prints requests/s, p50/p99 and CPU per request per server, the median per-round
 * ratios worker/floor, stack/floor and worker/stack, the targets (on worker/stack), and the
 * bundle's gzip size; bench/out/results.json keeps every run.
 *
 * Settings (environment): BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (8),
 * BENCH_BODIES (small,large,max), BENCH_SERVERS (worker,floor,stack; worker and floor are
 * required), BENCH_BASELINE (a git revision: adds the worker as of that revision, to measure a
 * change against the code before it in the same run), BENCH_SMOKE (1: small and max bodies, one round of 1 s,
 * no warm-up: CI's check that the bench still runs).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  type Bench,
  BODIES,
  type BodyName,
  boundBench,
  measure,
  median,
  pairedRatio,
  positiveSetting,
  type Run,
  requestBody,
  SERVERS,
  type ServerName,
  SMOKE,
  startBench,
} from './lib.ts'

const OUT = 'bench/out'
/** The targets, on the median per-round worker/stack ratios (docs/performance.md). */
const THROUGHPUT_TARGETS: Record<BodyName, number> = { small: 0.9, large: 0.9, max: 0.85 }
const CPU_TARGETS: Partial<Record<BodyName, number>> = { max: 1.2 }
const BUNDLE_LIMIT_KIB = 256

const ROUNDS = positiveSetting('BENCH_ROUNDS', 5, 1)
const SECONDS = positiveSetting('BENCH_SECONDS', 5, 1)
const CONNECTIONS = positiveSetting('BENCH_CONNECTIONS', 8)
const BASELINE = process.env.BENCH_BASELINE || undefined
// A smoke run skips the large body: small and max cover the unsplit and the split produce.
const selected = (process.env.BENCH_BODIES ?? (SMOKE ? 'small,max' : 'small,large,max'))
  .split(',')
  .filter((b): b is BodyName => b in BODIES)
const wanted = (process.env.BENCH_SERVERS ?? 'worker,floor,stack').split(',')
if (BASELINE) wanted.push('baseline')
const servers: ServerName[] = SERVERS.filter((name) => wanted.includes(name))
if (!servers.includes('worker') || !servers.includes('floor')) {
  throw new Error('BENCH_SERVERS must include worker and floor (and may add stack)')
}

let bench: Bench | undefined
// Runs are fixed-length, and a watchdog ends everything the bench started.
const budgetMs = (selected.length * (ROUNDS + 1) * servers.length * (SECONDS + 3) + 180) * 1000
const watchdog = boundBench('bench', budgetMs, () => bench)

try {
  rmSync(OUT, { recursive: true, force: true })
  console.log(`building ${servers.join(', ')} (wrangler deploy --dry-run)…`)
  bench = await startBench({ servers, ...(BASELINE ? { baseline: BASELINE } : {}) })
  const worker = bench.bundles.worker
  if (!worker) throw new Error('no worker bundle')
  const source = readFileSync(join(worker.dir, worker.main))
  const gzipKiB = gzipSync(source, { level: 9 }).length / 1024

  // The sink keeps every record; resetting it every second keeps a max-body run small in memory.
  const resetter = setInterval(() => void bench?.resetSink().catch(() => {}), 1000)
  console.log(
    `${ROUNDS} round(s) × ${SECONDS} s per server and body, ${CONNECTIONS} connections, sink ${bench.sinkUrl}`,
  )
  const runs = {} as Record<BodyName, Partial<Record<ServerName, Run[]>>>
  for (const b of selected) {
    runs[b] = await measure(
      bench,
      servers,
      requestBody(b),
      { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS },
      (name, round, run) => {
        const failed = run.non2xx + run.errors
        console.log(
          `  ${b.padEnd(5)} round ${round + 1}  ${name.padEnd(8)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  ${run.cpuUsPerRequest.toFixed(0)} µs CPU/req${failed ? `  (${run.non2xx} non-2xx, ${run.errors} errors)` : ''}`,
        )
      },
    )
  }
  clearInterval(resetter)

  const label = (b: BodyName) =>
    `${b} (${BODIES[b].ids.toLocaleString('en')} ids, ${BODIES[b].scorers} scorers)`
  const cells = (rs: Run[]) =>
    `${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.p50))} / ${median(rs.map((r) => r.p99))} | ${median(rs.map((r) => r.cpuUsPerRequest)).toFixed(0)}`
  const failures = (rs: Run[]) => rs.reduce((n, run) => n + run.non2xx + run.errors, 0)
  const ratio = (a: Run[], b: Run[], figure: 'rps' | 'cpuUsPerRequest') =>
    `${pairedRatio(a, b, figure).toFixed(2)}x`

  const rows = [
    `| Body | ${servers.map((s) => `${s} req/s | p50 / p99 ms | CPU µs/req`).join(' | ')} | failed |`,
    `| --- | ${servers.map(() => '---: | ---: | ---:').join(' | ')} | ---: |`,
  ]
  const ratioRows = [
    '| Body | Worker/floor | CPU worker/floor | Stack/floor | CPU stack/floor | Worker/stack | CPU worker/stack | Target |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  const baselineRows = ['| Body | Worker/baseline | CPU worker/baseline |', '| --- | ---: | ---: |']
  let allMet = true
  for (const b of selected) {
    const per = runs[b]
    const w = per.worker ?? []
    const f = per.floor ?? []
    const s = per.stack
    const failed = servers.reduce((n, name) => n + failures(per[name] ?? []), 0)
    rows.push(
      `| ${label(b)} | ${servers.map((name) => cells(per[name] ?? [])).join(' | ')} | ${failed} |`,
    )
    let verdict = 'needs the stack'
    if (s) {
      const throughput = pairedRatio(w, s, 'rps')
      const cpu = pairedRatio(w, s, 'cpuUsPerRequest')
      const cpuTarget = CPU_TARGETS[b]
      const met =
        throughput >= THROUGHPUT_TARGETS[b] && (cpuTarget === undefined || cpu <= cpuTarget)
      allMet &&= met && failed === 0
      verdict = `≥ ${THROUGHPUT_TARGETS[b]}x${cpuTarget ? `, CPU ≤ ${cpuTarget}x` : ''}: ${met ? 'met' : 'missed'}`
    } else allMet = false
    ratioRows.push(
      `| ${label(b)} | **${ratio(w, f, 'rps')}** | ${ratio(w, f, 'cpuUsPerRequest')} | ${s ? `${ratio(s, f, 'rps')} | ${ratio(s, f, 'cpuUsPerRequest')} | **${ratio(w, s, 'rps')}** | ${ratio(w, s, 'cpuUsPerRequest')}` : '– | – | – | –'} | ${verdict}${failed ? ` (${failed} failed requests)` : ''} |`,
    )
    const base = per.baseline
    if (base) {
      baselineRows.push(
        `| ${label(b)} | ${ratio(w, base, 'rps')} | ${ratio(w, base, 'cpuUsPerRequest')} |`,
      )
    }
  }
  const bundleMet = gzipKiB < BUNDLE_LIMIT_KIB
  console.log(`\n${rows.join('\n')}\n\n${ratioRows.join('\n')}\n`)
  if (BASELINE) {
    console.log(`The worker against itself as of ${BASELINE}:\n\n${baselineRows.join('\n')}\n`)
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
        ...(BASELINE ? { baseline: BASELINE } : {}),
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
