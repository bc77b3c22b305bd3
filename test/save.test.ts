/** Save's rules (src/archive/save.ts): the output checks and atomic replacement, the chain, verification, dense/sparse entries, mtimes, progress and stream sinks. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { utimesSync } from "node:fs";
import { FsError, InvalidArgument, OperationAborted, OutputRefused, SnapshotIntegrityError, SnapshotNotFound } from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { writeOutput } from "../src/archive/output.js";
import { collectAncestry } from "../src/archive/save.js";
import { openSnapshot, type Snapshot } from "../src/snapshot.js";
import { hasZstdMagic, sha256Hex } from "./helpers/archive-bundle.js";
import { writeBytes } from "./helpers/archive-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { type Backend, BACKENDS, IMAGE, makeHome, noise, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { pyListTar, pyListTars } from "./helpers/py-tar.js";
import { SnapshotStore } from "../src/store.js";
import { concat } from "./helpers/bytes.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const KiB = 1024;
const MiB = 1024 * KiB;

/** A home with snapshot "s": a 96 KiB upper, data at 0 and at 80 KiB (a hole between). */
async function homeWithSnapshot(backend: Backend) {
  const h = await makeHome(backend);
  const upper = new Uint8Array(96 * KiB);
  upper.set(noise(5000, 3), 0);
  upper.set(noise(4096, 4), 80 * KiB);
  await writeSparse(h.fs, `${h.root}/u`, upper.length, [[0, upper.subarray(0, 5000)], [80 * KiB, upper.subarray(80 * KiB, 84 * KiB)]]);
  const s = await h.store.create("s", { upper: `${h.root}/u`, image: IMAGE, integrity: true });
  return { ...h, s, upper };
}

async function bytesOf(fs: FileSystem, path: string): Promise<Uint8Array> {
  return readSmallFile(fs, path, 256 * MiB);
}

/** Names in `dir` that a save's temporary or lease would leave. */
async function debris(fs: FileSystem, dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.includes(".partial-") || n.startsWith(".snapbundle-lease-"));
}

