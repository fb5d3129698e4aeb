/**
 * The benches' pictures, drawn with Vega-Lite and rendered to SVG by Vega's headless view (no
 * browser, no canvas): the sweep's CPU per request against call ids, bench:native's variants,
 * bench:weave's servers.
 *
 * `npm run bench:chart` redraws every picture whose results are in bench/out (sweep.json,
 * native.json, weave.json) into docs/; `npm run bench:chart -- <results.json> [out.svg]` one of
 * them. The benches call the renderers themselves. With BENCH_SMOKE=1 the pictures go to a
 * temporary folder.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import * as vega from 'vega'
import * as vl from 'vega-lite'
import { chartFile } from './lib.ts'

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

/** One run of `npm run bench:weave`: one server, case (body, connections) and round. */
export type WeaveRun = {
  server: string
  body: string
  connections: number
  round: number
  requests: number
  accepted: number
  failed: number
  rps: number
  p50: number
  p99: number
  cpuUsPerRequest: number
  jobs: number
  landed: number
  produceRequests: number
  producePer1000Jobs: number
  windowSeconds: number
}

/** What bench/weave.ts writes to bench/out/weave.json. */
export type WeaveResults = {
  kind: 'weave'
  date: string
  rounds: number
  seconds: number
  idleSeconds: number
  smoke: boolean
  /** The Python peer's versions (Python, FastAPI, pydantic, uvicorn, confluent-kafka, librdkafka). */
  peer: string
  runs: WeaveRun[]
  /** Seconds of start-up load each server got before the first case (absent: 0). */
  warmupSeconds?: number
  /** Seconds waited after the first idle window before the settled one (absent: 0). */
  idleSettleSeconds?: number
  /** Per server: CPU ms per second while connected and serving nothing, settled. */
  idleCpuMsPerSecond: Record<string, number>
  /** Per server: the same a second after the last run (absent in older results). */
  idleAfterLoadCpuMsPerSecond?: Record<string, number>
  /**
   * Per server, the read-back: jobs accepted, the most that may land beyond them (requests in
   * flight when runs ended), unique job ids on the topic, missing, duplicated.
   */
  verdicts: Record<
    string,
    { expected: number; inFlight: number; unique: number; missing: number; duplicates: number }
  >
}

const WEAVE_FIGURES = [
  { field: 'cpuUsPerRequest', title: 'CPU µs per request (server processes)' },
  { field: 'rps', title: 'requests per second' },
  { field: 'p99', title: 'p99 latency, ms' },
  { field: 'producePer1000Jobs', title: 'produce requests per 1,000 jobs' },
] as const

/**
 * The SVG text of bench:weave's chart: per figure, for each case (body × connections) each
 * server's median bar and its rounds; idle CPU in the subtitle.
 */
export async function renderWeaveSvg(results: WeaveResults): Promise<string> {
  const servers = [...new Set(results.runs.map((r) => r.server))]
  const values = results.runs.map((r) => ({ ...r, case: `${r.body}, ${r.connections} conns` }))
  const cases = [...new Set(values.map((v) => v.case))]
  const idle = Object.entries(results.idleCpuMsPerSecond)
    .map(([server, ms]) => `${server} ${ms.toFixed(1)}`)
    .join(', ')
  const panel = (figure: (typeof WEAVE_FIGURES)[number]) => ({
    width: 190,
    height: 220,
    title: figure.title,
    encoding: {
      x: { field: 'case', type: 'nominal', sort: cases, title: null, axis: { labelAngle: -30 } },
      xOffset: { field: 'server', type: 'nominal', sort: servers },
      color: { field: 'server', type: 'nominal', sort: servers, title: null },
    },
    layer: [
      {
        mark: { type: 'bar', opacity: 0.85 },
        encoding: {
          y: { aggregate: 'median', field: figure.field, type: 'quantitative', title: null },
        },
      },
      {
        mark: { type: 'point', filled: true, color: 'black', size: 12 },
        encoding: { y: { field: figure.field, type: 'quantitative' } },
      },
    ],
  })
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      anchor: 'start',
      text: "The worker (npm start, native transport, producer shards) against Weave's path in Python (FastAPI, librdkafka)",
      subtitle: [
        `one Apache Kafka broker; bars: median of ${results.rounds} rounds × ${results.seconds} s, dots: rounds; ${results.date.slice(0, 10)}`,
        `idle CPU, ms per second: ${idle}`,
      ],
    },
    background: 'white',
    data: { values },
    hconcat: WEAVE_FIGURES.map(panel),
    config: { font: 'sans-serif', legend: { orient: 'top', labelLimit: 400 } },
  } as vl.TopLevelSpec
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  return `${svg}\n`
}

/** The pictures `npm run bench:chart` can redraw: results file, committed SVG, renderer. */
const CHARTS = [
  {
    results: 'bench/out/sweep.json',
    svg: 'docs/performance-sweep.svg',
    render: (r: unknown) => renderSweepSvg(r as SweepResults),
  },
  {
    results: 'bench/out/native.json',
    svg: 'docs/performance-native.svg',
    render: (r: unknown) => renderNativeSvg(r as NativeResults),
  },
  {
    results: 'bench/out/weave.json',
    svg: 'docs/performance-weave.svg',
    render: (r: unknown) => renderWeaveSvg(r as WeaveResults),
  },
] as const

if (import.meta.main) {
  // One results file (and where to draw it), or every chart whose results are in bench/out.
  const [input, output] = process.argv.slice(2)
  const chosen = input
    ? CHARTS.filter((c) => c.results.endsWith(input.split('/').pop() ?? '')).map((c) => ({
        ...c,
        results: input,
        svg: output ?? c.svg,
      }))
    : CHARTS.filter((c) => existsSync(c.results))
  if (chosen.length === 0) {
    throw new Error(
      input
        ? `${input}: name a sweep.json, native.json or weave.json`
        : 'no results in bench/out: run npm run bench:sweep, bench:native or bench:weave first',
    )
  }
  for (const chart of chosen) {
    const svg = output ?? chartFile(chart.svg)
    writeFileSync(svg, await chart.render(JSON.parse(readFileSync(chart.results, 'utf8'))))
    console.log(`wrote ${svg} from ${chart.results}`)
  }
}
