/**
 * Concurrency: operations racing on one home, each through its own store and
 * a FaultyFs whose hook waits a small seeded random delay before every
 * filesystem call, so each repetition interleaves differently.
 *
 * - Two loads of the same archive: exactly one installs it, the other gets
 *   SnapshotAlreadyExists; the snapshots list and verify, the image cache is
 *   complete and intact, no staging is left.
 * - `rm` of a parent racing a `load` of its child, and `reindex` racing a
 *   `load`: whatever the order, the store lists and verifies cleanly.
 * - Two CLI processes loading the same archive into one home (node:fs).
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { SnapshotAlreadyExists, SnapshotInUse } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { nodeFs } from "../src/fs/node.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { SnapshotStore } from "../src/store.js";
import { runCli } from "./helpers/cli-run.js";
import { FaultyFs, randomDelays } from "./helpers/faulty-fs.js";
import { type Backend, BACKENDS, makeHome, noise, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { concat } from "./helpers/bytes.js";

const KEEP_IMAGE = { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) };

interface Fixture {
  /** a ← b ← c with parents and image cache (zstd). */
  chain: Uint8Array;
  /** c alone (its parent b is not in the archive). */
  child: Uint8Array;
  /** a ← b, to put the parent into a home. */
  parents: Uint8Array;
  /** Relative path → sha256 of every image cache file a load of `chain` installs. */
  cache: Map<string, string>;
  digests: { a: string; b: string; c: string };
}

let fixture: Fixture | null = null;

async function bytesOfSave(store: SnapshotStore, ref: string, options: object): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await store.save(ref, new WritableStream({ write: (c) => void chunks.push(c.slice()) }), options);
  return concat(chunks);
}

async function getFixture(): Promise<Fixture> {
  if (fixture) return fixture;
  const vol = new Volume();
  vol.mkdirSync("/src/home", { recursive: true });
  const fs = memFs(vol);
  const store = new SnapshotStore(fs, "/src/home");
  const img = await buildImage(fs, "/src/home", "python:3.12", 3, "race");
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  await writeSparse(fs, "/src/u-a", 512 << 10, [[0, noise(40_000, 1)], [300_000, noise(9000, 4)]]);
  await writeSparse(fs, "/src/u-b", 256 << 10, [[8192, noise(30_000, 2)]]);
  await writeSparse(fs, "/src/u-c", 128 << 10, [[0, noise(128 << 10, 3)]]);
  const a = await store.create("a", { upper: "/src/u-a", image, integrity: true });
  const b = await store.create("b", { upper: "/src/u-b", image, parent: a.digest, integrity: true });
  const c = await store.create("c", { upper: "/src/u-c", image, parent: b.digest, integrity: true });
  const cache = new Map<string, string>();
  for (const f of img.files) cache.set(f.slice("/src/home/".length), createHash("sha256").update(await readSmallFile(fs, f, 1 << 20)).digest("hex"));
  fixture = {
    chain: await bytesOfSave(store, "c", { withParents: true, withImage: true }),
    child: await bytesOfSave(store, "c", {}),
    parents: await bytesOfSave(store, "b", { withParents: true }),
    cache,
    digests: { a: a.digest, b: b.digest, c: c.digest },
  };
  return fixture;
}

async function put(fs: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const h = await fs.open(path, "w");
  try {
    await h.write(bytes, 0);
  } finally {
    await h.close();
  }
}

/** A store over `fs` whose every call first waits a seeded random delay. */
function jittery(fs: FileSystem, home: string, seed: number): SnapshotStore {
  return new SnapshotStore(new FaultyFs(fs, { before: randomDelays(seed) }), home);
}

/**
 * `fs` as seen by a process killed right after its first promotion: once a
 * rename into `snapshotsDir/sha256-…` has completed, no call ever returns.
 */
