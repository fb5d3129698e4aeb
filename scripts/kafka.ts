/**
 * `npm run kafka [-- --brokers 3] [--tls]`: a real Apache Kafka on loopback with the scoring
 * topic, in the foreground until Ctrl-C or SIGTERM, then stopped and its data removed. One node
 * by default; `--brokers 3` is a cluster as production runs it (replication factor 3,
 * `min.insync.replicas=2`); `--tls` adds SSL and SASL_SSL listeners with a CA made for the run.
 * Prints one machine-readable line when it serves:
 * `kafka ready: bootstrap=<host:port,...> bridge=none topic=<topic> partitions=<n>`
 * (`bridge=none`: no Kafka REST bridge is available to this project; docs/real-kafka.md).
 */
import { parseArgs } from 'node:util'
import { KAFKA_USER, KafkaSetupError, startKafka, stopWithLauncher } from './lib/kafka.ts'

let kafka: Awaited<ReturnType<typeof startKafka>>
try {
  const { values } = parseArgs({
    options: { brokers: { type: 'string', default: '1' }, tls: { type: 'boolean' } },
  })
  const brokers = Number(values.brokers)
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > 9) {
    throw new KafkaSetupError(`--brokers takes a number from 1 to 9, not ${values.brokers}`)
  }
  kafka = await startKafka({
    brokers,
    tls: values.tls === true,
    log: (line) => console.log(line),
  })
} catch (e) {
  const known =
    e instanceof KafkaSetupError || (e as { code?: string }).code?.startsWith('ERR_PARSE')
  console.error(known ? (e as Error).message : `npm run kafka: ${(e as Error).message}`)
  process.exit(1)
}
console.log(
  `SASL_PLAINTEXT on ${kafka.saslBootstrap} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; ${KAFKA_USER.username} / ${KAFKA_USER.password})`,
)
if (kafka.tls) {
  console.log(`SSL on ${kafka.tls.bootstrap}, SASL_SSL on ${kafka.tls.saslBootstrap}`)
  console.log(`their CA: ${kafka.tls.caFile}`)
}
const pids = kafka.nodes.map((n) => kafka.nodePid(n.id)).join(',')
console.log(`data in ${kafka.dataDir}; broker pid(s) ${pids}`)
console.log(
  `kafka ready: bootstrap=${kafka.bootstrap} bridge=none topic=${kafka.topic} partitions=${kafka.partitions}`,
)

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await kafka.close()
  console.log('kafka stopped, data removed')
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
stopWithLauncher(stop)
// Keeps the process in the foreground: nothing else holds the event loop once the broker runs.
setInterval(() => {}, 1 << 30)
