/** Byte-stream plumbing for archives (a file as a stream and as a sink, counting, peeking, zstd detection, lending): the rules of src/archive/streams.ts. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { countingReadable, decompressIfZstd, fileReadable, handleWritable, lendStream, peekStream } from "../src/archive/streams.js";
import { ArchiveError, CompressionError } from "../src/errors.js";
import { readSmallFile } from "../src/io.js";
import { zstdCli } from "./helpers/archive-bundle.js";
import { writeBytes } from "./helpers/archive-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { type Backend, BACKENDS, noise } from "./helpers/homes.js";
import { probedSource, readBytes, readChunks } from "./helpers/stream-probe.js";
import { concatBytes } from "./helpers/tar-craft.js";

/** Let queued stream work (a pull that read-ahead would start) run. */
const settle = () => new Promise((r) => setTimeout(r, 5));

/** Streams that a regression could leave waiting forever: fail instead of hanging. */
const BOUNDED = { timeout: 10_000 };

/** A zstd skippable frame (magic `5? 2a 4d 18`, u32le size, that many bytes). */
function skippableFrame(low: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  b.set([0x50 | low, 0x2a, 0x4d, 0x18]);
  new DataView(b.buffer).setUint32(4, payload.length, true);
  b.set(payload, 8);
  return b;
}

/** Run `body` with a 3000-byte file `<root>/f` on a fresh directory of `backend`, seen through a counting {@link FaultyFs}. */
async function withCountedFile(backend: Backend, body: (fs: FaultyFs, root: string) => Promise<void>): Promise<void> {
  const { fs, root, cleanup } = await backend.make();
  try {
    await writeBytes(fs, `${root}/f`, noise(3000, 5));
    await body(new FaultyFs(fs), root);
  } finally {
    cleanup();
  }
}

for (const backend of BACKENDS) {
  describe(`streams: a file as a stream on ${backend.label}`, () => {
    test("rule: a file is read whole, in chunks of the size asked, the last one only as long as what is left", BOUNDED, async () => {
      const { fs, root, cleanup } = await backend.make();
      try {
        const data = noise(10_000, 4);
        await writeBytes(fs, `${root}/f`, data);
        const chunks = await readChunks(fileReadable(fs, `${root}/f`, 4096));
        assert.deepEqual(chunks.map((c) => c.length), [4096, 4096, 1808]);
        assert.deepEqual(concatBytes(...chunks), data);
        assert.deepEqual(await readBytes(fileReadable(fs, `${root}/f`)), data, "the default chunk holds a small file");
        await writeBytes(fs, `${root}/empty`, new Uint8Array(0));
        assert.deepEqual(await readChunks(fileReadable(fs, `${root}/empty`)), []);
      } finally {
        cleanup();
      }
    });

    test("rule: the file is opened only when first read, and closed once at its end or on cancel", BOUNDED, async () => {
      await withCountedFile(backend, async (fs, root) => {
        const stream = fileReadable(fs, `${root}/f`, 1024);
        await settle();
        assert.equal(fs.byKind.open ?? 0, 0, "nothing is opened before the first read");
        const reader = stream.getReader();
        await reader.read();
        await settle();
        assert.deepEqual([fs.byKind.open, fs.byKind.read], [1, 1], "one read per chunk asked for, none ahead");
        while (!(await reader.read()).done);
        assert.deepEqual([fs.byKind.open, fs.byKind.close], [1, 1]);

        fs.reset();
        const cancelled = fileReadable(fs, `${root}/f`, 1024).getReader();
        await cancelled.read();
        await cancelled.cancel();
        await cancelled.cancel();
        assert.deepEqual([fs.byKind.open, fs.byKind.close], [1, 1], "a cancel closes the file, once");

        fs.reset();
        await fileReadable(fs, `${root}/f`).cancel();
        assert.equal(fs.byKind.open ?? 0, 0, "a stream cancelled unread never opens the file");
        assert.equal(fs.byKind.close ?? 0, 0);
      });
    });

    test("rule: a failing read errors the stream with the filesystem's error, and the file is closed", BOUNDED, async () => {
      await withCountedFile(backend, async (fs, root) => {
        fs.arm({ at: 2, kind: "read" });
        await assert.rejects(readBytes(fileReadable(fs, `${root}/f`, 1024)), fsErrorRule("EIO", "read"));
        assert.deepEqual([fs.byKind.open, fs.byKind.close], [1, 1]);

        fs.reset();
        fs.arm({ at: 1, kind: "close" });
        await assert.rejects(readBytes(fileReadable(fs, `${root}/f`, 1024)), fsErrorRule("EIO", "close"), "a close failing at the end is the read's error");
        assert.equal(fs.byKind.close, 1, "the failed close is not retried");

        await assert.rejects(readBytes(fileReadable(fs.inner, `${root}/missing`)), fsErrorRule("ENOENT", "open"));
      });
    });
  });

  describe(`streams: a file as a sink on ${backend.label}`, () => {
    test("rule: chunks written to a handle's sink land one after another, and the handle stays open for its owner", BOUNDED, async () => {
      const { fs, root, cleanup } = await backend.make();
      try {
        const parts = [noise(700, 1), noise(1, 2), noise(5000, 3)];
        const h = await fs.open(`${root}/out`, "w");
        try {
          const writer = handleWritable(h).getWriter();
          for (const p of parts) await writer.write(p);
          await writer.close();
          await h.write(noise(10, 4), 5701);
        } finally {
          await h.close();
        }
        assert.deepEqual(await readSmallFile(fs, `${root}/out`, 1 << 20), concatBytes(...parts, noise(10, 4)));
      } finally {
        cleanup();
      }
    });
  });
}

