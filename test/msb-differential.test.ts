/**
 * Differential suite: hand-crafted, mutated bundles loaded by both our
 * loader and the real `msb snapshot load` (0.6.18), each into a fresh home.
 * Every case states the verdict of each tool; where they disagree, the case
 * carries the reason (`why`) we keep the difference, and docs/msb-differences.md
 * lists the same. A case whose verdict changes on either side fails the test.
 * Skipped, with the reason, where msb's platform package is missing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SnapbundleError } from "../src/errors.js";
import { nodeFs } from "../src/fs/node.js";
import { SnapshotStore } from "../src/store.js";
import { fileEntry, snapEntries, snapFixture, tarOf, zstdCli } from "./helpers/archive-bundle.js";
import { RUNTIME } from "./helpers/cli-run.js";
import { HEAVY } from "./helpers/heavy.js";
import { noise } from "./helpers/homes.js";
import { buildMsbImage, MKFS_EROFS_SKIP, MSB_SKIP, runMsb } from "./helpers/msb.js";
import { walkHeaders } from "./helpers/archive-headers.js";
import { craftBundle06, crafted06, referenceMemberHash } from "./helpers/msb06-reference.js";
import { concatBytes, craftHeader, craftPax, END, paxRecord } from "./helpers/tar-craft.js";
import { skippableFrame } from "./helpers/wasm-util.js";

const T = { timeout: 120_000 };
/** The loader is the same code on every runtime: Node runs the differential by default, Deno and Bun with SNAPBUNDLE_HEAVY=1. */
const SKIP = MSB_SKIP || (RUNTIME !== "node" && HEAVY && `${HEAVY} (on ${RUNTIME}; Node runs the differential by default)`);
const enc = (s: string) => new TextEncoder().encode(s);

type Verdict = "accept" | "refuse";
type Member = { path: string; data: Uint8Array; mode?: number };

interface Case {
  readonly name: string;
  /** The bundle's bytes (plain tar or zstd). */
  readonly bytes: () => Promise<Uint8Array>;
  readonly ours: Verdict;
  readonly msb: Verdict;
  /** Why the verdicts differ (required when they do). */
  readonly why?: string;
  /** A further check of what each tool installed (its snapshot directory, or null), and of msb's home. */
  readonly installed?: (oursDir: string | null, msbDir: string | null, msbHome: string) => void;
}

/** A plain tar of members (regular files, mode 0644 unless given). */
const tarMembers = (members: readonly Member[]) => tarOf(...members.map((m) => fileEntry(m.path, m.data, m.mode === undefined ? {} : { mode: m.mode })));

const flipIn = (data: Uint8Array, at: number) => {
  const out = data.slice();
  out[at]! ^= 0x01;
  return out;
};

/** The single directory a tool installed under `home/snapshots`, or null. */
function installedDir(home: string): string | null {
  let names: string[];
  try {
    names = readdirSync(join(home, "snapshots")).filter((n) => !n.startsWith("."));
  } catch {
    return null;
  }
  return names.length === 1 ? join(home, "snapshots", names[0]!) : null;
}

// ── the reasons of the known disagreements (docs/msb-differences.md lists them too) ──
const MSB_LOADS_CORRUPT =
  "msb's load checks member hashes when archive.json records them, but not the payload against its recorded integrity: it installs an upper that `msb snapshot verify` then refuses; we verify every upper before it is installed, so a corrupt bundle never lands in the home";
const MSB_FIRST_FRAME =
  "msb decodes only the first zstd frame, so a tar split over several frames (as pzstd, zstd --adapt or a concatenation produce; RFC 8878 allows any number) reads as cut short; we decode every frame, as the zstd CLI does";
const MSB_NO_END =
  "msb installs what it read when the archive ends without its end-of-archive blocks; we require the two zero blocks, so a cut-short download is never taken for a whole one";
const MSB_SKIPPABLE =
  "msb hands a skippable frame's bytes to the tar reader (\"header checksum\" errors); skippable frames are part of the zstd format (RFC 8878 §3.1.2) and the zstd CLI skips them, as we do";

/** msb installed the corrupt upper; its own verify refuses it, which proves the payload was never checked on load. */
function msbCopyFailsVerify(_ours: string | null, msbDir: string | null, msbHome: string): void {
  assert.ok(msbDir, "msb installed a snapshot");
  const v = runMsb(msbHome, ["snapshot", "verify", msbDir]);
  assert.notEqual(v.code, 0, `msb snapshot verify must refuse what msb's load installed: ${v.stdout}`);
}

