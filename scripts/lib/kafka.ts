/**
 * A real single-node Apache Kafka (KRaft, broker and controller in one process) on loopback, from
 * the jars `dev/kafka/pom.xml` pins, for `npm run kafka`, `npm run dev -- --kafka` and the
 * real-broker suite. Every piece it starts is owned here: the Java process (killed by its pid), its
 * temporary data folder (removed on close), and the Admin/consumer clients it reads back with.
 *
 * Listeners: PLAINTEXT for tools and the worker's plaintext tests, SASL_PLAINTEXT with PLAIN,
 * SCRAM-SHA-256 and SCRAM-SHA-512 for the credentialed paths (one user, {@link KAFKA_USER}).
 * Broker auto-creation is off: the topic exists because we created it through the Admin API,
 * as an operator would.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer, type Message } from '@platformatic/kafka'

const KAFKA_DIR = fileURLToPath(new URL('../../dev/kafka/', import.meta.url).href)
const POM = join(KAFKA_DIR, 'pom.xml')
/** Where the resolved classpath is remembered, keyed by the pom's hash (gitignored). */
const CLASSPATH_CACHE = join(KAFKA_DIR, 'target', 'classpath.txt')

export const KAFKA_TOPIC = 'weave.score_calls'
export const KAFKA_PARTITIONS = 6
/** The one SASL user, known to PLAIN and to both SCRAM mechanisms. */
export const KAFKA_USER = { username: 'weave', password: 'weave-secret' } as const
/** Start-up (download excluded) is bounded; past this the error names the broker's log. */
const START_TIMEOUT_MS = 120_000

/** A missing prerequisite (java, mvn): one line for the user, no stack trace. */
export class KafkaSetupError extends Error {}

export type KafkaRecord = {
  topic: string
  partition: number
  offset: bigint
  key: Buffer
  value: Buffer
  headers: [string, Buffer][]
}

export type RunningKafka = {
  /** PLAINTEXT listener, `host:port`. */
  bootstrap: string
  /** SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `host:port`. */
  saslBootstrap: string
  /**
   * With {@link KafkaOptions.proxiedListener}: the extra plaintext listener's own `host:port`,
   * where the proxy in front of it forwards to (clients are told the proxy's port instead).
   */
  proxiedBootstrap?: string
  topic: string
  partitions: number
  dataDir: string
  logFile: string
  /** Kills the broker (its data stays), as a crash or an outage would. */
  stopBroker(): Promise<void>
  /** Starts it again on the same ports and data, resolved once every partition has its leader. */
  startBroker(): Promise<void>
  /** Freezes the broker's process (SIGSTOP): connections stay open and nothing answers, a hung broker. */
  pauseBroker(): void
  /** Lets a paused broker go on (SIGCONT). */
  resumeBroker(): void
  createTopic(name: string, partitions: number, configs?: Record<string, string>): Promise<void>
  deleteTopic(name: string): Promise<void>
  /** Every record on the topic now (up to its high watermarks), read from the broker. */
  readRecords(topic?: string): Promise<KafkaRecord[]>
  /** Stops the broker and removes its data. */
  close(): Promise<void>
}

export type KafkaOptions = {
  topic?: string
  partitions?: number
  /** Progress lines (downloading, started); silent by default. */
  log?: (line: string) => void
  /**
   * An extra plaintext listener (PROXIED) that advertises `127.0.0.1:advertisedPort` in its
   * metadata instead of its own port: for a proxy on that port in front of it (bench/native.ts
   * counts connections so). A client that bootstraps through the proxy is sent back to the proxy
   * for every broker connection; the other listeners, and the clients here, bypass it.
   */
  proxiedListener?: { advertisedPort: number }
}

function requireTool(command: string, args: string[], why: string): string {
  const run = spawnSync(command, args, { encoding: 'utf8' })
  if (run.error) throw new KafkaSetupError(`\`${command}\` was not found: ${why}`)
  return `${run.stdout}${run.stderr}`
}

