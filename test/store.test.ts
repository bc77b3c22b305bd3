/**
 * Rules of the snapshot store (src/store.ts): paths and names, digest lookup,
 * listing order, the self-healing index, failed commands leaving no trace,
 * removal, reindex and leftovers. Mostly on memfs (fast); fault injection
 * through {@link FaultyFs}.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { writePromoteJournal } from "../src/archive/journal.js";
import { ArchiveError, InvalidArgument, SnapshotAlreadyInstalled, SnapshotInUse, SnapshotNotFound } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile, writeAtomically } from "../src/io.js";
import { HomeLayout } from "../src/layout.js";
import { stagingName } from "../src/staging.js";
import { isPathLike, SnapshotStore } from "../src/store.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { BACKENDS, IMAGE, makeHome, writeSparse } from "./helpers/homes.js";
import { writeCheckpoint06 } from "./helpers/msb06-reference.js";

const MEM = BACKENDS[0]!;
const AT = "2026-05-01T12:00:00Z";
const T = { timeout: 30_000 };

/** A memfs home (optionally behind a FaultyFs) with an upper at `/t/u`. */
async function memHome(): Promise<{ fs: FaultyFs; root: string; home: string; store: SnapshotStore }> {
  const vol = new Volume();
  vol.mkdirSync("/t/home", { recursive: true });
  const fs = new FaultyFs(memFs(vol));
  await writeSparse(fs, "/t/u", 4096, [[0, "x"]]);
  return { fs, root: "/t", home: "/t/home", store: new SnapshotStore(fs, "/t/home", { cwd: "/t", userHome: "/t" }) };
}

const make = (h: { root: string; store: SnapshotStore }, name: string, extra: { destDir?: string; parent?: string; labels?: Record<string, string>; form?: "manifest" | "snapshot"; integrity?: boolean } = {}) =>
  h.store.create(name, { upper: `${h.root}/u`, image: IMAGE, createdAt: AT, ...extra });

const exists = (fs: FileSystem, p: string) => fs.lstat(p).then(() => true, () => false);

