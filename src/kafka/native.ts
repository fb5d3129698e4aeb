/**
 * The native transport: Kafka's own protocol over TCP from the Worker (`KAFKA_TRANSPORT=native`),
 * through kafkajs (docs/native-kafka.md says why that client). One adapter behind the same port
 * as the REST dialects, so the policy, the breaker, the queue fallback and the dead letters are
 * the same.
 *
 * A socket belongs to the invocation that opened it (workerd refuses I/O on behalf of another
 * request), so nothing network-related is cached in module state. The queue consumer opens a
 * connection set per batch of up to 100 jobs ({@link NativeProducer}); direct delivery hands its
 * jobs to a Durable Object that keeps its producer connected across requests
 * (src/kafka/producer-shards.ts), or, without that binding, connects per request.
 */
import net from 'node:net'
import tls from 'node:tls'
import {
  type ISocketFactory,
  Kafka,
  logLevel,
  type Message,
  type Producer,
  type SASLOptions,
} from 'kafkajs'
import type { NativeKafkaSettings } from '../config.ts'
import { TIMED_OUT, withTimeout } from '../lib/timeout.ts'
import type {
  Deadline,
  JobProducer,
  KafkaMessage,
  ProduceFailureReason,
  ProduceResult,
} from './producer.ts'
import {
  failAll,
  kafkaCodeName,
  kafkaCodeReason,
  type ProduceFailure,
  produceByTopic,
} from './rest.ts'
import { type RequestSize, SizeLimitedProducer, utf8Length } from './split.ts'

/** The client id brokers see (quotas, logs). */
export const NATIVE_CLIENT_ID = 'weave-calls-score'

/**
 * The longest one seed's connect (TCP, TLS, ApiVersions, SASL) may take, within the produce
 * deadline: a broker that has not answered in this time is as good as down, and the rest of the
 * budget is left to the next seed, then to the queue.
 */
const CONNECT_TIMEOUT_MS = 1_500

/** How long closing the connections may hold the invocation once the answer is known. */
const DISCONNECT_TIMEOUT_MS = 1_000

/** How long before the caller's deadline the last seed's connect attempt gives up. */
const LAST_SEED_MARGIN_MS = 20

/**
 * How a produce call's records grow, in bytes of Kafka's record batch (v2): the batch header
 * (61 bytes) and the topic's entry in the request, then per record its attributes, its
 * varints (length, timestamp and offset deltas, key and value lengths, header count: at most
 * 5 bytes each here) and its key, value and header bytes. An upper bound, so a produce call whose
 * bound is under `KAFKA_REST_MAX_REQUEST_BYTES` stays under the broker's `message.max.bytes`
 * (1,048,588 by default) and the client's `max.request.size` (1 MiB): all jobs of a request share
 * a key, so they land in one partition's batch.
 */
export const nativeRequestSize: RequestSize = {
  base: 61 + 128,
  separator: 0,
  record: (m) => {
    let bytes = 1 + 6 * 5 + utf8Length(m.key) + utf8Length(m.value)
    for (const h of m.headers ?? []) bytes += 10 + utf8Length(h.key) + utf8Length(h.value)
    return bytes
  },
}

/** Sockets this isolate opened to brokers, for the request log and the benchmark. */
let opened = 0

/** How many broker connections this isolate has opened so far. */
export const nativeConnectionsOpened = () => opened

/** Producers connected by {@link connectNative}, per bootstrap list as configured. */
const connects = new Map<string, number>()

/** How many producers this isolate has connected for this bootstrap list (`KAFKA_BROKERS`). */
export const nativeConnects = (brokers: readonly string[]) => connects.get(brokers.join(',')) ?? 0

/** Sends (kafkajs `send` calls, a produce request per leader) this isolate has made. */
let sends = 0

/** How many sends this isolate has made so far (coalescing shows as fewer sends than calls). */
export const nativeSends = () => sends

/**
 * What a failed TLS connection says in the log, naming the cause where the runtime tells it.
 * workerd reports every refused handshake (an untrusted CA, another host name, no TLS on the
 * port) as one opaque "proxy request failed, cannot connect to the specified address" (the
 * reason goes to its own stderr only), while a refused TCP connect still reads ECONNREFUSED:
 * on a TLS socket that message means the handshake failed. Node's `tls` names the cause.
 */
