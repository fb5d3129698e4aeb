/**
 * The Java client's key placement, computed independently of whatever produced the record:
 * `toPositive(murmur2(keyBytes)) % numPartitions` (Kafka's `Utils.murmur2` and
 * `BuiltInPartitioner.partitionForKey`), which Weave's producer also uses (`murmur2_random`).
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995
  const r = 24
  const length = data.length
  let h = (0x9747b28c ^ length) | 0
  const length4 = length >> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k =
      ((data[i4] as number) & 0xff) +
      (((data[i4 + 1] as number) & 0xff) << 8) +
      (((data[i4 + 2] as number) & 0xff) << 16) +
      (((data[i4 + 3] as number) & 0xff) << 24)
    k = Math.imul(k, m)
    k ^= k >>> r
    k = Math.imul(k, m)
    h = Math.imul(h, m)
    h ^= k
  }
  const tail = length4 * 4
  const rest = length % 4
  // Java's switch falls through from case 3 to case 1; spelled out as conditions.
  if (rest === 3) h ^= ((data[tail + 2] as number) & 0xff) << 16
  if (rest >= 2) h ^= ((data[tail + 1] as number) & 0xff) << 8
  if (rest >= 1) {
    h ^= (data[tail] as number) & 0xff
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** The partition the Java client (and Weave's `murmur2_random`) gives a keyed record. */
export const javaPartition = (key: string, partitions: number): number =>
  (murmur2(new TextEncoder().encode(key)) & 0x7fffffff) % partitions
