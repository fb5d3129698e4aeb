import type { Config, KafkaSettings } from '../config.ts'
import { ConfluentV3Producer } from './confluent-v3.ts'
import { KafkaRestV2Producer } from './kafka-rest-v2.ts'
import type { JobProducer } from './producer.ts'
import { UpstashProducer } from './upstash.ts'

/** The adapter for the configured dialect (`KAFKA_REST_DIALECT`). */
export function createProducer(kafka: KafkaSettings): JobProducer {
  switch (kafka.dialect) {
    case 'upstash':
      return new UpstashProducer(kafka)
    case 'confluent-v3':
      return new ConfluentV3Producer(kafka)
    case 'kafka-rest-v2':
      return new KafkaRestV2Producer(kafka)
  }
}

const producers = new WeakMap<Config, JobProducer>()

/**
 * One producer per configuration, that is per isolate and deployment: the configuration object
 * is cached per env object, so its producer (and `@upstash/kafka`'s client) is built once.
 */
export function producerFor(config: Config): JobProducer {
  let producer = producers.get(config)
  if (!producer) {
    producer = createProducer(config.kafka)
    producers.set(config, producer)
  }
  return producer
}
