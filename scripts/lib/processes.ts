/**
 * Child processes the scripts and benches start: waiting until one serves HTTP, and stopping one
 * that leads a process group of its own with everything under it.
 */
import type { ChildProcess } from 'node:child_process'

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/**
 * Polls `${url}/health` (each probe bounded by a second) until it answers, the child exits, or
 * `timeoutMs` passes; true once it answered. `anyAnswer` counts any HTTP status as up (a server
 * without `/health`); otherwise only a 2xx does.
 */
export async function untilServing(
  url: string,
  child: ChildProcess,
  {
    timeoutMs,
    intervalMs,
    anyAnswer = false,
  }: { timeoutMs: number; intervalMs: number; anyAnswer?: boolean },
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !exited(child)) {
    // The probe's bound covers the body too: a body cut off by it is a failed probe, not a throw.
    const up = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
      .then(async (r) => {
        await r.arrayBuffer()
        return anyAnswer || r.ok
      })
      .catch(() => false)
    if (up) return true
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  return false
}

/**
 * Stops a child spawned `detached` (the leader of its own process group): `signal` to the
 * group, SIGKILL 5 s later if the child has not exited, then SIGKILL to whatever it left in the
 * group.
 */
export async function stopGroup(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const group = child.pid
  // No pid: it never started. (`process.kill(-0)` would signal our own group.)
  if (!group) return
  const kill = (s: NodeJS.Signals) => {
    try {
      process.kill(-group, s)
    } catch {
      // already gone
    }
  }
  if (!exited(child)) {
    const done = new Promise((resolve) => child.once('exit', resolve))
    kill(signal)
    const hard = setTimeout(() => kill('SIGKILL'), 5_000)
    await done
    clearTimeout(hard)
  }
  kill('SIGKILL')
}
