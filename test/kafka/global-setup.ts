/**
 * The real-broker suite's global setup: one Apache Kafka broker for the run (scripts/lib/kafka.ts)
 * and a loopback control service through which tests inside workerd, which cannot run Node code,
 * read records back from the broker and stop, start or reshape it.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net'
import { Producer, stringSerializers } from '@platformatic/kafka'
import type { TestProject } from 'vitest/node'
import { KAFKA_USER, startKafka } from '../../scripts/lib/kafka.ts'

export type KafkaContext = {
  bootstrap: string
  saslBootstrap: string
  topic: string
  partitions: number
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

export default async function setup(project: TestProject) {
  const kafka = await startKafka({ log: (line) => console.log(`[kafka] ${line}`) })
  const producer = () =>
    new Producer({
      clientId: 'weave-test-control',
      bootstrapBrokers: [kafka.bootstrap],
      serializers: stringSerializers,
      acks: -1,
      retries: 0,
    })

  const control = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://control')
    const reply = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(json))
    }
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
      if (req.method === 'POST' && url.pathname === '/broker/stop') {
        await kafka.stopBroker()
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/start') {
        await kafka.startBroker()
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/pause') {
        kafka.pauseBroker()
        return reply(200, {})
      }
      if (req.method === 'POST' && url.pathname === '/broker/resume') {
        kafka.resumeBroker()
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
        const p = producer()
        try {
          await p.send({
            messages: [
              {
                topic: b.topic,
                key: b.key,
                value: b.value,
                headers: new Map(Object.entries(b.headers ?? {})),
              },
            ],
          })
        } finally {
          await p.close()
        }
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
    topic: kafka.topic,
    partitions: kafka.partitions,
    username: KAFKA_USER.username,
    password: KAFKA_USER.password,
    controlUrl: `http://127.0.0.1:${port}`,
    refusedBroker: `127.0.0.1:${refusedPort}`,
    silentBroker: `127.0.0.1:${(silent.address() as AddressInfo).port}`,
  })
  return async () => {
    for (const socket of held) socket.destroy()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
    await new Promise<void>((resolve) => control.close(() => resolve()))
    await kafka.close()
  }
}
