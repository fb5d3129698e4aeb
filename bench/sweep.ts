/**
 * `npm run bench:sweep`: how the cost of a request grows with its call ids. The worker, the
 * stack floor and the floor (see bench/run.ts) are measured on bodies of 10, 100, 1,000 and
 * 10,000 call ids with a fixed number of scorer refs, the same way as `npm run bench` (paired,
 * alternating rounds), and the median CPU per request is drawn against call ids on log-log axes
 * (bench/chart.ts) into docs/performance-sweep.svg. bench/out/sweep.json keeps every run.
 *
 * Settings (environment): BENCH_SWEEP_IDS (10,100,1000,10000), BENCH_SWEEP_SCORERS (5),
 * BENCH_SWEEP_ROUNDS (3), BENCH_SWEEP_SECONDS (3), BENCH_CONNECTIONS (8), BENCH_SWEEP_SVG
 * (docs/performance-sweep.svg; empty to draw nothing), BENCH_SMOKE (1: 10 and 1,000 ids, one round
 * of 1 s, the picture in a temporary folder).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderSweepSvg, type SweepPoint, type SweepResults } from './chart.ts'
import {
  type Bench,
  boundBench,
  chartFile,
  measure,
  median,
  pairedRatio,
  positiveList,
  positiveSetting,
  type Run,
  requestBody,
  type ServerName,
  SMOKE,
  startBench,
} from './lib.ts'

const OUT = 'bench/out'

const IDS = positiveList('BENCH_SWEEP_IDS', SMOKE ? '10,1000' : '10,100,1000,10000')
const SCORERS = positiveSetting('BENCH_SWEEP_SCORERS', 5)
const ROUNDS = positiveSetting('BENCH_SWEEP_ROUNDS', 3, 1)
const SECONDS = positiveSetting('BENCH_SWEEP_SECONDS', 3, 1)
const CONNECTIONS = positiveSetting('BENCH_CONNECTIONS', 8)
const SVG = chartFile(process.env.BENCH_SWEEP_SVG ?? 'docs/performance-sweep.svg')
const SERVERS: ServerName[] = ['worker', 'stack', 'floor']

let bench: Bench | undefined
// Runs are fixed-length, and a watchdog ends everything the bench started.
const budgetMs = (IDS.length * (ROUNDS + 1) * SERVERS.length * (SECONDS + 3) + 180) * 1000
const watchdog = boundBench('bench:sweep', budgetMs, () => bench)

try {
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })
  console.log(`building ${SERVERS.join(', ')} (wrangler deploy --dry-run)…`)
  bench = await startBench({ servers: SERVERS })
  const resetter = setInterval(() => void bench?.resetSink().catch(() => {}), 1000)
  console.log(
    `call ids ${IDS.join(', ')} with ${SCORERS} scorer refs; ${ROUNDS} round(s) × ${SECONDS} s per server, ${CONNECTIONS} connections`,
  )
  const runs: Record<number, Partial<Record<ServerName, Run[]>>> = {}
  const points: SweepPoint[] = []
  for (const ids of IDS) {
    const per = await measure(
      bench,
      SERVERS,
      requestBody({ ids, scorers: SCORERS }),
      { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS },
      (name, round, run) =>
        console.log(
          `  ${String(ids).padStart(6)} ids  round ${round + 1}  ${name.padEnd(6)} ${run.rps.toFixed(0).padStart(6)} req/s  ${run.cpuUsPerRequest.toFixed(0)} µs CPU/req${run.non2xx + run.errors ? `  (${run.non2xx} non-2xx, ${run.errors} errors)` : ''}`,
        ),
    )
    runs[ids] = per
    for (const server of SERVERS) {
      const rs = per[server] ?? []
      points.push({
        server,
        callIds: ids,
        cpuUsPerRequest: Math.round(median(rs.map((r) => r.cpuUsPerRequest))),
        rps: Math.round(median(rs.map((r) => r.rps))),
      })
    }
  }
  clearInterval(resetter)

  const cpu = (server: ServerName, ids: number) =>
    points.find((p) => p.server === server && p.callIds === ids)?.cpuUsPerRequest ?? Number.NaN
  const rows = [
    '| Call ids | Worker CPU µs/req | Stack CPU µs/req | Floor CPU µs/req | CPU worker/stack | Worker/stack req/s |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const ids of IDS) {
    const w = runs[ids]?.worker ?? []
    const s = runs[ids]?.stack ?? []
    rows.push(
      `| ${ids.toLocaleString('en')} | ${cpu('worker', ids)} | ${cpu('stack', ids)} | ${cpu('floor', ids)} | ${pairedRatio(w, s, 'cpuUsPerRequest').toFixed(2)}x | ${pairedRatio(w, s, 'rps').toFixed(2)}x |`,
    )
  }
  console.log(`\n${rows.join('\n')}\n`)

  const results: SweepResults & { runs: typeof runs } = {
    date: new Date().toISOString(),
    scorers: SCORERS,
    rounds: ROUNDS,
    seconds: SECONDS,
    connections: CONNECTIONS,
    points,
    runs,
  }
  writeFileSync(join(OUT, 'sweep.json'), JSON.stringify(results, null, 2))
  if (SVG) {
    writeFileSync(SVG, await renderSweepSvg(results))
    console.log(`wrote ${SVG}`)
  }
} finally {
  clearTimeout(watchdog)
  await bench?.stop()
}
