import { beforeAll, describe, expect, it } from 'vitest'
import { SMALL_BODY_BYTES } from '../src/fastapi/body.ts'
import { answer, call, createKey, fetchWorker, streamedRequest, uniqueTopic } from './helpers.ts'

// FastAPI 0.142 / pydantic 2.13 parity, case by case (docs/compatibility.md).
// Positions and messages of JSON errors were produced with CPython's json module.

let key: string
beforeAll(async () => {
  key = await createKey(['acme/support-bot'])
})

const topic = uniqueTopic('validation')
const REF = 'weave:///acme/support-bot/object/Toxicity:9f2c'
const OK = `"project_id":"acme/support-bot","call_ids":["c1"],"scorer_refs":["${REF}"]`

const post = (
  body: string | Uint8Array | undefined,
  contentType: string | null = 'application/json',
) => call({ key, body, contentType, vars: { KAFKA_TOPIC: topic } })

const detail = async (res: Response) => {
  const { status, body } = await answer(res)
  expect(status).toBe(422)
  expect(res.headers.get('content-type')).toBe('application/json')
  return (body as { detail: unknown }).detail
}

const missing = (field: string, input: unknown) => ({
  type: 'missing',
  loc: ['body', field],
  msg: 'Field required',
  input,
})
const stringType = (loc: (string | number)[], input: unknown) => ({
  type: 'string_type',
  loc: ['body', ...loc],
  msg: 'Input should be a valid string',
  input,
})
const notObject = (input: unknown) => ({
  type: 'model_attributes_type',
  loc: ['body'],
  msg: 'Input should be a valid dictionary or object to extract fields from',
  input,
})
const jsonInvalid = (pos: number, error: string) => ({
  type: 'json_invalid',
  loc: ['body', pos],
  msg: 'JSON decode error',
  input: {},
  ctx: { error },
})

describe('bodies that are not a JSON object', () => {
  it('an empty body is a missing body, whatever the Content-Type', async () => {
    const expected = [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]
    expect(await detail(await post(undefined))).toEqual(expected)
    expect(await detail(await post('', 'text/plain'))).toEqual(expected)
    expect(await detail(await post(undefined, null))).toEqual(expected)
  })

  it('JSON null is a missing body too', async () => {
    expect(await detail(await post('null'))).toEqual([
      { type: 'missing', loc: ['body'], msg: 'Field required', input: null },
    ])
  })

  it.each([
    ['[]', []],
    ['[1,"a"]', [1, 'a']],
    ['"x"', 'x'],
    ['0', 0],
    ['false', false],
    ['""', ''],
  ])('%s is model_attributes_type with the value as input', async (body, input) => {
    expect(await detail(await post(body))).toEqual([notObject(input)])
  })

  it('floats echo with Python repr and big ints exactly', async () => {
    const res = await post('1E5')
    expect(await res.clone().text()).toBe(
      '{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":100000.0}]}',
    )
    const big = await post(`{${OK},"n":123456789012345678901234567890,"f":1e16,"g":-0.0}`)
    expect(await big.text()).toContain(
      '"loc":["body","n"],"msg":"Extra inputs are not permitted","input":123456789012345678901234567890}',
    )
  })
})

describe('Content-Type decides whether the body is parsed', () => {
  const json = `{${OK}}`
  it.each([
    'application/json',
    'APPLICATION/JSON; charset=latin-1',
    'application/vnd.api+json',
    'application/+json',
    ' application/json ',
  ])('%s is parsed as JSON', async (ct) => {
    expect((await answer(await post(json, ct))).status).toBe(200)
  })

  it.each([
    'text/plain',
    'text/json',
    'application/x-json',
    'application/json-seq',
    'application',
    'application/json/x',
    'application/x-www-form-urlencoded',
  ])('%s is not parsed: model_attributes_type with the raw text', async (ct) => {
    expect(await detail(await post(json, ct))).toEqual([notObject(json)])
  })

  it('no Content-Type at all is not parsed (FastAPI >= 0.132)', async () => {
    expect(await detail(await post(json, null))).toEqual([notObject(json)])
  })

  it('bytes that are not UTF-8 under a non-JSON type are echoed with replacement characters', async () => {
    expect(await detail(await post(new Uint8Array([0x61, 0xff, 0x62]), 'text/plain'))).toEqual([
      notObject('a\uFFFDb'),
    ])
  })
})