interface RawIndex {
  version: number;
  roots: string[];
  entries: Record<string, { stamp: { manifest: [number, number, string]; upper: [string, number] | null }; info?: { labels: Record<string, string>; state_kind: string }; problem?: string }>;
}
const indexPath = (home: string) => `${home}/snapshots/.snapbundle-index.json`;
async function readIndexJson(fs: FileSystem, home: string): Promise<RawIndex> {
  return JSON.parse(new TextDecoder().decode(await readSmallFile(fs, indexPath(home), 1 << 24))) as RawIndex;
}
async function writeIndexJson(fs: FileSystem, home: string, index: unknown): Promise<void> {
  await writeAtomically(fs, indexPath(home), new TextEncoder().encode(JSON.stringify(index)));
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("paths and names", () => {
  test("rule: an argument is a path when it has a slash or starts with . or ~ (not when it ends with one)", () => {
    for (const p of ["a/b", ".x", "./a", "~", "~x", "/abs"]) assert.equal(isPathLike(p), true, p);
    for (const p of ["name", "x.", "x~", "sha256:abc"]) assert.equal(isPathLike(p), false, p);
  });

  test("rule: the home must be an absolute path, named in the refusal", () => {
    assert.throws(() => new SnapshotStore(memFs(new Volume()), "rel/home"), errorRule(InvalidArgument, "invalid-argument", /^home "rel\/home" must be an absolute path$/));
  });

  test("rule: ~ expands to the user home, absolute paths are normalized, relative ones resolve against cwd", () => {
    const fs = memFs(new Volume());
    const s = new SnapshotStore(fs, "/h", { cwd: "/w", userHome: "/u" });
    assert.equal(s.absolutePath("~"), "/u");
    assert.equal(s.absolutePath("~/a/b"), "/u/a/b");
    assert.equal(s.absolutePath("~x"), "/w/~x");
    assert.equal(s.absolutePath("/a/../b"), "/b");
    assert.equal(s.absolutePath("a/./b"), "/w/a/b");
    const bare = new SnapshotStore(fs, "/h");
    assert.equal(bare.absolutePath("/a/../b/"), "/b");
    assert.equal(bare.absolutePath("/a/b"), "/a/b");
    assert.throws(() => bare.absolutePath("~"), errorRule(InvalidArgument, "invalid-argument", /^cannot expand "~": no user home directory is known$/));
    assert.throws(() => bare.absolutePath("~/x"), errorRule(InvalidArgument, "invalid-argument", /^cannot expand "~\/x": no user home directory is known$/));
    assert.throws(() => bare.absolutePath("x"), errorRule(InvalidArgument, "invalid-argument", /^relative path "x" needs a working directory$/));
  });

  test("rule: an empty reference is refused, not taken as the snapshots directory", T, async () => {
    const h = await memHome();
    await make(h, "a");
    await assert.rejects(h.store.resolve(""), errorRule(InvalidArgument, "invalid-argument", /^a snapshot name, digest or path must not be empty$/));
  });

  test("rule: an unknown name is SnapshotNotFound naming it and the snapshots directory", T, async () => {
    const h = await memHome();
    await make(h, "a");
    await assert.rejects(
      h.store.resolve("nope"),
      errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^no snapshot named "nope" in ${esc(h.home)}/snapshots or another indexed directory, and no indexed snapshot has that digest$`)),
    );
  });

  test("rule: a manifest.json snapshot lists as file state with disk scope", T, async () => {
    const h = await memHome();
    await make(h, "a");
    const [s] = (await h.store.list()).snapshots;
    assert.equal(s?.form, "manifest");
    assert.equal(s?.state_kind, "file");
    assert.equal(s?.scope, "disk");
  });
});

describe("digest lookup", () => {
  test("rule: a digest installed twice is refused by resolve, naming both copies; findByDigest prefers the home's copy", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    const b = await make(h, "a", { destDir: `${h.root}/elsewhere` });
    assert.equal(a.digest, b.digest, "same inputs, same identity");
    await assert.rejects(
      h.store.resolve(a.digest),
      errorRule(InvalidArgument, "invalid-argument", new RegExp(`^digest ${esc(a.digest)} names 2 snapshots: ${esc(b.path)}, ${esc(a.path)}; name one by its name or path$`)),
    );
    const prefix = a.digest.slice(7, 7 + 16);
    await assert.rejects(
      h.store.resolve(prefix),
      errorRule(InvalidArgument, "invalid-argument", new RegExp(`^digest prefix ${prefix} is ambiguous: it matches ${esc(a.digest)} \\(${esc(b.path)}\\), ${esc(a.digest)} \\(${esc(a.path)}\\)$`)),
    );
    assert.equal((await h.store.findByDigest(a.digest))?.path, a.path, "the copy under <home>/snapshots first");
    assert.equal((await h.store.findByDigest(prefix))?.digest, a.digest, "without unique any copy will do");
  });

  test("rule: a digest prefix needs at least 12 hex digits", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    const hex = a.digest.slice(7);
    assert.equal(await h.store.findByDigest(hex.slice(0, 11)), null);
    assert.equal(await h.store.findByDigest(`sha256:${hex.slice(0, 11)}`), null);
    assert.equal((await h.store.findByDigest(hex.slice(0, 12)))?.path, a.path);
    await assert.rejects(h.store.resolve(hex.slice(0, 11)), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^no snapshot named "${hex.slice(0, 11)}"`)));
  });

  test("rule: a read-only lookup does not write the index", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await h.store.list();
    await h.fs.remove(indexPath(h.home));
    assert.equal((await h.store.findByDigest(a.digest, { readOnly: true }))?.path, a.path);
    assert.equal(await exists(h.fs, indexPath(h.home)), false, "no index written");
    assert.equal((await h.store.findByDigest(a.digest))?.path, a.path);
    assert.equal(await exists(h.fs, indexPath(h.home)), true, "a plain lookup refreshes the cache");
  });
});

