/**
 * Conformance of the FileSystem adapters: the same cases run against
 * `nodeFs()` (on a fresh directory under `os.tmpdir()`) and `memFs(new
 * Volume())`, checking every method and every errno `src/fs/types.ts` promises.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FsError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { allZero, fsAdapters, readBytes, readText, rejectsFs, writeFile } from "./helpers/fs-adapters.js";

const enc = new TextEncoder();

async function exists(fs: FileSystem, path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof FsError && e.errno === "ENOENT") return false;
    throw e;
  }
}

async function sortedNames(fs: FileSystem, path: string): Promise<string[]> {
  return (await fs.readdir(path)).sort();
}

for (const adapter of fsAdapters) {
  const { name } = adapter;
  const t = (title: string, body: (fs: FileSystem, root: string) => Promise<void>) =>
    test(title, () => adapter.run(body));

  describe(`FileSystem conformance: ${name}`, () => {
    t("label names the adapter", async (fs) => {
      assert.equal(fs.label, name);
    });

    // ---------------------------------------------------------------- open
    t("open wx creates a file; write/read round-trips; read at and past EOF returns 0", async (fs, root) => {
      const p = `${root}/a`;
      const h = await fs.open(p, "wx");
      await h.write(enc.encode("hello world"), 0);
      await h.close();
      const r = await fs.open(p, "r");
      try {
        const buf = new Uint8Array(64);
        assert.equal(await r.read(buf, 0), 11);
        assert.equal(new TextDecoder().decode(buf.subarray(0, 11)), "hello world");
        assert.equal(await r.read(buf, 6), 5);
        assert.equal(new TextDecoder().decode(buf.subarray(0, 5)), "world");
        assert.equal(await r.read(buf, 11), 0);
        assert.equal(await r.read(buf, 1 << 20), 0);
        assert.equal(await r.read(new Uint8Array(0), 0), 0);
      } finally {
        await r.close();
      }
    });

    t("open wx fails EEXIST on an existing file, directory and dangling link", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "keep");
      await fs.mkdir(`${root}/d`);
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`);
      await rejectsFs(fs.open(`${root}/f`, "wx"), "EEXIST", { op: "open", path: `${root}/f` });
      await rejectsFs(fs.open(`${root}/d`, "wx"), "EEXIST");
      await rejectsFs(fs.open(`${root}/dangling`, "wx"), "EEXIST");
      assert.equal(await readText(fs, `${root}/f`), "keep");
      assert.equal(await exists(fs, `${root}/nowhere`), false, "wx must not create a link's target");
      assert.equal((await fs.lstat(`${root}/dangling`)).kind, "symlink");
    });

    t("open r / r+ of a missing file fails ENOENT; missing or non-directory parent fails", async (fs, root) => {
      await rejectsFs(fs.open(`${root}/missing`, "r"), "ENOENT", { op: "open", path: `${root}/missing` });
      await rejectsFs(fs.open(`${root}/missing`, "r+"), "ENOENT");
      await rejectsFs(fs.open(`${root}/nodir/x`, "w"), "ENOENT");
      await rejectsFs(fs.open(`${root}/nodir/x`, "wx"), "ENOENT");
      await writeFile(fs, `${root}/f`, "x");
      await rejectsFs(fs.open(`${root}/f/x`, "w"), "ENOTDIR");
      await rejectsFs(fs.open(`${root}/f/x`, "r"), "ENOTDIR");
    });

    t("open w truncates, r+ keeps the contents and writes in place", async (fs, root) => {
      const p = `${root}/f`;
      await writeFile(fs, p, "0123456789");
      const h = await fs.open(p, "r+");
      await h.write(enc.encode("ab"), 4);
      await h.close();
      assert.equal(await readText(fs, p), "0123ab6789");
      const w = await fs.open(p, "w");
      assert.equal((await w.info()).size, 0);
      await w.close();
      assert.equal((await fs.stat(p)).size, 0);
    });

    t("open follows links like POSIX open (the core lstat-checks first)", async (fs, root) => {
      await writeFile(fs, `${root}/target`, "via link");
      await fs.symlink(`${root}/target`, `${root}/link`);
      assert.equal(await readText(fs, `${root}/link`), "via link");
      await writeFile(fs, `${root}/link`, "rewritten");
      assert.equal(await readText(fs, `${root}/target`), "rewritten");
      assert.equal((await fs.lstat(`${root}/link`)).kind, "symlink");
    });

    t("open of a directory: writing modes fail EISDIR, reading it fails EISDIR", async (fs, root) => {
      await fs.mkdir(`${root}/d`);
      await rejectsFs(fs.open(`${root}/d`, "w"), "EISDIR");
      await rejectsFs(fs.open(`${root}/d`, "r+"), "EISDIR");
      const h = await fs.open(`${root}/d`, "r");
      try {
        assert.equal((await h.info()).kind, "directory");
        await rejectsFs(h.read(new Uint8Array(8), 0), "EISDIR", { op: "read" });
      } finally {
        await h.close();
      }
    });

    t("open rejects an unknown mode with EINVAL", async (fs, root) => {
      await rejectsFs(fs.open(`${root}/f`, "a" as never), "EINVAL");
    });

    // ------------------------------------------------------------- handles
    t("positional writes beyond EOF leave zeros; writes need no cursor", async (fs, root) => {
      const p = `${root}/f`;
      const h = await fs.open(p, "w");
      await h.write(enc.encode("xyz"), 10);
      await h.write(enc.encode("ab"), 0);
      assert.equal((await h.info()).size, 13);
      await h.write(new Uint8Array(0), 100); // empty write does not extend
      assert.equal((await h.info()).size, 13);
      await h.close();
      const bytes = await readBytes(fs, p);
      assert.deepEqual([...bytes], [97, 98, 0, 0, 0, 0, 0, 0, 0, 0, 120, 121, 122]);
    });

    t("write writes every byte of a multi-MiB buffer", async (fs, root) => {
      const data = new Uint8Array(3 * 1024 * 1024 + 17);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
      const h = await fs.open(`${root}/big`, "wx");
      await h.write(data, 5);
      assert.equal((await h.info()).size, data.length + 5);
      await h.close();
      const back = await readBytes(fs, `${root}/big`);
      assert.ok(allZero(back.subarray(0, 5)));
      assert.equal(back.length, data.length + 5);
      let firstDiff = -1;
      for (let i = 0; i < data.length && firstDiff < 0; i++) if (back[i + 5] !== data[i]) firstDiff = i;
      assert.equal(firstDiff, -1, `content differs at ${firstDiff}`);
    });

    t("setLength grows with zeros (a hole) and shrinks", async (fs, root) => {
      const h = await fs.open(`${root}/f`, "w");
      await h.write(enc.encode("data"), 0);
      await h.setLength(100_000);
      assert.equal((await h.info()).size, 100_000);
      await h.close();
      const r = await fs.open(`${root}/f`, "r+");
      try {
        const buf = new Uint8Array(100_000).fill(0xee);
        assert.equal(await r.read(buf, 0), 100_000);
        assert.equal(new TextDecoder().decode(buf.subarray(0, 4)), "data");
        assert.ok(allZero(buf.subarray(4)), "the grown part reads as zeros");
        await r.setLength(2);
        assert.equal((await r.info()).size, 2);
        assert.equal(await r.read(buf, 2), 0);
        await r.setLength(0);
        assert.equal((await fs.stat(`${root}/f`)).size, 0);
      } finally {
        await r.close();
      }
    });

    t("handle mode is enforced: r cannot write or setLength, w cannot read", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "abc");
      const r = await fs.open(`${root}/f`, "r");
      try {
        await rejectsFs(r.write(enc.encode("z"), 0), "EBADF", { op: "write", path: `${root}/f` });
        await rejectsFs(r.setLength(0), ["EINVAL", "EBADF"], { op: "setLength" });
      } finally {
        await r.close();
      }
      const w = await fs.open(`${root}/f`, "w");
      try {
        await rejectsFs(w.read(new Uint8Array(4), 0), "EBADF", { op: "read" });
      } finally {
        await w.close();
      }
      assert.equal(await readText(fs, `${root}/f`), "");
    });

    t("bad positions and lengths fail EINVAL", async (fs, root) => {
      const h = await fs.open(`${root}/f`, "w");
      try {
        await rejectsFs(h.write(enc.encode("x"), -1), "EINVAL");
        await rejectsFs(h.write(enc.encode("x"), 1.5), "EINVAL");
        await rejectsFs(h.setLength(-5), "EINVAL");
        await rejectsFs(h.setLength(Number.NaN), "EINVAL");
      } finally {
        await h.close();
      }
      const r = await fs.open(`${root}/f`, "r");
      try {
        await rejectsFs(r.read(new Uint8Array(1), Number.POSITIVE_INFINITY), "EINVAL");
      } finally {
        await r.close();
      }
    });

    t("info is fstat; sync succeeds; close is idempotent; a closed handle fails EBADF", async (fs, root) => {
      const h = await fs.open(`${root}/f`, "wx");
      await h.write(enc.encode("12345"), 0);
      const info = await h.info();
      assert.equal(info.kind, "file");
      assert.equal(info.size, 5);
      assert.ok(Number.isFinite(info.mtimeMs) && info.mtimeMs > 0);
      if (adapter.onDisk) assert.equal(typeof info.allocatedBytes, "number");
      else assert.equal(info.allocatedBytes, null);
      await h.sync();
      await h.close();
      await h.close();
      await rejectsFs(h.read(new Uint8Array(1), 0), "EBADF", { op: "read" });
      await rejectsFs(h.write(enc.encode("x"), 0), "EBADF", { op: "write" });
      await rejectsFs(h.info(), "EBADF", { op: "info" });
      await rejectsFs(h.setLength(0), "EBADF", { op: "setLength" });
      await rejectsFs(h.sync(), "EBADF", { op: "sync" });
      assert.equal(await readText(fs, `${root}/f`), "12345");
    });

    // ----------------------------------------------------------- stat/lstat
    t("stat and lstat report kind, size, mtime; lstat reports links, stat follows", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "abc");
      await fs.mkdir(`${root}/d`);
      await fs.symlink(`${root}/f`, `${root}/lf`);
      await fs.symlink(`${root}/d`, `${root}/ld`);
      await fs.symlink("f", `${root}/relative`);
      const f = await fs.stat(`${root}/f`);
      assert.equal(f.kind, "file");
      assert.equal(f.size, 3);
      assert.ok(Number.isFinite(f.mtimeMs));
      if (adapter.onDisk) assert.equal(typeof f.allocatedBytes, "number");
      else assert.equal(f.allocatedBytes, null);
      assert.equal((await fs.lstat(`${root}/f`)).kind, "file");
      assert.equal((await fs.stat(`${root}/d`)).kind, "directory");
      assert.equal((await fs.lstat(`${root}/d`)).kind, "directory");
      assert.equal((await fs.lstat(`${root}/lf`)).kind, "symlink");
      assert.equal((await fs.stat(`${root}/lf`)).kind, "file");
      assert.equal((await fs.stat(`${root}/lf`)).size, 3);
      assert.equal((await fs.lstat(`${root}/ld`)).kind, "symlink");
      assert.equal((await fs.stat(`${root}/ld`)).kind, "directory");
      assert.equal((await fs.stat(`${root}/relative`)).kind, "file");
      assert.equal((await fs.lstat(`${root}/relative`)).kind, "symlink");
    });

    t("stat/lstat errors: ENOENT when missing, ENOTDIR below a file, stat of a dangling link", async (fs, root) => {
      await rejectsFs(fs.stat(`${root}/missing`), "ENOENT", { op: "stat", path: `${root}/missing` });
      await rejectsFs(fs.lstat(`${root}/missing`), "ENOENT", { op: "lstat", path: `${root}/missing` });
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.stat(`${root}/f/x`), "ENOTDIR");
      await rejectsFs(fs.lstat(`${root}/f/x`), "ENOTDIR");
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`);
      assert.equal((await fs.lstat(`${root}/dangling`)).kind, "symlink");
      await rejectsFs(fs.stat(`${root}/dangling`), "ENOENT");
      await fs.symlink(`${root}/loop`, `${root}/loop`);
      await rejectsFs(fs.stat(`${root}/loop`), "ELOOP");
    });

    // -------------------------------------------------------------- readdir
    t("readdir lists names only (no . or ..), including links and directories", async (fs, root) => {
      assert.deepEqual(await fs.readdir(root), []);
      await writeFile(fs, `${root}/b`, "");
      await fs.mkdir(`${root}/a`);
      await fs.symlink(`${root}/a`, `${root}/c`);
      await writeFile(fs, `${root}/a/inner`, "");
      assert.deepEqual(await sortedNames(fs, root), ["a", "b", "c"]);
      assert.deepEqual(await fs.readdir(`${root}/c`), ["inner"], "readdir follows a link to a directory");
      await rejectsFs(fs.readdir(`${root}/missing`), "ENOENT", { op: "readdir" });
      await rejectsFs(fs.readdir(`${root}/b`), "ENOTDIR");
    });

    // ---------------------------------------------------------------- mkdir
    t("mkdir creates; EEXIST when anything is there; ENOENT without the parent", async (fs, root) => {
      await fs.mkdir(`${root}/d`);
      assert.equal((await fs.lstat(`${root}/d`)).kind, "directory");
      await rejectsFs(fs.mkdir(`${root}/d`), "EEXIST", { op: "mkdir", path: `${root}/d` });
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.mkdir(`${root}/f`), "EEXIST");
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`);
      await rejectsFs(fs.mkdir(`${root}/dangling`), "EEXIST");
      await rejectsFs(fs.mkdir(`${root}/x/y`), "ENOENT");
      await rejectsFs(fs.mkdir(`${root}/f/y`), "ENOTDIR");
    });

    t("mkdir recursive: creates parents, accepts an existing directory, refuses a file", async (fs, root) => {
      await fs.mkdir(`${root}/a/b/c`, { recursive: true });
      assert.equal((await fs.stat(`${root}/a/b/c`)).kind, "directory");
      await fs.mkdir(`${root}/a/b/c`, { recursive: true });
      await fs.mkdir(`${root}/a`, { recursive: true });
      await writeFile(fs, `${root}/a/f`, "keep");
      await rejectsFs(fs.mkdir(`${root}/a/f`, { recursive: true }), ["EEXIST", "ENOTDIR"], { op: "mkdir" });
      await rejectsFs(fs.mkdir(`${root}/a/f/g/h`, { recursive: true }), "ENOTDIR");
      assert.equal(await readText(fs, `${root}/a/f`), "keep");
      await fs.symlink(`${root}/a`, `${root}/la`);
      await fs.mkdir(`${root}/la`, { recursive: true }); // a link to a directory is a directory
      await fs.mkdir(`${root}/la/b/new`, { recursive: true });
      assert.equal((await fs.lstat(`${root}/a/b/new`)).kind, "directory");
    });

    // --------------------------------------------------------------- rename
    t("rename a file to a new name and over an existing file", async (fs, root) => {
      await writeFile(fs, `${root}/a`, "A");
      await writeFile(fs, `${root}/b`, "B");
      await fs.rename(`${root}/a`, `${root}/c`);
      assert.deepEqual(await sortedNames(fs, root), ["b", "c"]);
      await fs.rename(`${root}/c`, `${root}/b`);
      assert.deepEqual(await sortedNames(fs, root), ["b"]);
      assert.equal(await readText(fs, `${root}/b`), "A");
      await fs.rename(`${root}/b`, `${root}/b`); // onto itself: nothing happens
      assert.equal(await readText(fs, `${root}/b`), "A");
    });

    t("rename keeps an open handle working on the moved file", async (fs, root) => {
      const h = await fs.open(`${root}/a`, "w");
      await fs.rename(`${root}/a`, `${root}/b`);
      await h.write(enc.encode("after"), 0);
      await h.close();
      assert.equal(await readText(fs, `${root}/b`), "after");
    });

    t("rename a directory over an empty directory replaces it", async (fs, root) => {
      await fs.mkdir(`${root}/src`);
      await writeFile(fs, `${root}/src/f`, "F");
      await fs.mkdir(`${root}/dst`);
      await fs.rename(`${root}/src`, `${root}/dst`);
      assert.deepEqual(await sortedNames(fs, root), ["dst"]);
      assert.equal(await readText(fs, `${root}/dst/f`), "F");
    });

    t("rename a directory over a non-empty directory fails ENOTEMPTY/EEXIST and changes nothing", async (fs, root) => {
      await fs.mkdir(`${root}/src`);
      await writeFile(fs, `${root}/src/s`, "S");
      await fs.mkdir(`${root}/dst`);
      await writeFile(fs, `${root}/dst/d`, "D");
      await rejectsFs(fs.rename(`${root}/src`, `${root}/dst`), ["ENOTEMPTY", "EEXIST"], { op: "rename", path: `${root}/src` });
      assert.equal(await readText(fs, `${root}/src/s`), "S");
      assert.equal(await readText(fs, `${root}/dst/d`), "D");
    });

    t("rename a directory over a file or a link fails ENOTDIR and changes nothing", async (fs, root) => {
      await fs.mkdir(`${root}/src`);
      await writeFile(fs, `${root}/file`, "F");
      await fs.mkdir(`${root}/t`);
      await fs.symlink(`${root}/t`, `${root}/link`);
      await rejectsFs(fs.rename(`${root}/src`, `${root}/file`), "ENOTDIR");
      await rejectsFs(fs.rename(`${root}/src`, `${root}/link`), "ENOTDIR");
      assert.equal(await readText(fs, `${root}/file`), "F");
      assert.equal((await fs.lstat(`${root}/link`)).kind, "symlink");
      assert.equal((await fs.lstat(`${root}/src`)).kind, "directory");
      assert.deepEqual(await sortedNames(fs, root), ["file", "link", "src", "t"]);
    });

    t("rename a file over a directory fails EISDIR and changes nothing", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "F");
      await fs.mkdir(`${root}/d`);
      await rejectsFs(fs.rename(`${root}/f`, `${root}/d`), "EISDIR");
      assert.equal(await readText(fs, `${root}/f`), "F");
      assert.equal((await fs.lstat(`${root}/d`)).kind, "directory");
    });

    t("rename a directory into itself fails EINVAL", async (fs, root) => {
      await fs.mkdir(`${root}/d/sub`, { recursive: true });
      await rejectsFs(fs.rename(`${root}/d`, `${root}/d/sub/x`), "EINVAL");
      await rejectsFs(fs.rename(`${root}/d`, `${root}/d/x`), "EINVAL");
      assert.deepEqual(await sortedNames(fs, `${root}/d`), ["sub"]);
      assert.deepEqual(await sortedNames(fs, root), ["d"]);
    });

    t("rename moves a link itself, never its target; a file replaces a link, not its target", async (fs, root) => {
      await writeFile(fs, `${root}/target`, "T");
      await fs.symlink(`${root}/target`, `${root}/link`);
      await fs.rename(`${root}/link`, `${root}/moved`);
      assert.deepEqual(await sortedNames(fs, root), ["moved", "target"]);
      assert.equal((await fs.lstat(`${root}/moved`)).kind, "symlink");
      assert.equal(await readText(fs, `${root}/moved`), "T");
      await fs.mkdir(`${root}/dir`);
      await fs.symlink(`${root}/dir`, `${root}/dirlink`);
      await fs.rename(`${root}/dirlink`, `${root}/dirlink2`);
      assert.equal((await fs.lstat(`${root}/dirlink2`)).kind, "symlink");
      assert.equal((await fs.lstat(`${root}/dir`)).kind, "directory");
      await writeFile(fs, `${root}/new`, "N");
      await fs.rename(`${root}/new`, `${root}/dirlink2`);
      assert.equal((await fs.lstat(`${root}/dirlink2`)).kind, "file");
      assert.equal((await fs.lstat(`${root}/dir`)).kind, "directory");
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`);
      await fs.rename(`${root}/dangling`, `${root}/moved`); // a link over a link
      assert.equal((await fs.lstat(`${root}/moved`)).kind, "symlink");
      await rejectsFs(fs.stat(`${root}/moved`), "ENOENT");
      assert.equal(await readText(fs, `${root}/target`), "T");
      assert.deepEqual(await sortedNames(fs, root), ["dir", "dirlink2", "moved", "target"]);
    });

    t("rename errors: missing source ENOENT, missing target parent ENOENT, file as parent ENOTDIR", async (fs, root) => {
      await rejectsFs(fs.rename(`${root}/missing`, `${root}/x`), "ENOENT", { op: "rename", path: `${root}/missing` });
      await writeFile(fs, `${root}/f`, "F");
      await rejectsFs(fs.rename(`${root}/f`, `${root}/nodir/x`), "ENOENT");
      await writeFile(fs, `${root}/g`, "G");
      await rejectsFs(fs.rename(`${root}/f`, `${root}/g/x`), "ENOTDIR");
      assert.equal(await readText(fs, `${root}/f`), "F");
    });

    // --------------------------------------------------------------- remove
    t("remove a file; ENOENT when missing unless force", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "");
      await fs.remove(`${root}/f`);
      assert.equal(await exists(fs, `${root}/f`), false);
      await rejectsFs(fs.remove(`${root}/f`), "ENOENT", { op: "remove", path: `${root}/f` });
      await fs.remove(`${root}/f`, { force: true });
      await fs.remove(`${root}/missing/deeper`, { force: true });
      await fs.remove(`${root}/missing`, { force: true, recursive: true });
    });

    t("remove a directory needs recursive (EISDIR otherwise) and removes the whole tree", async (fs, root) => {
      await fs.mkdir(`${root}/d/e/f`, { recursive: true });
      await writeFile(fs, `${root}/d/e/file`, "x");
      await fs.mkdir(`${root}/empty`);
      await rejectsFs(fs.remove(`${root}/d`), "EISDIR");
      await rejectsFs(fs.remove(`${root}/empty`, { force: true }), "EISDIR");
      assert.equal(await readText(fs, `${root}/d/e/file`), "x");
      await fs.remove(`${root}/d`, { recursive: true });
      await fs.remove(`${root}/empty`, { recursive: true });
      assert.deepEqual(await fs.readdir(root), []);
    });

    t("remove never follows links: a link (to a dir, dangling) goes, its target stays", async (fs, root) => {
      await fs.mkdir(`${root}/target`);
      await writeFile(fs, `${root}/target/keep`, "K");
      await fs.symlink(`${root}/target`, `${root}/l1`);
      await fs.symlink(`${root}/target`, `${root}/l2`);
      await fs.symlink(`${root}/nowhere`, `${root}/dangling`);
      await fs.remove(`${root}/l1`);
      await fs.remove(`${root}/l2`, { recursive: true, force: true });
      await fs.remove(`${root}/dangling`);
      assert.deepEqual(await sortedNames(fs, root), ["target"]);
      assert.equal(await readText(fs, `${root}/target/keep`), "K");
    });

    t("remove recursive does not follow links inside the tree", async (fs, root) => {
      await fs.mkdir(`${root}/outside`);
      await writeFile(fs, `${root}/outside/keep`, "K");
      await fs.mkdir(`${root}/tree/sub`, { recursive: true });
      await fs.symlink(`${root}/outside`, `${root}/tree/sub/link`);
      await fs.symlink(`${root}/outside/keep`, `${root}/tree/filelink`);
      await fs.remove(`${root}/tree`, { recursive: true });
      assert.deepEqual(await sortedNames(fs, root), ["outside"]);
      assert.equal(await readText(fs, `${root}/outside/keep`), "K");
    });

    t("remove below a file fails ENOTDIR, even with force", async (fs, root) => {
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.remove(`${root}/f/x`), "ENOTDIR");
      await rejectsFs(fs.remove(`${root}/f/x`, { force: true, recursive: true }), "ENOTDIR");
    });

    // ---------------------------------------------------------- makeTempDir
    t("makeTempDir makes 100 fresh, unique, empty directories named parent/prefixXXXXXX", async (fs, root) => {
      const seen = new Set<string>();
      for (let i = 0; i < 100; i++) {
        const dir = await fs.makeTempDir(root, "tmp-");
        assert.ok(!seen.has(dir), `duplicate ${dir}`);
        seen.add(dir);
        assert.match(dir.slice(root.length), /^\/tmp-[A-Za-z0-9]{6,}$/);
        assert.equal((await fs.lstat(dir)).kind, "directory");
        assert.deepEqual(await fs.readdir(dir), []);
      }
      assert.equal((await fs.readdir(root)).length, 100);
    });

    t("makeTempDir errors: missing parent ENOENT, file parent ENOTDIR, bad prefix EINVAL", async (fs, root) => {
      await rejectsFs(fs.makeTempDir(`${root}/missing`, "t-"), "ENOENT", { op: "makeTempDir", path: `${root}/missing` });
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.makeTempDir(`${root}/f`, "t-"), "ENOTDIR");
      await rejectsFs(fs.makeTempDir(root, "a/b"), "EINVAL");
      assert.deepEqual(await fs.readdir(root), ["f"]);
      const plain = await fs.makeTempDir(root, "");
      assert.match(plain.slice(root.length), /^\/[A-Za-z0-9]{6,}$/);
    });

    // -------------------------------------------------------------- symlink
    t("symlink creates a link to any target; EEXIST when the path exists; ENOENT without parent", async (fs, root) => {
      await fs.symlink("does/not/exist", `${root}/l`);
      assert.equal((await fs.lstat(`${root}/l`)).kind, "symlink");
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.symlink(`${root}/f`, `${root}/l`), "EEXIST", { op: "symlink", path: `${root}/l` });
      await rejectsFs(fs.symlink(`${root}/f`, `${root}/f`), "EEXIST");
      await rejectsFs(fs.symlink(`${root}/f`, `${root}/nodir/l`), "ENOENT");
    });

    // -------------------------------------------------------------- syncDir
    t("syncDir succeeds on a directory; ENOENT when missing; ENOTDIR on a file", async (fs, root) => {
      await fs.mkdir(`${root}/d`);
      await fs.rename(`${root}/d`, `${root}/e`);
      await fs.syncDir(root);
      await fs.syncDir(`${root}/e`);
      await rejectsFs(fs.syncDir(`${root}/missing`), "ENOENT", { op: "syncDir" });
      await writeFile(fs, `${root}/f`, "");
      await rejectsFs(fs.syncDir(`${root}/f`), "ENOTDIR");
    });

    // ------------------------------------------------ links in parent paths
    t("every method works through a link to a directory in the parent path", async (fs, root) => {
      await fs.mkdir(`${root}/real`);
      await fs.symlink(`${root}/real`, `${root}/via`);
      await fs.symlink("real", `${root}/rel`);
      const v = `${root}/via`;
      await fs.mkdir(`${v}/d`);
      await fs.mkdir(`${v}/p/q`, { recursive: true });
      await writeFile(fs, `${v}/f`, "F");
      await fs.symlink("f", `${v}/lf`);
      await fs.rename(`${v}/f`, `${root}/rel/g`);
      await fs.rename(`${v}/lf`, `${v}/lg`);
      assert.equal((await fs.lstat(`${v}/lg`)).kind, "symlink");
      await fs.rename(`${v}/lg`, `${v}/lf`);
      const tmp = await fs.makeTempDir(v, "t-");
      assert.ok(tmp.startsWith(`${v}/t-`), tmp);
      await fs.syncDir(`${v}/d`);
      assert.deepEqual(await sortedNames(fs, `${root}/real`), ["d", "g", "lf", "p", tmp.slice(v.length + 1)].sort());
      await rejectsFs(fs.stat(`${v}/lf`), "ENOENT"); // "f" was renamed to "g"
      await fs.remove(`${v}/lf`);
      await fs.remove(`${v}/p`, { recursive: true });
      await fs.remove(tmp, { recursive: true });
      await fs.remove(`${v}/d`, { recursive: true });
      assert.equal(await readText(fs, `${v}/g`), "F");
      assert.deepEqual(await sortedNames(fs, `${root}/real`), ["g"]);
      assert.deepEqual(await sortedNames(fs, root), ["real", "rel", "via"]);
    });
  });

  // ------------------------------------------------------ on-disk only
  if (adapter.onDisk) {
    describe(`FileSystem on disk: ${name}`, () => {
      t("a 1 GiB file made by setLength + a 4 KiB write stays sparse (allocatedBytes < 1 MiB)", async (fs, root) => {
        const p = `${root}/sparse.img`;
        const h = await fs.open(p, "wx");
        try {
          await h.setLength(1 << 30);
          await h.write(new Uint8Array(4096).fill(0x5a), 512 * 1024 * 1024);
          await h.sync();
          const info = await h.info();
          assert.equal(info.size, 1 << 30);
          assert.equal(typeof info.allocatedBytes, "number");
          assert.ok(info.allocatedBytes! >= 4096, `allocated ${info.allocatedBytes}`);
          assert.ok(info.allocatedBytes! < 1024 * 1024, `allocated ${info.allocatedBytes} bytes`);
        } finally {
          await h.close();
        }
        const r = await fs.open(p, "r");
        try {
          const buf = new Uint8Array(8192);
          assert.equal(await r.read(buf, 512 * 1024 * 1024 - 4096), 8192);
          assert.ok(allZero(buf.subarray(0, 4096)));
          assert.ok(buf.subarray(4096).every((b) => b === 0x5a));
          assert.equal(await r.read(buf, (1 << 30) - 100), 100);
          assert.ok(allZero(buf.subarray(0, 100)));
        } finally {
          await r.close();
        }
        assert.equal((await fs.stat(p)).allocatedBytes, (await fs.lstat(p)).allocatedBytes);
      });
    });
  }
}

// ------------------------------------------------------------ error mapping
describe("FileSystem error mapping (memfs adapter with a failing volume)", () => {
  const failing = (err: unknown) =>
    memFs(
      new Proxy({} as never, {
        get: () => () => {
          throw err;
        },
      }),
    );

  test("an error without an errno becomes EIO with the original as cause", async () => {
    const boom = new Error("boom");
    const e = await rejectsFs(failing(boom).readdir("/x"), "EIO", { op: "readdir", path: "/x" });
    assert.equal(e.cause, boom);
    assert.match(e.message, /boom/);
    const weird = Object.assign(new Error("odd"), { code: "SOMETHING_ELSE" });
    assert.equal((await rejectsFs(failing(weird).stat("/x"), "EIO")).cause, weird);
    await rejectsFs(failing("a string").lstat("/x"), "EIO");
  });

  test("err.code is the errno; ERR_FS_* errors use err.info.code", async () => {
    const nospc = Object.assign(new Error("full"), { code: "ENOSPC" });
    const e = await rejectsFs(failing(nospc).mkdir("/x"), "ENOSPC", { op: "mkdir", path: "/x" });
    assert.equal(e.cause, nospc);
    const eisdir = Object.assign(new Error("Path is a directory"), { code: "ERR_FS_EISDIR", info: { code: "EISDIR" } });
    await rejectsFs(failing(eisdir).symlink("/t", "/x"), "EISDIR");
  });

  test("relative paths are refused with EINVAL", async () => {
    await rejectsFs(failing(new Error("unused")).stat("relative/path"), "EINVAL");
  });
});