function freezeAfterFirstPromotion(fs: FileSystem, snapshotsDir: string): FileSystem {
  let frozen = false;
  const never = new Promise<never>(() => {});
  return new Proxy(fs, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        if (frozen) return never;
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (prop === "rename" && typeof args[1] === "string" && args[1].startsWith(`${snapshotsDir}/sha256-`)) {
          (r as Promise<unknown>).then(() => (frozen = true), () => {});
        }
        return r;
      };
    },
  });
}

/** The store's view must be clean: no problems, every snapshot verifies, no staging left, index whole. */
async function assertClean(fs: FileSystem, home: string, what: string): Promise<string[]> {
  const store = new SnapshotStore(fs, home);
  const { snapshots, problems } = await store.list();
  assert.deepEqual(problems, [], `${what}: list reports problems`);
  for (const s of snapshots) await store.verify(s.path);
  const leftovers = (await fs.readdir(`${home}/snapshots`)).filter((n) => n.startsWith(".") && n !== ".snapbundle-index.json");
  assert.deepEqual(leftovers, [], `${what}: staging left in snapshots/`);
  const tmp = await fs.readdir(`${home}/cache/tmp`).catch(() => []);
  assert.deepEqual(tmp, [], `${what}: staging left in cache/tmp`);
  const index = await readSmallFile(fs, `${home}/snapshots/.snapbundle-index.json`, 64 << 20).catch(() => null);
  if (index) JSON.parse(new TextDecoder().decode(index));
  return snapshots.map((s) => s.digest).sort();
}

/** Every expected cache file is there with its content. */
async function assertCacheWhole(fs: FileSystem, home: string, expected: Map<string, string>, what: string): Promise<void> {
  const missing: string[] = [];
  for (const [rel, sha] of expected) {
    let got: string;
    try {
      got = createHash("sha256").update(await readSmallFile(fs, `${home}/${rel}`, 1 << 20)).digest("hex");
    } catch {
      missing.push(`${rel} (missing)`);
      continue;
    }
    if (got !== sha) missing.push(`${rel} (different content)`);
  }
  assert.deepEqual(missing, [], `${what}: the image cache of the installed snapshots is not whole`);
}

// Races are sampled: more rounds in heavy runs (SNAPBUNDLE_HEAVY=1), enough to see a broken lock in the default run.
const ROUNDS: Record<Backend["label"], number> = process.env.SNAPBUNDLE_HEAVY === "1" ? { memfs: 40, "node:fs": 12 } : { memfs: 12, "node:fs": 6 };

