import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.ts'
import { ApiError, RequestValidationError } from '../errors.ts'
import {
  decodeJsonBytes,
  isJsonContentType,
  PyBodyParseError,
  PyJsonDecodeError,
  type PyValue,
  pyJsonLoads,
  toPlain,
} from './pyjson.ts'
import { missingError, notAnObjectError } from './validation.ts'

/** The request body as FastAPI would hand it to pydantic. */
export type ParsedBody = {
  /** Plain JS value, what zod validates. */
  plain: unknown
  /**
   * True when no string in the body can hold a lone surrogate: the text has none and no `\u`
   * escape that could make one. Lets the edge checks skip testing every string of a large body.
   */
  wellFormed: boolean
  /** The same body with Python's json semantics (exact numbers, dict order); parsed on demand. */
  exact(): PyValue
}

// The Content-Type test of Hono's `validator('json')`; FastAPI's rule is wider (see below).
const HONO_JSON = /^application\/([\w.-]+\+)?json$/i
const lossyUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

const parseFailed = () => new ApiError('body_parse', 'There was an error parsing the body')

function parseExact(text: string): PyValue {
  try {
    return pyJsonLoads(text)
  } catch (e) {
    if (e instanceof PyJsonDecodeError) {
      throw new RequestValidationError([
        {
          type: 'json_invalid',
          loc: ['body', e.pos],
          msg: 'JSON decode error',
          input: {},
          ctx: { error: e.msg },
        },
      ])
    }
    if (e instanceof PyBodyParseError) throw parseFailed()
    throw e
  }
}

/** From this many bytes on, a JSON body is first read as text (see {@link jsonText}). */
export const TEXT_FIRST_BYTES = 16 * 1024

/**
 * True when the runtime's UTF-8 text of a body is exactly what `json.loads(bytes)` decodes:
 * every byte was valid UTF-8 (no U+FFFD stood in for one; CPython's surrogatepass sequences are
 * invalid UTF-8 too), and the bytes cannot have been taken for UTF-16/32 (a NUL among the first
 * two) or carried a BOM the runtime may or may not have dropped. Anything else, including a real
 * U+FFFD in the body, goes to the exact decoding of the bytes.
 */
const decodedLikeCPython = (text: string) =>
  text !== '' &&
  text.charCodeAt(0) !== 0 &&
  text.charCodeAt(0) !== 0xfeff &&
  text.charCodeAt(1) !== 0 &&
  !text.includes('\uFFFD')

/**
 * The body's text as `json.loads(bytes)` decodes it, or FastAPI's error: a missing body, a
 * non-JSON Content-Type (echoed as text), bytes CPython cannot decode (400). Large JSON bodies
 * are read with the runtime's own `text()`, which costs less than copying the bytes into an
 * ArrayBuffer and decoding them again (the benchmark's large and max bodies); a copy of the
 * stream is kept for the rare body whose text cannot be trusted to match.
 */
async function jsonText(
  request: Request,
  contentType: string | null,
  contentLength: number,
): Promise<string> {
  const isJson = isJsonContentType(contentType)
  let source = request
  if (isJson && contentLength >= TEXT_FIRST_BYTES) {
    source = request.clone()
    const text = await request.text()
    if (decodedLikeCPython(text)) return text
  }
  const bytes = new Uint8Array(await source.arrayBuffer())
  if (bytes.length === 0) throw new RequestValidationError([missingError(['body'], null)])
  if (!isJson) {
    // FastAPI echoes the raw text (it would 500 on bytes that are not UTF-8; we replace them).
    throw new RequestValidationError([notAnObjectError(lossyUtf8.decode(bytes))])
  }
  try {
    return decodeJsonBytes(bytes)
  } catch (e) {
    if (e instanceof PyBodyParseError) throw parseFailed()
    throw e
  }
}

/**
 * Reads the body the way FastAPI's request handler does (fastapi/routing.py): an empty body is a
 * missing body whatever its Content-Type; only `application/json` and `application/*+json` are
 * parsed; bytes are decoded like `json.loads(bytes)`; decode errors are 422 `json_invalid` at the
 * code-point position CPython reports; anything else that breaks parsing is a 400.
 *
 * The fast path is the runtime's JSON.parse, which agrees with CPython on every text it accepts
 * that can pass validation; only texts it rejects (NaN, Infinity, real syntax errors) go through
 * the CPython port. The parsed value is handed to `zValidator` so the body is parsed once.
 */
export const fastapiJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const contentType = c.req.header('content-type') ?? null
  const text = await jsonText(c.req.raw, contentType, Number(c.req.header('content-length')))
  let exact: PyValue | undefined
  let plain: unknown
  try {
    plain = JSON.parse(text)
  } catch {
    exact = parseExact(text)
    plain = toPlain(exact)
  }
  c.set('body', {
    plain,
    wellFormed: !text.includes('\\u') && text.isWellFormed(),
    exact: () => (exact ??= parseExact(text)),
  })

  // zValidator reads through HonoRequest.json() and only for Content-Types its own regex accepts.
  // Hono's json() re-parses the cached text; answering it with the parsed value parses once.
  c.req.json = <T>() => Promise.resolve(plain as T)
  const mediaType = (contentType ?? '').split(';')[0]?.trim() ?? ''
  if (!HONO_JSON.test(mediaType)) {
    c.req.raw = new Request(c.req.url, {
      method: c.req.method,
      headers: { 'content-type': 'application/json' },
    })
  }
  await next()
}
