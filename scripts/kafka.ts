/**
 * `npm run kafka`: a real Apache Kafka broker on loopback with the scoring topic, in the foreground
 * until Ctrl-C or SIGTERM, then stopped and its data removed. Prints one machine-readable line when
 * it serves: `kafka ready: bootstrap=<host:port> bridge=none topic=<topic> partitions=<n>`
 * (`bridge=none`: no Kafka REST bridge is available to this project; docs/real-kafka.md).
 */
import { KAFKA_USER, KafkaSetupError, startKafka, stopWithLauncher } from './lib/kafka.ts'

let kafka: Awaited<ReturnType<typeof startKafka>>
try {
  kafka = await startKafka({ log: (line) => console.log(line) })
} catch (e) {
  console.error(e instanceof KafkaSetupError ? e.message : `npm run kafka: ${(e as Error).message}`)
  process.exit(1)
}
console.log(
  `SASL_PLAINTEXT on ${kafka.saslBootstrap} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; ${KAFKA_USER.username} / ${KAFKA_USER.password})`,
)
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