/** The broker's classpath, resolved by Maven (downloading into ~/.m2 only the first time). */
function classpath(log: (line: string) => void): string {
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex')
  if (existsSync(CLASSPATH_CACHE)) {
    const [hash, cp] = readFileSync(CLASSPATH_CACHE, 'utf8').split('\n')
    if (hash === pomHash && cp && cp.split(':').every((jar) => existsSync(jar))) return cp
  }
  const version = /<kafka\.version>([^<]+)</.exec(readFileSync(POM, 'utf8'))?.[1] ?? '?'
  const localJar = join(
    homedir(),
    `.m2/repository/org/apache/kafka/kafka_2.13/${version}/kafka_2.13-${version}.jar`,
  )
  if (!existsSync(localJar)) {
    log(`downloading Apache Kafka ${version} from Maven Central into ~/.m2 (first run only)…`)
  }
  mkdirSync(join(KAFKA_DIR, 'target'), { recursive: true })
  const out = join(KAFKA_DIR, 'target', 'classpath.resolved')
  const mvn = spawnSync(
    'mvn',
    ['-q', '-B', '-f', POM, 'dependency:build-classpath', `-Dmdep.outputFile=${out}`],
    { encoding: 'utf8' },
  )
  if (mvn.error) {
    throw new KafkaSetupError(
      '`mvn` was not found: the real-Kafka commands resolve the broker with Maven (apt install maven)',
    )
  }
  if (mvn.status !== 0) {
    throw new KafkaSetupError(
      `Maven could not resolve the broker's jars (${POM}): ${`${mvn.stdout}${mvn.stderr}`.trim().split('\n').slice(-3).join(' ')}`,
    )
  }
  const cp = readFileSync(out, 'utf8').trim()
  writeFileSync(CLASSPATH_CACHE, `${pomHash}\n${cp}\n`)
  return cp
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

function serverProperties(
  dataDir: string,
  ports: { plain: number; sasl: number; ctl: number },
  proxied?: { port: number; advertisedPort: number },
) {
  const scram = (m: string) =>
    `listener.name.sasl_plaintext.${m}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${ports.ctl}`,
    `listeners=PLAINTEXT://127.0.0.1:${ports.plain},SASL_PLAINTEXT://127.0.0.1:${ports.sasl},CONTROLLER://127.0.0.1:${ports.ctl}${proxied ? `,PROXIED://127.0.0.1:${proxied.port}` : ''}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${ports.plain},SASL_PLAINTEXT://127.0.0.1:${ports.sasl}${proxied ? `,PROXIED://127.0.0.1:${proxied.advertisedPort}` : ''}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT${proxied ? ',PROXIED:PLAINTEXT' : ''}`,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_USER.username}="${KAFKA_USER.password}";`,
    scram('scram-sha-256'),
    scram('scram-sha-512'),
    `log.dirs=${join(dataDir, 'log')}`,
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    // The read-back consumer's group coordinator comes up in a second on one partition, not fifty.
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n')
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Starts the broker and creates the topic; throws {@link KafkaSetupError} for a missing tool. */
export async function startKafka(options: KafkaOptions = {}): Promise<RunningKafka> {
  const log = options.log ?? (() => {})
  const topic = options.topic ?? KAFKA_TOPIC
  const partitions = options.partitions ?? KAFKA_PARTITIONS
  const why =
    'the real-Kafka commands need Java 17+ and Maven (apt install openjdk-17-jre-headless maven)'
  const javaVersion = requireTool('java', ['-version'], why)
  const major = Number(/version "(\d+)/.exec(javaVersion)?.[1] ?? 0)
  if (major < 17) throw new KafkaSetupError(`Java ${major} found; Apache Kafka 4 needs Java 17+`)
  const cp = classpath(log)

  const dataDir = mkdtempSync(join(tmpdir(), 'weave-kafka-'))
  const logFile = join(dataDir, 'kafka.log')
  const ports = { plain: await freePort(), sasl: await freePort(), ctl: await freePort() }
  const proxied = options.proxiedListener
    ? { port: await freePort(), advertisedPort: options.proxiedListener.advertisedPort }
    : undefined
  const props = join(dataDir, 'server.properties')
  writeFileSync(props, serverProperties(dataDir, ports, proxied))
  const bootstrap = `127.0.0.1:${ports.plain}`
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    `-Dkafka.logs.dir=${dataDir}`,
    `-Dlog4j2.configurationFile=${join(KAFKA_DIR, 'log4j2.properties')}`,
    '-cp',
    cp,
  ]
  const scram = (m: string) => `${m}=[name=${KAFKA_USER.username},password=${KAFKA_USER.password}]`
  const format = spawnSync(
    'java',
    [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      // One argument: a URL-safe base64 id may start with '-', which the tool would read as a flag.
      `--cluster-id=${uuidBase64()}`,
      '-c',
      props,
      '--standalone',
      '--add-scram',
      scram('SCRAM-SHA-256'),
      '--add-scram',
      scram('SCRAM-SHA-512'),
    ],
    { encoding: 'utf8' },
  )
  if (format.status !== 0) {
    rmSync(dataDir, { recursive: true, force: true })
    throw new Error(`formatting the broker's storage failed: ${format.stderr || format.stdout}`)
  }

  let broker: ChildProcess | undefined
  const killOnExit = () => broker?.kill('SIGKILL')
  process.on('exit', killOnExit)

  const admin = new Admin({
    clientId: 'weave-dev-admin',
    bootstrapBrokers: [bootstrap],
    retries: 0,
    connectTimeout: 2_000,
    timeout: 10_000,
  })

  const everyPartitionLed = async () => {
    const names = (await admin.listTopics()).filter((n) => !n.startsWith('__'))
    if (names.length === 0) return true
    const meta = await admin.metadata({ topics: names, forceUpdate: true })
    return names.every((n) => meta.topics.get(n)?.partitions.every((p) => p.leader >= 0) ?? false)
  }

  const startBroker = async () => {
    const child = spawn('java', [...jvm, 'kafka.Kafka', props], {
      stdio: ['ignore', 'ignore', 'ignore'],
    })
    broker = child
    let exited: string | undefined
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`
    })
    const until = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (exited) throw new Error(`the Kafka broker ${exited} while starting; see ${logFile}`)
      if (Date.now() > until) {
        child.kill('SIGKILL')
        throw new Error(`the Kafka broker did not start within 2 minutes; see ${logFile}`)
      }
      try {
        const meta = await admin.metadata({ topics: [], forceUpdate: true })
        // Serving metadata is not enough after a restart: a produce right then is refused until
        // every partition it had has its leader again.
        if (meta.brokers.size > 0 && (await everyPartitionLed())) return
      } catch {
        // not listening yet
      }
      await sleep(250)
    }
  }

  const stopBroker = async () => {
    const child = broker
    broker = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGKILL')
    await gone
  }

  const pauseBroker = () => {
    broker?.kill('SIGSTOP')
  }
  const resumeBroker = () => {
    broker?.kill('SIGCONT')
  }

  const waitForLeaders = async (name: string, count: number) => {
    const until = Date.now() + 30_000
    for (;;) {
      try {
        const meta = await admin.metadata({ topics: [name], forceUpdate: true })
        const t = meta.topics.get(name)
        if (t && t.partitionsCount === count && t.partitions.every((p) => p.leader >= 0)) return
      } catch {
        // metadata for a topic being created can fail transiently
      }
      if (Date.now() > until) throw new Error(`topic ${name} has no leader for every partition`)
      await sleep(100)
    }
  }

  const createTopic = async (name: string, count: number, configs: Record<string, string> = {}) => {
    await admin.createTopics({
      topics: [name],
      partitions: count,
      replicas: 1,
      configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
    })
    await waitForLeaders(name, count)
  }

  const deleteTopic = async (name: string) => {
    await admin.deleteTopics({ topics: [name] })
  }

  const readRecords = (name: string = topic) => readTopic(bootstrap, name)

  const close = async () => {
    await admin.close().catch(() => {})
    await stopBroker()
    process.off('exit', killOnExit)
    rmSync(dataDir, { recursive: true, force: true })
  }

  try {
    await startBroker()
    log(`Kafka broker started on ${bootstrap} (log ${logFile})`)
    await createTopic(topic, partitions)
  } catch (e) {
    await close()
    throw e
  }
  return {
    bootstrap,
    saslBootstrap: `127.0.0.1:${ports.sasl}`,
    ...(proxied ? { proxiedBootstrap: `127.0.0.1:${proxied.port}` } : {}),
    topic,
    partitions,
    dataDir,
    logFile,
    stopBroker,
    startBroker,
    pauseBroker,
    resumeBroker,
    createTopic,
    deleteTopic,
    readRecords,
    close,
  }
}

/** A KRaft cluster id: 16 random bytes, base64url without padding (what `random-uuid` prints). */
function uuidBase64(): string {
  return Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url')
}

/**
 * Every record on `topic` now (up to its high watermarks), read from the broker at `bootstrap` by a
 * consumer of a fresh group that commits nothing, sorted by partition and offset.
 */
export async function readTopic(bootstrap: string, name: string): Promise<KafkaRecord[]> {
  // Right after start-up or a restart the group coordinator is still loading: retry for a while.
  const until = Date.now() + 30_000
  for (;;) {
    try {
      return await readOnce(bootstrap, name)
    } catch (e) {
      if (Date.now() > until) throw e
      await sleep(250)
    }
  }
}

async function readOnce(bootstrap: string, name: string): Promise<KafkaRecord[]> {
  const consumer = new Consumer({
    clientId: 'weave-dev-reader',
    groupId: `reader-${randomUUID()}`,
    bootstrapBrokers: [bootstrap],
    autocommit: false,
    retries: 0,
    timeout: 10_000,
  })
  try {
    const offsets = await consumer.listOffsets({ topics: [name] })
    const high = offsets.get(name) ?? []
    const total = high.reduce((sum, h) => sum + Number(h), 0)
    const records: KafkaRecord[] = []
    if (total === 0) return records
    const stream = await consumer.consume({
      topics: [name],
      mode: 'earliest',
      autocommit: false,
      maxWaitTime: 100,
    })
    try {
      for await (const m of stream as AsyncIterable<Message<Buffer, Buffer, Buffer, Buffer>>) {
        records.push({
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          key: m.key,
          value: m.value,
          headers: [...m.headers].map(([k, v]) => [k.toString('utf8'), v]),
        })
        if (records.length >= total) break
      }
    } finally {
      await stream.close()
    }
    return records.sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset))
  } finally {
    await consumer.close(true)
  }
}

/**
 * Calls `stop` once the process that launched this one is gone. A launcher killed outright
 * (SIGKILL, a closed terminal) forwards no signal, and the broker would outlive everyone; `npm
 * run` starts scripts through `sh -c`, so the parent and its parent (npm) are both watched.
 */
export function stopWithLauncher(stop: () => void): void {
  const parentOf = (pid: number): number | undefined => {
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    } catch {
      return undefined
    }
  }
  const watched = [process.ppid]
  const grand = parentOf(process.ppid)
  if (grand && grand > 1) watched.push(grand)
  const timer = setInterval(() => {
    for (const pid of watched) {
      try {
        process.kill(pid, 0)
      } catch {
        clearInterval(timer)
        stop()
        return
      }
    }
  }, 500)
  timer.unref()
}
