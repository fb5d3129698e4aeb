/**
 * The benchmark's floor: the cheapest Worker that does the same I/O as `POST /calls/score`.
 * It parses the body, cuts the call ids into the same 100-id messages, produces them in one
 * Upstash-dialect call to the same Kafka REST endpoint, reads the answer and says `{}`. No
 * validation, no authentication, no dedupe, no log line: whatever the real worker costs above
 * this is the price of its checks.
 */

type FloorEnv = {
  KAFKA_TOPIC: string
  UPSTASH_KAFKA_REST_URL: string
  UPSTASH_KAFKA_REST_USERNAME: string
  UPSTASH_KAFKA_REST_PASSWORD: string
}

type Body = { project_id: string; call_ids: string[]; scorer_refs: string[] }

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const body = (await request.json()) as Body
    const jobId = crypto.randomUUID()
    const messages = []
    for (let i = 0; i < body.call_ids.length; i += 100) {
      messages.push({
        topic: env.KAFKA_TOPIC,
        key: body.project_id,
        value: JSON.stringify({
          project_id: body.project_id,
          call_ids: body.call_ids.slice(i, i + 100),
          scorer_refs: body.scorer_refs,
          wb_user_id: 'floor',
        }),
        // The real worker tags every message with a job id; the same bytes on the wire.
        headers: [{ key: 'weave-job-id', value: `${jobId}:${messages.length}` }],
      })
    }
    const answer = await fetch(`${env.UPSTASH_KAFKA_REST_URL}/produce`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${btoa(`${env.UPSTASH_KAFKA_REST_USERNAME}:${env.UPSTASH_KAFKA_REST_PASSWORD}`)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(messages),
    })
    await answer.json()
    return new Response('{}', {
      status: answer.ok ? 200 : 503,
      headers: { 'content-type': 'application/json' },
    })
  },
}
