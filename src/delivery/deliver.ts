/**
 * Where an accepted request's jobs go: to Kafka REST directly (falling back to the queue), or
 * straight to the queue. The route calls {@link deliverJobs} and answers `{}` once it returns.
 */
import type { Config } from '../config.ts'
import { ApiError } from '../errors.ts'
import {
  type JobProducer,
  type KafkaMessage,
  type PolicyResult,
  type ProducePolicy,
  produceWithPolicy,
} from '../kafka/producer.ts'
import type { RequestLog } from '../middleware/request-context.ts'
import { enqueueJobs, type QueuedJob } from '../queue/jobs-queue.ts'
import { breakerFor, type PauseSettings } from './breaker.ts'

const keys = new WeakMap<Config, string>()

/**
 * The breaker's key: the endpoint (never its credentials) and the topic; for the native
 * transport, the brokers. Cached per configuration,
 * that is per isolate and deployment.
 */
export function breakerKey(config: Config): string {
  const cached = keys.get(config)
  if (cached !== undefined) return cached
  const { kafka } = config
  if (kafka.dialect === 'native') {
    // The brokers as configured (never the SASL user): a different cluster is another breaker.
    const key = `native ${kafka.tls ? 'tls' : 'plaintext'}://${kafka.brokers.join(',')} ${config.topic}`
    keys.set(config, key)
    return key
  }
  let endpoint = kafka.url
  try {
    const url = new URL(kafka.url)
    endpoint = `${url.origin}${url.pathname}`
  } catch {
    // Config checked the URL already; keep it as it is.
  }
  const cluster = kafka.dialect === 'confluent-v3' ? ` ${kafka.clusterId}` : ''
  const key = `${kafka.dialect} ${endpoint}${cluster} ${config.topic}`
  keys.set(config, key)
  return key
}

/** The breaker's pauses, from the configuration. */
const pauseOf = (config: Config): PauseSettings => ({
  defaultSeconds: config.delivery.throttlePauseSeconds,
  maxSeconds: config.delivery.throttleMaxPauseSeconds,
})

/** What deliverJobs needs from the request. */
export type DeliveryContext = {
  config: Config
  producer: JobProducer
  queue: Queue<QueuedJob> | undefined
  /** The request's log line, completed with how the jobs travelled. */
  log: RequestLog
}

/** A produce through the breaker: not sent while it is open, else sent under the policy. */
export type GuardedProduce =
  | { skipped: true; retryAfterSeconds: number }
  | (PolicyResult & { skipped: false; probe: boolean })

/**
 * Produces under `policy` through this isolate's throttle breaker for the configured endpoint
 * and topic: nothing is sent while the breaker is open; otherwise the answer is recorded, so a
 * throttle opens it and a probe's success closes it. Direct delivery and the queue consumer
 * both go through here; the produce deadline is the probe's lease.
 */
export async function produceUnlessThrottled(
  config: Config,
  producer: JobProducer,
  messages: readonly KafkaMessage[],
  policy: ProducePolicy,
): Promise<GuardedProduce> {
  const breaker = breakerFor(breakerKey(config))
  const admission = breaker.admit(policy.timeoutMs)
  if (admission === 'skip') return { skipped: true, retryAfterSeconds: breaker.remainingSeconds() }
  const outcome = await produceWithPolicy(producer, messages, policy)
  breaker.record(outcome.result, admission, pauseOf(config))
  return { ...outcome, skipped: false, probe: admission === 'probe' }
}

/**
 * Makes a request's jobs durable, or throws the 503 the client must see.
 *
 * - `DELIVERY_MODE=queue`: every job goes to the queue; `{}` then means durably queued, and the
 *   queue consumer produces them to Kafka in batches.
 * - `DELIVERY_MODE=direct`: produce under the request's policy (deadline, retries) unless the
 *   isolate's throttle breaker is open; whatever Kafka did not acknowledge (a throttle answer is
 *   not retried in the request) goes to the queue.
 *
 * Only a refusal by the queue too is a 503, with `Retry-After`.
 */
