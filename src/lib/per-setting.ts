/**
 * Memoises `build` on its last key: one deployment has one value per setting, so what is built
 * from a setting (a middleware, a policy) is built once per isolate, and again only if the
 * setting changes under a live isolate.
 */
export function perSetting<K, V>(build: (key: K) => V): (key: K) => V {
  let last: { key: K; value: V } | undefined
  return (key) => {
    if (last === undefined || last.key !== key) last = { key, value: build(key) }
    return last.value
  }
}
