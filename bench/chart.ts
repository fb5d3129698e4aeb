/**
 * The sweep's picture: CPU per request against call ids on log-log axes, one line per server,
 * drawn with Vega-Lite and rendered to SVG by Vega's headless view (no browser, no canvas).
 *
 * `npm run bench:chart [sweep.json] [out.svg]` redraws it from a sweep's results (by default
 * bench/out/sweep.json and docs/performance-sweep.svg); `npm run bench:sweep` calls
 * {@link renderSweepSvg} itself.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import * as vega from 'vega'
import * as vl from 'vega-lite'

/** One measured point of the sweep: a server's median CPU per request for one body. */
export type SweepPoint = {
  server: string
  callIds: number
  cpuUsPerRequest: number
  rps: number
}

/** What bench/sweep.ts writes to bench/out/sweep.json. */
export type SweepResults = {
  date: string
  scorers: number
  rounds: number
  seconds: number
  connections: number
  points: SweepPoint[]
}

const LABELS: Record<string, string> = {
  worker: 'worker',
  stack: 'stack floor (Hono, Basic auth, @upstash/kafka)',
  floor: 'floor (parse, produce)',
}

/** The SVG text of the sweep's chart. */
export async function renderSweepSvg(results: SweepResults): Promise<string> {
  const values = results.points.map((p) => ({
    ...p,
    label: LABELS[p.server] ?? p.server,
  }))
  const ids = [...new Set(results.points.map((p) => p.callIds))].sort((a, b) => a - b)
  const spec: vl.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      anchor: 'start',
      text: 'CPU time per request against call ids (log-log)',
      subtitle: `${results.scorers} scorer refs; median of ${results.rounds} rounds × ${results.seconds} s at ${results.connections} connections; workerd, loopback; ${results.date.slice(0, 10)}`,
    },
    width: 560,
    height: 340,
    background: 'white',
    data: { values },
    encoding: {
      x: {
        field: 'callIds',
        type: 'quantitative',
        title: 'call ids per request',
        scale: { type: 'log', domain: [ids[0] ?? 1, ids[ids.length - 1] ?? 10] },
        axis: { values: ids, format: ',d' },
      },
      y: {
        field: 'cpuUsPerRequest',
        type: 'quantitative',
        title: 'CPU µs per request (workerd process)',
        scale: { type: 'log' },
        axis: { format: ',d' },
      },
      color: {
        field: 'label',
        type: 'nominal',
        title: null,
        sort: Object.values(LABELS),
        legend: { orient: 'top-left', labelLimit: 400 },
      },
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 } },
      { mark: { type: 'point', filled: true, size: 50 } },
    ],
    config: { font: 'sans-serif' },
  }
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return `${svg}\n`
}

/** One run of `npm run bench:native`: one variant, one round. */
export type NativeRun = {
  variant: string
  round: number
  requests: number
  accepted: number
  failed: number
  p50: number
  p99: number
  jobsPerSecond: number
  cpuUsPerRequest: number
  connections: number
  connectionsPer1000Jobs: number
  landed: number
  windowSeconds: number
}

/** What bench/native.ts writes to bench/out/native.json. */
export type NativeResults = {
  date: string
  rounds: number
  seconds: number
  connections: number
  rttMs: number
  runs: NativeRun[]
  verdicts: Record<string, { expected: number; unique: number; duplicates: number }>
  startup?: unknown
}

const NATIVE_FIGURES = [
  { field: 'cpuUsPerRequest', title: 'CPU µs per request (workerd)' },
  { field: 'p50', title: 'p50 latency, ms' },
  { field: 'jobsPerSecond', title: 'jobs per second' },
  { field: 'connectionsPer1000Jobs', title: 'connections per 1,000 jobs' },
] as const

/** The SVG text of bench:native's chart: per figure, each variant's median bar and its rounds. */
export async function renderNativeSvg(results: NativeResults): Promise<string> {
  const variants = [...new Set(results.runs.map((r) => r.variant))]
  const panel = (figure: (typeof NATIVE_FIGURES)[number]) => ({
    width: 150,
    height: 220,
    title: figure.title,
    encoding: {
      x: {
        field: 'variant',
        type: 'nominal',
        sort: variants,
        title: null,
        axis: { labelAngle: -40 },
      },
    },
    layer: [
      {
        mark: { type: 'bar', opacity: 0.8 },
        encoding: {
          y: { aggregate: 'median', field: figure.field, type: 'quantitative', title: null },
          color: { field: 'variant', type: 'nominal', sort: variants, legend: null },
        },
      },
      {
        mark: { type: 'point', filled: true, color: 'black', size: 18 },
        encoding: { y: { field: figure.field, type: 'quantitative' } },
      },
    ],
  })
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      anchor: 'start',
      text: 'Native Kafka (kafkajs, real broker) against Kafka REST (kafka-rest-v2, sink)',
      subtitle: `wrangler dev, and workerd-*: plain workerd; bars: median of ${results.rounds} rounds × ${results.seconds} s at ${results.connections} connections, dots: rounds; small body; proxies add ${results.rttMs} ms RTT; ${results.date.slice(0, 10)}`,
    },
    background: 'white',
    data: { values: results.runs },
    hconcat: NATIVE_FIGURES.map(panel),
    config: { font: 'sans-serif' },
  } as vl.TopLevelSpec
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return `${svg}\n`
}

if (import.meta.main) {
  const input = process.argv[2] ?? 'bench/out/sweep.json'
  const output = process.argv[3] ?? 'docs/performance-sweep.svg'
  const results = JSON.parse(readFileSync(input, 'utf8')) as SweepResults
  writeFileSync(output, await renderSweepSvg(results))
  console.log(`wrote ${output}`)
}
