import { describe, expect, it } from 'vitest'
import {
  decodeJsonBytes,
  isJsonContentType,
  PyBodyParseError,
  PyFloat,
  PyInt,
  PyJsonDecodeError,
  type PyObject,
  type PyValue,
  pyFloatRepr,
  pyJsonLoads,
  renderJson,
  toPlain,
} from '../src/fastapi/pyjson.ts'

// Expected values come from CPython: everything but the trailing-comma table was produced by
// `json.loads` on CPython 3.11 (same C scanner); the trailing-comma table follows CPython 3.13+
// (Modules/_json.c after gh-113149, pinned by Lib/test/test_json/test_fail.py on main).

type Outcome = readonly [msg: string, pos: number] | 'body-parse-error' | 'ok'

function outcome(run: () => unknown): Outcome {
  try {
    run()
    return 'ok'
  } catch (e) {
    if (e instanceof PyJsonDecodeError) return [e.msg, e.pos]
    if (e instanceof PyBodyParseError) return 'body-parse-error'
    throw e
  }
}

const hex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => Number.parseInt(x, 16))
const loadsBytes = (h: string) => pyJsonLoads(decodeJsonBytes(hex(h)))
const asMap = (v: PyValue): PyObject => {
  if (!(v instanceof Map)) throw new Error('expected a dict')
  return v
}

