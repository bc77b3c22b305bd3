/**
 * Tests of the WebAssembly boundary (wasm/): SHA-256 against sha256sum, zstd
 * against the zstd CLI, the frame guard, the instance pool and bounded memory.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CompressionError, InvalidArgument } from "../src/errors.js";
import {
  createSha256,
  isZstdMagic,
  sha256Hex,
  ZSTD_MAX_WINDOW_BYTES,
  zstdCompressStream,
  zstdDecompressStream,
} from "../wasm/mod.js";
import {
  formatBytes,
  frameHeaderSize,
  parseBlockHeader,
  parseFrameHeader,
  windowSizeFromDescriptor,
  type ZstdPiece,
  ZstdFrameScanner,
} from "../wasm/zstd-frame.js";
import { idleZstdInstanceIds, leaseZstd, MAX_IDLE_INSTANCES } from "../wasm/zstd-pool.js";
import { HEAVY } from "./helpers/heavy.js";
import {
  concat,
  mixedBytes,
  mixedChunks,
  pipe,
  randomBytes,
  collectGarbage,
  rss,
  zstdFrameCount,
  run,
  sameBytes,
  sha256sum,
  skippableFrame,
  streamOf,
  textBytes,
  unzstdCli,
  zstdCli,
} from "./helpers/wasm-util.js";

const KiB = 1024;
const MiB = 1024 * 1024;
const MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Decompress with our stream; return the error it fails with (or fail the test). */
async function decodeError(data: Uint8Array, label = "test.tar.zst", chunk = MiB): Promise<CompressionError> {
  try {
    await pipe(data, zstdDecompressStream({ label }), chunk);
  } catch (e) {
    assert.ok(e instanceof CompressionError, `expected CompressionError, got ${String(e)}`);
    assert.ok(e.message.startsWith(`"${label}": `), e.message);
    return e;
  }
  assert.fail("decompression succeeded but should have failed");
}

/** A normal decompression still works (the pool was not poisoned). */
async function assertDecoderHealthy(): Promise<void> {
  const data = mixedBytes(3 * MiB, 99);
  const out = await pipe(zstdCli(data, ["-3"]), zstdDecompressStream());
  assert.ok(sameBytes(out, data));
}

/** Build a zstd block header. */
function blockHeader(last: boolean, type: number, size: number): number[] {
  const v = (size << 3) | (type << 1) | (last ? 1 : 0);
  return [v & 255, (v >>> 8) & 255, (v >>> 16) & 255];
}

/** A frame (1 MiB window) of RLE blocks; `checksum` adds a 4-byte placeholder checksum (scanner tests only). */
function rleFrame(blocks: number, blockSize: number, checksum = false): Uint8Array {
  const out = [...MAGIC, checksum ? 0x04 : 0x00, 0x50];
  for (let i = 0; i < blocks; i++) out.push(...blockHeader(i === blocks - 1, 1, blockSize), i & 255);
  if (checksum) out.push(0, 0, 0, 0);
  return Uint8Array.from(out);
}

function scanAll(scanner: ZstdFrameScanner, data: Uint8Array, sizes: number[]): ZstdPiece[] {
  const pieces: ZstdPiece[] = [];
  let i = 0;
  let k = 0;
  while (i < data.length) {
    const n = sizes[k++ % sizes.length]!;
    pieces.push(...scanner.push(data.subarray(i, i + n)));
    i += n;
  }
  return pieces;
}

