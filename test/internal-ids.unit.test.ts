import { describe, expect, it } from 'vitest'
import { CACHE_MAX_ENTRIES, kvDirectory } from '../src/projects/directory.ts'
import { splitExternalRef } from '../src/schemas/weave-ref.ts'

describe('splitExternalRef follows rest.split("/", 2) of Weave\'s converter', () => {
  // Expected values from Python: "a//c".split("/", 2) == ["a", "", "c"], and so on.
  it.each([
    ['weave:///acme/bot/object/X:1', { project: 'acme/bot', tail: 'object/X:1' }],
    ['weave:///acme/bot/op/X:1/attr/a/b', { project: 'acme/bot', tail: 'op/X:1/attr/a/b' }],
    ['weave:///acme/bot/', { project: 'acme/bot', tail: '' }],
    ['weave:///acme//c', { project: 'acme/', tail: 'c' }],
    ['weave:////bot/c', { project: '/bot', tail: 'c' }],
    ['weave:///é/机器人/object/X:ü', { project: 'é/机器人', tail: 'object/X:ü' }],
    ['weave:///acme/bot', undefined],
    ['weave:///acme', undefined],
    ['weave:///', undefined],
  ])('%s', (ref, expected) => {
    expect(splitExternalRef(ref)).toEqual(expected)
  })
})

/** A KV stand-in that counts reads, over a plain map. */
function countingKv(values: Record<string, string> = {}) {
  const reads: string[] = []
  const kv = {
    get: async (key: string) => {
      reads.push(key)
      return values[key] ?? null
    },
  } as unknown as KVNamespace
  return { kv, reads }
}

describe('kvDirectory', () => {
  const options = { cacheSeconds: 60, timeoutMs: 1000 }

  it('reads each distinct project once, in parallel, and caches answers and absences', async () => {
    const { kv, reads } = countingKv({ 'a/b': 'AB' })
    const directory = kvDirectory(kv, options)
    const first = await directory.resolve(['a/b', 'c/d', 'a/b'])
    expect(first).toEqual({
      ok: true,
      ids: new Map([
        ['a/b', 'AB'],
        ['c/d', null],
      ]),
      lookups: 2,
    })
    const second = await directory.resolve(['c/d', 'a/b'])
    expect(second).toMatchObject({ ok: true, lookups: 0 })
    expect(reads).toEqual(['a/b', 'c/d'])
  })

  it('keeps one cache per binding, so another namespace never sees these answers', async () => {
    const one = countingKv({ 'a/b': 'ONE' })
    const two = countingKv({ 'a/b': 'TWO' })
    await kvDirectory(one.kv, options).resolve(['a/b'])
    const answer = await kvDirectory(two.kv, options).resolve(['a/b'])
    expect(answer).toMatchObject({ ids: new Map([['a/b', 'TWO']]) })
  })

  it(`is bounded: past ${CACHE_MAX_ENTRIES} entries the oldest is read again`, async () => {
    const { kv, reads } = countingKv()
    const directory = kvDirectory(kv, options)
    const many = Array.from({ length: CACHE_MAX_ENTRIES + 1 }, (_, i) => `e/${i}`)
    await directory.resolve(many)
    reads.length = 0
    await directory.resolve(['e/1', 'e/0'])
    expect(reads).toEqual(['e/0'])
  })

  it('never asks KV about keys KV cannot hold', async () => {
    const { kv, reads } = countingKv()
    const answer = await kvDirectory(kv, options).resolve(['', '.', '..', `a/${'é'.repeat(300)}`])
    expect(answer).toMatchObject({ ok: true, lookups: 0 })
    expect(reads).toEqual([])
  })
})
