/**
 * A newcomer's first hour, scripted (`npm run test:quickstart`): from a fresh clone of this
 * repository's HEAD, the README's and the docs' own snippets run as written and give the answers
 * the docs show.
 *
 * - `npm ci` and `npm test` are not repeated: CI runs both (.ci/run); the clone reuses this
 *   checkout's node_modules through a symlink. A hostile `.dev.vars` in the clone changes no
 *   outcome of a suite file (docs/development.md: the suites are hermetic).
 * - README: `npm run dev`, the curl it prints (`{}`), `npm run messages` printing the block the
 *   README shows.
 * - docs/self-hosting.md: its three blocks (`npm run sink`, the key and `npm start`, the curl and
 *   `npm run messages`), after which the clone has no file git would see.
 * - With QUICKSTART_KAFKA=1 (CI's real-broker phase; Java 17+ and Maven):
 *   `npm run dev -- --kafka`, the curl, `npm run messages` reading the broker.
 *
 * The only edits to the snippets: the ports (8787, 8788) become free ones, as other servers may
 * hold those, through PORT and SINK_PORT, which the scripts read.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { stripVTControlCharacters } from 'node:util'
import { freePort } from './lib/ports.ts'

const ROOT = resolve('.')
const clone = join(mkdtempSync(join(tmpdir(), 'quickstart-')), 'weave-calls-score-edge')
const running = new Set<ChildProcess>()

/** The fenced blocks of a Markdown file, with their language. */
function codeBlocks(file: string): { lang: string; text: string }[] {
  const blocks: { lang: string; text: string }[] = []
  const pattern = /^```(\w*)\n([\s\S]*?)^```$/gm
  const text = readFileSync(join(clone, file), 'utf8')
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    blocks.push({ lang: m[1] ?? '', text: m[2] ?? '' })
  }
  return blocks
}

/** A snippet with the documented ports replaced by this run's. */
const withPorts = (text: string, ports: { worker: number; sink: number }) =>
  text
    .replaceAll('127.0.0.1:8787', `127.0.0.1:${ports.worker}`)
    .replaceAll('127.0.0.1:8788', `127.0.0.1:${ports.sink}`)

type Background = { child: ChildProcess; output: () => string }

