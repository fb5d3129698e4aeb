import { createApp, defaultDeps } from './app.ts'
import { consumeScoreJobs } from './queue/consumer.ts'

// Durable Object classes are exported from the main module (wrangler.toml's KAFKA_PRODUCERS).
export { KafkaProducerShard } from './kafka/producer-shards.ts'

const app = createApp(defaultDeps)

/**
 * The Worker: HTTP requests, and the fallback queue's consumer. `satisfies` keeps both callable
 * with their precise types from tests.
 */
export default {
  fetch: app.fetch,
  queue: (batch, env) => consumeScoreJobs(batch, env, defaultDeps.producerFor),
} satisfies ExportedHandler<Env>
