/**
 * Tests of the WebAssembly boundary (wasm/): SHA-256 against sha256sum, and
 * our zstd.wasm against things nobody here wrote — the zstd CLI and the
 * zstd-codec package (a devDependency kept only as this witness).
 *
 * Levels: the zstd CLI writes every level 1..19 (all of them, 256 KiB each);
 * zstd-codec's fixed 16 MiB heap reads our levels 1, 3, 6 and 9, and writes
 * levels 1, 3, 5 and 7 (it aborts with OOM at 9 once it has run a few). Windows: 1 MiB .. 128 MiB (`--long=20..27`),
 * written from a pipe so the frame states the whole window.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ArchiveError, CompressionError, InvalidArgument } from "../src/errors.js";
import { dataRuns } from "../src/sparse.js";
import {
  createSha256,
  isSharedZeros,
  isZstdMagic,
  type PlatformSha256,
  setPlatformSha256,
  setZstdWorkerFactory,
  sha256Hex,
  WasmError,
  zstdDecompressStream as wasmDecompressStream,
  type ZstdWorker,
  type ZstdWorkerFactory,
} from "../wasm/mod.js";
// the streams as the core sees them: wasm/'s, with its WasmErrors mapped to snapbundle's errors
import { ZSTD_DEFAULT_MAX_WINDOW_BYTES, ZSTD_MAX_WINDOW_BYTES, zstdCompressStream, zstdDecompressStream } from "../src/zstd.js";
import { installHost } from "../src/host.js";
import { nodeHost, threadWorker } from "../src/hosts/node.js";
import { concat, randomBytes } from "./helpers/bytes.js";
import {
  collectGarbage,
  mixedBytes,
  mixedChunks,
  pipe,
  rss,
  run,
  sameBytes,
  sha256sum,
  skippableFrame,
  streamOf,
  tempDir,
  textBytes,
  unzstdCli,
  zstdCli,
  zstdFrameCount,
} from "./helpers/wasm-util.js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const KiB = 1024;
const MiB = 1024 * 1024;
const HEAVY = process.env.SNAPBUNDLE_HEAVY === "1";

/** Decompress with our stream; return the error it fails with (or fail the test). */
async function decodeError(
  data: Uint8Array,
  options: { maxWindowBytes?: number; label?: string; chunk?: number } = {},
): Promise<Error> {
  const label = options.label ?? "test.tar.zst";
  try {
    await pipe(data, zstdDecompressStream({ label, maxWindowBytes: options.maxWindowBytes }), options.chunk ?? MiB);
  } catch (e) {
    assert.ok(e instanceof CompressionError || e instanceof ArchiveError, `expected a snapbundle error, got ${String(e)}`);
    assert.ok(e.message.startsWith(`"${label}": `), e.message);
    return e;
  }
  assert.fail("decompression succeeded but should have failed");
}

/** The chunks our decoder hands out for `data`, as they came. */
async function collectChunks(data: Uint8Array): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const reader = streamOf([data]).pipeThrough(zstdDecompressStream()).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  return chunks;
}

/** What `zstd -lv` says about a compressed buffer. */
function zstdList(data: Uint8Array): string {
  const t = tempDir();
  try {
    const f = join(t.dir, "x.zst");
    writeFileSync(f, data);
    return new TextDecoder().decode(run("zstd", ["-lv", f]));
  } finally {
    t.remove();
  }
}

/** The zstd-codec witness (a devDependency; CommonJS without types). */
interface Witness {
  compress(data: Uint8Array, level: number): Uint8Array | null;
  decompress(data: Uint8Array): Uint8Array | null;
}
let witness: Promise<Witness> | undefined;
function zstdCodec(): Promise<Witness> {
  const name = "zstd-codec";
  witness ??= import(name).then(
    (m: { default?: { ZstdCodec: unknown }; ZstdCodec?: unknown }) =>
      new Promise<Witness>((resolve) => {
        const codec = (m.ZstdCodec ?? m.default!.ZstdCodec) as { run(f: (z: { Streaming: new () => Witness }) => void): void };
        codec.run((z) => resolve(new z.Streaming()));
      }),
  );
  return witness;
}

/** Both SHA-256s the core may use: the WebAssembly one wasm/ carries, and the host's platform one, which `installHost(nodeHost())` registers. */
const SHA256_PROVIDERS: [string, (() => PlatformSha256) | null][] = [
  ["WebAssembly (the portable default)", null],
  ["the platform's (node:crypto)", nodeHost().sha256 ?? null],
];

