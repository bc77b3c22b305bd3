/**
 * Byte-stream plumbing for archives: a file as a `ReadableStream`, a file as
 * a `WritableStream`, compression detected from the first bytes, and progress
 * counting — all with backpressure, so memory stays bounded.
 *
 * @example
 * ```ts
 * const raw = fileReadable(fs, "/tmp/a.tar.zst");
 * const tar = await decompressIfZstd(raw, "/tmp/a.tar.zst"); // plain tar bytes
 * ```
 * @module
 */

import { isZstdMagic, zstdDecompressStream } from "../zstd.js";
import type { FileHandle, FileSystem } from "../fs/types.js";
import { CHUNK_BYTES } from "../io.js";

/** A pull-based stream of a file's bytes, read in large chunks; the handle closes at the end or on cancel. */
export function fileReadable(fs: FileSystem, path: string, chunkBytes = CHUNK_BYTES): ReadableStream<Uint8Array> {
  let h: FileHandle | null = null;
  let pos = 0;
  const close = async () => {
    const handle = h;
    h = null;
    await handle?.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          h ??= await fs.open(path, "r");
          const buf = new Uint8Array(chunkBytes);
          const n = await h.read(buf, pos);
          if (n === 0) {
            await close();
            controller.close();
            return;
          }
          pos += n;
          controller.enqueue(n === buf.length ? buf : buf.subarray(0, n));
        } catch (e) {
          await close().catch(() => {});
          throw e;
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}

/** A sink that appends to a file opened with `handle`. Neither syncs nor closes the handle: its owner does. */
export function handleWritable(h: FileHandle): WritableStream<Uint8Array> {
  let pos = 0;
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      await h.write(chunk, pos);
      pos += chunk.length;
    },
  });
}

/** Count bytes passing through, reporting the running total. */
export function countingStream(onBytes: (total: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.length;
      onBytes(total);
      controller.enqueue(chunk);
    },
  });
}

/** How a zstd archive is decoded. */
export interface ZstdReadOptions {
  /** Largest window a frame may need, in bytes (default 128 MiB). */
  readonly maxWindowBytes?: number | undefined;
}

/** A stream with its first bytes already read and put back. */
export interface PeekedStream {
  /** At least `n` bytes (fewer only when the input is shorter). */
  readonly head: Uint8Array;
  /** The whole input, the head included. */
  readonly stream: ReadableStream<Uint8Array>;
}

/**
 * Read the first `n` bytes of `source` and give back a stream that replays
 * them before the rest. Memory: the chunks holding the first `n` bytes.
 *
 * @example
 * ```ts
 * const { head, stream } = await peekStream(source, 512);
 * ```
 */
export async function peekStream(source: ReadableStream<Uint8Array>, n: number): Promise<PeekedStream> {
  const reader = source.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await reader.read();
    if (r.done) {
      done = true;
      break;
    }
    chunks.push(r.value);
    have += r.value.length;
  }
  const head = chunks.length === 1 ? chunks[0]! : new Uint8Array(have);
  if (chunks.length > 1) {
    let o = 0;
    for (const c of chunks) {
      head.set(c, o);
      o += c.length;
    }
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (head.length > 0) controller.enqueue(head);
        if (done) controller.close();
      },
      async pull(controller) {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { head, stream };
}

/**
 * Look at the first bytes: a zstd frame's magic (`28 b5 2f fd`) or a
 * skippable frame's (`5? 2a 4d 18`) → decompress, anything else → passed
 * through as plain tar. The file name plays no part.
 *
 * @example
 * ```ts
 * const tar = await decompressIfZstd(fileReadable(fs, "a.tar.zst"), "a.tar.zst", { maxWindowBytes: 2 ** 31 });
 * ```
 */
export async function decompressIfZstd(
  source: ReadableStream<Uint8Array>,
  label: string,
  options: ZstdReadOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const { head, stream } = await peekStream(source, 4);
  return isZstdMagic(head) ? stream.pipeThrough(zstdDecompressStream({ label, maxWindowBytes: options.maxWindowBytes })) : stream;
}

/** A stream lent to a consumer that may stop early; see {@link lendStream}. */
export interface LentStream {
  /** What the consumer reads. Its `cancel` is not passed on to the source. */
  readonly stream: ReadableStream<Uint8Array>;
  /** Read the source to its end, discarding the bytes; rejects with the source's error. */
  drain(): Promise<void>;
  /** Cancel the source (after a failure). Never rejects. */
  abort(reason?: unknown): Promise<void>;
}

/**
 * Lend `source` to a consumer that may stop before its end — a tar reader
 * stops at the end-of-archive marker and cancels. The cancel is swallowed:
 * the owner then either {@link LentStream.drain}s the rest, so a zstd stream
 * is decoded to the end of its last frame and a truncated or corrupt tail is
 * still an error, or {@link LentStream.abort}s it after a failure.
 *
 * @example
 * ```ts
 * const lent = lendStream(await decompressIfZstd(raw, "a.tar.zst"));
 * try {
 *   for await (const e of readTar(lent.stream)) { … }
 *   await lent.drain(); // throws CompressionError if the frame was cut short
 * } catch (e) {
 *   await lent.abort(e);
 *   throw e;
 * }
 * ```
 */
export function lendStream(source: ReadableStream<Uint8Array>): LentStream {
  const reader = source.getReader();
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel() {
        // the owner settles the rest: drain() or abort()
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    async drain() {
      for (;;) if ((await reader.read()).done) return;
    },
    async abort(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  };
}
