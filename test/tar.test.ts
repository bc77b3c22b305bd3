/**
 * The tar codec against archives nobody here wrote (GNU tar, bsdtar, tar-js),
 * against GNU tar as the judge of what our writer produces, and against
 * hand-crafted hostile bytes.
 */

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as nodePath from "node:path";
import fc from "fast-check";

import { ArchiveError, InvalidArgument } from "../src/errors.js";
import { readTar, TarWriter, type SparseSegment, type TarEntry } from "../src/tar/mod.js";
import { concat, noise } from "./helpers/bytes.js";
import { allocatedBlocks, bytesStream, fileStream, logicalSha256, makeSparseFile, memorySink, readAll, removeDir, run, sha256, sha256File, sparseData, tempDir, writeTarBytes, writeTarFile, type ReadEntry } from "./helpers/tar-tools.js";
import {
  base256,
  base256Negative,
  concatBytes,
  craftData,
  craftHeader,
  craftPax,
  craftSparseExtension,
  END,
  paxRecord,
} from "./helpers/tar-craft.js";
import { newTarJs } from "./helpers/tar-js.js";
import { HEAVY } from "./helpers/heavy.js";

const GiB = 2 ** 30;
const enc = new TextEncoder();
let root: string | null = null;
after(() => {
  if (root) removeDir(root);
});

