/**
 * `npm run projects -- <command>`: the project directory of the internal id form
 * (docs/internal-ids.md), instead of hand-written KV entries.
 *
 *   put <entity/project> <internal id>
 *   get <entity/project>
 *   delete <entity/project>
 *   list [--json]
 *   import <file.json> [--prune]
 *
 * Each command needs a target, as `npm run keys` does: `--local` (the state `npm run dev` uses;
 * `--persist-to <dir>` for another directory), `--remote` (the deployed top-level Worker) or
 * `--env <name>` (a deployed environment; with `--local`, that environment's local state).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Refused, runCli, TARGET_OPTIONS, TARGET_USAGE, targetOf, UsageError } from './lib/cli.ts'
import { describeTarget, type KvTarget } from './lib/kv.ts'
import {
  deleteProject,
  entryProblem,
  getProject,
  importProjects,
  listProjects,
  putProject,
} from './lib/projects.ts'

const USAGE = `usage: npm run projects -- <command> ${TARGET_USAGE}

  put <entity/project> <internal id>
      lists one project (replacing its id if it was listed)
  get <entity/project>
      prints the project's internal id; exit code 1 if it is not listed
  delete <entity/project>
      removes the project; exit code 1 if it was not listed
  list [--json]
      every project and its id; --json prints the object import takes
  import <file.json> [--prune]
      syncs from {"entity/project": "<internal id>", …} in one bulk write (new and changed
      entries only); --prune also removes listed projects the file does not name. One bad
      entry and nothing is written`

function put(t: KvTarget, project: string, id: string) {
  const problem = entryProblem(project, id)
  if (problem) throw new UsageError(problem)
  const before = getProject(t, project)
  putProject(t, project, id)
  console.log(
    before === undefined
      ? `listed ${project} -> ${id} in ${describeTarget(t)}`
      : `${project}: ${before} -> ${id} in ${describeTarget(t)}`,
  )
}

function get(t: KvTarget, project: string) {
  const id = getProject(t, project)
  if (id === undefined) throw new Refused(`${project} is not listed in ${describeTarget(t)}`)
  console.log(id)
}

function remove(t: KvTarget, project: string) {
  if (getProject(t, project) === undefined) {
    throw new Refused(`${project} is not listed in ${describeTarget(t)}`)
  }
  deleteProject(t, project)
  console.log(`removed ${project} from ${describeTarget(t)}`)
}

function list(t: KvTarget, json: boolean) {
  const projects = listProjects(t)
  if (json) console.log(JSON.stringify(projects, null, 2))
  else {
    const rows = [['PROJECT', 'INTERNAL ID'], ...Object.entries(projects)]
    const width = Math.max(...rows.map(([p]) => p?.length ?? 0))
    for (const [p, id] of rows) console.log(`${(p ?? '').padEnd(width)}  ${id}`)
  }
  console.error(`${Object.keys(projects).length} project(s) in ${describeTarget(t)}`)
}

function importFile(t: KvTarget, file: string, prune: boolean) {
  let entries: unknown
  try {
    entries = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new Refused(`${file}: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
    throw new Refused(`${file}: expected {"entity/project": "<internal id>", …}`)
  }
  let summary: ReturnType<typeof importProjects>
  try {
    summary = importProjects(t, entries as Record<string, string>, { prune })
  } catch (e) {
    throw new Refused(`${file}: ${e instanceof Error ? e.message : String(e)}`)
  }
  console.log(
    `${file} -> ${describeTarget(t)}: ${summary.added} added, ${summary.changed} changed, ${summary.unchanged} unchanged, ${summary.removed} removed`,
  )
}

function main(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...TARGET_OPTIONS,
      json: { type: 'boolean' },
      prune: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [command, ...rest] = positionals
  if (values.help || command === undefined) {
    console.log(USAGE)
    return
  }
  const t = targetOf(values)
  const [first, second] = rest
  if (command === 'put' && rest.length === 2 && first && second) put(t, first, second)
  else if (command === 'get' && rest.length === 1 && first) get(t, first)
  else if (command === 'delete' && rest.length === 1 && first) remove(t, first)
  else if (command === 'list' && rest.length === 0) list(t, values.json === true)
  else if (command === 'import' && rest.length === 1 && first) {
    importFile(t, first, values.prune === true)
  } else throw new UsageError(`unknown command: ${positionals.join(' ')}`)
}

runCli(USAGE, main)
