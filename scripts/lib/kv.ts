/**
 * A KV namespace of the Worker through wrangler's own CLI (`wrangler kv …`), so that local state
 * and deployed namespaces are reached exactly as an operator would reach them. Shared by
 * `npm run keys`, `npm run projects` and `npm run dev`.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js')

/**
 * Which namespace: local state (what `wrangler dev` and `npm run dev` use, optionally in another
 * directory) or a deployed one, of the top-level Worker or of a named environment.
 */
export type KvTarget = { local: boolean; env?: string | undefined; persistTo?: string | undefined }

/** The target as words, for messages. */
export const describeTarget = (t: KvTarget): string =>
  `${t.local ? 'local state' : 'the deployed namespace'}${t.env ? ` of environment ${t.env}` : ''}${
    t.persistTo ? ` in ${t.persistTo}` : ''
  }`

/** wrangler's arguments naming one binding's namespace at a target. */
export function kvArgs(binding: string, t: KvTarget): string[] {
  const args = ['--binding', binding, t.local ? '--local' : '--remote']
  if (t.env) args.push('--env', t.env)
  if (t.local && t.persistTo) args.push('--persist-to', t.persistTo)
  return args
}

let calls = 0

/** How many wrangler processes this process has started (each costs seconds). */
export const wranglerCalls = (): number => calls

/** Runs wrangler (the project's own, under this Node) and returns its stdout; throws on failure. */
export function wrangler(args: string[]): string {
  calls++
  const run = spawnSync(process.execPath, [WRANGLER, ...args], {
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    maxBuffer: 256 * 1024 * 1024,
  })
  if (run.error) throw run.error
  if (run.status !== 0) {
    throw new Error(`wrangler ${args.slice(0, 3).join(' ')} failed:\n${run.stderr || run.stdout}`)
  }
  return run.stdout
}

/** One entry of `wrangler kv key list`. */
export type KvListEntry = { name: string; metadata?: unknown }

/** The names (and metadata) of a namespace's keys, those starting with `prefix` if given. */
export function listKv(binding: string, t: KvTarget, prefix = ''): KvListEntry[] {
  const args = ['kv', 'key', 'list', ...kvArgs(binding, t)]
  if (prefix !== '') args.push('--prefix', prefix)
  return JSON.parse(wrangler(args)) as KvListEntry[]
}

/** The text stored under a key, or undefined when there is none. */
export function getKv(binding: string, t: KvTarget, key: string): string | undefined {
  // wrangler prints the value and a newline, or "Value not found" (exit code 0) for no value.
  const text = wrangler(['kv', 'key', 'get', ...kvArgs(binding, t), '--text', key])
  const value = text.endsWith('\n') ? text.slice(0, -1) : text
  return value === 'Value not found' ? undefined : value
}

// Cloudflare's bulk read takes at most 100 keys a call.
const BULK_GET_MAX = 100

/**
 * The text stored under each of `keys` (absent when there is none), with one wrangler call per
 * 100 keys (`wrangler kv bulk get`) instead of one per key. Local state prints `{key: {value}}`,
 * the API `{key: value}`; both are read.
 */
export function getKvMany(
  binding: string,
  t: KvTarget,
  keys: readonly string[],
): Map<string, string> {
  const values = new Map<string, string>()
  if (keys.length === 0) return values
  const dir = mkdtempSync(join(tmpdir(), 'kv-bulk-get-'))
  try {
    for (let start = 0; start < keys.length; start += BULK_GET_MAX) {
      const file = join(dir, 'keys.json')
      writeFileSync(file, JSON.stringify(keys.slice(start, start + BULK_GET_MAX)))
      const answer = JSON.parse(
        wrangler(['kv', 'bulk', 'get', file, ...kvArgs(binding, t)]),
      ) as Record<string, unknown>
      for (const [key, entry] of Object.entries(answer)) {
        const value =
          typeof entry === 'object' && entry !== null ? Reflect.get(entry, 'value') : entry
        if (typeof value === 'string') values.set(key, value)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return values
}