export function tlsFailure(message: string, code?: string): string | undefined {
  const said = `${code ?? ''} ${message}`
  if (
    /UnknownIssuer|UNABLE_TO_GET_ISSUER|unable to get local issuer|SELF_SIGNED|self.signed|unknown ca/i.test(
      said,
    )
  ) {
    return `TLS: unknown issuer (certificate not signed by a trusted CA): ${message}`
  }
  if (
    /NotValidForName|ALTNAME|Hostname\/IP does not match|not in the cert's altnames/i.test(said)
  ) {
    return `TLS: wrong host name (certificate not valid for the broker's address): ${message}`
  }
  if (
    /proxy request failed, cannot connect|handshake|SSL routines|wrong version number/i.test(said)
  ) {
    return `TLS: handshake failed (the runtime does not say why: a certificate from a CA it does not trust, one for another host name, or no TLS on the port): ${message}`
  }
  return undefined
}

/**
 * kafkajs's own socket factory (plain `node:net`, or `node:tls` with SNI for a host name),
 * counting what it opens. No TLS option beyond kafkajs's: workerd's `node:tls` refuses
 * `rejectUnauthorized: false` and friends, so certificates are always verified. A TLS failure's
 * message is rewritten before kafkajs reads it ({@link tlsFailure}): kafkajs keeps only the
 * message.
 */
const socketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  opened++
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }) }, onConnect)
    : net.connect({ host, port }, onConnect)
  if (ssl) {
    // Registered before kafkajs's own listener, so it runs first.
    socket.on('error', (e: Error & { code?: string }) => {
      const said = tlsFailure(e.message, e.code)
      if (said) e.message = said
    })
  }
  socket.setKeepAlive(true, 60_000)
  return socket as ReturnType<ISocketFactory>
}

const saslOf = (settings: Pick<NativeKafkaSettings, 'sasl'>): SASLOptions | undefined =>
  settings.sasl && {
    mechanism: settings.sasl.mechanism,
    username: settings.sasl.username,
    password: settings.sasl.password,
  }

/** What kafkajs's errors carry that the mapping reads. */
type KafkaJsError = Error & {
  type?: string
  code?: number | string
  retriable?: boolean
  cause?: unknown
  originalError?: unknown
}

/** The innermost error of kafkajs's wrappers (retries exhausted, non-retriable, ...). */
function rootOf(error: unknown): KafkaJsError {
  let e = error as KafkaJsError
  for (let depth = 0; depth < 5; depth++) {
    const inner = e?.originalError ?? e?.cause
    if (!(inner instanceof Error)) break
    e = inner as KafkaJsError
  }
  return e
}

/**
 * Maps a kafkajs failure onto the port's reasons:
 * - SASL refused (wrong credentials, mechanism not enabled): `unauthorized`, an operator alarm;
 * - a Kafka error code: as the REST dialects read it inside an answer (authorization codes
 *   `unauthorized`, retriable codes `unavailable`, the rest, MESSAGE_TOO_LARGE among them,
 *   `rejected`);
 * - no connection (refused, reset, DNS, connect timeout, TLS handshake): `unreachable`, nothing
 *   was sent, except when a connection carrying a write drops (a leader killed): then the
 *   records may be on the partition's next leader, which no one can tell (docs/delivery.md);
 * - a request sent and not answered in time: `timeout`, the records may still land;
 * - anything else kafkajs reports (no broker for a partition, metadata not loaded):
 *   `unavailable`.
 */
export function nativeFailureReason(error: unknown): {
  reason: ProduceFailureReason
  detail: string
} {
  const root = rootOf(error)
  const outer = error as KafkaJsError
  const name = root?.name ?? 'Error'
  const message = root?.message ?? String(error)
  const detail =
    outer !== root && outer?.name ? `${outer.name}: ${name}: ${message}` : `${name}: ${message}`
  if (name === 'KafkaJSSASLAuthenticationError') return { reason: 'unauthorized', detail }
  if (name === 'KafkaJSProtocolError' && typeof root.code === 'number') {
    return {
      reason: kafkaCodeReason(root.code),
      detail: `Kafka error ${kafkaCodeName(root.code)}${root.type ? ` ${root.type}` : ''}: ${message}`,
    }
  }
  if (name === 'KafkaJSRequestTimeoutError') return { reason: 'timeout', detail }
  if (name === 'KafkaJSConnectionError' || name === 'KafkaJSConnectionClosedError') {
    return { reason: 'unreachable', detail }
  }
  return { reason: 'unavailable', detail }
}

/** One connected producer's sends, as a port the size layer can split over. */
class ConnectedProducer implements JobProducer {
  readonly #producer: Producer

  constructor(producer: Producer) {
    this.#producer = producer
  }

  produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    return produceByTopic(messages, (topic, batch) => this.#send(topic, batch, deadline))
  }

