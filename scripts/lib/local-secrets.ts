/**
 * The secrets every local run of the worker is given (wrangler.toml requires them all): the local
 * sink's credentials, and the local broker's SASL user (scripts/lib/kafka.ts), which the native
 * transport uses only with a mechanism set. One list for the test configs, the load and the bench.
 */
import { writeFileSync } from 'node:fs'
import { unstable_readConfig } from 'wrangler'

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

/**
 * Every var of wrangler.toml (its top level, the local defaults) and every local secret, as
 * Miniflare bindings for the test configs. Miniflare's bindings are laid over what wrangler
 * loaded, and wrangler also reads the developer's `.dev.vars`: setting each binding here means no
 * value there (say `DELIVERY_MODE="queue"` or an Upstash URL) reaches a test. Tests that need
 * another value set it themselves.
 */
export function hermeticBindings(configPath = 'wrangler.toml'): Record<string, string> {
  const config = unstable_readConfig({ config: configPath }) as { vars?: Record<string, unknown> }
  const bindings: Record<string, string> = {}
  for (const [name, value] of Object.entries(config.vars ?? {})) {
    bindings[name] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  return { ...bindings, ...LOCAL_SECRETS }
}