// ── the manifest layout (sha256-<16hex>/manifest.json + upper) ──────────────
const m = snapFixture({ size: 12288, pieces: [[0, "hello"], [8192, noise(3000, 7)]] });
const mOther = snapFixture({ size: 8192, pieces: [[0, "other"], [4096, noise(2000, 8)]] });
const mTar = () => tarOf(...snapEntries(m));
const mUpper = `${m.prefix}/${m.upperFile}`;
const mManifest = `${m.prefix}/manifest.json`;

const manifestCases: Case[] = [
  { name: "manifest layout: the unmodified bundle", bytes: async () => zstdCli(mTar()), ours: "accept", msb: "accept" },
  { name: "manifest layout: plain tar", bytes: async () => mTar(), ours: "accept", msb: "accept" },
  {
    name: "manifest layout: a payload byte flipped, manifest integrity not recomputed",
    bytes: async () => zstdCli(tarOf(fileEntry(mManifest, m.manifest), fileEntry(mUpper, flipIn(m.upper, 8200)))),
    ours: "refuse",
    msb: "accept",
    why: MSB_LOADS_CORRUPT,
    installed: msbCopyFailsVerify,
  },
  {
    name: "manifest layout: a payload byte flipped, integrity and digest recomputed",
    bytes: async () => zstdCli(tarOf(...snapEntries(snapFixture({ size: 12288, pieces: [[0, "hellp"], [8192, noise(3000, 7)]] })))),
    ours: "accept",
    msb: "accept",
  },
  {
    name: "manifest layout: size_bytes disagrees with the upper",
    bytes: async () => zstdCli(tarOf(...snapEntries(snapFixture({ sizeBytes: 4096, integrity: false })))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: the directory does not name the manifest's digest (both install it under its true digest)",
    bytes: async () => zstdCli(tarOf(fileEntry(`sha256-${"0".repeat(16)}/manifest.json`, m.manifest), fileEntry(`sha256-${"0".repeat(16)}/${m.upperFile}`, m.upper))),
    ours: "accept",
    msb: "accept",
  },
  {
    name: "manifest layout: zstd stream truncated inside the upper",
    bytes: async () => {
      const z = zstdCli(mTar(), ["-3", "--no-check"]);
      return z.subarray(0, Math.floor(z.length * 0.7));
    },
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: a second zstd frame carrying another snapshot after the end-of-archive marker",
    bytes: async () => concatBytes(zstdCli(tarOf(...snapEntries(m))), zstdCli(tarOf(...snapEntries(mOther)))),
    ours: "accept",
    msb: "accept",
    installed: (oursDir, msbDir) => {
      // both stop at the end-of-archive marker, as tar does: only the first snapshot is installed
      assert.equal(oursDir?.split("/").pop(), m.prefix, "we installed the first snapshot only");
      assert.ok(msbDir !== null, "msb installed exactly one snapshot");
    },
  },
  {
    name: "manifest layout: one tar split over two zstd frames",
    bytes: async () => {
      const t = mTar();
      return concatBytes(zstdCli(t.subarray(0, 4096)), zstdCli(t.subarray(4096)));
    },
    ours: "accept",
    msb: "refuse",
    why: MSB_FIRST_FRAME,
  },
  {
    name: "manifest layout: zstd of the tar without its end-of-archive blocks",
    bytes: async () => {
      const t = mTar();
      return zstdCli(t.subarray(0, t.length - 1024));
    },
    ours: "refuse",
    msb: "accept",
    why: MSB_NO_END,
  },
  {
    name: "manifest layout: a leading skippable frame",
    bytes: async () => concatBytes(skippableFrame(noise(64, 3)), zstdCli(mTar())),
    ours: "accept",
    msb: "refuse",
    why: MSB_SKIPPABLE,
  },
  {
    name: "manifest layout: an entry climbing out with ..",
    bytes: async () => zstdCli(tarOf(fileEntry("../evil", "x"), ...snapEntries(m))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: an absolute entry path",
    bytes: async () => zstdCli(tarOf(fileEntry("/tmp/snapbundle-differential-evil", "x"), ...snapEntries(m))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: the upper is a symlink",
    bytes: async () => zstdCli(tarOf(fileEntry(mManifest, m.manifest), craftHeader({ name: mUpper, typeflag: "2", linkname: "/etc/passwd", mtime: 1 }))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: the upper twice (duplicate entry)",
    bytes: async () => zstdCli(tarOf(...snapEntries(m), fileEntry(mUpper, m.upper))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: a PAX path record renaming the upper to ../evil",
    bytes: async () => zstdCli(tarOf(fileEntry(mManifest, m.manifest), craftPax(paxRecord("path", "../evil")), fileEntry(mUpper, m.upper))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: a hard link beside the upper",
    bytes: async () => zstdCli(tarOf(...snapEntries(m), craftHeader({ name: `${m.prefix}/link`, typeflag: "1", linkname: mUpper, mtime: 1 }))),
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "manifest layout: a character device entry",
    bytes: async () => zstdCli(tarOf(...snapEntries(m), craftHeader({ name: `${m.prefix}/null`, typeflag: "3", mtime: 1 }))),
    ours: "refuse",
    msb: "refuse",
  },
  { name: "an empty archive (only the end-of-archive blocks)", bytes: async () => zstdCli(END), ours: "refuse", msb: "refuse" },
  { name: "not an archive at all (noise)", bytes: async () => noise(4096, 31), ours: "refuse", msb: "refuse" },
  {
    name: "manifest layout: an unexpected extra file beside the manifest",
    bytes: async () => zstdCli(tarOf(...snapEntries(m), fileEntry(`${m.prefix}/notes.txt`, "x"))),
    ours: "refuse",
    msb: "refuse",
  },
];

// ── the snapshot layout (snapshots/, files/, archive.json) ───────────────────
type Mutate = (inv: any, members: { path: string; data: Uint8Array }[]) => void;
const payload = noise(12288, 21);
const crafted = () => crafted06(payload, "msb-file-merkle-blake3-v1");
const bundle06 = async (mutate?: Mutate, memberHashes = true): Promise<Member[]> => (await craftBundle06([await crafted()], { memberHashes, mutate })).members;
const payloadOf = (ms: Member[]) => ms.find((x) => x.path.startsWith("files/"))!;
const zTar = async (ms: Promise<Member[]> | Member[]) => zstdCli(tarMembers(await ms));

/** The manifest-layout fixture's entries as members. */
const snapEntriesAsMembers = (): Member[] => [{ path: mManifest, data: m.manifest }, { path: mUpper, data: m.upper }];

/** Recompute the member hash of the payload entry after its bytes changed. */
async function rehash(ms: Member[]): Promise<Member[]> {
  const inv = JSON.parse(new TextDecoder().decode(ms.find((x) => x.path === "archive.json")!.data));
  const p = payloadOf(ms);
  const e = inv.entries.find((x: any) => x.path === p.path);
  e.transport_integrity.digest = await referenceMemberHash({ kind: e.kind, path: e.path, encodedSize: p.data.length, apparentSize: p.data.length, ranges: [], stored: p.data });
  return ms.map((x) => (x.path === "archive.json" ? { ...x, data: enc(JSON.stringify(inv)) } : x));
}

const snapshotCases: Case[] = [
  { name: "snapshot layout: the unmodified bundle", bytes: () => zTar(bundle06()), ours: "accept", msb: "accept" },
  { name: "snapshot layout: without member hashes", bytes: () => zTar(bundle06(undefined, false)), ours: "accept", msb: "accept" },
  {
    name: "snapshot layout: a payload byte flipped, nothing recomputed",
    bytes: async () => {
      const ms = await bundle06();
      payloadOf(ms).data = flipIn(payloadOf(ms).data, 5000);
      return zTar(ms);
    },
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "snapshot layout: a payload byte flipped, member hash recomputed (Merkle root not)",
    bytes: async () => {
      const ms = await bundle06();
      payloadOf(ms).data = flipIn(payloadOf(ms).data, 5000);
      return zTar(rehash(ms));
    },
    ours: "refuse",
    msb: "accept",
    why: MSB_LOADS_CORRUPT,
    installed: msbCopyFailsVerify,
  },
  {
    name: "snapshot layout: a payload byte flipped, no member hashes",
    bytes: async () => {
      const ms = await bundle06(undefined, false);
      payloadOf(ms).data = flipIn(payloadOf(ms).data, 5000);
      return zTar(ms);
    },
    ours: "refuse",
    msb: "accept",
    why: MSB_LOADS_CORRUPT,
    installed: msbCopyFailsVerify,
  },
  {
    name: "snapshot layout: zstd stream truncated before archive.json",
    bytes: async () => {
      const z = zstdCli(tarMembers(await bundle06()), ["-3", "--no-check"]);
      return z.subarray(0, Math.floor(z.length * 0.6));
    },
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "snapshot layout: plain tar cut after archive.json (end-of-archive blocks missing)",
    bytes: async () => {
      const t = tarMembers(await bundle06());
      return t.subarray(0, t.length - 1024);
    },
    ours: "refuse",
    msb: "accept",
    why: MSB_NO_END,
  },
  {
    name: "snapshot layout: a second zstd frame with a stray file after the end-of-archive marker",
    bytes: async () => concatBytes(await zTar(bundle06()), zstdCli(tarOf(fileEntry("stray.txt", "x")))),
    ours: "accept",
    msb: "accept",
  },
  {
    name: "snapshot layout: skippable frames before and after",
    bytes: async () => concatBytes(skippableFrame(noise(32, 4)), await zTar(bundle06()), skippableFrame(noise(16, 5), 3)),
    ours: "accept",
    msb: "refuse",
    why: MSB_SKIPPABLE,
  },
  {
    name: "snapshot layout: a trailing skippable frame only",
    bytes: async () => concatBytes(await zTar(bundle06()), skippableFrame(noise(16, 6))),
    ours: "accept",
    msb: "accept",
  },
  { name: "snapshot layout: archive.json schema 2", bytes: () => zTar(bundle06((inv) => (inv.schema = 2))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json artifact is not snapshot-archive", bytes: () => zTar(bundle06((inv) => (inv.artifact = "snapshot"))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json head names no listed snapshot", bytes: () => zTar(bundle06((inv) => (inv.head = `sha256:${"0".repeat(64)}`))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json requires an unknown feature", bytes: () => zTar(bundle06((inv) => inv.requires.push("msb-future-feature-v9"))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json with an unknown top-level field", bytes: () => zTar(bundle06((inv) => (inv.surprise = true))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json encoded_size wrong", bytes: () => zTar(bundle06((inv) => (inv.entries.find((e: any) => e.kind === "file-payload").encoded_size += 1))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json with_parents true for a lone snapshot (a flag both treat as informational)", bytes: () => zTar(bundle06((inv) => (inv.with_parents = true))), ours: "accept", msb: "accept" },
  { name: "snapshot layout: archive.json entry path with ..", bytes: () => zTar(bundle06((inv, ms) => {
    const e = inv.entries.find((x: any) => x.kind === "file-payload");
    const p = ms.find((x) => x.path === e.path)!;
    p.path = e.path = `files/../../${e.path}`;
  })), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json suggested_name climbing out (../../evil)", bytes: () => zTar(bundle06((inv) => (inv.suggested_name = "../../evil"))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json completeness unknown", bytes: () => zTar(bundle06((inv) => (inv.completeness = "partial"))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json descriptor path not the snapshot's", bytes: () => zTar(bundle06((inv) => (inv.snapshots[0].descriptor = `snapshots/${"0".repeat(64)}/snapshot.json`))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: a manifest-layout snapshot mixed in", bytes: async () => zTar([...snapEntriesAsMembers(), ...(await bundle06())]), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: archive.json not JSON", bytes: () => zTar(bundle06((_inv, ms) => ms.push({ path: "archive.json", data: enc("{") }))), ours: "refuse", msb: "refuse" },
  { name: "snapshot layout: an unlisted extra member", bytes: async () => zTar([...(await bundle06()), { path: "files/extra.bin", data: enc("x") }]), ours: "refuse", msb: "refuse" },
  {
    name: "snapshot layout: the payload member twice",
    bytes: async () => {
      const ms = await bundle06();
      return zTar([payloadOf(ms), ...ms]);
    },
    ours: "refuse",
    msb: "refuse",
  },
  {
    name: "snapshot layout: setuid and setgid bits on the payload",
    bytes: async () => zTar((await bundle06()).map((x) => (x.path.startsWith("files/") ? { ...x, mode: 0o6755 } : x))),
    ours: "accept",
    msb: "accept",
    installed: (oursDir, msbDir) => {
      assert.ok(oursDir && msbDir, "both installed the snapshot");
      assert.equal(lstatSync(join(oursDir, "upper.ext4")).mode & 0o7777, 0o644, "we write the payload 0644 whatever the archive says");
      assert.equal(lstatSync(join(msbDir, "upper.ext4")).mode & 0o6000, 0o6000, "msb applies setuid/setgid from the archive (known difference)");
    },
  },
];

// ── --with-image bundles: image cache files msb itself accepts, then broken ──
/** Members of a plain tar of regular entries (our save of a dense upper writes only those). */
function membersOf(tar: Uint8Array): Member[] {
  return walkHeaders(tar).map((h) => {
    assert.equal(h.typeflag, "0", `${h.name}: a regular entry`);
    return { path: h.name, data: tar.slice(h.offset + 512, h.offset + 512 + h.size) };
  });
}

/** A with-image bundle (no member hashes) saved by us from a home whose image cache msb accepts; `layer` replaces a layer file's bytes, its sha256 in archive.json recomputed. */
async function imageBundle(layer?: Uint8Array): Promise<Uint8Array> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "msb-diff-image-")));
  try {
    const home = join(root, "home");
    const ref = "docker.io/library/python:3.12";
    const image = await buildMsbImage(home, ref, "differential");
    writeFileSync(join(root, "upper"), noise(8192, 41));
    const store = new SnapshotStore(nodeFs(), home);
    await store.create("s", { upper: join(root, "upper"), image: { ref, manifest_digest: image.manifestDigest }, form: "snapshot", integrity: true });
    await store.save("s", join(root, "b.tar"), { withImage: true, plainTar: true, memberHashes: false });
    const members = membersOf(new Uint8Array(readFileSync(join(root, "b.tar"))));
    if (layer === undefined) return tarMembers(members);
    const target = members.find((x) => x.path.startsWith("images/layers/"))!;
    target.data = layer;
    const inv = members.find((x) => x.path === "archive.json")!;
    const doc = JSON.parse(new TextDecoder().decode(inv.data));
    const entry = doc.entries.find((e: any) => e.path === target.path);
    entry.integrity = { algorithm: "sha256", digest: `sha256:${createHash("sha256").update(layer).digest("hex")}` };
    entry.encoded_size = entry.apparent_size = layer.length;
    inv.data = enc(JSON.stringify(doc));
    return tarMembers(members);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const imageCases: Case[] = [
  { name: "with image: the unmodified bundle (real EROFS images)", bytes: async () => zstdCli(await imageBundle()), ours: "accept", msb: "accept" },
  { name: "with image: a layer of 4096 random bytes, hashes recomputed (not EROFS)", bytes: async () => zstdCli(await imageBundle(noise(4096, 43))), ours: "refuse", msb: "refuse" },
  { name: "with image: a layer of 8192 zero bytes, hashes recomputed (not EROFS)", bytes: async () => zstdCli(await imageBundle(new Uint8Array(8192))), ours: "refuse", msb: "refuse" },
];

describe("differential: mutated bundles loaded by our loader and by msb 0.6.18", () => {
  for (const c of [...manifestCases, ...snapshotCases, ...(MKFS_EROFS_SKIP ? [] : imageCases)]) {
    const agree = c.ours === c.msb;
    test(`${agree ? "agreed" : "known disagreement"}: ${c.name} — ours ${c.ours}, msb ${c.msb}`, { ...T, skip: SKIP }, async () => {
      assert.ok(agree || (c.why ?? "").length > 20, "a disagreement carries its justification");
      const root = realpathSync(mkdtempSync(join(tmpdir(), "msb-diff-")));
      try {
        const bytes = await c.bytes();
        const file = join(root, "bundle.tar.zst");
        writeFileSync(file, bytes);
        const oursHome = join(root, "ours");
        const msbHome = join(root, "msb");
        let ours: Verdict = "accept";
        let oursError = "";
        try {
          await new SnapshotStore(nodeFs(), oursHome).load(file);
        } catch (e) {
          if (!(e instanceof SnapbundleError)) throw e;
          ours = "refuse";
          oursError = `${e.code}: ${e.message}`;
        }
        const r = runMsb(msbHome, ["snapshot", "load", file]);
        const msb: Verdict = r.code === 0 ? "accept" : "refuse";
        assert.deepEqual({ ours, msb }, { ours: c.ours, msb: c.msb }, `verdicts (ours: ${oursError || "loaded"}; msb: ${r.stderr.trim() || "loaded"})`);
        // a refusal leaves no snapshot behind on our side
        if (ours === "refuse") assert.equal(installedDir(oursHome), null, "our refused load installed nothing");
        if (c.installed) c.installed(installedDir(oursHome), installedDir(msbHome), msbHome);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
