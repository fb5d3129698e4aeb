/**
 * A real Apache Kafka on loopback, from the jars `dev/kafka/pom.xml` pins, for `npm run kafka`,
 * `npm run dev -- --kafka`, the benchmarks and the real-broker suite: one KRaft node, or a
 * cluster of them (`brokers: 3`, each node broker and controller, replication factor 3,
 * `min.insync.replicas=2`), as production runs it. Every piece it starts is owned here: the Java
 * processes (signalled by their pids), the temporary data folder (removed on close), a watchdog
 * that removes both if this Node process dies without closing, and the Admin/consumer clients it
 * reads back with.
 *
 * Listeners: PLAINTEXT for tools and the worker's plaintext tests, SASL_PLAINTEXT with PLAIN,
 * SCRAM-SHA-256 and SCRAM-SHA-512 for the credentialed paths (one user, {@link KAFKA_USER}); with
 * `tls`, SSL and SASL_SSL with certificates of a CA made per run, and two SSL listeners whose
 * certificates a client must refuse (an untrusted CA, a wrong host name). Brokers talk to each
 * other over PLAINTEXT. Auto-creation is off: the topic exists because we created it through the
 * Admin API, as an operator would.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer, type Message } from '@platformatic/kafka'
import { freePort } from './ports.ts'
import { brokerKeystores, KEYSTORE_PASSWORD, type TestCa } from './tls-certs.ts'

const KAFKA_DIR = fileURLToPath(new URL('../../dev/kafka/', import.meta.url).href)
const POM = join(KAFKA_DIR, 'pom.xml')
/** Where the resolved classpath is remembered, keyed by the pom's hash (gitignored). */
const CLASSPATH_CACHE = join(KAFKA_DIR, 'target', 'classpath.txt')
/** Maven's local repository: its default, or `-Dmaven.repo.local` in MAVEN_OPTS (a settings.xml may move it too). */
const MAVEN_REPO =
  /-Dmaven\.repo\.local=(\S+)/.exec(process.env.MAVEN_OPTS ?? '')?.[1] ??
  join(homedir(), '.m2', 'repository')

export const KAFKA_TOPIC = 'weave.score_calls'
export const KAFKA_PARTITIONS = 6
/** The one SASL user, known to PLAIN and to both SCRAM mechanisms. */
export const KAFKA_USER = { username: 'weave', password: 'weave-secret' } as const
/** Start-up (download excluded) is bounded; past this the error names the broker's log. */
const START_TIMEOUT_MS = 120_000
/** Every JVM's heap: three of them share a small machine with the rest of the suite. */
const HEAP = ['-Xms64m', '-Xmx384m']

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

/** One node's client listeners, `host:port` each. */
export type KafkaNode = {
  id: number
  bootstrap: string
  saslBootstrap: string
  ssl?: string
  saslSsl?: string
  untrusted?: string
  wrongName?: string
}

export type KafkaTls = {
  /** The CA that signed the brokers' certificates (PEM): what a client must trust. */
  caFile: string
  /** SSL listeners of every node, comma-separated. */
  bootstrap: string
  /** SASL_SSL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). */
  saslBootstrap: string
  /** SSL listeners whose certificate another CA signed: a client must refuse them. */
  untrustedBootstrap: string
  /** SSL listeners whose certificate names `wrong-name.invalid` only: a client must refuse them. */
  wrongNameBootstrap: string
}

export type StopSignal = 'SIGKILL' | 'SIGTERM'