describe("sha256", () => {
  const inputs: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["abc", new TextEncoder().encode("abc")],
    ["3 MiB random", randomBytes(3 * MiB, 5)],
  ];
  for (const [name, data] of inputs) {
    test(`${name} matches sha256sum, one-shot and in odd-sized chunks`, async () => {
      const want = sha256sum(data);
      assert.equal(await sha256Hex(data), want);
      const h = await createSha256();
      const sizes = [1, 7, 4093, 65537, 1000003];
      for (let i = 0, k = 0; i < data.length; k++) {
        const n = sizes[k % sizes.length]!;
        h.update(data.subarray(i, i + n));
        i += n;
      }
      assert.equal(h.digestHex(), want);
    });
  }

  test("pooled hashers do not share state (interleaved and reused)", async () => {
    const a = randomBytes(300 * KiB, 11);
    const b = textBytes(200 * KiB, 12);
    for (let round = 0; round < 3; round++) {
      const ha = await createSha256();
      const hb = await createSha256();
      for (let i = 0; i < 300 * KiB; i += 10 * KiB) {
        ha.update(a.subarray(i, i + 10 * KiB));
        hb.update(b.subarray(i, i + 10 * KiB));
      }
      assert.equal(ha.digestHex(), sha256sum(a));
      assert.equal(hb.digestHex(), sha256sum(b));
    }
  });

  test("digestHex ends the hasher", async () => {
    const h = await createSha256();
    h.update(new Uint8Array([1]));
    h.digestHex();
    assert.throws(() => h.update(new Uint8Array([2])), /finished/);
    assert.throws(() => h.digestHex(), /finished/);
  });
});

