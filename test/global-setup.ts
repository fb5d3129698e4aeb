import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import { parse } from 'yaml'
import { startSink } from '../dev/sink/sink.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    sinkUrl: string
    /** The Python server's OpenAPI document (the contract), parsed; null if it is not there. */
    pythonOpenApi: Record<string, unknown> | null
  }
}

/** Where the contract lives, beside this repository (the README links it the same way). */
export const PYTHON_OPENAPI = fileURLToPath(
  new URL('../../shared/spec/calls-score.openapi.yaml', import.meta.url).href,
)

/** Starts the real Kafka REST sink on an ephemeral loopback port for the whole run. */
export default async function setup(project: TestProject) {
  const sink = await startSink({ port: 0 })
  project.provide('sinkUrl', sink.url)
  // workerd cannot read the host's files: the YAML is parsed here and handed to the tests.
  project.provide(
    'pythonOpenApi',
    existsSync(PYTHON_OPENAPI) ? parse(readFileSync(PYTHON_OPENAPI, 'utf8')) : null,
  )
  return () => sink.close()
}
