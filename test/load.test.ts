/** Load's pipeline rules (src/archive/load.ts): argument checks first, head selection, progress, labels, the staging it creates and the all-or-nothing rollback. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ArchiveError, FsError, InvalidArgument, InvalidSnapshot, OperationAborted, SnapbundleError, SnapshotAlreadyInstalled } from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { HomeLayout } from "../src/layout.js";
import { headIndex, loadArchive, selectHeadSnapshot } from "../src/archive/load.js";
import { LockTimeout, withInstallLock } from "../src/lock.js";
import { defaultSweepPolicy } from "../src/staging.js";
import { openSnapshot } from "../src/snapshot.js";
import { cacheEntries, imageFixture, snapEntries, snapFixture, type SnapFixture, tarOf } from "./helpers/archive-bundle.js";
import { fingerprint, writeBytes } from "./helpers/archive-fs.js";
import { errorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { type Backend, BACKENDS, tree } from "./helpers/homes.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = new TextEncoder();

/** An empty root on a backend, with a home path inside it that does not exist yet. */
async function root(backend: Backend) {
  const made = await backend.make();
  return { ...made, home: `${made.root}/home`, layout: new HomeLayout(`${made.root}/home`) };
}

/** `bytes` written as `<root>/<name>`; resolves its path. */
async function archiveAt(fs: FileSystem, dir: string, name: string, bytes: Uint8Array): Promise<string> {
  await writeBytes(fs, `${dir}/${name}`, bytes);
  return `${dir}/${name}`;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}

/** Parent, child and an unrelated snapshot, as crafted fixtures. */
const P = snapFixture({ size: 8192, pieces: [[0, "parent"]] });
const C = snapFixture({ size: 8192, pieces: [[0, "child"]], parent: P.digest });
const U = snapFixture({ size: 4096, pieces: [[0, "unrelated"]] });

const names = (fixtures: SnapFixture[]) => fixtures.map((f) => f.prefix).sort();