export type RunningKafka = {
  /** PLAINTEXT listeners of every node, comma-separated (KAFKA_BROKERS's shape). */
  bootstrap: string
  /** SASL_PLAINTEXT listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), comma-separated. */
  saslBootstrap: string
  /**
   * With {@link KafkaOptions.proxiedListener}: the extra plaintext listener's own `host:port`,
   * where the proxy in front of it forwards to (clients are told the proxy's port instead).
   */
  proxiedBootstrap?: string
  /** With {@link KafkaOptions.tls}. */
  tls?: KafkaTls
  nodes: KafkaNode[]
  topic: string
  partitions: number
  /** Replicas of every topic created here: 3 on a cluster of 3 or more, else the node count. */
  replicationFactor: number
  dataDir: string
  /** The first node's log; node n logs to `node-n/kafka.log` in the data folder. */
  logFile: string
  /** Kills every node (their data stays), as a crash or an outage would. */
  stopBroker(): Promise<void>
  /** Starts every stopped node on the same ports and data, resolved once every partition has a leader. */
  startBroker(): Promise<void>
  /** Stops one node (SIGKILL: a crash; SIGTERM: a controlled shutdown), resolved once it exited. */
  stopNode(id: number, signal?: StopSignal): Promise<void>
  /** Starts one stopped node, resolved once it is registered and every partition has a leader. */
  startNode(id: number): Promise<void>
  /** The process id of a running node (for tests that signal it themselves). */
  nodePid(id: number): number | undefined
  /**
   * Waits until every partition of every topic has a leader (and, with `fullIsr`, every replica
   * in sync again: the state in which the next node of a rolling restart may go).
   */
  waitForLeaders(options?: { fullIsr?: boolean; timeoutMs?: number }): Promise<void>
  /** The leader's node id of each partition of `topic` (-1: none). */
  leaders(topic?: string): Promise<number[]>
  /** Freezes every node (SIGSTOP): connections stay open and nothing answers, a hung cluster. */
  pauseBroker(): void
  /** Lets paused nodes go on (SIGCONT). */
  resumeBroker(): void
  createTopic(name: string, partitions: number, configs?: Record<string, string>): Promise<void>
  deleteTopic(name: string): Promise<void>
  /** Every record on the topic now (up to its high watermarks), read from the brokers. */
  readRecords(topic?: string): Promise<KafkaRecord[]>
  /** Stops every node and removes the data. */
  close(): Promise<void>
}

export type KafkaOptions = {
  topic?: string
  partitions?: number
  /** Nodes, each broker and controller (default 1). */
  brokers?: number
  /**
   * `broker.session.timeout.ms`: how long the controller waits for a silent broker before
   * fencing it (taking it out of every in-sync set, moving its leaderships). Kafka's default is
   * 9 s, and an `acks=all` write to a partition the dead broker replicated waits that long.
   */
  sessionTimeoutMs?: number
  /** TLS listeners; `{ ca }` signs their certificates with a CA made beforehand (else a new one). */
  tls?: boolean | { ca: TestCa }
  /** Progress lines (downloading, started); silent by default. */
  log?: (line: string) => void
  /**
   * An extra plaintext listener (PROXIED) that advertises `127.0.0.1:advertisedPort` in its
   * metadata instead of its own port: for a proxy on that port in front of it (bench/native.ts
   * counts connections so). A client that bootstraps through the proxy is sent back to the proxy
   * for every broker connection; the other listeners, and the clients here, bypass it. Single
   * node only.
   */
  proxiedListener?: { advertisedPort: number }
}

function requireTool(command: string, args: string[], why: string): string {
  const run = spawnSync(command, args, { encoding: 'utf8' })
  if (run.error) throw new KafkaSetupError(`\`${command}\` was not found: ${why}`)
  return `${run.stdout}${run.stderr}`
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/** Bytes Maven has written under its repository since `since` (new files only), cheaply. */
function bytesSince(dir: string, since: number): number {
  let total = 0
  const walk = (d: string) => {
    let entries: string[]
    try {
      entries = readdirSync(d)
    } catch {
      return
    }
    for (const name of entries) {
      const p = join(d, name)
      try {
        const st = statSync(p)
        if (st.isDirectory()) {
          if (st.mtimeMs >= since) walk(p)
        } else if (st.mtimeMs >= since) total += st.size
      } catch {
        // a file Maven renamed meanwhile
      }
    }
  }
  walk(dir)
  return total
}

/**
 * Runs Maven, which downloads the broker's jars on a cold cache (about 56 MB): a line every few
 * seconds with the artifacts and bytes so far, so a first run is never silent for a minute.
 */
async function resolveWithProgress(args: string[], log: (line: string) => void) {
  const started = Date.now()
  const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let artifacts = 0
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8')
    output = (output + text).slice(-20_000)
    artifacts += (text.match(/Downloaded from /g) ?? []).length
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  // Directory mtimes move when Maven adds a file: only the parts touched since start are walked.
  const timer = setInterval(() => {
    const seconds = Math.round((Date.now() - started) / 1000)
    log(
      `  … ${artifacts} artifact(s), ${mb(bytesSince(MAVEN_REPO, started - 1000))} so far (${seconds} s)`,
    )
  }, 3_000)
  const result = await new Promise<{ status: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ status: null, error }))
    child.once('close', (status) => resolve({ status }))
  })
  clearInterval(timer)
  return { ...result, output }
}

