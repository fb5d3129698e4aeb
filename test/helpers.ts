import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  waitOnExecutionContext,
} from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { inject, vi } from 'vitest'
import { hashApiKey } from '../src/auth/keys.ts'
import worker from '../src/index.ts'
import type { QueuedJob } from '../src/queue/jobs-queue.ts'

/** URL of the real Kafka REST sink the global setup started. */
export const sinkUrl = inject('sinkUrl')

/** A topic of its own per test, so tests sharing the sink never see each other's messages. */
export const uniqueTopic = (label = 't') => `weave.score_calls.${label}.${crypto.randomUUID()}`

/** Stores a fresh random API key with the given grants; returns the raw key. */
export async function createKey(
  projects: string[] = ['acme/support-bot'],
  wbUserId = 'VXNlcjoxMjM0',
): Promise<string> {
  const key = `test-${crypto.randomUUID()}`
  await env.API_KEYS.put(await hashApiKey(key), JSON.stringify({ wb_user_id: wbUserId, projects }))
  return key
}

/** `Authorization` header value for HTTP Basic. */
export const basic = (password: string, username = 'api') =>
  `Basic ${btoa(`${username}:${password}`)}`

/** A valid request body. */
export const validBody = (over: Record<string, unknown> = {}) => ({
  project_id: 'acme/support-bot',
  call_ids: ['0190a1b2-0000-7000-8000-000000000001'],
  scorer_refs: ['weave:///acme/support-bot/object/Toxicity:9f2c'],
  ...over,
})

type Call = {
  key?: string
  /** Raw body; objects are JSON-encoded. */
  body?: unknown
  headers?: Record<string, string>
  /** Content-Type to send; null sends none at all. */
  contentType?: string | null
  method?: string
  path?: string
  /** Binding overrides (vars, secrets, fake bindings) for this call. */
  vars?: Partial<Record<keyof Env, unknown>>
}

/** Calls the worker's fetch handler in workerd with the test bindings plus overrides. */
export async function call({
  key,
  body,
  headers = {},
  contentType = 'application/json',
  method = 'POST',
  path = '/calls/score',
  vars = {},
}: Call) {
  const all: Record<string, string> = { ...headers }
  if (contentType !== null) all['content-type'] = contentType
  if (key !== undefined) all.authorization = basic(key)
  const init: RequestInit = { method, headers: all }
  if (body !== undefined) {
    const text =
      typeof body === 'string' ? body : body instanceof Uint8Array ? body : JSON.stringify(body)
    // Bytes, so that the runtime adds no Content-Type of its own (a string body gets text/plain).
    init.body = typeof text === 'string' ? new TextEncoder().encode(text) : text
  }
  return fetchWorker(new Request(`https://worker.test${path}`, init), vars)
}

/**
 * A JSON POST to /calls/score whose body arrives as a stream of `chunk`-byte pieces, so the
 * request carries no Content-Length (what a client streaming its body sends).
 */
export function streamedRequest(body: Uint8Array, key: string, chunk: number): Request {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < body.length; i += chunk) controller.enqueue(body.slice(i, i + chunk))
      controller.close()
    },
  })
  const request = new Request('https://worker.test/calls/score', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basic(key) },
    body: stream,
    duplex: 'half',
  } as RequestInit)
  if (request.headers.has('content-length')) throw new Error('a streamed body got a length')
  return request
}

/** One request through the worker's fetch handler, with extra vars over the test env. */
export async function fetchWorker(
  request: Request,
  vars: Partial<Record<keyof Env, unknown>> | Record<string, string> = {},
) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(request, { ...env, ...vars } as Env, ctx)
  await waitOnExecutionContext(ctx)
  return res
}

/** Response body parsed as JSON, with status, for compact assertions. */
export async function answer(res: Response) {
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : (JSON.parse(text) as unknown) }
}

/** A message as the sink stored it. */
export type SinkMessage = {
  topic: string
  partition: number
  offset: number
  key: string | null
  value: string
  headers: { key: string; value: string }[]
}

