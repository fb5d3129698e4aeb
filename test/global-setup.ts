import type { TestProject } from 'vitest/node'
import { startSink } from '../dev/sink/sink.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    sinkUrl: string
  }
}

/** Starts the real Kafka REST sink on an ephemeral loopback port for the whole run. */
export default async function setup(project: TestProject) {
  const sink = await startSink({ port: 0 })
  project.provide('sinkUrl', sink.url)
  return () => sink.close()
}
