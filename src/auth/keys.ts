import { type ApiKeyRecord, ApiKeyRecordSchema } from './key-record.ts'

export { type ApiKeyRecord, ApiKeyRecordSchema }

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const utf8 = new TextEncoder()

/** Lowercase hex SHA-256 of an API key: the only form in which keys are stored or compared. */
export async function hashApiKey(apiKey: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8.encode(apiKey)))
  let out = ''
  for (const byte of digest) out += hex[byte]
  return out
}

// Looked up on a miss so that a miss does the same work as a hit.
const DECOY = '{"wb_user_id":"decoy","projects":["decoy/decoy"]}'

type ParsedRecord = ReturnType<typeof ApiKeyRecordSchema.safeParse>

// Stored record text -> its parse. The text is what KV holds (no secret), and an isolate sees
// few distinct records, so parsing each one once saves a JSON.parse and a zod parse per request.
// Bounded: cleared whenever it grows past RECORD_CACHE_MAX entries.
const parsedRecords = new Map<string, ParsedRecord>()
const RECORD_CACHE_MAX = 1000

function parseRecord(text: string): ParsedRecord {
  let result = parsedRecords.get(text)
  if (result === undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    result = ApiKeyRecordSchema.safeParse(parsed)
    // Shared by every request of the isolate from now on: nothing may change it.
    if (result.success) Object.freeze(Object.freeze(result.data).projects)
    if (parsedRecords.size >= RECORD_CACHE_MAX) parsedRecords.clear()
    parsedRecords.set(text, result)
  }
  return result
}

/**
 * Looks a presented API key up. The KV key is a digest, so the lookup leaks nothing about the
 * secret itself; hit and miss then do the same parsing (or cache) work so their timing stays alike.
 */
export async function lookupApiKey(
  keys: KVNamespace,
  apiKey: string,
): Promise<
  { found: true; record: ApiKeyRecord; keyHash: string } | { found: false; corrupt: boolean }
> {
  const keyHash = await hashApiKey(apiKey)
  const stored = await keys.get(keyHash)
  const result = parseRecord(stored ?? DECOY)
  if (stored === null) return { found: false, corrupt: false }
  return result.success
    ? { found: true, record: result.data, keyHash }
    : { found: false, corrupt: true }
}

/**
 * Whether a key's grants cover a project: an exact `entity/project`, or `entity/*` for any single
 * project of that entity (`acme/*` grants `acme/bot`, never `acme/bot/x` or `acme2/bot`).
 */
export function grantsProject(grants: readonly string[], project: string): boolean {
  const slash = project.indexOf('/')
  const entityWildcard =
    slash > 0 && slash < project.length - 1 && project.indexOf('/', slash + 1) === -1
      ? `${project.slice(0, slash)}/*`
      : undefined
  for (const grant of grants) {
    if (grant === project || (entityWildcard !== undefined && grant === entityWildcard)) return true
  }
  return false
}
