import { describe, expect, it } from 'vitest'
import { crc32 } from '../src/kafka/crc32.ts'
import { buildScoreJobs, messageKey, TAIL_CHARS, unique } from '../src/kafka/jobs.ts'

const utf8 = (s: string) => new TextEncoder().encode(s)

describe('crc32', () => {
  // Reference values from Python's zlib.crc32.
  it.each([
    ['', 0],
    ['hello', 907_060_870],
    ['é😀', 2_139_118_086],
  ])('crc32(%j) = %i', (input, expected) => {
    expect(crc32(utf8(input))).toBe(expected)
  })
})

describe('buildScoreJobs', () => {
  const opts = { topic: 'weave.score_calls', projectBuckets: 1, jobId: 'job-1' }

  it('serialises compact JSON in field order with the caller as wb_user_id', () => {
    const [job] = buildScoreJobs(
      { project_id: 'p/q', call_ids: ['a'], scorer_refs: ['r'] },
      'u',
      opts,
    )
    expect(job).toEqual({
      topic: 'weave.score_calls',
      key: 'p/q',
      value: '{"project_id":"p/q","call_ids":["a"],"scorer_refs":["r"],"wb_user_id":"u"}',
      headers: [{ key: 'weave-job-id', value: 'job-1:0' }],
    })
  })

  it('chunks by 100 after dropping duplicates', () => {
    const ids = Array.from({ length: 201 }, (_, i) => `id${i}`)
    const jobs = buildScoreJobs(
      { project_id: 'p/q', call_ids: [...ids, 'id0', 'id5'], scorer_refs: [] },
      'u',
      opts,
    )
    expect(
      jobs.map((j) => (JSON.parse(j.value) as { call_ids: string[] }).call_ids.length),
    ).toEqual([100, 100, 1])
  })

  it('keys by bucket when N > 1 and by project otherwise', () => {
    expect(messageKey('p/q', 'hello', 1)).toBe('p/q')
    expect(messageKey('p/q', 'hello', 7)).toBe(`p/q:${907_060_870 % 7}`)
  })
})

describe('unique', () => {
  it('keeps first occurrences in order and returns the list itself when nothing repeats', () => {
    const ids = ['a', 'b', 'c']
    expect(unique(ids)).toBe(ids)
    expect(unique(['b', 'a', 'b', 'c', 'a', 'a'])).toEqual(['b', 'a', 'c'])
    expect(unique([])).toEqual([])
    expect(unique(['', ''])).toEqual([''])
  })

  it('agrees with a Set on either side of the small-list path, with many repeats and collisions', () => {
    for (const n of [2, 3, 15, 16, 17, 48, 100, 5000]) {
      const list = Array.from(
        { length: n },
        (_, i) => `id-${(i * 7919) % Math.ceil(n / 3)}-${'é😀'.repeat(i % 3)}`,
      )
      expect(unique(list)).toEqual([...new Set(list)])
      const distinct = Array.from({ length: n }, (_, i) => `id-${i}`)
      expect(unique(distinct)).toBe(distinct)
    }
  })

  it('stays right when the ids differ only before their hashed tail (the full-hash fallback)', () => {
    const tail = 'x'.repeat(TAIL_CHARS)
    for (const n of [17, 1000, 5000]) {
      // Same length and same tail: every id lands in one chain of the first pass.
      const sameTail = Array.from(
        { length: n },
        (_, i) => `${String(i % (n - 3)).padStart(5, '0')}${tail}`,
      )
      expect(unique(sameTail)).toEqual([...new Set(sameTail)])
      const distinct = Array.from({ length: n }, (_, i) => `${String(i).padStart(5, '0')}${tail}`)
      expect(unique(distinct)).toBe(distinct)
    }
  })

  it('keeps ids apart whose tails hash alike (hex digits in either case, other characters)', () => {
    // The first pass reads a tail as hex digits: 'ABCDE' and 'abcde' hash alike, and so may
    // characters that are no hex digits; only the comparison of the ids may decide.
    const tails = ['ABCDE', 'abcde', 'AbCdE', '0p0p0', '0@0@0', 'zzzzz', 'jjjjj', '😀😀😀']
    const ids = Array.from({ length: 64 }, (_, i) => `call-${i >> 3}-${tails[i % tails.length]}`)
    expect(unique(ids)).toBe(ids)
    expect(unique([...ids, ...ids.slice(0, 8).reverse()])).toEqual(ids)
  })

  it('dedupes UUID-shaped ids with repeats far apart', () => {
    const ids = Array.from({ length: 10_000 }, () => crypto.randomUUID())
    const withRepeats = [...ids, ids[0] as string, ids[9_999] as string, ids[5_000] as string]
    expect(unique(withRepeats)).toEqual(ids)
    expect(unique(ids)).toBe(ids)
  })
})
