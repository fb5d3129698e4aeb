/**
 * A local Kafka REST server ("the sink") for tests, `npm run dev` and benchmarks. It speaks the
 * producer side of three dialects (Upstash, Confluent v3, Kafka REST v2 in three flavors), keeps
 * every record's bytes in memory, and can be told to misbehave (faults) or to act as a throttled
 * managed endpoint (a produce request rate and size, see throttle.ts) through a control API under
 * `/__sink/` or the methods of {@link RunningSink}. Dependency-free: node:http only.
 *
 * Which Kafka REST v2 implementation it imitates is, from weakest to strongest: the sink's
 * setting (`v2Flavor`, `POST /__sink/config`), a path prefix on the request
 * (`/flavor/redpanda/topics/t` is `/topics/t` answered as Redpanda; give a client the base URL
 * `http://127.0.0.1:PORT/flavor/redpanda`), then a fault's own `v2Flavor`. The prefix keeps no
 * state, so clients running in parallel against one sink can each talk to another flavor.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { createConfluentV3 } from './dialects/confluent-v3.ts'
import { createKafkaRestV2 } from './dialects/kafka-rest-v2.ts'
import { createUpstash } from './dialects/upstash.ts'
import { FaultError, FaultRegistry, failingIndexes, htmlErrorPage, parseFault } from './faults.ts'
import type { DialectContext, DialectModule, Route, SinkReply, SinkRequest } from './http.ts'
import { basicCredentials, json, sameSecret } from './http.ts'
import { MessageStore } from './store.ts'
import { parseThrottle, ThrottleError, ThrottleRegistry, type Verdict } from './throttle.ts'
import type {
  Dialect,
  Fault,
  FaultKind,
  RunningSink,
  SinkOptions,
  SinkStats,
  StoredMessage,
  Throttle,
  V2Flavor,
} from './types.ts'

export type {
  Dialect,
  Fault,
  RunningSink,
  SinkOptions,
  SinkStats,
  StoredMessage,
  Throttle,
  V2Flavor,
} from './types.ts'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
const FLAVORS: readonly V2Flavor[] = ['confluent', 'redpanda', 'karapace']

type Counters = Omit<SinkStats, 'recordsStored'>

const emptyCounters = (): Counters => ({
  produceRequests: 0,
  byDialect: { upstash: 0, 'confluent-v3': 0, 'kafka-rest-v2': 0 },
  accepted: 0,
  rejected: 0,
  failedByFault: 0,
  throttled: 0,
  tooLarge: 0,
  faults: { status: 0, hang: 0, html: 0, partial: 0, delay: 0 },
})

/** Where a produce request ended, for the counters. */
type Result = 'accepted' | 'rejected' | 'fault' | 'throttled' | 'too_large'

/** Global and per-topic counters of produce requests. */
class Stats {
  #global = emptyCounters()
  #topics = new Map<string, Counters>()

  #each(topics: readonly string[], f: (c: Counters) => void): void {
    f(this.#global)
    for (const t of new Set(topics)) {
      let c = this.#topics.get(t)
      if (!c) {
        c = emptyCounters()
        this.#topics.set(t, c)
      }
      f(c)
    }
  }

  received(dialect: Dialect, topics: readonly string[]): void {
    this.#each(topics, (c) => {
      c.produceRequests++
      c.byDialect[dialect]++
    })
  }

  fault(kind: FaultKind, topics: readonly string[]): void {
    this.#each(topics, (c) => {
      c.faults[kind]++
    })
  }

  finished(result: Result, topics: readonly string[]): void {
    this.#each(topics, (c) => {
      if (result === 'accepted') c.accepted++
      else if (result === 'rejected') c.rejected++
      else if (result === 'throttled') c.throttled++
      else if (result === 'too_large') {
        c.rejected++
        c.tooLarge++
      } else c.failedByFault++
    })
  }

  get(topic: string | undefined, recordsStored: number): SinkStats {
    const c = topic === undefined ? this.#global : (this.#topics.get(topic) ?? emptyCounters())
    return structuredClone({ ...c, recordsStored })
  }

  reset(): void {
    this.#global = emptyCounters()
    this.#topics.clear()
  }
}

