/**
 * Runs the sink in the foreground (through npm, whose Node runs TypeScript; Node 20 does not):
 *
 *   npm run sink -- [--port 8788 (or SINK_PORT)] [--username dev] [--password dev-password]
 *                        [--partitions 3] [--v2-flavor confluent|redpanda|karapace]
 *                        [--cluster-id local-cluster] [--log]
 *                        [--rate-limit 10] [--burst 10] [--retry-after 1]
 *                        [--max-request-bytes 1048576]
 *
 * The last four make it a throttled endpoint (429 + Retry-After beyond the produce request rate,
 * 413 beyond the request size); each also reads SINK_RATE_LIMIT, SINK_BURST, SINK_RETRY_AFTER
 * and SINK_MAX_REQUEST_BYTES from the environment. At run time: POST /__sink/throttle.
 *
 * Prints one line with the URL, then serves until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util'
import { startSink } from './sink.ts'
import { parseThrottle } from './throttle.ts'
import type { SinkOptions, Throttle, V2Flavor } from './types.ts'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.SINK_PORT ?? '8788' },
    username: { type: 'string', default: 'dev' },
    password: { type: 'string', default: 'dev-password' },
    partitions: { type: 'string', default: '3' },
    'v2-flavor': { type: 'string', default: 'confluent' },
    'cluster-id': { type: 'string', default: 'local-cluster' },
    log: { type: 'boolean', default: false },
    'rate-limit': { type: 'string', default: process.env.SINK_RATE_LIMIT },
    burst: { type: 'string', default: process.env.SINK_BURST },
    'retry-after': { type: 'string', default: process.env.SINK_RETRY_AFTER },
    'max-request-bytes': { type: 'string', default: process.env.SINK_MAX_REQUEST_BYTES },
  },
  strict: true,
})

const port = Number(values.port)
const partitions = Number(values.partitions)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid --port ${values.port}\n`)
  process.exit(2)
}
if (!Number.isInteger(partitions) || partitions < 1) {
  process.stderr.write(`invalid --partitions ${values.partitions}\n`)
  process.exit(2)
}

const throttleFields: Record<string, string | undefined> = {
  ratePerSecond: values['rate-limit'],
  burst: values.burst,
  retryAfter: values['retry-after'],
  maxRequestBytes: values['max-request-bytes'],
}
const given = Object.entries(throttleFields).filter(([, v]) => v !== undefined && v !== '')
let throttle: Throttle | undefined
if (given.length > 0) {
  try {
    throttle = parseThrottle(Object.fromEntries(given.map(([k, v]) => [k, Number(v)])))
  } catch (e) {
    process.stderr.write(`invalid throttle: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(2)
  }
}

const options: SinkOptions = {
  port,
  username: values.username,
  password: values.password,
  partitions,
  v2Flavor: values['v2-flavor'] as V2Flavor,
  clusterId: values['cluster-id'],
  log: values.log,
  ...(throttle ? { throttle } : {}),
}

const sink = await startSink(options)
process.stdout.write(`kafka rest sink listening on ${sink.url}\n`)

let stopping = false
const stop = () => {
  if (stopping) return
  stopping = true
  sink.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
