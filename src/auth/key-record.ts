import * as z from 'zod'

/**
 * What the `API_KEYS` KV namespace holds under the SHA-256 of an API key. Its own module, free
 * of Worker types, so that the keys CLI (Node) validates records with the worker's own schema.
 */
export const ApiKeyRecordSchema = z.object({
  wb_user_id: z.string().min(1),
  projects: z.array(z.string().min(1)),
  created: z.string().optional(),
})

/** The authenticated caller: whose jobs these are and which projects the key may score in. */
export type ApiKeyRecord = z.infer<typeof ApiKeyRecordSchema>
