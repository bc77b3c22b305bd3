/**
 * Byte-stream plumbing for archives: a file as a `ReadableStream`, a file as
 * a `WritableStream`, compression detected from the first bytes, and progress
 * counting — all with backpressure, so memory stays bounded.
 *
 * Ownership on the read path of a load or an inspection: every stage here
 * (peek, lend, count) reads its source only when its own reader reads, and
 * keeps no view of a chunk past that read (a peeked head is copied). So a
 * source may LEND its chunks, valid until the next read: the zstd decoder
 * that {@link decompressIfZstd} opens does, and {@link fileReadable} does
 * with `reuse` (see `wasm/lend.ts`).
 *
 * @example
 * ```ts
 * const raw = fileReadable(fs, "/tmp/a.tar.zst");
 * const tar = await decompressIfZstd(raw, "/tmp/a.tar.zst"); // plain tar bytes
 * ```
 * @module
 */

import { isZstdMagic, zstdDecompressStream } from "../zstd.js";
import { LendingRing } from "../../wasm/mod.js";
import type { FileHandle, FileSystem } from "../fs/types.js";
import { CHUNK_BYTES } from "../io.js";

/**
 * The chunk of a lending {@link fileReadable}: the zstd decoder takes its
 * input 1 MiB at a time anyway, and a plain tar's reader copies what it keeps.
 */
export const LENT_CHUNK_BYTES = 1 << 20;

/** Options of {@link fileReadable}. */
export interface FileReadableOptions {
  /** Largest chunk (default {@link CHUNK_BYTES}, or {@link LENT_CHUNK_BYTES} with `reuse`). */
  readonly chunkBytes?: number;
  /**
   * Read every chunk into one buffer, lent: a chunk is valid until the next
   * read (then its views are detached). Only for readers that keep nothing
   * past a read — the load and inspect paths; not a fetch body.
   */
  readonly reuse?: boolean;
}

/** A pull-based stream of a file's bytes, read in large chunks; the handle closes at the end or on cancel. */
export function fileReadable(fs: FileSystem, path: string, options: FileReadableOptions | number = {}): ReadableStream<Uint8Array> {
  if (typeof options === "number") options = { chunkBytes: options };
  const chunkBytes = options.chunkBytes ?? (options.reuse === true ? LENT_CHUNK_BYTES : CHUNK_BYTES);
  const ring = options.reuse === true ? new LendingRing(1, chunkBytes) : null;
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
          const buf = ring !== null ? ring.take() : new Uint8Array(chunkBytes);
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

/**
 * `source` with the bytes passing counted, reporting the running total: a
 * pass-through that reads only when its reader reads, so lent chunks stay
 * valid (unlike a TransformStream, whose queues hold one chunk ahead).
 */
export function countingReadable(source: ReadableStream<Uint8Array>, onBytes: (total: number) => void): ReadableStream<Uint8Array> {
  let total = 0;
  const reader = source.getReader();
  return pullThrough(reader, (reason) => reader.cancel(reason), (chunk) => {
    total += chunk.length;
    onBytes(total);
  });
}

/** `reader`'s chunks, each read only when this stream's reader reads (high-water mark 0); `cancel` as given. */
function pullThrough(reader: ReadableStreamDefaultReader<Uint8Array>, cancel: (reason: unknown) => Promise<void> | void, each?: (chunk: Uint8Array) => void): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await reader.read();
        if (r.done) controller.close();
        else {
          each?.(r.value);
          controller.enqueue(r.value);
        }
      },
      cancel,
    },
    { highWaterMark: 0 },
  );
}

/** How a zstd archive is decoded. */
export interface ZstdReadOptions {
  /** Largest window a frame may need, in bytes (default 128 MiB). */
  readonly maxWindowBytes?: number | undefined;
}

/** A stream with its first bytes already read and put back. */
export interface PeekedStream {
  /** The first `n` bytes (fewer only when the input is shorter), a copy of our own. */
  readonly head: Uint8Array;
  /** The whole input, the head included. */
  readonly stream: ReadableStream<Uint8Array>;
}

/**
 * Read the first `n` bytes of `source` and give back a stream that replays
 * them before the rest. The head is a copy (at most `n` bytes) and no view
 * is kept past a read of the source: a first chunk shorter than `n` is
 * gathered with the next ones into a buffer of its own.
 *
 * @example
 * ```ts
 * const { head, stream } = await peekStream(source, 512);
 * ```
 */
export async function peekStream(source: ReadableStream<Uint8Array>, n: number): Promise<PeekedStream> {
  const reader = source.getReader();
  const first = await reader.read();
  let done = first.done === true;
  let held = first.done ? new Uint8Array(0) : first.value;
  if (!done && held.length < n) {
    // a short first chunk: the head is gathered into a buffer of our own,
    // since a source may lend its chunks only until its next read
    held = held.slice();
    while (held.length < n) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        break;
      }
      const grown = new Uint8Array(held.length + r.value.length);
      grown.set(held);
      grown.set(r.value, held.length);
      held = grown;
    }
  }
  // `held` is replayed before the source is read again
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (held.length > 0) controller.enqueue(held);
        if (done) controller.close();
      },
      async pull(controller) {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return { head: held.slice(0, n), stream };
}

/**
 * Look at the first bytes: a zstd frame's magic (`28 b5 2f fd`) or a
 * skippable frame's (`5? 2a 4d 18`) → decompress, anything else → passed
 * through as plain tar. The file name plays no part. Decoded chunks are
 * lent: each is valid until the next read.
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
  return isZstdMagic(head) ? stream.pipeThrough(zstdDecompressStream({ label, maxWindowBytes: options.maxWindowBytes, lend: true })) : stream;
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
  // a cancel is not passed on: the owner settles the rest, drain() or abort()
  const stream = pullThrough(reader, () => {});
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
