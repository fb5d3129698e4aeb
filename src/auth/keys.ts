import { type ApiKeyRecord, ApiKeyRecordSchema } from './key-record.ts'

export { type ApiKeyRecord, ApiKeyRecordSchema }

const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Lowercase hex SHA-256 of an API key: the only form in which keys are stored or compared. */
export async function hashApiKey(apiKey: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(apiKey)),
  )
  let out = ''
  for (const byte of digest) out += hex[byte]
  return out
}

// Parsed on a miss so that a miss does the same work as a hit.
const DECOY = '{"wb_user_id":"decoy","projects":["decoy/decoy"]}'

/**
 * Looks a presented API key up. The KV key is a digest, so the lookup leaks nothing about the
 * secret itself; hit and miss then do the same parsing work so their timing stays alike.
 */
export async function lookupApiKey(
  keys: KVNamespace,
  apiKey: string,
): Promise<
  { found: true; record: ApiKeyRecord; keyHash: string } | { found: false; corrupt: boolean }
> {
  const keyHash = await hashApiKey(apiKey)
  const stored = await keys.get(keyHash)
  let parsed: unknown
  try {
    parsed = JSON.parse(stored ?? DECOY)
  } catch {
    parsed = undefined
  }
  const result = ApiKeyRecordSchema.safeParse(parsed)
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
