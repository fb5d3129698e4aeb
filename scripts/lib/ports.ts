import { createServer } from 'node:net'

/**
 * A loopback port that was free a moment ago (bound, then closed): for a server a script is about
 * to start, or as an address where nothing listens (a dead broker or sink).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
