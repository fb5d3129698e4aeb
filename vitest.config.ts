import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'
import { defaultLocalSecrets, hermeticBindings } from './scripts/lib/local-secrets.ts'
import { quietExpectedRuntimeNoise } from './test/runtime-noise.ts'

// Tests run inside workerd with the bindings of wrangler.toml. The Kafka REST sink is a real
// local HTTP server started by the global setup; its URL becomes the worker's Kafka endpoint.
// The sink's credentials are the worker's secrets (wrangler reads required secrets from here).
defaultLocalSecrets()
quietExpectedRuntimeNoise()

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          // Every var and secret set here, so a local .dev.vars changes no outcome.
          ...hermeticBindings(),
          UPSTASH_KAFKA_REST_URL: inject('sinkUrl'),
          // The queue consumer redelivers after 1 s instead of 5 s, to keep the suite short.
          QUEUE_RETRY_BASE_SECONDS: '1',
        },
        // A second, low limit beside wrangler.toml's RATE_LIMITER, so a test can exceed it quickly.
        ratelimits: { RATE_LIMIT_TEST: { namespace_id: '9001', simple: { limit: 2, period: 60 } } },
      },
    })),
  ],
  test: {
    include: ['test/**/*.test.ts'],
    // The real-broker suite has its own config and command (vitest.kafka.config.ts).
    exclude: ['test/kafka/**'],
    globalSetup: ['./test/global-setup.ts'],
    setupFiles: ['./test/setup.ts'],
    restoreMocks: true,
    // Each request writes its JSON log line; show them only for failing tests.
    silent: 'passed-only',
  },
})