describe("listing", () => {
  test("rule: snapshots are listed by name, then by path", T, async () => {
    const h = await memHome();
    await make(h, "c");
    await make(h, "b", { destDir: `${h.root}/z1` });
    await make(h, "c", { destDir: `${h.root}/z1` });
    await make(h, "a", { destDir: `${h.root}/a2` });
    await make(h, "c", { destDir: `${h.root}/a2` });
    const { snapshots } = await h.store.list();
    assert.deepEqual(
      snapshots.map((s) => s.path),
      [`${h.root}/a2/a`, `${h.root}/z1/b`, `${h.root}/a2/c`, `${h.home}/snapshots/c`, `${h.root}/z1/c`],
    );
  });

  test("rule: an artifact removed while the listing runs is skipped", T, async () => {
    const h = await memHome();
    await make(h, "a");
    const gone = (await make(h, "gone")).path;
    await h.fs.remove(indexPath(h.home));
    h.fs.hooks = {
      before: async (op) => {
        if (op.kind === "lstat" && op.path === gone) await h.fs.inner.remove(gone, { recursive: true, force: true });
      },
    };
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.name), ["a"]);
  });

  test("rule: a symlink in snapshots is neither listed nor reported as a problem", T, async () => {
    for (const b of BACKENDS) {
      const { fs, root, home, store, cleanup } = await makeHome(b);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        const a = await store.create("a", { upper: `${root}/u`, image: IMAGE });
        await fs.symlink(a.path, `${home}/snapshots/link`);
        const { snapshots, problems } = await store.list();
        assert.deepEqual(snapshots.map((s) => s.name), ["a"], b.label);
        assert.deepEqual(problems, [], b.label);
      } finally {
        cleanup();
      }
    }
  });

  test("rule: targets of an uncommitted promotion are not listed", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await make(h, "b");
    const layout = new HomeLayout(h.home);
    await h.fs.mkdir(layout.cacheTmpDir, { recursive: true });
    await writePromoteJournal(h.fs, layout, [{ to: a.path, digest: a.digest }]);
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.name), ["b"]);
  });

  test("rule: a snapshots path that is a file lists nothing (no error, no index)", T, async () => {
    for (const b of BACKENDS) {
      const { fs, home, store, cleanup } = await makeHome(b);
      try {
        await writeSparse(fs, `${home}/snapshots`, 10, []);
        assert.deepEqual(await store.list(), { snapshots: [], problems: [] }, b.label);
        assert.equal((await fs.lstat(`${home}/snapshots`)).kind, "file");
      } finally {
        cleanup();
      }
    }
  });

  test("rule: an indexed root that cannot be read fails the listing with its fs error", T, async () => {
    const h = await memHome();
    await make(h, "x", { destDir: `${h.root}/other` });
    h.fs.arm({ at: 1, kind: "readdir", match: (op) => op.path === `${h.root}/other`, errno: "EACCES" });
    await assert.rejects(h.store.list(), fsErrorRule("EACCES", "readdir"));
  });

  test("rule: an I/O error reading the index is thrown (its extra roots must not be forgotten)", T, async () => {
    const h = await memHome();
    await make(h, "x", { destDir: `${h.root}/other` });
    h.fs.arm({ at: 1, kind: "open", match: (op) => op.path === indexPath(h.home), errno: "EIO" });
    await assert.rejects(h.store.list(), fsErrorRule("EIO", "open"));
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.path), [`${h.root}/other/x`]);
  });

  test("rule: an index of another version or shape is rebuilt, forgetting the roots it claims", T, async () => {
    const h = await memHome();
    await make(h, "x", { destDir: `${h.root}/other` });
    const good = await readIndexJson(h.fs, h.home);
    assert.deepEqual(good.roots, [`${h.home}/snapshots`, `${h.root}/other`]);
    const bad: [string, unknown][] = [
      ["version 2", { ...good, version: 2 }],
      ["a non-string root", { ...good, roots: [...good.roots, 5] }],
      ["entries a number", { ...good, entries: 5 }],
      ["entries null", { ...good, entries: null }],
      ["roots not an array", { ...good, roots: { 0: `${h.root}/other`, every: 1 } }],
    ];
    for (const [what, index] of bad) {
      await writeIndexJson(h.fs, h.home, index);
      assert.deepEqual(await h.store.list(), { snapshots: [], problems: [] }, what);
    }
    await writeIndexJson(h.fs, h.home, good);
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.path), [`${h.root}/other/x`], "the well-formed index is honoured");
  });

  test("rule: a listing that finds nothing changed reads no artifact and does not rewrite the index", T, async () => {
    const h = await memHome();
    await make(h, "a");
    await writeCheckpoint06(h.fs, `${h.home}/snapshots/ck`);
    await h.store.list();
    const { ops } = await h.fs.measure(() => h.store.list());
    const opened = ops.filter((o) => o.kind === "open" && o.path.startsWith(`${h.home}/snapshots/`)).map((o) => `${o.path} ${o.mode}`);
    assert.deepEqual(opened, [`${indexPath(h.home)} r`]);
    assert.deepEqual(ops.filter((o) => o.kind === "rename" || o.kind === "write"), []);
  });
});

