/**
 * API keys in the `API_KEYS` KV namespace, through wrangler's own CLI (`wrangler kv key …`), so
 * that local state and deployed namespaces are reached exactly as an operator would reach them.
 * Shared by `npm run keys` and `npm run dev`.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { type ApiKeyRecord, ApiKeyRecordSchema } from '../../src/auth/key-record.ts'

const require = createRequire(import.meta.url)
const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js')
const BINDING = 'API_KEYS'
// KV metadata holds at most 1024 bytes; a record that fits is listed without reading each value.
const METADATA_LIMIT = 1024

/** Lowercase hex SHA-256 of an API key: the KV key under which its record is stored. */
export const hashKey = (apiKey: string): string => createHash('sha256').update(apiKey).digest('hex')

/**
 * A new API key: 32 random bytes, URL-safe base64 (43 characters, usable as a Basic password),
 * never starting with '-' or '_'.
 */
export function newApiKey(): string {
  // A key that starts with '-' reads as an option to every command line it is pasted into
  // (`npm run keys -- revoke -xyz…`): draw again (1 draw in 32 on average; 32 bytes either way).
  for (;;) {
    const key = randomBytes(32).toString('base64url')
    if (/^[A-Za-z0-9]/.test(key)) return key
  }
}

/** A grant as the worker matches it: `entity/project` or `entity/*`. */
const GRANT = /^[^\s/*]+\/(?:\*|[^\s/*]+)$/

/** Whether a project grant has a shape the worker can ever match. */
export const isGrant = (grant: string): boolean => GRANT.test(grant)

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

function targetArgs(t: KvTarget): string[] {
  const args = ['--binding', BINDING, t.local ? '--local' : '--remote']
  if (t.env) args.push('--env', t.env)
  if (t.local && t.persistTo) args.push('--persist-to', t.persistTo)
  return args
}

/** Runs wrangler (the project's own, under this Node) and returns its stdout; throws on failure. */
export function wrangler(args: string[]): string {
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

/** Stores a key's record under its hash; the record doubles as KV metadata when it fits. */
export function putKeyRecord(target: KvTarget, hash: string, record: ApiKeyRecord): void {
  const value = JSON.stringify(ApiKeyRecordSchema.parse(record))
  const metadata = value.length <= METADATA_LIMIT ? ['--metadata', value] : []
  wrangler(['kv', 'key', 'put', ...targetArgs(target), ...metadata, hash, value])
}

/** A stored record, or `undefined` if the value is missing or is not a record. */
export function getKeyRecord(target: KvTarget, hash: string): ApiKeyRecord | undefined {
  const text = wrangler(['kv', 'key', 'get', ...targetArgs(target), '--text', hash])
  try {
    const parsed = ApiKeyRecordSchema.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : undefined
  } catch {
    // wrangler prints "Value not found" (exit code 0) for a missing key.
    return undefined
  }
}

/** One entry of the namespace; `record` is absent when the value is not a valid record. */
export type ListedKey = { hash: string; record?: ApiKeyRecord }

/**
 * The namespace's keys (those starting with `prefix`), with their records: from the metadata
 * written by {@link putKeyRecord}, otherwise (keys written by hand) by reading each value.
 */
export function listKeyRecords(target: KvTarget, prefix = ''): ListedKey[] {
  const args = ['kv', 'key', 'list', ...targetArgs(target)]
  if (prefix !== '') args.push('--prefix', prefix)
  const entries = JSON.parse(wrangler(args)) as { name: string; metadata?: unknown }[]
  return entries.map(({ name, metadata }) => {
    const fromMetadata = ApiKeyRecordSchema.safeParse(metadata)
    const record = fromMetadata.success ? fromMetadata.data : getKeyRecord(target, name)
    return record ? { hash: name, record } : { hash: name }
  })
}

/** Deletes the record stored under a hash. */
export function deleteKeyRecord(target: KvTarget, hash: string): void {
  wrangler(['kv', 'key', 'delete', ...targetArgs(target), hash])
}
