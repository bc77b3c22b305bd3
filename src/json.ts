/**
 * A strict JSON reader for formats where `JSON.parse` is too lenient: it
 * rejects duplicate object keys, keeps the literal text of every number (so
 * `1.0` can be told from `1` and large integers are not rounded silently),
 * rejects lone UTF-16 surrogates (which serde_json refuses too), and reports
 * the byte offset of every error.
 *
 * @example
 * ```ts
 * import { parseStrictJson } from "./json.js";
 * const v = parseStrictJson('{"a":1,"b":[true,null]}');
 * // v.kind === "object"; v.entries[0][0] === "a"
 * parseStrictJson('{"a":1,"a":2}'); // throws JsonSyntaxError: duplicate key "a"
 * ```
 * @module
 */

/** A parsed JSON value that remembers what `JSON.parse` forgets. */
export type JsonValue =
  | { readonly kind: "null" }
  | { readonly kind: "boolean"; readonly value: boolean }
  | { readonly kind: "number"; readonly raw: string; readonly value: number }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "array"; readonly items: readonly JsonValue[] }
  | { readonly kind: "object"; readonly entries: readonly (readonly [string, JsonValue])[] };

/** JSON text that does not parse. `offset` is the character offset of the fault. */
export class JsonSyntaxError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.offset = offset;
    this.name = "JsonSyntaxError";
  }
}

/** Default nesting bound of {@link parseStrictJson}. */
export const DEFAULT_MAX_JSON_DEPTH = 64;
/**
 * Default bound on the number of values (scalars, arrays, objects) one
 * document may hold. It bounds memory whatever the text holds: 60 MB of
 * `[],[],…` would otherwise become 20 million objects (over a gigabyte).
 */
export const DEFAULT_MAX_JSON_VALUES = 1_000_000;

/** Bounds of {@link parseStrictJson}. */
export interface StrictJsonOptions {
  /** Deepest nesting accepted (default {@link DEFAULT_MAX_JSON_DEPTH}). */
  readonly maxDepth?: number;
  /** Most values accepted in the document (default {@link DEFAULT_MAX_JSON_VALUES}). */
  readonly maxValues?: number;
}

/** The longest number, in characters, a strict JSON document may hold. */
const MAX_NUMBER_CHARS = 400;

/**
 * Parse JSON text strictly, in time and memory linear in the text and
 * bounded by `options`. Throws {@link JsonSyntaxError}.
 *
 * @example
 * ```ts
 * parseStrictJson("[[[]]]", { maxDepth: 2 }); // throws JsonSyntaxError: nesting too deep
 * ```
 */
