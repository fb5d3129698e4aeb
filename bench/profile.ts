/**
 * `npm run bench:profile -- [small|large|max] [worker|floor|stack|baseline] [cpu|heap]`: a CPU
 * profile (or, with `heap`, a sampling allocation profile) of the production bundle (or one of the
 * floors, or the worker as of a git revision) under load, taken through workerd's V8 inspector.
 * Writes bench/out/<server>-<body>.cpuprofile (or .heapprofile; open either in Chrome DevTools)
 * and prints the functions with the most self time (or the most bytes allocated per request),
 * named through the bundle's source map.
 *
 * Settings (environment): BENCH_SECONDS (5), BENCH_CONNECTIONS (8), BENCH_BASELINE (the git
 * revision the `baseline` server is built from), BENCH_SMOKE (1: 1 s, no warm-up).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import {
  BODIES,
  type BodyName,
  freePort,
  load,
  positiveSetting,
  requestBody,
  SERVERS,
  type ServerName,
  startBench,
  WARMUP_SECONDS,
} from './lib.ts'

const OUT = 'bench/out'
const name = (process.argv[2] ?? 'large') as BodyName
if (!(name in BODIES)) throw new Error(`unknown body ${name}: small, large or max`)
const serverName = (process.argv[3] ?? 'worker') as ServerName
if (!SERVERS.includes(serverName))
  throw new Error(`unknown server ${serverName}: ${SERVERS.join(', ')}`)
const kind = process.argv[4] ?? 'cpu'
if (kind !== 'cpu' && kind !== 'heap') throw new Error(`unknown profile ${kind}: cpu or heap`)
const seconds = positiveSetting('BENCH_SECONDS', 5, 1)
const connections = positiveSetting('BENCH_CONNECTIONS', 8)

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number }
type ProfileNode = { id: number; callFrame: CallFrame; hitCount?: number }
type Profile = { nodes: ProfileNode[]; samples?: number[]; startTime: number; endTime: number }
type HeapNode = { callFrame: CallFrame; selfSize: number; children: HeapNode[] }

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function inspect(address: string) {
  const targets = (await (await fetch(`http://${address}/json/list`)).json()) as {
    webSocketDebuggerUrl: string
  }[]
  const target = targets[0]
  if (!target) throw new Error('workerd exposes no inspector target')
  const socket = new WebSocket(target.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true })
    socket.addEventListener('error', reject, { once: true })
  })
  let next = 1
  const pending = new Map<number, (result: unknown) => void>()
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown }
    if (message.id !== undefined) pending.get(message.id)?.(message.result)
  })
  return {
    send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
      const id = next++
      socket.send(JSON.stringify({ id, method, params }))
      return new Promise((resolve) => pending.set(id, resolve))
    },
    close: () => socket.close(),
  }
}

mkdirSync(OUT, { recursive: true })
const inspector = `127.0.0.1:${await freePort()}`
const baseline = process.env.BENCH_BASELINE || undefined
const bench = await startBench({
  servers: [serverName],
  inspector,
  ...(baseline ? { baseline } : {}),
})
try {
  const server = bench.servers[serverName]
  if (!server) throw new Error(`${serverName} did not start`)
  const payload = requestBody(name)
  if (WARMUP_SECONDS > 0) await load(server.url, payload, bench.auth, WARMUP_SECONDS, connections)
  const cdp = await inspect(inspector)
  let run: Awaited<ReturnType<typeof load>>
  let frames: { callFrame: CallFrame; weight: number }[]
  let file: string
  if (kind === 'heap') {
    // Every allocation sampled (interval 1 KiB of allocation), kept or collected: GC's work.
    await cdp.send('HeapProfiler.enable')
    await cdp.send('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
    run = await load(server.url, payload, bench.auth, seconds, connections)
    const { profile } = (await cdp.send('HeapProfiler.stopSampling')) as {
      profile: { head: HeapNode }
    }
    file = join(OUT, `${serverName}-${name}.heapprofile`)
    writeFileSync(file, JSON.stringify(profile))
    frames = []
    const pending = [profile.head]
    for (let node = pending.pop(); node; node = pending.pop()) {
      frames.push({ callFrame: node.callFrame, weight: node.selfSize })
      pending.push(...node.children)
    }
  } else {
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
    await cdp.send('Profiler.start')
    run = await load(server.url, payload, bench.auth, seconds, connections)
    const { profile } = (await cdp.send('Profiler.stop')) as { profile: Profile }
    file = join(OUT, `${serverName}-${name}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    frames = profile.nodes.map((node) => ({
      callFrame: node.callFrame,
      weight: node.hitCount ?? 0,
    }))
  }
  cdp.close()

  // The bundle is minified: name each frame by its place in the sources, through the source map.
  const bundle = bench.bundles[serverName]
  const map = bundle
    ? new SourceMap(JSON.parse(readFileSync(join(bundle.dir, `${bundle.main}.map`), 'utf8')))
    : undefined
  const total = frames.reduce((n, frame) => n + frame.weight, 0)
  const self = new Map<string, number>()
  for (const frame of frames) {
    const { functionName, url, lineNumber, columnNumber } = frame.callFrame
    let where = ''
    if (url) {
      const origin = map?.findOrigin(lineNumber + 1, columnNumber + 1)
      where =
        origin && 'fileName' in origin
          ? `${origin.fileName.replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, '')}:${origin.lineNumber}${origin.name ? ` ${origin.name}` : ''}`
          : `${url.split('/').pop()}:${lineNumber + 1}:${columnNumber + 1}`
    }
    const key = `${functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + frame.weight)
  }
  const requests = run.rps * seconds
  console.log(
    `${serverName}, ${name}: ${run.rps.toFixed(0)} req/s while profiling; ${file}\n${kind === 'heap' ? `allocated: ${(total / requests / 1024).toFixed(0)} KiB per request, by function` : 'self time:'}`,
  )
  for (const [key, weight] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    const kib =
      kind === 'heap' ? `  ${(weight / requests / 1024).toFixed(1).padStart(7)} KiB/req` : ''
    console.log(`${((weight / total) * 100).toFixed(1).padStart(6)}%${kib}  ${key}`)
  }
} finally {
  await bench.stop()
}
