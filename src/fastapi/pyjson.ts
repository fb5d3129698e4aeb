/**
 * A port of what FastAPI does with a request body: CPython's `json.loads(bytes)` (encoding
 * sniffing, the C scanner's values, messages and error positions) and the JSON rendering of
 * Starlette's `JSONResponse`.
 *
 * Followed sources (CPython main; the scanner's behaviour there is the 3.13+ one):
 * - Lib/json/__init__.py: `detect_encoding`, `loads` (bytes are decoded with 'surrogatepass').
 * - Lib/json/decoder.py: `JSONDecoder.decode` / `raw_decode` (StopIteration -> "Expecting value").
 * - Modules/_json.c: `scanstring_unicode`, `_parse_object_unicode`, `_parse_array_unicode`,
 *   `_match_number_unicode`, `scan_once_unicode`. The trailing-comma errors ("Illegal trailing
 *   comma before end of object/array", reported at the comma) are the 3.13+ ones (gh-113149);
 *   Lib/test/test_json/test_fail.py on main pins the positions used by the tests.
 * Dependency-free and free of Node APIs: it runs inside workerd.
 *
 * Known gap: Python keeps a lone high surrogate followed by a lone low surrogate (CESU-style
 * UTF-8 bytes ED A0 80 ED B0 80, UTF-32 units, or a `\ud83d` escape before a raw low surrogate)
 * as two code points, while a JS string cannot tell them from one pair; positions after such a
 * sequence come out one lower than CPython's.
 */

/** A JSON integer as Python holds it: exact decimal text (Python int repr, e.g. "-0" becomes "0"). */
export class PyInt {
  constructor(readonly text: string) {}
}

/** A JSON float as Python holds it (NaN/Infinity/-Infinity allowed). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A value produced by `json.loads`: None, bool, str, int, float, list or dict. */
export type PyValue = null | boolean | string | PyInt | PyFloat | PyValue[] | PyObject

/** A Python dict parsed from JSON: insertion order of first occurrence, last value wins on duplicate keys. */
export type PyObject = Map<string, PyValue>

/** json.JSONDecodeError: msg is CPython's message, pos is an index in CODE POINTS into the decoded text. */
export class PyJsonDecodeError extends Error {
  constructor(
    readonly msg: string,
    readonly pos: number,
  ) {
    super(`${msg} (char ${pos})`)
    this.name = 'PyJsonDecodeError'
  }
}

/** Anything else that makes FastAPI answer 400 "There was an error parsing the body": undecodable bytes, an int literal over 4300 digits, nesting deeper than the limit. */
export class PyBodyParseError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PyBodyParseError'
  }
}

// CPython's RecursionError has no fixed depth (it depends on the version and the stack); callers
// may tune it, 1000 matches the classic recursion limit.
const DEFAULT_MAX_DEPTH = 1000
// sys.get_int_max_str_digits() default since 3.11 (CVE-2020-10735); the sign does not count.
const MAX_INT_DIGITS = 4300
// Keeps String.fromCharCode.apply(null, chunk) far below engines' argument-count limits.
const CHUNK = 8192

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const DIGIT_0 = 0x30
const DIGIT_1 = 0x31
const DIGIT_9 = 0x39
const LOWER_E = 0x65
const UPPER_E = 0x45
const LOWER_U = 0x75
const LOWER_N = 0x6e
const LOWER_T = 0x74
const LOWER_F = 0x66
const UPPER_N = 0x4e
const UPPER_I = 0x49
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const LBRACE = 0x7b
const RBRACE = 0x7d

// ---------------------------------------------------------------------------------------------
// Bytes -> str

type PyEncoding =
  | 'utf-8'
  | 'utf-8-sig'
  | 'utf-16'
  | 'utf-16-be'
  | 'utf-16-le'
  | 'utf-32'
  | 'utf-32-be'
  | 'utf-32-le'

// ignoreBOM keeps a U+FEFF that Python would keep (the 'utf-8' path never starts with a BOM, and
// 'utf-8-sig' strips only one).
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