for (const backend of BACKENDS) {
  describe(`save output rules on ${backend.label}`, () => {
    test("rule: an output whose directory is missing, or not a directory, is refused before anything is written", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        await assert.rejects(h.store.save("s", `${h.root}/nodir/o.tar.zst`), errorRule(OutputRefused, "output-refused", new RegExp(`cannot write ${h.root}/nodir/o\\.tar\\.zst: its directory ${h.root}/nodir does not exist`)));
        await writeBytes(h.fs, `${h.root}/file`, new TextEncoder().encode("x"));
        await assert.rejects(h.store.save("s", `${h.root}/file/o.tar.zst`), errorRule(OutputRefused, "output-refused", new RegExp(`cannot write ${h.root}/file/o\\.tar\\.zst: ${h.root}/file is not a directory`)));
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["file", "home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: a directory output is refused, naming an archive file to write instead", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        await h.fs.mkdir(`${h.root}/outdir`);
        await assert.rejects(h.store.save("s", `${h.root}/outdir`), errorRule(OutputRefused, "output-refused", new RegExp(`^${h.root}/outdir is a directory; name the archive file to write, e\\.g\\. ${h.root}/outdir/snapshot\\.tar\\.zst$`)));
        assert.deepEqual(await h.fs.readdir(`${h.root}/outdir`), []);
      } finally {
        h.cleanup();
      }
    });

    test("rule: an existing output is replaced only with overwrite, and then atomically with the whole archive", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const out = `${h.root}/o.tar.zst`;
        await writeBytes(h.fs, out, new TextEncoder().encode("precious"));
        await assert.rejects(h.store.save("s", out), errorRule(OutputRefused, "output-refused", new RegExp(`^${out} already exists; use --force \\(library: overwrite: true\\) to replace it$`)));
        assert.equal(new TextDecoder().decode(await bytesOf(h.fs, out)), "precious");
        const r = await h.store.save("s", out, { overwrite: true });
        const bytes = await bytesOf(h.fs, out);
        assert.ok(hasZstdMagic(bytes));
        assert.deepEqual(pyListTar(bytes).map((m) => m.name), [`sha256-${h.s.digest.slice(7, 23)}/manifest.json`, `sha256-${h.s.digest.slice(7, 23)}/upper.ext4`]);
        assert.ok(r.tarBytes > 96 * KiB, "the tar byte count covers the dense upper");
        assert.deepEqual(await debris(h.fs, h.root), []);
      } finally {
        h.cleanup();
      }
    });

    test("rule: a stat failure other than a missing path is reported, never taken for a free output", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const faulty = new FaultyFs(h.fs);
        const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
        const out = `${h.root}/o.tar.zst`;
        faulty.arm({ at: 1, kind: "stat", match: (op) => op.path === out, errno: "EACCES" });
        await assert.rejects(store.save("s", out), fsErrorRule("EACCES", "stat"));
        faulty.arm({ at: 1, kind: "stat", match: (op) => op.path === h.root, errno: "EIO" });
        await assert.rejects(store.save("s", out), fsErrorRule("EIO", "stat"));
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: an output that appears while the archive is written is kept, unless overwrite", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const out = `${h.root}/late.tar`;
        const archive = new TextEncoder().encode("archive bytes");
        const racing = (content: string) => async (sink: WritableStream<Uint8Array>) => {
          const w = sink.getWriter();
          await w.write(archive);
          await writeBytes(h.fs, out, new TextEncoder().encode(content)); // another writer, meanwhile
          await w.close();
          return archive.length;
        };
        await assert.rejects(writeOutput(h.fs, out, racing("theirs"), {}), errorRule(OutputRefused, "output-refused", new RegExp(`^${out} appeared while the archive was being written; use --force`)));
        assert.equal(new TextDecoder().decode(await bytesOf(h.fs, out)), "theirs");
        assert.deepEqual(await debris(h.fs, h.root), []);
        assert.equal(await writeOutput(h.fs, out, racing("theirs again"), { overwrite: true }), archive.length);
        assert.deepEqual(await bytesOf(h.fs, out), archive);
        assert.deepEqual(await debris(h.fs, h.root), []);
      } finally {
        h.cleanup();
      }
    });

    test("rule: the temporary beside the output is leased while it is written, and nothing is left after", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const out = `${h.root}/o.tar`;
        let seen: string[] = [];
        await writeOutput(h.fs, out, async (sink) => {
          seen = await debris(h.fs, h.root);
          await sink.getWriter().close();
          return 0;
        }, {});
        const partial = seen.find((n) => n.startsWith(".o.tar.partial-"));
        assert.ok(partial, `a .o.tar.partial-* temporary while writing, saw ${seen.join(", ")}`);
        const token = /-(\d+-[a-z0-9]{12})$/.exec(partial)![1]!;
        assert.ok(seen.includes(`.snapbundle-lease-${token}`), `the temporary's lease .snapbundle-lease-${token} is beside it`);
        assert.deepEqual(await debris(h.fs, h.root), []);
        assert.deepEqual((await bytesOf(h.fs, out)).length, 0);
      } finally {
        h.cleanup();
      }
    });

    test("rule: an abort while writing removes the temporary and leaves no output", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const ac = new AbortController();
        const out = `${h.root}/o.tar.zst`;
        await assert.rejects(
          h.store.save("s", out, { signal: ac.signal, onProgress: (p) => { if (p.phase === "write") ac.abort(); } }),
          errorRule(OperationAborted, "aborted", /aborted/),
        );
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
        // aborted while verifying: nothing is written at all
        const early = new AbortController();
        const phases = new Set<string>();
        await assert.rejects(
          h.store.save("s", out, { signal: early.signal, onProgress: (p) => { phases.add(p.phase); early.abort(); } }),
          errorRule(OperationAborted, "aborted", /aborted/),
        );
        assert.deepEqual([...phases], ["verify"]);
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
        // aborted after the bytes are written, just before the rename
        const late = new AbortController();
        await assert.rejects(writeOutput(h.fs, out, async (sink) => {
          await sink.getWriter().close();
          late.abort("late");
          return 0;
        }, { signal: late.signal }), errorRule(OperationAborted, "aborted", /aborted \(late\)/));
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: a failure on the temporary names the output, not the temporary", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const faulty = new FaultyFs(h.fs);
        const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
        const out = `${h.root}/o.tar.zst`;
        faulty.arm({ at: 1, kind: "write", match: (op) => op.path.includes(".o.tar.zst.partial-"), errno: "ENOSPC" });
        await assert.rejects(store.save("s", out), (e: unknown) => {
          fsErrorRule("ENOSPC", "write")(e);
          assert.equal((e as FsError).path, out);
          assert.match((e as FsError).message, new RegExp(`^write ${out}: ENOSPC \\(no space left on device; while writing it under a temporary name beside it\\)$`));
          const cause = (e as FsError).cause;
          assert.ok(cause instanceof FsError && cause.path.startsWith(`${h.root}/.o.tar.zst.partial-`), "the temporary's own error is its cause");
          return true;
        });
        // a failure elsewhere while writing (the upper, read unverified) keeps its own path
        faulty.arm({ at: 1, kind: "open", match: (op) => op.path.endsWith("/upper.ext4"), errno: "EACCES" });
        await assert.rejects(store.save("s", out, { verify: false }), (e: unknown) => e instanceof FsError && e.path === `${h.s.path}/upper.ext4` && !e.message.includes("temporary name"));
        assert.equal(faulty.fired.length, 1);
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: the zstd level is checked before any work", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        for (const level of [0, 20, 2.5]) {
          await assert.rejects(h.store.save("s", `${h.root}/o.tar.zst`, { level, onProgress: (p) => assert.fail(`no work before the check, got ${p.phase} progress`) }), errorRule(InvalidArgument, "invalid-argument", new RegExp(`^zstd level ${level}: must be an integer from 1 to 19$`)));
        }
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });
  });

  describe(`save contents on ${backend.label}`, () => {
    test("rule: uppers are regular entries by default, old-GNU sparse holding only their data with sparse, and dense wins", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const prefix = `sha256-${h.s.digest.slice(7, 23)}`;
        const want = sha256Hex(h.upper);
        const variants: [string, Parameters<SnapshotStore["save"]>[2]][] = [
          ["dense", {}],
          ["sparse", { sparse: true }],
          ["unverified", { sparse: true, verify: false }],
          ["both", { sparse: true, dense: true }],
          ["dense-unverified", { verify: false }],
        ];
        const tarBytes: number[] = [];
        for (const [name, options] of variants) tarBytes.push((await h.store.save("s", `${h.root}/${name}.tar`, { plainTar: true, ...options })).tarBytes);
        const lists = pyListTars(await Promise.all(variants.map(([name]) => bytesOf(h.fs, `${h.root}/${name}.tar`))));
        const [dense, sparse, unverified, both, denseUnverified] = lists.map((l, i) => {
          const upper = l.find((m) => m.name === `${prefix}/upper.ext4`)!;
          assert.equal(upper.sha256, want, `${variants[i]![0]}: the logical content is the upper's`);
          assert.equal(upper.size, 96 * KiB);
          return upper;
        });
        assert.equal(dense!.type, "0");
        assert.equal(dense!.sparse, null);
        assert.equal(sparse!.type, "S");
        // python lists the data extents, then zero-length markers
        assert.deepEqual(sparse!.sparse!.filter(([, n]) => n > 0), [[0, 8192], [80 * KiB, 4096]]);
        assert.ok(tarBytes[1]! < tarBytes[0]! / 2, `the sparse entry holds only the data: ${tarBytes[1]} vs ${tarBytes[0]} tar bytes`);
        assert.equal(unverified!.type, "S");
        assert.deepEqual(unverified!.sparse, sparse!.sparse, "without verification, the same extents");
        assert.equal(both!.type, "0");
        assert.equal(denseUnverified!.type, "0");
      } finally {
        h.cleanup();
      }
    });

    test("rule: an upper without holes, or empty, is a regular entry even with sparse; one data extent beside a hole is sparse", T, async () => {
      const h = await makeHome(backend);
      try {
        await writeSparse(h.fs, `${h.root}/full`, 20_000, [[0, noise(20_000, 9)]]);
        await writeSparse(h.fs, `${h.root}/empty`, 0, []);
        await writeSparse(h.fs, `${h.root}/head`, 16_384, [[0, noise(4096, 8)]]);
        await writeSparse(h.fs, `${h.root}/tail`, 16_384, [[12_288, noise(4096, 7)]]);
        const cases = [["full", 20_000, "0"], ["empty", 0, "0"], ["head", 16_384, "S"], ["tail", 16_384, "S"]] as const;
        const snaps: { path: string }[] = [];
        for (const [name] of cases) {
          snaps.push(await h.store.create(name, { upper: `${h.root}/${name}`, image: IMAGE }));
          await h.store.save(name, `${h.root}/${name}.tar`, { plainTar: true, sparse: true });
        }
        const lists = pyListTars(await Promise.all(cases.map(([name]) => bytesOf(h.fs, `${h.root}/${name}.tar`))));
        for (const [i, [name, size, type]] of cases.entries()) {
          const snap = snaps[i]!;
          const m = lists[i]!.find((x) => x.name.endsWith("/upper.ext4"))!;
          assert.equal(m.type, type, `${name}: entry type`);
          assert.equal(m.size, size);
          assert.equal(m.sha256, sha256Hex(await bytesOf(h.fs, `${snap.path}/upper.ext4`)));
        }
      } finally {
        h.cleanup();
      }
    });

    test("rule: an upper that no longer matches its integrity is refused unless verify is false", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const fh = await h.fs.open(`${h.s.path}/upper.ext4`, "r+");
        await fh.write(new TextEncoder().encode("tampered"), 40 * KiB);
        await fh.close();
        for (const sparse of [false, true]) {
          await assert.rejects(h.store.save("s", `${h.root}/o.tar`, { plainTar: true, sparse }), errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(h.s.path)));
        }
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
        await h.store.save("s", `${h.root}/o.tar`, { plainTar: true, verify: false });
        const m = pyListTar(await bytesOf(h.fs, `${h.root}/o.tar`)).find((x) => x.name.endsWith("/upper.ext4"))!;
        assert.equal(m.sha256, sha256Hex(await bytesOf(h.fs, `${h.s.path}/upper.ext4`)), "the tampered bytes are shipped as they are");
      } finally {
        h.cleanup();
      }
    });

    test("rule: progress reports verify then write phases, each counting up to its total", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        await writeSparse(h.fs, `${h.root}/u2`, 64 * KiB, [[0, noise(64 * KiB, 5)]]);
        await h.store.create("t", { upper: `${h.root}/u2`, image: IMAGE, parent: h.s.digest, integrity: true });
        for (const sparse of [false, true]) {
          const seen: { phase: string; bytes: number; total: number }[] = [];
          await h.store.save("t", `${h.root}/p${sparse}.tar`, { plainTar: true, withParents: true, sparse, onProgress: (p) => void seen.push({ ...p }) });
          const verify = seen.filter((p) => p.phase === "verify");
          const write = seen.filter((p) => p.phase === "write");
          assert.ok(seen.findIndex((p) => p.phase === "write") > seen.findLastIndex((p) => p.phase === "verify"), "all verify progress comes first");
          assert.ok(verify.every((p) => p.total === 160 * KiB));
          assert.equal(verify.at(-1)!.bytes, 160 * KiB);
          // a sparse save writes only the data blocks: 8 KiB + 4 KiB of s, all 64 KiB of t
          const total = sparse ? 76 * KiB : 160 * KiB;
          assert.ok(write.every((p) => p.total === total), `write total ${total}`);
          assert.equal(write.at(-1)!.bytes, total);
          for (const list of [verify, write]) for (let i = 1; i < list.length; i++) assert.ok(list[i]!.bytes > list[i - 1]!.bytes, "progress only grows");
        }
        // without verification, a sparse save still reads the uppers once to map them, and says so
        const mapped: number[] = [];
        await h.store.save("t", `${h.root}/unverified.tar`, { plainTar: true, withParents: true, sparse: true, verify: false, onProgress: (p) => void (p.phase === "verify" && mapped.push(p.bytes)) });
        assert.equal(mapped.at(-1), 160 * KiB);
      } finally {
        h.cleanup();
      }
    });

    test("rule: a failing save into a stream aborts the stream with the error; a plain-tar stream may keep its chunks", T, async () => {
      const h = await homeWithSnapshot(backend);
      try {
        const faulty = new FaultyFs(h.fs);
        const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
        for (const plainTar of [false, true]) {
          let aborted: unknown = null;
          let closed = false;
          const sink = new WritableStream<Uint8Array>({ abort: (e) => void (aborted = e), close: () => void (closed = true) });
          faulty.arm({ at: 1, kind: "read", match: (op) => op.path.endsWith("/upper.ext4"), errno: "EIO" });
          await assert.rejects(store.save("s", sink, { plainTar, verify: false }), fsErrorRule("EIO", "read"));
          assert.ok(aborted instanceof FsError && aborted.errno === "EIO", `plainTar=${plainTar}: the sink is aborted with the read error`);
          assert.equal(closed, false);
        }
        faulty.disarm();
        const kept: Uint8Array[] = [];
        await store.save("s", new WritableStream<Uint8Array>({ write: (c) => void kept.push(c) }), { plainTar: true });
        const joined = concat(kept);
        await h.store.save("s", `${h.root}/o.tar`, { plainTar: true });
        assert.deepEqual(joined, await bytesOf(h.fs, `${h.root}/o.tar`), "chunks a plain-tar sink kept are never overwritten");
      } finally {
        h.cleanup();
      }
    });
  });

  describe(`save chain on ${backend.label}`, () => {
    test("rule: a missing ancestor names the snapshot whose parent it is", T, async () => {
      const h = await makeHome(backend);
      try {
        await writeSparse(h.fs, `${h.root}/u`, 4096, [[0, "x"]]);
        const lost = "sha256:" + "d".repeat(64);
        const b = await h.store.create("b", { upper: `${h.root}/u`, image: IMAGE, parent: lost });
        await h.store.create("c", { upper: `${h.root}/u`, image: IMAGE, parent: b.digest });
        await assert.rejects(h.store.save("c", `${h.root}/o.tar.zst`, { withParents: true }), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^parent ${lost} of ${b.path} is not in this home's index; ship it alongside`)));
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: an ancestor in the snapshot.json form is refused by the manifest.json layout, naming it", T, async () => {
      const h = await makeHome(backend);
      try {
        await writeSparse(h.fs, `${h.root}/u`, 4096, [[0, "x"]]);
        const base = await h.store.create("base", { upper: `${h.root}/u`, image: IMAGE, form: "snapshot" });
        await h.store.create("child", { upper: `${h.root}/u`, image: IMAGE, parent: base.digest, form: "manifest" });
        await assert.rejects(h.store.save("child", `${h.root}/o.tar.zst`, { withParents: true, layout: "manifest" }), errorRule(InvalidArgument, "invalid-argument", new RegExp(`^${base.path} is a snapshot\\.json artifact; the manifest\\.json bundle layout cannot carry it`)));
        assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "u"]);
      } finally {
        h.cleanup();
      }
    });

    test("rule: with the image, the cache files follow the snapshots with their own mtimes", T, async () => {
      const h = await makeHome(backend);
      try {
        const img = await buildImage(h.fs, h.home);
        await writeSparse(h.fs, `${h.root}/u`, 4096, [[0, "x"]]);
        const s = await h.store.create("s", { upper: `${h.root}/u`, image: { ref: img.ref, manifest_digest: img.manifest_digest } });
        const r = await h.store.save("s", `${h.root}/o.tar`, { plainTar: true, withImage: true });
        const members = pyListTar(await bytesOf(h.fs, `${h.root}/o.tar`));
        assert.deepEqual(members.map((m) => m.name), [`sha256-${s.digest.slice(7, 23)}/manifest.json`, `sha256-${s.digest.slice(7, 23)}/upper.ext4`, ...img.files.map((f) => "cache" + f.slice(`${h.home}/cache`.length))]);
        assert.deepEqual(r.cacheFiles, img.files);
        for (const f of img.files) {
          const m = members.find((x) => x.name === "cache" + f.slice(`${h.home}/cache`.length))!;
          const info = await h.fs.lstat(f);
          assert.equal(m.mtime, Math.floor(info.mtimeMs / 1000));
          assert.equal(m.sha256, sha256Hex(await bytesOf(h.fs, f)));
        }
      } finally {
        h.cleanup();
      }
    });
  });
}