describe("streams: counting", () => {
  test("rule: the count reports the running total after each chunk, and the bytes pass unchanged", BOUNDED, async () => {
    const totals: number[] = [];
    const data = noise(2500, 8);
    const out = await readChunks(countingReadable(probedSource(data, 1000).stream, (n) => totals.push(n)));
    assert.deepEqual(totals, [1000, 2000, 2500]);
    assert.deepEqual(concatBytes(...out), data);
  });
});

describe("streams: peeking", () => {
  test("rule: the head holds exactly the bytes asked for, reading only the chunks that hold them", BOUNDED, async () => {
    const data = noise(2000, 9);
    const source = probedSource(data, 100);
    const { head, stream } = await peekStream(source.stream, 512);
    assert.deepEqual(head, data.subarray(0, 512));
    assert.equal(source.pulls(), 6);
    await settle();
    assert.equal(source.pulls(), 6, "nothing read ahead");
    const reader = stream.getReader();
    assert.deepEqual((await reader.read()).value, data.subarray(0, 600), "the head comes first, in one chunk");
    await settle();
    assert.equal(source.pulls(), 6, "the rest is read only when asked for");
    reader.releaseLock();
    assert.deepEqual(await readBytes(stream), data.subarray(600));
  });

  test("rule: a head within one chunk is a copy of its first bytes, and the chunk is replayed whole", BOUNDED, async () => {
    const data = noise(1000, 10);
    for (const [chunk, n] of [[512, 512], [1000, 4]] as const) {
      const source = probedSource(data, chunk);
      const { head, stream } = await peekStream(source.stream, n);
      assert.deepEqual(head, data.subarray(0, n));
      assert.equal(source.pulls(), 1);
      assert.deepEqual(await readBytes(stream), data);
    }
  });

  test("rule: the head is ours: a source that refills its chunk after the next read (a lent buffer) leaves it intact", BOUNDED, async () => {
    const lent = new Uint8Array(64);
    let round = 0;
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (round === 3) return controller.close();
          lent.fill(++round);
          controller.enqueue(lent.subarray(0, round === 1 ? 3 : 64)); // a short first chunk, then whole ones
        },
      },
      { highWaterMark: 0 },
    );
    const { head, stream } = await peekStream(source, 8);
    assert.deepEqual([...head], [1, 1, 1, 2, 2, 2, 2, 2]);
    const chunks = await readChunks(stream);
    assert.deepEqual([...head], [1, 1, 1, 2, 2, 2, 2, 2], "the later reads refilled the source's buffer, not the head");
    assert.deepEqual(chunks.map((c) => c.length), [67, 64], "the gathered head chunk, then the rest");
  });

  test("rule: an input shorter than the peek is all head, and the stream still ends", BOUNDED, async () => {
    const data = noise(300, 11);
    const { head, stream } = await peekStream(probedSource(data, 128).stream, 512);
    assert.deepEqual(head, data);
    assert.deepEqual(await readChunks(stream), [data]);
    const empty = await peekStream(probedSource(new Uint8Array(0), 128).stream, 512);
    assert.equal(empty.head.length, 0);
    assert.deepEqual(await readChunks(empty.stream), [], "an empty input gives no chunk at all");
  });

  test("rule: cancelling the peeked stream cancels the source with the same reason; a source error reaches the reader", BOUNDED, async () => {
    const source = probedSource(noise(2000, 12), 100);
    const { stream } = await peekStream(source.stream, 150);
    const why = new Error("consumer gave up");
    await stream.cancel(why);
    assert.deepEqual(source.cancels, [why]);

    const failing = probedSource(noise(2000, 12), 100, { failAt: 4, error: new Error("disk gone") });
    const peeked = await peekStream(failing.stream, 150);
    await assert.rejects(readBytes(peeked.stream), /disk gone/);
    await assert.rejects(peekStream(probedSource(noise(2000, 12), 100, { failAt: 1, error: new Error("no disk") }).stream, 150), /no disk/);
  });
});