for (const [provider, make] of SHA256_PROVIDERS) {
describe(`sha256: ${provider}`, () => {
  before(() => setPlatformSha256(make));
  after(() => installHost(nodeHost()));

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
}

test("rule: installHost registers the host's platform SHA-256, and createSha256 then uses it", async () => {
  const host = nodeHost();
  assert.equal(typeof host.sha256, "function", "the Node/Deno/Bun host offers node:crypto's SHA-256");
  const sizes: number[] = [];
  installHost({
    ...host,
    sha256: () => {
      const h = host.sha256!();
      return { update: (d) => (sizes.push(d.length), h.update(d)), digest: () => h.digest() };
    },
  });
  try {
    const h = await createSha256();
    h.update(new Uint8Array(3));
    assert.equal(h.digestHex(), sha256sum(new Uint8Array(3)));
    assert.deepEqual(sizes, [3], "the bytes went through the platform hasher");
    installHost({ ...host, sha256: undefined });
    const w = await createSha256();
    w.update(new Uint8Array(3));
    assert.equal(w.digestHex(), sha256sum(new Uint8Array(3)));
    assert.deepEqual(sizes, [3], "without one, the WebAssembly default hashes");
  } finally {
    installHost(host);
  }
});

describe("zstd compress", () => {
  const data = concat([randomBytes(2 * MiB, 21), textBytes(3 * MiB, 22), mixedBytes(3 * MiB, 23)]);

  test("default level: one frame, Check: XXH64, and zstd -d and zstd-codec reproduce the input", async () => {
    const z = await pipe(data, zstdCompressStream(), 3 * MiB + 17);
    assert.ok(isZstdMagic(z));
    assert.ok(z.length < data.length);
    assert.equal(zstdFrameCount(z), 1); // microsandbox decodes only the first frame
    const listed = zstdList(z);
    assert.match(listed, /Check: XXH64/);
    assert.ok(sameBytes(unzstdCli(z), data));
    const theirs = (await zstdCodec()).decompress(z);
    assert.ok(theirs !== null && sameBytes(theirs, data), "zstd-codec decodes our frame");
  });

  test("levels 1..19: zstd -d reproduces the input; one XXH64-checked frame each", async () => {
    const small = mixedBytes(256 * KiB, 24);
    for (let level = 1; level <= 19; level++) {
      const z = await pipe(small, zstdCompressStream({ level }), 100 * KiB);
      assert.ok(sameBytes(unzstdCli(z), small), `level ${level}`);
      assert.match(zstdList(z), /Zstandard Frames: 1\b[\s\S]*Check: XXH64/, `level ${level}`);
    }
  });

  test("zstd-codec decodes our output at levels 1, 3, 6, 9 (its heap holds windows up to 8 MiB)", async () => {
    const w = await zstdCodec();
    for (const level of [1, 3, 6, 9]) {
      const z = await pipe(data, zstdCompressStream({ level }));
      const out = w.decompress(z);
      assert.ok(out !== null && sameBytes(out, data), `level ${level}`);
    }
  });

  test("higher levels compress smaller", async () => {
    const t = textBytes(2 * MiB, 25);
    const z1 = await pipe(t, zstdCompressStream({ level: 1 }));
    const z19 = await pipe(t, zstdCompressStream({ level: 19 }));
    assert.ok(z19.length < z1.length, `${z19.length} < ${z1.length}`);
  });

  test("tiny chunks and an empty input", async () => {
    const small = data.subarray(MiB, MiB + 200 * KiB);
    const z = await pipe(small, zstdCompressStream(), 999);
    assert.ok(sameBytes(unzstdCli(z), small));
    const empty = await pipe(new Uint8Array(), zstdCompressStream());
    assert.ok(isZstdMagic(empty));
    assert.equal(unzstdCli(empty).length, 0);
    assert.equal((await pipe(empty, zstdDecompressStream())).length, 0);
  });

  test("levels outside 1..19 are refused", () => {
    for (const level of [0, 20, 22, -1, 1.5, Number.NaN]) {
      assert.throws(() => zstdCompressStream({ level }), InvalidArgument);
    }
  });
});

describe("zstd decompress", () => {
  const data = mixedBytes(3 * MiB, 31);

  test("zstd CLI output at levels 1, 2, 3, 5, 9, 12, 16, 19 and --ultra -22", async () => {
    for (const args of [["-1"], ["-2"], ["-3"], ["-5"], ["-9"], ["-12"], ["-16"], ["-19"], ["--ultra", "-22"]]) {
      const z = zstdCli(data, args, { pipe: true });
      for (const chunk of [MiB, 12345]) {
        assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), chunk), data), `${args.join(" ")}, chunk ${chunk}`);
      }
    }
  });

  test("zstd-codec output at levels 1, 3, 5, 7", async () => {
    const w = await zstdCodec();
    for (const level of [1, 3, 5, 7]) {
      const z = w.compress(data, level);
      assert.ok(z !== null);
      assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), 300 * KiB), data), `level ${level}`);
    }
  });

  test("windows of 1 MiB to 128 MiB (zstd --long=20..27 from a pipe)", async () => {
    const input = mixedBytes(2 * MiB, 32);
    for (let log = 20; log <= 27; log++) {
      const z = zstdCli(input, ["-3", `--long=${log}`], { pipe: true });
      assert.match(zstdList(z), new RegExp(`Window Size: ${2 ** (log - 20)}(\\.0+)? MiB`), `--long=${log}`);
      assert.ok(sameBytes(await pipe(z, zstdDecompressStream()), input), `--long=${log}`);
    }
  });

  test("zstd --ultra -22 --long=27 loads within the 128 MiB default", async () => {
    const z = zstdCli(data, ["--ultra", "-22", "--long=27"], { pipe: true });
    assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), 777 * KiB), data));
  });

  test("concatenated frames (cat a.zst b.zst) with skippable frames before, between and after", async () => {
    const a = data.subarray(0, MiB + 5);
    const b = data.subarray(MiB + 5);
    const za = zstdCli(a, ["-3"]);
    const zb = zstdCli(b, ["-19", "--long=24"], { pipe: true });
    const z = concat([skippableFrame(textBytes(100, 1)), za, skippableFrame(new Uint8Array(70 * KiB), 9), zb, skippableFrame(new Uint8Array(3), 15)]);
    assert.ok(isZstdMagic(z)); // a leading skippable frame still says "zstd"
    for (const chunk of [1000 * KiB, 4093]) assert.ok(sameBytes(await pipe(z, zstdDecompressStream(), chunk), data));
    assert.ok(sameBytes(unzstdCli(z), data)); // the zstd CLI agrees
  });

  test("a stream of skippable frames only decodes to nothing", async () => {
    const z = concat([skippableFrame(textBytes(1000, 1)), skippableFrame(new Uint8Array(0), 15)]);
    assert.equal((await pipe(z, zstdDecompressStream(), 3)).length, 0);
  });

  test("pzstd output (frames preceded by skippable frames)", async () => {
    const pz = run("pzstd", ["-q", "-c", "-p", "2", "-3"], data);
    assert.ok(sameBytes(await pipe(pz, zstdDecompressStream(), 777 * KiB), data));
  });
});

