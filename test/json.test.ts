/** Rules of the strict JSON reader (src/json.ts) and the manifest's `schema` field (src/manifest.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidManifest } from "../src/errors.js";
import {
  compareCodePoints,
  decodeUtf8Strict,
  DEFAULT_MAX_JSON_DEPTH,
  DEFAULT_MAX_JSON_VALUES,
  JsonSyntaxError,
  parseStrictJson,
  plainJson,
  serdeNumberText,
  serdeValueText,
} from "../src/json.js";
import { canonicalManifestText, parseManifest } from "../src/manifest.js";

const GOLDEN =
  '{"schema":1,"format":"raw","fstype":"ext4","image":{"ref":"docker.io/library/python:3.12","manifest_digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"parent":null,"created_at":"2026-05-01T12:00:00Z","labels":{},"upper":{"file":"upper.ext4","size_bytes":4096,"integrity":null},"source_sandbox":null}';

describe("strict JSON", () => {
  test("rule: a raw control character (U+0000–U+001F) inside a string is refused", () => {
    for (const c of [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f]) {
      const text = `{"a":"x${String.fromCharCode(c)}y"}`;
      assert.throws(() => parseStrictJson(text), (e: unknown) => e instanceof JsonSyntaxError && /control character in string/.test(e.message) && e.offset === 7, `U+${c.toString(16).padStart(4, "0")}`);
    }
    // the same characters escaped are fine, and U+0020 / U+007F raw are fine
    assert.deepEqual({ ...(plainJson(parseStrictJson('{"a":"x\\u0000\\t\\ny \u007f"}')) as object) }, { a: "x\u0000\t\ny \u007f" });
  });
});

describe("manifest schema", () => {
  test("rule: schema must be the JSON number written exactly `1` (as serde's u32 reads it): 1.0, 1e0, 10e-1 and \"1\" are refused", () => {
    assert.equal(parseManifest(GOLDEN).schema, 1);
    assert.equal(canonicalManifestText(parseManifest(GOLDEN)), GOLDEN);
    for (const bad of ["1.0", "1e0", "10e-1", '"1"', "2", "-1"]) {
      assert.throws(
        () => parseManifest(GOLDEN.replace('"schema":1', `"schema":${bad}`)),
        (e: unknown) => e instanceof InvalidManifest && e.code === "invalid-manifest" && /schema/.test(e.message) && /must be 1/.test(e.message),
        bad,
      );
    }
  });
});

// ---------------------------------------------------------------------------
// The grammar, table by table. Documents both readers should accept are
// checked against JSON.parse as an independent oracle; the strict rules
// (where JSON.parse is more lenient) are asserted on their own.

/** `plainJson`'s null-prototype objects rebuilt as ordinary ones, so deepEqual can compare them with JSON.parse's. */
function ordinary(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(ordinary);
  if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, ordinary(v)]));
  return x;
}

/** A RegExp matching `s` literally. */
const literal = (s: string): RegExp => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));

/** Assert `text` is refused with a JsonSyntaxError naming `rule`, reported at `offset`. */
function refused(text: string, rule: RegExp, offset: number, options?: { maxDepth?: number; maxValues?: number }): void {
  assert.throws(
    () => parseStrictJson(text, options),
    (e: unknown) => {
      assert.ok(e instanceof JsonSyntaxError, `${JSON.stringify(text)}: ${String(e)}`);
      assert.equal(e.name, "JsonSyntaxError");
      assert.match(e.message, rule, JSON.stringify(text));
      assert.equal(e.offset, offset, `${JSON.stringify(text)}: ${e.message}`);
      assert.ok(e.message.endsWith(` at offset ${offset}`), e.message);
      return true;
    },
  );
}

