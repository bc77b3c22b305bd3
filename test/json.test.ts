/** Rules of the strict JSON reader (src/json.ts) and the manifest's `schema` field (src/manifest.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidManifest } from "../src/errors.js";
import { JsonSyntaxError, parseStrictJson, plainJson } from "../src/json.js";
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