/** Messages the sink holds for a topic, in arrival order. */
export async function sinkMessages(topic: string): Promise<SinkMessage[]> {
  const res = await fetch(`${sinkUrl}/__sink/messages?topic=${encodeURIComponent(topic)}`)
  return ((await res.json()) as { messages: SinkMessage[] }).messages
}

/** Installs a sink fault limited to one topic (so parallel test files are unaffected). */
export async function sinkFault(topic: string, fault: Record<string, unknown>) {
  const res = await fetch(`${sinkUrl}/__sink/fault`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...fault, topic }),
  })
  if (!res.ok) throw new Error(`sink refused the fault: ${res.status}`)
}

/** Makes the sink a throttled endpoint for one topic (so parallel test files are unaffected). */
export async function sinkThrottle(topic: string, settings: Record<string, unknown>) {
  const res = await fetch(`${sinkUrl}/__sink/throttle`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...settings, topic }),
  })
  if (!res.ok) throw new Error(`sink refused the throttle: ${res.status} ${await res.text()}`)
}

/** Removes one topic's sink throttle. */
export const sinkUnthrottle = (topic: string) =>
  fetch(`${sinkUrl}/__sink/throttle?topic=${encodeURIComponent(topic)}`, { method: 'DELETE' })

/** The sink's counters for one topic. */
export async function sinkStats(topic: string) {
  const res = await fetch(`${sinkUrl}/__sink/stats?topic=${encodeURIComponent(topic)}`)
  return (await res.json()) as { produceRequests: number; throttled: number; tooLarge: number }
}