describe("save chain rules", () => {
  test("rule: a parent chain that loops back is refused, not followed forever", { timeout: 10_000 }, async () => {
    const { fs, root, store, cleanup } = await makeHome(BACKENDS[0]!);
    try {
      await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
      const a = await openSnapshot(fs, (await store.create("a", { upper: `${root}/u`, image: IMAGE, parent: "sha256:" + "e".repeat(64) })).path);
      const e = "sha256:" + "e".repeat(64);
      const f = "sha256:" + "f".repeat(64);
      // an index whose answers loop (a stale or hostile index): a -> e -> f -> e, or back to the head
      const as = (digest: string, parent: string | null): Snapshot => ({ ...a, digest, manifest: { ...a.manifest, parent } });
      await assert.rejects(collectAncestry(a, async (d) => (d === e ? as(e, f) : as(f, e))), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^parent chain of ${a.path} loops back to ${e}$`)));
      // the index answers the head's digest with a root: the chain must stop at the head, not take it
      await assert.rejects(collectAncestry(a, async (d) => (d === e ? as(e, a.digest) : as(d, null))), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^parent chain of ${a.path} loops back to ${a.digest}$`)));
      const chain = await collectAncestry(a, async (d) => (d === "sha256:" + "e".repeat(64) ? { ...a, digest: d, manifest: { ...a.manifest, parent: null } } : null));
      assert.deepEqual(chain.map((s) => s.digest), ["sha256:" + "e".repeat(64), a.digest], "oldest first");
    } finally {
      cleanup();
    }
  });
});