let dirCounter = 0;
function freshDir(tag: string): string {
  root ??= tempDir("tar-test");
  const d = nodePath.join(root, `${tag}-${dirCounter++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function byPath(entries: ReadEntry[], path: string): ReadEntry {
  const e = entries.find((x) => x.path === path);
  assert.ok(e, `entry ${path} missing; have ${entries.map((x) => x.path).join(", ")}`);
  return e;
}

async function expectArchiveError(bytes: Uint8Array, pattern: RegExp, options?: Parameters<typeof readTar>[1]) {
  await assert.rejects(readAll(bytesStream(bytes), options), (e: unknown) => {
    assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Blocks (4096) touched by writes, in bytes: what a hole-detecting tar may store at most. */
function touchedBlockBytes(writes: { offset: number; data: Uint8Array }[], size: number): number {
  const blocks = new Set<number>();
  for (const w of writes) {
    for (let b = Math.floor(w.offset / 4096); b <= Math.floor((w.offset + w.data.length - 1) / 4096); b++) blocks.add(b);
  }
  let n = 0;
  for (const b of blocks) n += Math.min(4096, size - b * 4096);
  return n;
}

describe("reading GNU tar archives", () => {
  test("--format=gnu regular files and directories, read through odd-sized chunks", async () => {
    const dir = freshDir("gnu-regular");
    const src = nodePath.join(dir, "src");
    fs.mkdirSync(nodePath.join(src, "sub", "deeper"), { recursive: true });
    const files: Record<string, Uint8Array> = {
      "empty": new Uint8Array(0),
      "one": enc.encode("x"),
      "sub/b511": noise(511, 1),
      "sub/b512": noise(512, 2),
      "sub/b513": noise(513, 3),
      "sub/deeper/big": noise(300_001, 4),
    };
    for (const [p, d] of Object.entries(files)) fs.writeFileSync(nodePath.join(src, p), d);
    fs.chmodSync(nodePath.join(src, "one"), 0o600);
    const archive = nodePath.join(dir, "a.tar");
    run("tar", ["--format=gnu", "-cf", archive, "-C", src, "."]);

    for (const chunk of [1000, 512, 7 * 1024 + 3]) {
      const entries = await readAll(fileStream(archive, chunk), { label: "a.tar" });
      for (const [p, d] of Object.entries(files)) {
        const e = byPath(entries, `./${p}`);
        assert.equal(e.kind, "file");
        assert.equal(e.typeflag, "0");
        assert.equal(e.size, d.length);
        assert.equal(e.storedSize, d.length);
        assert.equal(e.sparse, false);
        assert.equal(e.sparseMap, null);
        assert.equal(sha256(e.content), sha256(d), p);
      }
      assert.equal(byPath(entries, "./one").mode, 0o600);
      for (const d of ["./", "./sub/", "./sub/deeper/"]) assert.equal(byPath(entries, d).kind, "directory");
      // Header offsets are block-aligned and increasing.
      const offs = entries.map((e) => e.headerOffset);
      assert.deepEqual(offs, [...offs].sort((a, b) => a - b));
      for (const o of offs) assert.equal(o % 512, 0);
    }
  });

  test("--format=gnu --sparse: several holes reproduce the logical content", async () => {
    const dir = freshDir("gnu-sparse");
    const file = nodePath.join(dir, "disk.img");
    const size = 4 * 1024 * 1024 + 123;
    const writes = [
      { offset: 0, data: enc.encode("start") },
      { offset: 100_000, data: noise(1000, 5) },
      { offset: 1024 * 1024 + 7, data: noise(5000, 6) },
      { offset: 3 * 1024 * 1024, data: noise(10, 7) },
      { offset: size - 3, data: enc.encode("end") },
    ];
    makeSparseFile(file, size, writes);
    const archive = nodePath.join(dir, "s.tar");
    run("tar", ["--format=gnu", "--sparse", "-cf", archive, "-C", dir, "disk.img"]);

    let seen = 0;
    for await (const e of readTar(fileStream(archive, 4096 + 17))) {
      seen++;
      assert.equal(e.path, "disk.img");
      assert.equal(e.typeflag, "S");
      assert.equal(e.kind, "file");
      assert.equal(e.sparse, true);
      assert.equal(e.size, size);
      assert.ok(e.sparseMap && e.sparseMap.length >= 4, "several data segments");
      const dataBytes = writes.reduce((n, w) => n + w.data.length, 0);
      assert.ok(e.storedSize >= dataBytes, `stored ${e.storedSize} >= data ${dataBytes}`);
      assert.ok(e.storedSize <= touchedBlockBytes(writes, size), `stored ${e.storedSize} holds only data blocks`);
      assert.equal(await logicalSha256(e), sha256File(file));
    }
    assert.equal(seen, 1);
  });

  test("--format=gnu --sparse with more than 4 segments uses extension headers", async () => {
    const dir = freshDir("gnu-sparse-ext");
    const file = nodePath.join(dir, "many.img");
    const size = 64 * 65536;
    const writes = Array.from({ length: 30 }, (_, i) => ({ offset: i * 2 * 65536 + (i % 3) * 100, data: noise(700 + i, 10 + i) }));
    makeSparseFile(file, size, writes);
    const archive = nodePath.join(dir, "m.tar");
    run("tar", ["--format=gnu", "--sparse", "-cf", archive, "-C", dir, "many.img"]);
    const raw = fs.readFileSync(archive);
    assert.equal(raw[482], 1, "GNU tar marked the header as extended");

    const entries: TarEntry[] = [];
    for await (const e of readTar(fileStream(archive, 999))) {
      entries.push(e);
      assert.equal(e.sparseMap?.length, 30);
      assert.equal(e.size, size);
      assert.equal(e.storedSize, e.sparseMap!.reduce((n, s) => n + s.length, 0));
      assert.equal(await logicalSha256(e), sha256File(file));
    }
    assert.equal(entries.length, 1);
  });

  test("--format=gnu --sparse of a file past 8 GiB (base-256 realsize and offsets)", async () => {
    const dir = freshDir("gnu-sparse-big");
    const file = nodePath.join(dir, "huge.img");
    const size = 9 * GiB + 5;
    const writes = [
      { offset: 0, data: enc.encode("head") },
      { offset: 8.5 * GiB, data: noise(3000, 77) },
      { offset: size - 4, data: enc.encode("tail") },
    ];
    makeSparseFile(file, size, writes);
    const archive = nodePath.join(dir, "h.tar");
    run("tar", ["--format=gnu", "--sparse", "-cf", archive, "-C", dir, "huge.img"]);
    const raw = fs.readFileSync(archive);
    assert.ok(raw.length < 1 << 20, "archive holds only data blocks");
    assert.equal(raw[483]! & 0x80, 0x80, "realsize is base-256");

    for await (const e of readTar(bytesStream(raw, [5000]))) {
      assert.equal(e.size, size);
      const logical = new Map<number, number>(); // offset -> byte, for the written spans
      for await (const { offset, data } of e.segments()) {
        for (let i = 0; i < data.length; i++) if (data[i] !== 0) logical.set(offset + i, data[i]!);
      }
      for (const w of writes) {
        for (let i = 0; i < w.data.length; i++) {
          if (w.data[i] !== 0) assert.equal(logical.get(w.offset + i), w.data[i], `byte at ${w.offset + i}`);
        }
      }
      const nonZeroWritten = writes.reduce((n, w) => n + w.data.filter((x) => x !== 0).length, 0);
      assert.equal(logical.size, nonZeroWritten, "no stray data outside the writes");
      assert.ok(e.sparseMap!.some((s) => s.offset >= 8 * GiB));
    }
  });

  test("--format=ustar long path is split into prefix and name", async () => {
    const dir = freshDir("ustar");
    const rel = `${"d".repeat(60)}/${"e".repeat(60)}/file.txt`;
    fs.mkdirSync(nodePath.join(dir, "src", nodePath.dirname(rel)), { recursive: true });
    fs.writeFileSync(nodePath.join(dir, "src", rel), "ustar body");
    const archive = nodePath.join(dir, "u.tar");
    run("tar", ["--format=ustar", "-cf", archive, "-C", nodePath.join(dir, "src"), rel]);
    const raw = fs.readFileSync(archive);
    assert.notEqual(raw[345], 0, "GNU tar used the prefix field");
    assert.equal(raw.subarray(257, 263).toString("latin1"), "ustar\0");
    const entries = await readAll(bytesStream(raw, [100]));
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.path, rel);
    assert.equal(new TextDecoder().decode(entries[0]!.content), "ustar body");
  });

  test("--format=pax with a path over 100 bytes (UTF-8) and mtime from PAX", async () => {
    const dir = freshDir("pax");
    const rel = `${"ü".repeat(40)}/${"p".repeat(120)}/${"ß".repeat(30)}.txt`;
    fs.mkdirSync(nodePath.join(dir, "src", nodePath.dirname(rel)), { recursive: true });
    fs.writeFileSync(nodePath.join(dir, "src", rel), "pax body");
    const archive = nodePath.join(dir, "p.tar");
    run("tar", ["--format=pax", "-cf", archive, "-C", nodePath.join(dir, "src"), rel]);
    const entries = await readAll(fileStream(archive, 333));
    assert.equal(entries.length, 1);
    const e = entries[0]!;
    assert.ok(enc.encode(rel).length > 100);
    assert.equal(e.path, rel);
    assert.equal(e.kind, "file");
    assert.equal(e.headerOffset, 0, "the entry starts at its PAX header");
    assert.equal(new TextDecoder().decode(e.content), "pax body");
    const st = fs.statSync(nodePath.join(dir, "src", rel));
    assert.ok(Math.abs(e.mtime - st.mtimeMs / 1000) < 1);
  });

  for (const format of ["gnu", "pax", "ustar"]) {
    test(`--format=${format} directories, symlinks, hard links and FIFOs have the right kind`, async () => {
      const dir = freshDir(`kinds-${format}`);
      const src = nodePath.join(dir, "src");
      fs.mkdirSync(nodePath.join(src, "d"), { recursive: true });
      fs.writeFileSync(nodePath.join(src, "d", "f"), "data");
      fs.linkSync(nodePath.join(src, "d", "f"), nodePath.join(src, "d", "hard"));
      fs.symlinkSync("f", nodePath.join(src, "d", "soft"));
      run("mkfifo", [nodePath.join(src, "d", "pipe")]);
      const archive = nodePath.join(dir, "k.tar");
      run("tar", [`--format=${format}`, "-cf", archive, "-C", src, "d"]);
      const entries = await readAll(fileStream(archive));
      assert.equal(byPath(entries, "d/").kind, "directory");
      assert.equal(byPath(entries, "d/").typeflag, "5");
      assert.equal(byPath(entries, "d/soft").kind, "symlink");
      assert.equal(byPath(entries, "d/soft").linkname, "f");
      assert.equal(byPath(entries, "d/pipe").kind, "fifo");
      const f = entries.filter((e) => e.path === "d/f" || e.path === "d/hard");
      assert.deepEqual(f.map((e) => e.kind).sort(), ["file", "hardlink"]);
      const link = f.find((e) => e.kind === "hardlink")!;
      const target = f.find((e) => e.kind === "file")!;
      assert.equal(link.typeflag, "1");
      assert.equal(link.linkname, target.path);
      assert.equal(new TextDecoder().decode(target.content), "data");
    });
  }

  test("--format=gnu long names come as raw 'L' entries for the caller to reject", async () => {
    const dir = freshDir("gnu-long");
    const rel = `${"n".repeat(150)}.txt`;
    fs.mkdirSync(nodePath.join(dir, "src"));
    fs.writeFileSync(nodePath.join(dir, "src", rel), "long");
    const archive = nodePath.join(dir, "l.tar");
    run("tar", ["--format=gnu", "-cf", archive, "-C", nodePath.join(dir, "src"), rel]);
    const entries = await readAll(fileStream(archive));
    assert.equal(entries.length, 2);
    assert.equal(entries[0]!.typeflag, "L");
    assert.equal(entries[0]!.kind, "other");
    assert.equal(new TextDecoder().decode(entries[0]!.content), rel + "\0");
    assert.equal(entries[1]!.path, rel.slice(0, 100), "the 'L' name is not applied");
  });

  for (const version of ["0.0", "0.1", "1.0"]) {
    test(`--format=posix --sparse --sparse-version=${version} (PAX sparse): read with its holes`, async () => {
      const dir = freshDir(`pax-sparse-${version}`);
      const pieces = [{ offset: 4096, data: enc.encode("head") }, { offset: 500_000, data: enc.encode("x") }, { offset: (1 << 20) - 3, data: enc.encode("end") }];
      makeSparseFile(nodePath.join(dir, "s.img"), 1 << 20, pieces);
      makeSparseFile(nodePath.join(dir, "hole-end.img"), 3 << 20, [{ offset: 8192, data: enc.encode("only") }]);
      makeSparseFile(nodePath.join(dir, "all-hole.img"), 2 << 20, []);
      const archive = nodePath.join(dir, "ps.tar");
      run("tar", ["--format=posix", "--sparse", `--sparse-version=${version}`, "-cf", archive, "-C", dir, "s.img", "hole-end.img", "all-hole.img"]);
      const entries = await readAll(fileStream(archive, 700));
      for (const name of ["s.img", "hole-end.img", "all-hole.img"]) {
        const e = byPath(entries, name);
        const want = fs.readFileSync(nodePath.join(dir, name));
        assert.equal(e.kind, "file");
        assert.equal(e.size, want.length, name);
        assert.equal(sha256(e.content), sha256(want), name);
        assert.ok(e.sparse && e.sparseMap !== null, `${name} is read as sparse`);
        assert.ok(e.storedSize < want.length / 4, `${name}: holes are not stored`);
      }
    });
  }
});

describe("reading bsdtar archives", () => {
  const formats = [[], ["--format=gnutar"], ["--format=pax"], ["--format=ustar"]];
  for (const fmt of formats) {
    test(`bsdtar ${fmt.join(" ") || "(default)"}: files, directories, links, FIFOs`, async () => {
      const dir = freshDir("bsdtar");
      const src = nodePath.join(dir, "src");
      // Long enough to need ustar's prefix or a PAX path; GNU format would use 'L' entries, so keep it short there.
      const longDir = fmt[0] === "--format=ustar" ? "x".repeat(90) : fmt[0] === "--format=gnutar" ? "ü".repeat(20) : "ü".repeat(70);
      fs.mkdirSync(nodePath.join(src, "top", longDir), { recursive: true });
      const body = noise(70_000, 99);
      fs.writeFileSync(nodePath.join(src, "top", longDir, "payload.bin"), body);
      fs.writeFileSync(nodePath.join(src, "top", "small"), "small");
      fs.linkSync(nodePath.join(src, "top", "small"), nodePath.join(src, "top", "small-link"));
      fs.symlinkSync("small", nodePath.join(src, "top", "sym"));
      run("mkfifo", [nodePath.join(src, "top", "fifo")]);
      const archive = nodePath.join(dir, "b.tar");
      run("bsdtar", [...fmt, "-cf", archive, "-C", src, "top"]);
      const entries = await readAll(fileStream(archive, 4000));
      assert.equal(byPath(entries, "top/").kind, "directory");
      const payload = byPath(entries, `top/${longDir}/payload.bin`);
      assert.equal(payload.kind, "file");
      assert.equal(sha256(payload.content), sha256(body));
      assert.equal(byPath(entries, "top/sym").kind, "symlink");
      assert.equal(byPath(entries, "top/fifo").kind, "fifo");
      const pair = entries.filter((e) => e.path === "top/small" || e.path === "top/small-link");
      assert.deepEqual(pair.map((e) => e.kind).sort(), ["file", "hardlink"]);
      assert.equal(new TextDecoder().decode(pair.find((e) => e.kind === "file")!.content), "small");
    });
  }

  test("bsdtar's PAX sparse entries (GNU.sparse 1.0) are read with their holes", async () => {
    const dir = freshDir("bsdtar-sparse");
    makeSparseFile(nodePath.join(dir, "s.img"), 4 << 20, [{ offset: 2 << 20, data: enc.encode("mid") }]);
    const archive = nodePath.join(dir, "bs.tar");
    run("bsdtar", ["--format=pax", "--read-sparse", "-cf", archive, "-C", dir, "s.img"]);
    const e = byPath(await readAll(fileStream(archive)), "s.img");
    assert.ok(e.sparse);
    assert.equal(sha256(e.content), sha256(fs.readFileSync(nodePath.join(dir, "s.img"))));
  });
});

describe("reading tar-js archives", () => {
  test("files built in memory by tar-js", async () => {
    const tj = newTarJs();
    const files: [string, Uint8Array][] = [
      ["a.txt", enc.encode("alpha")],
      ["dir/b.bin", noise(5000, 3)],
      ["dir/c", noise(512, 4)],
    ];
    let out: Uint8Array = new Uint8Array(0);
    for (const [p, d] of files) out = tj.append(p, d, { mtime: 1714560000, mode: 0o640 });
    const entries = await readAll(bytesStream(out, [600]));
    assert.deepEqual(entries.map((e) => e.path), files.map(([p]) => p));
    entries.forEach((e, i) => {
      assert.equal(e.kind, "file");
      assert.equal(e.mtime, 1714560000);
      assert.equal(e.mode, 0o640);
      assert.equal(sha256(e.content), sha256(files[i]![1]));
    });
  });
});

describe("writing: GNU tar reads what we write", () => {
  test("regular and sparse files (>4 and >25 segments, all-hole, ending in data) extract byte for byte", async () => {
    const dir = freshDir("write-gnu");
    const archive = nodePath.join(dir, "ours.tar");
    const regular: [string, Uint8Array][] = [
      ["sha256-0123456789abcdef/manifest.json", enc.encode('{"schema":1}')],
      ["sha256-0123456789abcdef/empty", new Uint8Array(0)],
      ["cache/layers/b512.erofs", noise(512, 1)],
      ["cache/layers/big.erofs", noise(3 * 1024 * 1024 + 17, 2)],
      ["n".repeat(100), enc.encode("exactly 100 bytes of name")],
    ];
    const mkSparse = (count: number, realSize: number, seed: number, endsInData = false) => {
      const map: SparseSegment[] = [];
      const step = Math.floor(realSize / (count + 1));
      for (let i = 0; i < count; i++) map.push({ offset: i * step + (i % 5) * 3, length: 1 + ((i * 37) % 900) });
      if (endsInData) map.push({ offset: realSize - 10, length: 10 });
      const logical = new Uint8Array(realSize);
      for (const s of map) logical.set(noise(s.length, seed + s.offset), s.offset);
      return { map, realSize, logical };
    };
    const sparse = {
      "sha256-aaaaaaaaaaaaaaaa/three.ext4": mkSparse(3, 1 << 20, 10),
      "sha256-aaaaaaaaaaaaaaaa/ten.ext4": mkSparse(10, 2 << 20, 20),
      "sha256-aaaaaaaaaaaaaaaa/forty.ext4": mkSparse(40, 8 << 20, 30),
      "sha256-aaaaaaaaaaaaaaaa/sixty-tail.ext4": mkSparse(60, 3 << 20, 40, true),
      "sha256-aaaaaaaaaaaaaaaa/hole.ext4": { map: [], realSize: 5 << 20, logical: new Uint8Array(5 << 20) },
    };
    const mtime = 1714560000;
    await writeTarFile(archive, async (tar) => {
      for (const [p, d] of regular) {
        // Feed in uneven pieces, reusing one buffer to prove the writer copies.
        const pieces = async function* () {
          const scratch = new Uint8Array(7777);
          for (let at = 0; at < d.length; at += scratch.length) {
            const n = Math.min(scratch.length, d.length - at);
            scratch.set(d.subarray(at, at + n));
            yield scratch.subarray(0, n);
            scratch.fill(0xee);
          }
        };
        await tar.addFile(p, d.length, pieces(), { mtime });
      }
      for (const [p, s] of Object.entries(sparse)) {
        await tar.addSparseFile(p, s.realSize, s.map, [sparseData(s.logical, s.map)], { mtime });
      }
    });
    assert.equal(fs.statSync(archive).size % 10240, 0, "padded to a 10 KiB record");

    const listing = run("tar", ["-tvf", archive]);
    for (const [p, d] of regular) assert.match(listing, new RegExp(`\\s${d.length} .* ${p}\\n`));
    for (const [p, s] of Object.entries(sparse)) assert.match(listing, new RegExp(`\\s${s.realSize} .* ${p}\\n`));
    assert.match(listing, /^-rw-r--r-- 0\/0 /m);

    const out = freshDir("write-gnu-out");
    run("tar", ["-xf", archive, "-C", out]);
    for (const [p, d] of regular) {
      const f = nodePath.join(out, p);
      assert.equal(sha256File(f), sha256(d), p);
      const st = fs.statSync(f);
      assert.equal(st.mode & 0o777, 0o644);
      assert.equal(Math.round(st.mtimeMs / 1000), mtime);
    }
    for (const [p, s] of Object.entries(sparse)) {
      const f = nodePath.join(out, p);
      assert.equal(fs.statSync(f).size, s.realSize, `${p} size`);
      assert.equal(sha256File(f), sha256(s.logical), p);
      const allocated = allocatedBlocks(f) * 512;
      assert.ok(allocated <= s.map.length * 8192 + 65536, `${p}: ${allocated} bytes allocated, holes stay holes`);
    }
  });

  test("a sparse file past 8 GiB (base-256 realsize and offsets) extracts sparse", async () => {
    const dir = freshDir("write-huge");
    const archive = nodePath.join(dir, "huge.tar");
    const realSize = 9 * GiB + 4097;
    const map: SparseSegment[] = [
      { offset: 0, length: 4 },
      { offset: 5 * GiB, length: 1000 },
      { offset: 8 * GiB + 1, length: 5000 },
      { offset: realSize - 7, length: 7 },
    ];
    const datas = map.map((s, i) => noise(s.length, 500 + i));
    await writeTarFile(archive, (tar) => tar.addSparseFile("huge.img", realSize, map, datas));
    const raw = fs.readFileSync(archive);
    assert.equal(raw[483]! & 0x80, 0x80, "realsize written as base-256");

    const listing = run("tar", ["-tvf", archive]);
    assert.match(listing, new RegExp(`\\s${realSize} .* huge\\.img\\n`));
    const out = freshDir("write-huge-out");
    run("tar", ["-xf", archive, "-C", out]);
    const f = nodePath.join(out, "huge.img");
    assert.equal(fs.statSync(f).size, realSize);
    assert.ok(allocatedBlocks(f) * 512 < 1 << 20, "extracted sparse");
    const fd = fs.openSync(f, "r");
    try {
      map.forEach((s, i) => {
        const around = new Uint8Array(s.length + 16);
        const start = Math.max(0, s.offset - 8);
        const n = fs.readSync(fd, around, 0, around.length, start);
        const lead = s.offset - start;
        assert.deepEqual(around.subarray(lead, lead + s.length), datas[i], `segment ${i}`);
        for (let k = 0; k < lead; k++) assert.equal(around[k], 0);
        for (let k = lead + s.length; k < n; k++) assert.equal(around[k], 0);
      });
    } finally {
      fs.closeSync(fd);
    }

    // And our reader agrees.
    for await (const e of readTar(bytesStream(raw))) {
      assert.equal(e.size, realSize);
      assertAlignedCover(e.sparseMap!, map, realSize);
      const expected = new Map<number, number>();
      map.forEach((s, i) => datas[i]!.forEach((b, k) => expected.set(s.offset + k, b)));
      let checked = 0;
      for await (const { offset, data } of e.segments()) {
        data.forEach((b, k) => {
          assert.equal(b, expected.get(offset + k) ?? 0, `byte ${offset + k}`);
          if (expected.has(offset + k)) checked++;
        });
      }
      assert.equal(checked, expected.size);
    }
  });

  test("GNU tar extracts random sparse maps we write (property)", async () => {
    const dir = freshDir("write-prop");
    let run_ = 0;
    await fc.assert(
      fc.asyncProperty(sparseCase(), async ({ map, realSize, logical }) => {
        const archive = nodePath.join(dir, `p${run_}.tar`);
        const out = nodePath.join(dir, `out${run_++}`);
        fs.mkdirSync(out);
        await writeTarFile(archive, (tar) => tar.addSparseFile("f.img", realSize, map, [sparseData(logical, map)]));
        run("tar", ["-xf", archive, "-C", out]);
        const f = nodePath.join(out, "f.img");
        assert.equal(fs.statSync(f).size, realSize);
        assert.equal(sha256File(f), sha256(logical));
      }),
      { numRuns: 15 },
    );
  });
});

/**
 * A map read back from our writer: 512-aligned (every segment but the last a
 * whole number of blocks, every offset a block boundary), within `realSize`,
 * and covering every segment of the map given to the writer.
 */
function assertAlignedCover(got: readonly SparseSegment[], given: readonly SparseSegment[], realSize: number): void {
  got.forEach((s, i) => {
    assert.equal(s.offset % 512, 0, `segment ${i} offset`);
    if (i < got.length - 1) assert.equal(s.length % 512, 0, `segment ${i} length`);
    assert.ok(s.length > 0 && s.offset + s.length <= realSize);
    if (i > 0) assert.ok(s.offset > got[i - 1]!.offset + got[i - 1]!.length, "sorted, merged when touching");
  });
  for (const g of given) {
    assert.ok(got.some((s) => s.offset <= g.offset && g.offset + g.length <= s.offset + s.length), `covers ${g.offset}+${g.length}`);
  }
}

/** Random sparse files: map, logical size and content. */
function sparseCase() {
  return fc
    .record({
      parts: fc.array(fc.tuple(fc.nat(3000), fc.integer({ min: 1, max: 2000 })), { maxLength: 40 }),
      tail: fc.nat(3000),
      seed: fc.integer({ min: 1, max: 1 << 30 }),
    })
    .map(({ parts, tail, seed }) => {
      const map: SparseSegment[] = [];
      let end = 0;
      for (const [gap, length] of parts) {
        map.push({ offset: end + gap, length });
        end += gap + length;
      }
      const realSize = end + tail;
      const logical = new Uint8Array(realSize);
      for (const s of map) logical.set(noise(s.length, seed + s.offset), s.offset);
      return { map, realSize, logical };
    });
}

describe("round trip: our writer, our reader", () => {
  test("random sparse maps and chunkings survive (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        sparseCase(),
        fc.integer({ min: 512, max: 5000 }),
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 5 }),
        async ({ map, realSize, logical }, chunkSize, readChunks) => {
          const data = sparseData(logical, map);
          const bytes = await writeTarBytes(async (tar) => {
            await tar.addFile("before", 3, [enc.encode("abc")]);
            // Data handed over in pieces that do not follow segment boundaries.
            const pieces: Uint8Array[] = [];
            for (let at = 0; at < data.length; at += 777) pieces.push(data.subarray(at, at + 777));
            await tar.addSparseFile("s.img", realSize, map, pieces, { mtime: 42 });
            await tar.addFile("after", 0, []);
          }, chunkSize);
          const entries = await readAll(bytesStream(bytes, readChunks));
          assert.deepEqual(entries.map((e) => e.path), ["before", "s.img", "after"]);
          const s = entries[1]!;
          assert.equal(s.sparse, true);
          assert.equal(s.size, realSize);
          assert.equal(s.storedSize, s.sparseMap!.reduce((n, x) => n + x.length, 0));
          assert.equal(s.mtime, 42);
          assertAlignedCover(s.sparseMap!, map, realSize);
          assert.equal(sha256(s.content), sha256(logical));
          assert.equal(new TextDecoder().decode(entries[0]!.content), "abc");
        },
      ),
      { numRuns: 60 },
    );
  });

  test("output is coalesced into chunkSize pieces", async () => {
    const sink = memorySink();
    const tar = new TarWriter(sink.writer, { chunkSize: 1 << 20 });
    const big = noise(3 * (1 << 20) + 100, 8);
    const small = Array.from({ length: 1000 }, (_, i) => noise(10, i));
    await tar.addFile("big", big.length, (function* () {
      for (let at = 0; at < big.length; at += 1000) yield big.subarray(at, at + 1000);
    })());
    for (let i = 0; i < small.length; i++) await tar.addFile(`s${i}`, 10, [small[i]!]);
    await tar.finish();
    await sink.writer.close();
    const sizes = sink.chunks.map((c) => c.length);
    assert.ok(sizes.length <= 5, `few chunks: ${sizes.join(",")}`);
    for (const n of sizes.slice(0, -1)) assert.equal(n, 1 << 20);
    assert.equal(tar.bytesWritten, sink.bytes().length);
    const entries = await readAll(bytesStream(sink.bytes(), [65536]));
    assert.equal(entries.length, 1001);
    assert.equal(sha256(entries[0]!.content), sha256(big));
  });

  test("unread data is skipped, partly read data too, and old entries refuse to read", async () => {
    const bytes = await writeTarBytes(async (tar) => {
      await tar.addFile("a", 5000, [noise(5000, 1)]);
      await tar.addFile("b", 3000, [noise(3000, 2)]);
      await tar.addSparseFile("c", 100_000, [{ offset: 10, length: 600 }, { offset: 50_000, length: 600 }], [noise(1200, 3)]);
      await tar.addFile("d", 4, [enc.encode("last")]);
    });
    const seen: string[] = [];
    let old: TarEntry | null = null;
    for await (const e of readTar(bytesStream(bytes, [300]))) {
      seen.push(e.path);
      if (e.path === "b" || e.path === "c") {
        for await (const seg of e.segments()) {
          assert.ok(seg.data.length > 0);
          break;
        }
        assert.throws(() => e.segments(), ArchiveError);
      }
      if (e.path === "a") old = e;
      if (e.path === "d") {
        const parts: Uint8Array[] = [];
        for await (const seg of e.segments()) parts.push(seg.data.slice());
        assert.equal(new TextDecoder().decode(concat(parts)), "last");
        assert.throws(() => old!.segments(), /moved past/);
      }
    }
    assert.deepEqual(seen, ["a", "b", "c", "d"]);
  });

  test("reading stops at the end marker and cancels the source; breaking out cancels too", async () => {
    const archive = await writeTarBytes((tar) => tar.addFile("x", 1, [enc.encode("x")]));
    const endAt = 512 * 2 + 1024; // header, data block, two zero blocks
    const garbageSource = () => {
      const state = { cancelled: false, pulls: 0 };
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          state.pulls++;
          if (!sent) {
            sent = true;
            c.enqueue(archive.slice(0, endAt));
          } else c.enqueue(noise(4096, state.pulls)); // endless junk after the marker
        },
        cancel() {
          state.cancelled = true;
        },
      });
      return { stream, state };
    };
    const a = garbageSource();
    const entries = await readAll(a.stream);
    assert.deepEqual(entries.map((e) => e.path), ["x"]);
    assert.equal(a.state.cancelled, true);

    const b = garbageSource();
    for await (const e of readTar(b.stream)) {
      assert.equal(e.path, "x");
      break;
    }
    assert.equal(b.state.cancelled, true);
  });

  test("sizes past 8 GiB are written in GNU base-256", async () => {
    const sink = memorySink();
    const tar = new TarWriter(sink.writer, { chunkSize: 512 }); // the header goes out on its own
    const size = 8 * GiB + 1000;
    await assert.rejects(tar.addFile("big", size, [new Uint8Array(10)]), /data ended after 10 bytes/);
    const header = sink.chunks[0]!;
    assert.equal(header[124], 0x80);
    let v = 0n;
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(header[i]!);
    assert.equal(v, BigInt(size));
    assert.equal(new TextDecoder().decode(header.subarray(257, 265)), "ustar  \0");
  });

  test("writer refuses long names, wrong lengths and bad maps, and stays failed", async () => {
    const sink = memorySink();
    const tar = new TarWriter(sink.writer);
    await assert.rejects(tar.addFile("n".repeat(101), 0, []), (e: unknown) => e instanceof ArchiveError && /longer than the 100/.test(e.message));
    await assert.rejects(tar.addFile("x", 1, []), ArchiveError); // still failed from before
    const fresh = () => new TarWriter(memorySink().writer);
    await assert.rejects(fresh().addFile("ü".repeat(51), 0, []), /102 bytes/);
    await assert.rejects(fresh().addFile("short", 3, [enc.encode("ab")]), /ended after 2 bytes, the declared size is 3/);
    await assert.rejects(fresh().addFile("long", 1, [enc.encode("ab")]), /longer than the declared size/);
    await assert.rejects(fresh().addSparseFile("o", 100, [{ offset: 0, length: 10 }, { offset: 5, length: 10 }], []), /overlaps/);
    await assert.rejects(fresh().addSparseFile("b", 100, [{ offset: 95, length: 10 }], []), /beyond the logical size 100/);
    await assert.rejects(fresh().addSparseFile("d", 100, [{ offset: 0, length: 10 }], [new Uint8Array(9)]), /ended after 9 bytes/);
    await assert.rejects(fresh().addFile("m", 0, [], { mode: 0o10000 }), InvalidArgument);
    await assert.rejects(fresh().addFile("t", 0, [], { mtime: -1 }), InvalidArgument);
    const w = fresh();
    await w.finish();
    await assert.rejects(w.addFile("late", 0, []), /finish\(\) was already called/);
  });
});

describe("hostile bytes", () => {
  const small = () =>
    concatBytes(
      craftHeader({ name: "a", size: 700 }),
      craftData(noise(700, 1)),
      craftHeader({ name: "b", size: 10 }),
      craftData(noise(10, 2)),
      END,
    );

  test("the crafted baseline archive reads", async () => {
    const entries = await readAll(bytesStream(small()));
    assert.deepEqual(entries.map((e) => [e.path, e.size]), [["a", 700], ["b", 10]]);
  });

  test("bad header checksum is an error, never an end of archive", async () => {
    const bytes = small();
    bytes[1536]! ^= 0x01; // the name of the second header ("b" -> "c")
    await expectArchiveError(bytes, /offset 1536: header checksum mismatch/);
    await expectArchiveError(concatBytes(craftHeader({ name: "a", checksum: "bad" }), END), /checksum mismatch/);
    await expectArchiveError(concatBytes(craftHeader({ name: "a", checksum: "        " }), END), /checksum field: numeric field is blank/);
  });

  test("signed checksums are accepted, as GNU tar does", async () => {
    const name = enc.encode("naïve-é");
    const entries = await readAll(bytesStream(concatBytes(craftHeader({ name, checksum: "signed" }), END)));
    assert.equal(entries[0]!.path, "naïve-é");
  });

  test("truncation at every block boundary and mid-block is an error", async () => {
    const bytes = small();
    const endOfMarker = bytes.length; // after the second zero block
    let cuts = 0;
    for (let cut = 0; cut < endOfMarker; cut += 512) {
      for (const at of [cut, cut + 100, cut + 511]) {
        if (at >= endOfMarker) continue;
        cuts++;
        await assert.rejects(readAll(bytesStream(bytes.subarray(0, at), [97])), (e: unknown) => {
          assert.ok(e instanceof ArchiveError, `cut at ${at}: ${String(e)}`);
          assert.match(e.message, /archive truncated/, `cut at ${at}`);
          return true;
        });
      }
    }
    assert.ok(cuts >= 18);
    await readAll(bytesStream(bytes)); // and the whole thing is fine
  });

  test("each kind of truncation names what was cut", async () => {
    const bytes = small();
    await expectArchiveError(bytes.subarray(0, 0), /ends at offset 0 without the end-of-archive marker/);
    await expectArchiveError(bytes.subarray(0, 300), /inside the header at offset 0 \(300 of 512 bytes\)/);
    await expectArchiveError(bytes.subarray(0, 800), /inside the data of entry "a"/);
    await expectArchiveError(bytes.subarray(0, 1212 + 100), /inside the padding of entry "a"/);
    await expectArchiveError(bytes.subarray(0, bytes.length - 1024), /ends at offset 2560 without the end-of-archive marker/);
    await expectArchiveError(bytes.subarray(0, bytes.length - 512), /after one zero block at offset 2560/);
    await expectArchiveError(bytes.subarray(0, bytes.length - 100), /inside the second end-of-archive block/);
  });

  test("a lone zero block followed by more headers is an error", async () => {
    const bytes = concatBytes(craftHeader({ name: "a" }), new Uint8Array(512), craftHeader({ name: "hidden" }), END);
    await expectArchiveError(bytes, /lone zero block/);
  });

  test("numeric fields: base-256 positive works, negative and oversize do not, garbage is refused", async () => {
    const ok = concatBytes(craftHeader({ name: "b256", size: base256(600n) }), craftData(noise(600, 3)), END);
    const entries = await readAll(bytesStream(ok));
    assert.equal(entries[0]!.size, 600);
    await expectArchiveError(concatBytes(craftHeader({ name: "neg", size: base256Negative(-1n) }), END), /size field: negative base-256/);
    await expectArchiveError(concatBytes(craftHeader({ name: "neg2", size: base256Negative(-4096n) }), END), /negative base-256/);
    await expectArchiveError(concatBytes(craftHeader({ name: "huge", size: base256(2n ** 53n) }), END), /exceeds 2\^53-1/);
    await expectArchiveError(
      concatBytes(craftHeader({ name: "junk", size: enc.encode("0000000001x\0") }), END),
      /size field: numeric field holds/,
    );
    await expectArchiveError(
      concatBytes(craftHeader({ name: "m", edit: (b) => b.set(enc.encode("0006a4\0"), 100) }), END),
      /"m".*mode field/,
    );
  });

  test("unknown magic is refused; v7 headers read", async () => {
    await expectArchiveError(concatBytes(craftHeader({ name: "x", magic: "bogus" }), END), /unrecognized magic/);
    const v7 = await readAll(bytesStream(concatBytes(craftHeader({ name: "old", magic: "v7", size: 2 }), craftData("hi"), END)));
    assert.equal(v7[0]!.path, "old");
  });

  test("ustar prefix is used only with POSIX magic", async () => {
    const posix = await readAll(bytesStream(concatBytes(craftHeader({ name: "n", magic: "ustar", prefix: "p/q" }), END)));
    assert.equal(posix[0]!.path, "p/q/n");
    const gnu = await readAll(bytesStream(concatBytes(craftHeader({ name: "n", magic: "gnu", prefix: "p/q" }), END)));
    assert.equal(gnu[0]!.path, "n");
  });

  test("invalid UTF-8 names are refused", async () => {
    const name = new Uint8Array([0x61, 0xff, 0x62]);
    await expectArchiveError(concatBytes(craftHeader({ name }), END), /"a\uFFFDb".*name is not valid UTF-8/);
    const link = new Uint8Array([0xc3, 0x28]);
    await expectArchiveError(
      concatBytes(craftHeader({ name: "l", typeflag: "2", edit: (b) => b.set(link, 157) }), END),
      /link name .* is not valid UTF-8/,
    );
    const pax = concatBytes(craftPax(concatBytes(enc.encode("12 path=a"), new Uint8Array([0xff]), enc.encode("b\n"))), craftHeader({ name: "x" }), END);
    await expectArchiveError(pax, /PAX path .* is not valid UTF-8/);
  });

  test("data on directories, links and devices is refused", async () => {
    for (const t of ["5", "1", "2", "3", "4", "6"]) {
      await expectArchiveError(concatBytes(craftHeader({ name: "d", typeflag: t, size: 5 }), craftData("hello"), END), /must not carry data/);
    }
  });

  test("PAX: overrides apply to the next entry only", async () => {
    const recs = paxRecord("path", "p".repeat(150)) + paxRecord("size", "3") + paxRecord("mtime", "1700000000.5") + paxRecord("SCHILY.xattr.user.x", "ignored");
    const bytes = concatBytes(craftPax(recs), craftHeader({ name: "short", size: 0 }), craftData("abc"), craftHeader({ name: "next", size: 1 }), craftData("z"), END);
    const entries = await readAll(bytesStream(bytes, [100]));
    assert.deepEqual(entries.map((e) => [e.path, e.size, e.headerOffset]), [["p".repeat(150), 3, 0], ["next", 1, 2048]]);
    assert.equal(entries[0]!.mtime, 1700000000.5);
    assert.equal(new TextDecoder().decode(entries[0]!.content), "abc");
    assert.equal(entries[1]!.mtime, 0);
  });

  test("PAX: malformed records, oversize headers, sparse keys and dangling headers are refused", async () => {
    const after = (recs: string | Uint8Array) => concatBytes(craftPax(recs), craftHeader({ name: "f" }), END);
    await expectArchiveError(after("99 path=abc\n"), /PAX record at byte 0: length 99 runs past the end/);
    await expectArchiveError(after("5 path=abc\n"), /PAX record at byte 0: (length 5 is too short|does not end with a newline)/);
    await expectArchiveError(after("12 path=abcd"), /does not end with a newline|runs past/);
    await expectArchiveError(after("x path=abc\n"), /does not start with a decimal length/);
    await expectArchiveError(after("11 pathabc\n"), /is not "key=value"/);
    await expectArchiveError(after(paxRecord("size", "-1")), /PAX size "-1"/);
    await expectArchiveError(after(paxRecord("size", "9007199254740992")), /PAX size/);
    await expectArchiveError(after(paxRecord("mtime", "soon")), /PAX mtime/);
    await expectArchiveError(after(paxRecord("GNU.sparse.map", "0,10")), /PAX sparse entry without its real size/);
    await expectArchiveError(after(paxRecord("path", "a") + "\0\0\0"), /PAX record at byte 9: does not start with a decimal length/);
    const big = paxRecord("comment", "c".repeat(2000));
    await expectArchiveError(after(big), /PAX extended header of \d+ bytes exceeds the limit of 1024/, { maxPaxBytes: 1024 });
    await readAll(bytesStream(after(big))); // fine under the default limit
    const overDefault = concatBytes(craftHeader({ name: "PaxHeader/f", typeflag: "x", size: (1 << 20) + 1 }), END);
    await expectArchiveError(overDefault, /exceeds the limit of 1048576/);
    await expectArchiveError(concatBytes(craftPax(paxRecord("path", "a")), END), /PAX extended header is followed by the end of the archive/);
    await expectArchiveError(concatBytes(craftPax(paxRecord("path", "a")), craftPax(paxRecord("path", "b")), craftHeader({}), END), /a PAX extended header follows the PAX extended header at offset 0/);
  });

  test("global headers with only ignorable records are skipped; 'L' and 'K' entries are yielded raw", async () => {
    const ignorable = paxRecord("comment", "made by hand") + paxRecord("mtime", "1700000000") + paxRecord("SCHILY.xattr.user.a", "b") + paxRecord("LIBARCHIVE.creationtime", "1");
    const g = craftData(ignorable);
    const bytes = concatBytes(
      craftHeader({ name: "pax_global_header", typeflag: "g", size: enc.encode(ignorable).length }),
      g,
      craftHeader({ name: "././@LongLink", typeflag: "K", size: 4 }),
      craftData("tgt\0"),
      craftHeader({ name: "f" }),
      END,
    );
    const entries = await readAll(bytesStream(bytes));
    assert.deepEqual(entries.map((e) => [e.typeflag, e.kind, e.path]), [["K", "other", "././@LongLink"], ["0", "file", "f"]]);
  });

  test("a global header that would change every entry (path, size, linkpath, hdrcharset=BINARY) is refused saying so", async () => {
    for (const rec of [paxRecord("path", "evil/"), paxRecord("size", "5"), paxRecord("linkpath", "x"), paxRecord("hdrcharset", "BINARY"), paxRecord("GNU.sparse.map", "0,1")]) {
      const bytes = concatBytes(craftHeader({ name: "pax_global_header", typeflag: "g", size: enc.encode(rec).length }), craftData(rec), craftHeader({ name: "f" }), END);
      await expectArchiveError(bytes, /a global PAX header carrying record "[^"]+" would apply to every entry after it and is refused; only ignorable records/);
    }
  });

  describe("old-GNU sparse maps", () => {
    const sparse = (map: [number, number][], realSize: number, stored: number, extra: Uint8Array[] = [], isExtended = false) =>
      concatBytes(craftHeader({ name: "s", typeflag: "S", size: stored, sparse: { map, realSize, isExtended } }), ...extra, craftData(new Uint8Array(stored)), END);

    const first: [number, number][] = [[0, 512], [1024, 512], [2048, 512], [3072, 512]];
    const ext21: [number, number][] = Array.from({ length: 21 }, (_, i) => [4096 + i * 1024, 512] as [number, number]);

    test("a crafted map with extension blocks reads", async () => {
      const ext2: [number, number][] = [[30000, 100], [40000, 0]];
      const bytes = sparse(first, 40000, 25 * 512 + 100, [craftSparseExtension(ext21, true), craftSparseExtension(ext2, false)], true);
      const entries = await readAll(bytesStream(bytes, [200]));
      assert.equal(entries[0]!.sparseMap!.length, 26);
      assert.deepEqual(entries[0]!.sparseMap![25], { offset: 30000, length: 100 });
      assert.equal(entries[0]!.size, 40000);
    });

    test("segments whose data does not start on a block boundary are refused", async () => {
      await expectArchiveError(sparse([[0, 10], [1000, 10]], 2000, 20), /segment 1 \(offset 1000, length 10\) starts at stored byte 10, not on a 512-byte boundary/);
      await readAll(bytesStream(sparse([[0, 512], [1000, 10]], 2000, 522)));
    });

    test("overlapping, out-of-order, beyond realsize, sum mismatch", async () => {
      await expectArchiveError(sparse([[0, 10], [5, 10]], 100, 20), /"s".*segment 1 \(offset 5, length 10\) overlaps/);
      await expectArchiveError(sparse([[50, 10], [0, 10]], 100, 20), /segment 1 .* overlaps or precedes/);
      await expectArchiveError(sparse([[0, 10], [95, 10]], 100, 20), /segment 1 .* extends beyond the logical size 100/);
      await expectArchiveError(sparse([[0, 10], [200, 0]], 100, 10), /extends beyond the logical size/);
      await expectArchiveError(sparse([[0, 10], [50, 10]], 100, 30), /covers 20 bytes but the entry stores 30/);
    });

    test("extension flag after the end of the map, truncated extension, segment bound", async () => {
      await expectArchiveError(sparse([[0, 10]], 100, 10, [], true), /marked as extended/);
      const header = craftHeader({ name: "s", typeflag: "S", size: 40, sparse: { map: [[0, 10], [20, 10], [40, 10], [60, 10]], realSize: 100, isExtended: true } });
      await expectArchiveError(concatBytes(header, new Uint8Array(100)), /archive truncated: input ends inside the sparse extension header/);
      const many = sparse(first, 40000, 26 * 512, [craftSparseExtension(ext21, true), craftSparseExtension([[30000, 512]], false)], true);
      await expectArchiveError(many, /more than 10 segments/, { maxSparseSegments: 10 });
      await readAll(bytesStream(many));
    });

    test("sparse entries need the GNU magic; truncation inside sparse data is caught", async () => {
      const posix = concatBytes(craftHeader({ name: "s", typeflag: "S", magic: "ustar", sparse: { map: [], realSize: 10 } }), END);
      await expectArchiveError(posix, /without the GNU magic/);
      const bytes = sparse([[0, 512], [1024, 300]], 2000, 812);
      await expectArchiveError(bytes.subarray(0, 512 + 400), /inside the data of entry "s"/);
    });
  });

  test("the label prefixes messages", async () => {
    await expectArchiveError(new Uint8Array(0), /^bundle\.tar: archive truncated/, { label: "bundle.tar" });
  });
});

{
  describe("heavy", () => {
    test("GNU tar lists our > 8 GiB regular entry (base-256 size)", { skip: HEAVY }, async () => {
      const { spawn } = await import("node:child_process");
      const child = spawn("tar", ["-tvf", "-"], { stdio: ["pipe", "pipe", "inherit"] });
      let listing = "";
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (d: string) => (listing += d));
      const exited = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
      const stdin = child.stdin!;
      const ws = new WritableStream<Uint8Array>({
        write: (chunk) => new Promise<void>((res, rej) => stdin.write(chunk, (err) => (err ? rej(err) : res()))),
        close: () => new Promise<void>((res) => stdin.end(res)),
      });
      const writer = ws.getWriter();
      const tar = new TarWriter(writer);
      const size = 8 * GiB + 1000;
      const chunk = noise(1 << 20, 9);
      await tar.addFile("big.bin", size, (function* () {
        for (let at = 0; at < size; at += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, size - at));
      })());
      await tar.addFile("after", 5, [enc.encode("after")]);
      await tar.finish();
      await writer.close();
      assert.equal(await exited, 0);
      assert.match(listing, new RegExp(`\\s${size} .* big\\.bin\\n`));
      assert.match(listing, /\s5 .* after\n/);
    });

    test("GNU tar's > 8 GiB regular entry (base-256 size) streams through the reader", { skip: HEAVY }, async () => {
      const dir = freshDir("heavy");
      const file = nodePath.join(dir, "big.img");
      const size = 8 * GiB + 4096 + 3;
      makeSparseFile(file, size, [{ offset: size - 3, data: enc.encode("end") }]);
      const { spawn } = await import("node:child_process");
      const child = spawn("tar", ["--format=gnu", "-cf", "-", "-C", dir, "big.img"], { stdio: ["ignore", "pipe", "inherit"] });
      const stdout = child.stdout!;
      let open = true;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          stdout.on("data", (d: Uint8Array) => {
            if (!open) return;
            c.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
            if ((c.desiredSize ?? 1) <= 0) stdout.pause();
          });
          stdout.on("end", () => {
            if (open) c.close();
            open = false;
          });
          stdout.on("error", (e) => {
            if (open) c.error(e);
            open = false;
          });
        },
        pull() {
          stdout.resume();
        },
        cancel() {
          open = false;
          child.kill();
        },
      }, { highWaterMark: 16 });
      let tail = new Uint8Array(0);
      let total = 0;
      for await (const e of readTar(stream)) {
        assert.equal(e.size, size);
        assert.equal(e.sparse, false);
        for await (const { offset, data } of e.segments()) {
          assert.equal(offset, total);
          total += data.length;
          if (total > size - 16) tail = concat([tail, data.slice()]).slice(-16);
        }
      }
      assert.equal(total, size);
      assert.equal(new TextDecoder().decode(tail.slice(-3)), "end");
      removeDir(dir);
    });
  });
}
