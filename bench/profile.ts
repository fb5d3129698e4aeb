/**
 * `npm run bench:profile -- [small|large|max] [worker|floor|stack|baseline|native] [cpu|heap]`: a
 * CPU profile (or, with `heap`, a sampling allocation profile) of the production bundle (or one of
 * the floors, or the worker as of a git revision) under load, taken through workerd's V8 inspector.
 * `native` is the worker with the native Kafka transport and its producer shards (as `npm start`
 * binds them) against one real Apache Kafka broker (Java 17+ and Maven), instead of the REST sink.
 * Writes bench/out/<server>-<body>.cpuprofile (or .heapprofile; open either in Chrome DevTools; one
 * file per inspector target when workerd exposes several) and prints the functions with the most
 * self time (or the most bytes allocated per request), named through the bundle's source map, then
 * self time by area (the source file a sample's function comes from): share and µs per request.
 *
 * Settings (environment): BENCH_SECONDS (5), BENCH_CONNECTIONS (8), BENCH_BASELINE (the git
 * revision the `baseline` server is built from), BENCH_TOP (25: functions listed), BENCH_SMOKE (1: 1 s,
 * no warm-up).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import { KafkaSetupError, type RunningKafka, startKafka } from '../scripts/lib/kafka.ts'
import {
  BODIES,
  type BodyName,
  expectAccepted,
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
const profiled = process.argv[3] ?? 'worker'
if (profiled !== 'native' && !SERVERS.includes(profiled as ServerName))
  throw new Error(`unknown server ${profiled}: ${SERVERS.join(', ')}, native`)
// `native` is the worker's bundle, served with other settings.
const serverName: ServerName = profiled === 'native' ? 'worker' : (profiled as ServerName)
const kind = process.argv[4] ?? 'cpu'
if (kind !== 'cpu' && kind !== 'heap') throw new Error(`unknown profile ${kind}: cpu or heap`)
const seconds = positiveSetting('BENCH_SECONDS', 5, 1)
const connections = positiveSetting('BENCH_CONNECTIONS', 8)
const top = positiveSetting('BENCH_TOP', 25)

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number }
type ProfileNode = { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
type Profile = { nodes: ProfileNode[]; samples?: number[]; startTime: number; endTime: number }
type HeapNode = { callFrame: CallFrame; selfSize: number; children: HeapNode[] }
/**
 * A frame's self weight (samples or bytes), for CPU the µs one sample stands for, and its nearest
 * caller in the bundle (what a runtime call is charged to in the by-area table).
 */
type Frame = { callFrame: CallFrame; weight: number; usPerUnit: number; caller?: CallFrame }