describe("zstd window limit", () => {
  test("the default is 128 MiB; a 256 MiB window (zstd --long=28) is an ArchiveError naming offset, window and option", async () => {
    assert.equal(ZSTD_DEFAULT_MAX_WINDOW_BYTES, 128 * MiB);
    const ok = zstdCli(textBytes(300 * KiB, 5), ["-3"]);
    const big = zstdCli(textBytes(300 * KiB, 6), ["-3", "--long=28"], { pipe: true });
    const e = await decodeError(concat([ok, big]), { label: "two.zst", chunk: 64 * KiB });
    assert.ok(e instanceof ArchiveError);
    assert.match(e.message, new RegExp(`zstd frame at byte ${ok.length} needs a 256 MiB window, more than the 128 MiB allowed; raise maxWindowBytes \\(snapbundle load --max-window\\)`));
  });

  test("zstd --long=30 (1 GiB window) is refused by default and decodes with maxWindowBytes 1 GiB", async () => {
    const input = textBytes(MiB, 7);
    const z = zstdCli(input, ["-1", "--long=30"], { pipe: true });
    const e = await decodeError(z);
    assert.ok(e instanceof ArchiveError);
    assert.match(e.message, /frame at byte 0 needs a 1 GiB window, more than the 128 MiB allowed; raise maxWindowBytes \(snapbundle load --max-window\) to at least 1 GiB/);
    const out = await pipe(z, zstdDecompressStream({ maxWindowBytes: 1024 * MiB }));
    assert.ok(sameBytes(out, input));
  });

  test("zstd --long=31 (2 GiB window, the largest zstd writes) is refused below 2 GiB and decodes with maxWindowBytes 2 GiB", async () => {
    assert.equal(ZSTD_MAX_WINDOW_BYTES, 2048 * MiB);
    const input = textBytes(MiB, 7);
    const z = concat([skippableFrame(new Uint8Array(5)), zstdCli(input, ["-1", "--long=31"], { pipe: true })]);
    assert.match(zstdList(z), /Window Size: 2(\.0+)? GiB/);
    for (const maxWindowBytes of [undefined, 1024 * MiB]) {
      const e = await decodeError(z, { maxWindowBytes, chunk: 3 });
      assert.ok(e instanceof ArchiveError);
      assert.match(e.message, /frame at byte 13 needs a 2 GiB window, more than the (128 MiB|1 GiB) allowed; raise maxWindowBytes \(snapbundle load --max-window\) to at least 2 GiB/);
    }
    // The window is reserved, not touched: only what the frame writes is memory in use.
    const out = await pipe(z, zstdDecompressStream({ maxWindowBytes: ZSTD_MAX_WINDOW_BYTES }));
    assert.ok(sameBytes(out, input));
  });

  test("a frame declaring a window above 2 GiB (legal in the format, written by no zstd) is refused whatever the limit, saying so", async () => {
    const z = zstdCli(textBytes(MiB, 7), ["-1", "--long=31"], { pipe: true });
    assert.equal(z[4]! & 0x20, 0, "the frame has a window descriptor");
    const bad = z.slice();
    bad[5] = (32 - 10) << 3; // window log 32: 4 GiB
    for (const maxWindowBytes of [undefined, ZSTD_MAX_WINDOW_BYTES]) {
      const e = await decodeError(bad, { maxWindowBytes });
      assert.ok(e instanceof ArchiveError);
      assert.match(e.message, /frame at byte 0 needs a 4 GiB window, more than the (128 MiB|2 GiB) allowed and more than any zstd decodes \(2 GiB, zstd --long=31\); the archive was not written by zstd's own library/);
    }
  });

  test(
    "a match 1.2 GB back in a 2 GiB-window frame (31-bit offsets, read in two parts on wasm32) decodes byte for byte (heavy: SNAPBUNDLE_HEAVY=1)",
    { skip: HEAVY ? false : "set SNAPBUNDLE_HEAVY=1" },
    async () => {
      // 16 MiB of noise, 1.2 GB of zeros, the same noise again: zstd --long=31
      // (from a pipe, so the window stays 2 GiB) encodes the second copy as
      // matches 1.2 GB back, offsets of 31 bits that zstd's own 32-bit
      // decoder never reads.
      const t = tempDir();
      try {
        const noiseFile = join(t.dir, "noise");
        writeFileSync(noiseFile, randomBytes(16 * MiB, 31));
        const gen = `cat ${noiseFile}; head -c 1200000000 /dev/zero; cat ${noiseFile}`;
        const zFile = join(t.dir, "z");
        run("sh", ["-c", `(${gen}) | zstd -q -1 --long=31 -c > ${zFile}`]);
        const expected = new TextDecoder().decode(run("sh", ["-c", `(${gen}) | sha256sum`])).split(" ")[0]!;
        const z = new Uint8Array(readFileSync(zFile));
        assert.ok(z.length < 20 * MiB, `the second copy is matched, not stored again (${z.length} bytes)`);
        assert.match(zstdList(z), /Window Size: 2(\.0+)? GiB/);
        const h = await createSha256();
        let n = 0;
        const reader = streamOf(z, MiB).pipeThrough(zstdDecompressStream({ maxWindowBytes: ZSTD_MAX_WINDOW_BYTES })).getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          h.update(r.value);
          n += r.value.length;
        }
        assert.equal(n, 16 * MiB * 2 + 1_200_000_000);
        assert.equal(h.digestHex(), expected);
      } finally {
        t.remove();
      }
    },
  );

  test("maxWindowBytes lowers the limit; values outside 1 KiB..2 GiB are refused", async () => {
    const z = zstdCli(mixedBytes(3 * MiB, 8), ["-3"], { pipe: true }); // 2 MiB window
    const e = await decodeError(z, { maxWindowBytes: MiB, label: "small" });
    assert.match(e.message, /needs a 2 MiB window, more than the 1 MiB allowed/);
    for (const bad of [ZSTD_MAX_WINDOW_BYTES + 1, 100, 1.5 * MiB + 0.5]) {
      assert.throws(() => zstdDecompressStream({ maxWindowBytes: bad }), InvalidArgument);
    }
  });
});

