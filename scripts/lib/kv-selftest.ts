/**
 * What the self-tests of the KV command lines (`npm run test:keys`, `npm run test:projects`)
 * share: local state in a temporary directory, the CLI run against it the way npm runs it, and
 * the worker under `wrangler dev` on that same state.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { KvTarget } from './kv.ts'
import { freePort } from './ports.ts'

const require = createRequire(import.meta.url)
const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js')
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** What a command line run printed, and its exit code. */
export type CliRun = { status: number | null; stdout: string; stderr: string }

/** Local state in a temporary directory, and a command line run against it. */
export type LocalState = {
  /** The state's directory. */
  dir: string
  /** The options naming it on a command line. */
  args: string[]
  /** The same, for scripts/lib. */
  target: KvTarget
  /** Runs the CLI with `args` and the state's options, as `npm run <cli> -- …` does. */
  run(...args: string[]): CliRun
  /** Runs the CLI with `args` alone (no target). */
  bare(...args: string[]): CliRun
  /** Removes the directory. */
  remove(): void
}

/** Makes the temporary state of one self-test of the CLI at `cli` (a file URL or path). */
export function localState(name: string, cli: string | URL): LocalState {
  const dir = mkdtempSync(join(tmpdir(), `${name}-selftest-`))
  const args = ['--local', '--persist-to', dir]
  const script = cli instanceof URL ? fileURLToPath(cli) : cli
  const bare = (...cliArgs: string[]): CliRun => {
    const run = spawnSync(process.execPath, [script, ...cliArgs], { cwd: ROOT, encoding: 'utf8' })
    return { status: run.status, stdout: run.stdout, stderr: run.stderr }
  }
  return {
    dir,
    args,
    target: { local: true, persistTo: dir },
    run: (...cliArgs) => bare(...cliArgs, ...args),
    bare,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** The worker under `wrangler dev`, booting in the background. */
export type DevWorker = {
  /** Fetches a path, retried while wrangler dev (re)starts; throws once it has exited. */
  fetch(path: string, init: RequestInit): Promise<Response>
  /** Stops wrangler dev. */
  stop(): void
}

/** Starts `wrangler dev` on the state in `dir` with `vars` (`NAME:value`), without waiting. */
export async function startWranglerDev(
  dir: string,
  vars: Record<string, string>,
): Promise<DevWorker> {
  const spawnDev = async () => {
    const port = await freePort()
    const child: ChildProcess = spawn(
      process.execPath,
      [
        WRANGLER,
        'dev',
        ...['--port', String(port), '--ip', '127.0.0.1', '--persist-to', dir],
        ...[
          '--inspector-port',
          '0',
          '--show-interactive-dev-session=false',
          '--log-level',
          'error',
        ],
        ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
      },
    )
    return { child, base: `http://127.0.0.1:${port}` }
  }
  let dev = await spawnDev()
  let served = false
  let restarts = 0
  return {
    async fetch(path, init) {
      for (let attempt = 0; ; attempt++) {
        try {
          const response = await fetch(`${dev.base}${path}`, init)
          served = true
          return response
        } catch (err) {
          // The free port was taken before wrangler bound it (the CLI checks start local
          // runtimes of their own meanwhile): start again on another one.
          if (!served && dev.child.exitCode !== null && restarts < 3) {
            restarts++
            dev = await spawnDev()
            continue
          }
          // Not up yet, or reloading because a source file changed.
          if (attempt >= 240 || dev.child.exitCode !== null) throw err
          await new Promise((r) => setTimeout(r, 500))
        }
      }
    },
    stop: () => dev.child.kill('SIGINT'),
  }
}
