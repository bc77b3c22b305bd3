/**
 * Rules of the streaming tar writer (src/tar/writer.ts): header fields and
 * their limits, data sources, old-GNU sparse headers and extension blocks,
 * chunking, backpressure, records, and the failed/finished/overlap states.
 * Expected bytes are built with tar-craft; python tarfile, GNU tar and bsdtar
 * judge the format.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ArchiveError, InvalidArgument } from "../src/errors.js";
import { type SparseSegment, type TarData, type TarFileOptions, type TarInput, TarStream, TarWriter } from "../src/tar/mod.js";
import { concatBytes, craftData, craftHeader, craftSparseExtension, END } from "./helpers/tar-craft.js";
import { concat, noise } from "./helpers/bytes.js";
import { memorySink, sha256, writeTarBytes } from "./helpers/tar-tools.js";
import { judgeArchive } from "./helpers/tar-judges.js";
import { walkHeaders } from "./helpers/archive-headers.js";
import { errorRule } from "./helpers/error-rules.js";
import { archiveRule } from "./helpers/archive-rules.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = new TextEncoder();
const RECORD = 10240;

/** `parts` followed by the end-of-archive marker, zero-padded to whole 10240-byte records. */
function archiveOf(...parts: Uint8Array[]): Uint8Array {
  const body = concatBytes(...parts, END);
  const out = new Uint8Array(Math.ceil(body.length / RECORD) * RECORD);
  out.set(body);
  return out;
}

const invalid = (pattern: RegExp) => errorRule(InvalidArgument, "invalid-argument", pattern);

/** A writer into memory and its sink. */
function fresh(chunkSize?: number) {
  const sink = memorySink();
  const tar = new TarWriter(sink.writer, chunkSize === undefined ? {} : { chunkSize });
  return { sink, tar };
}

/** The logical content of a sparse file: seeded noise in each segment, zeros elsewhere. */
function sparseCase(realSize: number, map: SparseSegment[], seed: number): { logical: Uint8Array; data: Uint8Array } {
  const logical = new Uint8Array(realSize);
  for (const s of map) logical.set(noise(s.length, seed + s.offset), s.offset);
  return { logical, data: concat(map.map((s) => logical.subarray(s.offset, s.offset + s.length))) };
}

/** An old-GNU sparse entry as tar-craft builds it: header, extension blocks of 21, stored data. */
function craftSparse(name: string, realSize: number, descriptors: [number, number][], stored: Uint8Array, mtime = 0): Uint8Array {
  const ext: Uint8Array[] = [];
  for (let i = 4; i < descriptors.length; i += 21) ext.push(craftSparseExtension(descriptors.slice(i, i + 21), i + 21 < descriptors.length));
  const header = craftHeader({ name, typeflag: "S", size: stored.length, mtime, sparse: { map: descriptors, isExtended: descriptors.length > 4, realSize } });
  return concatBytes(header, ...ext, craftData(stored));
}

/** Sparse maps and the descriptors the writer must store for them. */
const SPARSE_CASES: { what: string; realSize: number; map: SparseSegment[]; descriptors: [number, number][] }[] = [
  { what: "block-aligned, ending in data", realSize: 4096, map: [{ offset: 0, length: 512 }, { offset: 3584, length: 512 }], descriptors: [[0, 512], [3584, 512]] },
  { what: "ending in a hole: a final zero-length descriptor at the real size", realSize: 8192, map: [{ offset: 1024, length: 512 }], descriptors: [[1024, 512], [8192, 0]] },
  { what: "unaligned segments widen to blocks, capped at the real size", realSize: 3000, map: [{ offset: 10, length: 5 }, { offset: 2990, length: 10 }], descriptors: [[0, 512], [2560, 440]] },
  { what: "segments that touch once widened merge", realSize: 5000, map: [{ offset: 10, length: 5 }, { offset: 600, length: 5 }, { offset: 1536, length: 1 }], descriptors: [[0, 1024], [1536, 512], [5000, 0]] },
  { what: "all hole", realSize: 1 << 20, map: [], descriptors: [[1 << 20, 0]] },
  { what: "empty", realSize: 0, map: [], descriptors: [] },
  { what: "zero-length segments are dropped", realSize: 2048, map: [{ offset: 0, length: 0 }, { offset: 512, length: 512 }, { offset: 1500, length: 0 }], descriptors: [[512, 512], [2048, 0]] },
];