export async function deliverJobs(
  messages: readonly KafkaMessage[],
  { config, producer, queue, log }: DeliveryContext,
): Promise<void> {
  if (config.delivery.mode === 'queue') {
    log.delivery = 'queue'
    await toQueue(messages, messages, { config, queue, log }, {})
    return
  }
  const produced = await produceUnlessThrottled(config, producer, messages, {
    timeoutMs: config.produceTimeoutMs,
    retries: config.produceRetries,
    backoffMs: 100,
  })
  if (produced.skipped) {
    await toQueue(messages, messages, { config, queue, log }, { kafka_skipped: 'throttled' })
    return
  }
  if (produced.probe) log.kafka_probe = true
  const { result, attempts } = produced
  log.kafka_attempts = attempts
  if (result.ok) return

  // Kafka did not acknowledge everything in time: the rest goes to the durable queue, and
  // the client still gets {} once the queue holds it. Only a refusal there is a 503.
  let acknowledged = result.acknowledged
  const lateAcks = await awaitLateAcks(messages, result, { config, producer, queue, log })
  if (lateAcks) {
    acknowledged = acknowledged.map((a, i) => a || lateAcks[i] === true)
    if (acknowledged.every(Boolean)) return
  }
  const pending = messages.filter((_, i) => !acknowledged[i])
  await toQueue(
    messages,
    pending,
    { config, queue, log },
    {
      level: result.reason === 'unauthorized' ? 'alarm' : 'warn',
      kafka_reason: result.reason,
      kafka_status: result.status,
      kafka_detail: result.detail,
      kafka_acknowledged: messages.length - pending.length,
    },
    result.reason === 'timeout' ? result.heldBy : undefined,
    result.reason === 'timeout',
  )
}

/**
 * Without a queue (self-hosted), a write that timed out in a producer shard may still land: wait
 * up to `KAFKA_LATE_ACK_WAIT_MS` for its outcome rather than answer 503 for jobs that are on
 * Kafka (a client retrying them would write them twice). Per message, whether it landed late;
 * undefined when there is nothing to wait for.
 */
async function awaitLateAcks(
  messages: readonly KafkaMessage[],
  result: Extract<PolicyResult['result'], { ok: false }>,
  { config, producer, queue, log }: DeliveryContext,
): Promise<boolean[] | undefined> {
  const { kafka } = config
  if (queue || result.reason !== 'timeout' || !result.heldBy || !producer.outcomeOf) return
  if (kafka.dialect !== 'native' || !kafka.shards || kafka.shards.lateAckWaitMs === 0) return
  const indexes = messages.flatMap((_, i) => (result.acknowledged[i] ? [] : [i]))
  const outcomes = await producer.outcomeOf(
    result.heldBy,
    indexes.map((i) => messages[i] as KafkaMessage),
    kafka.shards.lateAckWaitMs,
  )
  const late = messages.map(() => false)
  let landed = 0
  indexes.forEach((index, j) => {
    if (outcomes[j] !== 'landed') return
    late[index] = true
    landed++
  })
  log.kafka_late_acknowledged = landed
  return late
}

async function toQueue(
  all: readonly KafkaMessage[],
  pending: readonly KafkaMessage[],
  { config, queue, log }: Omit<DeliveryContext, 'producer'>,
  kafkaLog: Record<string, unknown>,
  heldBy?: string,
  outcomeUnknown = false,
): Promise<void> {
  const queued = await enqueueJobs(queue, pending, {
    timeoutMs: config.queue.sendTimeoutMs,
    projectBuckets: config.projectBuckets,
    heldBy,
  })
  if (!queued.ok) {
    throw new ApiError(
      'kafka_unavailable',
      'Kafka is unavailable: the scoring jobs were not accepted. Retry later.',
      { 'Retry-After': String(config.retryAfterSeconds) },
      {
        ...kafkaLog,
        level: 'error',
        kafka_acknowledged: all.length - pending.length,
        queue_reason: queued.reason,
        queue_detail: queued.detail,
      },
    )
  }
  Object.assign(log, kafkaLog, { outcome: 'queued', queued: queued.queued })
  // A timed-out write may still land: these jobs may reach Kafka twice (the consumer asks the
  // shard named in each job first, when there is one).
  if (outcomeUnknown) log.queued_unknown_outcome = queued.queued
}