/** The broker's classpath, resolved by Maven (downloading into ~/.m2 only the first time). */
async function classpath(log: (line: string) => void): Promise<string> {
  const pomHash = createHash('sha256').update(readFileSync(POM)).digest('hex')
  if (existsSync(CLASSPATH_CACHE)) {
    const [hash, cp] = readFileSync(CLASSPATH_CACHE, 'utf8').split('\n')
    if (hash === pomHash && cp && cp.split(':').every((jar) => existsSync(jar))) return cp
  }
  const version = /<kafka\.version>([^<]+)</.exec(readFileSync(POM, 'utf8'))?.[1] ?? '?'
  const localJar = join(
    MAVEN_REPO,
    `org/apache/kafka/kafka_2.13/${version}/kafka_2.13-${version}.jar`,
  )
  const cold = !existsSync(localJar)
  if (cold) {
    log(
      `downloading Apache Kafka ${version} from Maven Central (about 56 MB, first run only) into Maven's cache, ${MAVEN_REPO}…`,
    )
  }
  mkdirSync(join(KAFKA_DIR, 'target'), { recursive: true })
  const out = join(KAFKA_DIR, 'target', 'classpath.resolved')
  // Batch mode without -q: one "Downloaded from" line per artifact, counted for the progress.
  const mvn = await resolveWithProgress(
    ['-B', '-f', POM, 'dependency:build-classpath', `-Dmdep.outputFile=${out}`],
    cold ? log : () => {},
  )
  if (mvn.error) {
    throw new KafkaSetupError(
      '`mvn` was not found: the real-Kafka commands resolve the broker with Maven (apt install maven)',
    )
  }
  if (mvn.status !== 0) {
    const errors = mvn.output.split('\n').filter((l) => l.includes('ERROR'))
    throw new KafkaSetupError(
      `Maven could not resolve the broker's jars (${POM}): ${errors.slice(0, 3).join(' ')}`,
    )
  }
  const cp = readFileSync(out, 'utf8').trim()
  writeFileSync(CLASSPATH_CACHE, `${pomHash}\n${cp}\n`)
  if (cold) log(`Apache Kafka ${version} is in ${MAVEN_REPO}; later runs start without downloading`)
  return cp
}

type NodePorts = {
  plain: number
  sasl: number
  ctl: number
  tls?: { ssl: number; saslSsl: number; untrusted: number; wrongName: number }
}

type ClusterShape = {
  nodes: NodePorts[]
  replicationFactor: number
  sessionTimeoutMs?: number
  keystores?: ReturnType<typeof brokerKeystores>
  proxied?: { port: number; advertisedPort: number }
}