describe("strict JSON: what it accepts, it reads as JSON.parse does", () => {
  const valid = [
    "0", "-0", "9", "-9", "10", "1234567890", "-1234567890", "1.5", "-0.25", "10.125", "1e5", "1E5", "1e+5", "1e-5", "1.5E-3", "12.34e+10", "0.0", "0e0", "-0.0e-0",
    '""', '"abc"', '"a b"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"x\\ny\\tz"', '"\\u0041\\u00e9\\u00E9\\uABCD\\uabcd\\uFFFF\\u0000"',
    '"\\ud83d\\ude00"', '"\\uD800\\uDC00"', '"\\uDBFF\\uDFFF"', '"\\ud7ff\\ue000"', '"a\\u0062c\\n"',
    '"\u{1F600}"', '"\u{10000}\u{10FFFF}"', '"\u{103FF}"', '"\ud7ff\ue000\uffff"', '"\u007f\u00e9"',
    "true", "false", "null", "[]", "{}", "[ ]", "{ }", "[true,false,null]", '[1,"two",[3],{"four":4}]',
    '{"a":1,"b":[true,false,null],"c":{"d":"e"}}', '{"a":{"a":1}}', '[{"a":1},{"a":2}]', '{"":0}', '{"__proto__":1}',
    "[[[[[[[[[[1]]]]]]]]]]",
  ];
  test("rule: every valid document reads to the value JSON.parse gives it", () => {
    for (const text of valid) {
      assert.deepEqual(ordinary(plainJson(parseStrictJson(text))), JSON.parse(text), text);
    }
  });
  test("rule: a number keeps its literal text (raw) beside its value", () => {
    for (const text of ["0", "-0", "9", "10", "1234567890", "-12", "1.5", "1.50", "1.0", "-0.25", "1e5", "1E5", "1e+5", "1e-5", "1.25e10", "12.34E+10", "123456789012345678901234567890"]) {
      const v = parseStrictJson(text);
      assert.equal(v.kind, "number", text);
      if (v.kind !== "number") continue;
      assert.equal(v.raw, text);
      assert.ok(Object.is(v.value, JSON.parse(text)), text);
      // inside a container the number ends where its literal ends
      const inArray = parseStrictJson(`[${text},${text}]`);
      assert.deepEqual(inArray, { kind: "array", items: [v, v] }, text);
    }
  });
  test("rule: each of space, tab, LF and CR is whitespace, anywhere between tokens", () => {
    for (const w of [" ", "\t", "\n", "\r", " \t\n\r"]) {
      const text = `${w}{${w}"a"${w}:${w}[${w}1${w},${w}true${w},${w}[${w}]${w}]${w},${w}"b"${w}:${w}{${w}}${w},${w}"c"${w}:${w}null${w}}${w}`;
      assert.deepEqual(ordinary(plainJson(parseStrictJson(text))), JSON.parse(text), JSON.stringify(w));
      assert.deepEqual(parseStrictJson(`${w}"s"${w}`), { kind: "string", value: "s" }, JSON.stringify(w));
    }
  });
  test("rule: nothing else is whitespace (VT, FF, NBSP, BOM, LS), though JavaScript's trim would take them", () => {
    for (const w of ["\v", "\f", "\u00a0", "\ufeff", "\u2028"]) {
      refused(`${w}1`, literal(`unexpected character ${JSON.stringify(w)}`), 0);
      refused(`[1,${w}2]`, /unexpected character/, 3);
      refused(`1${w}`, /trailing characters after JSON value/, 1);
      refused(`{"a"${w}:1}`, /expected ':'/, 4);
    }
  });
  test("rule: each escape decodes to its character; \\u takes exactly four hex digits of either case", () => {
    const cases: [string, string][] = [
      ['"\\""', '"'], ['"\\\\"', "\\"], ['"\\/"', "/"], ['"\\b"', "\b"], ['"\\f"', "\f"], ['"\\n"', "\n"], ['"\\r"', "\r"], ['"\\t"', "\t"],
      ['"\\u0041"', "A"], ['"\\u00e9\\u00E9"', "\u00e9\u00e9"], ['"\\uabcd\\uABCD"', "\uabcd\uabcd"], ['"\\u0000"', "\u0000"], ['"\\uffff"', "\uffff"],
      ['"a\\nb\\tc"', "a\nb\tc"], ['"\\u00411"', "A1"],
    ];
    for (const [text, want] of cases) {
      assert.deepEqual(parseStrictJson(text), { kind: "string", value: want }, text);
      assert.equal(want, JSON.parse(text), text); // the oracle agrees with the table
    }
  });
  test("rule: a UTF-16 surrogate pair, raw or as two \\u escapes, is one character; its bounds are D800–DBFF then DC00–DFFF", () => {
    const pairs: [number, number][] = [[0xd800, 0xdc00], [0xd800, 0xdfff], [0xdbff, 0xdc00], [0xdbff, 0xdfff], [0xd83d, 0xde00]];
    for (const [hi, lo] of pairs) {
      const ch = String.fromCharCode(hi, lo);
      const esc = `"\\u${hi.toString(16)}\\u${lo.toString(16)}"`;
      assert.deepEqual(parseStrictJson(esc), { kind: "string", value: ch }, esc);
      assert.deepEqual(parseStrictJson(`"${ch}"`), { kind: "string", value: ch }, esc);
      assert.deepEqual(parseStrictJson(`"a${ch}b${ch}"`), { kind: "string", value: `a${ch}b${ch}` }, esc);
    }
    // the neighbours of the surrogate block are ordinary characters
    assert.deepEqual(parseStrictJson('"\\ud7ff\\ue000"'), { kind: "string", value: "\ud7ff\ue000" });
    assert.deepEqual(parseStrictJson('"\ud7ff\ue000"'), { kind: "string", value: "\ud7ff\ue000" });
  });
});