/** Descriptor counts around the header's 4 and the extension block's 21. */
const EXTENDED_COUNTS = [4, 5, 25, 26, 46, 47];

/** `count` block-aligned segments, ending in data (so the descriptors are the segments). */
function extendedCase(count: number): { realSize: number; map: SparseSegment[] } {
  return { realSize: count * 1024 - 512, map: Array.from({ length: count }, (_, i) => ({ offset: i * 1024, length: 512 })) };
}

describe("regular files", () => {
  test("rule: a header carries the name, mode 0644, uid/gid 0, size, mtime 0, typeflag 0 and the GNU magic unless told otherwise", T, async () => {
    const hello = enc.encode("hello");
    const big = noise(1500, 1);
    const bytes = await writeTarBytes(async (tar) => {
      await tar.addFile("dir/hello.txt", hello.length, [hello]);
      await tar.addFile("exec", big.length, [big], { mode: 0o755, mtime: 1714560000 });
      await tar.addFile("all-bits", 0, [], { mode: 0o7777, mtime: 1000000000 });
      await tar.addFile("no-bits", 0, [], { mode: 0 });
    });
    assert.deepEqual(
      bytes,
      archiveOf(
        craftHeader({ name: "dir/hello.txt", size: 5 }),
        craftData(hello),
        craftHeader({ name: "exec", size: big.length, mode: 0o755, mtime: 1714560000 }),
        craftData(big),
        craftHeader({ name: "all-bits", mode: 0o7777, mtime: 1000000000 }),
        craftHeader({ name: "no-bits", mode: 0 }),
      ),
    );
  });

  test("rule: data is padded with zeros to a whole block, and sizes of a whole block get no padding", T, async () => {
    for (const size of [1, 511, 512, 513, 1024]) {
      const data = noise(size, size).map((b) => b | 1); // no zero bytes: padding is told apart
      const bytes = await writeTarBytes((tar) => tar.addFile("f", size, [data]));
      assert.deepEqual(bytes, archiveOf(craftHeader({ name: "f", size }), craftData(data)), `size ${size}`);
    }
  });

  test("rule: a name is 1 to 100 bytes of UTF-8; longer names are refused naming the name and its length", T, async () => {
    const hundred = "n".repeat(98) + "ü"; // 100 bytes, no terminating NUL
    const emoji = "😀".repeat(25); // surrogate pairs are fine: 100 bytes
    const bytes = await writeTarBytes(async (tar) => {
      await tar.addFile(hundred, 1, [enc.encode("x")]);
      await tar.addFile(emoji, 0, []);
    });
    assert.deepEqual(walkHeaders(bytes).map((h) => h.name), [hundred, emoji]);
    for (const [name, n] of [["n".repeat(101), 101], ["ü".repeat(51), 102], ["😀".repeat(25) + "x", 101]] as const) {
      await assert.rejects(
        fresh().tar.addFile(name, 0, []),
        archiveRule(new RegExp(`^tar entry "${name}": the name is ${n} bytes, longer than the 100 a GNU header holds$`)),
      );
      await assert.rejects(fresh().tar.addSparseFile(name, 0, [], []), archiveRule(new RegExp(`"${name}": the name is ${n} bytes`)));
    }
  });

  test("rule: an empty name, a NUL or an unpaired surrogate in it is refused", T, async () => {
    await assert.rejects(fresh().tar.addFile("", 0, []), archiveRule(/^tar entry: the name is empty$/));
    await assert.rejects(fresh().tar.addFile(42 as unknown as string, 0, []), archiveRule(/^tar entry: the name is empty$/));
    await assert.rejects(fresh().tar.addSparseFile("", 10, [], []), archiveRule(/^tar entry: the name is empty$/));
    for (const [name, shown] of [["a\0b", "a\\\\u0000b"], ["x\uD800", "x\\\\ud800"], ["\uDC00y", "\\\\udc00y"], ["\uDE00\uD83D", "\\\\ude00\\\\ud83d"]]) {
      await assert.rejects(
        fresh().tar.addFile(name!, 0, []),
        archiveRule(new RegExp(`^tar entry "${shown}": the name holds a NUL or an unpaired surrogate$`)),
      );
    }
  });

  test("rule: mode is an integer within 0..0o7777, refused naming the entry", T, async () => {
    for (const mode of [-1, 0o10000, 1.5, Number.NaN]) {
      await assert.rejects(
        fresh().tar.addFile("m", 0, [], { mode }),
        invalid(new RegExp(`^tar entry "m": mode ${mode} is not within 0\\.\\.0o7777$`)),
      );
      await assert.rejects(fresh().tar.addSparseFile("s", 0, [], [], { mode }), invalid(/^tar entry "s": mode /));
    }
  });

  test("rule: mtime, size and realSize are non-negative integers up to 2^53-1, refused naming the entry", T, async () => {
    const bad = [-1, 1.5, 2 ** 53, Number.NaN, Infinity];
    for (const v of bad) {
      const shown = String(v).replace(".", "\\.");
      await assert.rejects(fresh().tar.addFile("t", 0, [], { mtime: v }), invalid(new RegExp(`^tar entry "t": mtime ${shown} is not a non-negative integer up to 2\\^53-1$`)));
      await assert.rejects(fresh().tar.addFile("f", v, []), invalid(new RegExp(`^file "f": size ${shown} is not a non-negative integer up to 2\\^53-1$`)));
      await assert.rejects(fresh().tar.addSparseFile("s", v, [], []), invalid(new RegExp(`^sparse file "s": realSize ${shown} is not a non-negative integer`)));
    }
    // The limits themselves are fine: 0, and 2^53-1 (refused only for its missing data).
    await fresh().tar.addFile("zero", 0, [], { mtime: 0 });
    await assert.rejects(fresh().tar.addFile("max", 2 ** 53 - 1, [], { mtime: 2 ** 53 - 1 }), archiveRule(/^tar entry "max": data ended after 0 bytes, the declared size is 9007199254740991$/));
  });
});

