/**
 * Byte-level codecs the dialects differ in: which base64 they accept and how they re-serialise
 * an embedded JSON value into record bytes. Each function names the implementation it imitates.
 */

const B64_CHAR = /^[A-Za-z0-9+/]$/

/**
 * Guava `BaseEncoding.base64().decode`, used by Confluent kafka-rest for v3 BINARY data
 * (NoSchemaRecordSerializer#serializeBinary): strict alphabet, no whitespace, trailing `=`
 * optional, but a length of 4n+1 characters is invalid. Null when invalid.
 */
export function decodeGuavaBase64(text: string): Buffer | null {
  const trimmed = text.replace(/=+$/, '')
  if (trimmed.length % 4 === 1) return null
  for (const ch of trimmed) if (!B64_CHAR.test(ch)) return null
  return Buffer.from(trimmed, 'base64')
}

/**
 * Jackson's `byte[]` deserialisation (Base64Variants.MIME_NO_LINEFEEDS, padding required), used
 * by Confluent kafka-rest for v3 header values. Returns the bytes, or Jackson's error message
 * (the openapi's `header_not_base64_encoded` example shows the format).
 */
export function decodeJacksonBase64(text: string): Buffer | string {
  const prefix = `Cannot deserialize value of type \`byte[]\` from String ${JSON.stringify(text)}: `
  const illegal = (ch: string) => {
    const code = (ch.codePointAt(0) ?? 0).toString(16)
    return `${prefix}Illegal character '${ch}' (code 0x${code}) in base64 content`
  }
  const eof =
    "Unexpected end of base64-encoded String: base64 variant 'MIME-NO-LINEFEEDS' expects " +
    "padding (one or more '=' characters) at the end. This Base64Variant might have been " +
    'incorrectly configured'
  // Jackson skips whitespace between 4-character units.
  const compact = [...text].filter((ch) => ch.charCodeAt(0) > 0x20).join('')
  // The openapi documents the empty string failing this way.
  if (compact === '') return prefix + eof
  for (let i = 0; i < compact.length; i++) {
    const ch = compact.charAt(i)
    const pos = i % 4
    if (B64_CHAR.test(ch)) {
      // A data character after padding inside the same unit is as illegal as a stray '='.
      if (pos === 3 && compact.charAt(i - 1) === '=') return illegal(ch)
      continue
    }
    if (ch === '=' && (pos === 2 || pos === 3)) continue
    if (ch === '=') {
      return (
        `${prefix}Unexpected padding character ('=') as character #${pos + 1} of 4-char base64 ` +
        'unit: padding only legal as 3rd or 4th character'
      )
    }
    return illegal(ch)
  }
  if (compact.length % 4 !== 0) return prefix + eof
  return Buffer.from(compact, 'base64')
}

/**
 * Python's `base64.b64decode(s)` without `validate` (Karapace's binary format): characters
 * outside the alphabet are discarded; a data length of 4n+1, or missing padding, is an error.
 * Null when invalid.
 */
export function decodePythonBase64(text: string): Buffer | null {
  // b64decode of a str with non-ASCII characters raises ValueError.
  if ([...text].some((ch) => ch.charCodeAt(0) > 0x7f)) return null
  const kept = text.replace(/[^A-Za-z0-9+/=]/g, '')
  const firstPad = kept.indexOf('=')
  const data = firstPad < 0 ? kept : kept.slice(0, firstPad)
  const pads = firstPad < 0 ? 0 : kept.length - firstPad
  if (data.length % 4 === 1) return null
  const needed = (4 - (data.length % 4)) % 4
  if (pads < needed) return null
  return Buffer.from(data, 'base64')
}

/** Strict RFC 4648 base64 with padding (Redpanda's binary.v2 decoding). Null when invalid. */
export function decodeStrictBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null
  return Buffer.from(text, 'base64')
}

/**
 * `javax.xml.bind.DatatypeConverter.parseBase64Binary` (Confluent v2 binary, EntityUtils) is
 * lenient: it skips characters outside the alphabet. Node's decoder behaves the same way.
 */
export const decodeLenientBase64 = (text: string): Buffer => Buffer.from(text, 'base64')

/**
 * Compact JSON as Jackson writes a JsonNode (Confluent v2 json / v3 JSON via KafkaJsonSerializer):
 * no whitespace, non-ASCII as raw UTF-8, `/` unescaped, keys in the order received, and control
 * characters without a short escape as `\u00XX` in upper-case hex (JsonWriteFeature
 * WRITE_HEX_UPPER_CASE, on by default since Jackson 2.14; JSON.stringify and Python write
 * lower-case). Numbers differ too: Jackson keeps `1.0` and integers beyond 2^53 as written,
 * while a JavaScript round trip gives `1` and loses precision. Avoid such numbers in fixtures.
 */
export const jacksonJson = (value: unknown): string =>
  JSON.stringify(value).replace(/\\(\\|u00[0-9a-f]{2})/g, (m, g: string) =>
    g === '\\' ? m : `\\u00${g.slice(3).toUpperCase()}`,
  )

/**
 * Python `json.dumps(obj, separators=(',', ':'))` with its default `ensure_ascii=True`, as
 * Karapace's json_encode(obj, binary=True, compact=True) writes json.v2 records: every
 * non-ASCII character becomes a `\uXXXX` escape (UTF-16 surrogate pairs above U+FFFF).
 */
export function pythonJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/**
 * rapidjson's Writer (Redpanda's json.v2 records are re-written token by token through it):
 * compact, raw UTF-8, control characters escaped as `\u00XX` with upper-case hex.
 */
export function rapidJson(value: unknown): string {
  return JSON.stringify(value).replace(/\\(\\|u00[0-9a-f]{2})/g, (m, g: string) =>
    g === '\\' ? m : `\\${g.toUpperCase().replace('U', 'u')}`,
  )
}

/** One value of a Concatenated JSON stream: parsed, or where parsing stopped. */
export type StreamItem = { ok: true; value: unknown } | { ok: false; error: string }

/**
 * Splits a Concatenated JSON body (JSON values one after another, optionally separated by
 * whitespace; Confluent v3's multi-record produce) into values. A syntax error ends the stream,
 * as it ends Jackson's MappingIterator in kafka-rest's StreamingResponse.
 */
export function* splitConcatenatedJson(text: string): Generator<StreamItem> {
  let i = 0
  const n = text.length
  while (true) {
    while (i < n && /\s/.test(text.charAt(i))) i++
    if (i >= n) return
    const start = i
    const first = text.charAt(i)
    if (first === '{' || first === '[') {
      let depth = 0
      let inString = false
      for (; i < n; i++) {
        const ch = text.charAt(i)
        if (inString) {
          if (ch === '\\') i++
          else if (ch === '"') inString = false
        } else if (ch === '"') inString = true
        else if (ch === '{' || ch === '[') depth++
        else if (ch === '}' || ch === ']') {
          depth--
          if (depth === 0) {
            i++
            break
          }
        }
      }
      if (depth !== 0) {
        yield { ok: false, error: 'Unexpected end-of-input: expected close marker for Object' }
        return
      }
    } else if (first === '"') {
      i++
      while (i < n && text.charAt(i) !== '"') i += text.charAt(i) === '\\' ? 2 : 1
      i++
    } else {
      while (i < n && !/[\s{["]/.test(text.charAt(i))) i++
    }
    try {
      yield { ok: true, value: JSON.parse(text.slice(start, i)) }
    } catch (e) {
      yield { ok: false, error: e instanceof Error ? e.message : String(e) }
      return
    }
  }
}
