/**
 * The benchmark's floor: the cheapest Worker that does the same I/O as `POST /calls/score`.
 * It parses the body, cuts the call ids into the same 100-id messages, produces them in one
 * Upstash-dialect call to the same Kafka REST endpoint, reads the answer and says `{}`. No
 * validation, no authentication, no dedupe, no log line: whatever the real worker costs above
 * this is the price of its checks.
 */
import { type FloorBody, floorMessages } from './floor-messages.ts'

type FloorEnv = {
  KAFKA_TOPIC: string
  UPSTASH_KAFKA_REST_URL: string
  UPSTASH_KAFKA_REST_USERNAME: string
  UPSTASH_KAFKA_REST_PASSWORD: string
}

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const messages = floorMessages((await request.json()) as FloorBody, env.KAFKA_TOPIC, 'floor')
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