/** A minimal Chrome DevTools Protocol client over one inspector target's WebSocket. */
async function connect(webSocketDebuggerUrl: string) {
  const socket = new WebSocket(webSocketDebuggerUrl)
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

/**
 * Every inspector target workerd exposes: the worker's isolate and, where workerd gives a Durable
 * Object its own, the producer shards'. Each is profiled; their frames are summed.
 */
async function inspectAll(address: string) {
  const targets = (await (await fetch(`http://${address}/json/list`)).json()) as {
    webSocketDebuggerUrl: string
    title?: string
  }[]
  if (targets.length === 0) throw new Error('workerd exposes no inspector target')
  return Promise.all(
    targets.map(async (t) => ({
      title: t.title ?? '',
      cdp: await connect(t.webSocketDebuggerUrl),
    })),
  )
}

/** Where a sample's self time goes, by the source file of its function (first match wins). */
const AREAS: [string, RegExp][] = [
  ['kafkajs', /node_modules\/kafkajs\//],
  ['hono (and @hono/zod-validator)', /node_modules\/(@hono\/[^/]+|hono)\//],
  ['zod', /node_modules\/zod\//],
  ['other node_modules', /node_modules\//],
  ['transport adapter (src/kafka)', /(^|\/)src\/kafka\//],
  [
    'route, validation (src/routes, src/schemas, src/fastapi)',
    /(^|\/)src\/(routes|schemas|fastapi)\//,
  ],
  ['auth (src/auth)', /(^|\/)src\/auth\//],
  ['middleware (src/middleware)', /(^|\/)src\/middleware\//],
  ['delivery, queue (src/delivery, src/queue)', /(^|\/)src\/(delivery|queue)\//],
  ['other src', /(^|\/)src\//],
]

const sourceArea = (fileName: string): string =>
  AREAS.find(([, pattern]) => pattern.test(fileName))?.[0] ?? `other bundled (${fileName})`

/**
 * A frame's area: its source file's, or for the runtime's own code (V8 builtins and workerd's
 * C++ API, which have no url; workerd's node:* JavaScript, `node-internal:`) the area of the
 * bundled code that called it, so that e.g. the socket writes kafkajs makes count as kafkajs's
 * runtime calls. `origin` maps a bundle frame to its source file.
 */
function areaOf(frame: Frame, origin: (callFrame: CallFrame) => string | undefined): string {
  const fileName = origin(frame.callFrame)
  if (fileName !== undefined) return sourceArea(fileName)
  const { functionName, url } = frame.callFrame
  if (['(idle)', '(program)', '(garbage collector)', '(root)'].includes(functionName))
    return functionName
  const what = url ? 'workerd built-in JS' : 'runtime, native'
  const callerFile = frame.caller && origin(frame.caller)
  // No bundled caller: the runtime's own event-loop work (I/O completions, RPC delivery, timers).
  return `${what}, from ${callerFile === undefined ? 'no bundled caller' : sourceArea(callerFile)}`
}

mkdirSync(OUT, { recursive: true })
const inspector = `127.0.0.1:${await freePort()}`
const baseline = process.env.BENCH_BASELINE || undefined
let kafka: RunningKafka | undefined
if (profiled === 'native') {
  console.log('starting Apache Kafka…')
  try {
    kafka = await startKafka({ log: (line) => console.log(line), topic: 'bench.profile' })
  } catch (e) {
    throw e instanceof KafkaSetupError ? new Error(e.message) : e
  }
}
const stopKafka = async () => {
  await kafka?.close()
}
const bench = await startBench({
  servers: [serverName],
  inspector,
  ...(baseline ? { baseline } : {}),
  ...(kafka
    ? {
        // What bench:weave's worker runs: the native transport, the config's producer shards.
        env: {
          KAFKA_TRANSPORT: 'native',
          KAFKA_BROKERS: kafka.bootstrap,
          KAFKA_TLS: 'false',
          KAFKA_SASL_MECHANISM: '',
          KAFKA_TOPIC: kafka.topic,
          DELIVERY_MODE: 'direct',
        },
      }
    : {}),
}).catch(async (e) => {
  await stopKafka()
  throw e
})
try {
  const server = bench.servers[serverName]
  if (!server) throw new Error(`${serverName} did not start`)
  const payload = requestBody(name)
  // A fast 4xx/5xx (a broker the worker cannot reach, a wrong setting) would profile the wrong path.
  await expectAccepted(profiled, server.url, bench.auth, payload)
  if (WARMUP_SECONDS > 0) await load(server.url, payload, bench.auth, WARMUP_SECONDS, connections)
  // The bundle is minified: name each frame by its place in the sources, through the source map.
  const bundle = bench.bundles[serverName]
  const map = bundle
    ? new SourceMap(JSON.parse(readFileSync(join(bundle.dir, `${bundle.main}.map`), 'utf8')))
    : undefined
  const originOf = (callFrame: CallFrame) => {
    if (!callFrame.url || callFrame.url.includes(':')) return undefined
    const origin = map?.findOrigin(callFrame.lineNumber + 1, callFrame.columnNumber + 1)
    return origin && 'fileName' in origin ? origin : undefined
  }
  const fileOfFrame = (callFrame: CallFrame) =>
    originOf(callFrame)?.fileName.replace(/^(\.\.\/)+/, '')
  const inBundle = (callFrame: CallFrame) => fileOfFrame(callFrame) !== undefined
  // After the warm-up: a Durable Object's isolate, if it has one, exists by now.
  const targets = await inspectAll(inspector)
  let run: Awaited<ReturnType<typeof load>>
  const frames: Frame[] = []
  const files: string[] = []
  const fileOf = (i: number) =>
    join(
      OUT,
      `${profiled}-${name}${targets.length > 1 ? `-${i}` : ''}.${kind === 'heap' ? 'heapprofile' : 'cpuprofile'}`,
    )
  if (kind === 'heap') {
    // Every allocation sampled (interval 1 KiB of allocation), kept or collected: GC's work.
    for (const { cdp } of targets) {
      await cdp.send('HeapProfiler.enable')
      await cdp.send('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
    }
    run = await load(server.url, payload, bench.auth, seconds, connections)
    for (const [i, { cdp }] of targets.entries()) {
      const { profile } = (await cdp.send('HeapProfiler.stopSampling')) as {
        profile: { head: HeapNode }
      }
      files.push(fileOf(i))
      writeFileSync(fileOf(i), JSON.stringify(profile))
      const pending: [HeapNode, CallFrame | undefined][] = [[profile.head, undefined]]
      for (let item = pending.pop(); item; item = pending.pop()) {
        const [node, caller] = item
        frames.push({
          callFrame: node.callFrame,
          weight: node.selfSize,
          usPerUnit: 0,
          ...(caller ? { caller } : {}),
        })
        const next = inBundle(node.callFrame) ? node.callFrame : caller
        for (const child of node.children) pending.push([child, next])
      }
    }
  } else {
    for (const { cdp } of targets) {
      await cdp.send('Profiler.enable')
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
      await cdp.send('Profiler.start')
    }
    run = await load(server.url, payload, bench.auth, seconds, connections)
    for (const [i, { cdp }] of targets.entries()) {
      const { profile } = (await cdp.send('Profiler.stop')) as { profile: Profile }
      files.push(fileOf(i))
      writeFileSync(fileOf(i), JSON.stringify(profile))
      // Each sample stands for its share of the profile's wall time (the idle ones included).
      const samples = profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0)
      const usPerUnit = samples > 0 ? (profile.endTime - profile.startTime) / samples : 0
      const parent = new Map<number, ProfileNode>()
      for (const node of profile.nodes)
        for (const child of node.children ?? []) parent.set(child, node)
      for (const node of profile.nodes) {
        let up = parent.get(node.id)
        while (up && !inBundle(up.callFrame)) up = parent.get(up.id)
        frames.push({
          callFrame: node.callFrame,
          weight: node.hitCount ?? 0,
          usPerUnit,
          ...(up ? { caller: up.callFrame } : {}),
        })
      }
    }
  }
  for (const { cdp } of targets) cdp.close()

  const total = frames.reduce((n, frame) => n + frame.weight, 0)
  const self = new Map<string, number>()
  const areas = new Map<string, { weight: number; us: number }>()
  for (const frame of frames) {
    const { functionName, url, lineNumber, columnNumber } = frame.callFrame
    let where = ''
    if (url) {
      const origin = originOf(frame.callFrame)
      where = origin
        ? `${origin.fileName.replace(/^.*node_modules\//, '').replace(/^(\.\.\/)+/, '')}:${origin.lineNumber}${origin.name ? ` ${origin.name}` : ''}`
        : `${url.split('/').pop()}:${lineNumber + 1}:${columnNumber + 1}`
    }
    const key = `${functionName || '(anonymous)'} ${where}`.trim()
    self.set(key, (self.get(key) ?? 0) + frame.weight)
    const area = areaOf(frame, fileOfFrame)
    const sum = areas.get(area) ?? { weight: 0, us: 0 }
    sum.weight += frame.weight
    sum.us += frame.weight * frame.usPerUnit
    areas.set(area, sum)
  }
  const requests = run.requests
  console.log(
    `${profiled}, ${name}, ${connections} connections: ${run.rps.toFixed(0)} req/s while profiling (${run.requests} requests, ${run.non2xx} not 2xx); ${targets.length} inspector target(s)${targets.length > 1 ? ` (${targets.map((t) => t.title).join('; ')})` : ''}; ${files.join(', ')}\n${kind === 'heap' ? `allocated: ${(total / requests / 1024).toFixed(0)} KiB per request, by function` : 'self time:'}`,
  )
  for (const [key, weight] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const kib =
      kind === 'heap' ? `  ${(weight / requests / 1024).toFixed(1).padStart(7)} KiB/req` : ''
    console.log(`${((weight / total) * 100).toFixed(1).padStart(6)}%${kib}  ${key}`)
  }
  // Idle samples are the isolate waiting: a share of the busy ones is a share of the CPU work.
  const idle = areas.get('(idle)')?.weight ?? 0
  const busy = [...areas].reduce((n, [area, { us }]) => (area === '(idle)' ? n : n + us), 0)
  console.log(
    kind === 'heap'
      ? 'allocated, by area:'
      : 'self time by area: share of samples, share of the busy (non-idle) ones, µs per request',
  )
  for (const [area, { weight, us }] of [...areas].sort((a, b) => b[1].weight - a[1].weight)) {
    if (weight === 0) continue
    const share = `${((weight / total) * 100).toFixed(1).padStart(6)}%`
    console.log(
      kind === 'heap'
        ? `${share}  ${(weight / requests / 1024).toFixed(1).padStart(7)} KiB/req  ${area}`
        : `${share}  ${area === '(idle)' ? '       ' : `${((weight / (total - idle)) * 100).toFixed(1).padStart(6)}%`}  ${(us / requests).toFixed(1).padStart(7)} µs/req  ${area}`,
    )
  }
  if (kind === 'cpu')
    console.log(`busy (all but idle): ${(busy / requests).toFixed(1)} µs per request`)
} finally {
  await bench.stop()
  await stopKafka()
}