for (const backend of BACKENDS) {
  describe(`concurrency on ${backend.label}`, () => {
    test("two loads of the same archive: exactly one installs it, the other gets SnapshotAlreadyExists", { timeout: 300_000 }, async () => {
      const fx = await getFixture();
      const failures: string[] = [];
      for (let round = 0; round < ROUNDS[backend.label]; round++) {
        const h = await makeHome(backend);
        try {
          await writeSparse(h.fs, `${h.root}/u-keep`, 16 << 10, [[0, "keep"]]);
          const keep = await h.store.create("keep", { upper: `${h.root}/u-keep`, image: KEEP_IMAGE, integrity: true });
          await put(h.fs, `${h.root}/chain.tar.zst`, fx.chain);
          const results = await Promise.allSettled([
            jittery(h.fs, h.home, 1000 + round).load(`${h.root}/chain.tar.zst`),
            jittery(h.fs, h.home, 2000 + round * 7).load(`${h.root}/chain.tar.zst`),
          ]);
          const ok = results.filter((r) => r.status === "fulfilled");
          const bad = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
          const what = `round ${round}`;
          if (ok.length !== 1) failures.push(`${what}: ${ok.length} loads resolved (${bad.map((e) => `${e?.name}: ${e?.message}`).join("; ")})`);
          for (const e of bad) if (!(e instanceof SnapshotAlreadyExists)) failures.push(`${what}: the losing load failed with ${e?.name}: ${e?.message}`);
          try {
            const listed = await assertClean(h.fs, h.home, what);
            assert.deepEqual(listed, [keep.digest, fx.digests.a, fx.digests.b, fx.digests.c].sort(), `${what}: list`);
            await assertCacheWhole(h.fs, h.home, fx.cache, what);
          } catch (e) {
            failures.push((e as Error).message.split("\n")[0]!);
          }
        } finally {
          h.cleanup();
        }
      }
      assert.deepEqual(failures, [], `${failures.length} rounds went wrong`);
    });

    test("a load frozen between two promotions (as if killed) shows nothing; the next load removes what it promoted and installs the chain", { timeout: 300_000 }, async () => {
      const fx = await getFixture();
      const h = await makeHome(backend);
      try {
        await writeSparse(h.fs, `${h.root}/u-keep`, 16 << 10, [[0, "keep"]]);
        const keep = await h.store.create("keep", { upper: `${h.root}/u-keep`, image: KEEP_IMAGE, integrity: true });
        await put(h.fs, `${h.root}/chain.tar.zst`, fx.chain);
        const snapshotsDir = `${h.home}/snapshots`;
        const frozen = new SnapshotStore(freezeAfterFirstPromotion(h.fs, snapshotsDir), h.home);
        let settled = false;
        void frozen.load(`${h.root}/chain.tar.zst`).then(() => (settled = true), () => (settled = true));
        // wait until the frozen load has renamed its first snapshot into place
        for (let i = 0; i < 2000 && !(await h.fs.readdir(snapshotsDir)).some((n) => n.startsWith("sha256-")); i++) await new Promise((r) => setTimeout(r, 5));
        assert.equal(settled, false);
        const promoted = (await h.fs.readdir(snapshotsDir)).filter((n) => n.startsWith("sha256-"));
        assert.equal(promoted.length, 1, "one snapshot of the chain is in place, the others are not");
        // a fresh view lists only what was there before
        const { snapshots } = await new SnapshotStore(h.fs, h.home).list();
        assert.deepEqual(snapshots.map((x) => x.digest), [keep.digest]);
        // the next load, seeing the frozen one as dead, undoes its promotion and installs the whole chain
        const dead = { now: Date.now(), isProcessAlive: () => false, staleAfterMs: 0, ttlMs: -1 };
        await new SnapshotStore(h.fs, h.home).load(`${h.root}/chain.tar.zst`, { sweep: dead });
        const listed = await assertClean(h.fs, h.home, "after recovery");
        assert.deepEqual(listed, [keep.digest, fx.digests.a, fx.digests.b, fx.digests.c].sort());
        await assertCacheWhole(h.fs, h.home, fx.cache, "after recovery");
      } finally {
        await h.cleanup();
      }
    });

    test("rm of a parent racing a load of its child leaves a store that lists and verifies", { timeout: 300_000 }, async () => {
      const fx = await getFixture();
      const outcomes = new Map<string, number>();
      for (let round = 0; round < ROUNDS[backend.label]; round++) {
        const h = await makeHome(backend);
        try {
          await put(h.fs, `${h.root}/parents.tar.zst`, fx.parents);
          await put(h.fs, `${h.root}/child.tar.zst`, fx.child);
          await h.store.load(`${h.root}/parents.tar.zst`, {});
          // the rm starts 0..~45 ms after the load, so it lands before, during and after the child's promotion
          const head = (round * 7) % 48;
          const [rm, load] = await Promise.allSettled([
            new Promise((r) => setTimeout(r, head)).then(() => jittery(h.fs, h.home, 3000 + round).remove(`sha256-${fx.digests.b.slice(7, 23)}`)),
            jittery(h.fs, h.home, 4000 + round * 13).load(`${h.root}/child.tar.zst`),
          ]);
          assert.equal(load.status, "fulfilled", `round ${round}: the load failed: ${load.status === "rejected" ? load.reason?.message : ""}`);
          if (rm.status === "rejected") assert.ok(rm.reason instanceof SnapshotInUse, `round ${round}: rm failed with ${rm.reason?.name}: ${rm.reason?.message}`);
          const key = rm.status === "fulfilled" ? "parent removed" : "rm refused";
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          const listed = await assertClean(h.fs, h.home, `round ${round}`);
          const expected = rm.status === "fulfilled" ? [fx.digests.a, fx.digests.c] : [fx.digests.a, fx.digests.b, fx.digests.c];
          assert.deepEqual(listed, expected.sort(), `round ${round} (${key})`);
        } finally {
          h.cleanup();
        }
      }
      if (process.env.SNAPBUNDLE_RACE_VERBOSE === "1") console.log(`rm vs load on ${backend.label}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      assert.ok(outcomes.size > 0);
    });

    test("reindex racing a load leaves a store that lists and verifies", { timeout: 300_000 }, async () => {
      const fx = await getFixture();
      for (let round = 0; round < ROUNDS[backend.label]; round++) {
        const h = await makeHome(backend);
        try {
          await put(h.fs, `${h.root}/chain.tar.zst`, fx.chain);
          await writeSparse(h.fs, `${h.root}/u-keep`, 16 << 10, [[0, "keep"]]);
          await h.fs.mkdir(`${h.root}/extra`);
          const keep = await h.store.create("keep", { upper: `${h.root}/u-keep`, image: KEEP_IMAGE, destDir: `${h.root}/extra` });
          const [re, load] = await Promise.allSettled([
            jittery(h.fs, h.home, 5000 + round).reindex(),
            jittery(h.fs, h.home, 6000 + round * 3).load(`${h.root}/chain.tar.zst`),
          ]);
          assert.equal(re.status, "fulfilled", `round ${round}: reindex failed: ${re.status === "rejected" ? re.reason?.message : ""}`);
          assert.equal(load.status, "fulfilled", `round ${round}: load failed: ${load.status === "rejected" ? load.reason?.message : ""}`);
          const listed = await assertClean(h.fs, h.home, `round ${round}`);
          assert.deepEqual(listed, [keep.digest, fx.digests.a, fx.digests.b, fx.digests.c].sort(), `round ${round}: list (the extra root must survive)`);
          await assertCacheWhole(h.fs, h.home, fx.cache, `round ${round}`);
        } finally {
          h.cleanup();
        }
      }
    });
  });
}

describe("concurrency between processes (node:fs)", () => {
  test("two CLI processes load the same archive into one home: one installs, the other says it is already installed", { timeout: 300_000 }, async () => {
    const fx = await getFixture();
    const failures: string[] = [];
    for (let round = 0; round < 3; round++) {
      const root = mkdtempSync(join(tmpdir(), "snapbundle-race-"));
      try {
        const home = join(root, "home");
        writeFileSync(join(root, "chain.tar.zst"), fx.chain);
        const [r1, r2] = await Promise.all([
          runCli(["--home", home, "load", join(root, "chain.tar.zst")]),
          runCli(["--home", home, "load", join(root, "chain.tar.zst")]),
        ]);
        // the install lock orders them; the second finds the head installed and installs nothing (exit 0)
        const codes = [r1.code, r2.code];
        if (JSON.stringify(codes) !== "[0,0]") failures.push(`round ${round}: exit codes ${codes.join(", ")}: ${r1.stderr.trim()} | ${r2.stderr.trim()}`);
        const said = [r1, r2].filter((r) => /already installed/.test(r.stdout));
        if (said.length !== 1) failures.push(`round ${round}: ${said.length} processes said "already installed": ${JSON.stringify([r1.stdout, r2.stdout])}`);
        const fs = nodeFs();
        try {
          const listed = await assertClean(fs, home, `round ${round}`);
          assert.deepEqual(listed, [fx.digests.a, fx.digests.b, fx.digests.c].sort());
          await assertCacheWhole(fs, home, fx.cache, `round ${round}`);
        } catch (e) {
          failures.push((e as Error).message.split("\n")[0]!);
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    assert.deepEqual(failures, []);
  });
});