  /**
   * One send; a refused one of several records is halved and sent again, down to the records
   * refused for themselves. The broker refuses a partition's whole batch for one record over the
   * topic's `max.message.bytes` (a limit we cannot know beforehand), and that record must not
   * take the jobs sent beside it to the dead letters with it.
   */
  async #send(
    topic: string,
    batch: readonly KafkaMessage[],
    deadline: Deadline,
  ): Promise<ProduceResult> {
    const remaining = deadline.at - Date.now()
    if (remaining <= 0) return failAll(batch.length, 'timeout', 'deadline passed before sending')
    try {
      sends++
      await this.#producer.send({
        topic,
        // acks=all: every in-sync replica has the record before it counts as acknowledged.
        acks: -1,
        // The broker's own wait for the replicas, within our deadline.
        timeout: remaining,
        messages: batch.map(
          (m): Message => ({
            key: m.key,
            value: m.value,
            headers: Object.fromEntries((m.headers ?? []).map((h) => [h.key, h.value])),
          }),
        ),
      })
      return { ok: true }
    } catch (e) {
      // A send is all or nothing in kafkajs: records that did land on another broker are
      // produced again by a retry (at least once; the weave-job-id header tells them apart).
      const { reason, detail } = nativeFailureReason(e)
      if (reason !== 'rejected' || batch.length === 1) return failAll(batch.length, reason, detail)
      const half = Math.ceil(batch.length / 2)
      const parts = [batch.slice(0, half), batch.slice(half)]
      const results: ProduceResult[] = []
      for (const part of parts) results.push(await this.#send(topic, part, deadline))
      const failures = results.filter((r): r is ProduceFailure => !r.ok)
      const worst = failures.find((f) => f.reason !== 'rejected') ?? failures[0]
      if (!worst) return { ok: true }
      return {
        ...worst,
        acknowledged: results.flatMap((r, i) =>
          r.ok ? (parts[i] ?? []).map(() => true) : [...r.acknowledged],
        ),
      }
    }
  }
}

/** The connection settings a producer is built from (what a producer shard receives by RPC). */
export type NativeConnection = Pick<NativeKafkaSettings, 'brokers' | 'tls' | 'sasl'>

/**
 * A kafkajs producer for these settings, not yet connected. Our policy (produceWithPolicy, the
 * queue's redelivery) is the only one that retries, so kafkajs's own retries are off; its
 * connect and authentication timeouts (`connectMs`, ApiVersions included) and its request
 * timeout (`requestMs`, produce and metadata) are the ones given, never its defaults.
 */
export function createNativeProducer(
  connection: NativeConnection,
  timeouts: { connectMs: number; requestMs: number },
): Producer {
  const sasl = saslOf(connection)
  const kafka = new Kafka({
    clientId: NATIVE_CLIENT_ID,
    brokers: connection.brokers,
    ssl: connection.tls,
    ...(sasl ? { sasl } : {}),
    socketFactory,
    connectionTimeout: Math.max(1, Math.min(CONNECT_TIMEOUT_MS, timeouts.connectMs)),
    authenticationTimeout: Math.max(1, timeouts.connectMs),
    requestTimeout: timeouts.requestMs,
    enforceRequestTimeout: true,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  })
  return kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: false,
    retry: { retries: 0 },
    // A producer shard lives for minutes: partition leaders it has not heard of are found within
    // a minute (and at once after a failed send, which drops the shard's producer).
    metadataMaxAge: 60_000,
  })
}

/** How long a seed that could not be reached goes to the end of the list. */
const SEED_PENALTY_MS = 30_000

/**
 * Seeds that failed lately (per isolate): address -> until when it is tried last. Plain data,
 * no I/O object, so module state is fine.
 */
const seedPenalties = new Map<string, number>()

/**
 * The order in which to try the bootstrap brokers: shuffled, so no listed broker carries every
 * new connection, with the ones that failed in the last half minute last. kafkajs starts at the
 * first listed seed every time and, with its retries off, never tries another.
 */
export function seedOrder(brokers: readonly string[], now: number = Date.now()): string[] {
  const order = [...brokers]
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j] as string, order[i] as string]
  }
  const penalised = (seed: string) => (seedPenalties.get(seed) ?? 0) > now
  return [...order.filter((s) => !penalised(s)), ...order.filter(penalised)]
}

/** A producer connected to one seed, or why none could be. */
export type Connected = { ok: true; producer: Producer } | { ok: false; error: unknown }

/**
 * Connects a producer, trying the bootstrap brokers in {@link seedOrder} within `deadlineAt`:
 * a seed that refuses, resets, or accepts and then never answers (its ApiVersions and SASL are
 * bounded by the connect timeout) costs at most its share of the budget, and the next one is
 * tried. A seed never gets more than half of what is left while another remains, so a dead
 * first seed leaves time for a live second. Refused credentials end the attempt: every seed
 * would say the same. Once connected, the seed is only where metadata comes from; the
 * partition leaders it names get connections of their own.
 */