describe("strict JSON: what it refuses, naming the rule and the offset of the fault", () => {
  const cases: [string, RegExp, number][] = [
    ["", /unexpected end of input/, 0],
    ["   ", /unexpected end of input/, 3],
    ["[", /unexpected end of input/, 1],
    ["[1", /expected ',' or '\]'/, 2],
    ["[1,", /unexpected end of input/, 3],
    ["[1,]", /unexpected character "\]"/, 3],
    ["[,1]", /unexpected character ","/, 1],
    ["[1 2]", /expected ',' or '\]'/, 3],
    ["[1:2]", /expected ',' or '\]'/, 2],
    ["{", /expected a string key/, 1],
    ['{"a"', /expected ':'/, 4],
    ['{"a":', /unexpected end of input/, 5],
    ['{"a":1', /expected ',' or '\}'/, 6],
    ['{"a":1,}', /expected a string key/, 7],
    ['{"a" 1}', /expected ':'/, 5],
    ['{"a"=1}', /expected ':'/, 4],
    ["{a:1}", /expected a string key/, 1],
    ["{1:1}", /expected a string key/, 1],
    ["{'a':1}", /expected a string key/, 1],
    ['{"a":1 "b":2}', /expected ',' or '\}'/, 7],
    ['{"a":1]', /expected ',' or '\}'/, 6],
    ["[1}", /expected ',' or '\]'/, 2],
    ["tru", /unexpected character "t"/, 0],
    ["[fals]", /unexpected character "f"/, 1],
    ["nul", /unexpected character "n"/, 0],
    ["True", /unexpected character "T"/, 0],
    ["NaN", /unexpected character "N"/, 0],
    ["Infinity", /unexpected character "I"/, 0],
    ["undefined", /unexpected character "u"/, 0],
    ["'a'", /unexpected character "'"/, 0],
    ["+1", /unexpected character "\+"/, 0],
    [".5", /unexpected character "\."/, 0],
    ["/", /unexpected character "\/"/, 0],
    [":", /unexpected character ":"/, 0],
    ["-", /bad number/, 0],
    ["-a", /bad number/, 0],
    ["-x5", /bad number/, 0],
    ["[-x5]", /bad number/, 1],
    ["- 1", /bad number/, 0],
    ["01", /trailing characters after JSON value/, 1],
    ["-01", /trailing characters after JSON value/, 2],
    ["00", /trailing characters after JSON value/, 1],
    ["1.", /trailing characters after JSON value/, 1],
    ["1.e5", /trailing characters after JSON value/, 1],
    ["1e", /trailing characters after JSON value/, 1],
    ["1e+", /trailing characters after JSON value/, 1],
    ["1.5e", /trailing characters after JSON value/, 3],
    ["0x10", /trailing characters after JSON value/, 1],
    ["1 2", /trailing characters after JSON value/, 2],
    ["[]]", /trailing characters after JSON value/, 2],
    ["{} {}", /trailing characters after JSON value/, 3],
    ["truex", /trailing characters after JSON value/, 4],
    ["nullnull", /trailing characters after JSON value/, 4],
    ["false0", /trailing characters after JSON value/, 5],
    ['"abc', /unterminated string/, 4],
    ['"', /unterminated string/, 1],
    ['["a\\n', /unterminated string/, 5],
    ['"\\', /bad escape/, 2],
    ['"\\x"', /bad escape/, 2],
    ['"ab\\U0041"', /bad escape/, 4],
    ['"\\\'"', /bad escape/, 2],
    ['"\\0"', /bad escape/, 2],
    ['"\\u004"', /bad \\u escape/, 3],
    ['"\\u00g0"', /bad \\u escape/, 3],
    ['"\\u', /bad \\u escape/, 3],
    ['"\\u-123"', /bad \\u escape/, 3],
    ['"\\u 123"', /bad \\u escape/, 3],
    ['"ab\u0001"', /control character in string/, 3],
    ['"\u001f"', /control character in string/, 1],
  ];
  test("rule: malformed documents are refused with the rule they break and where", () => {
    for (const [text, rule, offset] of cases) {
      refused(text, rule, offset);
      assert.throws(() => JSON.parse(text), SyntaxError, text); // the oracle refuses them too
    }
  });
  test("rule: a repeated key in one object is refused at the repeat (JSON.parse keeps the last); the same key in another object is fine", () => {
    const dups: [string, string][] = [['{"a":1,"a":2}', "a"], ['{"a":1,"b":2,"a":3}', "a"], ['{"\\u0061":1,"a":2}', "a"], ['{"x":{"y":1,"y":2}}', "y"], ['[{"k":1},{"k":2,"k":3}]', "k"]];
    for (const [text, key] of dups) {
      refused(text, new RegExp(`duplicate key "${key}"`), text.lastIndexOf(`"${key}"`));
      assert.doesNotThrow(() => JSON.parse(text));
    }
    assert.equal(parseStrictJson('{"a":{"a":1},"b":{"a":2}}').kind, "object");
  });
  test("rule: a number longer than 400 characters is refused as too long, where it starts; one of 400 is read", () => {
    const digits = (n: number) => "1" + "0".repeat(n - 1);
    const at400 = parseStrictJson(`[${digits(400)}]`);
    assert.ok(at400.kind === "array" && at400.items[0]?.kind === "number");
    assert.equal(at400.items[0].raw, digits(400));
    for (const text of [`[${digits(401)}]`, `{"size":${digits(1000)}}`, `-${digits(400)}`, `0.${"5".repeat(399)}`]) {
      refused(text, /number longer than 400 characters/, text.search(/[-0-9]/));
      assert.doesNotThrow(() => JSON.parse(text), text); // legal JSON, refused only by our bound
    }
  });
  test("rule: a lone surrogate — raw or escaped, leading or trailing — is refused (serde_json refuses it; JSON.parse keeps it)", () => {
    const lone: [string, RegExp, number][] = [
      ['"a\ud800"', /lone surrogate in string/, 2],
      ['"\ud800', /lone surrogate in string/, 1],
      ['"\udbff"', /lone surrogate in string/, 1],
      ['"\udc00"', /lone surrogate in string/, 1],
      ['"\udfff"', /lone surrogate in string/, 1],
      ['"\udc00\ud800"', /lone surrogate in string/, 1],
      ['"\udc00\udc00"', /lone surrogate in string/, 1],
      ['"\udfff\udfff"', /lone surrogate in string/, 1],
      ['"\ud800\ud800"', /lone surrogate in string/, 1],
      ['"\ud800\udbff"', /lone surrogate in string/, 1],
      ['"\ud800\ue000"', /lone surrogate in string/, 1],
      ['"\ud800a"', /lone surrogate in string/, 1],
      ['"\\uD800"', /lone leading surrogate in \\u escape/, 7],
      ['"\\uDBFF"', /lone leading surrogate in \\u escape/, 7],
      ['"\\uD800\\n"', /lone leading surrogate in \\u escape/, 7],
      ['"\\uD800u"', /lone leading surrogate in \\u escape/, 7],
      ['"\\uD800xudc00"', /lone leading surrogate in \\u escape/, 7],
      ['"\\uD800\\u0041"', /lone leading surrogate in \\u escape/, 13],
      ['"\\uD800\\uD800"', /lone leading surrogate in \\u escape/, 13],
      ['"\\uD800\\uDBFF"', /lone leading surrogate in \\u escape/, 13],
      ['"\\uD800\\uE000"', /lone leading surrogate in \\u escape/, 13],
      ['"\\uD800\\uZZZZ"', /bad \\u escape/, 9],
      ['"\\uDC00"', /lone trailing surrogate in \\u escape/, 7],
      ['"\\uDFFF"', /lone trailing surrogate in \\u escape/, 7],
      ['"\\uDC00\\uD800"', /lone trailing surrogate in \\u escape/, 7],
    ];
    for (const [text, rule, offset] of lone) refused(text, rule, offset);
  });
  test("rule: the nesting bound counts levels below the top value; a scalar at the deepest level allowed is fine", () => {
    assert.equal(parseStrictJson("1", { maxDepth: 0 }).kind, "number");
    assert.equal(parseStrictJson("[]", { maxDepth: 0 }).kind, "array");
    refused("[1]", /nesting deeper than 0 levels/, 1, { maxDepth: 0 });
    refused('{"a":1}', /nesting deeper than 0 levels/, 5, { maxDepth: 0 });
    assert.equal(parseStrictJson('{"a":[1]}', { maxDepth: 2 }).kind, "object");
    refused('{"a":[[1]]}', /nesting deeper than 2 levels/, 7, { maxDepth: 2 });
    // the default bound is DEFAULT_MAX_JSON_DEPTH: 64 levels below the top are fine, 65 are not
    const nest = (n: number) => "[".repeat(n) + "0" + "]".repeat(n);
    assert.equal(DEFAULT_MAX_JSON_DEPTH, 64);
    assert.equal(parseStrictJson(nest(64)).kind, "array");
    refused(nest(65), /nesting deeper than 64 levels/, 65);
  });
  test("rule: the value bound counts every value, containers and scalars alike", () => {
    assert.equal(parseStrictJson('{"a":[1,{}]}', { maxValues: 4 }).kind, "object");
    refused('{"a":[1,{}]}', /more than 3 values/, 8, { maxValues: 3 });
    refused("[]", /more than 0 values/, 0, { maxValues: 0 });
    assert.equal(DEFAULT_MAX_JSON_VALUES, 1_000_000);
  });
});