describe('JSON decode errors', () => {
  it.each([
    ['{"project_id": }', 15, 'Expecting value'],
    ['{', 1, 'Expecting property name enclosed in double quotes'],
    ['{"a" 1}', 5, "Expecting ':' delimiter"],
    ['[1,2', 4, "Expecting ',' delimiter"],
    ['{"a":1} x', 8, 'Extra data'],
    ['"abc', 0, 'Unterminated string starting at'],
    ['{"a":"\u0001"}', 6, 'Invalid control character at'],
    ['{"a":"\\q"}', 6, 'Invalid \\escape'],
    ['"\\u12"', 2, 'Invalid \\uXXXX escape'],
    ['{"é€😀": x}', 8, 'Expecting value'],
    ['   ', 3, 'Expecting value'],
    ['nul', 0, 'Expecting value'],
    ["{'a':1}", 1, 'Expecting property name enclosed in double quotes'],
    ['{"a":tru}', 5, 'Expecting value'],
    ['nan', 0, 'Expecting value'],
  ])('%j -> %i %s', async (body, pos, error) => {
    expect(await detail(await post(body))).toEqual([jsonInvalid(pos, error)])
  })

  it('reports a trailing comma the way CPython 3.13+ does', async () => {
    expect(await detail(await post(`{${OK},}`))).toEqual([
      jsonInvalid(OK.length + 1, 'Illegal trailing comma before end of object'),
    ])
    expect(await detail(await post('[1,]'))).toEqual([
      jsonInvalid(2, 'Illegal trailing comma before end of array'),
    ])
  })
})

describe('CPython json quirks FastAPI inherits', () => {
  it('strips a UTF-8 BOM', async () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(`{${OK}}`)])
    expect((await post(bytes)).status).toBe(200)
  })

  it('accepts UTF-16 bodies, with or without a BOM', async () => {
    const text = `{${OK}}`
    const le = new Uint8Array(text.length * 2)
    for (let i = 0; i < text.length; i++) le[i * 2] = text.charCodeAt(i)
    expect((await post(le)).status).toBe(200)
    expect((await post(new Uint8Array([0xff, 0xfe, ...le]))).status).toBe(200)
  })

  it('accepts NaN and Infinity (and renders them as null, where FastAPI would 500)', async () => {
    const res = await post(`{${OK},"x":NaN,"y":-Infinity}`)
    expect(await detail(res)).toEqual([
      {
        type: 'extra_forbidden',
        loc: ['body', 'x'],
        msg: 'Extra inputs are not permitted',
        input: null,
      },
      {
        type: 'extra_forbidden',
        loc: ['body', 'y'],
        msg: 'Extra inputs are not permitted',
        input: null,
      },
    ])
  })

  it('lets the last duplicate key win', async () => {
    expect((await post(`{"project_id":5,${OK},"project_id":"acme/support-bot"}`)).status).toBe(200)
    expect(await detail(await post(`{"call_ids":[],"scorer_refs":[],"call_ids":["x"]}`))).toEqual([
      missing('project_id', { call_ids: ['x'], scorer_refs: [] }),
    ])
  })

  it('keeps keys in body order, integer-like keys included', async () => {
    const res = await post(`{"zeta":1,${OK},"alpha":null,"0":[],"__proto__":{"a":1}}`)
    expect(await detail(res)).toEqual(
      ['zeta', 'alpha', '0', '__proto__'].map((k, i) => ({
        type: 'extra_forbidden',
        loc: ['body', k],
        msg: 'Extra inputs are not permitted',
        input: [1, null, [], { a: 1 }][i],
      })),
    )
  })

  it('answers 400 for undecodable bytes, 4301-digit ints and absurd nesting', async () => {
    const parseError = { status: 400, body: { detail: 'There was an error parsing the body' } }
    expect(await answer(await post(new Uint8Array([0x7b, 0xff, 0x7d])))).toEqual(parseError)
    expect(await answer(await post(`{${OK},"n":${'9'.repeat(4301)}}`))).toEqual(parseError)
    expect(await answer(await post('['.repeat(100_000)))).toEqual(parseError)
    const ok4300 = await post(`{${OK},"n":${'9'.repeat(4300)}}`)
    expect(ok4300.status).toBe(422)
  })
})

