import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidManifest } from "../src/errors.js";
import { createHash } from "node:crypto";
import {
  canonicalManifest,
  canonicalManifestText,
  isDigestForm,
  isNormalComponent,
  type Manifest,
  MAX_MANIFEST_BYTES,
  manifestDigest,
  parseJsonDocument,
  parseManifest,
  SPARSE_SHA256,
  validateManifest,
} from "../src/manifest.js";
import { compareCodePoints, parseStrictJson, plainJson } from "../src/json.js";
import { digestSafe, imageCacheKey, normalizeImageRef } from "../src/layout.js";

const VECTOR =
  '{"schema":1,"format":"raw","fstype":"ext4","image":{"ref":"docker.io/library/python:3.12","manifest_digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"parent":null,"created_at":"2026-05-01T12:00:00Z","labels":{"owner":"alice","stage":"post-pip-install"},"upper":{"file":"upper.ext4","size_bytes":4294967296,"integrity":{"algorithm":"msb-sparse-sha256-v1","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},"source_sandbox":"build-1"}';
const VECTOR_DIGEST = "sha256:72005520f25b0532f88e41a3bd3ad8d642189582f3784fcb22ec8eb1a7b8a589";

describe("manifest: docs/format.md §3 vector", () => {
  test("canonical bytes and digest match the vector", async () => {
    const m = parseManifest(VECTOR);
    assert.equal(canonicalManifestText(m), VECTOR);
    assert.equal(await manifestDigest(m), VECTOR_DIGEST);
  });
  test("pretty-printed and reordered manifest has the same digest", async () => {
    const obj = JSON.parse(VECTOR);
    const reordered = { upper: obj.upper, labels: { stage: obj.labels.stage, owner: obj.labels.owner }, ...obj };
    const pretty = JSON.stringify(reordered, null, 2);
    assert.notEqual(pretty, VECTOR);
    assert.equal(await manifestDigest(parseManifest(pretty)), VECTOR_DIGEST);
  });
  test("bytes input: UTF-8 decoded strictly", () => {
    assert.throws(() => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d]), "/x/manifest.json"), (e) => e instanceof InvalidManifest && /\/x\/manifest.json.*UTF-8/.test(e.message));
  });
});

