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
function exactTextOf(bytes: Uint8Array, contentType: string | null): string {
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

const bytesOf = async (request: Request) => new Uint8Array(await request.arrayBuffer())

/** {@link exactTextOf} the body of a request not read yet. */
async function exactText(request: Request, contentType: string | null): Promise<string> {
  return exactTextOf(await bytesOf(request), contentType)
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
 * From this many bytes on (by Content-Length, which every real client sends), a JSON body is
 * parsed by the runtime straight from the stream, with a copy of the stream kept for the exact
 * path (see {@link runtimeParsed}); below it, its bytes are read once and the runtime parses
 * those, the bytes being all the exact path needs. Measured:
 * for small bodies the copy of the stream costs more than the bytes, for large ones (41 KB and
 * up) the bytes cost 7% to 12% more CPU per request than the copy.
 */
export const RUNTIME_PARSE_BYTES = 16 * 1024

/** A body the runtime parsed, when that is exactly what CPython would parse (see below). */
type RuntimeParse = { plain: unknown; wellFormed: boolean }

/**
 * The runtime's own `json()` of a body, when that is exactly what CPython would parse; undefined
 * when it is not, or may not be. Its decoding is UTF-8 with one BOM stripped (CPython's
 * 'utf-8-sig' does the same) and U+FFFD for every byte that is not UTF-8: a body it parses means
 * the same to CPython unless some string holds U+FFFD (a replaced byte, or a real one: either way
 * the exact path decides). Bodies CPython reads as UTF-16 or UTF-32 have a NUL or an invalid byte
 * among their first bytes, which the runtime cannot parse.
 */
async function runtimeParse(body: Body): Promise<RuntimeParse | undefined> {
  let plain: unknown
  try {
    plain = await body.json()
  } catch {
    return undefined
  }
  const scan = scanStrings(plain)
  return scan.replacement ? undefined : { plain, wellFormed: scan.wellFormed }
}

/**
 * A large body parsed by the runtime straight from the stream, with a copy of the stream kept
 * for the exact reading that error answers need. workerd's `json()` of the request builds no JS
 * string or buffer of the whole body, which measured about 10% of the CPU of a maximal request
 * less than reading the text or the bytes into JS (the copy of the stream costs little there).
 */
async function runtimeParsed(
  request: Request,
): Promise<(RuntimeParse & { copy: Request }) | { fallback: Request }> {
  const copy = request.clone()
  const parsed = await runtimeParse(request)
  return parsed === undefined ? { fallback: copy } : { ...parsed, copy }
}

/**
 * Reads the body the way FastAPI's request handler does (fastapi/routing.py): an empty body is a
 * missing body whatever its Content-Type; only `application/json` and `application/*+json` are
 * parsed; bytes are decoded like `json.loads(bytes)`; decode errors are 422 `json_invalid` at the
 * code-point position CPython reports; anything else that breaks parsing is a 400.
 *
 * The fast path is the runtime's own JSON parse of a JSON body (see {@link runtimeParse}): of the
 * stream for large bodies, of the bytes for small ones ({@link RUNTIME_PARSE_BYTES}). It agrees
 * with CPython on every text it accepts that can pass validation; every other body (empty, not
 * JSON, not parsed by the runtime, holding U+FFFD) is decoded like CPython from its bytes and
 * parsed with JSON.parse, or with the CPython port where JSON.parse rejects it (NaN, Infinity,
 * syntax errors). The parsed value is handed to `zValidator` so the body is parsed once.
 */
export const fastapiJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const contentType = c.req.header('content-type') ?? null
  const json = isJsonContentType(contentType)
  let source = c.req.raw
  let bytes: Uint8Array | undefined
  let body: ParsedBody | undefined
  if (json && Number(c.req.header('content-length')) >= RUNTIME_PARSE_BYTES) {
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
  } else {
    // A small body's bytes are read once and the runtime parses those (5% less CPU per small
    // request than decoding them in JS for JSON.parse); they are all the exact path needs.
    bytes = await bytesOf(source)
    const read = bytes
    const parsed = json && read.length > 0 ? await runtimeParse(new Response(read)) : undefined
    if (parsed !== undefined) {
      let exact: PyValue | undefined
      body = {
        plain: parsed.plain,
        wellFormed: parsed.wellFormed,
        exact: async () => (exact ??= parseExact(exactTextOf(read, contentType))),
      }
    }
  }
  if (body === undefined) {
    const text = bytes ? exactTextOf(bytes, contentType) : await exactText(source, contentType)
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