describe('pyJsonLoads errors (CPython message and code-point position)', () => {
  const cases: [string, string, number][] = [
    ['', 'Expecting value', 0],
    ['   ', 'Expecting value', 3],
    [' \t\n\r ', 'Expecting value', 5],
    ['x', 'Expecting value', 0],
    ['[', 'Expecting value', 1],
    ['[1', "Expecting ',' delimiter", 2],
    ['[1,', 'Expecting value', 3],
    ['[1 2]', "Expecting ',' delimiter", 3],
    ['{', 'Expecting property name enclosed in double quotes', 1],
    ['{"a"', "Expecting ':' delimiter", 4],
    ['{"a" 1}', "Expecting ':' delimiter", 5],
    ['{"a":', 'Expecting value', 5],
    ['{"a":1', "Expecting ',' delimiter", 6],
    ['{"a":1 "b":2}', "Expecting ',' delimiter", 7],
    ['{"a":1,', 'Expecting property name enclosed in double quotes', 7],
    ['{1:2}', 'Expecting property name enclosed in double quotes', 1],
    ["{'a':1}", 'Expecting property name enclosed in double quotes', 1],
    ['[,1]', 'Expecting value', 1],
    ['[1,,2]', 'Expecting value', 3],
    ['[,]', 'Expecting value', 1],
    ['[1,,]', 'Expecting value', 3],
    ['{,}', 'Expecting property name enclosed in double quotes', 1],
    ['{"a":1,,}', 'Expecting property name enclosed in double quotes', 7],
    ['[1]]', 'Extra data', 3],
    ['1 2', 'Extra data', 2],
    ['"abc', 'Unterminated string starting at', 0],
    ['["abc', 'Unterminated string starting at', 1],
    ['"abc\\', 'Unterminated string starting at', 0],
    ['"a\u0001b"', 'Invalid control character at', 2],
    ['"a\nb"', 'Invalid control character at', 2],
    ['"a\u001fb"', 'Invalid control character at', 2],
    ['"\t"', 'Invalid control character at', 1],
    ['"a\\xb"', 'Invalid \\escape', 2],
    ['"a\\\'"', 'Invalid \\escape', 2],
    ['"\\u12"', 'Invalid \\uXXXX escape', 2],
    ['"\\u123"', 'Invalid \\uXXXX escape', 2],
    ['"\\u1234', 'Invalid \\uXXXX escape', 2],
    ['"\\u12G4"', 'Invalid \\uXXXX escape', 2],
    ['"ab\\uzzzz"', 'Invalid \\uXXXX escape', 4],
    ['"\\ud800\\uzzzz"', 'Invalid \\uXXXX escape', 8],
    ['"\\ud800\\udc00', 'Invalid \\uXXXX escape', 8],
    ['"\\ud800\\udc0"', 'Invalid \\uXXXX escape', 8],
    ['"\\ud800\\udc00x', 'Unterminated string starting at', 0],
    ['nul', 'Expecting value', 0],
    ['nulx', 'Expecting value', 0],
    ['tru', 'Expecting value', 0],
    ['fals', 'Expecting value', 0],
    ['Na', 'Expecting value', 0],
    ['nan', 'Expecting value', 0],
    ['Infinit', 'Expecting value', 0],
    ['-Infinit', 'Expecting value', 0],
    ['-', 'Expecting value', 0],
    ['-x', 'Expecting value', 0],
    ['[-]', 'Expecting value', 1],
    ['--1', 'Expecting value', 0],
    ['-inf', 'Expecting value', 0],
    ['[Infinity, -Infinit]', 'Expecting value', 11],
    ['01', 'Extra data', 1],
    ['1.', 'Extra data', 1],
    ['1.e5', 'Extra data', 1],
    ['1e', 'Extra data', 1],
    ['1e+', 'Extra data', 1],
    ['1.5e', 'Extra data', 3],
    ['1.5e+', 'Extra data', 3],
    ['[1.]', "Expecting ',' delimiter", 2],
    ['[1e]', "Expecting ',' delimiter", 2],
    ['.5', 'Expecting value', 0],
    ['+1', 'Expecting value', 0],
    ['[0e]', "Expecting ',' delimiter", 2],
    ['[0e+]', "Expecting ',' delimiter", 2],
    ['[0e+-1]', "Expecting ',' delimiter", 2],
    ['-01', 'Extra data', 2],
    ['1ee5', 'Extra data', 1],
    ['0x10', 'Extra data', 1],
    ['["\ud83d\ude00", x]', 'Expecting value', 6],
    ['"\ud83d\ude00\u0001"', 'Invalid control character at', 2],
    ['{"\u00e9":1 x}', "Expecting ',' delimiter", 7],
    ['\ud83d\ude00', 'Expecting value', 0],
    ['1 \ud83d\ude00', 'Extra data', 2],
    ['"\ud83d\ude00\ud83d\ude00', 'Unterminated string starting at', 0],
    ['["\ud83d\ude00\ud83d\ude00', 'Unterminated string starting at', 1],
    ['["\ud83d\ude00\\q"]', 'Invalid \\escape', 3],
    ['{"\ud83d\ude00": "\\u12"}', 'Invalid \\uXXXX escape', 8],
    ['["\u00e9\u4e2d\ud83d\ude00\ud83d\ude00", nul]', 'Expecting value', 9],
    ['"\ud83d\ude00\\u12"', 'Invalid \\uXXXX escape', 3],
    ['\ud83d\ude00\ud83d\ude00 x', 'Expecting value', 0],
    ['[1, 2, 3] 4', 'Extra data', 10],
    ['{"a":[1,{"b":nul}]}', 'Expecting value', 13],
    ['true false', 'Extra data', 5],
    ['truex', 'Extra data', 4],
    ['[1 ,2', "Expecting ',' delimiter", 5],
    ['{"a" :', 'Expecting value', 6],
    ['{"a" : 1 , "b" ', "Expecting ':' delimiter", 15],
    ['[1,\n2,\nx]', 'Expecting value', 7],
    ['{"a":{"b":[1,2}}', "Expecting ',' delimiter", 14],
    ['{"a":1}}', 'Extra data', 7],
    ['{"a" 1', "Expecting ':' delimiter", 5],
    ['{"a":1 ]', "Expecting ',' delimiter", 7],
    ['[1}', "Expecting ',' delimiter", 2],
    ['"\\', 'Unterminated string starting at', 0],
    ['"\\u', 'Invalid \\uXXXX escape', 2],
    ['"\\ud800\\', 'Unterminated string starting at', 0],
    ['"\\ud800\\u', 'Invalid \\uXXXX escape', 8],
    ['null null', 'Extra data', 5],
    ['[null,nul]', 'Expecting value', 6],
    ['{"x":fals}', 'Expecting value', 5],
  ]
  it.each(cases)('%j -> %s at %i', (text, msg, pos) => {
    expect(outcome(() => pyJsonLoads(text))).toEqual([msg, pos])
  })
})

