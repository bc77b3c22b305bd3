/**
 * Rules of snapbundle's own BLAKE3 (dist/wasm/blake3.wasm: the official C
 * library plus our WebAssembly SIMD hash_many), checked against the `b3sum`
 * CLI, which nobody here wrote: the official test-vector inputs, streaming in
 * odd pieces, the batched `BLAKE3(prefix ‖ piece)` the Merkle tree uses, and
 * Merkle roots over inputs that cross its 256 KiB staging buffer.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import "../src/mod.js"; // wasm/ reads its .wasm through the entry point's reader
import { MerkleBuilder, MerkleStream, setMerkleHashWorkers } from "../src/merkle.js";
import { blake3Engine, createBlake3, INLINE_BYTES, setZstdWorkerFactory, type ZstdWorkerFactory } from "../wasm/mod.js";
import { nodeHost } from "../src/hosts/node.js";
import { noise, Rng } from "./helpers/bytes.js";
import { b3sumBlake3, b3sumHex, referenceMerkleRoot } from "./helpers/msb06-reference.js";

const T = { timeout: 60_000 };
const LEAF = 65536;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** The input of BLAKE3's official test vectors: byte i is i % 251. */
function vectorInput(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}
const VECTOR_LENGTHS = [0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168, 7169, 8192, 8193, 16384, 31744, 102400];