describe("save, once (memfs)", () => {
  const memfs = BACKENDS.find((b) => b.label === "memfs")!;

  test("rule: the zstd level decides the compression, 3 by default", T, async () => {
    const h = await homeWithSnapshot(memfs);
    try {
      await h.store.save("s", `${h.root}/default.tar.zst`);
      await h.store.save("s", `${h.root}/3.tar.zst`, { level: 3 });
      await h.store.save("s", `${h.root}/19.tar.zst`, { level: 19 });
      const d = await bytesOf(h.fs, `${h.root}/default.tar.zst`);
      assert.deepEqual(d, await bytesOf(h.fs, `${h.root}/3.tar.zst`), "the default level is 3");
      assert.notDeepEqual(d, await bytesOf(h.fs, `${h.root}/19.tar.zst`));
      assert.deepEqual(pyListTar(await bytesOf(h.fs, `${h.root}/19.tar.zst`)), pyListTar(d));
    } finally {
      h.cleanup();
    }
  });

  test("rule: data scattered over a large upper is shipped byte for byte, near and far extents, across read chunks", { timeout: 60_000 }, async () => {
    const h = await makeHome(memfs);
    try {
      const size = 7 * MiB;
      const pieces: [number, Uint8Array][] = [
        [0, noise(4096, 11)],
        [20 * KiB, noise(4096, 12)], // 16 KiB after the last: read in the same span
        [200 * KiB, noise(100, 13)], // far: a span of its own
        [2 * MiB, noise(4 * MiB, 14)], // a whole read chunk: its span's first chunk ends with it
        [6 * MiB + 8 * KiB, noise(4096, 15)], // near the long one: same span, next chunk
        [size - 10, noise(10, 16)],
      ];
      await writeSparse(h.fs, `${h.root}/u`, size, pieces);
      const logical = new Uint8Array(size);
      for (const [o, d] of pieces) logical.set(d, o);
      await h.store.create("big", { upper: `${h.root}/u`, image: IMAGE, integrity: true });
      const written: number[] = [];
      await h.store.save("big", `${h.root}/sparse.tar`, { plainTar: true, sparse: true, onProgress: (p) => void (p.phase === "write" && written.push(p.bytes)) });
      for (let i = 1; i < written.length; i++) assert.ok(written[i]! > written[i - 1]!, `write progress only grows: ${written[i - 1]} then ${written[i]}`);
      assert.equal(written.at(-1), 3 * 4096 + 4 * MiB + 4096 + 4096, "every data block counted once");
      await h.store.save("big", `${h.root}/dense.tar`, { plainTar: true });
      const [sparse, dense] = pyListTars([await bytesOf(h.fs, `${h.root}/sparse.tar`), await bytesOf(h.fs, `${h.root}/dense.tar`)]).map((l) => l.find((x) => x.name.endsWith("/upper.ext4"))!);
      assert.equal(sparse!.type, "S");
      assert.equal(dense!.type, "0");
      assert.equal(sparse!.sha256, sha256Hex(logical), "sparse: logical content");
      assert.equal(dense!.sha256, sha256Hex(logical), "dense: logical content");
    } finally {
      h.cleanup();
    }
  });
});