describe("the index is a cache checked against the disk", () => {
  type Entry = RawIndex["entries"][string];
  /** Tamper with a's index entry (its labels, and what `edit` changes), then list. */
  async function tampered(edit: (e: Entry, dir: string) => Promise<void> | void, name = "a", setup?: (h: Awaited<ReturnType<typeof memHome>>) => Promise<string>) {
    const h = await memHome();
    const dir = setup ? await setup(h) : (await make(h, name, { labels: { v: "real" } })).path;
    await h.store.list();
    const index = await readIndexJson(h.fs, h.home);
    const e = index.entries[dir]!;
    e.info!.labels = { v: "cached" };
    await edit(e, dir);
    await writeIndexJson(h.fs, h.home, index);
    const { snapshots, problems } = await h.store.list();
    const labels = snapshots.find((s) => s.path === dir)?.labels;
    return { labels: labels && { ...labels }, problems, h };
  }

  test("rule: an entry whose stamps match the disk is trusted", T, async () => {
    assert.deepEqual((await tampered(() => {})).labels, { v: "cached" });
    const ck = await tampered(() => {}, "ck", async (h) => (await writeCheckpoint06(h.fs, `${h.home}/snapshots/ck`), `${h.home}/snapshots/ck`));
    assert.deepEqual(ck.labels, { v: "cached" }, "a checkpoint (no upper) too");
  });

  test("rule: an entry whose descriptor or upper changed (or that is malformed) is re-opened", T, async () => {
    const cases: [string, (e: Entry, dir: string) => Promise<void> | void][] = [
      ["descriptor mtime", (e) => void (e.stamp.manifest[0] += 1)],
      ["descriptor size", (e) => void (e.stamp.manifest[1] += 1)],
      ["descriptor name", (e) => void (e.stamp.manifest[2] = "snapshot.json")],
      ["stamp not an array", (e) => void ((e.stamp as { manifest: unknown }).manifest = "x")],
      ["no upper recorded for a file snapshot", (e) => void (e.stamp.upper = null)],
      ["upper size", (e) => void (e.stamp.upper![1] += 1)],
      ["upper gone", (e) => void (e.stamp.upper![0] = "gone.ext4")],
    ];
    for (const [what, edit] of cases) assert.deepEqual((await tampered(edit)).labels, { v: "real" }, what);
  });

  test("rule: an upper that is now a directory of the recorded size is re-opened", T, async () => {
    const h = await memHome();
    const a = await make(h, "a", { labels: { v: "real" } });
    await h.store.list();
    await h.fs.mkdir(`${a.path}/sub`);
    const index = await readIndexJson(h.fs, h.home);
    const e = index.entries[a.path]!;
    e.info!.labels = { v: "cached" };
    e.stamp.upper = ["sub", (await h.fs.lstat(`${a.path}/sub`)).size];
    await writeIndexJson(h.fs, h.home, index);
    assert.deepEqual((await h.store.list()).snapshots.map((s) => ({ ...s.labels })), [{ v: "real" }]);
  });

  test("rule: an entry without info is re-opened, not listed as a problem", T, async () => {
    const r = await tampered((e) => void delete e.info);
    assert.deepEqual(r.labels, { v: "real" });
    assert.deepEqual(r.problems, []);
  });

  test("rule: reindex rebuilds every entry, even one whose stamps match", T, async () => {
    const { h } = await tampered(() => {});
    assert.deepEqual((await h.store.reindex()).snapshots.map((s) => ({ ...s.labels })), [{ v: "real" }]);
  });
});