describe("manifest: strict parsing names the field and rule", () => {
  const base = () => JSON.parse(VECTOR);
  const cases: [string, (o: any) => unknown, RegExp][] = [
    ["unknown top-level field", (o) => ({ ...o, extra: 1 }), /"extra" is not a known field/],
    ["unknown nested field", (o) => ({ ...o, image: { ...o.image, tag: "x" } }), /"image.tag" is not a known field/],
    ["missing nullable parent", (o) => { delete o.parent; return o; }, /"parent" is missing/],
    ["missing source_sandbox", (o) => { delete o.source_sandbox; return o; }, /"source_sandbox" is missing/],
    ["missing integrity", (o) => { delete o.upper.integrity; return o; }, /"upper.integrity" is missing/],
    ["schema 2", (o) => ({ ...o, schema: 2 }), /"schema" must be 1/],
    ["schema as string", (o) => ({ ...o, schema: "1" }), /"schema" must be 1/],
    ["bad format", (o) => ({ ...o, format: "vhd" }), /"format" must be "raw" or "qcow2"/],
    ["empty fstype", (o) => ({ ...o, fstype: "" }), /"fstype" must not be empty/],
    ["empty image ref", (o) => ({ ...o, image: { ...o.image, ref: "" } }), /"image.ref" must not be empty/],
    ["digest without algo", (o) => ({ ...o, image: { ...o.image, manifest_digest: ":abc" } }), /"image.manifest_digest" must have the form algo:hex/],
    ["digest without hex", (o) => ({ ...o, parent: "sha256:" }), /"parent" must have the form algo:hex/],
    ["upper file with slash", (o) => ({ ...o, upper: { ...o.upper, file: "a/b" } }), /"upper.file" must be one normal path component/],
    ["upper file ..", (o) => ({ ...o, upper: { ...o.upper, file: ".." } }), /"upper.file"/],
    ["upper file empty", (o) => ({ ...o, upper: { ...o.upper, file: "" } }), /"upper.file"/],
    ["negative size", (o) => ({ ...o, upper: { ...o.upper, size_bytes: -1 } }), /"upper.size_bytes" must be a non-negative integer/],
    ["fractional size", (o) => ({ ...o, upper: { ...o.upper, size_bytes: 1.5 } }), /"upper.size_bytes"/],
    ["size beyond 2^53-1", (o) => ({ ...o, upper: { ...o.upper, size_bytes: 2 ** 53 } }), /2\^53-1/],
    ["empty algorithm", (o) => ({ ...o, upper: { ...o.upper, integrity: { algorithm: "", digest: "sha256:x" } } }), /"upper.integrity.algorithm" must not be empty/],
    ["label value not string", (o) => ({ ...o, labels: { a: 1 } }), /"labels.a" must be a string/],
    ["parent wrong type", (o) => ({ ...o, parent: 5 }), /"parent" must be a string or null/],
  ];
  for (const [name, mutate, re] of cases) {
    test(name, () => {
      const text = JSON.stringify(mutate(base()));
      assert.throws(() => parseManifest(text, "/h/snapshots/x/manifest.json"), (e) => e instanceof InvalidManifest && re.test(e.message) && e.message.includes("/h/snapshots/x/manifest.json"));
    });
  }
  test("duplicate keys are rejected", () => {
    const dup = VECTOR.replace('"fstype":"ext4"', '"fstype":"ext4","fstype":"xfs"');
    assert.throws(() => parseManifest(dup), (e) => e instanceof InvalidManifest && /duplicate key "fstype"/.test(e.message));
  });
  test("duplicate label keys are rejected", () => {
    const dup = VECTOR.replace('"owner":"alice"', '"owner":"alice","owner":"bob"');
    assert.throws(() => parseManifest(dup), (e) => e instanceof InvalidManifest && /duplicate key "owner"/.test(e.message));
  });
  test("size written as 1.0 is rejected (not an integer literal)", () => {
    assert.throws(() => parseManifest(VECTOR.replace("4294967296", "4294967296.0")), InvalidManifest);
  });
  test("lone surrogate escape is rejected", () => {
    assert.throws(() => parseManifest(VECTOR.replace('"alice"', '"\\ud800"')), InvalidManifest);
  });
  test("trailing garbage is rejected", () => {
    assert.throws(() => parseManifest(VECTOR + "x"), InvalidManifest);
  });
});