describe('trailing commas (CPython 3.13+)', () => {
  const cases: [string, string, number][] = [
    // Lib/test/test_json/test_fail.py (main)
    ['[42,]', 'Illegal trailing comma before end of array', 3],
    ['["spam",]', 'Illegal trailing comma before end of array', 7],
    ['{"spam":42,}', 'Illegal trailing comma before end of object', 10],
    ['{"spam":42 , }', 'Illegal trailing comma before end of object', 11],
    ['[123  , ]', 'Illegal trailing comma before end of array', 6],
    // derived from _parse_array_unicode / _parse_object_unicode (position = the comma)
    ['[1,\n]', 'Illegal trailing comma before end of array', 2],
    ['{"a":{"b":1,}}', 'Illegal trailing comma before end of object', 11],
    ['[[1,],2]', 'Illegal trailing comma before end of array', 3],
    ['[1,]]', 'Illegal trailing comma before end of array', 2],
    ['["\u{1F600}",]', 'Illegal trailing comma before end of array', 4],
    ['{"\u{1F600}":1,}', 'Illegal trailing comma before end of object', 6],
  ]
  it.each(cases)('%j -> %s at %i', (text, msg, pos) => {
    expect(outcome(() => pyJsonLoads(text))).toEqual([msg, pos])
  })
})

describe('pyJsonLoads values', () => {
  it('parses literals, NaN and the infinities', () => {
    expect(pyJsonLoads('[true,false,null]')).toEqual([true, false, null])
    const [nan, inf, negInf] = pyJsonLoads('[NaN, Infinity, -Infinity]') as PyFloat[]
    expect(nan).toBeInstanceOf(PyFloat)
    expect(Number.isNaN(nan?.value)).toBe(true)
    expect(inf?.value).toBe(Number.POSITIVE_INFINITY)
    expect(negInf?.value).toBe(Number.NEGATIVE_INFINITY)
  })

  it('keeps ints exact and normalises -0', () => {
    expect(pyJsonLoads('123456789012345678901234567890')).toEqual(
      new PyInt('123456789012345678901234567890'),
    )
    expect(pyJsonLoads('-0')).toEqual(new PyInt('0'))
    expect(pyJsonLoads('-12')).toEqual(new PyInt('-12'))
  })

  it('parses floats like float()', () => {
    const value = (text: string) => {
      const v = pyJsonLoads(text)
      if (!(v instanceof PyFloat)) throw new Error('expected a float')
      return v.value
    }
    expect(Object.is(value('-0.0'), -0)).toBe(true)
    expect(value('1E-5')).toBe(1e-5)
    expect(value('1.5E+3')).toBe(1500)
    expect(value('1e400')).toBe(Number.POSITIVE_INFINITY)
    expect(value('-1e400')).toBe(Number.NEGATIVE_INFINITY)
    expect(value(`${'1'.repeat(5000)}.0`)).toBe(Number.POSITIVE_INFINITY)
    expect(value('0.1')).toBe(0.1)
  })

  it('decodes escapes and joins only valid surrogate pairs', () => {
    const cases: [string, string][] = [
      ['"\\/\\b\\f\\n\\r\\t\\"\\\\"', '/\b\f\n\r\t"\\'],
      ['"\\u00e9\\u4E2D"', '\u00e9\u4e2d'],
      ['"\\ud800\\udc00"', '\u{10000}'],
      ['"\\uD83D\\uDE00"', '\u{1F600}'],
      ['"\\ud800\\u00e9"', '\ud800\u00e9'],
      ['"\\ud800"', '\ud800'],
      ['"\\udc00\\ud800"', '\udc00\ud800'],
      ['"\\ud800\\ud800\\udc00"', '\ud800\u{10000}'],
      ['"a\x7fb"', 'a\x7fb'],
      ['"\\u0000"', '\0'],
      ['"x\u{1F600}y"', 'x\u{1F600}y'],
      ['""', ''],
    ]
    for (const [text, expected] of cases) expect(pyJsonLoads(text)).toBe(expected)
  })

  it('keeps the first position and the last value of duplicate keys', () => {
    const map = asMap(pyJsonLoads('{"a": 1, "b": 2, "a": 3}'))
    expect([...map.keys()]).toEqual(['a', 'b'])
    expect(map.get('a')).toEqual(new PyInt('3'))
    expect(map.get('b')).toEqual(new PyInt('2'))
  })

  it('treats "__proto__" as an ordinary key', () => {
    const map = asMap(pyJsonLoads('{"__proto__": {"x": 1}, "constructor": 2}'))
    expect([...map.keys()]).toEqual(['__proto__', 'constructor'])
    const plain = toPlain(map) as Record<string, unknown>
    expect(Object.getPrototypeOf(plain)).toBe(null)
    expect(Object.keys(plain)).toEqual(['__proto__', 'constructor'])
    expect(Object.getOwnPropertyDescriptor(plain, '__proto__')?.value).toEqual({ x: 1 })
  })

  it('skips only JSON whitespace around values', () => {
    expect(pyJsonLoads('\t\n[\r\n1\n,\n2 ]\n')).toEqual([new PyInt('1'), new PyInt('2')])
    expect(pyJsonLoads('  {"a" : [ 1 , 2 ] }  ')).toEqual(
      new Map([['a', [new PyInt('1'), new PyInt('2')]]]),
    )
    expect(outcome(() => pyJsonLoads('\u00a01'))).toEqual(['Expecting value', 0])
    expect(outcome(() => pyJsonLoads('\ufeff{}'))).toEqual(['Expecting value', 0])
  })
})

