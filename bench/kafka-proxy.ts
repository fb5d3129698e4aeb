/**
 * bench:weave's Kafka proxy, in a process of its own so that relaying every byte between the
 * servers and the broker takes no CPU from the load generator: a counting TCP proxy
 * (startCountingProxy) that also counts the Kafka requests passing through it by API key.
 *
 * Started with an IPC channel (see startKafkaProxy in bench/weave.ts): it sends `{ port }` once
 * listening, then answers `{ target }` (where to forward, set once the broker is up) and
 * `{ counts: true }` with `{ connections, requests: { <api key>: n } }`. It exits with its parent.
 */
import { kafkaRequests, startCountingProxy } from './lib.ts'

const requests: Record<number, number> = {}
const proxy = await startCountingProxy({
  inspect: () =>
    kafkaRequests((apiKey) => {
      requests[apiKey] = (requests[apiKey] ?? 0) + 1
    }),
})
process.on('message', (message: { target?: string; counts?: boolean }) => {
  if (message.target) proxy.setTarget(message.target)
  if (message.counts) process.send?.({ connections: proxy.connections(), requests })
})
process.on('disconnect', () => void proxy.close().finally(() => process.exit(0)))
process.send?.({ port: proxy.port })