describe("manifest: canonical form", () => {
  test("labels sort by code point (UTF-8 order), not UTF-16", () => {
    // U+FF5E (BMP, high) vs U+1F600 (astral): UTF-16 puts the astral first, UTF-8 puts it last.
    const keys = ["\u{1F600}", "\uFF5E", "a", "Z"];
    assert.deepEqual([...keys].sort(compareCodePoints), ["Z", "a", "\uFF5E", "\u{1F600}"]);
    assert.deepEqual([...keys].sort(), ["Z", "a", "\u{1F600}", "\uFF5E"]);
    const o = JSON.parse(VECTOR);
    o.labels = Object.fromEntries(keys.map((k) => [k, "v"]));
    const text = canonicalManifestText(parseManifest(JSON.stringify(o)));
    assert.ok(text.includes('"labels":{"Z":"v","a":"v","\uFF5E":"v","\u{1F600}":"v"}'));
  });
  test("a __proto__ label is an ordinary label", async () => {
    const o = VECTOR.replace('"owner":"alice"', '"__proto__":"x","owner":"alice"');
    const m = parseManifest(o);
    assert.equal(Object.keys(m.labels).length, 3);
    assert.ok(canonicalManifestText(m).includes('"__proto__":"x"'));
  });
  test("escaping matches serde_json for control characters", () => {
    const o = JSON.parse(VECTOR);
    o.labels = { k: "a\u0001b\u001f\n\"\\/\u007f\u00e9" };
    const text = canonicalManifestText(parseManifest(JSON.stringify(o)));
    assert.ok(text.includes('"k":"a\\u0001b\\u001f\\n\\"\\\\/\u007f\u00e9"'), text);
  });

  const str = fc.string({ unit: "binary", maxLength: 12 });
  const digest = fc.tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.stringMatching(/^[0-9a-f]{1,64}$/)).map(([a, h]) => `${a}:${h}`);
  const manifestArb: fc.Arbitrary<Manifest> = fc.record({
    schema: fc.constant(1 as const),
    format: fc.constantFrom("raw" as const, "qcow2" as const),
    fstype: str.filter((s) => s !== ""),
    image: fc.record({ ref: str.filter((s) => s !== ""), manifest_digest: digest }),
    parent: fc.option(digest, { nil: null }),
    created_at: str,
    labels: fc.dictionary(str, str, { maxKeys: 6 }).map((d) => Object.fromEntries(Object.entries(d))),
    upper: fc.record({
      file: str.filter((s) => s !== "" && s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0")),
      size_bytes: fc.maxSafeNat(),
      integrity: fc.option(fc.record({ algorithm: str.filter((s) => s !== ""), digest }), { nil: null }),
    }),
    source_sandbox: fc.option(str, { nil: null }),
  });
  test("property: parse ∘ canonical is the identity", () => {
    fc.assert(
      fc.property(manifestArb, (m) => {
        const text = canonicalManifestText(m);
        const back = parseManifest(text);
        const plain = (x: unknown) => JSON.parse(JSON.stringify(x)); // fast-check builds null-prototype records
        assert.deepEqual(plain(back), plain(m));
        assert.equal(canonicalManifestText(back), text);
      }),
      { numRuns: 300 },
    );
  });
  test("property: pretty-printed, reordered manifests keep their digest", async () => {
    await fc.assert(
      fc.asyncProperty(manifestArb, fc.integer({ min: 0, max: 4 }), async (m, indent) => {
        const obj = JSON.parse(canonicalManifestText(m));
        const keys = Object.keys(obj).reverse();
        const reordered = Object.fromEntries(keys.map((k) => [k, obj[k]]));
        const pretty = JSON.stringify(reordered, null, indent);
        assert.equal(await manifestDigest(parseManifest(pretty)), await manifestDigest(m));
      }),
      { numRuns: 100 },
    );
  });
});

describe("layout: image references and names (docs/format.md §2)", () => {
  test("cache key vector: python:3.12", async () => {
    assert.equal(normalizeImageRef("python:3.12"), "docker.io/library/python:3.12");
    assert.equal(await imageCacheKey("python:3.12"), "9f39de2cc07aeb65b0c8d87b811d86acce5f86cd7b201b9e906d875b03aa70ff");
    assert.equal(await imageCacheKey("docker.io/library/python:3.12"), await imageCacheKey("index.docker.io/library/python:3.12"));
  });
  test("normalization rules", () => {
    assert.equal(normalizeImageRef("ubuntu"), "docker.io/library/ubuntu:latest");
    assert.equal(normalizeImageRef("index.docker.io/foo/bar"), "docker.io/foo/bar:latest");
    assert.equal(normalizeImageRef("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
    assert.equal(normalizeImageRef("localhost:5000/app"), "localhost:5000/app:latest");
    assert.equal(normalizeImageRef("localhost/app@sha256:ab"), "localhost/app@sha256:ab");
    assert.equal(normalizeImageRef("alpine:3@sha256:ab"), "docker.io/library/alpine:3@sha256:ab");
    assert.equal(normalizeImageRef("me/app"), "docker.io/me/app:latest");
  });
  test("digestSafe replaces every byte outside the safe set", () => {
    assert.equal(digestSafe("sha256:ab+c.d=e_f-g"), "sha256_ab+c.d=e_f-g");
    assert.equal(digestSafe("x:a/b é"), "x_a_b___"); // é is two UTF-8 bytes
  });
});

describe("manifest: reserved upper names", () => {
  for (const name of ["manifest.json", "snapshot.json", "archive.json"]) {
    test(`an upper named ${name} is refused at parse time (save would write the path twice)`, () => {
      const text = VECTOR.replace('"file":"upper.ext4"', `"file":${JSON.stringify(name)}`);
      assert.throws(() => parseManifest(text, "/x/manifest.json"), (e) => e instanceof InvalidManifest && e.message.includes('"upper.file"') && e.message.includes("reserved name") && e.message.includes(name));
    });
  }
  test("a name that only resembles one is fine", () => {
    assert.equal(parseManifest(VECTOR.replace('"file":"upper.ext4"', '"file":"manifest.json.ext4"')).upper.file, "manifest.json.ext4");
  });
});

describe("strict JSON: bounded whatever the text holds", () => {
  test("nesting deeper than the bound is refused, naming the bound", () => {
    assert.throws(() => parseStrictJson("[".repeat(66) + "]".repeat(66)), /nesting deeper than 64 levels/);
    assert.equal(parseStrictJson("[[[]]]", { maxDepth: 2 }).kind, "array");
    assert.throws(() => parseStrictJson("[[[[]]]]", { maxDepth: 2 }), /nesting deeper than 2 levels/);
  });
  test("a document of more values than the bound (empty arrays by the million) is refused", () => {
    const many = "[" + Array.from({ length: 1_000_001 }, () => "[]").join(",") + "]";
    assert.throws(() => parseStrictJson(many), /more than 1000000 values/);
    assert.throws(() => parseStrictJson("[1,2,3,4]", { maxValues: 4 }), /more than 4 values at offset 7/);
    assert.equal((parseStrictJson("[1,2,3]", { maxValues: 4 }) as unknown as { items: unknown[] }).items.length, 3);
  });
  test("plainJson: null-prototype objects, __proto__ an ordinary key", () => {
    const o = plainJson(parseStrictJson('{"__proto__":{"x":1},"a":[true,null,"s",1.5]}')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(o), null);
    assert.deepEqual(Object.keys(o), ["__proto__", "a"]);
    assert.deepEqual(o.a, [true, null, "s", 1.5]);
  });
});

// ---------------------------------------------------------------------------
// Every rule of docs/format.md §3, one refusal at a time: the error names the file, the
// field (dotted path from the root) and the rule it breaks.

/** A RegExp matching `s` literally. */
const literal = (s: string): RegExp => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));