function serverProperties(id: number, dataDir: string, shape: ClusterShape): string {
  const ports = shape.nodes[id - 1] as NodePorts
  const jaas = {
    plain: `org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_USER.username}="${KAFKA_USER.password}";`,
    scram: 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
  }
  const saslListener = (name: string) => [
    `listener.name.${name}.plain.sasl.jaas.config=${jaas.plain}`,
    `listener.name.${name}.scram-sha-256.sasl.jaas.config=${jaas.scram}`,
    `listener.name.${name}.scram-sha-512.sasl.jaas.config=${jaas.scram}`,
  ]
  const listeners: [name: string, protocol: string, port: number, advertised?: number][] = [
    ['PLAINTEXT', 'PLAINTEXT', ports.plain],
    ['SASL_PLAINTEXT', 'SASL_PLAINTEXT', ports.sasl],
  ]
  const tlsLines: string[] = []
  if (ports.tls && shape.keystores) {
    const k = shape.keystores
    listeners.push(
      ['SSL', 'SSL', ports.tls.ssl],
      ['SASL_SSL', 'SASL_SSL', ports.tls.saslSsl],
      ['UNTRUSTED', 'SSL', ports.tls.untrusted],
      ['WRONGNAME', 'SSL', ports.tls.wrongName],
    )
    const keystore = (prefix: string, file: string) => [
      `${prefix}ssl.keystore.type=PKCS12`,
      `${prefix}ssl.keystore.location=${file}`,
      `${prefix}ssl.keystore.password=${KEYSTORE_PASSWORD}`,
      `${prefix}ssl.key.password=${KEYSTORE_PASSWORD}`,
    ]
    tlsLines.push(
      ...keystore('', k.good),
      ...keystore('listener.name.untrusted.', k.untrusted),
      ...keystore('listener.name.wrongname.', k.wrongName),
      ...saslListener('sasl_ssl'),
    )
  }
  if (shape.proxied) {
    listeners.push(['PROXIED', 'PLAINTEXT', shape.proxied.port, shape.proxied.advertisedPort])
  }
  const voters = shape.nodes.map((n, i) => `${i + 1}@127.0.0.1:${n.ctl}`).join(',')
  const rf = shape.replicationFactor
  return [
    'process.roles=broker,controller',
    `node.id=${id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=${[...listeners.map(([n, , p]) => `${n}://127.0.0.1:${p}`), `CONTROLLER://127.0.0.1:${ports.ctl}`].join(',')}`,
    `advertised.listeners=${listeners.map(([n, , p, a]) => `${n}://127.0.0.1:${a ?? p}`).join(',')}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `listener.security.protocol.map=CONTROLLER:PLAINTEXT,${listeners.map(([n, proto]) => `${n}:${proto}`).join(',')}`,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    ...saslListener('sasl_plaintext'),
    ...tlsLines,
    `log.dirs=${join(dataDir, 'log')}`,
    'auto.create.topics.enable=false',
    'num.partitions=1',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${rf >= 3 ? 2 : 1}`,
    `offsets.topic.replication.factor=${rf}`,
    // The read-back consumer's group coordinator comes up in a second on one partition, not fifty.
    'offsets.topic.num.partitions=1',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${rf >= 3 ? 2 : 1}`,
    `share.coordinator.state.topic.replication.factor=${rf}`,
    'group.initial.rebalance.delay.ms=0',
    ...(shape.sessionTimeoutMs
      ? [
          `broker.session.timeout.ms=${shape.sessionTimeoutMs}`,
          // Heartbeats must come several times per session, or a live broker is fenced.
          `broker.heartbeat.interval.ms=${Math.max(250, Math.floor(shape.sessionTimeoutMs / 4))}`,
        ]
      : []),
    '',
  ].join('\n')
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A process outside this one that, once this process is gone however it went (SIGKILL
 * included), kills every JVM whose pid the harness wrote to `pidFile` and removes `dataDir`. It
 * waits on a pipe from us: the pipe closes when we die, so nothing polls. Ended by {@link
 * Watchdog.disarm} on a clean close.
 */
type Watchdog = { disarm(): void }

function startWatchdog(dataDir: string, pidFile: string): Watchdog {
  const script = `cat >/dev/null; for p in $(cat "$1" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$2"`
  const child = spawn('sh', ['-c', script, 'weave-kafka-watchdog', pidFile, dataDir], {
    // Its own process group: a Ctrl-C or a group kill aimed at us must not take it first.
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  child.unref()
  ;(child.stdin as unknown as { unref?: () => void }).unref?.()
  return {
    disarm() {
      if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL')
    },
  }
}

/**
 * Starts the broker(s) and creates the topic; throws {@link KafkaSetupError} for a missing tool.
 * A start-up that fails otherwise is tried once more on fresh ports: on a machine where other
 * programs take ports too, a port found free can be taken before the broker binds it.
 */
export async function startKafka(options: KafkaOptions = {}): Promise<RunningKafka> {
  try {
    return await startKafkaOnce(options)
  } catch (e) {
    if (e instanceof KafkaSetupError) throw e
    options.log?.(
      `Kafka did not start (${(e as Error).message.split('\n')[0]}); once more on fresh ports`,
    )
    return startKafkaOnce(options)
  }
}

async function startKafkaOnce(options: KafkaOptions): Promise<RunningKafka> {
  const log = options.log ?? (() => {})
  const topic = options.topic ?? KAFKA_TOPIC
  const partitions = options.partitions ?? KAFKA_PARTITIONS
  const count = options.brokers ?? 1
  if (!Number.isInteger(count) || count < 1) throw new KafkaSetupError(`brokers must be 1 or more`)
  if (options.proxiedListener && count > 1) {
    throw new KafkaSetupError('the proxied listener is for a single node')
  }
  const why =
    'the real-Kafka commands need Java 17+ and Maven (apt install openjdk-17-jre-headless maven)'
  const javaVersion = requireTool('java', ['-version'], why)
  const major = Number(/version "(\d+)/.exec(javaVersion)?.[1] ?? 0)
  if (major < 17) throw new KafkaSetupError(`Java ${major} found; Apache Kafka 4 needs Java 17+`)
  const cp = await classpath(log)

  const dataDir = mkdtempSync(join(tmpdir(), 'weave-kafka-'))
  const pidFile = join(dataDir, 'pids')
  writeFileSync(pidFile, '')
  const watchdog = startWatchdog(dataDir, pidFile)
  const cleanUp = () => {
    watchdog.disarm()
    rmSync(dataDir, { recursive: true, force: true })
  }

  let shape: ClusterShape
  try {
    const nodePorts: NodePorts[] = []
    for (let i = 0; i < count; i++) {
      nodePorts.push({
        plain: await freePort(),
        sasl: await freePort(),
        ctl: await freePort(),
        ...(options.tls
          ? {
              tls: {
                ssl: await freePort(),
                saslSsl: await freePort(),
                untrusted: await freePort(),
                wrongName: await freePort(),
              },
            }
          : {}),
      })
    }
    shape = {
      nodes: nodePorts,
      replicationFactor: Math.min(3, count),
      ...(options.sessionTimeoutMs ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      ...(options.tls
        ? {
            keystores: brokerKeystores(
              join(dataDir, 'tls'),
              typeof options.tls === 'object' ? options.tls.ca : undefined,
            ),
          }
        : {}),
      ...(options.proxiedListener
        ? {
            proxied: {
              port: await freePort(),
              advertisedPort: options.proxiedListener.advertisedPort,
            },
          }
        : {}),
    }
  } catch (e) {
    cleanUp()
    throw e
  }

  const nodeDir = (id: number) => join(dataDir, `node-${id}`)
  const propsOf = (id: number) => join(nodeDir(id), 'server.properties')
  const logOf = (id: number) => join(nodeDir(id), 'kafka.log')
  const jvm = (id: number) => [
    ...HEAP,
    `-Dkafka.logs.dir=${nodeDir(id)}`,
    `-Dlog4j2.configurationFile=${join(KAFKA_DIR, 'log4j2.properties')}`,
    '-cp',
    cp,
  ]
  const scram = (m: string) => `${m}=[name=${KAFKA_USER.username},password=${KAFKA_USER.password}]`
  const clusterId = uuidBase64()
  const ids = Array.from({ length: count }, (_, i) => i + 1)
  // Formatting is a JVM each: side by side, they take the time of one.
  const formats = await Promise.all(
    ids.map(async (id) => {
      mkdirSync(nodeDir(id), { recursive: true })
      writeFileSync(propsOf(id), serverProperties(id, nodeDir(id), shape))
      const child = spawn(
        'java',
        [
          ...jvm(id),
          'kafka.tools.StorageTool',
          'format',
          // One argument: a URL-safe base64 id may start with '-', which the tool would read as a flag.
          `--cluster-id=${clusterId}`,
          '-c',
          propsOf(id),
          '--add-scram',
          scram('SCRAM-SHA-256'),
          '--add-scram',
          scram('SCRAM-SHA-512'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let out = ''
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8')
      })
      child.stderr.on('data', (c: Buffer) => {
        out += c.toString('utf8')
      })
      const status = await new Promise<number | null>((resolve) => child.once('close', resolve))
      return { status, out }
    }),
  )
  const failed = formats.find((f) => f.status !== 0)
  if (failed) {
    cleanUp()
    throw new Error(`formatting the broker's storage failed: ${failed.out}`)
  }

  const processes = new Map<number, ChildProcess>()
  const recordPids = () => {
    // Every pid this run ever started: the watchdog kills what is still there.
    writeFileSync(pidFile, `${[...processes.values()].map((p) => p.pid).join('\n')}\n`)
  }
  const killOnExit = () => {
    for (const child of processes.values()) child.kill('SIGKILL')
  }
  process.on('exit', killOnExit)

  const node = (id: number): KafkaNode => {
    const p = shape.nodes[id - 1] as NodePorts
    const at = (port: number) => `127.0.0.1:${port}`
    return {
      id,
      bootstrap: at(p.plain),
      saslBootstrap: at(p.sasl),
      ...(p.tls
        ? {
            ssl: at(p.tls.ssl),
            saslSsl: at(p.tls.saslSsl),
            untrusted: at(p.tls.untrusted),
            wrongName: at(p.tls.wrongName),
          }
        : {}),
    }
  }
  const nodes = ids.map(node)
  const running = (id: number) => {
    const child = processes.get(id)
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }
  const alive = () => ids.filter(running)

  /** A short-lived Admin client over the running nodes (one that pointed at a killed node would hang). */
  const withAdmin = async <T>(fn: (admin: Admin) => Promise<T>): Promise<T> => {
    const up = alive()
    const admin = new Admin({
      clientId: 'weave-dev-admin',
      bootstrapBrokers: (up.length > 0 ? up : ids).map((id) => node(id).bootstrap),
      retries: 0,
      connectTimeout: 2_000,
      timeout: 10_000,
    })
    try {
      return await fn(admin)
    } finally {
      await admin.close().catch(() => {})
    }
  }

  /** Whether every partition of every topic has a leader (and all its replicas in sync). */
  const clusterReady = async (fullIsr: boolean, registered: number[]) =>
    withAdmin(async (admin) => {
      const up = alive()
      const meta = await admin.metadata({ topics: [], forceUpdate: true })
      if (!registered.every((id) => meta.brokers.has(id))) return false
      const names = (await admin.listTopics()).filter((n) => !n.startsWith('__'))
      if (names.length === 0) return true
      const topics = await admin.metadata({ topics: names, forceUpdate: true })
      return names.every(
        (n) =>
          topics.topics.get(n)?.partitions.every(
            // A killed node stays leader in the metadata until the controller fences it.
            (p) => up.includes(p.leader) && (!fullIsr || p.isr.length === p.replicas.length),
          ) ?? false,
      )
    })

  const waitUntilReady = async (
    what: string,
    options: { fullIsr?: boolean; timeoutMs?: number; registered?: number[] } = {},
  ) => {
    const until = Date.now() + (options.timeoutMs ?? START_TIMEOUT_MS)
    for (;;) {
      for (const id of options.registered ?? []) {
        if (!running(id)) throw new Error(`Kafka node ${id} exited while ${what}; see ${logOf(id)}`)
      }
      try {
        if (await clusterReady(options.fullIsr ?? false, options.registered ?? [])) return
      } catch {
        // not listening yet, or metadata mid-change
      }
      if (Date.now() > until) {
        throw new Error(`Kafka was not ready (${what}) in time; see ${logOf(ids[0] ?? 1)}`)
      }
      await sleep(250)
    }
  }

  const spawnNode = (id: number) => {
    const child = spawn('java', [...jvm(id), 'kafka.Kafka', propsOf(id)], {
      stdio: ['ignore', 'ignore', 'ignore'],
    })
    processes.set(id, child)
    recordPids()
  }

  // Serving metadata is not enough after a restart: a produce right then is refused until every
  // partition it had has its leader again.
  const startNode = async (id: number) => {
    if (!running(id)) spawnNode(id)
    await waitUntilReady(`starting node ${id}`, { registered: [id] })
  }

  const startBroker = async () => {
    const stopped = ids.filter((id) => !running(id))
    for (const id of stopped) spawnNode(id)
    await waitUntilReady('starting', { registered: ids })
  }

  const stopNode = async (id: number, signal: StopSignal = 'SIGKILL') => {
    const child = processes.get(id)
    if (!child || !running(id)) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    // A controlled shutdown moves leaderships first; past a minute it is a crash after all.
    const timer = signal === 'SIGTERM' ? setTimeout(() => child.kill('SIGKILL'), 60_000) : undefined
    await gone
    if (timer) clearTimeout(timer)
  }

  const stopBroker = async () => {
    await Promise.all(ids.map((id) => stopNode(id, 'SIGKILL')))
  }

  const pauseBroker = () => {
    for (const id of alive()) processes.get(id)?.kill('SIGSTOP')
  }
  const resumeBroker = () => {
    for (const id of alive()) processes.get(id)?.kill('SIGCONT')
  }

  const leaders = (name: string = topic) =>
    withAdmin(async (admin) => {
      const meta = await admin.metadata({ topics: [name], forceUpdate: true })
      return meta.topics.get(name)?.partitions.map((p) => p.leader) ?? []
    })

  const waitForTopic = async (name: string, partitionCount: number) => {
    const until = Date.now() + 30_000
    for (;;) {
      try {
        const ready = await withAdmin(async (admin) => {
          const meta = await admin.metadata({ topics: [name], forceUpdate: true })
          const t = meta.topics.get(name)
          return (
            t !== undefined &&
            t.partitionsCount === partitionCount &&
            t.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length)
          )
        })
        if (ready) return
      } catch {
        // metadata for a topic being created can fail transiently
      }
      if (Date.now() > until) throw new Error(`topic ${name} has no leader for every partition`)
      await sleep(100)
    }
  }

  const createTopic = async (
    name: string,
    partitionCount: number,
    configs: Record<string, string> = {},
  ) => {
    // A busy machine (a bench building bundles beside it) can miss the Admin's 2 s connect:
    // tried three times; a topic that the failed attempt created after all counts as created.
    for (let attempt = 1; ; attempt++) {
      try {
        await withAdmin((admin) =>
          admin.createTopics({
            topics: [name],
            partitions: partitionCount,
            replicas: shape.replicationFactor,
            configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
          }),
        )
        break
      } catch (e) {
        const text = JSON.stringify(e, Object.getOwnPropertyNames(e))
        if (attempt > 1 && /already.exists/i.test(text)) break
        if (attempt >= 3 || !/Cannot connect|timed out/i.test(text)) throw e
      }
    }
    await waitForTopic(name, partitionCount)
  }

  const deleteTopic = async (name: string) => {
    await withAdmin((admin) => admin.deleteTopics({ topics: [name] }))
  }

  const readRecords = (name: string = topic) =>
    readTopic(
      alive()
        .map((id) => node(id).bootstrap)
        .join(','),
      name,
    )

  const close = async () => {
    await Promise.all(ids.map((id) => stopNode(id, 'SIGKILL')))
    process.off('exit', killOnExit)
    cleanUp()
  }

  const joined = (pick: (n: KafkaNode) => string | undefined) =>
    nodes.map((n) => pick(n) ?? '').join(',')
  /** The last error lines of a node's log: the data folder, log included, goes when start-up fails. */
  const logTail = (id: number) => {
    try {
      const lines = readFileSync(logOf(id), 'utf8').split('\n')
      const errors = lines.filter((l) => /\b(ERROR|FATAL)\b/.test(l))
      return (errors.length > 0 ? errors : lines).slice(-3).join('\n')
    } catch {
      return '(no log)'
    }
  }
  try {
    await startBroker()
    log(`Kafka started: ${count} node(s) on ${joined((n) => n.bootstrap)} (logs in ${dataDir})`)
    await createTopic(topic, partitions)
  } catch (e) {
    const tails = ids.map((id) => `node ${id}: ${logTail(id)}`).join('\n')
    await close()
    throw new Error(`${(e as Error).message.replace(/; see .*$/, '')}\n${tails}`)
  }
  return {
    bootstrap: joined((n) => n.bootstrap),
    saslBootstrap: joined((n) => n.saslBootstrap),
    ...(shape.proxied ? { proxiedBootstrap: `127.0.0.1:${shape.proxied.port}` } : {}),
    ...(shape.keystores
      ? {
          tls: {
            caFile: shape.keystores.ca.certFile,
            bootstrap: joined((n) => n.ssl),
            saslBootstrap: joined((n) => n.saslSsl),
            untrustedBootstrap: joined((n) => n.untrusted),
            wrongNameBootstrap: joined((n) => n.wrongName),
          },
        }
      : {}),
    nodes,
    topic,
    partitions,
    replicationFactor: shape.replicationFactor,
    dataDir,
    logFile: logOf(1),
    stopBroker,
    startBroker,
    stopNode,
    startNode,
    nodePid: (id) => (running(id) ? processes.get(id)?.pid : undefined),
    waitForLeaders: (o = {}) =>
      waitUntilReady('waiting for leaders', { registered: alive(), ...o }),
    leaders,
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
 * Every record on `topic` now (up to its high watermarks), read from the brokers at `bootstrap`
 * (`host:port`, comma-separated) by a
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
    bootstrapBrokers: bootstrap.split(','),
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