describe('field validation', () => {
  it('reports every missing field with the whole body as input', async () => {
    expect(await detail(await post('{}'))).toEqual([
      missing('project_id', {}),
      missing('call_ids', {}),
      missing('scorer_refs', {}),
    ])
  })

  it('does not coerce numbers or booleans to strings, nor wrap a string in a list', async () => {
    const body = '{"project_id":1,"call_ids":"a","scorer_refs":{"x":1},"wb_user_id":true}'
    expect(await detail(await post(body))).toEqual([
      stringType(['project_id'], 1),
      {
        type: 'list_type',
        loc: ['body', 'call_ids'],
        msg: 'Input should be a valid list',
        input: 'a',
      },
      {
        type: 'list_type',
        loc: ['body', 'scorer_refs'],
        msg: 'Input should be a valid list',
        input: { x: 1 },
      },
      stringType(['wb_user_id'], true),
    ])
  })

  it('reports every bad list item by index', async () => {
    const body = `{"project_id":"acme/support-bot","call_ids":["a",1,null,["x"],"b",2.5],"scorer_refs":[false,"${REF}"]}`
    expect(await detail(await post(body))).toEqual([
      stringType(['call_ids', 1], 1),
      stringType(['call_ids', 2], null),
      stringType(['call_ids', 3], ['x']),
      stringType(['call_ids', 5], 2.5),
      stringType(['scorer_refs', 0], false),
    ])
  })

  it('orders errors: fields in model order, then extras in body order', async () => {
    const body = '{"extra1":"e","scorer_refs":[1],"projectId":"p","call_ids":null}'
    expect(await detail(await post(body))).toEqual([
      missing('project_id', { extra1: 'e', scorer_refs: [1], projectId: 'p', call_ids: null }),
      {
        type: 'list_type',
        loc: ['body', 'call_ids'],
        msg: 'Input should be a valid list',
        input: null,
      },
      stringType(['scorer_refs', 0], 1),
      {
        type: 'extra_forbidden',
        loc: ['body', 'extra1'],
        msg: 'Extra inputs are not permitted',
        input: 'e',
      },
      {
        type: 'extra_forbidden',
        loc: ['body', 'projectId'],
        msg: 'Extra inputs are not permitted',
        input: 'p',
      },
    ])
  })

  it('accepts empty strings, empty lists, wb_user_id null and escaped keys', async () => {
    const body = `{"project_id":"acme/support-bot","call_\\u0069ds":[],"scorer_refs":[],"wb_user_id":null}`
    expect((await post(body)).status).toBe(200)
  })
})