export function parseStrictJson(text: string, options: StrictJsonOptions = {}): JsonValue {
  const MAX_DEPTH = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const maxValues = options.maxValues ?? DEFAULT_MAX_JSON_VALUES;
  let values = 0;
  let i = 0;
  const fail = (msg: string): never => {
    throw new JsonSyntaxError(msg, i);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`);
    if (++values > maxValues) fail(`more than ${maxValues} values`);
    ws();
    const c = text[i];
    if (c === "{") return object(depth);
    if (c === "[") return array(depth);
    if (c === '"') return { kind: "string", value: string() };
    if (c === "t" && text.startsWith("true", i)) return (i += 4), { kind: "boolean", value: true };
    if (c === "f" && text.startsWith("false", i)) return (i += 5), { kind: "boolean", value: false };
    if (c === "n" && text.startsWith("null", i)) return (i += 4), { kind: "null" };
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return number();
    return fail(c === undefined ? "unexpected end of input" : `unexpected character ${JSON.stringify(c)}`);
  };
  const object = (depth: number): JsonValue => {
    i++; // {
    const entries: [string, JsonValue][] = [];
    const seen = new Set<string>();
    ws();
    if (text[i] === "}") return i++, { kind: "object", entries };
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a string key");
      const keyAt = i;
      const key = string();
      if (seen.has(key)) {
        i = keyAt;
        fail(`duplicate key ${JSON.stringify(key)}`);
      }
      seen.add(key);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      entries.push([key, value(depth + 1)]);
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") return i++, { kind: "object", entries };
      fail("expected ',' or '}'");
    }
  };
  const array = (depth: number): JsonValue => {
    i++; // [
    const items: JsonValue[] = [];
    ws();
    if (text[i] === "]") return i++, { kind: "array", items };
    for (;;) {
      items.push(value(depth + 1));
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") return i++, { kind: "array", items };
      fail("expected ',' or ']'");
    }
  };
  const hex4 = (): number => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("bad \\u escape");
    i += 4;
    return parseInt(h, 16);
  };
  const string = (): string => {
    i++; // opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail("control character in string");
      if (c >= 0xd800 && c <= 0xdfff) {
        const lead = c <= 0xdbff;
        const next = text.charCodeAt(i + 1);
        if (!lead || !(next >= 0xdc00 && next <= 0xdfff)) fail("lone surrogate in string");
        i += 2;
        continue;
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      i++;
      const e = text[i++];
      switch (e) {
        case '"': out += '"'; break;
        case "\\": out += "\\"; break;
        case "/": out += "/"; break;
        case "b": out += "\b"; break;
        case "f": out += "\f"; break;
        case "n": out += "\n"; break;
        case "r": out += "\r"; break;
        case "t": out += "\t"; break;
        case "u": {
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== "\\" || text[i + 1] !== "u") fail("lone leading surrogate in \\u escape");
            i += 2;
            const lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("lone leading surrogate in \\u escape");
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail("lone trailing surrogate in \\u escape");
          } else out += String.fromCharCode(u);
          break;
        }
        default:
          i--;
          fail("bad escape");
      }
      start = i;
    }
  };
  const number = (): JsonValue => {
    // Numbers are matched within a window of MAX_NUMBER_CHARS + 1, so the
    // regex never scans a whole document; one that fills it is refused as too
    // long rather than cut short into "trailing characters".
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + MAX_NUMBER_CHARS + 1));
    if (!m) return fail("bad number");
    if (m[0].length > MAX_NUMBER_CHARS) return fail(`number longer than ${MAX_NUMBER_CHARS} characters`);
    i += m[0].length;
    return { kind: "number", raw: m[0], value: Number(m[0]) };
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail("trailing characters after JSON value");
  return v;
}

/** Decode UTF-8 bytes strictly (invalid sequences throw) and drop a leading BOM-free check. */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
}

/**
 * Compare two strings by Unicode code point, which is the order of their
 * UTF-8 bytes (Rust's `BTreeMap<String, _>` order) — unlike JavaScript's
 * default sort, which compares UTF-16 code units.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    const x = a.charCodeAt(k);
    const y = b.charCodeAt(k);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs === ys) return x - y; // both surrogates, or neither: code-unit order is code-point order
    return xs ? 1 : -1; // a surrogate (code point ≥ U+10000) sorts after any BMP unit
  }
  return a.length - b.length;
}

/**
 * The number text serde_json writes for a number it read as `raw` (with its
 * default features: integers that fit `u64`/`i64` stay integers, everything
 * else becomes an `f64`, printed the way the `ryu` crate does: shortest
 * round-trip digits, `1.0` for whole floats, exponent form outside
 * 1e-5 ≤ |x| < 1e16). Returns `null` for a float that overflows (serde_json
 * refuses it).
 *
 * @example
 * ```ts
 * serdeNumberText("1");      // "1"
 * serdeNumberText("1.50");   // "1.5"
 * serdeNumberText("1e2");    // "100.0"
 * serdeNumberText("-0");     // "-0.0"
 * ```
 */
export function serdeNumberText(raw: string): string | null {
  if (/^-?(?:0|[1-9][0-9]*)$/.test(raw)) {
    const n = BigInt(raw);
    if (raw.startsWith("-")) {
      if (n < 0n && n >= -(2n ** 63n)) return n.toString();
    } else if (n <= 2n ** 64n - 1n) return n.toString();
  }
  const x = Number(raw);
  if (!Number.isFinite(x)) return null;
  return ryuText(x);
}

/** `f64` formatted as Rust's `ryu` crate formats it (see {@link serdeNumberText}). */
function ryuText(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const length = digits.length;
  const kk = Number(expText) + 1; // value = 0.digits × 10^kk
  const k = kk - length; // value = digits × 10^k
  if (k >= 0 && kk <= 16) return `${sign}${digits}${"0".repeat(k)}.0`;
  if (kk > 0 && kk <= 16) return `${sign}${digits.slice(0, kk)}.${digits.slice(kk)}`;
  if (kk > -5 && kk <= 0) return `${sign}0.${"0".repeat(-kk)}${digits}`;
  const e = kk - 1;
  return length === 1 ? `${sign}${digits}e${e}` : `${sign}${digits[0]}.${digits.slice(1)}e${e}`;
}

/**
 * Compact JSON text of a parsed value the way serde_json's `Value` writes it
 * (object keys sorted by code point, as its default `BTreeMap` keeps them;
 * numbers through {@link serdeNumberText}). Returns `null` if a number cannot
 * be represented.
 *
 * @example
 * ```ts
 * serdeValueText(parseStrictJson('{"b":1,"a":[2.50]}')); // '{"a":[2.5],"b":1}'
 * ```
 */
export function serdeValueText(v: JsonValue): string | null {
  switch (v.kind) {
    case "null":
      return "null";
    case "boolean":
      return v.value ? "true" : "false";
    case "number":
      return serdeNumberText(v.raw);
    case "string":
      return JSON.stringify(v.value);
    case "array": {
      const parts: string[] = [];
      for (const item of v.items) {
        const t = serdeValueText(item);
        if (t === null) return null;
        parts.push(t);
      }
      return `[${parts.join(",")}]`;
    }
    case "object": {
      const parts: string[] = [];
      for (const [k, item] of [...v.entries].sort((a, b) => compareCodePoints(a[0], b[0]))) {
        const t = serdeValueText(item);
        if (t === null) return null;
        parts.push(`${JSON.stringify(k)}:${t}`);
      }
      return `{${parts.join(",")}}`;
    }
  }
}

/**
 * A strictly parsed value as plain JavaScript: objects get a null prototype
 * (so `__proto__` is an ordinary key), numbers their value.
 *
 * @example
 * ```ts
 * plainJson(parseStrictJson('{"a":[1,"x"]}')); // { a: [1, "x"] }
 * ```
 */
export function plainJson(v: JsonValue): unknown {
  switch (v.kind) {
    case "null":
      return null;
    case "boolean":
    case "number":
    case "string":
      return v.value;
    case "array":
      return v.items.map(plainJson);
    case "object": {
      const o = Object.create(null) as Record<string, unknown>;
      for (const [k, x] of v.entries) o[k] = plainJson(x);
      return o;
    }
  }
}
