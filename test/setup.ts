import { afterAll, beforeAll } from 'vitest'

const realFetch = globalThis.fetch

// Outbound requests fail closed: only loopback (the sink, a closed port on purpose) is reachable.
beforeAll(() => {
  globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
      return Promise.reject(new Error(`unexpected outbound request to ${url.origin} in a test`))
    }
    return realFetch(input, init)
  }
})
afterAll(() => {
  globalThis.fetch = realFetch
})
