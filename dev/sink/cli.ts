/**
 * Runs the sink in the foreground:
 *
 *   node dev/sink/cli.ts [--port 8788] [--username dev] [--password dev-password]
 *                        [--partitions 3] [--v2-flavor confluent|redpanda|karapace]
 *                        [--cluster-id local-cluster] [--log]
 *
 * Prints one line with the URL, then serves until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util'
import { startSink } from './sink.ts'
import type { SinkOptions, V2Flavor } from './types.ts'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8788' },
    username: { type: 'string', default: 'dev' },
    password: { type: 'string', default: 'dev-password' },
    partitions: { type: 'string', default: '3' },
    'v2-flavor': { type: 'string', default: 'confluent' },
    'cluster-id': { type: 'string', default: 'local-cluster' },
    log: { type: 'boolean', default: false },
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

const options: SinkOptions = {
  port,
  username: values.username,
  password: values.password,
  partitions,
  v2Flavor: values['v2-flavor'] as V2Flavor,
  clusterId: values['cluster-id'],
  log: values.log,
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
