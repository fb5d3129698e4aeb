import { describe, expect, it } from 'vitest'
import { intSetting } from '../src/lib/settings.ts'

describe('intSetting', () => {
  const setting = intSetting(0, 30)

  it('reads an integer var within its range, 0 included', () => {
    expect(setting.parse('0')).toBe(0)
    expect(setting.parse('30')).toBe(30)
    expect(setting.parse(' 7 ')).toBe(7)
  })

  it('refuses an empty or blank var instead of reading it as 0', () => {
    for (const value of ['', ' ', '\t']) {
      const parsed = setting.safeParse(value)
      expect(parsed.success, JSON.stringify(value)).toBe(false)
      expect(parsed.error?.issues[0]?.message).toBe('must be an integer from 0 to 30')
    }
  })

  it('refuses a missing var, a word, a fraction and values out of range', () => {
    for (const value of [undefined, 'soon', '1.5', '-1', '31']) {
      expect(setting.safeParse(value).success, String(value)).toBe(false)
    }
  })
})