describe("data sources", () => {
  test("rule: data is any iterable or async iterable of Uint8Array chunks (a ReadableStream too); empty chunks count for nothing", T, async () => {
    const data = noise(3000, 2);
    const pieces = () => [data.subarray(0, 0), data.subarray(0, 1000), data.subarray(1000, 1000), data.subarray(1000)];
    const sources: [string, () => TarData][] = [
      ["array", () => pieces()],
      ["generator", () => (function* () { yield* pieces(); })()],
      ["async generator", () => (async function* () { yield* pieces(); })()],
      ["ReadableStream", () => new ReadableStream<Uint8Array>({ start(c) { for (const p of pieces()) c.enqueue(p); c.close(); } }) as unknown as TarData],
    ];
    const expected = archiveOf(craftHeader({ name: "d", size: 3000 }), craftData(data));
    for (const [kind, source] of sources) {
      assert.deepEqual(await writeTarBytes((tar) => tar.addFile("d", 3000, source())), expected, kind);
    }
  });

  test("rule: data chunks are copied, so a source may reuse its buffer", T, async () => {
    const data = noise(5000, 3);
    const reuse = function* () {
      const scratch = new Uint8Array(700);
      for (let at = 0; at < data.length; at += 700) {
        const n = Math.min(700, data.length - at);
        scratch.set(data.subarray(at, at + n));
        yield scratch.subarray(0, n);
        scratch.fill(0xee);
      }
    };
    for (const chunkSize of [512, 1000, 1 << 20]) {
      const bytes = await writeTarBytes((tar) => tar.addFile("r", data.length, reuse()), chunkSize);
      assert.deepEqual(bytes, archiveOf(craftHeader({ name: "r", size: data.length }), craftData(data)), `chunkSize ${chunkSize}`);
    }
  });

  test("rule: a chunk that is not a Uint8Array is refused naming the entry", T, async () => {
    for (const bad of ["text", [1, 2], new ArrayBuffer(4), new Uint16Array(2), null]) {
      await assert.rejects(
        fresh().tar.addFile("x", 4, [bad as unknown as Uint8Array]),
        invalid(/^tar entry "x": data must be Uint8Array chunks$/),
      );
    }
  });

  test("rule: data longer than the declared size is refused naming the entry and the size", T, async () => {
    const longer = /^tar entry "l": data is longer than the declared size of 3 bytes$/;
    await assert.rejects(fresh().tar.addFile("l", 3, [enc.encode("abcd")]), archiveRule(longer));
    await assert.rejects(fresh().tar.addFile("l", 3, [enc.encode("abc"), enc.encode("d")]), archiveRule(longer));
    await assert.rejects(fresh().tar.addFile("l", 3, [enc.encode("ab"), enc.encode("cd")]), archiveRule(longer));
    await assert.rejects(fresh().tar.addFile("l", 0, [enc.encode("a")]), archiveRule(/"l": data is longer than the declared size of 0 bytes$/));
    // Empty chunks after the last byte are not data.
    const bytes = await writeTarBytes((tar) => tar.addFile("l", 3, [enc.encode("abc"), new Uint8Array(0), new Uint8Array(0)]));
    assert.deepEqual(bytes, archiveOf(craftHeader({ name: "l", size: 3 }), craftData("abc")));
  });

  test("rule: data shorter than the declared size is refused naming how many bytes came", T, async () => {
    await assert.rejects(fresh().tar.addFile("s", 3, [enc.encode("ab")]), archiveRule(/^tar entry "s": data ended after 2 bytes, the declared size is 3$/));
    await assert.rejects(fresh().tar.addFile("s", 1, []), archiveRule(/^tar entry "s": data ended after 0 bytes, the declared size is 1$/));
    await assert.rejects(
      fresh().tar.addSparseFile("sp", 4096, [{ offset: 0, length: 10 }, { offset: 2048, length: 10 }], [new Uint8Array(15)]),
      archiveRule(/^tar entry "sp": data ended after 15 bytes, the declared size is 20$/),
    );
    await assert.rejects(
      fresh().tar.addSparseFile("sp", 4096, [{ offset: 0, length: 10 }], [new Uint8Array(11)]),
      archiveRule(/^tar entry "sp": data is longer than the declared size of 10 bytes$/),
    );
  });

  test("rule: a source left unfinished is closed so it can clean up, and its own close error does not hide the first", T, async () => {
    let cleaned = 0;
    const gen = function* () {
      try {
        yield enc.encode("abc");
        yield enc.encode("d");
        yield enc.encode("e");
      } finally {
        cleaned++;
      }
    };
    await assert.rejects(fresh().tar.addFile("g", 3, gen()), archiveRule(/"g": data is longer/));
    assert.equal(cleaned, 1);
    await assert.rejects(fresh().tar.addSparseFile("g", 1000, [{ offset: 0, length: 2 }], gen()), archiveRule(/"g": data is longer/));
    assert.equal(cleaned, 2);
    const failing: Iterable<Uint8Array> = {
      [Symbol.iterator]: () => ({
        next: () => ({ done: false, value: enc.encode("xyz") }),
        return: () => {
          throw new Error("cleanup failed");
        },
      }),
    };
    await assert.rejects(fresh().tar.addFile("f", 2, failing), archiveRule(/^tar entry "f": data is longer than the declared size of 2 bytes$/));
  });
});