describe("zstd damaged streams", () => {
  const data = textBytes(3 * MiB, 61);
  const z = zstdCli(data, ["-3"]); // with a content checksum, as the CLI writes by default

  test("a flipped bit in a checksummed frame is refused", async () => {
    // Flip bits all over the frame: each is refused, either as corrupt
    // block data or as a content checksum mismatch naming the frame's bytes.
    for (const at of [0.2, 0.5, 0.8, 0.97]) {
      const bad = z.slice();
      bad[Math.floor(z.length * at)]! ^= 0x10;
      const e = await decodeError(bad);
      assert.ok(e instanceof CompressionError);
      if (/checksum mismatch/.test(e.message)) {
        assert.match(e.message, new RegExp(`the frame at bytes 0\\.\\.${z.length} `));
      } else assert.match(e.message, /corrupt zstd data/);
    }
    // A flip in the stored checksum itself can only be caught by the checksum.
    const bad = z.slice();
    bad[z.length - 2]! ^= 0x01;
    assert.match((await decodeError(bad)).message, new RegExp(`checksum mismatch: the frame at bytes 0\\.\\.${z.length} `));
    // and in the second frame of two, fed in small pieces
    const e2 = await decodeError(concat([z, bad]), { chunk: 4093 });
    assert.match(e2.message, new RegExp(`checksum mismatch: the frame at bytes ${z.length}\\.\\.${2 * z.length} `));
  });

  test("a flipped bit in a raw (stored) block is caught by the checksum alone", async () => {
    const rand = randomBytes(200 * KiB, 62);
    const zr = zstdCli(rand, ["-3"]); // incompressible: raw blocks, the bytes appear as they are
    const at = zr.length >> 1;
    const bad = zr.slice();
    bad[at]! ^= 0x04;
    const e = await decodeError(bad);
    assert.match(e.message, new RegExp(`checksum mismatch: the frame at bytes 0\\.\\.${zr.length} `));
  });

  test("truncated streams: mid-header, mid-block, before the checksum, in the second frame", async () => {
    const two = concat([z, z]);
    for (const cut of [2, 5, 7, 50_000, z.length - 4, z.length - 1, z.length + 3, two.length - 2]) {
      const e = await decodeError(two.subarray(0, cut), { label: "cut.zst", chunk: 100_000 });
      assert.match(e.message, new RegExp(`truncated zstd stream: the input ended at byte ${cut}, inside the frame that starts at byte ${cut > z.length ? z.length : 0}`), `cut ${cut}`);
    }
    assert.match((await decodeError(new Uint8Array())).message, /empty input/);
  });

  test("reserved bit, dictionary id, trailing garbage", async () => {
    const reserved = z.slice();
    reserved[4]! |= 0x08;
    assert.match((await decodeError(reserved)).message, /corrupt zstd data in the frame at byte 0/);
    const withDict = concat([z.subarray(0, 4), Uint8Array.from([z[4]! | 0x01]), z.subarray(5, 6), Uint8Array.from([9]), z.subarray(6)]);
    assert.match((await decodeError(withDict)).message, /the zstd frame at byte 0 needs a dictionary; snapbundle archives are never compressed with one/);
    const trailing = concat([z, new Uint8Array(16)]);
    assert.match((await decodeError(trailing)).message, new RegExp(`corrupt zstd data in the frame at byte ${z.length}.*Unknown frame descriptor`));
  });
});

