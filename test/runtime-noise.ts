/**
 * What workerd, Miniflare and wrangler print while a green run injects faults: expected, so kept
 * off the terminal (a green `npm test` prints no error dump). Each pattern names the tests that
 * cause it; anything else still reaches the terminal, and a failing test still shows its own
 * console output (Vitest's `silent: 'passed-only'`).
 *
 * The lines come from the Vitest main process: `@cloudflare/vitest-plugin` writes workerd's
 * structured logs to `process.stderr` itself and offers no option to filter them, and wrangler
 * logs which secrets it read on every config load.
 */
const EXPECTED: readonly RegExp[] = [
  // A sink or broker that refuses or drops connections (test/dialects.error.test.ts,
  // test/calls-score.error.test.ts, test/queue-consumer.error.test.ts: "connection refused"):
  // workerd logs each failed subrequest, with a native stack, although the worker handles it.
  /disconnected: Connection refused \(os error 111\)/,
  /disconnected: client error \(SendRequest\)/,
  /Network connection lost\./,
  // test/kafka/crash.error.test.ts and the broker-state tests kill brokers under load, and
  // test/kafka/tls.security.test.ts presents certificates workerd must refuse: workerd logs each
  // reset connection and refused handshake, which the native transport answers for itself.
  /disconnected: Connection reset by peer \(os error 104\)/,
  /TLS handshake failed/,
  // test/client-retries.error.test.ts sends a non-ASCII X-Weave-Retry-Id on purpose.
  /^A header value for "X-Weave-Retry-Id" contains non-ASCII characters/,
  // Wrangler, once per test file: the tests set every var and secret themselves
  // (hermeticBindings), so where wrangler found them is noise.
  /^Using secrets defined in /,
]

let installed = false
/** Whether the last line written was dropped: its `stack: ` line may come in the next write. */
let droppedLast = false

/** Drops the expected lines from this process's stdout and stderr; idempotent. */
export function quietExpectedRuntimeNoise(): void {
  if (installed) return
  installed = true
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text =
        typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : ''
      if (
        text !== '' &&
        ((droppedLast && text.startsWith('stack: ')) ||
          EXPECTED.some((pattern) => pattern.test(text)))
      ) {
        // A write may carry several lines (a message and its stack): keep the unexpected ones.
        const kept = text
          .split('\n')
          .filter((line) => {
            const drop =
              EXPECTED.some((p) => p.test(line)) || (line.startsWith('stack: ') && droppedLast)
            if (line !== '') droppedLast = drop
            return !drop
          })
          .join('\n')
        if (kept.trim() === '') {
          const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined
          callback?.()
          return true
        }
        return write(kept, ...rest)
      }
      if (text.trim() !== '') droppedLast = false
      return write(chunk, ...rest)
    }) as typeof stream.write
  }
}
