/**
 * What the KV command lines (`npm run keys`, `npm run projects`) share: the target options, their
 * checks, and the exit codes.
 */
import type { KvTarget } from './kv.ts'

/** The command line is wrong: exit code 2, with the usage. */
export class UsageError extends Error {}
/** The command is fine but cannot be done as asked: exit code 1, nothing changed. */
export class Refused extends Error {}

/** How a command names its target, for usage texts. */
export const TARGET_USAGE = '(--local [--persist-to <dir>] | --remote | --env <name>)'

/** The target options, for `parseArgs`. */
export const TARGET_OPTIONS = {
  local: { type: 'boolean' },
  remote: { type: 'boolean' },
  env: { type: 'string' },
  'persist-to': { type: 'string' },
} as const

/** The target the options name; a usage error unless exactly one kind is named. */
export function targetOf(values: {
  local?: boolean | undefined
  remote?: boolean | undefined
  env?: string | undefined
  'persist-to'?: string | undefined
}): KvTarget {
  if (values.local && values.remote) throw new UsageError('--local and --remote exclude each other')
  if (!values.local && !values.remote && values.env === undefined) {
    throw new UsageError('say where: --local, --remote or --env <name>')
  }
  if (values['persist-to'] !== undefined && !values.local) {
    throw new UsageError('--persist-to applies to --local only')
  }
  const t: KvTarget = { local: values.local === true }
  if (values.env !== undefined) t.env = values.env
  if (values['persist-to'] !== undefined) t.persistTo = values['persist-to']
  return t
}

/**
 * Runs a command line's `main`: a usage error (or an unknown option) exits 2 with the usage, a
 * refusal or any other failure exits 1 with its message.
 */
export function runCli(usage: string, main: (argv: string[]) => void): void {
  try {
    main(process.argv.slice(2))
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err)) {
      console.error(`${err.message}\n\n${usage}`)
      process.exitCode = 2
    } else {
      console.error(err instanceof Error ? err.message : err)
      process.exitCode = 1
    }
  }
}