/** Reads a request body, keeping at most `limit` bytes (the rest is drained and dropped). */
function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ body: Buffer; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) tooLarge = true
      else chunks.push(chunk)
    })
    req.on('end', () =>
      resolve({ body: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge }),
    )
    req.on('error', reject)
  })
}

/** Writes a reply unless the client has gone. */
function send(res: ServerResponse, reply: SinkReply): void {
  if (res.writableEnded || res.destroyed) return
  const body = Buffer.from(reply.body, 'utf8')
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(body.length) })
  res.end(body)
}

/** Guesses a Content-Type for a fault body given without one. */
function guessType(body: string): string {
  try {
    JSON.parse(body)
    return 'application/json'
  } catch {
    return /^\s*</.test(body) ? 'text/html' : 'text/plain; charset=utf-8'
  }
}

/** A sleep that ends early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    if (signal.aborted) done()
  })
}

/**
 * Starts the sink. Resolves once it listens; `url` then holds the base URL to give a client.
 *
 * @example
 * const sink = await startSink({ port: 0 })
 * // ... produce to `${sink.url}/produce` with Basic dev:dev-password ...
 * sink.messages('my-topic') // what arrived, bytes included
 * await sink.close()
 */
export async function startSink(options: SinkOptions = {}): Promise<RunningSink> {
  const host = options.host ?? '127.0.0.1'
  // The sink accepts anyone's produce requests and serves them back: never off this machine.
  if (!LOOPBACK.has(host)) throw new Error(`startSink binds loopback only, not ${host}`)
  const username = options.username ?? 'dev'
  const password = options.password ?? 'dev-password'
  const partitions = options.partitions ?? 3
  if (!Number.isInteger(partitions) || partitions < 1) throw new Error('partitions must be >= 1')
  const clusterId = options.clusterId ?? 'local-cluster'
  const maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024
  let sinkFlavor: V2Flavor = options.v2Flavor ?? 'confluent'
  if (!FLAVORS.includes(sinkFlavor)) throw new Error(`unknown v2Flavor ${String(sinkFlavor)}`)

  const store = new MessageStore({
    partitions,
    autoCreate: options.autoCreateTopics ?? true,
    topics: options.topics ?? [],
  })
  const faults = new FaultRegistry()
  const throttles = new ThrottleRegistry()
  const startThrottle = options.throttle ? parseThrottle(options.throttle) : null
  throttles.set(startThrottle)
  const stats = new Stats()
  const modules: DialectModule[] = [createConfluentV3(), createKafkaRestV2(), createUpstash()]
  const sockets = new Set<Socket>()
  /** Requests a hang fault holds, dropped on reset/close. */
  const held = new Set<ServerResponse>()
  /** Aborted on reset and close: long-polls and delays stop waiting. */
  let lifecycle = new AbortController()

  const dropHeld = () => {
    for (const res of held) res.socket?.destroy()
    held.clear()
  }

  const log = (line: string) => {
    if (options.log) process.stderr.write(`[sink] ${line}\n`)
  }

  const recordsStored = (topic?: string) => store.messages(topic).length

  /** The control API: no auth, JSON in and out. */
  async function control(req: SinkRequest): Promise<SinkReply> {
    const [, what = '', ...rest] = req.segments
    const topic = req.query.get('topic') ?? undefined
    const parseJsonBody = (): unknown => JSON.parse(req.body.toString('utf8') || 'null')
    // Endpoints are one segment deep: anything longer falls through to the 404.
    switch (rest.length === 0 ? `${req.method} ${what}` : '') {
      case 'GET health':
        return json(200, { ok: true })
      case 'GET messages':
        return json(200, { messages: store.messages(topic) })
      case 'POST reset':
        api.reset()
        return json(200, { ok: true })
      case 'GET stats':
        return json(200, stats.get(topic, recordsStored(topic)))
      case 'GET fault':
        return json(200, { faults: faults.list() })
      case 'POST fault':
        try {
          const fault = parseFault(parseJsonBody())
          faults.set(fault)
          return json(200, { fault })
        } catch (e) {
          if (e instanceof FaultError || e instanceof SyntaxError)
            return json(400, { error: e.message })
          throw e
        }
      case 'DELETE fault':
        faults.clear(topic)
        return json(200, { faults: faults.list() })
      case 'GET throttle':
        return json(200, { throttles: throttles.list() })
      case 'POST throttle':
        try {
          const throttle = parseThrottle(parseJsonBody())
          throttles.set(throttle)
          return json(200, { throttle })
        } catch (e) {
          if (e instanceof ThrottleError || e instanceof SyntaxError)
            return json(400, { error: e.message })
          throw e
        }
      case 'DELETE throttle':
        throttles.clear(topic)
        return json(200, { throttles: throttles.list() })
      case 'GET config':
        return json(200, {
          v2Flavor: sinkFlavor,
          partitions,
          clusterId,
          autoCreateTopics: options.autoCreateTopics ?? true,
        })
      case 'POST config': {
        let body: unknown
        try {
          body = parseJsonBody()
        } catch (e) {
          return json(400, { error: e instanceof Error ? e.message : String(e) })
        }
        const flavor = (body as { v2Flavor?: unknown } | null)?.v2Flavor
        if (!FLAVORS.includes(flavor as V2Flavor)) {
          return json(400, { error: `v2Flavor must be one of ${FLAVORS.join(', ')}` })
        }
        sinkFlavor = flavor as V2Flavor
        return json(200, { v2Flavor: sinkFlavor })
      }
      default:
        return json(404, { error: `no control endpoint ${req.method} /__sink/${what}` })
    }
  }

  /**
   * Answers a produce or read route: auth, faults (produce only), then the dialect. `requested`
   * is the flavor the request's path prefix asked for, if any.
   */
  async function dispatch(
    route: Route,
    module: DialectModule,
    req: SinkRequest,
    res: ServerResponse,
    requested: V2Flavor | undefined,
  ): Promise<SinkReply | null> {
    const v2Flavor = requested ?? sinkFlavor
    const topics = route.kind === 'produce' ? route.topics : []
    if (route.kind === 'produce') stats.received(route.dialect, topics)
    const authorization = req.headers.authorization
    const creds = basicCredentials(authorization)
    if (!creds || !sameSecret(creds.username, username) || !sameSecret(creds.password, password)) {
      if (route.kind === 'produce') stats.finished('rejected', topics)
      return module.unauthorized(creds ? 'invalid' : 'missing', v2Flavor)
    }
    const signal = lifecycle.signal
    const base = { store, clusterId, signal }
    if (route.kind === 'other') {
      return route.run({ ...base, v2Flavor, failIndexes: () => new Set() })
    }
    const fault: Fault | null = faults.take(topics)
    const flavor = fault?.v2Flavor ?? v2Flavor
    if (fault) stats.fault(fault.kind, topics)
    switch (fault?.kind) {
      case 'status': {
        stats.finished('fault', topics)
        const extra: Record<string, string> = fault.retryAfter
          ? { 'retry-after': fault.retryAfter }
          : {}
        if (fault.body !== undefined) {
          const type = fault.contentType ?? guessType(fault.body)
          return {
            status: fault.status,
            headers: { 'content-type': type, ...extra },
            body: fault.body,
          }
        }
        const reply = module.statusReply(fault.status, flavor)
        const headers = {
          ...reply.headers,
          ...(fault.contentType ? { 'content-type': fault.contentType } : {}),
          ...extra,
        }
        return { ...reply, headers }
      }
      case 'html': {
        stats.finished('fault', topics)
        const status = fault.status ?? 502
        return { status, headers: { 'content-type': 'text/html' }, body: htmlErrorPage(status) }
      }
      case 'hang': {
        stats.finished('fault', topics)
        held.add(res)
        res.on('close', () => held.delete(res))
        if (fault.ms !== undefined) {
          // After `ms` the connection drops unanswered, like a proxy giving up.
          await sleep(fault.ms, signal)
          res.socket?.destroy()
        }
        return null
      }
      case 'delay':
        await sleep(fault.ms, signal)
        break
    }
    const ctx: DialectContext = {
      ...base,
      v2Flavor: flavor,
      failIndexes: (count) =>
        fault?.kind === 'partial' ? failingIndexes(fault, count) : new Set(),
    }
    const outcome = await route.run(ctx)
    const partial = fault?.kind === 'partial'
    stats.finished(
      partial
        ? 'fault'
        : outcome.failed > 0 || outcome.reply.status >= 400
          ? 'rejected'
          : 'accepted',
      topics,
    )
    return outcome.reply
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now()
    const { body, tooLarge } = await readBody(req, maxBodyBytes)
    const url = new URL(req.url ?? '/', 'http://sink.invalid')
    let segments: string[]
    try {
      segments = url.pathname
        .split('/')
        .filter((s) => s !== '')
        .map(decodeURIComponent)
    } catch {
      send(res, json(400, { error_code: 400, message: 'malformed percent-encoding in path' }))
      return
    }
    let requested: V2Flavor | undefined
    if (segments[0] === 'flavor') {
      const flavor = segments[1] ?? ''
      if (!FLAVORS.includes(flavor as V2Flavor)) {
        const message = `unknown flavor prefix '${flavor}': one of ${FLAVORS.join(', ')}`
        send(res, json(404, { error_code: 404, message }))
        return
      }
      requested = flavor as V2Flavor
      segments = segments.slice(2)
    }
    const request: SinkRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      segments,
      query: url.searchParams,
      headers: req.headers,
      body,
    }
    let reply: SinkReply | null
    if (segments[0] === '__sink') {
      reply = await control(request)
    } else {
      let found: { route: Route; module: DialectModule } | null = null
      for (const module of modules) {
        const route = module.route(request)
        if (route) {
          found = { route, module }
          break
        }
      }
      if (!found) {
        reply = json(404, { error_code: 404, message: 'HTTP 404 Not Found' })
      } else if (tooLarge) {
        const { route } = found
        if (route.kind === 'produce') {
          stats.received(route.dialect, route.topics)
          stats.finished('too_large', route.topics)
        }
        reply = found.module.statusReply(413, requested ?? sinkFlavor)
      } else {
        const { route, module } = found
        const verdict: Verdict =
          route.kind === 'produce' ? throttles.check(route.topics, body.length) : { kind: 'pass' }
        if (route.kind === 'produce' && verdict.kind !== 'pass') {
          stats.received(route.dialect, route.topics)
          stats.finished(verdict.kind, route.topics)
          const flavor = requested ?? sinkFlavor
          if (verdict.kind === 'throttled') {
            const refusal = module.statusReply(429, flavor)
            reply = {
              ...refusal,
              headers: { ...refusal.headers, 'retry-after': String(verdict.retryAfter) },
            }
          } else {
            reply = module.statusReply(413, flavor)
          }
        } else {
          reply = await dispatch(route, module, request, res, requested)
        }
      }
    }
    if (reply) send(res, reply)
    const outcome = reply ? String(reply.status) : 'held'
    log(`${request.method} ${req.url ?? ''} -> ${outcome} (${Date.now() - started} ms)`)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      send(res, json(500, { error: 'sink internal error', detail: String(e) }))
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('sink has no TCP address')
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closed: Promise<void> | null = null

  const api: RunningSink = {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,

    close() {
      closed ??= new Promise<void>((resolve) => {
        lifecycle.abort()
        dropHeld()
        server.close(() => resolve())
        // Keep-alive and held connections would keep close() waiting: cut them all.
        for (const s of sockets) s.destroy()
      })
      return closed
    },

    messages: (topic?: string): StoredMessage[] => store.messages(topic),

    reset() {
      lifecycle.abort()
      lifecycle = new AbortController()
      dropHeld()
      store.reset()
      faults.clear()
      throttles.clear()
      throttles.set(startThrottle)
      stats.reset()
      for (const m of modules) m.reset?.()
    },

    setFault(fault: Fault | null) {
      faults.set(fault === null ? null : parseFault(fault))
    },

    stats: (topic?: string) => stats.get(topic, recordsStored(topic)),

    setThrottle(throttle: Throttle | null) {
      throttles.set(throttle === null ? null : parseThrottle(throttle))
    },

    setV2Flavor(flavor: V2Flavor) {
      if (!FLAVORS.includes(flavor)) throw new Error(`unknown v2Flavor ${String(flavor)}`)
      sinkFlavor = flavor
    },
  }
  log(`listening on ${api.url}`)
  return api
}
