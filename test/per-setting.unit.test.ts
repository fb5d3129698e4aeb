import { describe, expect, it } from 'vitest'
import { perSetting } from '../src/lib/per-setting.ts'

describe('perSetting', () => {
  it('builds once per setting and again only when the setting changes', () => {
    const built: string[] = []
    const of = perSetting((key: string) => {
      built.push(key)
      return { key }
    })
    const first = of('a')
    expect(of('a')).toBe(first)
    const second = of('b')
    expect(second).toEqual({ key: 'b' })
    expect(of('a')).not.toBe(first)
    expect(built).toEqual(['a', 'b', 'a'])
  })
})