describe("strict JSON: UTF-8 decoding", () => {
  test("rule: bytes are decoded strictly (an invalid sequence throws) and a leading BOM is kept, so the parser refuses it", () => {
    assert.equal(decodeUtf8Strict(new TextEncoder().encode('{"é":"\u{1F600}"}')), '{"é":"\u{1F600}"}');
    assert.equal(decodeUtf8Strict(new Uint8Array([0xef, 0xbb, 0xbf, 0x31])), "\ufeff1");
    for (const bytes of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      assert.throws(() => decodeUtf8Strict(new Uint8Array(bytes)), TypeError, bytes.join(","));
    }
    refused(decodeUtf8Strict(new Uint8Array([0xef, 0xbb, 0xbf, 0x31])), /unexpected character "\ufeff"/, 0);
  });
});

describe("code-point order (compareCodePoints)", () => {
  /** UTF-8 byte order: an independent oracle for code-point order of well-formed strings. */
  const utf8Order = (a: string, b: string): number => {
    const x = new TextEncoder().encode(a);
    const y = new TextEncoder().encode(b);
    for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return Math.sign(x[k]! - y[k]!);
    return Math.sign(x.length - y.length);
  };
  const words = ["", "a", "b", "ab", "abc", "abd", "Z", "\u007f", "\u00e9", "\ud7ff", "\ue000", "\uff5e", "\uffff", "\u{10000}", "\u{103FF}", "\u{1F600}", "\u{10FFFF}", "a\u{10000}", "a\uffff", "\u{10000}a", "\u{10000}\u{10000}"];
  test("rule: strings compare by code point (UTF-8 byte order), equal strings compare 0, a prefix sorts first", () => {
    for (const a of words) {
      for (const b of words) {
        assert.equal(Math.sign(compareCodePoints(a, b)), utf8Order(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      }
    }
  });
  test("property: compareCodePoints agrees with UTF-8 byte order on any well-formed strings", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 6 }), fc.string({ unit: "binary", maxLength: 6 }), (a, b) => {
        assert.equal(Math.sign(compareCodePoints(a, b)), utf8Order(a, b));
        assert.equal(Math.sign(compareCodePoints(a + b, a + a)), utf8Order(a + b, a + a));
      }),
      { numRuns: 500 },
    );
  });
});