describe("wasm/ is a leaf: its own errors, mapped by the core", () => {
  const z = zstdCli(textBytes(256 * KiB, 63), ["-3"]);

  /** The error wasm/'s own decompressor fails with on `data`. */
  async function wasmError(data: Uint8Array, maxWindowBytes?: number): Promise<WasmError> {
    try {
      await pipe(data, wasmDecompressStream({ maxWindowBytes }), 100_000);
    } catch (e) {
      assert.ok(e instanceof WasmError, `expected a WasmError, got ${String(e)}`);
      assert.ok(!(e instanceof CompressionError || e instanceof ArchiveError));
      return e;
    }
    assert.fail("decompression succeeded but should have failed");
  }

  test("rule: wasm/ fails with a WasmError carrying a code and the frame's figures; the core maps each code to its own error", async () => {
    const cut = z.subarray(0, z.length - 3);
    const truncated = await wasmError(cut);
    assert.deepEqual([truncated.code, truncated.detail], ["truncated", { frameStart: 0, consumed: cut.length }]);
    assert.ok((await decodeError(cut)) instanceof CompressionError);

    const bad = z.slice();
    bad[z.length - 2]! ^= 0x01;
    const checksum = await wasmError(bad);
    assert.deepEqual([checksum.code, checksum.detail], ["checksum", { frameStart: 0, frameEnd: z.length }]);

    const big = zstdCli(textBytes(64 * KiB, 64), ["--long=21", "-3"], { pipe: true });
    const window = await wasmError(big, 1024 * KiB);
    assert.deepEqual([window.code, window.detail], ["window-too-large", { frameStart: 0, window: 2 * MiB, maxWindow: MiB }]);
    const mapped = await decodeError(big, { maxWindowBytes: MiB });
    assert.ok(mapped instanceof ArchiveError);
    assert.match(mapped.message, /needs a 2 MiB window, more than the 1 MiB allowed; raise maxWindowBytes/);

    assert.equal((await wasmError(new Uint8Array())).code, "empty");
    assert.throws(() => wasmDecompressStream({ maxWindowBytes: 7 }), (e: unknown) => e instanceof WasmError && e.code === "invalid-argument");
    assert.throws(() => zstdDecompressStream({ maxWindowBytes: 7 }), InvalidArgument);
  });
});

