import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidManifest } from "../src/errors.js";
import { canonicalManifestText, type Manifest, manifestDigest, parseManifest } from "../src/manifest.js";
import { compareCodePoints, parseStrictJson, plainJson } from "../src/json.js";
import { digestSafe, imageCacheKey, normalizeImageRef } from "../src/layout.js";

const VECTOR =
  '{"schema":1,"format":"raw","fstype":"ext4","image":{"ref":"docker.io/library/python:3.12","manifest_digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"parent":null,"created_at":"2026-05-01T12:00:00Z","labels":{"owner":"alice","stage":"post-pip-install"},"upper":{"file":"upper.ext4","size_bytes":4294967296,"integrity":{"algorithm":"msb-sparse-sha256-v1","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},"source_sandbox":"build-1"}';
const VECTOR_DIGEST = "sha256:72005520f25b0532f88e41a3bd3ad8d642189582f3784fcb22ec8eb1a7b8a589";

describe("manifest: SPEC §2 vector", () => {
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

describe("layout: image references and names (SPEC §1)", () => {
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