/** Produce requests the sink received for a topic (each attempt counts once). */
export async function sinkProduceCount(topic: string): Promise<number> {
  const res = await fetch(`${sinkUrl}/__sink/stats?topic=${encodeURIComponent(topic)}`)
  return ((await res.json()) as { produceRequests: number }).produceRequests
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until the sink holds `count` messages for `topic`, then a moment more to catch extras. */
export async function delivered(topic: string, count: number): Promise<SinkMessage[]> {
  await eventually(async () => ((await sinkMessages(topic)).length >= count ? true : undefined))
  await new Promise((r) => setTimeout(r, 300))
  return sinkMessages(topic)
}

/** The value of a message's job id header. */
export const jobIdOf = (m: SinkMessage) => m.headers.find((h) => h.key === 'weave-job-id')?.value

/** Captures the JSON log lines written while `run` executes. */
export async function captureLogs(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = []
  const log = console.log
  const error = console.error
  console.log = (line: string) => lines.push(line)
  console.error = (line: string) => lines.push(line)
  try {
    await run()
  } finally {
    console.log = log
    console.error = error
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** One way of reaching the sink: a Kafka REST dialect (and v2 flavor) with the vars selecting it. */
export type DialectTarget = {
  name: string
  dialect: 'upstash' | 'confluent-v3' | 'kafka-rest-v2'
  /** The v2 implementation the sink imitates (its `/flavor/<name>` path prefix). */
  flavor?: 'confluent' | 'redpanda' | 'karapace'
  vars: Record<string, string>
}

const restCredentials = { KAFKA_REST_USERNAME: 'dev', KAFKA_REST_PASSWORD: 'dev-password' }

/** Every dialect the worker speaks, each pointed at the shared sink like a real deployment. */
export const DIALECT_TARGETS: readonly DialectTarget[] = [
  { name: 'upstash', dialect: 'upstash', vars: { KAFKA_REST_DIALECT: 'upstash' } },
  {
    name: 'confluent-v3 (REST Proxy, /v3)',
    dialect: 'confluent-v3',
    vars: {
      KAFKA_REST_DIALECT: 'confluent-v3',
      KAFKA_REST_URL: sinkUrl,
      KAFKA_CLUSTER_ID: 'local-cluster',
      ...restCredentials,
    },
  },
  {
    name: 'confluent-v3 (Cloud, /kafka/v3)',
    dialect: 'confluent-v3',
    vars: {
      KAFKA_REST_DIALECT: 'confluent-v3',
      KAFKA_REST_URL: `${sinkUrl}/kafka`,
      KAFKA_CLUSTER_ID: 'local-cluster',
      ...restCredentials,
    },
  },
  ...(['confluent', 'redpanda', 'karapace'] as const).map(
    (flavor): DialectTarget => ({
      name: `kafka-rest-v2 (${flavor})`,
      dialect: 'kafka-rest-v2',
      flavor,
      vars: {
        KAFKA_REST_DIALECT: 'kafka-rest-v2',
        KAFKA_REST_URL: `${sinkUrl}/flavor/${flavor}`,
        ...restCredentials,
      },
    }),
  ),
]

/** The 503 a client gets when neither Kafka nor the fallback queue took its jobs. */
export const KAFKA_UNAVAILABLE = {
  status: 503,
  body: { detail: 'Kafka is unavailable: the scoring jobs were not accepted. Retry later.' },
}

/** One request for `callIds` to `topic`, timed, with the request's JSON log line. */
export async function scoreOnTopic(
  topic: string,
  callIds: string[],
  vars: Record<string, unknown> = {},
) {
  const key = await createKey()
  let res: Response | undefined
  const started = Date.now()
  const logs = await captureLogs(async () => {
    res = await call({
      key,
      body: validBody({ call_ids: callIds }),
      vars: { KAFKA_TOPIC: topic, ...vars },
    })
  })
  const elapsed = Date.now() - started
  if (!res) throw new Error('no response')
  const line = logs.find((l) => l.msg === 'request') ?? {}
  return { res, elapsed, line }
}

/**
 * One request on a topic of its own (with a sink fault limited to it, if given), timed, with
 * the request's JSON log line.
 */
export async function scoreOnFreshTopic({
  fault,
  callIds,
  vars = {},
}: {
  fault?: Record<string, unknown> | undefined
  callIds: string[]
  vars?: Record<string, unknown>
}) {
  const topic = uniqueTopic('fault')
  if (fault) await sinkFault(topic, fault)
  return { topic, ...(await scoreOnTopic(topic, callIds, vars)) }
}

/** Vars selecting the internal id form (docs/internal-ids.md). */
export const INTERNAL_FORM = { KAFKA_ID_FORM: 'internal' } as const

/** Lists projects in the real (Miniflare) `PROJECT_IDS` directory: external id -> internal id. */
export async function putProjects(directory: Record<string, string>): Promise<void> {
  await Promise.all(Object.entries(directory).map(([p, id]) => env.PROJECT_IDS.put(p, id)))
}

/** A queued job as the fallback queue holds it; `padding` lengthens its call id. */
export const queuedJob = (topic: string, n: number, padding = 0): QueuedJob => ({
  topic,
  key: 'acme/support-bot',
  value: `{"project_id":"acme/support-bot","call_ids":["q${n}${'x'.repeat(padding)}"],"scorer_refs":[],"wb_user_id":"u"}`,
  headers: [{ key: 'weave-job-id', value: `job-${n}` }],
})

/**
 * Runs the worker's queue handler on one batch of `bodies`, with binding overrides: its acks and
 * retries, each message's retry delay, the log lines, and `retryAll` as a spy.
 */
export async function consumeBatch(
  bodies: unknown[],
  {
    attempts = 1,
    vars = {},
    queue = 'weave-score-calls',
  }: { attempts?: number; vars?: Record<string, unknown>; queue?: string } = {},
) {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts, body })),
  )
  // getQueueResult does not report delays: record them on the way through.
  const delays: Record<string, number | undefined> = {}
  for (const message of batch.messages) {
    const retry = message.retry.bind(message)
    vi.spyOn(message, 'retry').mockImplementation((options) => {
      delays[message.id] = options?.delaySeconds
      retry(options)
    })
  }
  const retryAll = vi.spyOn(batch, 'retryAll')
  const ctx = createExecutionContext()
  const logs = await captureLogs(() => worker.queue(batch, { ...env, ...vars } as Env))
  return { result: await getQueueResult(batch, ctx), logs, delays, retryAll }
}

