import { describe, expect, it } from 'vitest'
import { KAFKA_MURMUR2_VECTORS } from './fixtures/murmur2-vectors.ts'
import { javaPartition, murmur2 } from './kafka/murmur2.ts'

describe("the real-broker suite's murmur2", () => {
  it("gives Kafka's own UtilsTest vectors (as Java ints)", () => {
    const hash = (s: string) => murmur2(new TextEncoder().encode(s))
    for (const [key, want] of KAFKA_MURMUR2_VECTORS) expect(hash(key), key).toBe(want)
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
