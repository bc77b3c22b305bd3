/**
 * `inspect BUNDLE` / `verify BUNDLE` (and `inspectBundle` / `verifyBundle`)
 * on microsandbox 0.6 bundles (`snapshots/<64hex>/snapshot.json`,
 * `files/<64hex>/<upper>`, `images/…`, `archive.json`): bundles our save
 * writes of 0.6 snapshots, and bundles built by hand from the spec as
 * upstream writes them (0.6.7–0.6.8 without member hashes, 0.6.9+ with
 * them). Integrity is computed by the reference implementations of
 * `helpers/msb06-reference.ts`; `verify` must agree with a load into an
 * empty home every time, with the load's error code and message.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inspectBundle, verifyBundle } from "../src/archive/inspect.js";
import { SnapbundleError } from "../src/errors.js";
import { nodeFs } from "../src/fs/node.js";
import { MerkleStream } from "../src/merkle.js";
import { SnapshotStore } from "../src/store.js";
import { fileEntry, tarOf, zstdCli } from "./helpers/archive-bundle.js";
import { errorLine, expectRun, scratchDir, stdoutJson } from "./helpers/cli-assert.js";
import { runCli, RUNTIME } from "./helpers/cli-run.js";
import { noise } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import {
  craftBundle06,
  crafted06,
  descriptorText,
  fileState,
  referenceMerkleRoot,
  sha256Of,
  sparseSha256Of,
  wasmBlake3,
  write06,
  writeCheckpoint06,
} from "./helpers/msb06-reference.js";

const enc = (s: string) => new TextEncoder().encode(s);
const fs = nodeFs();

/** A hand-built bundle's members as a plain tar at `path`. */
function writeTar(path: string, members: readonly { path: string; data: Uint8Array }[]): string {
  writeFileSync(path, tarOf(...members.map((m) => fileEntry(m.path, m.data))));
  return path;
}

/** What loading `bundle` into a fresh, empty home does: the head's digest, or the error. */
async function loadInto(home: string, bundle: string): Promise<{ digest: string } | { error: SnapbundleError }> {
  try {
    return { digest: (await new SnapshotStore(fs, home).load(bundle)).digest };
  } catch (e) {
    if (e instanceof SnapbundleError) return { error: e };
    throw e;
  }
}

/** `verifyBundle`'s error (it must fail). */
async function verifyError(bundle: string): Promise<SnapbundleError> {
  try {
    await verifyBundle(fs, bundle);
  } catch (e) {
    if (e instanceof SnapbundleError) return e;
    throw e;
  }
  assert.fail(`verify accepted ${bundle}`);
}

/** The recorded integrity of a descriptor text: algorithm and digest (the root for Merkle). */
function recordedOf(text: string): { algorithm: string; recorded: string } | null {
  const i = JSON.parse(text).state.upper.integrity;
  return i === null ? null : { algorithm: i.algorithm, recorded: i.root ?? i.digest };
}