describe("BLAKE3 (blake3.wasm)", () => {
  test("rule: every official test-vector input hashes to what b3sum prints", T, async () => {
    const inputs = VECTOR_LENGTHS.map(vectorInput);
    const want = (await b3sumBlake3(inputs)).map(hex);
    for (const [i, input] of inputs.entries()) {
      const h = await createBlake3();
      h.update(input);
      assert.equal(h.digestHex(), want[i], `length ${input.length}`);
    }
  });

  test("rule: a hash fed in odd pieces, across the 256 KiB staging buffer, equals b3sum of the whole", T, async () => {
    const data = noise(9 * 1024 * 1024 + 12345, 3);
    const want = b3sumHex(data);
    const rng = new Rng(9);
    for (const max of [1, 63, 65, 1025, 5 * 1024 * 1024]) {
      const h = await createBlake3();
      for (let at = 0; at < data.length; ) {
        const n = Math.min(data.length - at, 1 + rng.int(max === 1 ? 4096 : max));
        h.update(data.subarray(at, at + n));
        at += n;
      }
      assert.equal(h.digestHex(), want, `pieces up to ${max} bytes`);
    }
    const interleaved = [await createBlake3(), await createBlake3()];
    interleaved[0]!.update(data.subarray(0, 1000));
    interleaved[1]!.update(data.subarray(0, 77));
    interleaved[0]!.update(data.subarray(1000, 3000));
    assert.equal(interleaved[0]!.digestHex(), b3sumHex(data.subarray(0, 3000)), "two hashers at once stay apart");
    assert.equal(interleaved[1]!.digestHex(), b3sumHex(data.subarray(0, 77)));
    assert.throws(() => interleaved[1]!.digestHex(), /finished/);
  });

  test("rule: prefixedMany hashes prefix ‖ piece for every piece, the last zero-filled, across staging buffers", T, async () => {
    const e = await blake3Engine();
    const prefix = new TextEncoder().encode("msb-file-merkle-blake3-v1\0leaf\0");
    const data = noise(65 * LEAF + 1000, 4); // two calls into the module, a partial last leaf
    const got = e.prefixedMany(prefix, data, LEAF);
    assert.equal(got.length, 66 * 32);
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < 66; i++) {
      const piece = new Uint8Array(prefix.length + LEAF);
      piece.set(prefix);
      piece.set(data.subarray(i * LEAF, (i + 1) * LEAF), prefix.length);
      pieces.push(piece);
    }
    const want = await b3sumBlake3(pieces);
    for (let i = 0; i < 66; i++) assert.equal(hex(got.subarray(i * 32, i * 32 + 32)), hex(want[i]!), `piece ${i}`);
    const parents = e.prefixedMany(new Uint8Array([1, 2, 3]), data.subarray(0, 200), 64);
    assert.equal(parents.length, 4 * 32);
    const last = new Uint8Array(3 + 64);
    last.set([1, 2, 3]);
    last.set(data.subarray(192, 200), 3);
    assert.equal(hex(parents.subarray(96)), b3sumHex(last));
    assert.throws(() => e.prefixedMany(new Uint8Array(0), data, 100), /unit 100/);
  });

  test("rule: Merkle roots of data spanning several batches equal the reference built on b3sum", T, async () => {
    const bytes = new Uint8Array(150 * LEAF + 4321);
    bytes.set(noise(70 * LEAF, 6), 3 * LEAF + 17); // across the 4 MiB batch boundary
    bytes.set(noise(5000, 7), bytes.length - 5000);
    const want = await referenceMerkleRoot(bytes);
    const whole = new MerkleBuilder(bytes.length);
    await whole.addChunk(bytes, null);
    assert.equal(await whole.finish(), want, "one chunk, every leaf hashed");
    const stream = new MerkleStream(bytes.length);
    for (let at = 0; at < bytes.length; at += 3 * 1024 * 1024 + 5) await stream.update(bytes.subarray(at, at + 3 * 1024 * 1024 + 5));
    assert.equal(await stream.finish(), want, "streamed, zero leaves skipped");
  });

  describe("Merkle leaves on Workers", () => {
    const runtimeDefault: ZstdWorkerFactory | null = nodeHost().makeWorker ?? null;
    /** The host's Workers, counting the hashing ones started and terminated. */
    function recorded() {
      setMerkleHashWorkers(2);
      const log = { spawned: 0, terminated: 0, live: 0 };
      setZstdWorkerFactory((url) => {
        assert.ok(url.pathname.endsWith("/blake3-worker.js"), url.href);
        const w = runtimeDefault!(url);
        log.spawned++;
        log.live++;
        const terminate = w.terminate.bind(w);
        w.terminate = () => {
          log.terminated++;
          log.live--;
          terminate();
        };
        return w;
      });
      return log;
    }
    const restore = () => {
      setZstdWorkerFactory(runtimeDefault);
      setMerkleHashWorkers(0);
    };
    /** Data past the inline allowance, with holes between runs, fed in 4 MiB chunks as the sparse scan does. */
    const bytes = new Uint8Array(INLINE_BYTES + 24 * 1024 * 1024 + 5 * LEAF + 99);
    const piece = noise(3 * 1024 * 1024 + 7, 11);
    for (let at = 0, n = 0; at < bytes.length; at += 5 * 1024 * 1024, n++) {
      bytes.set(piece.subarray(0, Math.min(piece.length, bytes.length - at)), at);
      bytes[at] = n; // no two runs alike
    }
    async function root(abandonAfter = Infinity): Promise<string | null> {
      const m = new MerkleBuilder(bytes.length);
      const chunk = new Uint8Array(4 * 1024 * 1024); // refilled after each call, as the scan's buffers are
      for (let at = 0, n = 0; at < bytes.length; at += chunk.length, n++) {
        if (n === abandonAfter) {
          m.close();
          return null;
        }
        const piece = bytes.subarray(at, at + chunk.length);
        chunk.set(piece);
        await m.addChunk(chunk.subarray(0, piece.length), null);
        chunk.fill(0xee);
      }
      return m.finish();
    }

    test("rule: the root is the same on Workers as inline (checked against b3sum above); finish ends every Worker", T, async () => {
      setZstdWorkerFactory(null);
      setMerkleHashWorkers(2); // allowed, but none can be made
      let want: string | null;
      try {
        want = await root();
      } finally {
        restore();
      }
      if (runtimeDefault === null) return;
      const log = recorded();
      try {
        assert.equal(await root(), want, "on Workers");
        assert.deepEqual(log, { spawned: 2, terminated: 2, live: 0 });
        setMerkleHashWorkers(0);
        assert.equal(await root(), want, "Workers allowed none (the default)");
        assert.equal(log.spawned, 2, "the default starts no Worker");
      } finally {
        restore();
      }
    });

    test("rule: a builder abandoned mid-way and closed leaves no Worker running", T, async () => {
      if (runtimeDefault === null) return;
      const log = recorded();
      try {
        assert.equal(await root(12), null);
        assert.ok(log.spawned > 0, "Workers were started before the builder was abandoned");
        assert.equal(log.live, 0);
      } finally {
        restore();
      }
    });
  });
});
