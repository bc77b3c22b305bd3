/** Rules of the small I/O helpers every module uses (src/io.ts): what "missing" means, bounded reads, new files, atomic replacement. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgument } from "../src/errors.js";
import type { FileHandle } from "../src/fs/types.js";
import { lstatOrNull, readChunks, readSmallFile, writeAtomically, withFile, writeNewFile } from "../src/io.js";
import { BACKENDS, withBackend } from "./helpers/backends.js";
import { noise } from "./helpers/bytes.js";

const T = { timeout: 60_000 };
const enc = new TextEncoder();

for (const backend of BACKENDS) {
  describe(`io on ${backend.label}`, () => {
    test("rule: lstatOrNull is null for a missing path or one under a file, and lets other errors through", T, () =>
      withBackend(backend, async (fs, root) => {
        assert.equal(await lstatOrNull(fs, `${root}/missing`), null);
        await writeNewFile(fs, `${root}/f`, enc.encode("x"));
        assert.equal(await lstatOrNull(fs, `${root}/f/under`), null, "ENOTDIR is missing too");
        assert.equal((await lstatOrNull(fs, `${root}/f`))?.kind, "file");
      }));

    test("rule: readSmallFile refuses a file over its bound, naming the file and both sizes, before reading it", T, () =>
      withBackend(backend, async (fs, root) => {
        await writeNewFile(fs, `${root}/f`, noise(100));
        assert.deepEqual(await readSmallFile(fs, `${root}/f`, 100), noise(100));
        await assert.rejects(readSmallFile(fs, `${root}/f`, 99), (e: unknown) => e instanceof InvalidArgument && e.message === `${root}/f is 100 bytes; at most 99 are read`);
      }));

    test("rule: writeNewFile never replaces a file unless told to", T, () =>
      withBackend(backend, async (fs, root) => {
        await writeNewFile(fs, `${root}/f`, enc.encode("one"));
        await assert.rejects(writeNewFile(fs, `${root}/f`, enc.encode("two")), (e: { errno?: string }) => e.errno === "EEXIST");
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/f`, 10)), "one");
        await writeNewFile(fs, `${root}/f`, enc.encode("two"), true);
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/f`, 10)), "two");
      }));

    test("rule: an atomic replacement that fails leaves the old file and no temporary", T, () =>
      withBackend(backend, async (fs, root) => {
        await writeNewFile(fs, `${root}/f`, enc.encode("old"));
        await assert.rejects(writeAtomically(fs, `${root}/f`, async (h: FileHandle) => {
          await h.write(enc.encode("half"), 0);
          throw new Error("writer failed");
        }), /writer failed/);
        await assert.rejects(writeAtomically(fs, `${root}/f`, enc.encode("new"), { beforeRename: async () => { throw new Error("refused"); } }), /refused/);
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/f`, 10)), "old");
        assert.deepEqual(await fs.readdir(root), ["f"]);
        await writeAtomically(fs, `${root}/f`, enc.encode("new"));
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/f`, 10)), "new");
        assert.deepEqual(await fs.readdir(root), ["f"]);
      }));

    test("rule: readChunks yields [start, size) in order, at its offsets, and fails on a file shorter than promised", T, () =>
      withBackend(backend, async (fs, root) => {
        const data = noise(10_000, 5);
        await writeNewFile(fs, `${root}/f`, data);
        await withFile(fs, `${root}/f`, "r", async (h) => {
          const seen: number[] = [];
          const parts: Uint8Array[] = [];
          for await (const c of readChunks(h, 9_000, `${root}/f`, { start: 1000, chunkBytes: 4096 })) {
            seen.push(c.offset);
            parts.push(c.data.slice());
          }
          assert.deepEqual(seen, [1000, 5096, 9192]);
          assert.deepEqual(Buffer.concat(parts), Buffer.from(data.subarray(1000)));
          await assert.rejects(async () => {
            for await (const _ of readChunks(h, 20_000, `${root}/f`)) void _;
          }, new RegExp(`${root}/f`));
        });
      }));

    test("rule: readChunks with the caller's buffers keeps all but one of them reading ahead, and never refills the one the consumer holds", T, () =>
      withBackend(backend, async (fs, root) => {
        const data = noise(40_000, 6);
        await writeNewFile(fs, `${root}/f`, data);
        await withFile(fs, `${root}/f`, "r", async (real) => {
          let inFlight = 0;
          let most = 0;
          let held: ArrayBufferLike | null = null;
          const h: FileHandle = Object.create(real, {
            read: {
              value: async (buf: Uint8Array, pos: number) => {
                assert.notEqual(buf.buffer, held, "a read into the buffer the consumer holds");
                most = Math.max(most, ++inFlight);
                await new Promise((r) => setTimeout(r, 5));
                try {
                  return await real.read(buf, pos);
                } finally {
                  inFlight--;
                }
              },
            },
          });
          const buffers = [0, 1, 2].map(() => new Uint8Array(4096));
          const parts: Uint8Array[] = [];
          for await (const c of readChunks(h, data.length, `${root}/f`, { chunkBytes: 4096, buffers })) {
            held = c.data.buffer;
            assert.ok(buffers.some((b) => b.buffer === c.data.buffer), "a chunk is one of the caller's buffers");
            await new Promise((r) => setTimeout(r, 10)); // the consumer works while the reads run
            parts.push(c.data.slice());
            held = null;
          }
          assert.deepEqual(Buffer.concat(parts), Buffer.from(data));
          assert.equal(most, 2, "two reads in flight with three buffers");
        });
      }));
  });
}
