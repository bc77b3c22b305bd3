/**
 * Rules of lent buffers on the read path of a load (wasm/lend.ts): the zstd
 * decoder and a reusing fileReadable hand out chunks from a fixed ring, each
 * valid until the next read; a view kept longer is detached and fails
 * loudly; the stages between (peek, lend, tar reader, staged write window)
 * keep nothing past a read, so bytes arrive intact. Inputs come from GNU
 * tar and the zstd CLI.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { LendingRing } from "../wasm/lend.js";
import { DECODE_RING } from "../wasm/zstd-decompress.js";
import { isSharedZeros, zstdDecompressStream } from "../wasm/mod.js";
import { countingReadable, decompressIfZstd, fileReadable, lendStream, peekStream } from "../src/archive/streams.js";
import { nodeFs } from "../src/fs/node.js";
import { WriteWindow } from "../src/io.js";
import { readTar } from "../src/tar/reader.js";
import { ByteSource } from "../src/tar/source.js";
import { noise } from "./helpers/bytes.js";
import "./helpers/node-host.js";

const T = { timeout: 60_000 };

/** Whether `v`'s buffer was taken back (detached): typed-array construction on it throws. */
function detached(v: Uint8Array): boolean {
  try {
    new Uint8Array(v.buffer);
    return false;
  } catch {
    return true;
  }
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "sb-lend-"));
}

describe("lending ring", () => {
  test("rule: a ring allocates its buffers once, and a view of an earlier round is detached and throws when used", T, () => {
    const ring = new LendingRing(3, 4096);
    const views: Uint8Array[] = [];
    for (let i = 0; i < 64; i++) views.push(ring.take().fill(i));
    assert.equal(ring.allocations, 3, "64 rounds, 3 buffers");
    assert.deepEqual(views.map(detached).lastIndexOf(true), 60, "all but the last 3 views are detached");
    assert.deepEqual([...views[63]!.subarray(0, 2)], [63, 63]);
    assert.equal(views[0]!.length, 0);
    assert.throws(() => new Uint8Array(8).set(views[0]!), TypeError, "copying from a stale view throws");
  });

  test("rule: a slot a reader transferred away is replaced, not reused", T, () => {
    const ring = new LendingRing(1, 1024);
    const v = ring.take();
    structuredClone(v.buffer, { transfer: [v.buffer] });
    assert.equal(ring.take().length, 1024);
    assert.equal(ring.allocations, 2);
  });
});

