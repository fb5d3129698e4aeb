/**
 * A KV binding in self-hosted mode (`API_KEYS` over API_KEYS_FILE, `PROJECT_IDS` over
 * PROJECT_IDS_FILE): a read-only lookalike of a KV namespace over a JSON object, so the worker's
 * code runs unchanged. workerd instantiates this module once per isolate and binding as a
 * wrapped binding; `env.records` is the file, parsed by workerd, and `env.name` the binding's.
 *
 * Only `get` exists: the worker never lists or writes. A string value is the stored text as it
 * is (a project directory's internal id); any other value is stored as its JSON (a key record),
 * serialised once here rather than per request.
 *
 * @param {{ records: Record<string, unknown>, name?: string }} env
 */
export default function fileNamespace(env) {
  /** @type {Map<string, string>} */
  const values = new Map()
  for (const [key, value] of Object.entries(env.records)) {
    values.set(key, typeof value === 'string' ? value : JSON.stringify(value))
  }

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
      throw new TypeError(`${env.name ?? 'KV'} (self-hosted) does not support get(key, "${type}")`)
    },
  }
}