/** Assert that parsing `input` as `source` is refused with InvalidManifest whose message starts `source: ` and matches `rule`. */
function refusedAs(input: string | Uint8Array, rule: RegExp, source?: string): void {
  const named = source ?? "manifest.json";
  assert.throws(
    () => (source === undefined ? parseManifest(input) : parseManifest(input, source)),
    (e: unknown) => {
      assert.ok(e instanceof InvalidManifest, String(e));
      assert.equal(e.code, "invalid-manifest");
      assert.ok(e.message.startsWith(`${named}: `), e.message);
      assert.match(e.message, rule);
      return true;
    },
  );
}
/** The message of a field's refusal, to its end, as a RegExp. */
const fieldRule = (field: string, rule: string): RegExp => new RegExp(`${literal(`: field "${field}" ${rule}`).source}$`);

describe("manifest: each field's rule, named with its dotted path", () => {
  const SRC = "/h/snapshots/x/manifest.json";
  const base = () => JSON.parse(VECTOR);
  const missing = "is missing (every field must be present, null where allowed)";
  const cases: [string, (o: any) => unknown, string, string][] = [
    ["the root is an object", () => [], "", "must be an object"],
    ["the root is an object, not null", () => null, "", "must be an object"],
    ["image is an object", (o) => ({ ...o, image: "docker.io/x" }), "image", "must be an object"],
    ["upper is an object", (o) => ({ ...o, upper: null }), "upper", "must be an object"],
    ["upper.integrity is null or an object", (o) => ({ ...o, upper: { ...o.upper, integrity: "sha256:bb" } }), "upper.integrity", "must be an object"],
    ["upper.integrity is not an array", (o) => ({ ...o, upper: { ...o.upper, integrity: [] } }), "upper.integrity", "must be an object"],
    ["an unknown top-level field", (o) => ({ ...o, note: "x" }), "note", "is not a known field"],
    ["an unknown field in upper", (o) => ({ ...o, upper: { ...o.upper, mode: 420 } }), "upper.mode", "is not a known field"],
    ["an unknown field in upper.integrity", (o) => ({ ...o, upper: { ...o.upper, integrity: { ...o.upper.integrity, extra: null } } }), "upper.integrity.extra", "is not a known field"],
    ["labels missing", (o) => { delete o.labels; return o; }, "labels", missing],
    ["image.ref missing", (o) => { delete o.image.ref; return o; }, "image.ref", missing],
    ["upper.integrity.digest missing", (o) => { delete o.upper.integrity.digest; return o; }, "upper.integrity.digest", missing],
    ["format is a string", (o) => ({ ...o, format: 1 }), "format", "must be a string"],
    ["format may not be null", (o) => ({ ...o, format: null }), "format", "must be a string"],
    ["format is raw or qcow2, case and all", (o) => ({ ...o, format: "RAW" }), "format", 'must be "raw" or "qcow2" (got "RAW")'],
    ["fstype may not be null", (o) => ({ ...o, fstype: null }), "fstype", "must be a string"],
    ["image.ref is a string", (o) => ({ ...o, image: { ...o.image, ref: 5 } }), "image.ref", "must be a string"],
    ["image.manifest_digest may not be null", (o) => ({ ...o, image: { ...o.image, manifest_digest: null } }), "image.manifest_digest", "must be a string"],
    ["image.manifest_digest has a colon", (o) => ({ ...o, image: { ...o.image, manifest_digest: "sha256" } }), "image.manifest_digest", 'must have the form algo:hex (got "sha256")'],
    ["parent is a digest: not a bare colon", (o) => ({ ...o, parent: ":" }), "parent", 'must have the form algo:hex (got ":")'],
    ["parent is a digest: hex not empty", (o) => ({ ...o, parent: "a:" }), "parent", 'must have the form algo:hex (got "a:")'],
    ["created_at is a string", (o) => ({ ...o, created_at: 0 }), "created_at", "must be a string"],
    ["created_at may not be null", (o) => ({ ...o, created_at: null }), "created_at", "must be a string"],
    ["source_sandbox is a string or null", (o) => ({ ...o, source_sandbox: 5 }), "source_sandbox", "must be a string or null"],
    ["labels is an object, not an array", (o) => ({ ...o, labels: [] }), "labels", "must be an object of strings"],
    ["labels is an object, not null", (o) => ({ ...o, labels: null }), "labels", "must be an object of strings"],
    ["a label value is a string, not null", (o) => ({ ...o, labels: { ...o.labels, a: null } }), "labels.a", "must be a string"],
    ["upper.file is a string", (o) => ({ ...o, upper: { ...o.upper, file: 5 } }), "upper.file", "must be a string"],
    ["upper.file is not .", (o) => ({ ...o, upper: { ...o.upper, file: "." } }), "upper.file", 'must be one normal path component (got ".")'],
    ["upper.file has no slash", (o) => ({ ...o, upper: { ...o.upper, file: "a/b" } }), "upper.file", 'must be one normal path component (got "a/b")'],
    ["upper.file has no NUL", (o) => ({ ...o, upper: { ...o.upper, file: "a\u0000b" } }), "upper.file", 'must be one normal path component (got "a\\u0000b")'],
    ["upper.file is not a document name, and the error lists them all", (o) => ({ ...o, upper: { ...o.upper, file: "archive.json" } }), "upper.file", 'must not be a reserved name (manifest.json, snapshot.json, archive.json); got "archive.json"'],
    ["upper.size_bytes is a number, not its text", (o) => ({ ...o, upper: { ...o.upper, size_bytes: "4096" } }), "upper.size_bytes", "must be a non-negative integer"],
    ["upper.size_bytes is written as an integer (no exponent)", (o) => ({ ...o, upper: { ...o.upper, size_bytes: "@1e3" } }), "upper.size_bytes", "must be a non-negative integer"],
    ["upper.size_bytes is written as an integer (no fraction)", (o) => ({ ...o, upper: { ...o.upper, size_bytes: "@10.5" } }), "upper.size_bytes", "must be a non-negative integer"],
    ["upper.size_bytes is not negative", (o) => ({ ...o, upper: { ...o.upper, size_bytes: -4096 } }), "upper.size_bytes", "must be a non-negative integer"],
    ["upper.size_bytes is at most 2^53-1", (o) => ({ ...o, upper: { ...o.upper, size_bytes: "@9007199254740992" } }), "upper.size_bytes", "must not exceed 2^53-1"],
    ["upper.integrity.algorithm is a string", (o) => ({ ...o, upper: { ...o.upper, integrity: { ...o.upper.integrity, algorithm: 1 } } }), "upper.integrity.algorithm", "must be a string"],
    ["upper.integrity.digest is a digest", (o) => ({ ...o, upper: { ...o.upper, integrity: { ...o.upper.integrity, digest: "bb" } } }), "upper.integrity.digest", 'must have the form algo:hex (got "bb")'],
    ["upper.integrity.digest may not be null", (o) => ({ ...o, upper: { ...o.upper, integrity: { ...o.upper.integrity, digest: null } } }), "upper.integrity.digest", "must be a string"],
  ];
  for (const [name, mutate, field, rule] of cases) {
    test(`rule: ${name}`, () => {
      // "@…" marks a number literal to write as is (JSON.stringify would normalise it)
      const text = JSON.stringify(mutate(base())).replace(/"@([^"]*)"/, "$1");
      refusedAs(text, fieldRule(field, rule), SRC);
    });
  }
  test("rule: without a source, errors name manifest.json", () => {
    refusedAs(VECTOR.replace('"fstype":"ext4"', '"fstype":""'), fieldRule("fstype", "must not be empty"));
  });
  test("rule: what the schema allows is accepted as written: qcow2, empty created_at and source_sandbox, a parent digest, null integrity, size 0 and 2^53-1", () => {
    const o = base();
    Object.assign(o, { format: "qcow2", created_at: "", source_sandbox: "", parent: "a:b" });
    o.upper = { file: "...", size_bytes: 9007199254740991, integrity: null };
    const text = JSON.stringify(o);
    const m = parseManifest(text);
    assert.deepEqual(m, JSON.parse(text));
    assert.equal(canonicalManifestText(m), text);
    const zero = parseManifest(text.replace("9007199254740991", "0"));
    assert.equal(zero.upper.size_bytes, 0);
  });
  test("rule: the parsed manifest holds exactly what the file says (JSON.parse as the oracle)", () => {
    assert.deepEqual(parseManifest(VECTOR), JSON.parse(VECTOR));
    assert.deepEqual(parseManifest(new TextEncoder().encode(VECTOR)), JSON.parse(VECTOR));
    assert.equal(parseManifest(VECTOR).upper.integrity?.algorithm, SPARSE_SHA256);
  });
  test("rule: size_bytes written -0 is the integer 0, read and written back as 0", () => {
    const m = parseManifest(VECTOR.replace("4294967296", "-0"));
    assert.ok(Object.is(m.upper.size_bytes, 0));
    assert.equal(canonicalManifestText(m), VECTOR.replace("4294967296", "0"));
  });
});