describe("unreadable artifacts", () => {
  /** base and its child kid; the index removed so both are opened again. */
  async function family() {
    const h = await memHome();
    const base = await make(h, "base");
    const kid = await make(h, "kid", { parent: base.digest });
    await h.fs.remove(indexPath(h.home));
    const kidOpen = (op: { kind: string; path: string }) => op.kind === "open" && op.path === `${kid.path}/manifest.json`;
    return { h, base, kid, kidOpen };
  }

  test("rule: a listing reports an artifact that fails with an I/O error as a problem", T, async () => {
    const { h, kid, kidOpen } = await family();
    h.fs.arm({ at: 1, match: kidOpen, errno: "EIO" });
    const { snapshots, problems } = await h.store.list();
    assert.deepEqual(snapshots.map((s) => s.name), ["base"]);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, kid.path);
    assert.match(problems[0]!.message, /injected fault/);
  });

  test("rule: children (and so rm) fail on an artifact that fails with an I/O error: it might be a child", T, async () => {
    const { h, base, kidOpen } = await family();
    h.fs.arm({ at: 1, match: kidOpen, errno: "EIO" });
    await assert.rejects(h.store.children(base.digest), fsErrorRule("EIO", "open"));
    await h.fs.remove(indexPath(h.home), { force: true });
    h.fs.arm({ at: 1, match: kidOpen, errno: "EIO" });
    await assert.rejects(h.store.remove("base"), fsErrorRule("EIO", "open"));
    assert.equal((await h.store.resolve("base")).digest, base.digest, "not removed");
  });

  test("rule: children skip an artifact that is malformed (not an I/O error)", T, async () => {
    const { h, base, kid } = await family();
    await h.fs.mkdir(`${h.home}/snapshots/broken`);
    await writeSparse(h.fs, `${h.home}/snapshots/broken/manifest.json`, 0, [[0, "{not json"]]);
    assert.deepEqual((await h.store.children(base.digest)).map((s) => s.path), [kid.path]);
  });

  test("rule: an unexpected (non-snapbundle) error opening an artifact is thrown, not listed", T, async () => {
    const { h, kidOpen } = await family();
    h.fs.hooks = {
      before: (op) => {
        if (kidOpen(op)) throw new TypeError("a bug");
      },
    };
    await assert.rejects(h.store.list(), (e: unknown) => e instanceof TypeError && e.message === "a bug");
  });
});

