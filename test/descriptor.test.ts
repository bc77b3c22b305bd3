/**
 * The canonical `snapshot.json` (issue 23): labels and extensions are sorted
 * by code point (UTF-8 byte order), not by JavaScript's default sort (UTF-16
 * units). Keys outside the Basic Multilingual Plane tell them apart: "😀"
 * (U+1F600, UTF-16 D83D DE00) sorts before "！" (U+FF01) in UTF-16 and after
 * it by code point. The identity digest must be the one microsandbox
 * computes for the same snapshot: msb 0.6.18 re-canonicalizes every
 * descriptor it reads, so its digest is the witness.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalDescriptorText, parseDescriptor } from "../src/descriptor.js";
import { nodeFs } from "../src/fs/node.js";
import { SnapshotStore } from "../src/store.js";
import { IMAGE } from "./helpers/homes.js";

const T = { timeout: 60_000 };
const MSB = join(process.cwd(), "node_modules", "@superradcompany", "microsandbox-linux-x64-gnu", "bin", "msb");
/** In UTF-16 order "😀" comes first; by code point "！" does; "a" is first either way. */
const LABELS = { "😀": "grin", "！": "bang", a: "plain" };

test("rule: descriptor labels and extensions are sorted by code point, not UTF-16 units (hand-written expectation)", T, () => {
  const text =
    `{"schema":1,"artifact":"snapshot","scope":"disk","created_at":"2026-05-01T12:00:00Z","parent":null,` +
    `"image":{"ref":"python:3.12","manifest_digest":"sha256:${"a".repeat(64)}"},"source_sandbox":null,` +
    `"state":{"kind":"file","format":"raw","fstype":"ext4","upper":{"file":"upper.ext4","size_bytes":4096,"integrity":null}},` +
    `"labels":{"😀":"grin","a":"plain","！":"bang"},"extensions":{"😀.x":1,"！.x":2},"requires":[]}`;
  const canonical = canonicalDescriptorText(parseDescriptor(text));
  assert.ok(canonical.includes(`"labels":{"a":"plain","！":"bang","😀":"grin"}`), canonical);
  assert.ok(canonical.includes(`"extensions":{"！.x":2,"😀.x":1}`), canonical);
});

test("rule: a snapshot.json with non-BMP labels gets the digest msb computes for it", T, async () => {
  const root = mkdtempSync(join(tmpdir(), "snapbundle-descriptor-"));
  try {
    const home = join(root, "h");
    writeFileSync(join(root, "u"), new Uint8Array(4096).fill(3));
    const snap = await new SnapshotStore(nodeFs(), home).create("labelled", { upper: join(root, "u"), image: IMAGE, labels: LABELS, form: "snapshot" });
    const bytes = readFileSync(join(snap.path, "snapshot.json"));
    const text = bytes.toString("utf8");
    assert.ok(text.includes(`"labels":{"a":"plain","！":"bang","😀":"grin"}`), text);
    assert.equal(snap.digest, `sha256:${createHash("sha256").update(bytes).digest("hex")}`, "the digest is the hash of the bytes written");
    if (!existsSync(MSB)) {
      console.log(`msb is not installed (${MSB}): the witness part is skipped`);
      return;
    }
    const r = spawnSync(MSB, ["snapshot", "inspect", "labelled"], { env: { ...process.env, MSB_HOME: home }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const digest = /^Digest:\s+(sha256:[0-9a-f]{64})$/m.exec(r.stdout)?.[1];
    assert.equal(digest, snap.digest, `msb's digest of the same snapshot:\n${r.stdout}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