describe("manifest: the document, before its fields", () => {
  test("rule: manifest bytes are at most MAX_MANIFEST_BYTES (1 MiB); exactly the limit is fine", () => {
    assert.equal(MAX_MANIFEST_BYTES, 1 << 20);
    const atLimit = new TextEncoder().encode(VECTOR + " ".repeat(MAX_MANIFEST_BYTES - VECTOR.length));
    assert.equal(atLimit.length, MAX_MANIFEST_BYTES);
    assert.equal(parseManifest(atLimit).fstype, "ext4");
    const over = new TextEncoder().encode(VECTOR + " ".repeat(MAX_MANIFEST_BYTES - VECTOR.length + 1));
    refusedAs(over, literal(`/x/manifest.json: manifest is ${MAX_MANIFEST_BYTES + 1} bytes; the limit is ${MAX_MANIFEST_BYTES}`), "/x/manifest.json");
  });
  test("rule: any metadata document is bounded by the limit its caller names, and named by what it is", () => {
    const doc = new TextEncoder().encode('{"a":1}');
    assert.equal(parseJsonDocument(doc, "/s/snapshot.json", "descriptor", doc.length).kind, "object");
    assert.throws(
      () => parseJsonDocument(doc, "/s/snapshot.json", "descriptor", doc.length - 1),
      (e: unknown) => e instanceof InvalidManifest && e.code === "invalid-manifest" && /^\/s\/snapshot\.json: descriptor is 7 bytes; the limit is 6$/.test(e.message),
    );
    assert.throws(
      () => parseJsonDocument(new Uint8Array([0x7b, 0xc3, 0x7d]), "/s/snapshot.json", "descriptor", 100),
      (e: unknown) => e instanceof InvalidManifest && e.code === "invalid-manifest" && /^\/s\/snapshot\.json: descriptor is not valid UTF-8$/.test(e.message),
    );
  });
  test("rule: manifest bytes must be UTF-8; the error names the file", () => {
    refusedAs(new Uint8Array([0x7b, 0xed, 0xa0, 0x80, 0x7d]), /^\/x\/m\.json: manifest is not valid UTF-8$/, "/x/m.json");
  });
  test("rule: JSON faults are reported with the parser's rule and offset, and a BOM is not whitespace", () => {
    refusedAs(VECTOR.slice(0, 24), /^\/x\/m\.json: not valid JSON: unterminated string at offset 24$/, "/x/m.json");
    refusedAs(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(VECTOR)]), /^\/x\/m\.json: not valid JSON: unexpected character "\ufeff" at offset 0$/, "/x/m.json");
    const dup = VECTOR.replace('"fstype":"ext4"', '"fstype":"ext4","fstype":"xfs"');
    refusedAs(dup, literal(`/x/m.json: not valid JSON: duplicate key "fstype" at offset ${dup.lastIndexOf('"fstype"')}`), "/x/m.json");
  });
});