for (const backend of BACKENDS) {
  describe(`load rules on ${backend.label}`, () => {
    test("rule: a bad name or zstd window is refused before anything is created", T, async () => {
      const r = await root(backend);
      try {
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        await assert.rejects(loadArchive(r.fs, r.layout, path, { name: "../escape" }), errorRule(InvalidArgument, "invalid-argument", /\.\.\/escape/));
        await assert.rejects(loadArchive(r.fs, r.layout, path, { maxWindowBytes: 100 }), errorRule(InvalidArgument, "invalid-argument", /^zstd maxWindowBytes 100: must be an integer from 1 KiB/));
        assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"]);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a failed load leaves no home, snapshots/ or cache/ it created, and no lease", T, async () => {
      const r = await root(backend);
      try {
        const path = await archiveAt(r.fs, r.root, "bad.tar", tarOf(snapEntries(U)[0]!)); // a manifest without its upper
        await assert.rejects(loadArchive(r.fs, r.layout, path), errorRule(InvalidSnapshot, "invalid-snapshot", new RegExp(`^${path}: snapshot ${U.prefix}: its upper`)));
        assert.deepEqual(await r.fs.readdir(r.root), ["bad.tar"]);
        // a home that exists keeps only what it had
        await r.fs.mkdir(`${r.home}/cache`, { recursive: true });
        await writeBytes(r.fs, `${r.home}/cache/keep`, enc.encode("k"));
        await assert.rejects(loadArchive(r.fs, r.layout, path), errorRule(InvalidSnapshot, "invalid-snapshot", new RegExp(`^${path}: snapshot ${U.prefix}: its upper`)));
        assert.deepEqual(await tree(r.fs, r.home), ["cache/", "cache/keep"]);
        // and a load that succeeds makes them
        const head = await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "ok.tar", tarOf(...snapEntries(U))));
        assert.equal(head.path, `${r.home}/snapshots/${U.prefix}`);
        assert.deepEqual(await tree(r.fs, r.home), ["cache/", "cache/keep", "cache/tmp/", "snapshots/", `snapshots/${U.prefix}/`, `snapshots/${U.prefix}/manifest.json`, `snapshots/${U.prefix}/upper.ext4`]);
      } finally {
        r.cleanup();
      }
    });

    test("rule: the head is the last snapshot, in archive order, that no other names as parent", T, async () => {
      const r = await root(backend);
      try {
        // child before its parent: the head is the child, the first entry
        const a = await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(C), ...snapEntries(P))), { dest: `${r.root}/a` });
        assert.equal(a.digest, C.digest);
        assert.deepEqual((await r.fs.readdir(`${r.root}/a`)).filter((n) => !n.startsWith(".")).sort(), names([C, P]));
        // two unrelated snapshots: the last one
        const b = await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "b.tar", tarOf(...snapEntries(U), ...snapEntries(P))), { dest: `${r.root}/b` });
        assert.equal(b.digest, P.digest);
        // a name is given to the head only
        const c = await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "c.tar", tarOf(...snapEntries(P), ...snapEntries(C))), { dest: `${r.root}/c`, name: "mine" });
        assert.equal(c.digest, C.digest);
        assert.equal(c.path, `${r.root}/c/mine`);
        assert.deepEqual((await r.fs.readdir(`${r.root}/c`)).filter((n) => !n.startsWith(".")).sort(), ["mine", P.prefix].sort());
      } finally {
        r.cleanup();
      }
    });

    test("rule: progress counts the archive bytes read, then the upper bytes verified, then the install", T, async () => {
      const r = await root(backend);
      try {
        const bytes = tarOf(...snapEntries(P), ...snapEntries(C));
        const read: number[] = [];
        const steps: { phase: string; bytes: number; total: number }[] = [];
        await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "a.tar", bytes), { onProgress: (n) => void read.push(n), onStep: (p) => void steps.push({ ...p }) });
        assert.equal(read.at(-1), bytes.length);
        const verifying = steps.filter((s) => s.phase === "verifying");
        assert.deepEqual(verifying[0], { phase: "verifying", bytes: 0, total: 16384 });
        assert.deepEqual(verifying.at(-1), { phase: "verifying", bytes: 16384, total: 16384 });
        assert.ok(verifying.some((s) => s.bytes === 8192), "the second upper counts on from the first");
        for (let i = 1; i < verifying.length; i++) assert.ok(verifying[i]!.bytes >= verifying[i - 1]!.bytes);
        assert.deepEqual(steps.at(-1), { phase: "installing", bytes: 0, total: 0 });
        assert.equal(steps.filter((s) => s.phase === "installing").length, 1);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a stream source is named by its label, or as the archive stream", T, async () => {
      const r = await root(backend);
      try {
        const bad = tarOf(snapEntries(U)[0]!);
        await assert.rejects(loadArchive(r.fs, r.layout, streamOf(bad)), errorRule(InvalidSnapshot, "invalid-snapshot", /^archive stream: snapshot /));
        await assert.rejects(loadArchive(r.fs, r.layout, streamOf(bad), { label: "upload.tar" }), errorRule(InvalidSnapshot, "invalid-snapshot", /^upload\.tar: snapshot /));
        const head = await loadArchive(r.fs, r.layout, streamOf(tarOf(...snapEntries(U))), { label: "upload.tar" });
        assert.equal(head.digest, U.digest);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a head already installed is not loaded again, unless a name asks for a copy", T, async () => {
      const r = await root(backend);
      try {
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        const findInstalled = async (d: string) => (d === U.digest ? "/elsewhere/u" : null);
        await assert.rejects(loadArchive(r.fs, r.layout, path, { findInstalled }), errorRule(SnapshotAlreadyInstalled, "snapshot-already-installed", new RegExp(`^${path}: snapshot ${U.digest} is already installed at /elsewhere/u`)));
        assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"]);
        const copy = await loadArchive(r.fs, r.layout, path, { findInstalled, name: "copy" });
        assert.equal(copy.path, `${r.home}/snapshots/copy`);
      } finally {
        r.cleanup();
      }
    });

    test("rule: the installed check is made again under the install lock, for a load racing this one", T, async () => {
      const r = await root(backend);
      try {
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        let asked = 0;
        // not installed when first asked; installed meanwhile by another load
        const findInstalled = async () => (++asked === 1 ? null : "/elsewhere/u");
        await assert.rejects(loadArchive(r.fs, r.layout, path, { findInstalled }), errorRule(SnapshotAlreadyInstalled, "snapshot-already-installed", /is already installed at \/elsewhere\/u; nothing was loaded/));
        assert.equal(asked, 2);
        assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"]);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a load waits for the install lock another holds, says who holds it, and gives up or stops when told", T, async () => {
      const r = await root(backend);
      try {
        await r.fs.mkdir(r.layout.cacheTmpDir, { recursive: true });
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        const waits: string[] = [];
        await withInstallLock(r.fs, r.layout, defaultSweepPolicy(), async () => {
          await assert.rejects(loadArchive(r.fs, r.layout, path, { lockTimeoutMs: 30, onLockWait: (w) => void waits.push(w) }), errorRule(LockTimeout, "lock-timeout", new RegExp(`waiting for the install lock ${r.layout.cacheTmpDir}/install\\.lock`)));
          const ac = new AbortController();
          await assert.rejects(loadArchive(r.fs, r.layout, path, { signal: ac.signal, onLockWait: () => ac.abort("enough") }), errorRule(OperationAborted, "aborted", /aborted \(enough\)/));
        });
        assert.equal(waits.length, 1);
        assert.match(waits[0]!, new RegExp(`^the install lock ${r.layout.cacheTmpDir}/install\\.lock is held by `));
        assert.deepEqual(await tree(r.fs, r.home), ["cache/", "cache/tmp/"], "nothing was installed");
      } finally {
        r.cleanup();
      }
    });

    test("rule: a destination is created with its missing parents", T, async () => {
      const r = await root(backend);
      try {
        const head = await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U))), { dest: `${r.root}/deep/er/snaps` });
        assert.equal(head.path, `${r.root}/deep/er/snaps/${U.prefix}`);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a load's staging directories are leased while it works", T, async () => {
      const r = await root(backend);
      try {
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        let seen: string[] = [];
        await loadArchive(r.fs, r.layout, path, { onStep: async () => { seen = [...(await r.fs.readdir(r.layout.snapshotsDir)), ...(await r.fs.readdir(r.layout.cacheTmpDir))]; } });
        const tokens = (prefix: string) => seen.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
        const [stage] = tokens(".msb-snapshot-import-");
        assert.ok(stage, `a staging directory while loading: ${seen.join(", ")}`);
        assert.deepEqual(tokens("snapshot-import-"), [stage], "the cache staging has the same owner");
        assert.equal(tokens(".snapbundle-lease-").filter((t) => t === stage).length, 2, "a lease beside each");
        assert.deepEqual((await r.fs.readdir(r.layout.snapshotsDir)).filter((n) => n.startsWith(".")), []);
        assert.deepEqual(await r.fs.readdir(r.layout.cacheTmpDir), []);
      } finally {
        r.cleanup();
      }
    });

    test("rule: an abort once the archive is verified installs nothing", T, async () => {
      const r = await root(backend);
      try {
        const ac = new AbortController();
        const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
        await assert.rejects(
          loadArchive(r.fs, r.layout, path, { signal: ac.signal, onStep: (p) => { if (p.phase === "installing") ac.abort("stop"); } }),
          errorRule(OperationAborted, "aborted", /aborted \(stop\)/),
        );
        assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"]);
      } finally {
        r.cleanup();
      }
    });

    test("rule: stale staging of a killed load is swept from the destination and from the home's snapshots/", T, async () => {
      const r = await root(backend);
      try {
        const stale = [`${r.home}/snapshots/.msb-snapshot-import-999999-deadbeef0000`, `${r.root}/d/.msb-snapshot-import-999999-deadbeef0001`, `${r.home}/cache/tmp/snapshot-import-999999-deadbeef0002`];
        for (const s of stale) await r.fs.mkdir(s, { recursive: true });
        const later = { now: Date.now() + 3_600_000 }; // the leftovers are an hour old by then, and have no lease
        await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U))), { dest: `${r.root}/d`, sweep: later });
        for (const s of stale) assert.equal(await r.fs.lstat(s).then(() => "there", () => "gone"), "gone", s);
        assert.deepEqual(await r.fs.readdir(`${r.root}/d`), [U.prefix]);
      } finally {
        r.cleanup();
      }
    });
  });

  describe(`load rollback on ${backend.label}`, () => {
    /** A home holding the image cache and snapshot U already; the bundle brings P, C and the same cache. */
    async function installed() {
      const r = await root(backend);
      const img = await imageFixture("", 1);
      const p = snapFixture({ size: 8192, pieces: [[0, "parent"]], image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      const c = snapFixture({ size: 8192, pieces: [[0, "child"]], parent: p.digest, image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      const g = snapFixture({ size: 4096, pieces: [[0, "grandchild"]], parent: c.digest, image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "u.tar", tarOf(...snapEntries(U))));
      const path = await archiveAt(r.fs, r.root, "pcg.tar", tarOf(...snapEntries(p), ...snapEntries(c), ...snapEntries(g), ...cacheEntries(img.files)));
      return { ...r, path, g, before: await fingerprint(r.fs, r.home) };
    }

    test("rule: a failure while promoting undoes the cache installs and earlier promotions", T, async () => {
      const r = await installed();
      try {
        const faulty = new FaultyFs(r.fs);
        faulty.arm({ at: 2, kind: "rename", match: (op) => op.path.includes(".msb-snapshot-import-") && op.to!.startsWith(`${r.home}/snapshots/`) });
        await assert.rejects(loadArchive(faulty, r.layout, r.path), (e: unknown) => {
          assert.ok(e instanceof FsError && e.op === "rename", String(e));
          assert.ok(!e.message.includes("could not undo"), e.message);
          return true;
        });
        assert.equal(faulty.fired.length, 1, "the second promotion failed");
        assert.deepEqual(await fingerprint(r.fs, r.home), r.before, "the home is as it was: no cache, no snapshot, no journal");
      } finally {
        r.cleanup();
      }
    });

    test("rule: what cannot be undone is named in the error", T, async () => {
      const r = await installed();
      try {
        const faulty = new FaultyFs(r.fs);
        // the third promotion fails, and so does every later rename: the first two cannot be moved back
        faulty.arm({ at: 3, kind: "rename", match: (op) => op.path.includes(".msb-snapshot-import-") || op.to!.includes(".msb-snapshot-import-"), sticky: true, errno: "EIO" });
        await assert.rejects(loadArchive(faulty, r.layout, r.path), (e: unknown) => {
          assert.ok(e instanceof SnapbundleError, String(e));
          assert.match(e.message, /^\/.*: rename .*: EIO .*\(and could not undo: [^;]+; [^;]+\)/, "the bundle, then each step left undone, is named");
          return true;
        });
        faulty.disarm();
        // the journal stays: the next load removes what the failed one promoted
        assert.ok((await r.fs.readdir(`${r.home}/cache/tmp`)).includes("promote.json"));
        const head = await loadArchive(r.fs, r.layout, r.path);
        assert.equal(head.digest, r.g.digest);
      } finally {
        r.cleanup();
      }
    });

    test("rule: a directory the failed load made but cannot remove is named in the error", T, async () => {
      const r = await root(backend);
      try {
        const faulty = new FaultyFs(r.fs);
        const path = await archiveAt(r.fs, r.root, "bad.tar", tarOf(snapEntries(U)[0]!));
        faulty.arm({ at: 1, kind: "remove", match: (op) => op.path === r.layout.cacheTmpDir, errno: "EACCES" });
        await assert.rejects(loadArchive(faulty, r.layout, path), errorRule(InvalidSnapshot, "invalid-snapshot", new RegExp(`its upper .* \\(and could not undo: remove directory ${r.layout.cacheTmpDir}\\)$`)));
        assert.equal(faulty.fired.length, 1);
      } finally {
        r.cleanup();
      }
    });

    test("rule: staging that cannot be created leaves nothing behind", T, async () => {
      for (const which of [".msb-snapshot-import-", "/cache/tmp/snapshot-import-"]) {
        const r = await root(backend);
        try {
          const faulty = new FaultyFs(r.fs);
          const path = await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(U)));
          faulty.arm({ at: 1, kind: "mkdir", match: (op) => op.path.includes(which), errno: "ENOSPC" });
          await assert.rejects(loadArchive(faulty, r.layout, path), (e: unknown) => e instanceof FsError && e.errno === "ENOSPC" && e.path.includes(which));
          assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"], `${which}: no home, staging or lease is left`);
        } finally {
          r.cleanup();
        }
      }
    });
  });
}

describe("head selection", () => {
  test("rule: headIndex picks the last snapshot no other names as parent; parents outside the set do not count", () => {
    const d = (c: string) => "sha256:" + c.repeat(64);
    assert.equal(headIndex([{ digest: d("a"), parent: null }, { digest: d("b"), parent: d("a") }]), 1);
    assert.equal(headIndex([{ digest: d("b"), parent: d("a") }, { digest: d("a"), parent: null }]), 0);
    assert.equal(headIndex([{ digest: d("a"), parent: d("f") }, { digest: d("b"), parent: d("e") }]), 1);
    assert.equal(headIndex([{ digest: d("a"), parent: d("b") }, { digest: d("b"), parent: d("a") }]), null);
    assert.equal(headIndex([]), null);
  });

  test("rule: when every snapshot is another's parent there is no head, and the archive is named", T, async () => {
    const r = await root(BACKENDS[0]!);
    try {
      await loadArchive(r.fs, r.layout, await archiveAt(r.fs, r.root, "a.tar", tarOf(...snapEntries(P), ...snapEntries(U))), { dest: `${r.root}/d` });
      const p = await openSnapshot(r.fs, `${r.root}/d/${P.prefix}`);
      const u = await openSnapshot(r.fs, `${r.root}/d/${U.prefix}`);
      // manifests naming each other (digests cannot, but the rule must not loop or pick one)
      const looped = [{ ...p, manifest: { ...p.manifest, parent: u.digest } }, { ...u, manifest: { ...u.manifest, parent: p.digest } }];
      assert.throws(() => selectHeadSnapshot(looped, "x.tar"), errorRule(ArchiveError, "archive", /^x\.tar: the archive contains no head snapshot \(every snapshot is another's parent\)$/));
      assert.equal(selectHeadSnapshot([p, u], "x.tar"), 1);
    } finally {
      r.cleanup();
    }
  });
});
