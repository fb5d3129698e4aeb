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
   * True when no string in the body can hold a lone surrogate. Lets the edge checks skip testing
   * every string of a large body.
   */
  wellFormed: boolean
  /**
   * The same body with Python's json semantics (exact numbers, dict order), parsed on demand: only
   * error answers need it. Rejects with FastAPI's 400 for bytes CPython cannot decode.
   */
  exact(): Promise<PyValue>
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

/**
 * The body's text as `json.loads(bytes)` decodes it, or FastAPI's error: a missing body, a
 * non-JSON Content-Type (echoed as text), bytes CPython cannot decode (400).
 */
async function exactText(request: Request, contentType: string | null): Promise<string> {
  const bytes = new Uint8Array(await request.arrayBuffer())
  if (bytes.length === 0) throw new RequestValidationError([missingError(['body'], null)])
  if (!isJsonContentType(contentType)) {
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

/** What a look at every string of a parsed body, keys included, found. */
type StringScan = { replacement: boolean; wellFormed: boolean }

// U+FFFD, or any surrogate code unit (no `u` flag: halves of well-formed pairs match too).
const SUSPECT = /[\uFFFD\uD800-\uDFFF]/

/**
 * Looks at every string of a parsed JSON value for U+FFFD and surrogates, without recursion (a
 * body may nest deeply). One regular expression test per string: the cheapest per-item test
 * measured (a joined string costs more to build than the tests). A surrogate, paired or not,
 * only makes the edge checks test each string precisely. Stops at the first U+FFFD: the caller
 * then reads the body exactly anyway.
 */
function scanStrings(root: unknown): StringScan {
  const found: StringScan = { replacement: false, wellFormed: true }
  const look = (s: string) => {
    if (!SUSPECT.test(s)) return
    if (s.includes('\uFFFD')) found.replacement = true
    else found.wellFormed = false
  }
  const pending: unknown[] = [root]
  while (pending.length > 0 && !found.replacement) {
    const value = pending.pop()
    if (typeof value === 'string') look(value)
    else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        if (typeof item === 'string') look(item)
        else if (typeof item === 'object' && item !== null) pending.push(item)
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        look(key)
        pending.push(item)
      }
    }
  }
  return found
}

/**
 * The body parsed by the runtime straight from the stream, when that is exactly what CPython
 * would parse; with a copy of the stream kept for the exact reading that error answers need.
 * workerd's `json()` of the request builds no JS string or buffer of the whole body: it measured
 * about 10% of the CPU of a maximal request less than reading the text into JS, 3% to 20% less
 * than reading the bytes and parsing those with `new Response(bytes).json()` on large and maximal
 * requests, and the same on small ones. Its decoding is UTF-8 with one BOM stripped (CPython's
 * 'utf-8-sig' does the same) and U+FFFD for every byte that is not UTF-8: a body it parses means
 * the same to CPython unless some string holds U+FFFD (a replaced byte, or a real one: either way
 * the exact path decides). Bodies CPython reads as UTF-16 or UTF-32 have a NUL or an invalid byte
 * among their first bytes, which the runtime cannot parse. Otherwise the copy, to be read by the
 * exact path.
 */
async function runtimeParsed(
  request: Request,
): Promise<{ plain: unknown; wellFormed: boolean; copy: Request } | { fallback: Request }> {
  const copy = request.clone()
  let plain: unknown
  try {
    plain = await request.json()
  } catch {
    return { fallback: copy }
  }
  const scan = scanStrings(plain)
  if (scan.replacement) return { fallback: copy }
  return { plain, wellFormed: scan.wellFormed, copy }
}

/**
 * Bodies declared at most this long are read as bytes, decoded like CPython and parsed with
 * `JSON.parse` (the exact path's own first step), with no copy of the stream: under workerd the
 * copy (`clone()`, a tee) cost more than the runtime's parse saved on bodies from 0.5 to 40 KB
 * (about 20 µs of CPU on a 563-byte body, 13 µs on a 39 KB one, docs/performance.md). Longer
 * bodies, and bodies of undeclared length, take the runtime's parse of the stream.
 */
export const SMALL_BODY_BYTES = 64 * 1024

const declaredSmall = (length: string | undefined): boolean =>
  length !== undefined && /^\d{1,7}$/.test(length) && Number(length) <= SMALL_BODY_BYTES

/**
 * Reads the body the way FastAPI's request handler does (fastapi/routing.py): an empty body is a
 * missing body whatever its Content-Type; only `application/json` and `application/*+json` are
 * parsed; bytes are decoded like `json.loads(bytes)`; decode errors are 422 `json_invalid` at the
 * code-point position CPython reports; anything else that breaks parsing is a 400.
 *
 * A JSON body longer than {@link SMALL_BODY_BYTES}, or of undeclared length, is parsed by the
 * runtime straight from its stream (see {@link runtimeParsed}), which agrees with CPython on
 * every text it accepts that can pass validation. Every other body (small, empty, not JSON, not
 * parsed by the runtime, holding U+FFFD) is read as bytes (from the copy, when the runtime read
 * the stream), decoded like CPython and parsed with JSON.parse, or with the CPython port where
 * JSON.parse rejects it (NaN, Infinity, syntax errors). The parsed value is handed to
 * `zValidator` so the body is parsed once.
 */
export const fastapiJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const contentType = c.req.header('content-type') ?? null
  let source = c.req.raw
  let body: ParsedBody | undefined
  if (isJsonContentType(contentType) && !declaredSmall(c.req.header('content-length'))) {
    const parsed = await runtimeParsed(source)
    if ('fallback' in parsed) source = parsed.fallback
    else {
      let exact: Promise<PyValue> | undefined
      body = {
        plain: parsed.plain,
        wellFormed: parsed.wellFormed,
        exact: () => (exact ??= exactText(parsed.copy, contentType).then(parseExact)),
      }
    }
  }
  if (body === undefined) {
    const text = await exactText(source, contentType)
    let exact: PyValue | undefined
    let plain: unknown
    try {
      plain = JSON.parse(text)
    } catch {
      exact = parseExact(text)
      plain = toPlain(exact)
    }
    body = {
      plain,
      wellFormed: !text.includes('\\u') && text.isWellFormed(),
      exact: async () => (exact ??= parseExact(text)),
    }
  }
  c.set('body', body)
  const plain = body.plain

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
