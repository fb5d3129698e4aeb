import { describe, expect, it } from 'vitest'
import { TIMED_OUT, withTimeout } from '../src/lib/timeout.ts'

const later = <T>(ms: number, settle: () => T) =>
  new Promise<T>((resolve) => setTimeout(() => resolve(settle()), ms))

describe('withTimeout', () => {
  it('gives the value of a promise that settles in time', async () => {
    await expect(withTimeout(Promise.resolve(7), 1000)).resolves.toBe(7)
    await expect(
      withTimeout(
        later(5, () => 'late but in time'),
        1000,
      ),
    ).resolves.toBe('late but in time')
  })

  it('passes on a rejection that comes in time', async () => {
    await expect(withTimeout(Promise.reject(new Error('boom')), 1000)).rejects.toThrow('boom')
  })

  it('answers TIMED_OUT when the promise is slower, also for a zero or negative budget', async () => {
    const never = new Promise<never>(() => {})
    await expect(withTimeout(never, 10)).resolves.toBe(TIMED_OUT)
    await expect(withTimeout(never, 0)).resolves.toBe(TIMED_OUT)
    await expect(withTimeout(never, -5)).resolves.toBe(TIMED_OUT)
  })

  it('handles a rejection that arrives after the deadline (never unhandled)', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (event: PromiseRejectionEvent) => unhandled.push(event.reason)
    addEventListener('unhandledrejection', onUnhandled)
    try {
      const slowFailure = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('too late')), 30),
      )
      await expect(withTimeout(slowFailure, 5)).resolves.toBe(TIMED_OUT)
      await new Promise((resolve) => setTimeout(resolve, 60))
      expect(unhandled).toEqual([])
    } finally {
      removeEventListener('unhandledrejection', onUnhandled)
    }
  })
})
