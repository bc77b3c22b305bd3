/**
 * Rules of the `msb-file-merkle-blake3-v1` builders (src/merkle.ts) — the
 * goldens and the zero-leaf shortcuts are cross-checked against b3sum in
 * msb06-artifacts; here: the builders' contracts (byte counts, leaf
 * boundaries), chunking independence, and the root of a sparse file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import "../src/mod.js"; // wasm/ reads its .wasm through the entry point's reader
import { MerkleBuilder, MerkleStream, merkleRootOfFile } from "../src/merkle.js";
import { BACKENDS, withBackend } from "./helpers/backends.js";
import { noise, Rng } from "./helpers/bytes.js";
import { writeSparse } from "./helpers/homes.js";
import { referenceMerkleRoot } from "./helpers/msb06-reference.js";

const T = { timeout: 60_000 };
const LEAF = 65536;

describe("Merkle builders", () => {
  test("rule: a MerkleStream's root does not depend on how its bytes are cut", T, async () => {
    const bytes = new Uint8Array(3 * LEAF + 777);
    bytes.set(noise(5000, 1), LEAF - 100);
    bytes.set(noise(300, 2), bytes.length - 300);
    const want = await referenceMerkleRoot(bytes);
    const rng = new Rng(5);
    for (let round = 0; round < 3; round++) {
      const m = new MerkleStream(bytes.length);
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(bytes.length - at, 1 + rng.int(2 * LEAF));
        await m.update(bytes.subarray(at, at + n));
        at += n;
      }
      assert.equal(await m.finish(), want, `round ${round}`);
    }
    const zeros = new MerkleStream(2 * LEAF + 3);
    await zeros.update(new Uint8Array(100));
    await zeros.zeros(2 * LEAF - 97);
    assert.equal(await zeros.finish(), await referenceMerkleRoot(new Uint8Array(2 * LEAF + 3)));
  });

  test("rule: a builder takes exactly its size, in whole leaves until the last: more, fewer, or a chunk after a partial leaf is refused", T, async () => {
    assert.throws(() => new MerkleBuilder(-1), RangeError);
    assert.throws(() => new MerkleBuilder(2 ** 53), RangeError);
    const over = new MerkleBuilder(10);
    await assert.rejects(over.addChunk(new Uint8Array(11), null), /more than 10 bytes/);
    const under = new MerkleBuilder(LEAF + 1);
    await under.addChunk(new Uint8Array(LEAF), null);
    await assert.rejects(under.finish(), /got 65536 of 65537 bytes/);
    const partial = new MerkleBuilder(3 * LEAF);
    await partial.addChunk(new Uint8Array(100), null);
    await assert.rejects(partial.addChunk(new Uint8Array(100), null), /after a partial leaf/);
    await assert.rejects(partial.addZeros(LEAF), /after a partial leaf/);
  });

  for (const backend of BACKENDS) {
    test(`rule: the root of a sparse file on ${backend.label} is the root of its logical bytes, holes as zeros`, T, () =>
      withBackend(backend, async (fs, root) => {
        const size = 40 * LEAF + 12;
        const data = noise(70_000, 8);
        await writeSparse(fs, `${root}/u`, size, [[7 * LEAF + 5, data]]);
        const logical = new Uint8Array(size);
        logical.set(data, 7 * LEAF + 5);
        const progress: number[] = [];
        assert.equal(await merkleRootOfFile(fs, `${root}/u`, size, (n) => progress.push(n)), await referenceMerkleRoot(logical));
        assert.equal(progress.at(-1), size);
      }));
  }
});
