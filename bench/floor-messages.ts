/** The request body as both floors read it: trusted, never validated. */
export type FloorBody = { project_id: string; call_ids: string[]; scorer_refs: string[] }

/** One produce record as the Upstash dialect takes it. */
export type FloorMessage = {
  topic: string
  key: string
  value: string
  headers: { key: string; value: string }[]
}

/**
 * The floors' messages: the worker's 100-id chunks and value bytes, with a job id header on every
 * message as the worker sends, and none of its checks (no dedupe, no key buckets).
 */
export function floorMessages(body: FloorBody, topic: string, wbUserId: string): FloorMessage[] {
  const jobId = crypto.randomUUID()
  const messages: FloorMessage[] = []
  for (let i = 0; i < body.call_ids.length; i += 100) {
    messages.push({
      topic,
      key: body.project_id,
      value: JSON.stringify({
        project_id: body.project_id,
        call_ids: body.call_ids.slice(i, i + 100),
        scorer_refs: body.scorer_refs,
        wb_user_id: wbUserId,
      }),
      headers: [{ key: 'weave-job-id', value: `${jobId}:${messages.length}` }],
    })
  }
  return messages
}
