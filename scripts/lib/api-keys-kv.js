/**
 * The `API_KEYS` binding in self-hosted mode: a read-only lookalike of a KV namespace over the
 * records of `API_KEYS_FILE`, so the worker's code runs unchanged. workerd instantiates this
 * module once per isolate as a wrapped binding; `env.records` is the file, parsed by workerd.
 *
 * Only `get` exists: the worker never lists or writes keys. Values are pre-serialised so a `get`
 * returns the same text a KV read would, without re-encoding the record per request.
 *
 * @param {{ records: Record<string, unknown> }} env
 */
export default function apiKeysNamespace(env) {
  /** @type {Map<string, string>} */
  const values = new Map()
  for (const [hash, record] of Object.entries(env.records)) values.set(hash, JSON.stringify(record))

  return {
    /**
     * KV's `get(key, type | { type })`: text by default, also `json` and `arrayBuffer`.
     * @param {string} key
     * @param {string | { type?: string } | undefined} options
     */
    async get(key, options) {
      const type = (typeof options === 'string' ? options : options?.type) ?? 'text'
      // A Map, not the parsed object: a key like `__proto__` must read as absent.
      const value = values.get(String(key))
      if (value === undefined) return null
      if (type === 'text') return value
      if (type === 'json') return JSON.parse(value)
      if (type === 'arrayBuffer') return new TextEncoder().encode(value).buffer
      throw new TypeError(`API_KEYS (self-hosted) does not support get(key, "${type}")`)
    },
  }
}