const undecodable = (encoding: string) =>
  new PyBodyParseError(`'${encoding}' codec can't decode the body`)

/** Lib/json/__init__.py detect_encoding, byte for byte. */
function detectEncoding(b: Uint8Array): PyEncoding {
  const n = b.length
  const b0 = b[0] ?? -1
  const b1 = b[1] ?? -1
  const b2 = b[2] ?? -1
  const b3 = b[3] ?? -1
  // UTF-32 first: its little-endian BOM starts with the UTF-16 one.
  if (b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) return 'utf-32'
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return 'utf-32'
  if ((b0 === 0xfe && b1 === 0xff) || (b0 === 0xff && b1 === 0xfe)) return 'utf-16'
  if (b0 === 0xef && b1 === 0xbb && b2 === 0xbf) return 'utf-8-sig'
  if (n >= 4) {
    if (b0 === 0) return b1 !== 0 ? 'utf-16-be' : 'utf-32-be'
    if (b1 === 0) return b2 !== 0 || b3 !== 0 ? 'utf-16-le' : 'utf-32-le'
  } else if (n === 2) {
    if (b0 === 0) return 'utf-16-be'
    if (b1 === 0) return 'utf-16-le'
  }
  return 'utf-8'
}

function unitsToString(units: Uint16Array, length: number): string {
  const parts: string[] = []
  for (let i = 0; i < length; i += CHUNK) {
    const chunk = units.subarray(i, Math.min(i + CHUNK, length))
    // apply() takes the typed array as the array-like it is; spreading it is several times slower.
    parts.push(String.fromCharCode.apply(null, chunk as unknown as number[]))
  }
  return parts.join('')
}

function decodeUtf8Strict(b: Uint8Array): string {
  try {
    return utf8Fatal.decode(b)
  } catch {
    throw undecodable('utf-8')
  }
}

/**
 * CPython's UTF-8 decoder with the 'surrogatepass' handler: well-formed UTF-8 plus ED A0..BF xx,
 * the encodings of U+D800..U+DFFF, which become lone UTF-16 code units. ED is never a
 * continuation byte, so cutting the body at those sequences leaves runs that must be strictly
 * valid on their own (a sequence cut short before one is an error in CPython too).
 */
function decodeUtf8Surrogatepass(b: Uint8Array): string {
  const parts: string[] = []
  let runStart = 0
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] !== 0xed) continue
    const c1 = b[i + 1] ?? 0
    if (c1 < 0xa0 || c1 > 0xbf) continue
    const c2 = b[i + 2] ?? -1
    if (c2 < 0x80 || c2 > 0xbf) throw undecodable('utf-8')
    parts.push(decodeUtf8Strict(b.subarray(runStart, i)))
    parts.push(String.fromCharCode(0xd000 | ((c1 & 0x3f) << 6) | (c2 & 0x3f)))
    i += 2
    runStart = i + 1
  }
  parts.push(decodeUtf8Strict(b.subarray(runStart)))
  return parts.join('')
}

function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8Fatal.decode(b)
  } catch {
    // Only lone surrogates (accepted by surrogatepass) or truly broken bytes get here.
    return decodeUtf8Surrogatepass(b)
  }
}

/** UTF-16 with surrogatepass: any code unit goes through, pairs join by themselves in JS. */
function decodeUtf16(b: Uint8Array, bigEndian: boolean, encoding: string): string {
  if (b.length % 2 !== 0) throw undecodable(encoding)
  const n = b.length / 2
  const out = new Uint16Array(n)
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const x = b[j] ?? 0
    const y = b[j + 1] ?? 0
    out[i] = bigEndian ? (x << 8) | y : (y << 8) | x
  }
  return unitsToString(out, n)
}

