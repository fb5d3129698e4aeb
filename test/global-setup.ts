import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import { parse } from 'yaml'
import { startSink } from '../dev/sink/sink.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    sinkUrl: string
    /** The Python server's OpenAPI document (the contract), parsed. */
    pythonOpenApi: Record<string, unknown>
  }
}

/** The Python server's OpenAPI document for `POST /calls/score`: the contract, kept in the repository. */
export const PYTHON_OPENAPI = fileURLToPath(
  new URL('../spec/calls-score.openapi.yaml', import.meta.url).href,
)

/**
 * The contract, parsed. Throws when it is missing, is not valid YAML or does not describe
 * `POST /calls/score` with component schemas: the tests compare the worker against it, so without
 * it the run must fail rather than pass with nothing compared.
 */
export function loadContract(path: string = PYTHON_OPENAPI): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new Error(`the contract ${path} cannot be read: ${(e as Error).message}`)
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (e) {
    throw new Error(`the contract ${path} is not valid YAML: ${(e as Error).message}`)
  }
  const d = doc as {
    paths?: Record<string, Record<string, unknown> | undefined>
    components?: { schemas?: unknown }
  } | null
  const operation = d?.paths?.['/calls/score']?.post
  const schemas = d?.components?.schemas
  if (typeof operation !== 'object' || operation === null || typeof schemas !== 'object') {
    throw new Error(
      `the contract ${path} does not describe POST /calls/score with its component schemas`,
    )
  }
  return doc as Record<string, unknown>
}

/** Starts the real Kafka REST sink on an ephemeral loopback port for the whole run. */
export default async function setup(project: TestProject) {
  // workerd cannot read the host's files: the YAML is parsed here and handed to the tests.
  project.provide('pythonOpenApi', loadContract())
  const sink = await startSink({ port: 0 })
  project.provide('sinkUrl', sink.url)
  return () => sink.close()
}
