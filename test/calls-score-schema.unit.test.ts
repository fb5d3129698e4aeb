import { describe, expect, it } from 'vitest'
import { CallsScoreReq, isPlainCallsScoreRequest } from '../src/schemas/calls-score.ts'

// What a JSON body can hold in one field, and absence.
const ABSENT = Symbol('absent')
const CANDIDATES: unknown[] = [
  ABSENT,
  'p/q',
  '',
  null,
  0,
  1.5,
  true,
  [],
  ['a', 'b'],
  ['a', 1],
  [null],
  [['a']],
  {},
  { a: 'b' },
]
const FIELDS = ['project_id', 'call_ids', 'scorer_refs', 'wb_user_id'] as const

/** Every combination of candidates over the model's four fields. */
function* bodies(): Generator<Record<string, unknown>> {
  const pick = (i: number, acc: Record<string, unknown>): Record<string, unknown>[] => {
    const field = FIELDS[i]
    if (field === undefined) return [acc]
    return CANDIDATES.flatMap((value) =>
      pick(i + 1, value === ABSENT ? acc : { ...acc, [field]: value }),
    )
  }
  yield* pick(0, {})
}

/** The fast path's promise: whatever it accepts, zod accepts, and zod's output equals it. */
function expectSound(value: unknown): boolean {
  const accepted = isPlainCallsScoreRequest(value)
  if (accepted) {
    const parsed = CallsScoreReq.safeParse(value)
    expect(parsed.success).toBe(true)
    expect(parsed.data).toStrictEqual(value)
  }
  return accepted
}

describe('isPlainCallsScoreRequest', () => {
  it('accepts only bodies zod accepts unchanged, over every combination of field values', () => {
    let accepted = 0
    let total = 0
    for (const body of bodies()) {
      total++
      if (expectSound(body)) accepted++
      // Bodies zod accepts that the check does not recognise would only be slower, never
      // different; every body zod accepts here is a plain one, so the check must take them all.
      expect(isPlainCallsScoreRequest(body)).toBe(CallsScoreReq.safeParse(body).success)
    }
    expect(total).toBe(CANDIDATES.length ** FIELDS.length)
    expect(accepted).toBeGreaterThan(0)
  })

  it('leaves unknown keys, __proto__ and non-plain objects to zod', () => {
    const valid = { project_id: 'p/q', call_ids: ['a'], scorer_refs: [] }
    expect(expectSound(valid)).toBe(true)
    expect(expectSound({ ...valid, extra: 1 })).toBe(false)
    expect(
      expectSound(JSON.parse('{"project_id":"p/q","call_ids":[],"scorer_refs":[],"__proto__":{}}')),
    ).toBe(false)
    expect(expectSound(Object.assign(Object.create(null), valid))).toBe(false)
    expect(expectSound(Object.assign(Object.create({ inherited: 1 }), valid))).toBe(false)
    for (const other of [null, 'x', 1, [], [valid]]) expect(expectSound(other)).toBe(false)
  })
})
