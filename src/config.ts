import type { MiddlewareHandler } from 'hono'
import * as z from 'zod'
import { type DeliveryConfig, loadDeliveryConfig } from './delivery/config.ts'
import type { AppEnv } from './env.ts'
import { ApiError } from './errors.ts'
import { intSetting } from './lib/settings.ts'
import { type IdConfig, loadIdConfig } from './projects/config.ts'
import { loadQueueConfig, type QueueConfig } from './queue/config.ts'

/** Wrangler vars and secrets, checked once per isolate and env object. */
const ConfigSchema = z.object({
  KAFKA_TOPIC: z.string().min(1),
  KAFKA_PROJECT_BUCKETS: intSetting(1, 1_000_000),
  KAFKA_PRODUCE_TIMEOUT_MS: intSetting(1, 60_000),
  KAFKA_PRODUCE_RETRIES: intSetting(0, 10),
  RETRY_AFTER_SECONDS: intSetting(0, 86_400),
  MAX_CALL_IDS: intSetting(0, 1_000_000),
  MAX_SCORER_REFS: intSetting(0, 100_000),
  MAX_BODY_BYTES: intSetting(1, 100 * 1024 * 1024),
  AUTH_REALM: z.string().min(1),
  RATE_LIMIT_RETRY_AFTER_SECONDS: intSetting(1, 99_999),
})

/** The Kafka REST dialects the worker produces in (docs/kafka-rest-dialects.md). */
export const KAFKA_REST_DIALECTS = ['upstash', 'confluent-v3', 'kafka-rest-v2'] as const

/** One of {@link KAFKA_REST_DIALECTS}. */
export type KafkaRestDialect = (typeof KAFKA_REST_DIALECTS)[number]

/** Where and how to produce: the selected REST dialect, or the native transport, with its settings. */
export type KafkaSettings =
  | { dialect: 'upstash'; url: string; username: string; password: string }
  | { dialect: 'confluent-v3'; url: string; username: string; password: string; clusterId: string }
  | { dialect: 'kafka-rest-v2'; url: string; username: string; password: string }
  | NativeKafkaSettings

/** `KAFKA_TRANSPORT`: a Kafka REST dialect, or Kafka's own protocol (docs/native-kafka.md). */
export const KAFKA_TRANSPORTS = ['rest', 'native'] as const

/** `KAFKA_SASL_MECHANISM`'s values besides empty (no SASL). */
export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const

/** One of {@link KAFKA_SASL_MECHANISMS}. */
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number]

/** The native transport: brokers over TCP, TLS on by default, SASL from secrets. */
export type NativeKafkaSettings = {
  dialect: 'native'
  /** Bootstrap brokers, `host:port` each, in the order given. */
  brokers: string[]
  tls: boolean
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string } | undefined
  /**
   * The Durable Objects that keep producers connected across requests for direct delivery
   * (`KAFKA_PRODUCERS`, `KAFKA_PRODUCER_SHARDS` of them); absent without the binding, and then a
   * request connects for itself.
   */
  shards?: ProducerShards | undefined
}

/** The producer shards' namespace, how many of its objects requests spread over, and their timing. */
export type ProducerShards = {
  namespace: Env['KAFKA_PRODUCERS']
  count: number
  /** `KAFKA_PRODUCER_LINGER_MS`: how long an idle shard waits for more calls before sending. */
  lingerMs: number
  /** `KAFKA_PRODUCER_IDLE_SECONDS`: a shard's producer unused this long is disconnected. */
  idleSeconds: number
  /**
   * `KAFKA_LATE_ACK_WAIT_MS`: without a queue, how long past the produce deadline a request
   * waits for the outcome of its timed-out write before answering 503.
   */
  lateAckWaitMs: number
}

const needed = (dialect: KafkaRestDialect) => `required when KAFKA_REST_DIALECT is ${dialect}`
const restUrl = (dialect: KafkaRestDialect) =>
  z.url({ protocol: /^https?$/, error: `an http(s) URL is ${needed(dialect)}` })
const nonEmpty = (dialect: KafkaRestDialect) =>
  z.string({ error: needed(dialect) }).min(1, { error: needed(dialect) })

const DialectSchema = z.object({
  KAFKA_REST_DIALECT: z.preprocess(
    (v) => (v === undefined || v === '' ? 'upstash' : v),
    z.enum(KAFKA_REST_DIALECTS, { error: `must be one of ${KAFKA_REST_DIALECTS.join(', ')}` }),
  ),
})

const rest = (dialect: KafkaRestDialect) => ({
  KAFKA_REST_URL: restUrl(dialect),
  KAFKA_REST_USERNAME: nonEmpty(dialect),
  KAFKA_REST_PASSWORD: nonEmpty(dialect),
})