describe("save reads", () => {
  test("rule: a fragmented upper is read in a few large reads, not one per extent; every file a save opens is closed", T, async () => {
    const memfs = BACKENDS.find((b) => b.label === "memfs")!;
    const h = await makeHome(memfs);
    try {
      // 64 extents of 4 KiB, 16 KiB apart (one span), then one 11 MiB further on (a span of its own)
      const pieces: [number, Uint8Array][] = Array.from({ length: 64 }, (_, i) => [i * 16 * KiB, noise(4096, 100 + i)]);
      pieces.push([11 * MiB, noise(4096, 99)]);
      await writeSparse(h.fs, `${h.root}/u`, 12 * MiB, pieces);
      await h.store.create("frag", { upper: `${h.root}/u`, image: IMAGE });
      const faulty = new FaultyFs(h.fs);
      const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
      let verified = 0;
      await store.list(); // the index exists: the save's leftover sweep reads it (a failed open, ENOENT, would open nothing to close)
      faulty.reset();
      await store.save("frag", `${h.root}/o.tar`, { plainTar: true, sparse: true, onProgress: (p) => void (p.phase === "verify" && (verified = faulty.ops.length)) });
      const writeReads = faulty.ops.slice(verified).filter((op) => op.kind === "read" && op.path.endsWith("/frag/upper.ext4"));
      assert.equal(writeReads.length, 2, "one read per span");
      assert.equal(faulty.byKind.close, faulty.byKind.open, "as many closes as opens");
      const m = pyListTar(await bytesOf(h.fs, `${h.root}/o.tar`)).find((x) => x.name.endsWith("/upper.ext4"))!;
      assert.equal(m.sparse!.filter(([, n]) => n > 0).length, 65);
    } finally {
      h.cleanup();
    }
  });
});