describe("the decoder lends its output", () => {
  test(`rule: over a 64 MiB stream at most ${DECODE_RING} decoded chunks are live at once; earlier ones are detached`, T, async () => {
    const dir = tmp();
    try {
      // 64 MiB of text-like data the zstd CLI compresses; no run of zeros
      const data = new Uint8Array(64 << 20);
      const seed = noise(1 << 20, 5);
      for (let at = 0; at < data.length; at += seed.length) data.set(seed, at);
      for (let i = 0; i < data.length; i += 4096) data[i] = (i >>> 12) & 0xff | 1;
      writeFileSync(join(dir, "d"), data);
      execFileSync("zstd", ["-q", "-1", join(dir, "d"), "-o", join(dir, "d.zst")]);
      const packed = readFileSync(join(dir, "d.zst"));
      const out = new Blob([packed]).stream().pipeThrough(zstdDecompressStream({ lend: true }));
      const kept: Uint8Array[] = [];
      let at = 0;
      let mismatches = 0;
      const reader = out.getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        const chunk = r.value;
        assert.ok(!detached(chunk), "a chunk handed out is live until the next read");
        if (!isSharedZeros(chunk) && Buffer.compare(chunk, data.subarray(at, at + chunk.length)) !== 0) mismatches++;
        at += chunk.length;
        kept.push(chunk);
      }
      assert.equal(at, data.length);
      assert.equal(mismatches, 0, "every chunk held the right bytes while it was lent");
      const live = kept.filter((c) => !detached(c)).length;
      assert.ok(live <= DECODE_RING, `${live} chunks still live; the ring holds ${DECODE_RING}`);
      assert.ok(kept.length >= 64);
      assert.throws(() => new Uint8Array(16).set(kept[0]!), TypeError, "a kept chunk fails loudly");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("rule: the tar reader refuses a chunk that was taken back before it read it", T, async () => {
    const lent = new Uint8Array(1024);
    structuredClone(lent.buffer, { transfer: [lent.buffer] });
    const src = new ByteSource(new Blob([]).stream().pipeThrough(new TransformStream({ flush: (c) => c.enqueue(lent) })));
    await assert.rejects(src.readBlock(), (e: Error) => e instanceof TypeError && /tar reader: a lent buffer was used after/.test(e.message));
    await src.release();
  });

  test("rule: a zstd stream refuses a written chunk that was taken back, instead of reading it as empty", T, async () => {
    const lent = new Uint8Array(64);
    structuredClone(lent.buffer, { transfer: [lent.buffer] });
    const pair = zstdDecompressStream();
    const writer = pair.writable.getWriter();
    await assert.rejects(writer.write(lent), (e: Error) => e instanceof TypeError && /zstd stream: a lent buffer was used after/.test(e.message));
  });
});

/** Files of sizes that end mid-chunk and mid-block, archived by GNU tar. */
function gnuTar(dir: string, small: boolean): { tar: string; files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  const sizes = small ? [70_001, 5, 0, 4097] : [(1 << 20) + 123, 700 * 1024 + 1, 5, 3 * (1 << 20) - 511, 0, 4097];
  execFileSync("mkdir", ["-p", join(dir, "in")]);
  sizes.forEach((n, i) => {
    const bytes = noise(n, 100 + i);
    files.set(`f${i}`, bytes);
    writeFileSync(join(dir, "in", `f${i}`), bytes);
  });
  const tar = join(dir, "a.tar");
  execFileSync("tar", ["--format=gnu", "-cf", tar, "-C", join(dir, "in"), ...files.keys()]);
  return { tar, files };
}

/** Read `path` the way a load with progress does (lent file chunks, count, peek, decode, lend, tar reader, staged writes) into `out`. */
async function loadLike(path: string, out: string, chunkBytes: number): Promise<void> {
  const fs = nodeFs();
  let counted = 0;
  const raw = await peekStream(countingReadable(fileReadable(fs, path, { reuse: true, chunkBytes }), (n) => (counted = n)), 512);
  const lent = lendStream(await decompressIfZstd(raw.stream, path));
  for await (const entry of readTar(lent.stream, { label: path })) {
    if (entry.kind !== "file") continue;
    const h = await fs.open(join(out, entry.path), "wx");
    const w = new WriteWindow(h, { stage: true, maxBytes: 64 * 1024 });
    for await (const seg of entry.segments()) await w.write(seg.data, seg.offset);
    await w.drain();
    await h.close();
  }
  await lent.drain();
  assert.equal(counted, statSync(path).size, "every byte was counted");
}

describe("a load's read path over lent buffers", () => {
  for (const [name, zstd, chunkBytes] of [
    ["a zstd bundle whose entries end mid-chunk", true, 1 << 20],
    ["a plain tar read in 1 MiB lent chunks", false, 1 << 20],
    ["a plain tar whose first chunk is shorter than a block (the peek gathers it)", false, 300],
    ["a zstd bundle read in 301-byte lent chunks (a short first one)", true, 301],
  ] as const) {
    test(`rule: ${name} lands byte for byte`, T, async () => {
      const dir = tmp();
      try {
        const { tar, files } = gnuTar(dir, chunkBytes < 4096);
        let input = tar;
        if (zstd) {
          execFileSync("zstd", ["-q", tar, "-o", `${tar}.zst`]);
          input = `${tar}.zst`;
        }
        execFileSync("mkdir", [join(dir, "out")]);
        await loadLike(input, join(dir, "out"), chunkBytes);
        for (const [f, bytes] of files) assert.ok(Buffer.compare(readFileSync(join(dir, "out", f)), bytes) === 0, `${f} differs`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