describe("old-GNU sparse files", () => {
  for (const c of SPARSE_CASES) {
    test(`rule: the header holds typeflag S, the stored size, the real size and the block-aligned map (${c.what})`, T, async () => {
      const { logical, data } = sparseCase(c.realSize, c.map, 5);
      const stored = concat(c.descriptors.map(([o, n]) => logical.subarray(o, o + n)));
      const bytes = await writeTarBytes((tar) => tar.addSparseFile("s.img", c.realSize, c.map, [data], { mtime: 7 }));
      assert.deepEqual(bytes, archiveOf(craftSparse("s.img", c.realSize, c.descriptors, stored, 7)));
    });
  }

  test("rule: more than 4 descriptors continue in extension blocks of 21, each saying whether another follows", T, async () => {
    // 4 fit the header; 5 and 25 need one extension block; 26 and 46 two; 47 three.
    for (const count of EXTENDED_COUNTS) {
      const { realSize, map } = extendedCase(count);
      const { data } = sparseCase(realSize, map, count);
      const bytes = await writeTarBytes((tar) => tar.addSparseFile("many", realSize, map, [data]));
      const descriptors = map.map((s): [number, number] => [s.offset, s.length]);
      assert.deepEqual(bytes, archiveOf(craftSparse("many", realSize, descriptors, data)), `${count} descriptors`);
    }
  });

  test("rule: a bad sparse map is refused naming the entry and the segment", T, async () => {
    const refused = async (map: SparseSegment[], realSize: number, pattern: RegExp) =>
      assert.rejects(fresh().tar.addSparseFile("bad.img", realSize, map, [new Uint8Array(map.reduce((n, s) => n + s.length, 0))]), archiveRule(pattern));
    await refused([{ offset: 0, length: 10 }, { offset: 5, length: 10 }], 100, /^tar entry "bad\.img": sparse map segment 1 \(offset 5, length 10\) overlaps/);
    await refused([{ offset: 95, length: 10 }], 100, /^tar entry "bad\.img": sparse map segment 0 \(offset 95, length 10\) extends beyond the logical size 100$/);
    await refused([{ offset: -1, length: 1 }], 100, /^tar entry "bad\.img": sparse map segment 0 .* is not a pair of non-negative integers$/);
  });
});