describe("streams: zstd detection", () => {
  const tar = concatBytes(noise(3000, 13), new Uint8Array(4000));

  test("rule: a zstd frame first is decompressed, whatever the file name", BOUNDED, async () => {
    assert.deepEqual(await readBytes(await decompressIfZstd(probedSource(zstdCli(tar), 700).stream, "a.tar")), tar);
  });

  test("rule: skippable frames before the data mean zstd too, and are skipped", BOUNDED, async () => {
    for (const low of [0x0, 0xf]) {
      const input = concatBytes(skippableFrame(low, noise(20, 1)), zstdCli(tar));
      assert.deepEqual(await readBytes(await decompressIfZstd(probedSource(input, 3).stream, "s.tar.zst")), tar, `skippable frame 0x5${low.toString(16)}`);
    }
  });

  test("rule: anything else passes through untouched, even an input shorter than a magic", BOUNDED, async () => {
    for (const bytes of [tar, new Uint8Array([0x28, 0xb5, 0x2f]), new Uint8Array([0x28, 0xb5, 0x2f, 0xfc, 1, 2]), new Uint8Array(0)]) {
      assert.deepEqual(await readBytes(await decompressIfZstd(probedSource(bytes, 2).stream, "p.tar")), bytes);
    }
  });

  test("rule: a corrupt or too-wide zstd input fails naming the input", BOUNDED, async () => {
    const zst = zstdCli(tar);
    const corrupt = zst.slice();
    corrupt.fill(0xff, 12, 40);
    await assert.rejects(
      readBytes(await decompressIfZstd(probedSource(corrupt, 4096).stream, "bad.tar.zst")),
      errorRule(CompressionError, "compression", /^"bad\.tar\.zst": /),
    );
    await assert.rejects(
      readBytes(await decompressIfZstd(probedSource(zst, 256).stream, "wide.tar.zst", { maxWindowBytes: 1024 })),
      errorRule(ArchiveError, "archive", /^"wide\.tar\.zst": the zstd frame at byte 0 needs a 6\.84 KiB window, more than the 1 KiB allowed/),
    );
  });
});

describe("streams: lending", () => {
  test("rule: the consumer's cancel does not reach the source; drain then reads the rest to its end", BOUNDED, async () => {
    const source = probedSource(noise(5000, 14), 1000);
    const lent = lendStream(source.stream);
    const reader = lent.stream.getReader();
    assert.equal((await reader.read()).value?.length, 1000);
    await reader.cancel(new Error("end-of-archive marker seen"));
    assert.deepEqual(source.cancels, []);
    assert.equal(source.pulls(), 1);
    await lent.drain();
    assert.equal(source.pulls(), 5, "drained to the end");
    assert.deepEqual(source.cancels, []);
  });

  test("rule: the lent stream gives every byte, reading the source only as asked", BOUNDED, async () => {
    const data = noise(5000, 15);
    const source = probedSource(data, 1000);
    const lent = lendStream(source.stream);
    await settle();
    assert.equal(source.pulls(), 0);
    assert.deepEqual(await readBytes(lent.stream), data);
    await lent.drain();
  });

  test("rule: drain rejects with the source's error: a zstd stream cut short is still an error", BOUNDED, async () => {
    const failing = lendStream(probedSource(noise(5000, 16), 1000, { failAt: 3, error: new Error("read failed at 2000") }).stream);
    await assert.rejects(failing.drain(), /read failed at 2000/);

    const zst = zstdCli(noise(200_000, 17));
    const lent = lendStream(await decompressIfZstd(probedSource(zst.subarray(0, zst.length - 10), 4096).stream, "cut.tar.zst"));
    const reader = lent.stream.getReader();
    await reader.read();
    await reader.cancel();
    await assert.rejects(lent.drain(), errorRule(CompressionError, "compression", /^"cut\.tar\.zst": truncated zstd stream/));
  });

  test("rule: abort cancels the source with the failure, and never rejects", BOUNDED, async () => {
    const source = probedSource(noise(5000, 18), 1000);
    const lent = lendStream(source.stream);
    const why = new Error("entry refused");
    await lent.abort(why);
    assert.deepEqual(source.cancels, [why]);

    const stubborn = new ReadableStream<Uint8Array>({
      pull: (c) => c.enqueue(new Uint8Array(10)),
      cancel: () => {
        throw new Error("cancel failed");
      },
    });
    await lendStream(stubborn).abort(why);
  });
});
