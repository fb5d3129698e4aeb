/**
 * The real-broker suite's global setup: a 3-node Apache Kafka cluster for the run, with TLS
 * listeners (scripts/lib/kafka.ts), a loopback control service through which tests inside
 * workerd, which cannot run Node code, read records back from the brokers, stop, start or
 * reshape them, and the production bundle under plain workerd (`npm start`'s self-hosted mode)
 * started on demand with the settings a test gives.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka'
import type { TestProject } from 'vitest/node'
import { KAFKA_USER, type StopSignal, startKafka } from '../../scripts/lib/kafka.ts'
import {
  type Bundle,
  buildBundle,
  type RunningWorkerd,
  readWorkerSettings,
  serve,
  writeApiKeysFile,
} from '../../scripts/lib/selfhosted.ts'

/**
 * How soon the suite's cluster fences a dead broker: 3 s, or `KAFKA_TEST_SESSION_TIMEOUT_MS`
 * (Kafka's default is 9 s; docs/real-kafka.md has the crash tests' figures at both).
 */
export const SESSION_TIMEOUT_MS = Number(process.env.KAFKA_TEST_SESSION_TIMEOUT_MS ?? 3_000)

export type KafkaContext = {
  /** PLAINTEXT listeners of the three nodes, comma-separated, node 1 first. */
  bootstrap: string
  saslBootstrap: string
  nodes: { id: number; bootstrap: string }[]
  tls: {
    bootstrap: string
    saslBootstrap: string
    untrustedBootstrap: string
    wrongNameBootstrap: string
  }
  topic: string
  partitions: number
  sessionTimeoutMs: number
  username: string
  password: string
  controlUrl: string
  /** A loopback port nobody listens on: a broker that refuses. */
  refusedBroker: string
  /** A socket that accepts and never answers: a hung (or blackholed) broker. */
  silentBroker: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafka: KafkaContext
  }
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export default async function setup(project: TestProject) {
  // vitest.kafka.config.ts made the CA (the Workers runtime trusts it from start-up on).
  const caDir = process.env.WEAVE_TEST_KAFKA_CA_DIR
  const kafka = await startKafka({
    brokers: 3,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    tls: caDir ? { ca: { certFile: join(caDir, 'ca.pem'), keyFile: join(caDir, 'ca.key') } } : true,
    log: (line) => console.log(`[kafka] ${line}`),
  }).catch((e: unknown) => {
    // No teardown runs for a setup that failed: the CA goes now.
    if (caDir) rmSync(caDir, { recursive: true, force: true })
    throw e
  })
  const tls = kafka.tls
  if (!tls) throw new Error('the cluster has no TLS listeners')

  // Self-hosted workers on demand: the bundle built once, a workerd per request of a test.
  const stateRoot = mkdtempSync(join(tmpdir(), 'weave-kafka-selfhosted-'))
  let bundle: Bundle | undefined
  const figures: string[] = []
  const workers = new Map<string, { worker: RunningWorkerd; lines: string[] }>()

  const producerFor = async <T>(
    fn: (p: Producer<string, string, string, string>) => Promise<T>,
  ) => {
    const p = new Producer({
      clientId: 'weave-test-control',
      bootstrapBrokers: kafka.bootstrap.split(','),
      serializers: stringSerializers,
      // Right after a restart a leader can refuse a moment longer (NOT_LEADER, NOT_ENOUGH_REPLICAS).
      retries: 5,
      retryDelay: 500,
      // With every node down, each attempt fails at once rather than after the default wait.
      connectTimeout: 2_000,
    })
    try {
      return await fn(p)
    } finally {
      await p.close()
    }
  }

  const control = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://control')
    const reply = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(json))
    }
    const nodeId = () => Number(url.searchParams.get('node'))
    try {
      if (req.method === 'GET' && url.pathname === '/records') {
        const records = await kafka.readRecords(url.searchParams.get('topic') ?? kafka.topic)
        return reply(
          200,
          records.map((r) => ({
            partition: r.partition,
            offset: Number(r.offset),
            key: r.key.toString('base64'),
            value: r.value.toString('base64'),
            headers: r.headers.map(([k, v]) => [k, v.toString('base64')]),
          })),
        )
      }
      if (req.method === 'POST' && url.pathname === '/topics') {
        const b = (await body(req)) as {
          name: string
          partitions?: number
          configs?: Record<string, string>
        }
        await kafka.createTopic(b.name, b.partitions ?? kafka.partitions, b.configs)
        return reply(201, {})
      }
      if (req.method === 'DELETE' && url.pathname.startsWith('/topics/')) {
        await kafka.deleteTopic(decodeURIComponent(url.pathname.slice('/topics/'.length)))
        return reply(200, {})
      }
      if (req.method === 'GET' && url.pathname === '/leaders') {
        return reply(200, await kafka.leaders(url.searchParams.get('topic') ?? kafka.topic))
      }
      if (req.method === 'POST' && url.pathname === '/cluster/wait') {
        await kafka.waitForLeaders({ fullIsr: url.searchParams.get('isr') === 'full' })
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/node/stop') {
        const signal = (url.searchParams.get('signal') ?? 'SIGKILL') as StopSignal
        if (signal !== 'SIGKILL' && signal !== 'SIGTERM') return reply(400, { detail: signal })
        await kafka.stopNode(nodeId(), signal)
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/node/start') {
        await kafka.startNode(nodeId())
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/stop') {
        await kafka.stopBroker()
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/start') {
        await kafka.startBroker()
        // Every replica back in sync: with min.insync.replicas=2 a write right after a restart of
        // all nodes is refused until a second replica has caught up.
        await kafka.waitForLeaders({ fullIsr: true })
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/pause') {
        kafka.pauseBroker()
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/resume') {
        kafka.resumeBroker()
        // Frozen past the session timeout, the nodes were fenced: they register again, and
        // leaders move, before the cluster is itself again for the next test.
        await kafka.waitForLeaders({ fullIsr: true })
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/produce') {
        // Java-independent records for the harness's own tests, through a client of its own.
        const b = (await body(req)) as {
          topic: string
          key: string
          value: string
          headers?: Record<string, string>
        }
        await producerFor((p) =>
          p.send({
            // Per send: the client takes no default from its constructor (LEADER otherwise), and
            // a record acknowledged by the leader alone is not readable until followers fetch it.
            acks: ProduceAcks.ALL,
            messages: [
              {
                topic: b.topic,
                key: b.key,
                value: b.value,
                headers: new Map(Object.entries(b.headers ?? {})),
              },
            ],
          }),
        )
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/selfhosted') {
        // `npm start`'s mode: the production bundle under plain workerd, settings from the
        // environment, one API key granting acme/*.
        const b = (await body(req)) as { env: Record<string, string>; trustCa?: boolean }
        bundle ??= buildBundle({ outDir: join(stateRoot, 'bundle') })
        const id = randomBytes(6).toString('hex')
        const stateDir = join(stateRoot, id)
        const apiKey = `selfhosted-${randomBytes(12).toString('hex')}`
        const keys = join(stateRoot, `${id}-keys.json`)
        writeApiKeysFile(keys, apiKey, { wb_user_id: 'VXNlcjoxMjM0', projects: ['acme/*'] })
        const port = await new Promise<number>((resolve) => {
          const s = createServer()
          s.listen(0, '127.0.0.1', () => {
            const { port: p } = s.address() as AddressInfo
            s.close(() => resolve(p))
          })
        })
        const worker = await serve({
          bundle,
          settings: readWorkerSettings('wrangler.toml'),
          stateDir,
          host: '127.0.0.1',
          port,
          apiKeysFile: keys,
          ...(b.trustCa ? { trustedCaFile: tls.caFile } : {}),
          env: { PATH: process.env.PATH ?? '', ...b.env } as unknown as NodeJS.ProcessEnv,
          stdio: 'pipe',
        })
        const lines: string[] = []
        const collect = (chunk: Buffer) => {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line)
        }
        worker.process.stdout?.on('data', collect)
        worker.process.stderr?.on('data', collect)
        workers.set(id, { worker, lines })
        return reply(200, { id, url: worker.url, apiKey })
      }
      if (req.method === 'GET' && url.pathname.startsWith('/selfhosted/')) {
        const w = workers.get(url.pathname.slice('/selfhosted/'.length))
        if (!w) return reply(404, { detail: 'Not Found' })
        // A request's log line is written as it is answered; a moment for the last ones.
        await sleep(200)
        return reply(200, w.lines)
      }
      if (req.method === 'DELETE' && url.pathname.startsWith('/selfhosted/')) {
        const id = url.pathname.slice('/selfhosted/'.length)
        await workers.get(id)?.worker.stop()
        workers.delete(id)
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/figures') {
        // Crash tests' figures: printed here, as the suite hides what passing tests print.
        const { line } = (await body(req)) as { line: string }
        figures.push(line)
        console.log(`[figures] ${line}`)
        return reply(200, {})
      }
      reply(404, { detail: 'Not Found' })
    } catch (e) {
      reply(500, { detail: (e as Error).message })
    }
  })
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve))
  const { port } = control.address() as AddressInfo

  // Dead seeds for the failover tests.
  const held = new Set<Socket>()
  const silent = createTcpServer((socket) => {
    held.add(socket)
    socket.on('close', () => held.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const closed = createTcpServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const refusedPort = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))

  project.provide('kafka', {
    bootstrap: kafka.bootstrap,
    saslBootstrap: kafka.saslBootstrap,
    nodes: kafka.nodes.map((n) => ({ id: n.id, bootstrap: n.bootstrap })),
    tls: {
      bootstrap: tls.bootstrap,
      saslBootstrap: tls.saslBootstrap,
      untrustedBootstrap: tls.untrustedBootstrap,
      wrongNameBootstrap: tls.wrongNameBootstrap,
    },
    topic: kafka.topic,
    partitions: kafka.partitions,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    username: KAFKA_USER.username,
    password: KAFKA_USER.password,
    controlUrl: `http://127.0.0.1:${port}`,
    refusedBroker: `127.0.0.1:${refusedPort}`,
    silentBroker: `127.0.0.1:${(silent.address() as AddressInfo).port}`,
  })
  return async () => {
    for (const socket of held) socket.destroy()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
    if (figures.length > 0) console.log(`crash tests' figures:\n  ${figures.join('\n  ')}`)
    await new Promise<void>((resolve) => control.close(() => resolve()))
    await Promise.all([...workers.values()].map((w) => w.worker.stop()))
    await kafka.close()
    rmSync(stateRoot, { recursive: true, force: true })
    if (caDir) rmSync(caDir, { recursive: true, force: true })
  }
}