describe("chunks, records and the end of the archive", () => {
  test("rule: chunkSize is an integer of at least 512", () => {
    for (const chunkSize of [511, 0, -512, 1024.5, Number.NaN, Infinity]) {
      assert.throws(
        () => new TarWriter(memorySink().writer, { chunkSize }),
        invalid(new RegExp(`^tar writer: chunkSize ${chunkSize} must be an integer of at least 512$`)),
      );
    }
    assert.ok(new TarWriter(memorySink().writer, { chunkSize: 512 }));
  });

  test("rule: the sink gets chunks of exactly chunkSize, but the last; bytesWritten counts what is buffered too", T, async () => {
    const data = noise(5000, 9);
    for (const chunkSize of [512, 700, 4096, 1 << 20]) {
      const { sink, tar } = fresh(chunkSize);
      await tar.addFile("a", 5000, [data]);
      assert.equal(tar.bytesWritten, 512 + 5120);
      await tar.addFile("b", 3, [enc.encode("abc")]);
      assert.equal(tar.bytesWritten, 512 + 5120 + 1024);
      await tar.finish();
      await sink.writer.close();
      const sizes = sink.chunks.map((c) => c.length);
      assert.ok(sizes.slice(0, -1).every((n) => n === chunkSize), `chunkSize ${chunkSize}: ${sizes}`);
      assert.ok(sizes.at(-1)! > 0 && sizes.at(-1)! <= chunkSize);
      assert.equal(tar.bytesWritten, RECORD);
      assert.deepEqual(sink.bytes(), archiveOf(craftHeader({ name: "a", size: 5000 }), craftData(data), craftHeader({ name: "b", size: 3 }), craftData("abc")));
    }
  });

  test("rule: finish() writes two zero blocks and pads to a 10240-byte record, no further", T, async () => {
    // Empty archive: the marker alone, padded to one record.
    const empty = await writeTarBytes(async () => {});
    assert.deepEqual(empty, new Uint8Array(RECORD));
    // Header and data filling 18 blocks: with the marker exactly one record, nothing added.
    const exact = noise(17 * 512, 10);
    const one = await writeTarBytes((tar) => tar.addFile("exact", exact.length, [exact]), 512);
    assert.equal(one.length, RECORD);
    assert.deepEqual(one, archiveOf(craftHeader({ name: "exact", size: exact.length }), exact));
    // One byte more spills the marker into a second record.
    const over = noise(17 * 512 + 1, 11);
    const two = await writeTarBytes((tar) => tar.addFile("over", over.length, [over]));
    assert.equal(two.length, 2 * RECORD);
    assert.deepEqual(two, archiveOf(craftHeader({ name: "over", size: over.length }), craftData(over)));
  });

  test("rule: finish() resolves only once the sink has accepted every chunk", T, async () => {
    let accepted = 0;
    const ws = new WritableStream<Uint8Array>(
      {
        async write(chunk) {
          await new Promise((r) => setTimeout(r, 1));
          accepted += chunk.length;
        },
      },
      new CountQueuingStrategy({ highWaterMark: 64 }),
    );
    const tar = new TarWriter(ws.getWriter(), { chunkSize: 2048 });
    await tar.addFile("f", 3000, [noise(3000, 12)]);
    await tar.finish();
    assert.equal(accepted, RECORD);
  });

  test("rule: the writer waits for the sink's backpressure before handing it another chunk", { timeout: 10_000 }, async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let accepted = 0;
    const ws = new WritableStream<Uint8Array>(
      {
        async write(chunk) {
          await gate;
          accepted += chunk.length;
        },
      },
      new CountQueuingStrategy({ highWaterMark: 1 }),
    );
    const tar = new TarWriter(ws.getWriter(), { chunkSize: 512 });
    const adding = tar.addFile("f", 20 * 512, [noise(20 * 512, 13)]);
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
    assert.ok(tar.bytesWritten <= 4 * 512, `stalled sink, yet ${tar.bytesWritten} bytes taken`);
    open();
    await adding;
    await tar.finish();
    assert.equal(accepted, 2 * RECORD);
  });

  test("rule: with recycleChunks, a chunk's buffer is reused once its write resolved, and zeroed", T, async () => {
    const dirty = noise(4000, 14).map((b) => b | 1);
    const build = async (tar: TarWriter) => {
      await tar.addFile("noise", dirty.length, [dirty]);
      // Holes and padding come from recycled buffers that held the dirty bytes.
      await tar.addSparseFile("holes", 64 * 512, [{ offset: 0, length: 10 }, { offset: 40 * 512, length: 10 }], [dirty.subarray(0, 20)]);
      await tar.addFile("tail", 1, [enc.encode("t")]);
    };
    const expected = await writeTarBytes(build, 512);
    for (const [recycle, distinctAtMost] of [[true, 6], [false, Infinity]] as const) {
      const copies: Uint8Array[] = [];
      const buffers = new Set<ArrayBufferLike>();
      const ws = new WritableStream<Uint8Array>({
        write(chunk) {
          buffers.add(chunk.buffer);
          copies.push(chunk.slice()); // a sink that keeps nothing, like the zstd stream
        },
      });
      const tar = new TarWriter(ws.getWriter(), { chunkSize: 512, recycleChunks: recycle });
      await build(tar);
      await tar.finish();
      assert.deepEqual(concat(copies), expected, `recycleChunks ${recycle}`);
      if (recycle) assert.ok(buffers.size <= distinctAtMost, `${buffers.size} buffers for ${copies.length} chunks`);
      else assert.equal(buffers.size, copies.length, "every chunk a fresh buffer");
    }
  });

  test("rule: without recycleChunks, a sink may keep every chunk it was handed", T, async () => {
    const dirty = noise(3000, 15).map((b) => b | 1);
    const { sink, tar } = fresh(512);
    await tar.addFile("noise", dirty.length, [dirty]);
    await tar.addSparseFile("hole", 8192, [], []);
    await tar.finish();
    await sink.writer.close();
    assert.deepEqual(sink.bytes(), archiveOf(craftHeader({ name: "noise", size: dirty.length }), craftData(dirty), craftSparse("hole", 8192, [[8192, 0]], new Uint8Array(0))));
  });
});

