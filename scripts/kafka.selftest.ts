/**
 * `npm run kafka` leaves nothing behind however it ends (`node --test scripts/kafka.selftest.ts`,
 * part of `npm run test:kafka`): killed outright (SIGKILL, which it cannot catch), its brokers'
 * JVMs end and its data folder goes, through the watchdog that scripts/lib/kafka.ts starts.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, it } from 'node:test'

const aliveProcess = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return check()
}

describe('npm run kafka', () => {
  it('killed with SIGKILL, leaves no broker JVM and no data folder behind', async () => {
    const child = spawn(process.execPath, ['scripts/kafka.ts', '--brokers', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        output += c.toString()
        if (output.includes('kafka ready:')) resolve()
      })
      child.stderr.on('data', (c: Buffer) => {
        output += c.toString()
      })
      child.once('exit', (code) => reject(new Error(`npm run kafka exited (${code}): ${output}`)))
    })
    let pids: number[] = []
    try {
      await ready
      const m = /data in (\S+); broker pid\(s\) ([\d,]+)/.exec(output)
      assert.ok(m, output)
      const dataDir = m[1] as string
      pids = (m[2] as string).split(',').map(Number)
      assert.equal(pids.length, 2)
      assert.ok(pids.every(aliveProcess) && existsSync(dataDir))
      child.kill('SIGKILL')
      const jvmsGone = await until(() => !pids.some(aliveProcess), 15_000)
      const dataGone = await until(() => !existsSync(dataDir), 5_000)
      assert.ok(jvmsGone, `broker JVM(s) still running: ${pids.filter(aliveProcess)}`)
      assert.ok(dataGone, `data folder left behind: ${dataDir}`)
    } finally {
      // Whatever the outcome, this test leaves nothing running either.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      for (const pid of pids.filter(aliveProcess)) process.kill(pid, 'SIGKILL')
    }
  })
})