describe("zstd bounded memory", () => {
  // RSS is sampled before each forced collection, so it includes the garbage
  // of the last 16–32 MiB of data plus all that the streams retain.
  test("a frame that expands 1000x streams with bounded memory", async () => {
    const bomb = zstdCli(new Uint8Array(256 * MiB), ["-19"], { pipe: true }); // a few KiB
    assert.ok(bomb.length < 64 * KiB);
    await pipe(zstdCli(new Uint8Array(10), []), zstdDecompressStream()); // warm up
    collectGarbage();
    const before = rss();
    let peak = before;
    let n = 0;
    let zeros = true;
    const reader = streamOf([bomb]).pipeThrough(zstdDecompressStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.some((b) => b !== 0)) zeros = false;
      n += value.length;
      if ((n & (16 * MiB - 1)) === 0) {
        peak = Math.max(peak, rss());
        if ((n & (32 * MiB - 1)) === 0) collectGarbage();
      }
    }
    assert.ok(zeros);
    assert.equal(n, 256 * MiB);
    const growth = (peak - before) / MiB;
    assert.ok(growth < 150, `RSS grew by ${growth.toFixed(0)} MiB`);
  });

  const roundTrip = async (total: number, sample: () => void): Promise<void> => {
    const inHash = await createSha256();
    const outHash = await createSha256();
    let outBytes = 0;
    let sinceGc = 0;
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
      // every 16 MiB of output, whatever sizes the decoder's chunks have (Bun's GC is lazier than V8's)
      sinceGc += value.length;
      if (sinceGc >= 16 * MiB) {
        sinceGc = 0;
        sample();
        collectGarbage();
      }
    }
    assert.equal(outBytes, total);
    assert.equal(outHash.digestHex(), inHash.digestHex());
  };

  const boundedRoundTrip = async (total: number): Promise<void> => {
    await roundTrip(16 * MiB, () => {}); // warm up: compiled code, allocator arenas
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

  test("128 MiB through compress then decompress, hashed on the fly", async () => {
    await boundedRoundTrip(128 * MiB);
  });

  test("4 GiB through compress then decompress (heavy: SNAPBUNDLE_HEAVY=1)", { skip: HEAVY ? false : "set SNAPBUNDLE_HEAVY=1" }, async () => {
    await boundedRoundTrip(4096 * MiB);
  });

  test("a 128 MiB-window stream gives its memory back when it ends", async () => {
    const input = mixedBytes(4 * MiB, 9);
    const z = zstdCli(input, ["-3", "--long=27"], { pipe: true });
    for (let i = 0; i < 6; i++) assert.ok(sameBytes(await pipe(z, zstdDecompressStream()), input));
    collectGarbage();
    const before = rss();
    for (let i = 0; i < 6; i++) assert.ok(sameBytes(await pipe(z, zstdDecompressStream()), input));
    collectGarbage();
    const growth = (rss() - before) / MiB;
    assert.ok(growth < 64, `RSS grew by ${growth.toFixed(0)} MiB over 6 decodes`);
  });

  test("zero output is handed out as views of one shared chunk (no buffer per chunk); other output is a fresh copy", async () => {
    const zeroChunks = await collectChunks(zstdCli(new Uint8Array(5 * MiB), ["-3"]));
    assert.equal(zeroChunks.reduce((n, c) => n + c.length, 0), 5 * MiB);
    assert.ok(zeroChunks.length >= 5, `${zeroChunks.length} chunks`);
    assert.equal(new Set(zeroChunks.map((c) => c.buffer)).size, 1, "every all-zero chunk views the same buffer");
    assert.ok(zeroChunks.every((c) => c.every((b) => b === 0)));
    const data = mixedBytes(5 * MiB, 5);
    const dataChunks = await collectChunks(zstdCli(data, ["-3"]));
    assert.ok(sameBytes(concat(dataChunks), data));
    const buffers = new Set(dataChunks.map((c) => c.buffer));
    assert.equal(buffers.size, dataChunks.length, "each chunk of data owns its buffer");
    assert.ok(!buffers.has(zeroChunks[0]!.buffer as ArrayBuffer));
    // the views are known zeros, so the loader's hole finder skips them unscanned;
    // nothing else is taken for them, zero or not
    assert.ok(zeroChunks.every(isSharedZeros));
    assert.ok(!dataChunks.some(isSharedZeros));
    assert.equal(isSharedZeros(new Uint8Array(MiB)), false, "a fresh zero array is not the shared chunk");
    assert.deepEqual(dataRuns(zeroChunks[0]!, 0), []);
  });

  test("rule: dataRuns gives a chunk's data runs at 4 KiB granularity, aligned to the file", () => {
    const chunk = new Uint8Array(6 * 4096);
    chunk[100] = 1; // file offset 1124: the block [0, 4096), of which the chunk holds [1024, 4096)
    chunk[4 * 4096] = 7; // file offset 17408: the block [16384, 20480)
    assert.deepEqual(dataRuns(chunk, 1024), [{ offset: 1024, length: 3072 }, { offset: 16384, length: 4096 }]);
    assert.deepEqual(dataRuns(new Uint8Array(3 * 4096), 0), []);
  });

  test("a reader that transfers (detaches) the shared zero chunk does not break later decoders", async () => {
    const z = zstdCli(new Uint8Array(2 * MiB), ["-3"]);
    const first = await collectChunks(z);
    structuredClone(first[0]!.buffer, { transfer: [first[0]!.buffer as ArrayBuffer] });
    assert.equal(first[0]!.byteLength, 0, "the transfer detached it");
    const again = await collectChunks(z);
    assert.equal(again.reduce((n, c) => n + c.length, 0), 2 * MiB);
    assert.ok(again.every((c) => c.every((b) => b === 0)));
  });

  test("cancelling the reader mid-stream ends the stream", async () => {
    const z = zstdCli(new Uint8Array(64 * MiB), ["-3"], { pipe: true });
    const reader = streamOf([z]).pipeThrough(zstdDecompressStream()).getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    await reader.cancel("enough");
    const data = mixedBytes(MiB, 99);
    assert.ok(sameBytes(await pipe(zstdCli(data, ["-3"]), zstdDecompressStream()), data));
  });
});

