/**
 * The secrets every local run of the worker is given (wrangler.toml requires them all): the local
 * sink's credentials, and the local broker's SASL user (scripts/lib/kafka.ts), which the native
 * transport uses only with a mechanism set. One list for the test configs, the load and the bench.
 */
import { writeFileSync } from 'node:fs'

export const LOCAL_SECRETS = {
  UPSTASH_KAFKA_REST_USERNAME: 'dev',
  UPSTASH_KAFKA_REST_PASSWORD: 'dev-password',
  KAFKA_REST_USERNAME: 'dev',
  KAFKA_REST_PASSWORD: 'dev-password',
  KAFKA_USERNAME: 'weave',
  KAFKA_PASSWORD: 'weave-secret',
} as const

/** Sets each secret this process's environment lacks (wrangler reads required secrets there). */
export function defaultLocalSecrets(env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(LOCAL_SECRETS)) env[name] ??= value
}

/** A `.dev.vars` with every secret, for a `wrangler dev` of the scripts and benchmarks. */
export function writeLocalDevVars(file: string): void {
  writeFileSync(
    file,
    `${Object.entries(LOCAL_SECRETS)
      .map(([name, value]) => `${name}=${value}`)
      .join('\n')}\n`,
  )
}
