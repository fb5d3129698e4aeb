import type { Config, KafkaSettings } from '../config.ts'
import { ConfluentV3Producer, v3RequestSize } from './confluent-v3.ts'
import { KafkaRestV2Producer, v2RequestSize } from './kafka-rest-v2.ts'
import { NativeProducer } from './native.ts'
import type { JobProducer } from './producer.ts'
import { ShardedProducer } from './producer-shards.ts'
import { PARTS_IN_FLIGHT, type RequestSize, SizeLimitedProducer } from './split.ts'
import { UpstashProducer, upstashRequestSize } from './upstash.ts'

/** The adapter for the configured REST dialect (`KAFKA_REST_DIALECT`). */
export function createProducer(kafka: Exclude<KafkaSettings, { dialect: 'native' }>): JobProducer {
  switch (kafka.dialect) {
    case 'upstash':
      return new UpstashProducer(kafka)
    case 'confluent-v3':
      return new ConfluentV3Producer(kafka)
    case 'kafka-rest-v2':
      return new KafkaRestV2Producer(kafka)
  }
}

/** How the dialect's produce body grows with its records. */
export function requestSizeOf(
  dialect: Exclude<KafkaSettings, { dialect: 'native' }>['dialect'],
): RequestSize {
  switch (dialect) {
    case 'upstash':
      return upstashRequestSize
    case 'confluent-v3':
      return v3RequestSize
    case 'kafka-rest-v2':
      return v2RequestSize
  }
}

/**
 * Who a producer sends for: a client `request` that waits for the answer (the parts of a split
 * produce go {@link PARTS_IN_FLIGHT} at a time), or the `queue` consumer (one part at a time: no
 * client waits, and a throttled endpoint is not sent a second part before the first is answered).
 */
export type ProducerUse = 'request' | 'queue'

const producers: Record<ProducerUse, WeakMap<Config, JobProducer>> = {
  request: new WeakMap(),
  queue: new WeakMap(),
}

/**
 * One producer per configuration and use, that is per isolate and deployment: the configuration
 * object is cached per env object, so its producer (and `@upstash/kafka`'s client) is built once.
 * No request it sends exceeds `KAFKA_REST_MAX_REQUEST_BYTES` of produce body (for the native
 * transport: of record batch).
 */
export function producerFor(config: Config, use: ProducerUse = 'request'): JobProducer {
  let producer = producers[use].get(config)
  if (!producer) {
    const { kafka } = config
    // The native adapter splits inside its own connection (src/kafka/native.ts): the parts of a
    // request share one connection set instead of opening one each. Requests hand their jobs to
    // a producer shard that stays connected, when the binding is there; the queue consumer
    // connects per batch (docs/native-kafka.md).
    producer =
      kafka.dialect === 'native'
        ? use === 'request' && kafka.shards
          ? new ShardedProducer(
              kafka.shards,
              { brokers: kafka.brokers, tls: kafka.tls, sasl: kafka.sasl },
              { maxBytes: config.delivery.maxRequestBytes },
            )
          : new NativeProducer(kafka, config.delivery.maxRequestBytes)
        : new SizeLimitedProducer(
            createProducer(kafka),
            requestSizeOf(kafka.dialect),
            config.delivery.maxRequestBytes,
            use === 'request' ? PARTS_IN_FLIGHT : 1,
          )
    producers[use].set(config, producer)
  }
  return producer
}