describe("writer states", () => {
  test("rule: after a failure every later call rejects as incomplete, with the first failure as its cause", T, async () => {
    const { tar } = fresh();
    let first: unknown;
    await assert.rejects(tar.addFile("short", 2, [enc.encode("a")]), (e) => ((first = e), e instanceof ArchiveError));
    const incomplete = archiveRule(/^tar writer: an earlier operation failed, the archive is incomplete$/);
    for (const call of [() => tar.addFile("x", 0, []), () => tar.addSparseFile("y", 0, [], []), () => tar.finish()]) {
      await assert.rejects(call(), (e: unknown) => incomplete(e) && (e as Error).cause === first);
    }
  });

  test("rule: a sink that fails its write fails the writer", T, async () => {
    const boom = new Error("disk full");
    const ws = new WritableStream<Uint8Array>({
      write() {
        throw boom;
      },
    });
    const tar = new TarWriter(ws.getWriter(), { chunkSize: 512 });
    await tar.addFile("a", 0, []); // the header went out; its write failed
    await assert.rejects(tar.addFile("b", 600, [new Uint8Array(600)]), (e: unknown) => e === boom);
    await assert.rejects(tar.finish(), archiveRule(/an earlier operation failed/));
    // finish() reports a failed last write too.
    const ws2 = new WritableStream<Uint8Array>({
      write() {
        throw boom;
      },
    });
    await assert.rejects(new TarWriter(ws2.getWriter()).finish(), (e: unknown) => e === boom);
  });

  test("rule: calls must not overlap; the refused call leaves the running one and the archive intact", { timeout: 10_000 }, async () => {
    const data = noise(2000, 16);
    const { sink, tar } = fresh();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const slow = (async function* () {
      yield data.subarray(0, 1000);
      await held;
      yield data.subarray(1000);
    })();
    const running = tar.addFile("slow", 2000, slow);
    const overlap = archiveRule(/^tar writer: calls must not overlap \(await each one\)$/);
    await assert.rejects(tar.addFile("eager", 0, []), overlap);
    await assert.rejects(tar.addSparseFile("eager", 0, [], []), overlap);
    await assert.rejects(tar.finish(), overlap);
    release();
    await running;
    await tar.addFile("next", 0, []);
    await tar.finish();
    await sink.writer.close();
    assert.deepEqual(sink.bytes(), archiveOf(craftHeader({ name: "slow", size: 2000 }), craftData(data), craftHeader({ name: "next" })));
  });

  test("rule: after finish() every call rejects", T, async () => {
    const { tar } = fresh();
    await tar.finish();
    const done = archiveRule(/^tar writer: finish\(\) was already called$/);
    await assert.rejects(tar.addFile("late", 0, []), done);
    await assert.rejects(tar.addSparseFile("late", 0, [], []), done);
    await assert.rejects(tar.finish(), done);
  });
});