describe("save on a real disk", () => {
  const backend = BACKENDS.find((b) => b.label === "node:fs")!;

  test("rule: a FIFO output is never renamed over", T, async () => {
    const h = await homeWithSnapshot(backend);
    try {
      execFileSync("mkfifo", [`${h.root}/fifo`]);
      await assert.rejects(h.store.save("s", `${h.root}/fifo`, { overwrite: true }), errorRule(OutputRefused, "output-refused", new RegExp(`^${h.root}/fifo is not a regular file \\(a FIFO or device\\): it is never replaced`)));
      assert.notEqual((await h.fs.lstat(`${h.root}/fifo`)).kind, "file", "the FIFO is still there");
    } finally {
      h.cleanup();
    }
  });

  test("rule: entries carry the upper's mtime in whole seconds", T, async () => {
    const h = await homeWithSnapshot(backend);
    try {
      utimesSync(`${h.s.path}/upper.ext4`, 1_600_000_000.75, 1_600_000_000.75);
      await h.store.save("s", `${h.root}/o.tar`, { plainTar: true });
      await h.store.save("s", `${h.root}/sparse.tar`, { plainTar: true, sparse: true });
      const lists = pyListTars([await bytesOf(h.fs, `${h.root}/o.tar`), await bytesOf(h.fs, `${h.root}/sparse.tar`)]);
      assert.deepEqual(lists.map((l) => l.map((m) => `${m.type} ${m.mtime}`)), [["0 1600000000", "0 1600000000"], ["0 1600000000", "S 1600000000"]]);
    } finally {
      h.cleanup();
    }
  });

  test("rule: a save reclaims the temporary a killed save left beside its output", T, async () => {
    const h = await homeWithSnapshot(backend);
    try {
      const stale = `${h.root}/.o.tar.zst.partial-999999-deadbeef0000`;
      await writeBytes(h.fs, stale, new Uint8Array(1000));
      const old = Date.now() / 1000 - 3600;
      utimesSync(stale, old, old);
      await h.store.save("s", `${h.root}/o.tar.zst`);
      assert.deepEqual((await h.fs.readdir(h.root)).sort(), ["home", "o.tar.zst", "u"]);
    } finally {
      h.cleanup();
    }
  });
});