describe("serde_json's text of numbers and values", () => {
  test("rule: integers that fit u64/i64 stay integers; all else is an f64 printed as ryu prints it; overflow is null", () => {
    // expected texts are serde_json 1.x / ryu output for the same input
    const cases: [string, string | null][] = [
      ["0", "0"], ["7", "7"], ["100", "100"], ["-1", "-1"], ["-0", "-0.0"],
      ["9223372036854775807", "9223372036854775807"], ["-9223372036854775808", "-9223372036854775808"], ["-9223372036854775809", "-9.223372036854776e18"],
      ["18446744073709551615", "18446744073709551615"], ["18446744073709551616", "1.8446744073709552e19"],
      ["1.0", "1.0"], ["1.5", "1.5"], ["-1.5", "-1.5"], ["0.5", "0.5"], ["-0.5", "-0.5"], ["0.1", "0.1"], ["123.456", "123.456"], ["0.001234", "0.001234"],
      ["1e2", "100.0"], ["1E2", "100.0"], ["-1e2", "-100.0"], ["1.5e3", "1500.0"], ["1e15", "1000000000000000.0"], ["1e16", "1e16"], ["1.5e16", "1.5e16"], ["-1.5e16", "-1.5e16"],
      ["1234567890123456.5", "1234567890123456.5"], ["12345678901234567890.0", "1.2345678901234567e19"],
      ["1e-5", "0.00001"], ["1.5e-5", "0.000015"], ["-1e-5", "-0.00001"], ["1e-6", "1e-6"], ["1.5e-6", "1.5e-6"], ["-1.5e-7", "-1.5e-7"], ["0.0001", "0.0001"],
      ["1e300", "1e300"], ["-1e300", "-1e300"], ["1.7976931348623157e308", "1.7976931348623157e308"], ["5e-324", "5e-324"],
      ["0.0", "0.0"], ["-0.0", "-0.0"], ["0e5", "0.0"], ["1e-400", "0.0"], ["-1e-400", "-0.0"],
      ["1e309", null], ["-1e309", null], ["1.8e308", null],
    ];
    for (const [raw, want] of cases) assert.equal(serdeNumberText(raw), want, raw);
    // every finite result reads back to the same f64 (ryu's shortest round-trip digits)
    for (const [raw, want] of cases) if (want !== null) assert.ok(Object.is(Number(want), Number(raw)), raw);
  });
  test("rule: a value's text is compact, object keys sorted by code point, numbers as serde_json writes them", () => {
    const v = parseStrictJson('{ "b" : [1, 2.50, true, false, null, "x\\"y\\u0001"], "a": {"d": -0, "c": "\\u00e9"}, "\u00e9": 1e2, "\u{1F600}": 2, "\uff5e": 3, "z": [] , "y": {} }');
    assert.equal(serdeValueText(v), '{"a":{"c":"é","d":-0.0},"b":[1,2.5,true,false,null,"x\\"y\\u0001"],"y":{},"z":[],"é":100.0,"\uff5e":3,"\u{1F600}":2}');
    for (const scalar of ["null", "true", "false", '"s"', "3"]) assert.equal(serdeValueText(parseStrictJson(scalar)), scalar);
  });
  test("rule: a value holding an unrepresentable number, at any depth, has no text (null)", () => {
    for (const text of ["1e999", "[1e999]", "[1,[2,-1e999]]", '{"a":1e999}', '{"a":1,"b":{"c":[1e400]}}', '[{"a":1e999}]']) {
      assert.equal(serdeValueText(parseStrictJson(text)), null, text);
    }
  });
  test("rule: plainJson turns every kind into its JavaScript value", () => {
    const text = '[null,true,false,0,-1.5,"s",[],{},[1,[2]],{"a":{"b":[false]}}]';
    const plain = plainJson(parseStrictJson(text));
    assert.deepEqual(ordinary(plain), JSON.parse(text));
    assert.equal(Object.getPrototypeOf((plain as unknown[])[7]), null);
  });
});