/** UTF-32 with surrogatepass: surrogate code points are kept, anything above U+10FFFF fails. */
function decodeUtf32(b: Uint8Array, bigEndian: boolean, encoding: string): string {
  if (b.length % 4 !== 0) throw undecodable(encoding)
  const out = new Uint16Array(b.length / 2)
  let o = 0
  for (let j = 0; j < b.length; j += 4) {
    const x0 = b[j] ?? 0
    const x1 = b[j + 1] ?? 0
    const x2 = b[j + 2] ?? 0
    const x3 = b[j + 3] ?? 0
    const cp = bigEndian
      ? x0 * 0x1000000 + ((x1 << 16) | (x2 << 8) | x3)
      : x3 * 0x1000000 + ((x2 << 16) | (x1 << 8) | x0)
    if (cp > 0x10ffff) throw undecodable(encoding)
    if (cp >= 0x10000) {
      const v = cp - 0x10000
      out[o++] = 0xd800 | (v >> 10)
      out[o++] = 0xdc00 | (v & 0x3ff)
    } else {
      out[o++] = cp
    }
  }
  return unitsToString(out, o)
}

/** json.detect_encoding + bytes.decode(encoding, 'surrogatepass'). Throws PyBodyParseError when CPython would raise UnicodeDecodeError. */
export function decodeJsonBytes(bytes: Uint8Array): string {
  const encoding = detectEncoding(bytes)
  switch (encoding) {
    case 'utf-8':
      return decodeUtf8(bytes)
    case 'utf-8-sig':
      return decodeUtf8(bytes.subarray(3))
    case 'utf-16':
      // The BOM picks the byte order and is consumed.
      return decodeUtf16(bytes.subarray(2), bytes[0] === 0xfe, 'utf-16')
    case 'utf-16-be':
      return decodeUtf16(bytes, true, encoding)
    case 'utf-16-le':
      return decodeUtf16(bytes, false, encoding)
    case 'utf-32':
      return decodeUtf32(bytes.subarray(4), bytes[0] === 0, 'utf-32')
    case 'utf-32-be':
      return decodeUtf32(bytes, true, encoding)
    case 'utf-32-le':
      return decodeUtf32(bytes, false, encoding)
  }
}

// ---------------------------------------------------------------------------------------------
// str -> value (Modules/_json.c, strict=True)

/** CPython counts code points; a JS index counts UTF-16 units, so each complete pair before it counts once. */
function codePointIndex(s: string, index: number): number {
  let pairs = 0
  for (let i = 0; i < index - 1; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        pairs++
        i++
      }
    }
  }
  return index - pairs
}

const isDigit = (c: number) => c >= DIGIT_0 && c <= DIGIT_9

// IS_WHITESPACE in _json.c and WHITESPACE in decoder.py: only these four.
const isJsonWhitespace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

function skipWhitespace(s: string, idx: number): number {
  let i = idx
  while (i < s.length && isJsonWhitespace(s.charCodeAt(i))) i++
  return i
}