/** Runs `script` with bash in the clone, in its own process group, in the background. */
function background(script: string, env: Record<string, string> = {}): Background {
  const child = spawn('bash', ['-c', script], {
    cwd: clone,
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let output = ''
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  child.once('exit', () => running.delete(child))
  return { child, output: () => output }
}

/** Runs `script` with bash in the clone to its end; its stdout and stderr. */
async function run(script: string, env: Record<string, string> = {}, timeoutMs = 60_000) {
  const job = background(script, env)
  const code = await new Promise<number | null>((done) => {
    const timer = setTimeout(() => stop(job.child).then(() => done(null)), timeoutMs)
    job.child.once('exit', (c) => {
      clearTimeout(timer)
      done(c)
    })
  })
  return { code, output: job.output() }
}

/** Ends a background job's whole process group: SIGINT, then SIGKILL after 10 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise((done) => child.once('exit', done))
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), s)
    } catch {
      // Already gone.
    }
  }
  signal('SIGINT')
  const timer = setTimeout(() => signal('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
  // Grandchildren that outlive their parent (workerd) are in the same group.
  signal('SIGKILL')
}

async function until(what: string, job: Background, test: (out: string) => boolean, ms: number) {
  const deadline = Date.now() + ms
  while (!test(job.output())) {
    if (job.child.exitCode !== null) assert.fail(`${what} exited:\n${job.output()}`)
    if (Date.now() > deadline) assert.fail(`${what} did not come up in ${ms} ms:\n${job.output()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** The curl `npm run dev` prints, as printed. */
const printedCurl = (out: string) => {
  const m = /^ {2}curl [\s\S]*?\/calls\/score$/m.exec(out)
  assert.ok(m, `no curl in:\n${out}`)
  return m[0]
}

before(() => {
  execFileSync('git', ['clone', '--quiet', ROOT, clone])
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'))
})

after(async () => {
  await Promise.all([...running].map(stop))
  rmSync(join(clone, '..'), { recursive: true, force: true })
})

describe('a fresh clone', () => {
  it('a hostile .dev.vars changes no outcome of the suite', async () => {
    // Settings docs/configuration.md allows, each of which broke tests that read .dev.vars.
    writeFileSync(
      join(clone, '.dev.vars'),
      `${readFileSync(join(clone, '.dev.vars.example'), 'utf8')}
DELIVERY_MODE="queue"
UPSTASH_KAFKA_REST_URL="https://eu1-example.upstash.io"
KAFKA_ID_FORM="internal"
MAX_CALL_IDS="1"
KAFKA_PRODUCE_TIMEOUT_MS="1"
`,
    )
    const r = await run('npx vitest run test/calls-score.happy.test.ts', {}, 150_000)
    rmSync(join(clone, '.dev.vars'))
    assert.equal(r.code, 0, r.output)
    assert.match(stripVTControlCharacters(r.output), /Tests {2}\d+ passed/)
  })

  it("README: npm run dev, its curl answers {}, npm run messages prints the README's block", async () => {
    const ports = { worker: await freePort(), sink: await freePort() }
    const dev = background('npm run dev', {
      PORT: String(ports.worker),
      SINK_PORT: String(ports.sink),
    })
    await until('npm run dev', dev, (out) => out.includes('npm run messages\n'), 120_000)
    const banner = `The worker is up on http://127.0.0.1:${ports.worker} (external id form). Enqueue a scoring job:`
    assert.ok(dev.output().includes(banner), dev.output())
    // The README shows the banner with the documented port.
    const readme = codeBlocks('README.md')
    assert.ok(readme.some((b) => withPorts(b.text, ports).includes(banner)))
    assert.equal(dev.output().split('Your Worker has access to the following bindings').length, 2)
    assert.doesNotMatch(dev.output(), /\n\s+at /, 'a stack trace')

    const curl = await run(printedCurl(dev.output()))
    assert.equal(curl.output, '{}')
    const messages = await run('npm run messages --silent')
    const shown = readme.find((b) => b.text.includes('message(s) on weave.score_calls'))
    assert.ok(shown, 'README shows npm run messages')
    assert.equal(messages.output, withPorts(shown.text, ports))
    await stop(dev.child)
  })

  it('docs/self-hosting.md: the sink, the key and npm start, a curl and messages, as written', async () => {
    const ports = { worker: await freePort(), sink: await freePort() }
    const env = { PORT: String(ports.worker), SINK_PORT: String(ports.sink) }
    const [sinkBlock, startBlock, clientBlock] = codeBlocks('docs/self-hosting.md')
      .filter((b) => b.lang === 'sh')
      .map((b) => withPorts(b.text, ports))
    assert.ok(sinkBlock && startBlock && clientBlock)
    const sink = background(sinkBlock, env)
    await until('npm run sink', sink, (out) => out.includes(`127.0.0.1:${ports.sink}`), 30_000)
    const server = background(startBlock, env)
    await until('npm start', server, (out) => out.includes(`127.0.0.1:${ports.worker}`), 120_000)
    const client = await run(clientBlock)
    assert.equal(client.code, 0, client.output)
    assert.ok(client.output.startsWith('{}'), client.output)
    assert.match(
      client.output,
      new RegExp(
        `1 message\\(s\\) on weave\\.score_calls at http://127\\.0\\.0\\.1:${ports.sink}\\n$`,
      ),
    )
    await stop(server.child)
    await stop(sink.child)
    // Nothing the example wrote is a file git sees (nor, so, one that lint reads).
    assert.equal(execFileSync('git', ['status', '--porcelain'], { cwd: clone }).toString(), '')
  })

  it('README: npm run dev -- --kafka, its curl answers {}, npm run messages reads the broker', {
    skip: process.env.QUICKSTART_KAFKA !== '1' && 'set QUICKSTART_KAFKA=1 (Java 17+, Maven)',
  }, async () => {
    const ports = { worker: await freePort(), sink: await freePort() }
    const dev = background('npm run dev -- --kafka', { PORT: String(ports.worker) })
    await until('npm run dev -- --kafka', dev, (out) => out.includes('npm run messages\n'), 300_000)
    const curl = await run(printedCurl(dev.output()))
    assert.equal(curl.output, '{}')
    const messages = await run('npm run messages --silent')
    assert.match(messages.output, /key="dev\/playground"/)
    assert.match(messages.output, /1 message\(s\) on weave\.score_calls at the broker /)
    await stop(dev.child)
    assert.ok(!existsSync(join(clone, 'api-keys.json')))
  })
})