describe("zstd frame parser", () => {
  test("window descriptor math", () => {
    assert.equal(windowSizeFromDescriptor(0x00), 1 * KiB);
    assert.equal(windowSizeFromDescriptor(0x01), 1 * KiB + 128);
    assert.equal(windowSizeFromDescriptor(0x07), 1 * KiB + 7 * 128);
    assert.equal(windowSizeFromDescriptor(0x4b), 512 * KiB + 3 * 64 * KiB);
    assert.equal(windowSizeFromDescriptor(0x50), 1 * MiB);
    assert.equal(windowSizeFromDescriptor(0x58), 2 * MiB);
    assert.equal(windowSizeFromDescriptor(0x68), 8 * MiB);
    assert.equal(windowSizeFromDescriptor(0x61), 4 * MiB + 512 * KiB);
    assert.equal(windowSizeFromDescriptor(0x70), 16 * MiB);
    assert.equal(windowSizeFromDescriptor(0xa0), 1024 * MiB);
    assert.equal(windowSizeFromDescriptor(0xff), 2 ** 41 + 7 * 2 ** 38);
  });

  test("frame header sizes for every descriptor layout", () => {
    assert.equal(frameHeaderSize(0x00), 6); // window only
    assert.equal(frameHeaderSize(0x20), 6); // single segment: 1-byte content size, no window
    assert.equal(frameHeaderSize(0x40), 8); // 2-byte content size + window
    assert.equal(frameHeaderSize(0x60), 7); // single segment, 2-byte content size
    assert.equal(frameHeaderSize(0x80), 10);
    assert.equal(frameHeaderSize(0xa0), 9);
    assert.equal(frameHeaderSize(0xc0), 14);
    assert.equal(frameHeaderSize(0xe0), 13);
    assert.equal(frameHeaderSize(0x01), 7);
    assert.equal(frameHeaderSize(0x02), 8);
    assert.equal(frameHeaderSize(0x03), 10);
    assert.equal(frameHeaderSize(0xc3), 18);
  });

  test("content size fields of 1, 2, 4 and 8 bytes", () => {
    const h = (bytes: number[]) => {
      const r = parseFrameHeader(Uint8Array.from([...MAGIC, ...bytes]));
      assert.equal(r.kind, "zstd");
      return (r as Extract<typeof r, { kind: "zstd" }>).header;
    };
    let x = h([0x20, 42]);
    assert.deepEqual([x.headerSize, x.contentSize, x.windowSize, x.singleSegment], [6, 42, 42, true]);
    x = h([0x40, 0x50, 0x00, 0x01]);
    assert.deepEqual([x.headerSize, x.contentSize, x.windowSize], [8, 256 + 256, MiB]);
    x = h([0x60, 0xff, 0xff]);
    assert.deepEqual([x.contentSize, x.windowSize], [65535 + 256, 65535 + 256]);
    x = h([0x84, 0x58, 0x4b, 0x52, 0x80, 0x02]);
    assert.deepEqual([x.headerSize, x.contentSize, x.windowSize, x.hasChecksum], [10, 41964107, 2 * MiB, true]);
    x = h([0xe0, 5, 0, 0, 0, 2, 0, 0, 0]);
    assert.deepEqual([x.headerSize, x.contentSize, x.windowSize], [13, 2 ** 33 + 5, 2 ** 33 + 5]);
    x = h([0xc0, 0x68, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([x.headerSize, x.contentSize, x.windowSize], [14, 1, 8 * MiB]);
  });

  test("dictionary ids of 1, 2 and 4 bytes; reserved bit", () => {
    const dict = (bytes: number[]) => {
      const r = parseFrameHeader(Uint8Array.from([...MAGIC, ...bytes]));
      return r.kind === "zstd" ? r.header.dictionaryId : -1;
    };
    assert.equal(dict([0x01, 0x50, 7]), 7);
    assert.equal(dict([0x02, 0x50, 0x34, 0x12]), 0x1234);
    assert.equal(dict([0x03, 0x50, 0x78, 0x56, 0x34, 0x12]), 0x12345678);
    assert.equal(dict([0x23, 0x78, 0x56, 0x34, 0xf2, 9]), 0xf2345678);
    const r = parseFrameHeader(Uint8Array.from([...MAGIC, 0x08, 0x50]));
    assert.ok(r.kind === "zstd" && r.header.reservedBit);
  });

  test("incomplete headers say how many bytes they need", () => {
    const full = Uint8Array.from([...MAGIC, 0xc3, 0x50, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(full.length, 18);
    for (let n = 0; n < 18; n++) {
      const r = parseFrameHeader(full.subarray(0, n));
      assert.deepEqual(r, { kind: "incomplete", need: n < 4 ? 4 : n < 5 ? 5 : 18 }, `prefix ${n}`);
    }
    assert.equal(parseFrameHeader(full).kind, "zstd");
    const skip = skippableFrame(new Uint8Array(3), 0xf);
    assert.deepEqual(parseFrameHeader(skip.subarray(0, 6)), { kind: "incomplete", need: 8 });
    assert.deepEqual(parseFrameHeader(skip), { kind: "skippable", headerSize: 8, contentSize: 3 });
    assert.deepEqual(parseFrameHeader(Uint8Array.from([1, 2, 3, 4])), { kind: "unknown", magic: 0x04030201 });
  });

  test("headers written by the zstd CLI", () => {
    const data = mixedBytes(300 * KiB, 4);
    const parse = (z: Uint8Array) => {
      const r = parseFrameHeader(z.subarray(0, 18));
      assert.equal(r.kind, "zstd");
      return (r as Extract<typeof r, { kind: "zstd" }>).header;
    };
    let h = parse(zstdCli(data, ["-3", "--long=23"], { pipe: true }));
    assert.deepEqual([h.windowSize, h.singleSegment, h.hasChecksum], [8 * MiB, false, true]);
    h = parse(zstdCli(data, ["-3"]));
    assert.equal(h.contentSize, data.length);
    h = parse(zstdCli(data, ["-3", "--no-check"]));
    assert.equal(h.hasChecksum, false);
    h = parse(zstdCli(data, ["-19"]));
    assert.deepEqual([h.singleSegment, h.windowSize, h.contentSize], [true, data.length, data.length]);
  });

  test("block headers", () => {
    assert.deepEqual(parseBlockHeader(0x01, 0, 0), { last: true, type: 0, size: 0 });
    const [a, b, c] = blockHeader(false, 1, 128 * KiB);
    assert.deepEqual(parseBlockHeader(a!, b!, c!), { last: false, type: 1, size: 128 * KiB });
    const [d, e, f] = blockHeader(true, 3, (1 << 21) - 1);
    assert.deepEqual(parseBlockHeader(d!, e!, f!), { last: true, type: 3, size: (1 << 21) - 1 });
  });

  test("isZstdMagic and formatBytes", () => {
    assert.equal(isZstdMagic(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd])), true);
    assert.equal(isZstdMagic(Uint8Array.from([0x28, 0xb5, 0x2f])), false);
    assert.equal(isZstdMagic(Uint8Array.from([0x50, 0x2a, 0x4d, 0x18])), false);
    assert.equal(isZstdMagic(new TextEncoder().encode("ustar")), false);
    assert.equal(formatBytes(16 * MiB), "16 MiB");
    assert.equal(formatBytes(1024 * MiB), "1 GiB");
    assert.equal(formatBytes(704 * KiB), "704 KiB");
    assert.equal(formatBytes(100), "100 bytes");
    assert.equal(formatBytes(41964107), "40 MiB (41964107 bytes)");
  });

  test("scanner passes zstd frames through and drops skippable frames, byte by byte", () => {
    const a = zstdCli(mixedBytes(200 * KiB, 1), ["-3"]);
    const b = zstdCli(textBytes(100 * KiB, 2), ["-1", "--no-check"], { pipe: true });
    const stream = concat([skippableFrame(new Uint8Array(5)), a, skippableFrame(new Uint8Array(0), 7), b]);
    for (const sizes of [[1], [2, 3, 5], [17, 4096], [stream.length]]) {
      const s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB });
      const pieces = scanAll(s, stream, sizes);
      s.finish();
      assert.ok(sameBytes(concat(pieces.map((p) => p.bytes)), concat([a, b])), `chunk sizes ${sizes}`);
      assert.equal(s.framesSeen, 2);
      assert.equal(s.skippableFramesSeen, 2);
      assert.equal(s.bytesSeen, stream.length);
      for (const p of pieces) assert.ok(sameBytes(p.bytes, stream.subarray(p.offset, p.offset + p.bytes.length)));
    }
  });

  test("a frame header split across chunks is held back, then passed as one piece", () => {
    const z = zstdCli(textBytes(10 * KiB, 2), ["-3"]);
    const s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB });
    const hs = frameHeaderSize(z[4]!);
    assert.deepEqual(s.push(z.subarray(0, 3)), []);
    assert.deepEqual(s.push(z.subarray(3, hs - 1)), []);
    const pieces = s.push(z.subarray(hs - 1));
    s.finish();
    assert.ok(sameBytes(pieces[0]!.bytes, z.subarray(0, hs)));
    assert.equal(pieces[0]!.offset, 0);
    assert.ok(sameBytes(concat(pieces.map((p) => p.bytes)), z));
  });

  test("finish() fails at every cut except frame boundaries", () => {
    const a = zstdCli(textBytes(3000, 1), ["-3"]);
    const skip = skippableFrame(Uint8Array.from([1, 2, 3]));
    const b = zstdCli(Uint8Array.from([1, 2, 3, 4, 5]), ["-3", "--no-check"]);
    const c = rleFrame(3, 1000, true);
    const stream = concat([a, skip, b, c]);
    const ends = new Set<number>();
    let off = 0;
    for (const part of [a, skip, b, c]) ends.add((off += part.length));
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const sizes of [[cut || 1], [1]]) {
        const s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB, label: "cut" });
        scanAll(s, stream.subarray(0, cut), sizes);
        if (ends.has(cut)) {
          s.finish();
        } else {
          assert.throws(() => s.finish(), (e: unknown) => {
            assert.ok(e instanceof CompressionError);
            assert.match(e.message, /^"cut": zstd stream is truncated: /);
            return true;
          }, `cut at ${cut}`);
        }
      }
    }
  });

  test("pieces respect maxPieceBytes and the output bound", () => {
    const raw = [...MAGIC, 0x00, 0x50];
    for (let i = 0; i < 5; i++) raw.push(...blockHeader(i === 4, 0, 100 * KiB), ...new Uint8Array(100 * KiB).fill(i));
    const rawFrame = Uint8Array.from(raw);
    let s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB, maxPieceBytes: 1000 });
    let pieces = scanAll(s, rawFrame, [300 * KiB, 7, 200 * KiB]);
    s.finish();
    assert.ok(pieces.every((p) => p.bytes.length <= 1000));
    assert.ok(sameBytes(concat(pieces.map((p) => p.bytes)), rawFrame));

    const bomb = rleFrame(1000, 128 * KiB);
    s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB, maxPieceOutputBytes: MiB });
    pieces = s.push(bomb);
    s.finish();
    assert.ok(pieces.length >= 125);
    assert.ok(pieces.every((p) => p.maxOutputBytes <= MiB));
    assert.equal(pieces.reduce((n, p) => n + p.maxOutputBytes, 0), 1000 * 128 * KiB);
    assert.ok(sameBytes(concat(pieces.map((p) => p.bytes)), bomb));
  });

  test("scanner errors: window, reserved bits and types, dictionaries, block sizes, bad magic", () => {
    const cases: [number[], RegExp][] = [
      [[...MAGIC, 0x00, 0x70, ...blockHeader(true, 0, 0)], /at byte 0 needs a 16 MiB window; snapbundle decodes windows up to 8 MiB/],
      [[...MAGIC, 0xa0, 0, 0, 0, 2], /needs a 32 MiB window \(single-segment frame/],
      [[...MAGIC, 0x08, 0x50, ...blockHeader(true, 0, 0)], /reserved bit of its frame header descriptor/],
      [[...MAGIC, 0x01, 0x50, 5, ...blockHeader(true, 0, 0)], /needs dictionary 5; snapbundle does not support zstd dictionaries/],
      [[...MAGIC, 0x00, 0x50, ...blockHeader(true, 3, 10)], /block at byte 6 has the reserved block type 3/],
      [[...MAGIC, 0x00, 0x50, ...blockHeader(true, 2, 128 * KiB + 1)], /declares 131073 bytes, more than the frame's maximum block size of 131072/],
      [[...MAGIC, 0x20, 10, ...blockHeader(true, 1, 11), 0], /declares 11 bytes, more than the frame's maximum block size of 10/],
      [[...MAGIC, 0x00, 0x00, ...blockHeader(true, 0, 1025)], /maximum block size of 1024/],
      [[...MAGIC, 0x20, 0, ...blockHeader(true, 0, 0), 0x28, 0xb5, 0x2f, 0xfc], /bytes at offset 9 are not a zstd frame \(magic 28 b5 2f fc/],
    ];
    for (const [bytes, re] of cases) {
      for (const sizes of [[bytes.length], [1]]) {
        const s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB, label: "x" });
        assert.throws(() => scanAll(s, Uint8Array.from(bytes), sizes), (e: unknown) => {
          assert.ok(e instanceof CompressionError);
          assert.match(e.message, re);
          assert.match(e.message, /^"x": /);
          return true;
        });
      }
    }
    // A refused header yields no piece of that frame: nothing reached the decoder.
    const s = new ZstdFrameScanner({ maxWindowBytes: 8 * MiB });
    const big = Uint8Array.from([...MAGIC, 0x00, 0x70, ...blockHeader(true, 0, 0)]);
    assert.deepEqual(s.push(big.subarray(0, 5)), []);
    assert.throws(() => s.push(big.subarray(5)), /16 MiB window/);
  });
});

