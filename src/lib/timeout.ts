/** What {@link withTimeout} resolves to when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out')

/**
 * Races `promise` against a timer. For promises that cannot be aborted (a library's fetch, a
 * queue send): the loser keeps running, and its later rejection is handled here so it never
 * surfaces as unhandled. The timer is cleared as soon as the promise settles, so nothing lingers
 * per request. One promise and one reaction, rather than `Promise.race` and a `finally`: this
 * runs on every request, so it allocates as little as it can (the timer itself is cheap: about
 * 1.4 µs a set and clear under workerd, docs/performance.md).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms))
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
