/**
 * kafkajs 2.2.4 as patched at install (patches/, applied by `npm ci`'s postinstall): the defects
 * of the unmaintained client that the project carries a fix for.
 */
// @ts-expect-error untyped internal module of kafkajs
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js'
import { describe, expect, it, vi } from 'vitest'

const quiet = { debug() {}, info() {}, warn() {}, error() {}, namespace: () => quiet }

describe('kafkajs patched at install', () => {
  it('an idle request queue arms no timer (no zero-delay spin with nothing pending)', async () => {
    const timeout = vi.spyOn(globalThis, 'setTimeout')
    const queue = new RequestQueue({
      maxInFlightRequests: null,
      requestTimeout: 30_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'b:9092',
      logger: quiet,
      isConnected: () => true,
    })
    // What a connection does after each answer: check the queue, with nothing waiting in it.
    queue.checkPendingRequests()
    await new Promise((r) => setImmediate(r))
    const armed = timeout.mock.calls.length
    timeout.mockRestore()
    queue.destroy()
    // Unpatched, every check re-armed a zero-delay timer, for ever.
    expect(armed).toBe(0)
  })
})
