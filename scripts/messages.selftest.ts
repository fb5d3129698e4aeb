/**
 * `npm run messages` reads what is running now (`node --test scripts/messages.selftest.ts`): the
 * sink at SINK_URL even when `.wrangler/dev/` records a broker of an earlier
 * `npm run dev -- --kafka` that is gone, the recorded sink when it answers, and one line (no stack
 * trace) when nothing runs.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type RunningSink, startSink } from '../dev/sink/sink.ts'
import { freePort } from './lib/ports.ts'

const SCRIPT = resolve('scripts/messages.ts')

/**
 * Runs the script in a directory whose `.wrangler/dev/api-key.json` holds `state`. Asynchronous:
 * the sink it reads runs in this process.
 */
async function messages(state: Record<string, string>, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'messages-selftest-'))
  try {
    mkdirSync(join(dir, '.wrangler/dev'), { recursive: true })
    writeFileSync(join(dir, '.wrangler/dev/api-key.json'), JSON.stringify({ key: 'k', ...state }))
    const child = spawn(process.execPath, [SCRIPT], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
    })
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString()
    })
    const status = await new Promise<number | null>((done) => child.once('close', done))
    return { status, stdout, stderr }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('npm run messages', () => {
  let sink: RunningSink
  let deadBroker = ''
  const topic = 'weave.score_calls'

  before(async () => {
    sink = await startSink({ port: 0 })
    deadBroker = `127.0.0.1:${await freePort()}`
    const res = await fetch(`${sink.url}/produce`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('dev:dev-password').toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify([
        { topic, key: 'dev/playground', value: '{"project_id":"dev/playground"}' },
      ]),
    })
    assert.equal(res.status, 200, await res.text())
  })
  after(() => sink.close())

  it('reads the sink at SINK_URL, not the dead broker recorded by an earlier --kafka run', async () => {
    const run = await messages({ kafkaBootstrap: deadBroker, topic }, { SINK_URL: sink.url })
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /key="dev\/playground"/)
    assert.match(run.stdout, new RegExp(`1 message\\(s\\) on ${topic} at ${sink.url}\\n$`))
  })

  it('reads the sink the last npm run dev recorded when it answers', async () => {
    const run = await messages({ sinkUrl: sink.url })
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /1 message\(s\) on weave.score_calls at /)
  })

  it('says in one line, without a stack trace, when nothing is running', async () => {
    const deadSink = `http://127.0.0.1:${await freePort()}`
    for (const [state, env] of [
      [{ kafkaBootstrap: deadBroker, topic }, { SINK_URL: deadSink }],
      [{ sinkUrl: deadSink }, {}],
    ] as const) {
      const run = await messages(state, env)
      assert.equal(run.status, 1)
      assert.equal(run.stdout, '')
      const lines = run.stderr.trimEnd().split('\n')
      assert.equal(lines.length, 1, run.stderr)
      assert.match(lines[0] ?? '', /^npm run messages: nothing (is running|answers)/)
    }
  })
})