describe("failed commands leave no trace", () => {
  const missing = (h: { root: string }) => `${h.root}/missing-upper`;
  const failCreate = (h: { root: string; store: SnapshotStore }, extra: { destDir?: string; form?: "manifest" } = {}) =>
    assert.rejects(h.store.create("n", { upper: missing(h), image: IMAGE, ...extra }), (e: unknown) => e instanceof InvalidArgument && e.message.includes(missing(h)));

  // a create into a new root writes the index (making snapshots/, and the home) before it fails
  test("rule: a failed create removes a home it created, index included", T, async () => {
    const h = await memHome();
    const store = new SnapshotStore(h.fs, `${h.root}/fresh`, { cwd: h.root });
    await failCreate({ root: h.root, store }, { destDir: "new" });
    assert.equal(await exists(h.fs, `${h.root}/fresh`), false);
  });

  test("rule: a failed create keeps a home that existed, removing the snapshots directory it made", T, async () => {
    const h = await memHome();
    await failCreate(h, { destDir: "new" });
    assert.deepEqual(await h.fs.readdir(h.home), []);
  });

  test("rule: a failed create never removes a snapshots directory or home that another command filled meanwhile", T, async () => {
    for (const fresh of [false, true]) {
      const h = await memHome();
      const home = fresh ? `${h.root}/fresh` : h.home;
      const store = new SnapshotStore(h.fs, home, { cwd: h.root });
      const theirs = fresh ? `${home}/config` : `${home}/snapshots/theirs`;
      h.fs.hooks = {
        before: async (op) => {
          if (op.path === missing(h) && !(await exists(h.fs.inner, theirs))) await h.fs.inner.mkdir(theirs, { recursive: true });
        },
      };
      await failCreate({ root: h.root, store });
      assert.equal(await exists(h.fs, theirs), true, theirs);
    }
  });

  test("rule: a failed create never removes a directory whose contents it cannot read", T, async () => {
    const h = await memHome();
    const snaps = `${h.home}/snapshots`;
    h.fs.hooks = {
      before: async (op) => {
        if (op.kind === "readdir" && op.path === snaps && !(await exists(h.fs.inner, `${snaps}/theirs`))) await h.fs.inner.mkdir(`${snaps}/theirs`, { recursive: true });
      },
    };
    h.fs.arm({ at: 1, kind: "readdir", match: (op) => op.path === snaps, errno: "EIO", sticky: true });
    await assert.rejects(h.store.create("n", { upper: `${h.root}/u`, image: IMAGE }), fsErrorRule("EIO", "readdir"));
    assert.equal(await exists(h.fs, `${snaps}/theirs`), true);
  });

  test("rule: a failed create keeps an existing snapshots directory and its index", T, async () => {
    const h = await memHome();
    await make(h, "a");
    await failCreate(h);
    assert.equal(await exists(h.fs, indexPath(h.home)), true);
  });

  test("rule: a failed create writes no index where there was none", T, async () => {
    const h = await memHome();
    await h.fs.mkdir(`${h.home}/snapshots`);
    await failCreate(h, { form: "manifest" });
    assert.deepEqual(await h.fs.readdir(`${h.home}/snapshots`), []);
  });

  test("rule: a failed create forgets the new root it recorded, keeping the others", T, async () => {
    const h = await memHome();
    await make(h, "a");
    await h.fs.mkdir(`${h.root}/other`, { recursive: true });
    await h.store.reindex(`${h.root}/other`);
    await failCreate(h, { destDir: `${h.root}/new` });
    assert.deepEqual((await readIndexJson(h.fs, h.home)).roots, [`${h.home}/snapshots`, `${h.root}/other`]);
  });

  test("rule: a failed create reports its own error even when the index vanished meanwhile, and records no root", T, async () => {
    const h = await memHome();
    await make(h, "a");
    h.fs.hooks = {
      before: async (op) => {
        if (op.path === missing(h)) await h.fs.inner.remove(indexPath(h.home), { force: true });
      },
    };
    await failCreate(h, { destDir: `${h.root}/new` });
    assert.deepEqual((await readIndexJson(h.fs, h.home)).roots, [`${h.home}/snapshots`]);
  });

  test("rule: a failed create into a root already indexed keeps it indexed", T, async () => {
    const h = await memHome();
    const x = await make(h, "x", { destDir: `${h.root}/other` });
    await failCreate(h, { destDir: `${h.root}/other` });
    assert.deepEqual((await readIndexJson(h.fs, h.home)).roots, [`${h.home}/snapshots`, `${h.root}/other`]);
    assert.equal((await h.store.resolve(x.digest)).path, x.path);
  });

  test("rule: a create into a new root records it, keeping the roots already indexed", T, async () => {
    const h = await memHome();
    await h.fs.mkdir(`${h.root}/other`, { recursive: true });
    await h.store.reindex(`${h.root}/other`);
    await make(h, "y", { destDir: `${h.root}/new` });
    assert.deepEqual((await readIndexJson(h.fs, h.home)).roots, [`${h.home}/snapshots`, `${h.root}/other`, `${h.root}/new`]);
  });
});

