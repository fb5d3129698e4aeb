import { describe, expect, it } from 'vitest'
import { javaPartition, murmur2 } from './kafka/murmur2.ts'

describe("the real-broker suite's murmur2", () => {
  it("gives Kafka's own UtilsTest vectors (as Java ints)", () => {
    const hash = (s: string) => murmur2(new TextEncoder().encode(s))
    expect(hash('21')).toBe(-973932308)
    expect(hash('foobar')).toBe(-790332482)
    expect(hash('a-little-bit-long-string')).toBe(-985981536)
    expect(hash('a-little-bit-longer-string')).toBe(-1486304829)
    expect(hash('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971)
    expect(hash('abc')).toBe(479470107)
    // Printed by Kafka 4.4.0's own Utils.murmur2 on the UTF-8 bytes: multi-byte text hashes as bytes.
    expect(hash('é✓')).toBe(-764550532)
  })

  it('places keys with the sign bit cleared, as toPositive does', () => {
    // -973932308 & 0x7fffffff = 1173551340; mod 6 = 0.
    expect(javaPartition('21', 6)).toBe(1173551340 % 6)
    expect(javaPartition('foobar', 6)).toBe((-790332482 & 0x7fffffff) % 6)
    // Utils.toPositive(Utils.murmur2(bytes)) % 6, as Kafka 4.4.0 prints it.
    expect(javaPartition('a-little-bit-long-string', 6)).toBe(2)
    expect(javaPartition('abc', 6)).toBe(3)
    expect(javaPartition('acme/support-bot', 6)).toBe(4)
    expect(javaPartition('é✓', 6)).toBe(4)
  })
})