const KafkaSchemas = {
  upstash: z
    .object({
      UPSTASH_KAFKA_REST_URL: restUrl('upstash'),
      UPSTASH_KAFKA_REST_USERNAME: nonEmpty('upstash'),
      UPSTASH_KAFKA_REST_PASSWORD: nonEmpty('upstash'),
    })
    .transform((e) => ({
      dialect: 'upstash' as const,
      url: e.UPSTASH_KAFKA_REST_URL,
      username: e.UPSTASH_KAFKA_REST_USERNAME,
      password: e.UPSTASH_KAFKA_REST_PASSWORD,
    })),
  'confluent-v3': z
    .object({ ...rest('confluent-v3'), KAFKA_CLUSTER_ID: nonEmpty('confluent-v3') })
    .transform((e) => ({
      dialect: 'confluent-v3' as const,
      url: e.KAFKA_REST_URL,
      username: e.KAFKA_REST_USERNAME,
      password: e.KAFKA_REST_PASSWORD,
      clusterId: e.KAFKA_CLUSTER_ID,
    })),
  'kafka-rest-v2': z.object(rest('kafka-rest-v2')).transform((e) => ({
    dialect: 'kafka-rest-v2' as const,
    url: e.KAFKA_REST_URL,
    username: e.KAFKA_REST_USERNAME,
    password: e.KAFKA_REST_PASSWORD,
  })),
} satisfies Record<KafkaRestDialect, z.ZodType<KafkaSettings>>

const nativeNeeded = 'required when KAFKA_TRANSPORT is native'

/** A broker address: a host name or IPv4 address (or a bracketed IPv6 one), a colon, a port. */
const BROKER = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/

const brokerList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((b) => b.trim())
          .filter((b) => b !== '')
      : v,
  z
    .array(
      z.string().refine((b) => {
        const port = Number(BROKER.exec(b)?.[1] ?? 0)
        return port >= 1 && port <= 65_535
      }, 'every broker must be host:port'),
      { error: `a comma-separated host:port list is ${nativeNeeded}` },
    )
    .min(1, { error: `a comma-separated host:port list is ${nativeNeeded}` }),
)

const TransportSchema = z.object({
  KAFKA_TRANSPORT: z.preprocess(
    (v) => (v === undefined || v === '' ? 'rest' : v),
    z.enum(KAFKA_TRANSPORTS, { error: `must be one of ${KAFKA_TRANSPORTS.join(', ')}` }),
  ),
})

const saslNeeded = 'required when KAFKA_SASL_MECHANISM is set'
const saslSecret = z.string({ error: saslNeeded }).min(1, { error: saslNeeded })

const NativeSchema = z
  .object({
    KAFKA_BROKERS: brokerList,
    // Only the two words: a typo such as "ture" must not silently turn TLS off (or on).
    KAFKA_TLS: z.preprocess(
      (v) => (v === undefined || v === '' ? 'true' : v),
      z.enum(['true', 'false'], { error: 'must be true or false' }),
    ),
    KAFKA_SASL_MECHANISM: z.preprocess(
      (v) => (v === undefined ? '' : v),
      z.enum(['', ...KAFKA_SASL_MECHANISMS], {
        error: `must be one of ${KAFKA_SASL_MECHANISMS.join(', ')}, or empty for none`,
      }),
    ),
    // Unset secrets are undefined on Cloudflare but null under plain workerd (`npm start`'s
    // fromEnvironment bindings): without a mechanism neither is needed, so neither may be refused.
    KAFKA_USERNAME: z.string().nullish(),
    KAFKA_PASSWORD: z.string().nullish(),
    KAFKA_PRODUCER_SHARDS: intSetting(1, 1_000),
    KAFKA_PRODUCER_LINGER_MS: intSetting(0, 1_000),
    KAFKA_PRODUCER_IDLE_SECONDS: intSetting(1, 86_400),
    KAFKA_LATE_ACK_WAIT_MS: intSetting(0, 10_000),
    // A binding, not a setting: its presence decides where direct delivery's connections live.
    KAFKA_PRODUCERS: z.custom<Env['KAFKA_PRODUCERS']>().optional(),
  })
  .transform((e, ctx): NativeKafkaSettings => {
    const mechanism = e.KAFKA_SASL_MECHANISM
    const shards = e.KAFKA_PRODUCERS && {
      namespace: e.KAFKA_PRODUCERS,
      count: e.KAFKA_PRODUCER_SHARDS,
      lingerMs: e.KAFKA_PRODUCER_LINGER_MS,
      idleSeconds: e.KAFKA_PRODUCER_IDLE_SECONDS,
      lateAckWaitMs: e.KAFKA_LATE_ACK_WAIT_MS,
    }
    if (mechanism === '')
      return { dialect: 'native', brokers: e.KAFKA_BROKERS, tls: e.KAFKA_TLS === 'true', shards }
    for (const name of ['KAFKA_USERNAME', 'KAFKA_PASSWORD'] as const) {
      if (!saslSecret.safeParse(e[name]).success) {
        ctx.addIssue({ code: 'custom', path: [name], message: saslNeeded })
      }
    }
    return {
      dialect: 'native',
      brokers: e.KAFKA_BROKERS,
      tls: e.KAFKA_TLS === 'true',
      sasl: { mechanism, username: e.KAFKA_USERNAME ?? '', password: e.KAFKA_PASSWORD ?? '' },
      shards,
    }
  })