describe("third-party readers", () => {
  test("rule: python tarfile, GNU tar and bsdtar read every kind of entry we write, byte for byte", { timeout: 60_000 }, async () => {
    const files: { name: string; data: Uint8Array; options: TarFileOptions; mode: number; mtime: number }[] = [
      { name: "dir/hello.txt", data: enc.encode("hello"), options: {}, mode: 0o644, mtime: 0 },
      { name: "exec", data: noise(1500, 1), options: { mode: 0o755, mtime: 1714560000 }, mode: 0o755, mtime: 1714560000 },
      { name: "all-bits", data: noise(512, 2), options: { mode: 0o7777, mtime: 1000000000 }, mode: 0o7777, mtime: 1000000000 },
      { name: "no-bits", data: new Uint8Array(0), options: { mode: 0 }, mode: 0, mtime: 0 },
      { name: "n".repeat(98) + "ü", data: enc.encode("a name of exactly 100 bytes"), options: {}, mode: 0o644, mtime: 0 },
      { name: "😀".repeat(25), data: noise(17 * 512 + 1, 3), options: {}, mode: 0o644, mtime: 0 },
    ];
    const sparse = [
      ...SPARSE_CASES.map((c, k) => ({ name: `sparse-${k}`, ...c })),
      ...EXTENDED_COUNTS.map((count) => ({ name: `extended-${count}`, ...extendedCase(count) })),
    ].map((c, k) => ({ ...c, ...sparseCase(c.realSize, c.map, 100 + k) }));
    const bytes = await writeTarBytes(async (tar) => {
      for (const f of files) await tar.addFile(f.name, f.data.length, [f.data], f.options);
      for (const s of sparse) await tar.addSparseFile(s.name, s.realSize, s.map, [s.data], { mtime: 7 });
    });
    const v = judgeArchive(bytes);
    assert.deepEqual(
      v.python.map((m) => [m.name, m.type, m.size, m.mode, m.uid, m.gid, m.mtime, m.sha256]),
      [
        ...files.map((f) => [f.name, "0", f.data.length, f.mode, 0, 0, f.mtime, sha256(f.data)]),
        ...sparse.map((s) => [s.name, "S", s.realSize, 0o644, 0, 0, 7, sha256(s.logical)]),
      ],
    );
    assert.match(v.gnuListing, /^-rw-r--r-- 0\/0 +5 1970-01-01 00:00:00 dir\/hello\.txt$/m);
    assert.match(v.gnuListing, /^-rwxr-xr-x 0\/0 +1500 2024-05-01 10:40:00 exec$/m);
    assert.match(v.gnuListing, /^-rwsrwsrwt 0\/0 +512 2001-09-09 01:46:40 all-bits$/m);
    assert.match(v.gnuListing, /^---------- 0\/0 +0 1970-01-01 00:00:00 no-bits$/m);
    for (const s of sparse) assert.match(v.gnuListing, new RegExp(`^-rw-r--r-- 0/0 +${s.realSize} 1970-01-01 00:00:07 ${s.name}$`, "m"));
    for (const [judge, got] of [["GNU tar", v.gnu], ["bsdtar", v.bsd]] as const) {
      for (const f of files) assert.deepEqual(got.get(f.name), [f.data.length, sha256(f.data)], `${judge}: ${f.name}`);
      for (const s of sparse) assert.deepEqual(got.get(s.name), [s.realSize, sha256(s.logical)], `${judge}: ${s.name}`);
    }
  });
});

