/** What {@link withTimeout} resolves to when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out')

/**
 * Races `promise` against a timer. For promises that cannot be aborted (a library's fetch, a
 * queue send): the loser keeps running, so its later rejection is swallowed here, and the timer
 * is cleared as soon as the race is decided so nothing lingers per request.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | typeof TIMED_OUT> {
  promise.catch(() => {})
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms))
  })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}
