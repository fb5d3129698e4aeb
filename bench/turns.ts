/**
 * `npm run bench:turns -- [small|large|max]`: where each server's time per request goes, turn by
 * turn. Serves the worker, the stack floor and the floor (production bundles under workerd, as
 * `npm run bench` does) with workerd's async activity trace on, sends them the same body one
 * request at a time, round robin (so the three see the same machine), and reads the traces: for
 * each request, the time each of its turns held the isolate (the JavaScript and the runtime calls
 * it made, between two waits for I/O), with what started the turn.
 *
 * Unloaded and sequential, this is not the bench's CPU per request (the runtime's HTTP work
 * outside turns is not in it, and the trace adds its own writes to every server alike); it shows
 * in which phase of a request one server does more than another.
 *
 * Settings (environment): BENCH_TURNS_REQUESTS (1000 per server), BENCH_TURNS_WARMUP (2000),
 * BENCH_BASELINE (adds the worker as of a git revision), BENCH_SMOKE (1: 20 requests after one).
 */
import { readFileSync } from 'node:fs'
import {
  asyncTraceFile,
  type Bench,
  BODIES,
  type BodyName,
  boundBench,
  expectAccepted,
  median,
  positiveSetting,
  requestBody,
  type ServerName,
  startBench,
} from './lib.ts'

const body = (process.argv[2] ?? 'small') as BodyName
if (!(body in BODIES)) throw new Error(`unknown body ${body}: small, large or max`)
const REQUESTS = positiveSetting('BENCH_TURNS_REQUESTS', 1000, 20)
// V8 keeps tiering up per-request code for thousands of requests; measure after that.
const WARMUP = positiveSetting('BENCH_TURNS_WARMUP', 2000, 1)
const BASELINE = process.env.BENCH_BASELINE || undefined
const servers: ServerName[] = [
  'worker',
  'stack',
  'floor',
  ...(BASELINE ? ['baseline' as const] : []),
]

/** One line of workerd's `--async-trace` output, the fields read here. */
type TraceEvent = {
  e: string
  ctx?: number
  id?: number
  kind?: string
  name?: string
  cause?: number
  locked?: number
  end?: number
}
type Turn = { us: number; cause: string }

/** Each request's turns, in order, from one trace (a context is one request). */
function requestTurns(file: string): Turn[][] {
  const causes = new Map<number, string>()
  const byRequest = new Map<number, Turn[]>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    const event = JSON.parse(line) as TraceEvent
    if (event.e === 'init' && event.id !== undefined) {
      causes.set(event.id, event.kind === 'request' ? 'request' : `${event.name}`)
    } else if (event.e === 'turn' && event.ctx !== undefined) {
      const turns = byRequest.get(event.ctx) ?? []
      turns.push({
        us: ((event.end ?? 0) - (event.locked ?? 0)) / 1000,
        cause: causes.get(event.cause ?? -1) ?? '?',
      })
      byRequest.set(event.ctx, turns)
    }
  }
  return [...byRequest.entries()].sort((a, b) => a[0] - b[0]).map(([, turns]) => turns)
}

let bench: Bench | undefined
const watchdog = boundBench('bench:turns', 600_000, () => bench)
try {
  bench = await startBench({
    servers,
    asyncTrace: true,
    ...(BASELINE ? { baseline: BASELINE } : {}),
  })
  const text = requestBody(body)
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    for (let k = 0; k < servers.length; k++) {
      const name = servers[(i + k) % servers.length] as ServerName
      const server = bench.servers[name]
      if (server) await expectAccepted(name, server.url, bench.auth, text)
    }
    // Keep the sink's memory flat: it holds every message it acknowledged.
    if (i % 100 === 99) await bench.resetSink()
  }
  // workerd writes the rest of its trace as it exits.
  await bench.stop()

  const rows = servers.map((name) => {
    const all = requestTurns(asyncTraceFile(name)).slice(-REQUESTS)
    // The usual shape of a request (its number of turns); requests of another shape are rare.
    const counts = new Map<number, number>()
    for (const turns of all) counts.set(turns.length, (counts.get(turns.length) ?? 0) + 1)
    const shape = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0
    const usual = all.filter((turns) => turns.length === shape)
    return {
      name,
      total: median(all.map((turns) => turns.reduce((sum, t) => sum + t.us, 0))),
      turns: Array.from({ length: shape }, (_, i) => ({
        cause: usual[0]?.[i]?.cause ?? '?',
        us: median(usual.map((turns) => turns[i]?.us ?? Number.NaN)),
      })),
    }
  })
  const stack = rows.find((r) => r.name === 'stack')?.total ?? Number.NaN
  console.log(
    `\n${body} body, ${REQUESTS} requests per server, one at a time: median µs per request in turns`,
  )
  for (const row of rows) {
    const turns = row.turns.map((t, i) => `${i}:${t.cause} ${t.us.toFixed(0)}`).join(' | ')
    console.log(
      `${row.name.padEnd(8)} ${row.total.toFixed(0).padStart(6)} µs  ${(row.total / stack).toFixed(2)}x stack  [${turns}]`,
    )
  }
  const baseline = rows.find((r) => r.name === 'baseline')?.total
  const worker = rows.find((r) => r.name === 'worker')?.total ?? Number.NaN
  if (baseline !== undefined) console.log(`worker/baseline ${(worker / baseline).toFixed(3)}x`)
} finally {
  clearTimeout(watchdog)
  await bench?.stop()
}