describe("manifest: digest forms and path components", () => {
  test("rule: a digest is algo:hex with both parts non-empty (the first colon splits them)", () => {
    for (const s of ["a:b", "sha256:00", "a:b:c", "a::"]) assert.equal(isDigestForm(s), true, s);
    for (const s of ["", ":", "a:", ":b", "ab", "::"]) assert.equal(isDigestForm(s), false, s);
  });
  test("rule: a normal path component is not empty, not . or .., and has no / or NUL", () => {
    for (const s of ["a", "...", ".a", "a.", "upper.ext4", "a b", "\\"]) assert.equal(isNormalComponent(s), true, s);
    for (const s of ["", ".", "..", "/", "a/", "/a", "a/b", "\0", "a\0"]) assert.equal(isNormalComponent(s), false, JSON.stringify(s));
  });
});

describe("manifest: validate, canonical bytes and digest of a manifest built in code", () => {
  const m = (): Manifest => parseManifest(VECTOR);
  test("rule: validateManifest returns the manifest it checks, and refuses what parseManifest refuses, naming its source", () => {
    assert.deepEqual(validateManifest(m()), m());
    const bad = { ...m(), fstype: "" };
    assert.throws(() => validateManifest(bad), (e: unknown) => e instanceof InvalidManifest && e.code === "invalid-manifest" && /^manifest\.json: field "fstype" must not be empty$/.test(e.message));
    assert.throws(() => validateManifest(bad, "manifest for /d"), (e: unknown) => e instanceof InvalidManifest && e.code === "invalid-manifest" && /^manifest for \/d: field "fstype" must not be empty$/.test(e.message));
  });
  test("rule: the canonical form writes null fields as null and present ones as values, in schema order", () => {
    const variants: Manifest[] = [
      { ...m(), parent: "sha256:cc", source_sandbox: null, upper: { ...m().upper, integrity: null } },
      { ...m(), parent: null, source_sandbox: "sb", labels: {} },
    ];
    for (const v of variants) {
      const text = canonicalManifestText(v);
      assert.deepEqual(JSON.parse(text), v);
      assert.deepEqual(Object.keys(JSON.parse(text)), ["schema", "format", "fstype", "image", "parent", "created_at", "labels", "upper", "source_sandbox"]);
      assert.equal(canonicalManifestText(parseManifest(text)), text);
    }
  });
  test("rule: the digest is sha256: + hex SHA-256 of the canonical UTF-8 bytes", async () => {
    const v = { ...m(), labels: { "\u00e9": "\u{1F600}" } };
    const bytes = canonicalManifest(v);
    assert.deepEqual(bytes, new TextEncoder().encode(canonicalManifestText(v)));
    assert.equal(bytes.length, canonicalManifestText(v).length + 1 + 2); // é is 2 bytes, 😀 is 4 (2 UTF-16 units)
    assert.equal(await manifestDigest(v), `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
  });
});