describe("save and load", () => {
  test("rule: save and load resolve relative paths against cwd (output, source and dest)", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await h.store.save("a", "out.tar", { plainTar: true });
    assert.equal((await h.fs.lstat(`${h.root}/out.tar`)).kind, "file");
    const other = new SnapshotStore(h.fs, `${h.root}/home2`, { cwd: h.root });
    const loaded = await other.load("out.tar", { dest: "dst" });
    assert.equal(loaded.digest, a.digest);
    assert.equal(loaded.path, `${h.root}/dst/${loaded.path.split("/").pop()}`);
    assert.equal((await other.resolve(a.digest)).path, loaded.path);
    assert.deepEqual((await readIndexJson(h.fs, `${h.root}/home2`)).roots, [`${h.root}/home2/snapshots`, `${h.root}/dst`]);
  });

  test("rule: a load refused as already installed leaves the snapshots directory as it was (no index written)", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await h.store.save("a", `${h.root}/a.tar`, { plainTar: true });
    await h.store.list();
    await h.fs.remove(indexPath(h.home));
    await assert.rejects(
      h.store.load(`${h.root}/a.tar`),
      errorRule(SnapshotAlreadyInstalled, "snapshot-already-installed", new RegExp(`^${esc(h.root)}/a\\.tar: snapshot ${esc(a.digest)} is already installed at ${esc(a.path)};`)),
    );
    assert.deepEqual(await h.fs.readdir(`${h.home}/snapshots`), ["a"]);
  });

  test("rule: a failed load into a new home leaves no home behind", T, async () => {
    const h = await memHome();
    await writeSparse(h.fs, `${h.root}/junk.tar`, 0, [[0, "not a bundle at all"]]);
    const fresh = new SnapshotStore(h.fs, `${h.root}/fresh`, { cwd: h.root });
    await assert.rejects(fresh.load("junk.tar"), errorRule(ArchiveError, "archive", new RegExp(`^${esc(h.root)}/junk\\.tar is not a tar archive`)));
    assert.equal(await exists(h.fs, `${h.root}/fresh`), false, (await h.fs.readdir(`${h.root}/fresh`).catch(() => [])).join(" "));
  });

  test("rule: save defaults to the head's own layout, keeping a manifest.json snapshot's identity", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await h.store.save("a", `${h.root}/m.tar`, { plainTar: true });
    await h.store.save("a", `${h.root}/s.tar`, { plainTar: true, layout: "snapshot" });
    const m = await new SnapshotStore(h.fs, `${h.root}/h-m`).load(`${h.root}/m.tar`);
    const s = await new SnapshotStore(h.fs, `${h.root}/h-s`).load(`${h.root}/s.tar`);
    assert.equal(m.digest, a.digest);
    assert.equal(m.form, "manifest");
    assert.equal(s.form, "snapshot");
    assert.notEqual(s.digest, a.digest, "the 0.6 layout translates the identity");
  });

  test("rule: a snapshot.json head saves in the snapshot layout by default, and the manifest layout refuses it by path", T, async () => {
    const h = await memHome();
    const a = await make(h, "a", { form: "snapshot" });
    const r = await h.store.save("a", `${h.root}/s.tar`, { plainTar: true });
    assert.deepEqual(r.snapshots.map((s) => s.digest), [a.digest]);
    const w = await h.store.save("a", `${h.root}/w.tar`, { plainTar: true, withParents: true });
    assert.deepEqual(w.snapshots.map((s) => s.digest), [a.digest], "with parents: the head alone when it has none");
    await assert.rejects(
      h.store.save("a", `${h.root}/m.tar`, { plainTar: true, layout: "manifest" }),
      errorRule(InvalidArgument, "invalid-argument", new RegExp(`^${esc(a.path)} is a snapshot.json artifact: the manifest.json bundle layout cannot carry it`)),
    );
    assert.equal(await exists(h.fs, `${h.root}/m.tar`), false);
  });

  test("rule: verify reports progress", T, async () => {
    const h = await memHome();
    await make(h, "a", { integrity: true });
    const seen: number[] = [];
    const v = await h.store.verify("a", { onProgress: (n) => seen.push(n) });
    assert.equal(v.integrity.status, "verified");
    assert.ok(seen.length > 0, "progress reported");
  });
});

describe("remove", () => {
  test("rule: remove refused by children names every child", T, async () => {
    const h = await memHome();
    const base = await make(h, "base");
    const k1 = await make(h, "k1", { parent: base.digest });
    const k2 = await make(h, "k2", { parent: base.digest });
    await assert.rejects(
      h.store.remove("base"),
      errorRule(SnapshotInUse, "snapshot-in-use", new RegExp(`^snapshot ${esc(base.path)} is the parent of ${esc(k1.path)}, ${esc(k2.path)}; remove them first, or use --force \\(library: force: true\\) to remove it anyway$`)),
    );
  });

  test("rule: a remove that cannot sync the directory puts the snapshot back", T, async () => {
    const h = await memHome();
    const a = await make(h, "a");
    await h.store.list();
    h.fs.arm({ at: 1, kind: "syncDir", errno: "EIO" });
    await assert.rejects(h.store.remove("a"), fsErrorRule("EIO", "syncDir"));
    assert.deepEqual(await h.fs.readdir(`${h.home}/snapshots`), [".snapbundle-index.json", "a"]);
    assert.equal((await h.store.resolve("a")).digest, a.digest);
  });

  test("rule: a removed snapshot's undeletable trash is a dot-name, never listed", T, async () => {
    const h = await memHome();
    await make(h, "a");
    h.fs.arm({ at: 1, kind: "remove", match: (op) => op.path.includes("/.msb-removing-"), errno: "EACCES" });
    await h.store.remove("a");
    assert.deepEqual(await h.store.list(), { snapshots: [], problems: [] });
    const names = await h.fs.readdir(`${h.home}/snapshots`);
    assert.equal(names.filter((n) => n.startsWith(".msb-removing-")).length, 1, names.join(" "));
  });
});