describe("the edge's own checks, after parity validation", () => {
  const edge = (vars: Record<string, string>, body: unknown) =>
    call({ key, body, vars: { KAFKA_TOPIC: topic, ...vars } })

  it('rejects scorer refs that are not client refs, every one by index (internal ones saying why)', async () => {
    const refs = [
      REF,
      'weave-trace-internal:///UHJvamVjdDox/object/Toxicity:9f2c',
      'weave:///acme/support-bot/table/T:1',
      'weave:///acme/support-bot/op/Judge:abc/attr/rows/index/0',
      'weave:///acme/support-bot/object/NoDigest',
    ]
    const res = await edge(
      {},
      { project_id: 'acme/support-bot', call_ids: ['c'], scorer_refs: refs },
    )
    expect(await detail(res)).toEqual(
      [1, 2, 4].map((i) => ({
        type: 'value_error',
        loc: ['body', 'scorer_refs', i],
        msg:
          i === 1
            ? 'Value error, scorer ref weave-trace-internal:/// is accepted only where the worker writes internal ids (KAFKA_ID_FORM=internal); this deployment writes the external ids clients send, so send weave:///<entity>/<project>/(object|op)/<name>:<digest>'
            : 'Value error, scorer ref must be a client ref weave:///<entity>/<project>/(object|op)/<name>:<digest>',
        input: refs[i],
        ctx: { error: {} },
      })),
    )
  })

  it("limits list lengths with pydantic's too_long", async () => {
    const res = await edge(
      { MAX_CALL_IDS: '3', MAX_SCORER_REFS: '1' },
      { project_id: 'acme/support-bot', call_ids: ['a', 'b', 'c', 'd'], scorer_refs: [REF, REF] },
    )
    expect(await detail(res)).toEqual([
      {
        type: 'too_long',
        loc: ['body', 'call_ids'],
        msg: 'List should have at most 3 items after validation, not 4',
        input: ['a', 'b', 'c', 'd'],
        ctx: { field_type: 'List', max_length: 3, actual_length: 4 },
      },
      {
        type: 'too_long',
        loc: ['body', 'scorer_refs'],
        msg: 'List should have at most 1 item after validation, not 2',
        input: [REF, REF],
        ctx: { field_type: 'List', max_length: 1, actual_length: 2 },
      },
    ])
  })

  it('rejects lone surrogates, which cannot reach Kafka as UTF-8', async () => {
    const res = await post(
      `{"project_id":"acme/support-bot","call_ids":["ok","\\ud800"],"scorer_refs":[]}`,
    )
    const [error] = (await detail(res)) as { type: string; loc: unknown[] }[]
    expect(error).toMatchObject({ type: 'value_error', loc: ['body', 'call_ids', 1] })
  })

  it('finds a lone surrogate wherever it comes from: an escape, raw bytes, any field', async () => {
    // An escape anywhere (even a harmless one) means every string is checked.
    const escaped = await post(
      `{"project_id":"acme/support-bot","call_ids":["caf\\u00e9","ok","\\udfff"],"scorer_refs":[]}`,
    )
    expect(await detail(escaped)).toMatchObject([
      { type: 'value_error', loc: ['body', 'call_ids', 2] },
    ])
    // Raw ED A0 80 (U+D800 under CPython's surrogatepass) without any escape in the text.
    const utf8 = new TextEncoder()
    const raw = new Uint8Array([
      ...utf8.encode('{"project_id":"acme/support-bot","call_ids":["ok","x'),
      0xed,
      0xa0,
      0x80,
      ...utf8.encode(`"],"scorer_refs":["${REF}"]}`),
    ])
    expect(await detail(await post(raw))).toMatchObject([
      { type: 'value_error', loc: ['body', 'call_ids', 1] },
    ])
    const inProject = await post(`{"project_id":"acme/\\ud800","call_ids":[],"scorer_refs":[]}`)
    expect(await detail(inProject)).toMatchObject([
      { type: 'value_error', loc: ['body', 'project_id'] },
    ])
  })

  it('rejects the halves of a pair split over two call ids', async () => {
    const res = await post(
      `{"project_id":"acme/support-bot","call_ids":["\\ud83d","\\ude00"],"scorer_refs":["${REF}"]}`,
    )
    expect(await detail(res)).toMatchObject([
      { type: 'value_error', loc: ['body', 'call_ids', 0] },
      { type: 'value_error', loc: ['body', 'call_ids', 1] },
    ])
  })

  it('accepts surrogate pairs, escaped or not', async () => {
    const res = await post(
      `{"project_id":"acme/support-bot","call_ids":["\\ud83d\\ude00","😀"],"scorer_refs":["${REF}"]}`,
    )
    expect(await answer(res)).toEqual({ status: 200, body: {} })
  })

  it('answers 413 with a detail above the body limit', async () => {
    const res = await edge({ MAX_BODY_BYTES: '100' }, validBodyOfSize(200))
    expect(await answer(res)).toEqual({
      status: 413,
      body: { detail: 'Request body too large: the limit is 100 bytes' },
    })
  })

  describe('a body streamed without a declared length', () => {
    /** The body as a stream of 50-byte chunks: the request carries no Content-Length. */
    const streamed = async (body: string, vars: Record<string, string>) =>
      fetchWorker(streamedRequest(new TextEncoder().encode(body), key, 50), {
        KAFKA_TOPIC: topic,
        ...vars,
      })

    it('is counted as it streams: 413 above the limit', async () => {
      const res = await streamed(JSON.stringify(validBodyOfSize(200)), { MAX_BODY_BYTES: '100' })
      expect(await answer(res)).toEqual({
        status: 413,
        body: { detail: 'Request body too large: the limit is 100 bytes' },
      })
    })

    it('is read and accepted at or under the limit', async () => {
      const body = JSON.stringify(validBodyOfSize(200))
      const res = await streamed(body, { MAX_BODY_BYTES: String(body.length) })
      expect(await answer(res)).toEqual({ status: 200, body: {} })
    })
  })
})