describe(`inspect and verify a microsandbox 0.6 bundle on ${RUNTIME}`, () => {
  test("a bundle our save wrote of 0.6 snapshots: layout, snapshots in order, head from archive.json, each integrity computed as it streams", async () => {
    const { root, home, cleanup } = scratchDir("snapbundle-inspect06-");
    try {
      // Merkle over a sparse payload (old-GNU sparse member), sparse-sha256, then null integrity (member hashes on)
      const p = await write06(fs, `${home}/snapshots/p`, { size: 300_000, pieces: [[4096, noise(5000, 7)], [200_000, enc("hello")]], integrity: "msb-file-merkle-blake3-v1", labels: { team: "infra" } });
      const c = await write06(fs, `${home}/snapshots/c`, { size: 9000, pieces: [[1, noise(8000, 4)]], integrity: "msb-sparse-sha256-v1", parent: p.digest });
      const g = await write06(fs, `${home}/snapshots/g`, { size: 5000, pieces: [[0, noise(5000, 5)]], integrity: null, parent: c.digest });
      const bundle = join(root, "g.tar.zst");
      await new SnapshotStore(fs, home).save("g", bundle, { withParents: true });

      const report = await inspectBundle(fs, bundle);
      assert.equal(report.layout, "snapshot");
      assert.deepEqual(report.snapshots.map((s) => s.digest), [p.digest, c.digest, g.digest], "oldest first, as save writes them");
      assert.deepEqual(report.snapshots.map((s) => s.name), [p, c, g].map((s) => s.digest.slice(7)), "the name a load installs it under");
      assert.equal(report.head, g.digest);
      assert.equal(report.compression, "zstd");
      assert.ok(report.tar_formats.includes("gnu-sparse"), String(report.tar_formats));
      assert.deepEqual(report.cache_files, []);
      const [rp, rc, rg] = report.snapshots;
      assert.deepEqual(rp!.labels, { team: "infra" });
      assert.equal(rp!.parent, null);
      assert.equal(rc!.parent, p.digest);
      assert.equal(rg!.parent, c.digest);
      assert.equal(rp!.size_bytes, 300_000);
      assert.equal(rp!.state_kind, "file");
      assert.equal(rp!.image_ref, JSON.parse(p.text).image.ref);
      assert.equal(rp!.image_manifest_digest, JSON.parse(p.text).image.manifest_digest);
      for (const [r, s] of [[rp!, p], [rc!, c]] as const) {
        const want = recordedOf(s.text)!;
        assert.deepEqual(r.integrity, { status: "verified", algorithm: want.algorithm, recorded: want.recorded, computed: want.recorded }, want.algorithm);
      }
      assert.equal(rp!.integrity.computed, await referenceMerkleRoot(p.bytes, wasmBlake3));
      assert.equal(rc!.integrity.computed, sparseSha256Of(c.bytes));
      assert.deepEqual(rg!.integrity, { status: "not-recorded", algorithm: null, recorded: null, computed: null });

      assert.deepEqual(await verifyBundle(fs, bundle), report, "verify accepts it and reports the same");
      assert.deepEqual(await loadInto(join(root, "other"), bundle), { digest: g.digest }, "and so does a load");
    } finally {
      cleanup();
    }
  });

  test("bundles built by hand as upstream writes them: 0.6.7–0.6.8 (no member hashes), 0.6.9+ (member hashes), a checkpoint", async () => {
    const { root, cleanup } = scratchDir("snapbundle-inspect06-");
    try {
      const parent = await crafted06(noise(4000, 5), "msb-sparse-sha256-v1");
      const child = await crafted06(noise(4000, 6), "sha256", parent.digest);
      // 0.6.7–0.6.8 wrote archive.json first; the child's payload before its descriptor (hashed every way until it comes)
      const oldMembers = (await craftBundle06([parent, child], { memberHashes: false })).members;
      const [pd, pp, cd, cp, inv] = oldMembers;
      const old = writeTar(join(root, "old.tar"), [inv!, pd!, pp!, cp!, cd!]);
      const solo = await crafted06(noise(70_000, 9), "msb-file-merkle-blake3-v1");
      const neu = join(root, "new.tar.zst");
      writeFileSync(neu, zstdCli(tarOf(...(await craftBundle06([solo], { memberHashes: true })).members.map((m) => fileEntry(m.path, m.data)))));
      const ckText = descriptorText({ scope: "resumable", state: `{"kind":"checkpoint","checkpoint_id":"ckpt-1","manifest":"sha256:${"c".repeat(64)}"}` });
      const ck = { text: ckText, payload: null, integrity: "null", digest: sha256Of(enc(ckText)) };
      const ckBundle = writeTar(join(root, "ck.tar"), (await craftBundle06([ck], { memberHashes: true })).members);

      const o = await inspectBundle(fs, old);
      assert.equal(o.layout, "snapshot");
      assert.equal(o.compression, "none");
      assert.deepEqual(o.snapshots.map((s) => s.digest), [parent.digest, child.digest]);
      assert.equal(o.head, child.digest);
      assert.deepEqual(o.snapshots.map((s) => [s.integrity.status, s.integrity.algorithm, s.integrity.computed]), [
        ["verified", "msb-sparse-sha256-v1", sparseSha256Of(parent.payload!)],
        ["verified", "sha256", sha256Of(child.payload!)],
      ]);
      const n = await inspectBundle(fs, neu);
      assert.equal(n.compression, "zstd");
      assert.equal(n.head, solo.digest);
      assert.deepEqual(n.snapshots[0]!.integrity, { status: "verified", algorithm: "msb-file-merkle-blake3-v1", recorded: await referenceMerkleRoot(solo.payload!), computed: await referenceMerkleRoot(solo.payload!) });
      const k = await inspectBundle(fs, ckBundle);
      assert.equal(k.head, ck.digest);
      assert.deepEqual({ ...k.snapshots[0]!, labels: undefined }, {
        digest: ck.digest,
        name: ck.digest.slice(7),
        state_kind: "checkpoint",
        parent: null,
        image_ref: JSON.parse(ckText).image.ref,
        image_manifest_digest: JSON.parse(ckText).image.manifest_digest,
        size_bytes: 0,
        labels: undefined,
        integrity: { status: "unsupported", algorithm: null, recorded: null, computed: null },
      });

      for (const [bundle, head] of [[old, child.digest], [neu, solo.digest], [ckBundle, ck.digest]] as const) {
        assert.equal((await verifyBundle(fs, bundle)).head, head, bundle);
        assert.deepEqual(await loadInto(join(root, `home-${head.slice(7, 19)}`), bundle), { digest: head }, bundle);
      }
    } finally {
      cleanup();
    }
  });

  test("verify refuses what a load refuses, with the load's error code and message; inspect still reports", async () => {
    const { root, cleanup } = scratchDir("snapbundle-inspect06-");
    try {
      const flip = (members: { path: string; data: Uint8Array }[]) => {
        const payload = members.find((m) => m.path.startsWith("files/"))!;
        payload.data = payload.data.slice();
        payload.data[1234]! ^= 0x01;
        return members;
      };
      const s = await crafted06(noise(3000, 2), null);
      const hashed = await crafted06(noise(3000, 3), "sha256");
      const merkle = await crafted06(noise(3000, 4), "msb-file-merkle-blake3-v1");
      // a descriptor that does not parse, though archive.json lists it with its true sha256
      const badText = descriptorText({ state: fileState(2000, "null") }).replace('"schema":1', '"schema":2');
      const bad = { text: badText, payload: noise(2000, 5), integrity: "null", digest: sha256Of(enc(badText)) };
      const pretty = JSON.stringify(JSON.parse(hashed.text), null, 2);
      const notCanonical = { ...hashed, text: pretty, digest: sha256Of(enc(pretty)) };
      const swap = (a: unknown[]) => a.reverse();
      const cases: { name: string; members: () => Promise<{ path: string; data: Uint8Array }[]>; code: string; same: "message" | "rule"; needle: RegExp }[] = [
        { name: "payload byte flipped, member hashes, no integrity", members: async () => flip((await craftBundle06([s], { memberHashes: true })).members), code: "archive", same: "message", needle: /transport integrity mismatch for "files\// },
        { name: "payload byte flipped, no member hashes, sha256", members: async () => flip((await craftBundle06([hashed], { memberHashes: false })).members), code: "snapshot-integrity", same: "rule", needle: /upper does not match its recorded integrity \(sha256\)/ },
        { name: "payload byte flipped, no member hashes, Merkle", members: async () => flip((await craftBundle06([merkle], { memberHashes: false })).members), code: "snapshot-integrity", same: "rule", needle: /recorded integrity \(msb-file-merkle-blake3-v1\): snapshot\.json records blake3:/ },
        { name: "archive.json not canonical", members: async () => (await craftBundle06([hashed], { memberHashes: true, inventoryText: (t) => JSON.stringify(JSON.parse(t), null, 1) })).members, code: "archive", same: "message", needle: /not canonical/ },
        { name: "entries not sorted", members: async () => (await craftBundle06([hashed], { memberHashes: true, mutate: (inv) => swap(inv.entries) })).members, code: "archive", same: "message", needle: /not strictly sorted/ },
        { name: "an inventoried member missing", members: async () => (await craftBundle06([hashed], { memberHashes: true, mutate: (_inv, m) => m.splice(m.findIndex((x) => x.path.startsWith("files/")), 1) })).members, code: "archive", same: "message", needle: /missing from the archive/ },
        { name: "member hash wrong", members: async () => (await craftBundle06([hashed], { memberHashes: true, mutate: (inv) => (inv.entries[1].transport_integrity.digest = `blake3:${"0".repeat(64)}`) })).members, code: "archive", same: "message", needle: /transport integrity mismatch/ },
        { name: "head not listed", members: async () => (await craftBundle06([hashed], { memberHashes: true, mutate: (inv) => (inv.head = `sha256:${"0".repeat(64)}`) })).members, code: "archive", same: "message", needle: /is not one of its snapshots/ },
        { name: "payload binding disagrees", members: async () => (await craftBundle06([hashed], { memberHashes: true, mutate: (inv) => (inv.entries.find((e: { kind: string }) => e.kind === "file-payload").integrity = null) })).members, code: "archive", same: "message", needle: /binding disagrees with descriptor/ },
        { name: "descriptor not canonical", members: async () => (await craftBundle06([notCanonical], { memberHashes: true })).members, code: "archive", same: "message", needle: /not in canonical form/ },
        { name: "descriptor does not parse", members: async () => (await craftBundle06([bad], { memberHashes: true })).members, code: "invalid-manifest", same: "message", needle: /snapshots\/[0-9a-f]{64}\/snapshot\.json: field "schema" must be 1/ },
        {
          name: "an image file but no image metadata",
          members: async () =>
            (await craftBundle06([hashed], {
              memberHashes: false,
              mutate: (inv, m) => {
                m.push({ path: "images/vmdk/x.vmdk", data: enc("x") });
                inv.entries.push({ path: "images/vmdk/x.vmdk", owner_snapshot: null, kind: "image-object", included: true, encoded_size: 1, apparent_size: 1, integrity: { algorithm: "sha256", digest: sha256Of(enc("x")) } });
                inv.entries.sort((a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1));
              },
            })).members,
          code: "image-cache",
          same: "message",
          needle: /carries image cache files but no metadata/,
        },
      ];
      for (const c of cases) {
        const bundle = writeTar(join(root, `${c.name.replace(/\W+/g, "-")}.tar`), await c.members());
        const loaded = await loadInto(join(root, `home-${c.name.replace(/\W+/g, "-")}`), bundle);
        assert.ok("error" in loaded, `${c.name}: the load must refuse it`);
        const verify = await verifyError(bundle);
        assert.equal(verify.code, c.code, `${c.name}: ${verify.message}`);
        assert.equal(verify.code, loaded.error.code, `${c.name}: the load's code`);
        assert.equal(verify.constructor, loaded.error.constructor, c.name);
        assert.match(verify.message, c.needle, c.name);
        if (c.same === "message") assert.equal(verify.message, loaded.error.message, `${c.name}: the load's message`);
        else {
          // the load names the bundle and says its staged copy is gone, verify names the archive member; the rule and both digests are the same
          const rule = (m: string) => m.slice(m.indexOf("upper does not match")).replace(/ \(in the temporary copy unpacked into .*, now removed\)$/, "");
          assert.equal(rule(verify.message), rule(loaded.error.message), c.name);
          assert.match(verify.message, new RegExp(`^${bundle.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: files/[0-9a-f]{64}/upper\\.ext4: `), c.name);
        }
      }
      // inspect reports a corrupted upper rather than refusing it
      const corrupted = writeTar(join(root, "corrupted.tar"), flip((await craftBundle06([hashed], { memberHashes: false })).members));
      const r = await inspectBundle(fs, corrupted);
      assert.equal(r.snapshots[0]!.integrity.status, "mismatch");
      assert.equal(r.snapshots[0]!.integrity.recorded, sha256Of(hashed.payload!));
    } finally {
      cleanup();
    }
  });

  test("with the image: images/ files are listed, and verify runs the load's cache rule on them", async () => {
    const { root, home, cleanup } = scratchDir("snapbundle-inspect06-");
    try {
      const img = await buildImage(fs, home);
      const s = await write06(fs, `${home}/snapshots/s`, { size: 4096, pieces: [[0, enc("s")]], integrity: "msb-sparse-sha256-v1", image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      const bundle = join(root, "s.tar.zst");
      await new SnapshotStore(fs, home).save("s", bundle, { withImage: true });
      const report = await verifyBundle(fs, bundle);
      assert.equal(report.head, s.digest);
      assert.deepEqual([...report.cache_files].sort(), img.files.map((f) => `images/${f.slice(`${home}/cache/`.length)}`).sort());
      assert.deepEqual(await loadInto(join(root, "other"), bundle), { digest: s.digest });
    } finally {
      cleanup();
    }
  });

  test("CLI: inspect BUNDLE (text and --json, also from stdin) and verify BUNDLE on a 0.6 bundle; a refused one exits 1 as load does", async () => {
    const { root, home, cleanup } = scratchDir("snapbundle-inspect06-");
    try {
      const p = await write06(fs, `${home}/snapshots/p`, { size: 70_000, pieces: [[65_536, noise(3000, 1)]], integrity: "msb-file-merkle-blake3-v1", labels: { team: "infra" } });
      const c = await write06(fs, `${home}/snapshots/c`, { size: 5000, pieces: [[0, noise(5000, 2)]], integrity: null, parent: p.digest });
      const bundle = join(root, "c.tar.zst");
      expectRun(await runCli(["--home", home, "save", "c", bundle, "--with-parents"]), "save", 0);
      const noHome = join(root, "no-home");

      const doc = stdoutJson(expectRun(await runCli(["--home", noHome, "--json", "inspect", "--verify", bundle]), "inspect --json", 0), "inspect --json"); // --verify: the CLI's plain inspect hashes nothing
      assert.equal(doc.layout, "snapshot");
      assert.equal(doc.head, c.digest);
      assert.deepEqual(doc.snapshots.map((s: { digest: string }) => s.digest), [p.digest, c.digest]);
      assert.equal(doc.snapshots[0].integrity.status, "verified");
      assert.equal(doc.snapshots[0].integrity.recorded, recordedOf(p.text)!.recorded);
      assert.equal(doc.snapshots[1].integrity.status, "not-recorded");
      assert.deepEqual(stdoutJson(expectRun(await runCli(["--json", "inspect", "--verify", "-"], { input: readFileSync(bundle) }), "inspect -", 0), "inspect -"), doc, "stdin reports the same");

      const text = expectRun(await runCli(["--home", noHome, "inspect", "--verify", bundle]), "inspect", 0).stdout;
      assert.match(text, /^layout: +snapshot$/m);
      assert.match(text, new RegExp(`^head: +${c.digest}$`, "m"));
      assert.match(text, new RegExp(`^snapshot: +${p.digest.slice(7)}$`, "m"));
      assert.match(text, new RegExp(`^integrity: +verified \\(msb-file-merkle-blake3-v1 ${recordedOf(p.text)!.recorded}\\)$`, "m"));
      assert.match(text, /^labels: +team=infra$/m);

      assert.match(expectRun(await runCli(["--home", noHome, "verify", bundle]), "verify", 0).stdout, new RegExp(`^verified .*: 2 snapshots, head ${c.digest}; a load into an empty home would succeed\n$`));
      assert.equal(stdoutJson(expectRun(await runCli(["--json", "verify", bundle]), "verify --json", 0), "verify --json").head, c.digest);

      // one flipped payload byte under a member hash: verify fails as the load does
      const s = await crafted06(noise(3000, 2), null);
      const { members } = await craftBundle06([s], { memberHashes: true });
      const payload = members.find((m) => m.path.startsWith("files/"))!;
      payload.data = payload.data.slice();
      payload.data[7]! ^= 0x80;
      const bad = writeTar(join(root, "bad.tar"), members);
      const verify = errorLine(await runCli(["verify", bad]), "verify bad", 1);
      assert.equal(verify, errorLine(await runCli(["--home", join(root, "empty"), "load", bad]), "load bad", 1), "the same check, the same message");
      assert.match(verify, /transport integrity mismatch/);
      const failed = stdoutJson(await runCli(["--json", "verify", bad]), "verify --json bad");
      assert.equal(failed.error.code, "archive");
      assert.equal(failed.error.path, bad);
    } finally {
      cleanup();
    }
  });

  test("MerkleStream: the same root whatever the pieces and holes, as the reference computes it", async () => {
    const bytes = new Uint8Array(300_001);
    bytes.set(noise(70_000, 3), 1000);
    bytes.set(noise(5, 4), 200_000);
    const want = await referenceMerkleRoot(bytes, wasmBlake3);
    // pieces: data the size of a chunk that straddles leaves, holes short and long, a partial last leaf
    const plans: [number, "data" | "hole"][][] = [
      [[300_001, "data"]],
      [[1, "data"], [65_535, "data"], [65_537, "data"], [168_928, "data"]],
      [[1000, "hole"], [70_000, "data"], [129_000, "hole"], [5, "data"], [99_996, "hole"]],
      [[999, "data"], [1, "hole"], [131_072, "data"], [67_928, "hole"], [100_001, "data"]],
    ];
    for (const plan of plans) {
      assert.equal(plan.reduce((n, [l]) => n + l, 0), bytes.length, JSON.stringify(plan));
      const m = new MerkleStream(bytes.length);
      let at = 0;
      for (const [length, kind] of plan) {
        if (kind === "hole") {
          assert.ok(bytes.subarray(at, at + length).every((b) => b === 0), "a hole is where the bytes are zero");
          await m.zeros(length);
        } else await m.update(bytes.subarray(at, at + length));
        at += length;
      }
      assert.equal(await m.finish(), want, JSON.stringify(plan));
    }
  });
});