/**
 * The dialect's own settings. Only the selected dialect's are checked, so a Confluent deployment
 * needs no Upstash URL and the other way round. Unset or empty `KAFKA_REST_DIALECT` is Upstash,
 * the dialect this worker spoke first. `KAFKA_TRANSPORT=native` selects Kafka's own protocol
 * instead, and only its settings are checked.
 */
function parseKafka(
  env: Env,
): { success: true; data: KafkaSettings } | { success: false; error: z.ZodError } {
  const transport = TransportSchema.safeParse(env)
  if (!transport.success) return transport
  // The native transport needs none of the REST settings, and the other way round.
  if (transport.data.KAFKA_TRANSPORT === 'native') return NativeSchema.safeParse(env)
  const dialect = DialectSchema.safeParse(env)
  if (!dialect.success) return dialect
  return KafkaSchemas[dialect.data.KAFKA_REST_DIALECT].safeParse(env)
}

/** Typed configuration derived from the Worker's bindings. */
export type Config = {
  topic: string
  projectBuckets: number
  kafka: KafkaSettings
  produceTimeoutMs: number
  produceRetries: number
  retryAfterSeconds: number
  maxCallIds: number
  maxScorerRefs: number
  maxBodyBytes: number
  authRealm: string
  /** `Retry-After` of a 429; the rate-limit binding does not expose its period. */
  rateLimitRetryAfterSeconds: number
  /** The durable fallback's settings. */
  queue: QueueConfig
  /** Delivery mode, request size limit and throttle pauses. */
  delivery: DeliveryConfig
  /** Which ids the messages carry, and the project directory's settings. */
  ids: IdConfig
}

/** Either a usable configuration or the list of settings that are wrong, for the operator's log. */
export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] }

const cache = new WeakMap<object, ConfigResult>()

/** Parses (and caches per env object) the configuration; never throws. */
export function loadConfig(env: Env): ConfigResult {
  const cached = cache.get(env)
  if (cached) return cached
  const parsed = ConfigSchema.safeParse(env)
  const kafka = parseKafka(env)
  const queue = loadQueueConfig(env)
  const delivery = loadDeliveryConfig(env)
  const ids = loadIdConfig(env)
  const result: ConfigResult =
    parsed.success &&
    kafka.success &&
    !Array.isArray(queue) &&
    !Array.isArray(delivery) &&
    !Array.isArray(ids)
      ? {
          ok: true,
          config: {
            topic: parsed.data.KAFKA_TOPIC,
            projectBuckets: parsed.data.KAFKA_PROJECT_BUCKETS,
            kafka: kafka.data,
            produceTimeoutMs: parsed.data.KAFKA_PRODUCE_TIMEOUT_MS,
            produceRetries: parsed.data.KAFKA_PRODUCE_RETRIES,
            retryAfterSeconds: parsed.data.RETRY_AFTER_SECONDS,
            maxCallIds: parsed.data.MAX_CALL_IDS,
            maxScorerRefs: parsed.data.MAX_SCORER_REFS,
            maxBodyBytes: parsed.data.MAX_BODY_BYTES,
            authRealm: parsed.data.AUTH_REALM,
            rateLimitRetryAfterSeconds: parsed.data.RATE_LIMIT_RETRY_AFTER_SECONDS,
            queue,
            delivery,
            ids,
          },
        }
      : {
          ok: false,
          // Names only: a secret's value must never reach a log line.
          problems: [...(parsed.error?.issues ?? []), ...(kafka.success ? [] : kafka.error.issues)]
            .map(
              // The Kafka settings are parsed under `raw`: name the binding alone.
              (i) => `${i.path.filter((p) => p !== 'raw').join('.')}: ${i.message}`,
            )
            .concat(
              Array.isArray(queue) ? queue : [],
              Array.isArray(delivery) ? delivery : [],
              Array.isArray(ids) ? ids : [],
            ),
        }
  cache.set(env, result)
  return result
}

/**
 * Refuses every request loudly while the deployment is misconfigured, before anything is read:
 * a missing Kafka URL or secret is an operator's problem and must never look like success.
 */
export const requireConfig: MiddlewareHandler<AppEnv> = (c, next) => {
  const result = loadConfig(c.env)
  if (!result.ok) {
    throw new ApiError(
      'misconfigured',
      'Service misconfigured',
      {},
      {
        level: 'error',
        config_problems: result.problems,
      },
    )
  }
  c.set('config', result.config)
  return next()
}
