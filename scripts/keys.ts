/**
 * `npm run keys -- <command>`: API keys for the worker, instead of hand-written KV entries.
 *
 *   create --user <wb_user_id> --project <entity/project|entity/*> [--project …]
 *   list [--json]
 *   revoke <key | hash prefix>
 *
 * Each command needs a target: `--local` (the state `npm run dev` uses; `--persist-to <dir>` for
 * another directory), `--remote` (the deployed top-level Worker) or `--env <name>` (a deployed
 * environment; with `--local`, that environment's local state).
 */
import { parseArgs } from 'node:util'
import { Refused, runCli, TARGET_OPTIONS, TARGET_USAGE, targetOf, UsageError } from './lib/cli.ts'
import {
  deleteKeyRecord,
  hashKey,
  isGrant,
  type ListedKey,
  listKeyRecords,
  newApiKey,
  putKeyRecord,
} from './lib/keys.ts'
import { describeTarget, type KvTarget } from './lib/kv.ts'

const MIN_PREFIX = 8
const SHOWN_PREFIX = 12

const USAGE = `usage: npm run keys -- <command> ${TARGET_USAGE}

  create --user <wb_user_id> --project <entity/project|entity/*> [--project …]
      makes a random key, stores only its SHA-256 record, prints the key once (on stdout)
  list [--json]
      hash prefix, user, created, projects of every key
  revoke <key | hash prefix>
      deletes one key's record; a prefix (at least ${MIN_PREFIX} hex digits) must match exactly one key`

function create(t: KvTarget, user: string | undefined, projects: string[]) {
  if (!user) throw new UsageError('create needs --user <wb_user_id>')
  if (projects.length === 0) throw new UsageError('create needs at least one --project')
  const bad = projects.filter((p) => !isGrant(p))
  if (bad.length > 0) {
    throw new UsageError(`not a grant (entity/project or entity/*): ${bad.join(', ')}`)
  }
  const key = newApiKey()
  const hash = hashKey(key)
  putKeyRecord(t, hash, {
    wb_user_id: user,
    projects: [...new Set(projects)],
    created: new Date().toISOString(),
  })
  console.error(
    `Created a key for ${user} (${projects.join(', ')}) in ${describeTarget(t)}, stored as ` +
      `${hash.slice(0, SHOWN_PREFIX)}…. This is the only time the key is shown:`,
  )
  console.log(key)
}

function row(k: ListedKey): string[] {
  return k.record
    ? [
        k.hash.slice(0, SHOWN_PREFIX),
        k.record.wb_user_id,
        k.record.created ?? '-',
        k.record.projects.join(','),
      ]
    : [k.hash.slice(0, SHOWN_PREFIX), '(not a valid record)', '-', '-']
}

function list(t: KvTarget, json: boolean) {
  const keys = listKeyRecords(t)
  if (json) {
    console.log(
      JSON.stringify(
        keys.map((k) => ({ hash: k.hash, ...k.record })),
        null,
        2,
      ),
    )
    return
  }
  const rows = [['HASH', 'USER', 'CREATED', 'PROJECTS'], ...keys.map(row)]
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]?.length ?? 0)))
  for (const r of rows) {
    console.log(r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  '))
  }
  console.error(`${keys.length} key(s) in ${describeTarget(t)}`)
}

function revoke(t: KvTarget, keyOrPrefix: string | undefined) {
  if (!keyOrPrefix) throw new UsageError('revoke needs a key or a hash prefix')
  const hexPrefix = /^[0-9a-f]+$/.test(keyOrPrefix) && keyOrPrefix.length <= 64
  if (hexPrefix && keyOrPrefix.length < MIN_PREFIX) {
    throw new UsageError(`a hash prefix needs at least ${MIN_PREFIX} hex digits`)
  }
  // Hex text is read as a hash prefix first: a key that is itself a prefix of another key's
  // hash is as likely as guessing that hash. Anything else (or no match) is a key.
  let found = hexPrefix ? listKeyRecords(t, keyOrPrefix) : []
  if (found.length === 0) found = listKeyRecords(t, hashKey(keyOrPrefix))
  if (found.length === 0) {
    // Never echo what may be a key.
    const what = hexPrefix ? `key or hash prefix ${keyOrPrefix}` : 'such key'
    throw new Refused(`no ${what} in ${describeTarget(t)}`)
  }
  if (found.length > 1) {
    throw new Refused(
      `ambiguous prefix ${keyOrPrefix}: ${found.length} keys match, nothing revoked:\n${found
        .map((k) => `  ${k.hash}  ${k.record?.wb_user_id ?? '(not a valid record)'}`)
        .join('\n')}`,
    )
  }
  const [only] = found
  if (!only) return
  deleteKeyRecord(t, only.hash)
  console.log(
    `revoked ${only.hash.slice(0, SHOWN_PREFIX)}… (${only.record?.wb_user_id ?? 'not a valid record'}) in ${describeTarget(t)}`,
  )
}

function main(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      project: { type: 'string', multiple: true },
      ...TARGET_OPTIONS,
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [command, ...rest] = positionals
  if (values.help || command === undefined) {
    console.log(USAGE)
    return
  }
  const t = targetOf(values)
  if (command === 'create' && rest.length === 0) create(t, values.user, values.project ?? [])
  else if (command === 'list' && rest.length === 0) list(t, values.json === true)
  else if (command === 'revoke' && rest.length <= 1) revoke(t, rest[0])
  else throw new UsageError(`unknown command: ${positionals.join(' ')}`)
}

runCli(USAGE, main)
