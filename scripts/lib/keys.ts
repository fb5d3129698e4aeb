/**
 * API keys in the `API_KEYS` KV namespace, through wrangler (scripts/lib/kv.ts). Shared by
 * `npm run keys` and `npm run dev`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { type ApiKeyRecord, ApiKeyRecordSchema } from '../../src/auth/key-record.ts'
import { getKv, type KvTarget, kvArgs, listKv, wrangler } from './kv.ts'

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

const targetArgs = (t: KvTarget): string[] => kvArgs(BINDING, t)

/** Stores a key's record under its hash; the record doubles as KV metadata when it fits. */
export function putKeyRecord(target: KvTarget, hash: string, record: ApiKeyRecord): void {
  const value = JSON.stringify(ApiKeyRecordSchema.parse(record))
  const metadata = value.length <= METADATA_LIMIT ? ['--metadata', value] : []
  wrangler(['kv', 'key', 'put', ...targetArgs(target), ...metadata, hash, value])
}

/** A stored record, or `undefined` if the value is missing or is not a record. */
export function getKeyRecord(target: KvTarget, hash: string): ApiKeyRecord | undefined {
  const text = getKv(BINDING, target, hash)
  if (text === undefined) return undefined
  try {
    const parsed = ApiKeyRecordSchema.safeParse(JSON.parse(text))
    return parsed.success ? parsed.data : undefined
  } catch {
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
  return listKv(BINDING, target, prefix).map(({ name, metadata }) => {
    const fromMetadata = ApiKeyRecordSchema.safeParse(metadata)
    const record = fromMetadata.success ? fromMetadata.data : getKeyRecord(target, name)
    return record ? { hash: name, record } : { hash: name }
  })
}

/** Deletes the record stored under a hash. */
export function deleteKeyRecord(target: KvTarget, hash: string): void {
  wrangler(['kv', 'key', 'delete', ...targetArgs(target), hash])
}
