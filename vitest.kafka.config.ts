import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'
import { defaultLocalSecrets, hermeticBindings } from './scripts/lib/local-secrets.ts'
import { quietExpectedRuntimeNoise } from './test/runtime-noise.ts'

// `npm run test:kafka`: the real-broker suite. Its global setup starts Apache Kafka (Java 17+ and
// Maven: docs/real-kafka.md); the worker runs inside workerd as in `npm test`.
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
          QUEUE_RETRY_BASE_SECONDS: '1',
          // The worker's own default here, and so the queue consumer's, which Miniflare runs with
          // these bindings: the native transport to the suite's broker (PLAINTEXT; no TLS listener).
          KAFKA_TRANSPORT: 'native',
          KAFKA_BROKERS: inject('kafka').bootstrap,
          KAFKA_TLS: 'false',
          KAFKA_SASL_MECHANISM: '',
        },
      },
    })),
  ],
  test: {
    include: ['test/kafka/**/*.test.ts'],
    globalSetup: ['./test/kafka/global-setup.ts'],
    setupFiles: ['./test/setup.ts'],
    restoreMocks: true,
    // One broker for the run; fault tests stop and start it, so files must not run side by side.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    silent: 'passed-only',
  },
})