describe("TarStream: the writer as a pair for pipeThrough", () => {
  /** `ReadableStream.from`, which TypeScript's DOM library does not declare yet. */
  const from = <E>(items: Iterable<E>): ReadableStream<E> => (ReadableStream as unknown as { from(i: Iterable<E>): ReadableStream<E> }).from(items);
  /** `entries` through a TarStream with `options`, read by a reader that holds each chunk until it asks for the next. */
  async function throughStream(entries: TarInput[], options: { recycleChunks?: boolean; chunkSize?: number } = {}) {
    const tar = new TarStream(options);
    const reader = from(entries).pipeThrough(tar).getReader();
    const copies: Uint8Array[] = [];
    let overwritten = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      const copy = r.value.slice();
      copies.push(copy);
      // hold the chunk a while, the writer free to run meanwhile: it must not reuse the chunk before the next read
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (!r.value.every((b, i) => b === copy[i])) overwritten++;
    }
    return { bytes: concat(copies), overwritten, tarBytes: tar.bytesWritten };
  }

  test("rule: a TarStream writes byte for byte what TarWriter writes (regular and sparse entries), recycling or not, and never changes a chunk its reader holds", T, async () => {
    const big = noise(3 * 1024 * 1024 + 17, 41);
    const map: SparseSegment[] = [{ offset: 0, length: 4096 }, { offset: 1 << 20, length: 8192 }];
    const sparseData = concat([big.subarray(0, 4096), big.subarray(4096, 4096 + 8192)]);
    const viaWriter = await writeTarBytes(async (tar) => {
      await tar.addFile("a/big.bin", big.length, [big], { mtime: 1714560000 });
      await tar.addSparseFile("a/sparse.img", 4 << 20, map, [sparseData], { mtime: 1714560000 });
    });
    const entries: TarInput[] = [
      { path: "a/big.bin", size: big.length, data: [big], options: { mtime: 1714560000 } },
      { path: "a/sparse.img", size: 4 << 20, sparseMap: map, data: [sparseData], options: { mtime: 1714560000 } },
    ];
    for (const recycleChunks of [false, true]) {
      const { bytes, overwritten, tarBytes } = await throughStream(entries, { recycleChunks, chunkSize: 64 * 1024 });
      assert.ok(sha256(bytes) === sha256(viaWriter), `recycleChunks ${recycleChunks}: same bytes as TarWriter`);
      assert.equal(tarBytes, viaWriter.length);
      assert.equal(overwritten, 0, "no chunk changed while its reader held it");
    }
  });

  test("rule: an entry whose data is shorter than its size errors the readable with the ArchiveError that names it", T, async () => {
    const tar = new TarStream();
    const reading = new Response(from<TarInput>([{ path: "a/short", size: 10, data: [new Uint8Array(3)] }]).pipeThrough(tar)).arrayBuffer();
    await assert.rejects(reading, (e: unknown) => e instanceof ArchiveError && /a\/short/.test(e.message));
  });
});
