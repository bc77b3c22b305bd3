/**
 * Holes cost nothing: the zero scan (wasm/zeroscan.ts) against a byte loop,
 * the node:fs adapter's data ranges (SEEK_DATA/SEEK_HOLE through FFI on Deno
 * and Bun) against the file's known layout, and a scan that skips reported
 * holes against one that reads every byte — and against `sha256sum`.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import "./helpers/node-host.js"; // the host gives the node:fs adapter its FFI (lseek) on Deno and Bun
import { nodeFs } from "../src/fs/node.js";
import type { FileHandle, FileSystem } from "../src/fs/types.js";
import { merkleRootOfFile } from "../src/merkle.js";
import { dataRuns, scanFile } from "../src/sparse.js";
import { ZeroScanner } from "../wasm/mod.js";

const T = { timeout: 60_000 };
const MiB = 1 << 20;
const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "deno" : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "node";

/** The byte loop the scan must agree with. */
function slowZero(data: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (data[i] !== 0) return false;
  return true;
}

/** A file system whose handles count the bytes read and, with `ranges: false`, hide the data-range query. */
function counting(fs: FileSystem, ranges: boolean): { fs: FileSystem; read: () => number } {
  let read = 0;
  const wrap = (h: FileHandle): FileHandle => ({
    read: async (into, position) => {
      const n = await h.read(into, position);
      read += n;
      return n;
    },
    write: (d, p) => h.write(d, p),
    setLength: (n) => h.setLength(n),
    info: () => h.info(),
    sync: () => h.sync(),
    close: () => h.close(),
    ...(ranges && h.dataRanges ? { dataRanges: (from: number, to: number) => h.dataRanges!(from, to) } : {}),
  });
  return { fs: { ...fs, label: fs.label, open: async (p, m) => wrap(await fs.open(p, m)) } as FileSystem, read: () => read };
}

describe("zero scan", () => {
  test("rule: the SIMD zero scan agrees with a byte loop wherever the one non-zero byte is, at every alignment", T, () => {
    const s = new ZeroScanner(1, 4096 + 300);
    const buf = s.buffers[0]!;
    for (const at of [0, 1, 15, 16, 127, 128, 129, 255, 256, 1000, 4095, 4096, 4395]) {
      buf[at] = 0x80;
      for (const [from, to] of [[0, buf.length], [1, 4096], [at, at + 1], [at + 1, buf.length], [0, at], [3, 131], [at > 5 ? at - 5 : 0, at + 7]] as const) {
        const sub = buf.subarray(0, buf.length);
        assert.equal(s.isZero(sub, from, Math.min(to, buf.length)), slowZero(buf, from, Math.min(to, buf.length)), `byte at ${at}, range [${from}, ${to})`);
      }
      buf[at] = 0;
    }
  });

  test("rule: data runs of bytes outside the scanner's memory (copied through its scratch) join across 1 MiB pieces", T, () => {
    const data = new Uint8Array(3 * MiB + 5000);
    data[MiB - 1] = 1; // the last byte of the first piece and
    data[MiB] = 1; // the first of the next: one run of two blocks
    data[3 * MiB + 4999] = 9;
    assert.deepEqual(dataRuns(data, 0), [{ offset: MiB - 4096, length: 8192 }, { offset: 3 * MiB + 4096, length: 904 }]);
    assert.deepEqual(dataRuns(data.subarray(0, MiB), 512), [{ offset: MiB, length: 512 }]); // the block [MiB, MiB + 4096), cut at the chunk's end
  });
});

describe("data ranges of the node:fs adapter", () => {
  test(`rule: SEEK_DATA/SEEK_HOLE report the written extents on Deno and Bun; Node has no FFI and answers null (${runtime})`, T, async () => {
    const dir = mkdtempSync(join(tmpdir(), "snapbundle-holes-"));
    try {
      const path = join(dir, "upper.ext4");
      const fd = openSync(path, "w");
      writeSync(fd, new Uint8Array(8192).fill(3), 0, 8192, MiB);
      writeSync(fd, new Uint8Array(4096).fill(4), 0, 4096, 5 * MiB);
      ftruncateSync(fd, 64 * MiB);
      closeSync(fd);
      const h = await nodeFs().open(path, "r");
      try {
        const ranges = await h.dataRanges!(0, 64 * MiB);
        if (runtime === "node") assert.equal(ranges, null);
        else {
          assert.deepEqual(ranges, [{ offset: MiB, length: 8192 }, { offset: 5 * MiB, length: 4096 }]);
          assert.deepEqual(await h.dataRanges!(MiB + 4096, 5 * MiB), [{ offset: MiB + 4096, length: 4096 }]);
          assert.deepEqual(await h.dataRanges!(6 * MiB, 64 * MiB), []);
        }
      } finally {
        await h.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rule: a scan that skips the reported holes hashes and maps exactly what a full read does, and reads no hole (sha256 as sha256sum says)", T, async () => {
    const dir = mkdtempSync(join(tmpdir(), "snapbundle-holes-"));
    try {
      const path = join(dir, "upper.ext4");
      const size = 24 * MiB + 777;
      const fd = openSync(path, "w");
      const piece = new Uint8Array(70_000).map((_, i) => (i * 7 + 1) & 255);
      for (const at of [0, 3 * MiB + 12_345, 10 * MiB, 24 * MiB - 1000]) writeSync(fd, piece, 0, Math.min(piece.length, size - at), at);
      ftruncateSync(fd, size);
      closeSync(fd);
      const skip = counting(nodeFs(), true);
      const full = counting(nodeFs(), false);
      const a = await scanFile(skip.fs, path, size, { algorithm: "sha256", extents: true });
      const b = await scanFile(full.fs, path, size, { algorithm: "sha256", extents: true });
      assert.deepEqual(a, b);
      assert.equal(a.digest, `sha256:${execFileSync("sha256sum", [path], { encoding: "utf8" }).slice(0, 64)}`);
      assert.equal(await merkleRootOfFile(skip.fs, path, size), await merkleRootOfFile(full.fs, path, size));
      assert.equal(full.read(), 2 * size);
      if (runtime === "node") assert.equal(skip.read(), 2 * size);
      else assert.ok(skip.read() <= 2 * 4 * (70_000 + 2 * 65536), `read ${skip.read()} bytes of a file holding 280000`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