function hexValue(c: number): number {
  if (c >= DIGIT_0 && c <= DIGIT_9) return c - DIGIT_0
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

/** Four hex digits starting at `at`, or -1 if one is not a hex digit. */
function hex4(s: string, at: number): number {
  let value = 0
  for (let i = at; i < at + 4; i++) {
    const h = hexValue(s.charCodeAt(i))
    if (h < 0) return -1
    value = (value << 4) | h
  }
  return value
}

/** The char a one-letter escape stands for, or undefined for an invalid escape. */
function simpleEscape(c: number): string | undefined {
  switch (String.fromCharCode(c)) {
    case '"':
      return '"'
    case '\\':
      return '\\'
    case '/':
      return '/'
    case 'b':
      return '\b'
    case 'f':
      return '\f'
    case 'n':
      return '\n'
    case 'r':
      return '\r'
    case 't':
      return '\t'
    default:
      return undefined
  }
}

type Frame = { readonly items: PyValue[]; map?: never } | { readonly map: PyObject; key: string }

/**
 * The C scanner made iterative: the explicit stack replaces the recursion of scan_once_unicode
 * into the object/array parsers, so nesting is bounded by maxDepth and never by the JS stack.
 * It walks UTF-16 units; every decision compares against ASCII, so astral characters (two units,
 * both non-ASCII) behave as one non-matching code point would, and only reported positions need
 * converting.
 */
class Scanner {
  /** Where the last scanned term ends (the C code's *next_idx_ptr / *next_end_ptr). */
  end = 0

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
  ) {}

  fail(msg: string, index: number): PyJsonDecodeError {
    return new PyJsonDecodeError(msg, codePointIndex(this.s, index))
  }

  /** scan_once_unicode from `start`, returning the value; `this.end` is set to the index after it. */
  scanOnce(start: number): PyValue {
    const s = this.s
    const len = s.length
    const stack: Frame[] = []
    let idx = start
    for (;;) {
      let value: PyValue
      if (idx >= len) throw this.fail('Expecting value', idx)
      const c = s.charCodeAt(idx)
      if (c === QUOTE) {
        value = this.scanString(idx + 1)
        idx = this.end
      } else if (c === LBRACKET || c === LBRACE) {
        // _Py_EnterRecursiveCall runs before the container is looked at, even an empty one.
        if (stack.length >= this.maxDepth) {
          throw new PyBodyParseError('maximum recursion depth exceeded while decoding JSON')
        }
        idx = skipWhitespace(s, idx + 1)
        if (c === LBRACKET) {
          if (idx < len && s.charCodeAt(idx) === RBRACKET) {
            value = []
            idx++
          } else {
            stack.push({ items: [] })
            continue
          }
        } else if (idx < len && s.charCodeAt(idx) === RBRACE) {
          value = new Map()
          idx++
        } else {
          const frame = { map: new Map<string, PyValue>(), key: '' }
          idx = this.scanKey(frame, idx)
          stack.push(frame)
          continue
        }
      } else if (c === LOWER_N && s.startsWith('null', idx)) {
        value = null
        idx += 4
      } else if (c === LOWER_T && s.startsWith('true', idx)) {
        value = true
        idx += 4
      } else if (c === LOWER_F && s.startsWith('false', idx)) {
        value = false
        idx += 5
      } else if (c === UPPER_N && s.startsWith('NaN', idx)) {
        value = new PyFloat(Number.NaN)
        idx += 3
      } else if (c === UPPER_I && s.startsWith('Infinity', idx)) {
        value = new PyFloat(Number.POSITIVE_INFINITY)
        idx += 8
      } else if (c === MINUS && s.startsWith('-Infinity', idx)) {
        value = new PyFloat(Number.NEGATIVE_INFINITY)
        idx += 9
      } else {
        value = this.matchNumber(idx)
        idx = this.end
      }

      // Hand the value to the enclosing containers, closing every one that ends here.
      for (;;) {
        const top = stack[stack.length - 1]
        if (top === undefined) {
          this.end = idx
          return value
        }
        idx = skipWhitespace(s, idx)
        const close = top.map === undefined ? RBRACKET : RBRACE
        if (top.map === undefined) top.items.push(value)
        else top.map.set(top.key, value)
        if (idx < len && s.charCodeAt(idx) === close) {
          value = top.map === undefined ? top.items : top.map
          idx++
          stack.pop()
          continue
        }
        if (idx >= len || s.charCodeAt(idx) !== COMMA)
          throw this.fail("Expecting ',' delimiter", idx)
        const comma = idx
        idx = skipWhitespace(s, idx + 1)
        if (idx < len && s.charCodeAt(idx) === close) {
          const kind = top.map === undefined ? 'array' : 'object'
          throw this.fail(`Illegal trailing comma before end of ${kind}`, comma)
        }
        if (top.map !== undefined) idx = this.scanKey(top, idx)
        break
      }
    }
  }

  /** The key, the ':' and the blanks after it; returns where the value starts. */
  private scanKey(frame: { key: string }, at: number): number {
    const s = this.s
    if (at >= s.length || s.charCodeAt(at) !== QUOTE) {
      throw this.fail('Expecting property name enclosed in double quotes', at)
    }
    frame.key = this.scanString(at + 1)
    const idx = skipWhitespace(s, this.end)
    if (idx >= s.length || s.charCodeAt(idx) !== COLON)
      throw this.fail("Expecting ':' delimiter", idx)
    return skipWhitespace(s, idx + 1)
  }

  /** scanstring_unicode: `start` is just after the opening quote. */
  private scanString(start: number): string {
    const s = this.s
    const len = s.length
    const begin = start - 1
    let end = start
    // Runs between escapes are sliced, never grown char by char.
    let chunks: string[] | undefined
    for (;;) {
      let next = end
      let c = 0
      for (; next < len; next++) {
        c = s.charCodeAt(next)
        if (c === QUOTE || c === BACKSLASH) break
        if (c <= 0x1f) throw this.fail('Invalid control character at', next)
      }
      if (next >= len) throw this.fail('Unterminated string starting at', begin)
      if (c === QUOTE) {
        this.end = next + 1
        if (chunks === undefined) return s.slice(end, next)
        chunks.push(s.slice(end, next))
        return chunks.join('')
      }
      chunks ??= []
      if (next !== end) chunks.push(s.slice(end, next))
      next++
      if (next === len) throw this.fail('Unterminated string starting at', begin)
      c = s.charCodeAt(next)
      if (c !== LOWER_U) {
        end = next + 1
        const simple = simpleEscape(c)
        if (simple === undefined) throw this.fail('Invalid \\escape', end - 2)
        chunks.push(simple)
        continue
      }
      next++
      end = next + 4
      // Four digits that reach the very end of the text already fail (`end >= len` in C).
      if (end >= len) throw this.fail('Invalid \\uXXXX escape', next - 1)
      let cp = hex4(s, next)
      if (cp < 0) throw this.fail('Invalid \\uXXXX escape', end - 5)
      // A pair joins only when a complete second escape, and one more char, follow.
      if (
        cp >= 0xd800 &&
        cp <= 0xdbff &&
        end + 6 < len &&
        s.charCodeAt(end) === BACKSLASH &&
        s.charCodeAt(end + 1) === LOWER_U
      ) {
        const c2 = hex4(s, end + 2)
        if (c2 < 0) throw this.fail('Invalid \\uXXXX escape', end + 1)
        if (c2 >= 0xdc00 && c2 <= 0xdfff) {
          cp = 0x10000 + (((cp - 0xd800) << 10) | (c2 - 0xdc00))
          end += 6
        }
      }
      chunks.push(String.fromCodePoint(cp))
    }
  }

  /** _match_number_unicode; a miss is the caller's StopIteration at `start`. */
  private matchNumber(start: number): PyInt | PyFloat {
    const s = this.s
    const endIdx = s.length - 1
    let idx = start
    const negative = s.charCodeAt(idx) === MINUS
    if (negative) {
      idx++
      if (idx > endIdx) throw this.fail('Expecting value', start)
    }
    const first = s.charCodeAt(idx)
    if (first >= DIGIT_1 && first <= DIGIT_9) {
      idx++
      while (idx <= endIdx && isDigit(s.charCodeAt(idx))) idx++
    } else if (first === DIGIT_0) {
      idx++
    } else {
      throw this.fail('Expecting value', start)
    }
    let isFloat = false
    if (idx < endIdx && s.charCodeAt(idx) === DOT && isDigit(s.charCodeAt(idx + 1))) {
      isFloat = true
      idx += 2
      while (idx <= endIdx && isDigit(s.charCodeAt(idx))) idx++
    }
    const e = s.charCodeAt(idx)
    if (idx < endIdx && (e === LOWER_E || e === UPPER_E)) {
      const eStart = idx
      idx++
      const sign = s.charCodeAt(idx)
      if (idx < endIdx && (sign === MINUS || sign === PLUS)) idx++
      while (idx <= endIdx && isDigit(s.charCodeAt(idx))) idx++
      // '1e', '1e+' back off to the mantissa, like the regex in Lib/json/scanner.py.
      if (isDigit(s.charCodeAt(idx - 1))) isFloat = true
      else idx = eStart
    }
    this.end = idx
    const text = s.slice(start, idx)
    if (isFloat) return new PyFloat(Number(text))
    if (text.length - (negative ? 1 : 0) > MAX_INT_DIGITS) {
      throw new PyBodyParseError('Exceeds the limit (4300 digits) for integer string conversion')
    }
    // int('-0') is 0; it is the only int literal whose repr differs from its text.
    return new PyInt(text === '-0' ? '0' : text)
  }
}