describe("zstd compress", () => {
  const data = concat([randomBytes(2 * MiB, 21), textBytes(3 * MiB, 22), mixedBytes(3 * MiB, 23)]);
  for (const level of [undefined, 1, 9, -5]) {
    test(`level ${level ?? "default (3)"}: zstd -d reproduces the input`, async () => {
      const z = await pipe(data, zstdCompressStream(level === undefined ? {} : { level }), 3 * MiB + 17);
      assert.ok(isZstdMagic(z));
      assert.ok(z.length < data.length);
      const h = parseFrameHeader(z);
      assert.ok(h.kind === "zstd" && h.header.windowSize <= 8 * MiB);
      assert.equal(zstdFrameCount(z), 1); // microsandbox decodes only the first frame
      assert.ok(sameBytes(unzstdCli(z), data));
    });
  }

  test("tiny chunks and an empty input", async () => {
    const small = data.subarray(MiB, MiB + 200 * KiB);
    const z = await pipe(small, zstdCompressStream(), 999);
    assert.ok(sameBytes(unzstdCli(z), small));
    const empty = await pipe(new Uint8Array(), zstdCompressStream());
    assert.ok(isZstdMagic(empty));
    assert.equal(unzstdCli(empty).length, 0);
    assert.equal((await pipe(empty, zstdDecompressStream())).length, 0);
  });

  test("levels outside -7..9 are refused", () => {
    for (const level of [10, 19, 22, -8, 1.5, Number.NaN]) {
      assert.throws(() => zstdCompressStream({ level }), InvalidArgument);
    }
  });
});

