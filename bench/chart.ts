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

if (import.meta.main) {
  const input = process.argv[2] ?? 'bench/out/sweep.json'
  const output = process.argv[3] ?? 'docs/performance-sweep.svg'
  const results = JSON.parse(readFileSync(input, 'utf8')) as SweepResults
  writeFileSync(output, await renderSweepSvg(results))
  console.log(`wrote ${output}`)
}
