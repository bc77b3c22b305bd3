/** Rules of the tar reader's byte cursor, ByteSource (src/tar/source.ts): blocks, views, skips, positions, release. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ByteSource } from "../src/tar/source.js";
import { noise } from "./helpers/bytes.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

/** A stream of the given chunks, in order, that records whether it was cancelled and how often it was pulled. */
function chunkStream(chunks: readonly unknown[]): { stream: ReadableStream<Uint8Array>; state: { cancels: number; pulls: number } } {
  const state = { cancels: 0, pulls: 0 };
  let k = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        state.pulls++;
        if (k < chunks.length) c.enqueue(chunks[k++] as Uint8Array);
        else c.close();
      },
      cancel() {
        state.cancels++;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

/** `bytes` cut at the given lengths (the rest in one last chunk). */
function cut(bytes: Uint8Array, lengths: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const n of lengths) {
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  if (at < bytes.length) out.push(bytes.slice(at));
  return out;
}

describe("readBlock", () => {
  test("rule: a block that lies in one chunk is a copy of it (a header outlives the chunk, which may be lent), taken at the current position", T, async () => {
    const bytes = noise(1536, 1);
    const chunk = bytes.slice();
    const src = new ByteSource(chunkStream([chunk]).stream);
    for (let b = 0; b < 3; b++) {
      const block = await src.readBlock(); // the last one is exactly what is left of the chunk
      assert.ok(block instanceof Uint8Array);
      assert.notEqual(block.buffer, chunk.buffer, `block ${b} is a copy`);
      assert.deepEqual(block, bytes.subarray(b * 512, (b + 1) * 512));
      assert.equal(src.position, (b + 1) * 512);
    }
    assert.equal(await src.readBlock(), 0);
    await src.release();
  });

  test("rule: a block spread over chunks (empty ones too) is assembled into a copy, byte for byte", T, async () => {
    const bytes = noise(2048, 2);
    for (const lengths of [[1, 510, 1], [100, 0, 300, 0, 112], [511, 2], [700], [512, 0, 512], [3, 1021], [1024, 1023]]) {
      const chunks = cut(bytes, lengths);
      const src = new ByteSource(chunkStream(chunks).stream);
      for (let b = 0; b < 4; b++) {
        const block = await src.readBlock();
        assert.ok(block instanceof Uint8Array, `cut ${lengths}: block ${b} is whole`);
        assert.equal(block.length, 512);
        assert.deepEqual(block, bytes.subarray(b * 512, (b + 1) * 512), `cut ${lengths}: block ${b}`);
        assert.equal(src.position, (b + 1) * 512, `cut ${lengths}: position after block ${b}`);
      }
      assert.equal(await src.readBlock(), 0, `cut ${lengths}: the end`);
      await src.release();
    }
  });

  test("rule: at the end of input, readBlock reports how many bytes were left (0-511) and counts them", T, async () => {
    for (const [size, lengths] of [[0, []], [1, []], [511, []], [511, [200, 0, 100]], [512 + 300, [600]], [1024 + 511, [1, 1, 1]]] as const) {
      const bytes = noise(size, 3);
      const src = new ByteSource(chunkStream(cut(bytes, lengths)).stream);
      let whole = 0;
      let last: Uint8Array | number;
      while ((last = await src.readBlock()) instanceof Uint8Array) whole++;
      assert.equal(whole, Math.floor(size / 512), `size ${size}: whole blocks`);
      assert.equal(last, size % 512, `size ${size}: bytes left`);
      assert.equal(src.position, size, `size ${size}: position counts the partial block`);
      assert.equal(await src.readBlock(), 0, `size ${size}: stays at the end`);
      await src.release();
    }
  });

  test("rule: a block assembled from a chunk's tail continues from the current position", T, async () => {
    const bytes = noise(1100, 4);
    const src = new ByteSource(chunkStream(cut(bytes, [600, 500])).stream);
    assert.deepEqual(await src.take(100), bytes.subarray(0, 100));
    const block = await src.readBlock(); // 500 bytes of the first chunk, 12 of the second
    assert.ok(block instanceof Uint8Array);
    assert.deepEqual(block, bytes.subarray(100, 612));
    assert.deepEqual(await src.take(1000), bytes.subarray(612, 1100));
    assert.equal(src.position, 1100);
    await src.release();
  });

  test("rule: a chunk that is not a Uint8Array is refused with a TypeError", T, async () => {
    for (const bad of ["text", [1, 2, 3], new ArrayBuffer(512), new Uint16Array(256)]) {
      const src = new ByteSource(chunkStream([bad]).stream);
      await assert.rejects(src.readBlock(), (e: unknown) => {
        assert.ok(e instanceof TypeError, `expected TypeError, got ${String(e)}`);
        assert.match(e.message, /^tar reader: the source stream must yield Uint8Array chunks$/);
        return true;
      });
      await src.release();
    }
  });
});

describe("take and skip", () => {
  test("rule: take gives at most max bytes, never past the current chunk, and null at the end", T, async () => {
    const bytes = noise(1000, 5);
    const src = new ByteSource(chunkStream(cut(bytes, [300, 0, 700])).stream);
    const a = await src.take(100);
    assert.deepEqual(a, bytes.subarray(0, 100));
    assert.equal(src.position, 100);
    const b = await src.take(5000); // the rest of the first chunk only
    assert.deepEqual(b, bytes.subarray(100, 300));
    assert.equal(src.position, 300);
    const c = await src.take(700); // the empty chunk is passed over
    assert.deepEqual(c, bytes.subarray(300, 1000));
    assert.equal(src.position, 1000);
    assert.equal(await src.take(1), null);
    assert.equal(await src.take(1), null);
    assert.equal(src.position, 1000);
    await src.release();
  });

  test("rule: skip passes over exactly n bytes across chunks, and fewer only at the end", T, async () => {
    const bytes = noise(3000, 6);
    const src = new ByteSource(chunkStream(cut(bytes, [100, 900, 1, 999])).stream);
    assert.equal(await src.skip(0), 0);
    assert.equal(src.position, 0);
    assert.equal(await src.skip(1500), 1500);
    assert.equal(src.position, 1500);
    assert.deepEqual(await src.take(10), bytes.subarray(1500, 1510));
    assert.equal(await src.skip(2000), 1490);
    assert.equal(src.position, 3000);
    assert.equal(await src.skip(5), 0);
    await src.release();
  });
});

describe("release", () => {
  test("rule: release cancels the stream without draining it and frees its lock, once", T, async () => {
    const bytes = noise(4096, 7);
    const { stream, state } = chunkStream(cut(bytes, [512, 512, 512, 512]));
    const src = new ByteSource(stream);
    assert.ok((await src.readBlock()) instanceof Uint8Array);
    const pulled = state.pulls;
    await src.release();
    assert.equal(state.cancels, 1);
    assert.equal(state.pulls, pulled, "not drained");
    assert.equal(stream.locked, false);
    await src.release();
    assert.equal(state.cancels, 1, "idempotent");
  });

  test("rule: a released source hands out no more bytes, not even those of the chunk in hand", T, async () => {
    const src = new ByteSource(chunkStream([noise(2048, 8)]).stream);
    assert.ok((await src.readBlock()) instanceof Uint8Array);
    await src.release();
    // The chunk in hand is dropped: nothing more comes out of a released source.
    await assert.rejects(src.take(10), TypeError);
  });

  test("rule: releasing a stream that failed does not throw; the failure is read()'s to report", T, async () => {
    const boom = new Error("disk on fire");
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        c.error(boom);
      },
    });
    const src = new ByteSource(stream);
    await assert.rejects(src.readBlock(), (e: unknown) => e === boom);
    await src.release();
    assert.equal(stream.locked, false);
  });
});