/** CPython json.loads(str) semantics on an already decoded string (C scanner, strict=True). Throws PyJsonDecodeError / PyBodyParseError. */
export function pyJsonLoads(text: string, options?: { maxDepth?: number }): PyValue {
  const scanner = new Scanner(text, options?.maxDepth ?? DEFAULT_MAX_DEPTH)
  const value = scanner.scanOnce(skipWhitespace(text, 0))
  const end = skipWhitespace(text, scanner.end)
  if (end !== text.length) throw scanner.fail('Extra data', end)
  return value
}

// ---------------------------------------------------------------------------------------------
// value -> JSON text (Starlette JSONResponse.render)

/** Python float repr (repr(float)) for a finite double, e.g. 1e5 -> "100000.0", 1e16 -> "1e+16", 1e-5 -> "1e-05", -0 -> "-0.0". */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan'
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf'
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  // toExponential() without digits gives the shortest round-tripping digits, like Python's 'r' mode.
  const exp = x.toExponential()
  const sign = x < 0 ? '-' : ''
  const eAt = exp.indexOf('e')
  const mantissa = exp.slice(sign.length, eAt)
  const exponent = Number(exp.slice(eAt + 1))
  const digits = mantissa.replace('.', '')
  // float_repr_style 'short': scientific when decpt <= -4 or decpt > 16, i.e. exponent < -4 or >= 16.
  if (exponent < -4 || exponent >= 16) {
    const magnitude = Math.abs(exponent)
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${magnitude < 10 ? '0' : ''}${magnitude}`
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  const intLength = exponent + 1
  if (digits.length <= intLength)
    return `${sign}${digits}${'0'.repeat(intLength - digits.length)}.0`
  return `${sign}${digits.slice(0, intLength)}.${digits.slice(intLength)}`
}

type RenderFrame =
  | { readonly items: readonly unknown[]; next: number; entries?: never }
  | { readonly entries: Iterator<readonly [unknown, unknown]>; first: boolean }

/** JSON.stringify drops these object members; error dicts built in JS may carry them. */
const skippedInObject = (v: unknown) =>
  v === undefined || typeof v === 'function' || typeof v === 'symbol'

function renderScalar(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null'
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof PyInt) return v.text
  if (v instanceof PyFloat) return Number.isFinite(v.value) ? pyFloatRepr(v.value) : 'null'
  return 'null'
}

/** FastAPI's JSON rendering of a jsonable value: json.dumps(ensure_ascii=False, separators=(',',':')) with Python's float repr and exact ints. Non-finite floats render as null (FastAPI would 500 there; we must not); lone surrogates as \\udXXX escapes (JSON.stringify does that). Accepts PyValue plus plain JS values (string, number, boolean, null, arrays, plain objects) so callers can render {"detail":[...]} error lists containing PyValues. JS numbers render like JSON.stringify (they are ints like list indexes). */
export function renderJson(value: unknown): string {
  // Iterative for the same reason as the scanner: a deep body echoed as an error input must not
  // exhaust the JS stack. Values must be trees (no cycles), as parsed bodies are.
  let out = ''
  const stack: RenderFrame[] = []
  let current: unknown = value
  for (;;) {
    if (Array.isArray(current)) {
      out += '['
      stack.push({ items: current, next: 0 })
    } else if (current instanceof Map) {
      out += '{'
      stack.push({ entries: current.entries(), first: true })
    } else if (
      typeof current === 'object' &&
      current !== null &&
      !(current instanceof PyInt) &&
      !(current instanceof PyFloat)
    ) {
      out += '{'
      const members = Object.entries(current).filter(([, v]) => !skippedInObject(v))
      stack.push({ entries: members[Symbol.iterator](), first: true })
    } else {
      out += renderScalar(current)
    }
    // Close finished containers until one has a next member to write.
    let hasNext = false
    while (!hasNext) {
      const top = stack[stack.length - 1]
      if (top === undefined) return out
      if (top.entries === undefined) {
        if (top.next >= top.items.length) {
          out += ']'
          stack.pop()
          continue
        }
        if (top.next > 0) out += ','
        current = top.items[top.next]
        top.next++
      } else {
        const step = top.entries.next()
        if (step.done === true) {
          out += '}'
          stack.pop()
          continue
        }
        if (!top.first) out += ','
        top.first = false
        out += `${JSON.stringify(String(step.value[0]))}:`
        current = step.value[1]
      }
      hasNext = true
    }
  }
}

// ---------------------------------------------------------------------------------------------
// value -> plain JS (what schema validation sees)

type PlainContainer = unknown[] | Record<string, unknown>

/** Plain JS projection of a PyValue for schema validation: Map -> null-prototype object (so "__proto__" stays a plain key), PyInt -> number (Number(text)), PyFloat -> number. */
export function toPlain(value: PyValue): unknown {
  // Containers are created empty and filled from a work list, so depth costs heap, not stack.
  const work: [PyValue[] | PyObject, PlainContainer][] = []
  const project = (v: PyValue): unknown => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
    if (v instanceof PyInt) return Number(v.text)
    if (v instanceof PyFloat) return v.value
    const target: PlainContainer = Array.isArray(v)
      ? new Array<unknown>(v.length)
      : (Object.create(null) as Record<string, unknown>)
    work.push([v, target])
    return target
  }
  const root = project(value)
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    const [source, target] = item
    if (Array.isArray(source)) {
      const list = target as unknown[]
      for (let i = 0; i < source.length; i++) list[i] = project(source[i] ?? null)
    } else {
      // Own property on a null-prototype object: "__proto__" is an ordinary key here.
      const record = target as Record<string, unknown>
      for (const [k, v] of source) record[k] = project(v)
    }
  }
  return root
}

// ---------------------------------------------------------------------------------------------
// Content-Type

/** str.isspace() of Python, which is what str.strip() removes. */
function isPyWhitespace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    (c >= 0x1c && c <= 0x20) ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  )
}

function pyStrip(s: string): string {
  let start = 0
  let end = s.length
  while (start < end && isPyWhitespace(s.charCodeAt(start))) start++
  while (end > start && isPyWhitespace(s.charCodeAt(end - 1))) end--
  return s.slice(start, end)
}

/** FastAPI's rule: does this Content-Type header value get parsed as JSON? email.message semantics: value split at first ';', Python str.strip() (Python whitespace incl. \x1c-\x1f, \x85, \xa0 etc.), lowercased, must contain exactly one '/', maintype 'application', subtype 'json' or ending with '+json'. null/empty -> false. */
export function isJsonContentType(value: string | null): boolean {
  if (!value) return false
  // email.message.Message.get_content_type: _splitparam(value)[0].lower(), and anything without
  // exactly one '/' becomes text/plain.
  const semicolon = value.indexOf(';')
  const ctype = pyStrip(semicolon < 0 ? value : value.slice(0, semicolon)).toLowerCase()
  const parts = ctype.split('/')
  if (parts.length !== 2) return false
  const [maintype, subtype] = parts
  if (maintype !== 'application' || subtype === undefined) return false
  return subtype === 'json' || subtype.endsWith('+json')
}
