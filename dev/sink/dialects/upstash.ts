/**
 * Upstash Kafka REST, as `@upstash/kafka` 1.3.5 speaks it. Upstash shut the service down
 * (announced 2024-09-06), so behaviour comes from what survives:
 * - upstash/docs kafka/rest/restintro.mdx, restproducer.mdx, restconsumer.mdx (routes, shapes,
 *   `{error, status}` error JSON, consumer headers and defaults);
 * - upstash/kafka-js pkg/producer.ts, consumer.ts, http.ts and produce.test.ts @2d7cb81 (what
 *   the client sends and expects).
 * Error message texts are not documented; the ones here are plausible stand-ins.
 */
import { reason } from '../faults.ts'
import type {
  DialectContext,
  DialectModule,
  PlannedRecord,
  ProduceOutcome,
  Route,
  SinkReply,
  SinkRequest,
} from '../http.ts'
import { invalidPartition, json, storeRecords } from '../http.ts'
import type { StoredMessage } from '../types.ts'

const error = (status: number, message: string): SinkReply =>
  json(status, { error: message, status })

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** Parses the body as JSON; an empty body reads as `fallback`. */
function parseBody(req: SinkRequest, fallback: unknown): { ok: true; value: unknown } | SinkReply {
  const text = req.body.toString('utf8').trim()
  if (text === '') return { ok: true, value: fallback }
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (e) {
    return error(400, `Invalid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * Strings as the service read them: its JSON binding (Jackson on the JVM) coerces numbers and
 * booleans to strings but refuses objects and arrays.
 */
function asString(v: unknown): string | null {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return null
}

type Item = {
  topic: string
  value: string
  key: string | null
  partition: number | null
  timestamp: number | null
  headers: { key: string; value: string }[]
}

/** Validates one message of a produce body; a string is the refusal message. */
function readItem(raw: unknown, pathTopic: string | null, index: number): Item | string {
  const where = `message ${index}`
  if (!isRecord(raw)) return `${where}: a message must be a JSON object`
  const topic = pathTopic ?? raw.topic
  if (typeof topic !== 'string' || topic === '') return `${where}: topic is required`
  const value = asString(raw.value)
  if (value === null) return `${where}: value is required and must be a string`
  let key: string | null = null
  if (raw.key !== undefined && raw.key !== null) {
    key = asString(raw.key)
    if (key === null) return `${where}: key must be a string`
  }
  let partition: number | null = null
  if (raw.partition !== undefined && raw.partition !== null) {
    if (typeof raw.partition !== 'number' || !Number.isInteger(raw.partition)) {
      return `${where}: partition must be an integer`
    }
    partition = raw.partition
  }
  let timestamp: number | null = null
  if (raw.timestamp !== undefined && raw.timestamp !== null) {
    if (typeof raw.timestamp !== 'number' || !Number.isInteger(raw.timestamp)) {
      return `${where}: timestamp must be an integer`
    }
    timestamp = raw.timestamp
  }
  const headers: Item['headers'] = []
  if (raw.headers !== undefined && raw.headers !== null) {
    if (!Array.isArray(raw.headers)) return `${where}: headers must be an array`
    for (const h of raw.headers) {
      const hk = isRecord(h) ? asString(h.key) : null
      const hv = isRecord(h) ? asString(h.value) : null
      if (hk === null || hv === null) return `${where}: each header needs a string key and value`
      headers.push({ key: hk, value: hv })
    }
  }
  return { topic, value, key, partition, timestamp, headers }
}

/** Topics named by a produce request, read leniently (for stats and topic-scoped faults). */
function topicsOf(req: SinkRequest, pathTopic: string | null): string[] {
  if (pathTopic !== null) return [pathTopic]
  try {
    const body: unknown = JSON.parse(req.body.toString('utf8'))
    const items = Array.isArray(body) ? body : [body]
    const names = items.map((i) => (isRecord(i) ? i.topic : undefined))
    return [...new Set(names.filter((t): t is string => typeof t === 'string'))]
  } catch {
    return []
  }
}

/** Produces the items (all validated first: a bad message refuses the whole request). */
function produce(
  ctx: DialectContext,
  items: readonly Item[],
  single: 'object' | 'array',
): ProduceOutcome {
  const planned: PlannedRecord[] = []
  for (const item of items) {
    // Not documented; Upstash only let clients write to topics created in its console.
    if (!ctx.store.topicExists(item.topic)) {
      return refuse(error(400, `Topic ${item.topic} does not exist`))
    }
    const count = ctx.store.partitionCount(item.topic)
    const keyBytes = item.key === null ? null : Buffer.from(item.key, 'utf8')
    let partition: number
    if (item.partition !== null) {
      if (item.partition < 0 || item.partition >= count) {
        return refuse(error(400, invalidPartition(item.partition, count)))
      }
      partition = item.partition
    } else {
      partition = ctx.store.choosePartition(item.topic, keyBytes)
    }
    planned.push({
      topic: item.topic,
      partition,
      record: {
        key: keyBytes,
        value: Buffer.from(item.value, 'utf8'),
        headers: item.headers.map((h) => ({ key: h.key, value: Buffer.from(h.value, 'utf8') })),
        ...(item.timestamp === null ? {} : { timestamp: item.timestamp }),
      },
    })
  }
  const stored = storeRecords(ctx, 'upstash', planned)
  // A partial fault answers 200 with an `{error, status}` entry in each failed message's slot, so
  // positions still say which message is which (the worker treats a shorter array as ambiguous).
  const metadata = stored.map((m) =>
    m === null
      ? { error: 'message was not acknowledged', status: 500 }
      : { topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp },
  )
  const failed = stored.filter((m) => m === null).length
  // GET /produce/$TOPIC/$MESSAGE answers one Metadata object (restproducer.mdx). POST answers
  // an array even for a single-object body: @upstash/kafka's produce() sends one object and
  // returns `res[0]`, and its produce.test.ts ran that against the live service.
  const body = single === 'object' ? (metadata[0] ?? []) : metadata
  return { reply: json(200, body), stored: stored.length - failed, failed }
}

const refuse = (reply: SinkReply): ProduceOutcome => ({ reply, stored: 0, failed: 1 })

/** A stored message in the Fetch/Consume API's Message shape (restconsumer.mdx). */
function toMessage(m: StoredMessage) {
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
    // The docs show keyless messages with `"key": ""`.
    key: m.key ?? '',
    value: m.value ?? '',
    headers: m.headers.map((h) => ({ key: h.key, value: h.value ?? '' })),
  }
}

type TopicPartitionOffset = { topic: string; partition: number; offset: number }

const readTpo = (v: unknown): TopicPartitionOffset | null =>
  isRecord(v) &&
  typeof v.topic === 'string' &&
  Number.isInteger(v.partition) &&
  Number.isInteger(v.offset)
    ? { topic: v.topic, partition: v.partition as number, offset: v.offset as number }
    : null

/** Milliseconds a read may wait for data: the request's `timeout`, default 1000 (docs). */
function timeoutOf(v: unknown): number {
  return typeof v === 'number' && v >= 0 ? Math.min(v, 30_000) : 1000
}

/**
 * Long-polls like a Kafka fetch: answers as soon as `collect` finds messages, or with whatever
 * it finds when the timeout ends (or the sink resets/closes).
 */
async function poll(
  ctx: DialectContext,
  timeoutMs: number,
  collect: () => StoredMessage[],
): Promise<StoredMessage[]> {
  const deadline = Date.now() + timeoutMs
  let found = collect()
  while (found.length === 0 && Date.now() < deadline && !ctx.signal.aborted) {
    await ctx.store.waitForAppend(deadline - Date.now(), ctx.signal)
    found = collect()
  }
  return found
}

type Instance = {
  /** Next offset to read per `topic/partition`. */
  positions: Map<string, number>
  autoCommit: boolean
  reset: string
}
type Group = { committed: Map<string, number>; instances: Map<string, Instance> }

const tpKey = (topic: string, partition: number) => `${partition}:${topic}`

/**
 * Consumer groups of the Consume API. Each instance reads every partition of its topics (no
 * rebalancing between instances of a group); committed offsets are shared by the group.
 */
class Consumers {
  #groups = new Map<string, Group>()

  reset(): void {
    this.#groups.clear()
  }

  #group(name: string): Group {
    let g = this.#groups.get(name)
    if (!g) {
      g = { committed: new Map(), instances: new Map() }
      this.#groups.set(name, g)
    }
    return g
  }

  consume(
    ctx: DialectContext,
    req: SinkRequest,
    groupName: string,
    instanceName: string,
    topics: readonly string[],
    timeoutMs: number,
  ): Promise<SinkReply> {
    const group = this.#group(groupName)
    let inst = group.instances.get(instanceName)
    if (!inst) {
      // The headers configure the instance on its first request only (restconsumer.mdx).
      const header = (name: string) => {
        const v = req.headers[name.toLowerCase()]
        return typeof v === 'string' ? v.trim().toLowerCase() : undefined
      }
      inst = {
        positions: new Map(),
        autoCommit: header('Kafka-Enable-Auto-Commit') !== 'false',
        reset: header('Kafka-Auto-Offset-Reset') ?? 'latest',
      }
      if (!['earliest', 'latest', 'none'].includes(inst.reset)) {
        return Promise.resolve(error(400, `Invalid Kafka-Auto-Offset-Reset: ${inst.reset}`))
      }
      group.instances.set(instanceName, inst)
    }
    const instance = inst
    // A subscription to a topic that does not exist (yet) reads nothing.
    const existing = topics.filter((t) => t in ctx.store.topics())
    // Place every partition before reading, so `latest` means "from now on".
    const missing: string[] = []
    for (const t of existing) {
      for (let p = 0; p < ctx.store.partitionCount(t); p++) {
        const k = tpKey(t, p)
        if (instance.positions.has(k)) continue
        const committed = group.committed.get(k)
        if (committed !== undefined) instance.positions.set(k, committed)
        else if (instance.reset === 'earliest') instance.positions.set(k, 0)
        else if (instance.reset === 'latest') instance.positions.set(k, ctx.store.endOffset(t, p))
        else missing.push(`${t}-${p}`)
      }
    }
    if (missing.length > 0) {
      // Kafka's NoOffsetForPartitionException text.
      return Promise.resolve(
        error(400, `Undefined offset with no reset policy for partitions: [${missing.join(', ')}]`),
      )
    }
    const collect = () => {
      const out: StoredMessage[] = []
      for (const t of existing) {
        for (let p = 0; p < ctx.store.partitionCount(t); p++) {
          const from = instance.positions.get(tpKey(t, p)) ?? 0
          out.push(...ctx.store.read(t, p, from, 500 - out.length))
        }
      }
      return out
    }
    return poll(ctx, timeoutMs, collect).then((found) => {
      for (const m of found) instance.positions.set(tpKey(m.topic, m.partition), m.offset + 1)
      if (instance.autoCommit) for (const [k, v] of instance.positions) group.committed.set(k, v)
      return json(200, found.map(toMessage))
    })
  }

  commit(groupName: string, instanceName: string, body: unknown): SinkReply {
    const group = this.#group(groupName)
    const list = Array.isArray(body) ? body : body === null ? [] : [body]
    if (list.length === 0) {
      // An empty body commits what the instance consumed so far.
      const inst = group.instances.get(instanceName)
      for (const [k, v] of inst?.positions ?? []) group.committed.set(k, v)
    } else {
      for (const raw of list) {
        const tpo = readTpo(raw)
        if (!tpo) return error(400, 'commit expects {topic, partition, offset} objects')
        group.committed.set(tpKey(tpo.topic, tpo.partition), tpo.offset)
      }
    }
    return json(200, { result: 'Success', status: 200 })
  }

  committed(groupName: string, body: unknown): SinkReply {
    const group = this.#group(groupName)
    const list = Array.isArray(body) ? body : []
    const out = []
    for (const raw of list) {
      if (!isRecord(raw) || typeof raw.topic !== 'string' || !Number.isInteger(raw.partition)) {
        return error(400, 'committed expects {topic, partition} objects')
      }
      const partition = raw.partition as number
      const offset = group.committed.get(tpKey(raw.topic, partition)) ?? -1
      out.push({ topic: raw.topic, partition, offset })
    }
    return json(200, out)
  }

  remove(groupName: string, instanceName: string): SinkReply {
    this.#groups.get(groupName)?.instances.delete(instanceName)
    return json(200, { result: 'Success', status: 200 })
  }
}

/** Fetch API: messages from given offsets, no consumer group. */
async function fetchMessages(ctx: DialectContext, body: unknown): Promise<SinkReply> {
  if (!isRecord(body)) return error(400, 'fetch expects a JSON object')
  const wanted: TopicPartitionOffset[] = []
  if (body.topic !== undefined) {
    const tpo = readTpo(body)
    if (!tpo) return error(400, 'topic, partition and offset are required')
    wanted.push(tpo)
  }
  if (body.topicPartitionOffsets !== undefined) {
    if (!Array.isArray(body.topicPartitionOffsets)) {
      return error(400, 'topicPartitionOffsets must be an array')
    }
    for (const raw of body.topicPartitionOffsets) {
      const tpo = readTpo(raw)
      if (!tpo) return error(400, 'topicPartitionOffsets entries need topic, partition, offset')
      wanted.push(tpo)
    }
  }
  if (wanted.length === 0) return error(400, 'topic, partition and offset are required')
  const collect = () => wanted.flatMap((w) => ctx.store.read(w.topic, w.partition, w.offset))
  const found = await poll(ctx, timeoutOf(body.timeout), collect)
  return json(200, found.map(toMessage))
}

/** The Upstash dialect, with its own consumer-group state. */
export function createUpstash(): DialectModule {
  const consumers = new Consumers()

  const other = (run: (ctx: DialectContext) => Promise<SinkReply>): Route => ({
    kind: 'other',
    dialect: 'upstash',
    run,
  })

  const produceRoute = (
    req: SinkRequest,
    pathTopic: string | null,
    parse: () => { items: unknown[]; single: 'object' | 'array' } | SinkReply,
  ): Route => ({
    kind: 'produce',
    dialect: 'upstash',
    topics: topicsOf(req, pathTopic),
    run: async (ctx) => {
      const parsed = parse()
      if ('status' in parsed) return refuse(parsed)
      const items: Item[] = []
      for (const [i, raw] of parsed.items.entries()) {
        const item = readItem(raw, pathTopic, i)
        if (typeof item === 'string') return refuse(error(400, item))
        items.push(item)
      }
      if (items.length === 0) return refuse(error(400, 'no messages to produce'))
      return produce(ctx, items, parsed.single)
    },
  })

  const bodyItems = (req: SinkRequest) => () => {
    const body = parseBody(req, undefined)
    if ('status' in body) return body
    if (body.value === undefined) return error(400, 'request body is required')
    // A POST with one object is still answered with an array (see produce()).
    const items: unknown[] = Array.isArray(body.value) ? body.value : [body.value]
    return { items, single: 'array' as const }
  }

  return {
    dialect: 'upstash',

    route(req) {
      const [head, a, b, c, ...rest] = req.segments
      const method = req.method
      const readOrWrite = method === 'GET' || method === 'POST'
      if (head === 'produce' && readOrWrite && rest.length === 0 && c === undefined) {
        if (a === undefined) return produceRoute(req, null, bodyItems(req))
        if (b === undefined) return produceRoute(req, a, bodyItems(req))
        const key = req.query.get('key')
        return produceRoute(req, a, () => ({
          items: [{ value: b, ...(key === null ? {} : { key }) }],
          single: 'object',
        }))
      }
      if (head === 'fetch' && readOrWrite && a === undefined) {
        return other(async (ctx) => {
          const body = parseBody(req, {})
          return 'status' in body ? body : fetchMessages(ctx, body.value)
        })
      }
      if (head === 'consume' && readOrWrite && a && b && rest.length === 0) {
        return other(async (ctx) => {
          const body = parseBody(req, {})
          if ('status' in body) return body
          const v = isRecord(body.value) ? body.value : {}
          const topics = c !== undefined ? [c] : Array.isArray(v.topics) ? v.topics : [v.topic]
          if (topics.length === 0 || !topics.every((t) => typeof t === 'string')) {
            return error(400, 'topic or topics is required')
          }
          const q = req.query.get('timeout')
          const timeout = timeoutOf(q === null ? v.timeout : Number(q))
          return consumers.consume(ctx, req, a, b, topics as string[], timeout)
        })
      }
      if (head === 'commit' && readOrWrite && a && b && c === undefined) {
        return other(async () => {
          const body = parseBody(req, null)
          return 'status' in body ? body : consumers.commit(a, b, body.value)
        })
      }
      if (head === 'committed' && readOrWrite && a && b && c === undefined) {
        return other(async () => {
          const body = parseBody(req, [])
          return 'status' in body ? body : consumers.committed(a, body.value)
        })
      }
      if (head === 'delete-consumer' && (method === 'POST' || method === 'DELETE') && a && b) {
        return other(async () => consumers.remove(a, b))
      }
      if (head === 'topics' && method === 'GET' && a === undefined) {
        // Admin API: topic name to partition count.
        return other(async (ctx) => json(200, ctx.store.topics()))
      }
      return null
    },

    unauthorized: () => error(401, 'Unauthorized'),

    statusReply: (status) => error(status, reason(status)),

    reset: () => consumers.reset(),
  }
}