describe("zstd compress on a Worker", () => {
  type WebWorker = new (url: URL, options: { type: "module" }) => ZstdWorker;
  const Web = (globalThis as { Worker?: WebWorker }).Worker;
  /** What the Node/Deno/Bun host registers. */
  const runtimeDefault: ZstdWorkerFactory | null = nodeHost().makeWorker ?? null;
  /** The runtime's compression Worker, counting how many the streams make and end. */
  function recorded(make?: ZstdWorkerFactory) {
    const log = { spawned: 0, terminated: 0 };
    const factory: ZstdWorkerFactory = (url) => {
      log.spawned++;
      const w = make ? make(url) : typeof Web === "function" ? new Web(url, { type: "module" }) : threadWorker(url);
      const terminate = w.terminate.bind(w);
      w.terminate = () => {
        log.terminated++;
        terminate();
      };
      return w;
    };
    setZstdWorkerFactory(factory);
    return log;
  }
  const restore = () => setZstdWorkerFactory(runtimeDefault);

  test("rule: the Workers write byte for byte what the inline compressor writes (levels 1, 3, 9), at most two Workers per stream, ended with it", async () => {
    const input = concat([textBytes(3 * MiB), mixedBytes(2 * MiB + 123)]);
    const log = recorded();
    try {
      for (const level of [1, 3, 9]) {
        const onWorker = await pipe(input, zstdCompressStream({ level }), 300 * KiB);
        const inline = await pipe(input, zstdCompressStream({ level, worker: false }), 300 * KiB);
        assert.ok(sameBytes(onWorker, inline), `level ${level}: ${onWorker.length} vs ${inline.length} bytes`);
        assert.ok(sameBytes(unzstdCli(onWorker), input), `level ${level}: zstd -d`);
        assert.equal(zstdFrameCount(onWorker), 1);
      }
      // level 1's jobs are 2 MiB (3 jobs: two Workers), levels 3 and 9 hold this input in one job (one Worker)
      assert.deepEqual(log, { spawned: 4, terminated: 4 });
    } finally {
      restore();
    }
  });

  test("rule: a stream never written to starts no Worker; an empty one still writes a valid frame", async () => {
    const log = recorded();
    try {
      zstdCompressStream();
      assert.equal(log.spawned, 0);
      const empty = await pipe(new Uint8Array(0), zstdCompressStream());
      assert.equal(unzstdCli(empty).length, 0);
      assert.deepEqual(log, { spawned: 1, terminated: 1 });
    } finally {
      restore();
    }
  });

  test("rule: cancelling the reader ends the Worker, and later writes fail", async () => {
    const log = recorded();
    try {
      const pair = zstdCompressStream();
      const writer = pair.writable.getWriter();
      const reader = pair.readable.getReader();
      const written = writer.write(mixedBytes(9 * MiB)); // more than one 8 MiB job: the first is compressed, the second begun
      written.catch(() => {});
      assert.equal((await reader.read()).done, false);
      await reader.cancel("enough");
      assert.deepEqual(log, { spawned: 2, terminated: 2 });
      await assert.rejects(writer.write(new Uint8Array(10)), (e: unknown) => e === "enough");
    } finally {
      restore();
    }
  });

  test("rule: a failure on the Worker errors both sides with a CompressionError that says so", async () => {
    let terminated = 0;
    const fake = (): ZstdWorker => {
      const w: ZstdWorker = {
        onmessage: null,
        onerror: null,
        postMessage(m) {
          if ((m as { type: string }).type === "end") queueMicrotask(() => w.onmessage?.({ data: { type: "error", message: "out of memory" } }));
        },
        terminate: () => void terminated++,
      };
      return w;
    };
    setZstdWorkerFactory(fake);
    try {
      const pair = zstdCompressStream();
      const reading = new Response(pair.readable).arrayBuffer();
      const writer = pair.writable.getWriter();
      const isWorkerFailure = (e: unknown) => e instanceof CompressionError && e.code === "compression" && /zstd compression failed on its Worker: out of memory/.test(e.message);
      await writer.write(new Uint8Array(2 * MiB)).catch(() => {});
      await writer.close().catch(() => {});
      await assert.rejects(writer.closed, isWorkerFailure);
      await assert.rejects(reading, isWorkerFailure);
      assert.equal(terminated, 1);
    } finally {
      restore();
    }
  });

  test("rule: a Worker that cannot start fails the stream with a CompressionError, not the process", async () => {
    const missing = new URL("./no-such-zstd-worker.js", import.meta.url);
    const log = recorded((_url) => (typeof Web === "function" ? new Web(missing, { type: "module" }) : threadWorker(missing)));
    try {
      await assert.rejects(pipe(mixedBytes(2 * MiB), zstdCompressStream()), (e: unknown) => e instanceof CompressionError && /zstd compression Worker failed/.test(e.message));
      assert.deepEqual(log, { spawned: 1, terminated: 1 });
    } finally {
      restore();
    }
  });
});
