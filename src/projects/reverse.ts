// No Worker types here: `npm run projects` (scripts/lib/projects.ts) writes what the worker reads.

/**
 * Where the reverse entries live in the same namespace: `*internal/<internal id>`, value the JSON
 * list of external projects. No external project contains `*` (`npm run projects` refuses it), and
 * an external id starting with this prefix is never looked up, so the two kinds cannot meet.
 */
export const REVERSE_PREFIX = '*internal/'

/** The reverse entry's key for an internal id. */
export const reverseKey = (internalId: string): string => `${REVERSE_PREFIX}${internalId}`