export async function connectNative(
  connection: NativeConnection,
  deadlineAt: number,
  requestMs: number,
): Promise<Connected> {
  const seeds = seedOrder(connection.brokers)
  let error: unknown = new Error('deadline passed before connecting')
  for (const [i, seed] of seeds.entries()) {
    const remaining = deadlineAt - Date.now()
    if (remaining <= 0) break
    // The last seed's attempt ends a moment before the caller's deadline, so that its failure
    // (and the seed's penalty) is settled before the caller answers, not in a race with it.
    const share =
      i < seeds.length - 1
        ? Math.min(CONNECT_TIMEOUT_MS, remaining / 2)
        : remaining - LAST_SEED_MARGIN_MS
    const budget = Math.max(1, Math.floor(share))
    const producer = createNativeProducer(
      { ...connection, brokers: [seed, ...seeds.filter((s) => s !== seed)] },
      { connectMs: budget, requestMs },
    )
    const failed = await withTimeout(
      producer.connect().then(
        () => undefined,
        (e: unknown) => e ?? new Error('connect failed'),
      ),
      budget,
    )
    if (failed === undefined) {
      seedPenalties.delete(seed)
      const list = connection.brokers.join(',')
      connects.set(list, (connects.get(list) ?? 0) + 1)
      return { ok: true, producer }
    }
    void closeNativeProducer(producer)
    // A seed that accepts the socket and then answers nothing (its ApiVersions or metadata
    // request timing out) is as unreachable as one that never accepts: no record was sent.
    error =
      failed === TIMED_OUT || nativeFailureReason(failed).reason === 'timeout'
        ? Object.assign(new Error(`Connection timeout: ${seed} did not answer in ${budget} ms`), {
            name: 'KafkaJSConnectionError',
          })
        : failed
    const { reason } = nativeFailureReason(error)
    if (reason === 'unauthorized' || reason === 'rejected') break
    seedPenalties.set(seed, Date.now() + SEED_PENALTY_MS)
  }
  return { ok: false, error }
}

/** The records of one produce call over a connected producer, split under `maxBytes`. */
export const sendOver = (
  producer: Producer,
  messages: readonly KafkaMessage[],
  deadline: Deadline,
  maxBytes: number,
): Promise<ProduceResult> =>
  new SizeLimitedProducer(new ConnectedProducer(producer), nativeRequestSize, maxBytes).produce(
    messages,
    deadline,
  )

/** Closes a producer's connections without holding the caller longer than a second. */
export const closeNativeProducer = (producer: Producer): Promise<unknown> =>
  withTimeout(producer.disconnect(), DISCONNECT_TIMEOUT_MS).catch(() => {})

/**
 * The native adapter with a connection per call (the queue consumer's, and direct delivery's
 * when no producer shards are bound): a client with the call's deadline as its only clock, one
 * connection set, the records in produce calls of at most `maxBytes` (see
 * {@link nativeRequestSize}), then the connections closed. Never throws.
 */
export class NativeProducer implements JobProducer {
  readonly #settings: NativeConnection
  readonly #maxBytes: number

  constructor(settings: NativeConnection, maxBytes: number) {
    this.#settings = settings
    this.#maxBytes = maxBytes
  }

  async produce(messages: readonly KafkaMessage[], deadline: Deadline): Promise<ProduceResult> {
    if (messages.length === 0) return { ok: true }
    const remaining = deadline.at - Date.now()
    if (remaining <= 0) return failAll(messages.length, 'timeout', 'deadline passed before sending')
    let producer: Producer | undefined
    const run = async (): Promise<ProduceResult> => {
      const connected = await connectNative(this.#settings, deadline.at, remaining)
      if (!connected.ok) {
        const { reason, detail } = nativeFailureReason(connected.error)
        return failAll(messages.length, reason, `connect: ${detail}`)
      }
      producer = connected.producer
      return sendOver(producer, messages, deadline, this.#maxBytes)
    }
    const running = run()
    try {
      const result = await withTimeout(running, remaining)
      if (result !== TIMED_OUT) return result
      // Still connecting at the deadline: nothing was sent, so no write's outcome is unknown.
      return producer
        ? failAll(messages.length, 'timeout', 'no acknowledgement before the deadline')
        : failAll(
            messages.length,
            'unreachable',
            'connect: no broker connected before the deadline',
          )
    } catch (e) {
      const { reason, detail } = nativeFailureReason(e)
      return failAll(messages.length, reason, detail)
    } finally {
      if (producer) await closeNativeProducer(producer)
      // Still connecting when the deadline came: close whatever that attempt ends up holding.
      else void running.then(() => producer && closeNativeProducer(producer)).catch(() => {})
    }
  }
}
