import { describe, expect, it } from 'vitest'
import {
  answer,
  captureLogs,
  createKey,
  fetchWorker,
  INTERNAL_FORM,
  putProjects,
  sdkReaction,
  sinkMessages,
  uniqueTopic,
  weaveSdkBody,
  weaveSdkHeaders,
} from './helpers.ts'

// Weave's Python SDK as it calls the endpoint (StainlessRemoteHTTPTraceServer.calls_score through
// weave/vendor/weave_server_sdk): its headers, its compact body with "wb_user_id": null.

const sdkPost = (key: string, body: string, vars: Record<string, unknown>, attempt = 0) =>
  fetchWorker(
    new Request('https://worker.test/calls/score', {
      method: 'POST',
      headers: weaveSdkHeaders(key, attempt),
      body,
    }),
    vars,
  )

describe("Weave's SDK request, replayed", () => {
  it("is accepted: 200 {} with X-Request-Id, the job carries the key's wb_user_id", async () => {
    const topic = uniqueTopic('sdk')
    const body = weaveSdkBody()
    expect(body).toContain('"wb_user_id":null')
    expect(body).not.toContain('": ')
    let res: Response | undefined
    const logs = await captureLogs(async () => {
      res = await sdkPost(await createKey(), body, { KAFKA_TOPIC: topic })
    })
    if (!res) throw new Error('no response')
    expect(await answer(res)).toEqual({ status: 200, body: {} })
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(sdkReaction(res)).toEqual({ retries: false, wait: null, error: null })
    const [message] = await sinkMessages(topic)
    expect(message?.value).toBe(
      '{"project_id":"acme/support-bot","call_ids":["0190a1b2-0000-7000-8000-000000000001"],"scorer_refs":["weave:///acme/support-bot/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjoxMjM0"}',
    )
    expect(logs.find((l) => l.msg === 'request')).toMatchObject({
      client_retry_count: 0,
      outcome: 'accepted',
    })
  })

  it('its retry of the same call (x-stainless-retry-count 1) is a request like any other', async () => {
    const topic = uniqueTopic('sdk-retry')
    const key = await createKey()
    expect((await sdkPost(key, weaveSdkBody(), { KAFKA_TOPIC: topic }, 0)).status).toBe(200)
    expect((await sdkPost(key, weaveSdkBody(), { KAFKA_TOPIC: topic }, 1)).status).toBe(200)
    // Both attempts were produced: the worker keeps no memory of requests (docs/delivery.md).
    expect(await sinkMessages(topic)).toHaveLength(2)
  })

  it('a body pydantic refuses is the 422 the SDK raises as UnprocessableEntityError', async () => {
    const res = await sdkPost(await createKey(), weaveSdkBody({ call_ids: [1] }), {})
    expect(await answer(res)).toEqual({
      status: 422,
      body: {
        detail: [
          {
            type: 'string_type',
            loc: ['body', 'call_ids', 0],
            msg: 'Input should be a valid string',
            input: 1,
          },
        ],
      },
    })
    expect(sdkReaction(res).error).toBe('UnprocessableEntityError')
  })

  it('a wrong key is the 401 it raises as AuthenticationError, never retried', async () => {
    const res = await sdkPost('not-a-key', weaveSdkBody(), {})
    expect(await answer(res)).toEqual({
      status: 401,
      body: { detail: 'Invalid authentication credentials' },
    })
    expect(sdkReaction(res)).toEqual({ retries: false, wait: null, error: 'AuthenticationError' })
  })

  it('in the internal id form, its scorer ref lands converted', async () => {
    await putProjects({ 'acme/support-bot': 'UHJvamVjdEludGVybmFsSWQ6MTAx' })
    const topic = uniqueTopic('sdk-internal')
    const res = await sdkPost(await createKey(), weaveSdkBody(), {
      KAFKA_TOPIC: topic,
      ...INTERNAL_FORM,
    })
    expect(res.status).toBe(200)
    const [message] = await sinkMessages(topic)
    expect(message?.key).toBe('UHJvamVjdEludGVybmFsSWQ6MTAx')
    expect(message?.value).toContain(
      '"scorer_refs":["weave-trace-internal:///UHJvamVjdEludGVybmFsSWQ6MTAx/object/Toxicity:9f2c"]',
    )
  })
})
