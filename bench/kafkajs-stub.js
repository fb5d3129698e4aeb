/**
 * Stands in for kafkajs in the start-up comparison of `npm run bench:native` (a bundle built with
 * `--alias kafkajs=./bench/kafkajs-stub.js`): what src/kafka/native.ts imports at run time, and
 * nothing that works. Never deployed.
 */
export const logLevel = { NOTHING: 0, ERROR: 1, WARN: 2, INFO: 4, DEBUG: 5 }
export class Kafka {
  constructor() {
    throw new Error('kafkajs is stubbed out of this bundle (bench:native start-up comparison)')
  }
}