describe("zstd decompress", () => {
  const data = mixedBytes(6 * MiB, 31);
  const cases: [string, () => Uint8Array][] = [
    ["zstd -3", () => zstdCli(data, ["-3"])],
    ["zstd -19", () => zstdCli(data, ["-19"])],
    ["zstd -3 --long=23 (8 MiB window)", () => zstdCli(data, ["-3", "--long=23"], { pipe: true })],
    ["zstd -1 --no-check", () => zstdCli(data, ["-1", "--no-check"], { pipe: true })],
  ];
  for (const [name, make] of cases) {
    test(`${name}`, async () => {
      const z = make();
      for (const chunk of [MiB, 12345]) {
        assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), chunk), data), `chunk ${chunk}`);
      }
    });
  }

  test("concatenated frames (cat a.zst b.zst) with skippable frames before and between", async () => {
    const a = data.subarray(0, 2 * MiB + 5);
    const b = data.subarray(2 * MiB + 5);
    const za = zstdCli(a, ["-3"]);
    const zb = zstdCli(b, ["-3", "--long=23"], { pipe: true });
    const z = concat([skippableFrame(textBytes(100, 1)), za, skippableFrame(new Uint8Array(70 * KiB), 9), zb]);
    assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), 1000 * KiB), data));
    // Cut at a frame boundary: a valid stream holding the first frame only.
    assert.ok(sameBytes(await pipe(concat([za, zb]).subarray(0, za.length), zstdDecompressStream()), a));
  });

  test("a stream of skippable frames only decodes to nothing", async () => {
    const z = concat([skippableFrame(textBytes(1000, 1)), skippableFrame(new Uint8Array(0), 15)]);
    assert.equal((await pipe(z, zstdDecompressStream(), 3)).length, 0);
  });

  test("pzstd output (frames preceded by skippable frames)", async () => {
    const pz = run("pzstd", ["-q", "-c", "-p", "2", "-3"], data);
    assert.ok(!isZstdMagic(pz)); // pzstd starts with a skippable frame
    assert.ok(sameBytes(await pipe(pz, zstdDecompressStream(), 777 * KiB), data));
  });

  test("maxWindowBytes lowers the limit; above 8 MiB is refused", async () => {
    const z = zstdCli(data, ["-3"]); // 2 MiB window
    const e = await (async () => {
      try {
        await pipe(z, zstdDecompressStream({ maxWindowBytes: MiB, label: "small" }));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    assert.ok(e instanceof CompressionError);
    assert.match(e.message, /needs a 2 MiB window; snapbundle decodes windows up to 1 MiB/);
    assert.throws(() => zstdDecompressStream({ maxWindowBytes: ZSTD_MAX_WINDOW_BYTES + 1 }), InvalidArgument);
    assert.equal(ZSTD_MAX_WINDOW_BYTES, 8 * MiB);
  });

  test("two concurrent decompressions with 8 MiB windows both succeed", async () => {
    const x = mixedBytes(12 * MiB, 41);
    const y = mixedBytes(12 * MiB, 42);
    const zx = zstdCli(x, ["-3", "--long=23"], { pipe: true });
    const zy = zstdCli(y, ["-3", "--long=23"], { pipe: true });
    assert.equal(parseFrameHeader(zx).kind === "zstd" && (parseFrameHeader(zx) as { header: { windowSize: number } }).header.windowSize, 8 * MiB);
    const [ox, oy] = await Promise.all([
      pipe(zx, zstdDecompressStream(), 256 * KiB),
      pipe(zy, zstdDecompressStream(), 256 * KiB),
    ]);
    assert.ok(sameBytes(ox, x));
    assert.ok(sameBytes(oy, y));
  });
});

describe("zstd window guard", () => {
  test("zstd -3 --long=24 (16 MiB window) is refused and the process lives on", async () => {
    const z = zstdCli(mixedBytes(20 * MiB, 51), ["-3", "--long=24"], { pipe: true });
    const e = await decodeError(z);
    assert.match(e.message, /zstd frame at byte 0 needs a 16 MiB window; snapbundle decodes windows up to 8 MiB \(re-compress without --long\/--ultra\)/);
    await assertDecoderHealthy();
  });

  test("zstd --ultra -22 of a 17 MiB input is refused", async () => {
    const input = concat([randomBytes(64 * KiB, 3), new Uint8Array(17 * MiB)]);
    const z = zstdCli(input, ["--ultra", "-22"]);
    const e = await decodeError(z, "ultra.tar.zst");
    assert.match(e.message, /needs a 17.1 MiB \(\d+ bytes\) window \(single-segment frame: window = content size\)/);
    const piped = zstdCli(input, ["--ultra", "-22"], { pipe: true });
    assert.match((await decodeError(piped)).message, /needs a 128 MiB window/);
    await assertDecoderHealthy();
  });

  test("hand-made headers: a 1 GiB window, a 32 MiB single-segment frame", async () => {
    const gib = Uint8Array.from([...MAGIC, 0x00, 0xa0, ...blockHeader(true, 0, 3), 1, 2, 3]);
    assert.match((await decodeError(gib)).message, /needs a 1 GiB window/);
    const ss = Uint8Array.from([...MAGIC, 0xa0, 0, 0, 0, 2, ...blockHeader(true, 1, 100), 7]);
    assert.match((await decodeError(ss)).message, /needs a 32 MiB window \(single-segment frame/);
    await assertDecoderHealthy();
  });

  test("the next frame of a concatenated stream is checked too", async () => {
    const ok = zstdCli(textBytes(300 * KiB, 5), ["-3"]);
    const bad = zstdCli(textBytes(300 * KiB, 6), ["-3", "--long=24"], { pipe: true });
    const e = await decodeError(concat([ok, bad]), "two.zst", 64 * KiB);
    assert.match(e.message, new RegExp(`zstd frame at byte ${ok.length} needs a 16 MiB window`));
    await assertDecoderHealthy();
  });

  test("an instance that aborted is never reused", async () => {
    const lease = await leaseZstd();
    const inst = lease.instance;
    const dec = new lease.module.ZstdDecompressStreamBinding();
    dec.begin();
    const z = zstdCli(mixedBytes(20 * MiB, 51), ["-3", "--long=24"], { pipe: true });
    assert.throws(() => dec.transform(z.subarray(0, 4 * MiB), () => {}));
    assert.match(String(inst.abortReason), /OOM/);
    assert.ok(inst.printed.some((l) => /OOM/.test(l)));
    lease.release();
    assert.ok(!idleZstdInstanceIds().includes(inst.id));
    await assertDecoderHealthy();
    assert.ok(idleZstdInstanceIds().length >= 1 && idleZstdInstanceIds().length <= MAX_IDLE_INSTANCES);
  });
});

describe("zstd damaged streams", () => {
  const data = textBytes(3 * MiB, 61);
  const z = zstdCli(data, ["-3"]);

  test("flipped bytes in the middle of blocks", async () => {
    for (const at of [0.2, 0.5, 0.8, 0.97]) {
      const bad = z.slice();
      const p = Math.floor(z.length * at);
      for (let i = p; i < p + 16; i++) bad[i]! ^= 0x5a;
      const e = await decodeError(bad);
      assert.match(e.message, /corrupt zstd data/);
    }
    await assertDecoderHealthy();
  });

  test("truncated streams: mid-header, mid-block header, mid-block, before the checksum", async () => {
    const hs = frameHeaderSize(z[4]!);
    const two = concat([z, z]);
    const cuts = [2, 4, 5, hs - 1, hs, hs + 1, hs + 2, hs + 50_000, z.length - 4, z.length - 1, z.length + 3, two.length - 2];
    for (const cut of cuts) {
      const e = await decodeError(two.subarray(0, cut), "cut.zst", 100_000);
      assert.match(e.message, /zstd stream is truncated: input ended at byte \d+, inside /, `cut ${cut}`);
    }
    const empty = await decodeError(new Uint8Array());
    assert.match(empty.message, /truncated: the input is empty/);
    await assertDecoderHealthy();
  });

  test("reserved bit, reserved block type, dictionary id, trailing garbage", async () => {
    const reserved = z.slice();
    reserved[4]! |= 0x08;
    assert.match((await decodeError(reserved)).message, /reserved bit/);

    const hs = frameHeaderSize(z[4]!);
    const blockType3 = z.slice();
    blockType3[hs]! |= 0x06;
    assert.match((await decodeError(blockType3)).message, /reserved block type 3/);

    const withDict = concat([z.subarray(0, 4), Uint8Array.from([z[4]! | 0x01]), z.subarray(5, 6), Uint8Array.from([9]), z.subarray(6)]);
    assert.match((await decodeError(withDict)).message, /needs dictionary 9/);

    const trailing = concat([z, new Uint8Array(16)]);
    assert.match((await decodeError(trailing)).message, new RegExp(`bytes at offset ${z.length} are not a zstd frame`));
    await assertDecoderHealthy();
  });
});

describe("zstd bounded memory", () => {
  // RSS is sampled before each forced collection, so it includes the garbage
  // of the last 16–32 MiB of data plus all that the streams retain (queued
  // output, leaked buffers), which no collection can free.
  test("a 12 KiB chunk that expands to 384 MiB streams with bounded memory", async () => {
    const blocks = 3072;
    const bomb = rleFrame(blocks, 128 * KiB);
    await pipe(rleFrame(4, 1000), zstdDecompressStream()); // warm up: an instance exists
    collectGarbage();
    const before = rss();
    let peak = before;
    let n = 0;
    let ok = true;
    const reader = streamOf([bomb]).pipeThrough(zstdDecompressStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Block i is 128 KiB of byte (i & 255); check the first byte of each chunk.
      if (value[0] !== (Math.floor(n / (128 * KiB)) & 255)) ok = false;
      n += value.length;
      if ((n & (16 * MiB - 1)) === 0) {
        peak = Math.max(peak, rss());
        if ((n & (32 * MiB - 1)) === 0) collectGarbage();
      }
    }
    assert.ok(ok);
    assert.equal(n, blocks * 128 * KiB);
    const growth = (peak - before) / MiB;
    assert.ok(growth < 150, `RSS grew by ${growth.toFixed(0)} MiB`);
  });

  const roundTrip = async (total: number, sample: () => void): Promise<void> => {
    const inHash = await createSha256();
    const outHash = await createSha256();
    let outBytes = 0;
    const source = (function* () {
      for (const c of mixedChunks(total, MiB, 77)) {
        inHash.update(c);
        sample();
        yield c;
      }
    })();
    const reader = streamOf(source).pipeThrough(zstdCompressStream()).pipeThrough(zstdDecompressStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      outHash.update(value);
      outBytes += value.length;
      if ((outBytes & (16 * MiB - 1)) === 0) {
        sample();
        collectGarbage();
      }
    }
    assert.equal(outBytes, total);
    assert.equal(outHash.digestHex(), inHash.digestHex());
  };

  const boundedRoundTrip = async (total: number): Promise<void> => {
    await roundTrip(16 * MiB, () => {}); // warm up: instances, compiled code, allocator arenas
    collectGarbage();
    const before = rss();
    let peak = before;
    await roundTrip(total, () => {
      peak = Math.max(peak, rss());
    });
    peak = Math.max(peak, rss());
    const growth = (peak - before) / MiB;
    assert.ok(growth < 150, `RSS grew by ${growth.toFixed(0)} MiB`);
  };

  test("256 MiB through compress then decompress, hashed on the fly", async () => {
    await boundedRoundTrip(256 * MiB);
  });

  {
    test("4 GiB through compress then decompress (heavy)", { skip: HEAVY }, async () => {
      await boundedRoundTrip(4096 * MiB);
    });
  }

  test("cancelling the reader mid-stream ends the stream", async () => {
    const z = rleFrame(2000, 128 * KiB);
    const reader = streamOf([z]).pipeThrough(zstdDecompressStream()).getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    await reader.cancel("enough");
    await assertDecoderHealthy();
  });
});