// Large bodies as the SDK sends them (tens of KB), over the paths a body can take.
const LARGE_BYTES = 16 * 1024

describe(`bodies of ${LARGE_BYTES} bytes and more`, () => {
  // A key of their own: these tests alone send most of what RATE_LIMITER allows a key a minute.
  let key: string
  beforeAll(async () => {
    key = await createKey(['acme/support-bot'])
  })
  const utf8 = new TextEncoder()
  const ids = Array.from({ length: 600 }, (_, i) => `call-${String(i).padStart(30, '0')}`)
  const head = utf8.encode(`{"project_id":"acme/support-bot","scorer_refs":["${REF}"],"call_ids":[`)
  const tail = utf8.encode(`${ids.map((id) => `"${id}"`).join(',')}]}`)
  /** A large body with `middle` (bytes) as the start of the first call id. */
  const large = (middle: Uint8Array | string, prefix: number[] = []) => {
    const m = typeof middle === 'string' ? utf8.encode(middle) : middle
    return new Uint8Array([...prefix, ...head, 0x22, ...m, 0x22, 0x2c, ...tail])
  }
  // Both readings must give the same answer: with a Content-Length of at most SMALL_BODY_BYTES,
  // as every real client sends, the body is read as bytes; streamed without one (counted by the
  // body limit as it streams) it is parsed by the runtime from its stream.
  const both = async (body: Uint8Array) => {
    expect(body.length).toBeGreaterThanOrEqual(LARGE_BYTES)
    const vars = { KAFKA_TOPIC: topic }
    const headers = { 'content-length': String(body.length) }
    const asBytes = await answer(await call({ key, body, headers, vars }))
    const streamed = await fetchWorker(streamedRequest(body, key, 4096), vars)
    expect(await answer(streamed)).toEqual(asBytes)
    return asBytes
  }

  it('accepts plain UTF-8, a real U+FFFD, a UTF-8 BOM and UTF-16', async () => {
    expect(await both(large('plain'))).toEqual({ status: 200, body: {} })
    expect(await both(large('replacement \uFFFD char'))).toEqual({
      status: 200,
      body: {},
    })
    expect(await both(large('bom', [0xef, 0xbb, 0xbf]))).toEqual({ status: 200, body: {} })
    const text = new TextDecoder().decode(large('utf-16'))
    const le = new Uint8Array(text.length * 2)
    for (let i = 0; i < text.length; i++) le[i * 2] = text.charCodeAt(i)
    expect(await both(le)).toEqual({ status: 200, body: {} })
  })

  it('answers for undecodable bytes, lone surrogates and bad JSON as CPython would', async () => {
    expect(await both(large(new Uint8Array([0x61, 0xff, 0x62])))).toEqual({
      status: 400,
      body: { detail: 'There was an error parsing the body' },
    })
    const surrogate = await both(large(new Uint8Array([0x61, 0xed, 0xa0, 0x80])))
    expect(surrogate).toMatchObject({
      status: 422,
      body: { detail: [{ type: 'value_error', loc: ['body', 'call_ids', 0] }] },
    })
    const twoBoms = await both(large('x', [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]))
    expect(twoBoms).toMatchObject({
      status: 422,
      body: { detail: [{ type: 'json_invalid', loc: ['body', 0] }] },
    })
    const truncated = large('é')
    const cut = await both(truncated.subarray(0, truncated.length - 2))
    expect(cut).toMatchObject({ status: 422, body: { detail: [{ type: 'json_invalid' }] } })
  })

  // Leading whitespace makes any body large; the runtime parses such bodies itself (U+FFFD for a
  // bad byte): the answer must still be CPython's, wherever the byte is and whatever else is wrong.
  const padded = (...parts: (string | number)[]) =>
    new Uint8Array([
      ...utf8.encode(' '.repeat(LARGE_BYTES)),
      ...parts.flatMap((p) => (typeof p === 'number' ? [p] : [...utf8.encode(p)])),
    ])
  const parseError = { status: 400, body: { detail: 'There was an error parsing the body' } }

  it('answers 400 for an undecodable byte in a key or a list the runtime could parse', async () => {
    const ok = `"project_id":"acme/support-bot","call_ids":["c1"],"scorer_refs":["${REF}"]`
    expect(await both(padded(`{${ok},"x`, 0xff, '":1}'))).toEqual(parseError)
    const inIds = padded(
      '{"project_id":"acme/support-bot","call_ids":["a","b',
      0xff,
      `"],"scorer_refs":["${REF}"]}`,
    )
    expect(await both(inIds)).toEqual(parseError)
    const invalidToo = padded('{"project_id":1,"call_ids":["', 0xff, '"],"scorer_refs":[]}')
    expect(await both(invalidToo)).toEqual(parseError)
  })

  it('parses a body declared longer than SMALL_BODY_BYTES from its stream, to the same answers', async () => {
    const vars = { KAFKA_TOPIC: topic }
    const over = (...parts: (string | number)[]) => {
      const body = new Uint8Array([
        ...utf8.encode(' '.repeat(SMALL_BODY_BYTES)),
        ...parts.flatMap((p) => (typeof p === 'number' ? [p] : [...utf8.encode(p)])),
      ])
      const headers = { 'content-length': String(body.length) }
      return call({ key, body, headers, vars }).then(answer)
    }
    const ok = `"project_id":"acme/support-bot","scorer_refs":["${REF}"]`
    expect(await over(`{${ok},"call_ids":["a\\uFFFDb","�"]}`)).toEqual({ status: 200, body: {} })
    expect(await over(`{${ok},"call_ids":["a`, 0xff, '"]}')).toEqual(parseError)
    expect(await over(`{${ok},"call_ids":["\\ud83d"]}`)).toMatchObject({
      status: 422,
      body: { detail: [{ type: 'value_error', loc: ['body', 'call_ids', 0] }] },
    })
  })

  it('answers 400 for valid JSON nested deeper than CPython parses', async () => {
    const deep = padded(`{"n":${'['.repeat(50_000)}${']'.repeat(50_000)}}`)
    expect(await both(deep)).toEqual(parseError)
  })

  it('finds lone surrogates, the halves of a pair split over two ids included', async () => {
    const split = padded(
      `{"project_id":"acme/support-bot","call_ids":["ok","\\ud83d","\\ude00"],"scorer_refs":[]}`,
    )
    expect(await both(split)).toMatchObject({
      status: 422,
      body: {
        detail: [
          { type: 'value_error', loc: ['body', 'call_ids', 1] },
          { type: 'value_error', loc: ['body', 'call_ids', 2] },
        ],
      },
    })
    const paired = padded(
      `{"project_id":"acme/support-bot","call_ids":["\\ud83d\\ude00","😀"],"scorer_refs":["${REF}"]}`,
    )
    expect(await both(paired)).toEqual({ status: 200, body: {} })
  })
})

function validBodyOfSize(n: number) {
  return { project_id: 'acme/support-bot', call_ids: ['x'.repeat(n)], scorer_refs: [] }
}