/**
 * The headers Weave's Python SDK sends on `POST /calls/score` through its Stainless-generated
 * client (weave/vendor/weave_server_sdk: `BaseClient.default_headers`, `platform_headers`,
 * `_build_headers`, `WeaveTrace.auth_headers`), with the attempt number and Weave's retry id.
 */
export const weaveSdkHeaders = (key: string, attempt = 0): Record<string, string> => ({
  Accept: 'application/json',
  'Content-Type': 'application/json',
  'User-Agent': 'WeaveTrace/Python 0.0.1',
  'X-Stainless-Lang': 'python',
  'X-Stainless-Package-Version': '0.0.1',
  'X-Stainless-OS': 'Linux',
  'X-Stainless-Arch': 'x64',
  'X-Stainless-Runtime': 'CPython',
  'X-Stainless-Runtime-Version': '3.12.8',
  Authorization: basic(key),
  'X-Stainless-Async': 'false',
  'X-Weave-Retry-Id': '6f1c2d0e-8a4b-4c1e-9d2f-3b5a7e9c1d42',
  'x-stainless-retry-count': String(attempt),
  'x-stainless-read-timeout': '60.0',
})

/**
 * A body as the SDK writes it: pydantic's dump of `CallsScoreReq` through `openapi_dumps`
 * (compact, `wb_user_id` present as null).
 */
export const weaveSdkBody = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ ...validBody(), wb_user_id: null, ...over }).replaceAll('": ', '":')

/** What Weave's Stainless client does with an answer (`_should_retry`, `_calculate_retry_timeout`, `_make_status_error`). */
export type SdkReaction = {
  retries: boolean
  /** Seconds it waits before the retry: exactly the server's, or its own backoff (0.5 s × 2ⁿ, at most 8 s, less up to 25 % jitter). */
  wait: number | 'backoff' | null
  /** The exception it raises once it stops retrying (none for a 2xx). */
  error: string | null
}

/** The Stainless client's reaction to one response, read from weave/vendor/weave_server_sdk/_base_client.py. */
export function sdkReaction(res: Response): SdkReaction {
  const status = res.status
  const errorOf = (): string | null => {
    if (status < 400) return null
    const byStatus: Record<number, string> = {
      400: 'BadRequestError',
      401: 'AuthenticationError',
      403: 'PermissionDeniedError',
      404: 'NotFoundError',
      409: 'ConflictError',
      422: 'UnprocessableEntityError',
      429: 'RateLimitError',
    }
    return byStatus[status] ?? (status >= 500 ? 'InternalServerError' : 'APIStatusError')
  }
  if (status < 400) return { retries: false, wait: null, error: null }
  const header = res.headers.get('x-should-retry')
  const retries =
    header === 'true'
      ? true
      : header === 'false'
        ? false
        : status === 408 || status === 409 || status === 429 || status >= 500
  if (!retries) return { retries, wait: null, error: errorOf() }
  let after: number | undefined
  // Python's float(): surrounding blanks allowed, nothing else.
  const float = (raw: string | null) =>
    raw === null || raw.trim() === '' ? Number.NaN : Number(raw)
  const ms = float(res.headers.get('retry-after-ms'))
  if (Number.isFinite(ms)) after = ms / 1000
  else {
    const raw = res.headers.get('retry-after')
    const seconds = float(raw)
    if (Number.isFinite(seconds)) after = seconds
    else if (raw !== null && !Number.isNaN(Date.parse(raw)))
      after = (Date.parse(raw) - Date.now()) / 1000
  }
  const wait = after !== undefined && after > 0 && after <= 60 ? after : 'backoff'
  return { retries, wait, error: errorOf() }
}
