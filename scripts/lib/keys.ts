import { createHash } from 'node:crypto'

/** Lowercase hex SHA-256 of an API key: the KV key under which its record is stored. */
export const hashKey = (apiKey: string): string => createHash('sha256').update(apiKey).digest('hex')
