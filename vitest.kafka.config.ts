import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'
import { defaultLocalSecrets, hermeticBindings } from './scripts/lib/local-secrets.ts'
import { createCa } from './scripts/lib/tls-certs.ts'
import { quietExpectedRuntimeNoise } from './test/runtime-noise.ts'

// `npm run test:kafka`: the real-broker suite. Its global setup starts a 3-node Apache Kafka
// cluster (Java 17+ and Maven: docs/real-kafka.md); the worker runs inside workerd as in
// `npm test`.
defaultLocalSecrets()
quietExpectedRuntimeNoise()

// The brokers' TLS listeners present certificates of a CA made for this run. Miniflare gives
// workerd the certificates of NODE_EXTRA_CA_CERTS as trusted, reading it once when it is loaded:
// so the CA exists, and the variable names it, before the plugin (and Miniflare) is imported.
// The global setup signs the brokers' certificates with it and removes it at the end.
if (process.env.WEAVE_TEST_KAFKA_CA_DIR === undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'weave-kafka-ca-'))
  createCa(dir)
  process.env.WEAVE_TEST_KAFKA_CA_DIR = dir
  process.env.NODE_EXTRA_CA_CERTS = join(dir, 'ca.pem')
}
const { cloudflareTest } = await import('@cloudflare/vitest-plugin')

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
          // these bindings: the native transport to the suite's cluster, every node listed
          // (PLAINTEXT; the TLS listeners are tested by name).
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
    // One cluster for the run; fault tests stop and start its nodes, so files must not run side
    // by side.
    fileParallelism: false,
    // Whole-cluster restarts (a controller quorum first) take 20-40 s on a busy 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    silent: 'passed-only',
  },
})