describe("reindex and roots", () => {
  test("rule: reindex without a directory never creates a snapshots directory", T, async () => {
    const h = await memHome();
    assert.deepEqual(await h.store.reindex(), { snapshots: [], problems: [] });
    assert.deepEqual(await h.fs.readdir(h.home), []);
  });

  test("rule: reindex DIR in a home without snapshots writes the index (the root lives only there)", T, async () => {
    const h = await memHome();
    const x = await make(h, "x", { destDir: `${h.root}/other` });
    await h.fs.remove(`${h.home}/snapshots`, { recursive: true });
    await h.store.reindex("other");
    const fresh = new SnapshotStore(h.fs, h.home);
    assert.equal((await fresh.resolve(x.digest)).path, x.path);
  });

  test("rule: reindex keeps the roots already indexed", T, async () => {
    const h = await memHome();
    const x = await make(h, "x", { destDir: `${h.root}/other` });
    assert.deepEqual((await h.store.reindex()).snapshots.map((s) => s.path), [x.path]);
  });

  test("rule: addRoot indexes a directory, keeping the roots already indexed", T, async () => {
    const h = await memHome();
    const x = await make(h, "x", { destDir: `${h.root}/r1` });
    const y = await make(h, "y", { destDir: `${h.root}/r2` });
    await h.fs.remove(indexPath(h.home));
    await h.store.addRoot(`${h.root}/r1`);
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.path), [x.path]);
    await h.store.addRoot(`${h.root}/r2`);
    assert.deepEqual((await h.store.list()).snapshots.map((s) => s.path), [x.path, y.path]);
  });
});

describe("leftovers", () => {
  const later = () => ({ now: Date.now() + 365 * 86_400_000 });

  test("rule: leftovers are looked for in every indexed root, cache/tmp and the given directories", T, async () => {
    const h = await memHome();
    await make(h, "x", { destDir: `${h.root}/other` });
    const staged = [`${h.home}/snapshots/${stagingName(".msb-removing-")}`, `${h.root}/other/${stagingName(".msb-create-")}`, `${h.home}/cache/tmp/${stagingName("snapshot-import-")}`];
    for (const d of staged) await h.fs.mkdir(d, { recursive: true });
    const partial = `${h.root}/out/.b.tar.partial-1-abc`;
    await h.fs.mkdir(`${h.root}/out`);
    await writeSparse(h.fs, partial, 1, []);
    const bare = new SnapshotStore(h.fs, h.home);
    assert.deepEqual((await bare.leftovers()).map((l) => l.path).sort(), [...staged].sort());
    assert.deepEqual((await h.store.leftovers(["out"])).map((l) => l.path).sort(), [...staged, partial].sort());
    await h.fs.remove(indexPath(h.home));
    assert.equal((await bare.leftovers()).length, 2, "without an index: the home's own directories");
  });

  test("rule: gc removes what the policy judges gone; a dry run only reports it; a fresh one is kept", T, async () => {
    const h = await memHome();
    await h.fs.mkdir(`${h.home}/snapshots`);
    const d = `${h.home}/snapshots/${stagingName(".msb-removing-")}`;
    await h.fs.mkdir(d);
    const kept = await new SnapshotStore(h.fs, h.home).gc({ dryRun: true });
    assert.deepEqual(kept.removed, []);
    const dry = await h.store.gc({ dryRun: true, policy: { ...later() } });
    assert.deepEqual(dry.removed.map((l) => l.path), [d]);
    assert.equal(await exists(h.fs, d), true, "a dry run removes nothing");
    const real = await h.store.gc({ policy: later() });
    assert.deepEqual(real.removed.map((l) => l.path), [d]);
    assert.equal(await exists(h.fs, d), false);
  });
});