describe('int digit limit (sys.get_int_max_str_digits() = 4300)', () => {
  it.each([
    ['1'.repeat(4300), 'ok'],
    [`-${'1'.repeat(4300)}`, 'ok'],
    ['1'.repeat(4301), 'body-parse-error'],
    [`-${'1'.repeat(4301)}`, 'body-parse-error'],
    [`[${'1'.repeat(4301)}, x]`, 'body-parse-error'],
    [`[x, ${'1'.repeat(4301)}]`, ['Expecting value', 1]],
    [`${'1'.repeat(4301)}.5`, 'ok'],
  ] as [string, Outcome][])('%#', (text, expected) => {
    expect(outcome(() => pyJsonLoads(text))).toEqual(expected)
  })

  it('keeps all 4300 digits', () => {
    const digits = '9'.repeat(4300)
    expect(pyJsonLoads(digits)).toEqual(new PyInt(digits))
  })
})

describe('nesting depth', () => {
  const arrays = (n: number) => '['.repeat(n) + ']'.repeat(n)
  const objects = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`

  it('accepts 1000 levels and rejects 1001 by default', () => {
    expect(outcome(() => pyJsonLoads(arrays(1000)))).toBe('ok')
    expect(outcome(() => pyJsonLoads(arrays(1001)))).toBe('body-parse-error')
    expect(outcome(() => pyJsonLoads(objects(1000)))).toBe('ok')
    expect(outcome(() => pyJsonLoads(objects(1001)))).toBe('body-parse-error')
    expect(outcome(() => pyJsonLoads(`[${'[1],'.repeat(5000)}[]]`))).toBe('ok')
  })

  it('honours maxDepth, counting empty containers too', () => {
    expect(outcome(() => pyJsonLoads('[]', { maxDepth: 1 }))).toBe('ok')
    expect(outcome(() => pyJsonLoads('[1, {}]', { maxDepth: 1 }))).toBe('body-parse-error')
    expect(outcome(() => pyJsonLoads('[[]]', { maxDepth: 2 }))).toBe('ok')
    expect(outcome(() => pyJsonLoads('1', { maxDepth: 0 }))).toBe('ok')
    expect(outcome(() => pyJsonLoads('{}', { maxDepth: 0 }))).toBe('body-parse-error')
  })

  it('reports what comes before the limit first', () => {
    expect(outcome(() => pyJsonLoads('['.repeat(500)))).toEqual(['Expecting value', 500])
    expect(outcome(() => pyJsonLoads(`[x${'['.repeat(2000)}`))).toEqual(['Expecting value', 1])
    expect(outcome(() => pyJsonLoads('['.repeat(2000)))).toBe('body-parse-error')
  })

  it('survives 100000 levels without touching the JS stack', () => {
    expect(outcome(() => pyJsonLoads('['.repeat(100_000)))).toBe('body-parse-error')
    expect(outcome(() => pyJsonLoads(arrays(100_000)))).toBe('body-parse-error')
    const deep = pyJsonLoads(arrays(100_000), { maxDepth: 100_000 })
    expect(renderJson(deep)).toBe(arrays(100_000))
    let plain = toPlain(deep)
    let depth = 0
    while (Array.isArray(plain) && plain.length > 0) {
      plain = plain[0]
      depth++
    }
    expect(depth).toBe(99_999)
  })
})

describe('decodeJsonBytes (detect_encoding + surrogatepass)', () => {
  const cases: [string, string | null][] = [
    ['efbbbf7b2261223a317d', '{"a":1}'],
    ['efbbbfefbbbf7b7d', '\ufeff{}'],
    ['efbbbf', ''],
    ['20efbbbf7b7d', ' \ufeff{}'],
    ['fffe7b002200610022003a002200e9003dd800de22007d00', '{"a":"\u00e9\ud83d\ude00"}'],
    ['feff005b0031005d', '[1]'],
    ['fefffeff0031', '\ufeff1'],
    ['007b002200610022003a0031007d', '{"a":1}'],
    ['7b002200610022003a0031007d00', '{"a":1}'],
    ['31000000', '1'],
    ['0000005b000000310000005d', '[1]'],
    ['fffe00005b000000310000005d000000', '[1]'],
    ['0000feff0000005b000000310000005d', '[1]'],
    ['5b0000002200000000f60100220000005d000000', '["\ud83d\ude00"]'],
    ['31003200', '12'],
    ['3100', '1'],
    ['0031', '1'],
    ['310000', '1\u0000\u0000'],
    ['00', '\u0000'],
    ['000000', '\u0000\u0000\u0000'],
    ['22eda08022', '"\ud800"'],
    ['22c3a9eda080f09f988022', '"\u00e9\ud800\ud83d\ude00"'],
    ['22edbfbf22', '"\udfff"'],
    ['22ee808022', '"\ue000"'],
    ['22f090808022', '"\ud800\udc00"'],
    ['22f48fbfbf22', '"\udbff\udfff"'],
    ['22e0a08022', '"\u0800"'],
    ['22c28022', '"\u0080"'],
    ['22ed9fbf22', '"\ud7ff"'],
    ['220000d82200', '"\ud800"'],
    ['00d80000', '\u00d8\u0000'],
    ['fffe0000', ''],
    ['fffe', ''],
    ['feff', ''],
    ['00001100', '\u1100'],
    ['00dc00d8', '\u00dc\u00d8'],
    ['5b0000d8', '[\ud800'],
    ['fffe310000', null],
    ['3100000000', null],
    ['fffe00', null],
    ['0000110000', null],
    ['0000000000001100', '\u0000\u1100'],
    ['00110000', '\u0011\u0000'],
    ['fffe000000001100', null],
    ['22ff22', null],
    ['22fe22', null],
    ['22c08022', null],
    ['22c1bf22', null],
    ['22e0808022', null],
    ['22e09fbf22', null],
    ['22f08fbfbf22', null],
    ['22f490808022', null],
    ['22f580808022', null],
    ['22eda022', null],
    ['22eda04122', null],
    ['22c322', null],
    ['80', null],
    ['22f09f9822', null],
    ['22bf22', null],
    ['efbbbfefbb', null],
    ['22c32822', null],
    ['e282', null],
    ['7b2261223a22f888808080227d', null],
  ]
  it.each(cases)('%s', (bytes, expected) => {
    if (expected === null) {
      expect(() => decodeJsonBytes(hex(bytes))).toThrow(PyBodyParseError)
    } else {
      expect(decodeJsonBytes(hex(bytes))).toBe(expected)
    }
  })

  it('decodes large bodies on both paths', () => {
    const body = `["${'\u00e9\u{1F600}x'.repeat(100_000)}"]`
    const utf8 = new TextEncoder().encode(body)
    expect(decodeJsonBytes(utf8)).toBe(body)
    // A lone surrogate forces the hand-written decoder over the whole body.
    const withSurrogate = new Uint8Array(utf8.length + 3)
    withSurrogate.set(utf8)
    withSurrogate.set([0xed, 0xa0, 0x80], utf8.length)
    expect(decodeJsonBytes(withSurrogate)).toBe(`${body}\ud800`)
  })
})

describe('json.loads(bytes) errors', () => {
  const cases: [string, string, number][] = [
    ['efbbbfefbbbf7b7d', 'Expecting value', 0],
    ['efbbbf', 'Expecting value', 0],
    ['20efbbbf7b7d', 'Expecting value', 1],
    ['efbbbf205b312c785d', 'Expecting value', 4],
    ['5b002200e90022002c00200078005d00', 'Expecting value', 6],
    ['005b0022d83dde000022002c00200078005d', 'Expecting value', 6],
    ['fffe5b0022003dd800de3dd800de22002c00200078005d00', 'Expecting value', 7],
    ['5b0000002200000000f60100220000002c00000020000000780000005d000000', 'Expecting value', 6],
    ['5b22eda080222c20785d', 'Expecting value', 6],
    ['5b312ceda0805d', 'Expecting value', 3],
    ['c3a9', 'Expecting value', 0],
    ['3120c3a9', 'Extra data', 2],
    ['310000', 'Extra data', 1],
    ['00001100', 'Expecting value', 0],
    ['fffe', 'Expecting value', 0],
    ['0000005b0000003100000020000000320000005d', "Expecting ',' delimiter", 3],
    ['5b22f09f9880eda080222c20785d', 'Expecting value', 7],
  ]
  it.each(cases)('%s -> %s at %i', (bytes, msg, pos) => {
    expect(outcome(() => loadsBytes(bytes))).toEqual([msg, pos])
  })

  it('parses every sniffed encoding', () => {
    expect(loadsBytes('efbbbf7b2261223a317d')).toEqual(new Map([['a', new PyInt('1')]]))
    expect(loadsBytes('fffe7b002200610022003a002200e9003dd800de22007d00')).toEqual(
      new Map([['a', '\u00e9\u{1F600}']]),
    )
    expect(loadsBytes('31003200')).toEqual(new PyInt('12'))
    expect(loadsBytes('0000feff0000005b000000310000005d')).toEqual([new PyInt('1')])
    expect(loadsBytes('22eda08022')).toBe('\ud800')
    expect(outcome(() => loadsBytes('22ff22'))).toBe('body-parse-error')
  })
})

describe('pyFloatRepr', () => {
  const cases: [number, string][] = [
    [0.0, '0.0'],
    [-0.0, '-0.0'],
    [100000.0, '100000.0'],
    [1000000000000000.0, '1000000000000000.0'],
    [1e16, '1e+16'],
    [1.2345678901234568e17, '1.2345678901234568e+17'],
    [0.0001, '0.0001'],
    [1e-5, '1e-05'],
    [1.5e300, '1.5e+300'],
    [5e-324, '5e-324'],
    [0.1, '0.1'],
    [0.3333333333333333, '0.3333333333333333'],
    [1e22, '1e+22'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [2.5, '2.5'],
    [100.0, '100.0'],
    [1234.5678, '1234.5678'],
    [9007199254740992.0, '9007199254740992.0'],
    [0.000123, '0.000123'],
    [1e-7, '1e-07'],
    [1.23e-310, '1.23e-310'],
    [9999999999999998.0, '9999999999999998.0'],
    [-1.5e-10, '-1.5e-10'],
    [1.5e-323, '1.5e-323'],
    [1.2345678901234568e16, '1.2345678901234568e+16'],
    [0.00015000000000000001, '0.00015000000000000001'],
    [0.3, '0.3'],
    [0.6666666666666666, '0.6666666666666666'],
    [1e21, '1e+21'],
    [1e-323, '1e-323'],
    [4.35, '4.35'],
    [1e100, '1e+100'],
    [-123.456, '-123.456'],
    [1e16, '1e+16'],
  ]
  it.each(cases)('%s -> %s', (x, expected) => {
    expect(pyFloatRepr(x)).toBe(expected)
  })

  it('matches repr for non-finite values', () => {
    expect(pyFloatRepr(Number.NaN)).toBe('nan')
    expect(pyFloatRepr(Number.POSITIVE_INFINITY)).toBe('inf')
    expect(pyFloatRepr(Number.NEGATIVE_INFINITY)).toBe('-inf')
  })
})

describe('renderJson', () => {
  it('renders like json.dumps(ensure_ascii=False, separators=(",", ":"))', () => {
    const value = new Map<string, PyValue>([
      [
        'a',
        [
          '\x00\x1f\x7f"\\\n\r\t\b\f/\u2028\u00e9\u{1F600}',
          new PyFloat(1e16),
          new PyFloat(1e-5),
          new PyFloat(-0),
          new PyFloat(1.2345678901234568e17), // 123456789012345678.0
          new PyFloat(5e-324),
          new PyFloat(1.5e300),
          new PyFloat(0.1),
          new PyFloat(1 / 3),
          new PyInt('1000000000000000000000000000000'),
        ],
      ],
      ['b', new Map()],
      ['c', []],
      ['d', null],
      ['e', true],
    ])
    // Output of CPython for the same dict.
    expect(renderJson(value)).toBe(
      '{"a":["\\u0000\\u001f\x7f\\"\\\\\\n\\r\\t\\b\\f/\u2028\u00e9\u{1F600}",1e+16,1e-05,-0.0,' +
        '1.2345678901234568e+17,5e-324,1.5e+300,0.1,0.3333333333333333,' +
        '1000000000000000000000000000000],"b":{},"c":[],"d":null,"e":true}',
    )
  })

  it('renders non-finite floats as null and lone surrogates as escapes', () => {
    const value = [new PyFloat(Number.NaN), new PyFloat(Number.POSITIVE_INFINITY), '\ud800x\udfff']
    expect(renderJson(value)).toBe('[null,null,"\\ud800x\\udfff"]')
  })

  it('renders error lists mixing plain values and PyValues, in key order', () => {
    const input = pyJsonLoads('{"z": 1E5, "a": [1, 2.50], "\u00e9": {"__proto__": null}}')
    const detail = {
      detail: [{ type: 'extra_forbidden', loc: ['body', 'z', 0], msg: 'Extra', input }],
    }
    expect(renderJson(detail)).toBe(
      '{"detail":[{"type":"extra_forbidden","loc":["body","z",0],"msg":"Extra",' +
        '"input":{"z":100000.0,"a":[1,2.5],"\u00e9":{"__proto__":null}}}]}',
    )
    expect(renderJson({ input: {} })).toBe('{"input":{}}')
    expect(renderJson([1, 2.5, -0, Number.NaN, undefined, 'x'])).toBe('[1,2.5,0,null,null,"x"]')
    expect(renderJson({ a: undefined, b: 1 })).toBe('{"b":1}')
    expect(renderJson(null)).toBe('null')
    expect(renderJson('\u00e9')).toBe('"\u00e9"')
  })

  it('round-trips what pyJsonLoads parsed', () => {
    const text = '{"a":[1,-2,3.25,"x\\u00e9\\ud83d\\ude00",{"b":null,"c":[true,false]}],"d":{}}'
    expect(renderJson(pyJsonLoads(text))).toBe(
      '{"a":[1,-2,3.25,"x\u00e9\u{1F600}",{"b":null,"c":[true,false]}],"d":{}}',
    )
  })
})

describe('toPlain', () => {
  it('projects PyValues onto plain JS values', () => {
    const plain = toPlain(
      pyJsonLoads('{"a":[1,2.5,"s",null,true,{"b":-0}],"n":12345678901234567890}'),
    )
    expect(JSON.stringify(plain)).toBe(
      '{"a":[1,2.5,"s",null,true,{"b":0}],"n":12345678901234567000}',
    )
    expect(Object.getPrototypeOf(plain)).toBe(null)
    expect(Array.isArray((plain as Record<string, unknown>).a)).toBe(true)
  })
})

describe('isJsonContentType (email.message semantics)', () => {
  const cases: [string | null, boolean][] = [
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['APPLICATION/JSON', true],
    ['application/vnd.api+json', true],
    ['application/+json', true],
    ['Application/Problem+JSON', true],
    ['application/*+json', true],
    [' application/json ', true],
    ['\x1capplication/json\x85\xa0', true],
    ['application/json\u3000', true],
    ['application/json;', true],
    ['application/json\t;charset=x', true],
    ['text/json', false],
    ['application/x-json', false],
    ['application/json-seq', false],
    ['application/json+x', false],
    ['application', false],
    ['application/json/x', false],
    ['application/ json', false],
    ['application /json', false],
    [';application/json', false],
    ['application/json,text/plain', false],
    ['\ufeffapplication/json', false],
    ['multipart/form-data', false],
    ['text/plain', false],
    ['', false],
    [null, false],
  ]
  it.each(cases)('%j -> %s', (value, expected) => {
    expect(isJsonContentType(value)).toBe(expected)
  })
})
