/** Rules of sparse scanning and copying (src/sparse.ts): zero detection, data runs at 4 KiB blocks aligned to the file, merged extents, hashing the logical bytes, copies that keep holes. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { InvalidArgument } from "../src/errors.js";
import { copySparse, dataRuns, type Extent, isAllZero, pushExtent, scanFile, SPARSE_BLOCK } from "../src/sparse.js";
import { BACKENDS, withBackend } from "./helpers/backends.js";
import { noise } from "./helpers/bytes.js";
import { writeSparse } from "./helpers/homes.js";

const T = { timeout: 60_000 };

describe("zero detection and data runs", () => {
  test("rule: isAllZero finds a single non-zero byte anywhere, at any alignment of the view", () => {
    const buf = new Uint8Array(300);
    for (const offset of [0, 1, 2, 3]) {
      for (const length of [0, 1, 5, 31, 33, 257]) {
        const view = buf.subarray(offset, offset + length);
        assert.equal(isAllZero(view), true);
        for (let i = 0; i < length; i++) {
          view[i] = 1;
          assert.equal(isAllZero(view), false, `offset ${offset} length ${length} byte ${i}`);
          view[i] = 0;
        }
      }
    }
  });

  test("rule: data runs are whole 4 KiB blocks aligned to the file (not the chunk), zero blocks left out", () => {
    const chunk = new Uint8Array(3 * SPARSE_BLOCK);
    chunk[100] = 1; // in the file block [base, base + 4096 - 1000)
    chunk[2 * SPARSE_BLOCK + 10] = 1;
    const base = 1000; // the chunk starts 1000 bytes into a block
    assert.deepEqual(dataRuns(chunk, base), [
      { offset: 1000, length: SPARSE_BLOCK - 1000 },
      { offset: 2 * SPARSE_BLOCK, length: SPARSE_BLOCK },
    ]);
    assert.deepEqual(dataRuns(new Uint8Array(SPARSE_BLOCK * 2), 0), []);
  });

  test("rule: touching extents merge; separated ones stay apart", () => {
    const e: Extent[] = [];
    pushExtent(e, { offset: 0, length: 10 });
    pushExtent(e, { offset: 10, length: 5 });
    pushExtent(e, { offset: 20, length: 1 });
    assert.deepEqual(e, [{ offset: 0, length: 15 }, { offset: 20, length: 1 }]);
  });
});

for (const backend of BACKENDS) {
  describe(`scanning and copying on ${backend.label}`, () => {
    test("rule: a scan hashes every logical byte (holes as zeros) and maps the data; msb-sparse-sha256-v1 prefixes its tag and size", T, () =>
      withBackend(backend, async (fs, root) => {
        const size = 1 << 20;
        const data = noise(5000, 3);
        await writeSparse(fs, `${root}/u`, size, [[200_000, data]]);
        const logical = new Uint8Array(size);
        logical.set(data, 200_000);
        const plain = await scanFile(fs, `${root}/u`, size, { algorithm: "sha256", extents: true });
        assert.equal(plain.digest, `sha256:${createHash("sha256").update(logical).digest("hex")}`);
        const start = Math.floor(200_000 / SPARSE_BLOCK) * SPARSE_BLOCK;
        const end = Math.ceil(205_000 / SPARSE_BLOCK) * SPARSE_BLOCK;
        assert.deepEqual(plain.extents, [{ offset: start, length: end - start }]);
        assert.equal(plain.dataBytes, end - start);
        const tagged = await scanFile(fs, `${root}/u`, size, { algorithm: "msb-sparse-sha256-v1" });
        const head = new Uint8Array(29);
        head.set(new TextEncoder().encode("msb-sparse-sha256-v1\0"));
        new DataView(head.buffer).setBigUint64(21, BigInt(size), true);
        assert.equal(tagged.digest, `sha256:${createHash("sha256").update(head).update(logical).digest("hex")}`);
        await assert.rejects(scanFile(fs, `${root}/u`, size, { algorithm: "md5" }), InvalidArgument);
      }));

    test("rule: copySparse writes a new file (never over one) with the same bytes, holes kept where the disk can tell", T, () =>
      withBackend(backend, async (fs, root) => {
        const size = 8 << 20;
        await writeSparse(fs, `${root}/u`, size, [[4 << 20, noise(10_000, 4)]]);
        const r = await copySparse(fs, `${root}/u`, `${root}/c`, size, "sha256");
        const a = await scanFile(fs, `${root}/u`, size, { algorithm: "sha256" });
        assert.equal(r.digest, a.digest);
        assert.equal((await scanFile(fs, `${root}/c`, size, { algorithm: "sha256" })).digest, a.digest);
        const info = await fs.lstat(`${root}/c`);
        assert.equal(info.size, size);
        if (backend.onDisk) assert.ok(info.allocatedBytes! < 1 << 20, `allocated ${info.allocatedBytes}`);
        await assert.rejects(copySparse(fs, `${root}/u`, `${root}/c`, size, null), (e: { errno?: string }) => e.errno === "EEXIST");
        await assert.rejects(copySparse(fs, `${root}/u`, `${root}/d`, size + 1, null), /changed size/);
      }));
  });
}
