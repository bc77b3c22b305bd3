/**
 * zstd compression and decompression as Web Streams, on `zstd-codec`'s
 * streaming bindings.
 *
 * Each stream leases its own WASM module instance (see `zstd-pool.ts`) for as
 * long as it lives. The decompressor runs every input byte through the frame
 * guard of `zstd-frame.ts` first, so a frame needing a window the fixed
 * 16 MiB heap cannot hold, a truncated stream, reserved header bits or a
 * dictionary frame become a {@link CompressionError} instead of a WASM abort
 * or a quiet early end.
 *
 * Memory stays bounded: the decoder is fed at most 512 KiB per call, each
 * call's output is bounded (8 MiB) using the block headers, and both streams
 * wait for the reader once more than 8 MiB of output is queued. Consequently
 * a writer must not wait for its writes to finish before it starts reading.
 *
 * @example
 * ```ts
 * const roundTrip = new Blob([data]).stream()
 *   .pipeThrough(zstdCompressStream())
 *   .pipeThrough(zstdDecompressStream({ label: "example" }));
 * ```
 * @module
 */

import { CompressionError, InvalidArgument } from "../src/errors.js";
import { type ZstdCompressBinding, type ZstdDecompressBinding, type ZstdLease, leaseZstd } from "./zstd-pool.js";
import { formatBytes, isZstdMagic, ZstdFrameScanner } from "./zstd-frame.js";

export { isZstdMagic };

/**
 * Largest window {@link zstdDecompressStream} accepts: 8 MiB, the largest
 * measured to decode in `zstd-codec`'s fixed 16 MiB heap (`zstd --long=23`).
 */
export const ZSTD_MAX_WINDOW_BYTES: number = 8 * 1024 * 1024;

/** Highest compression level that fits the 16 MiB heap (10 and above abort with OOM). */
export const ZSTD_MAX_LEVEL = 9;
/** Lowest (fastest) compression level accepted. */
export const ZSTD_MIN_LEVEL = -7;

/** Largest input handed to the binding in one call (it copies each call's input into the heap). */
const FEED_BYTES = 512 * 1024;
/** Upper bound on decoded bytes per decoder call. */
const PIECE_OUTPUT_BYTES = 8 * 1024 * 1024;
/** Output queued before a stream waits for its reader. */
const QUEUE_BYTES = 8 * 1024 * 1024;
/** Compressor output is gathered into chunks up to this size. */
const OUT_CHUNK_BYTES = 1024 * 1024;
/** Compressor outputs at least this large are passed on without joining. */
const PASS_THROUGH_BYTES = 64 * 1024;

/** Options of {@link zstdCompressStream}. */
export interface ZstdCompressOptions {
  /** zstd level, {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}; 0 means zstd's default, 3 (the default). */
  level?: number;
}

/** Options of {@link zstdDecompressStream}. */
export interface ZstdDecompressOptions {
  /** Refuse frames needing a larger window (default and maximum {@link ZSTD_MAX_WINDOW_BYTES}). */
  maxWindowBytes?: number;
  /** Names the stream in error messages, e.g. the archive path. */
  label?: string;
}

/**
 * A stream that zstd-compresses its input into one zstd frame (level 3 by
 * default, no content checksum, window ≤ 8 MiB for every accepted level).
 * Throws {@link InvalidArgument} for a level outside
 * {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}.
 *
 * @example
 * ```ts
 * const compressed = file.readable.pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 */
export function zstdCompressStream(options: ZstdCompressOptions = {}): TransformStream<Uint8Array, Uint8Array> {
  const level = options.level ?? 3;
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new InvalidArgument(
      `zstd level ${String(level)}: must be an integer from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL} ` +
        `(higher levels need more memory than zstd-codec's 16 MiB heap)`,
    );
  }
  let lease: ZstdLease | undefined;
  let encoder: ZstdCompressBinding | undefined;
  let cancelled = false;
  const gather = new Gatherer();
  const fail = (what: string, cause?: unknown): CompressionError =>
    new CompressionError(`zstd compression ${what}`, cause === undefined ? undefined : { cause });

  const start = async (): Promise<ZstdCompressBinding> => {
    if (encoder) return encoder;
    lease = await leaseZstd();
    const enc = new lease.module.ZstdCompressStreamBinding();
    encoder = enc;
    if (!enc.begin(level)) throw fail(`could not start at level ${level}`);
    return enc;
  };
  const drop = (): void => {
    lease?.discard();
    lease = undefined;
    encoder = undefined;
  };
  const emit = async (controller: TransformStreamDefaultController<Uint8Array>, all: boolean): Promise<void> => {
    for (let c = gather.take(all); c !== undefined; c = gather.take(all)) {
      controller.enqueue(c);
      await roomFor(controller, () => cancelled);
    }
  };

  return new TransformStream<Uint8Array, Uint8Array>(
    withCancel({
      async transform(chunk, controller) {
        try {
          checkChunk(chunk);
          const enc = await start();
          const heap = lease!.module.HEAPU8;
          const out = (u: Uint8Array): void => gather.add(u, heap);
          for (let i = 0; i < chunk.length; i += FEED_BYTES) {
            if (!enc.transform(chunk.subarray(i, i + FEED_BYTES), out)) throw fail("failed (zstd-codec error)");
            await emit(controller, false);
          }
        } catch (e) {
          drop();
          throw wrapAbort(e, "zstd compression");
        }
      },
      async flush(controller) {
        try {
          const enc = await start();
          const heap = lease!.module.HEAPU8;
          const out = (u: Uint8Array): void => gather.add(u, heap);
          if (!enc.flush(out) || !enc.end(out)) throw fail("failed to finish the frame (zstd-codec error)");
          enc.delete();
          encoder = undefined;
          await emit(controller, true);
          lease?.release();
          lease = undefined;
        } catch (e) {
          drop();
          throw wrapAbort(e, "zstd compression");
        }
      },
      cancel() {
        cancelled = true;
        drop();
      },
    }),
    undefined,
    { highWaterMark: QUEUE_BYTES, size: (c) => c.byteLength },
  );
}

/**
 * A stream that decodes a zstd stream: one or more zstd frames, possibly
 * with skippable frames between them. Errors with {@link CompressionError}
 * (the message names `label`) when a frame needs a window above
 * `maxWindowBytes`, uses a dictionary or reserved header bits, when the data
 * is corrupt, or when the input ends mid-frame or is empty. Throws
 * {@link InvalidArgument} for a `maxWindowBytes` above {@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * const tar = archive.readable.pipeThrough(zstdDecompressStream({ label: "backup.tar.zst" }));
 * ```
 */
export function zstdDecompressStream(options: ZstdDecompressOptions = {}): TransformStream<Uint8Array, Uint8Array> {
  const maxWindowBytes = options.maxWindowBytes ?? ZSTD_MAX_WINDOW_BYTES;
  if (!Number.isInteger(maxWindowBytes) || maxWindowBytes < 1 || maxWindowBytes > ZSTD_MAX_WINDOW_BYTES) {
    throw new InvalidArgument(
      `zstd maxWindowBytes ${String(maxWindowBytes)}: must be an integer from 1 to ${ZSTD_MAX_WINDOW_BYTES} ` +
        `(${formatBytes(ZSTD_MAX_WINDOW_BYTES)}, the most zstd-codec's 16 MiB heap can hold)`,
    );
  }
  const scanner = new ZstdFrameScanner({
    maxWindowBytes,
    label: options.label,
    maxPieceBytes: FEED_BYTES,
    maxPieceOutputBytes: PIECE_OUTPUT_BYTES,
  });
  const subject = options.label === undefined ? "zstd stream" : `"${options.label}"`;
  let lease: ZstdLease | undefined;
  let decoder: ZstdDecompressBinding | undefined;
  let cancelled = false;

  const start = async (): Promise<ZstdDecompressBinding> => {
    if (decoder) return decoder;
    lease = await leaseZstd();
    const dec = new lease.module.ZstdDecompressStreamBinding();
    decoder = dec;
    if (!dec.begin()) throw scanner.error("could not start the zstd decoder (zstd-codec error)");
    return dec;
  };
  const drop = (): void => {
    lease?.discard();
    lease = undefined;
    decoder = undefined;
  };

  return new TransformStream<Uint8Array, Uint8Array>(
    withCancel({
      async transform(chunk, controller) {
        try {
          checkChunk(chunk);
          for (const piece of scanner.push(chunk)) {
            const dec = await start();
            const heap = lease!.module.HEAPU8;
            let enqueueError: unknown;
            const ok = dec.transform(piece.bytes, (u) => {
              if (u.length === 0 || enqueueError !== undefined) return;
              try {
                controller.enqueue(u.buffer === heap.buffer ? u.slice() : u);
              } catch (e) {
                enqueueError = e;
              }
            });
            if (enqueueError !== undefined) throw enqueueError;
            if (!ok) {
              const end = piece.offset + piece.bytes.length;
              throw scanner.error(
                `corrupt zstd data: the decoder rejected the input between bytes ${piece.offset} and ${end}`,
              );
            }
            await roomFor(controller, () => cancelled);
          }
        } catch (e) {
          drop();
          throw wrapAbort(e, subject);
        }
      },
      async flush(controller) {
        try {
          scanner.finish();
          if (decoder) {
            const dec = decoder;
            const heap = lease!.module.HEAPU8;
            const out = (u: Uint8Array): void => {
              if (u.length > 0) controller.enqueue(u.buffer === heap.buffer ? u.slice() : u);
            };
            if (!dec.flush(out) || !dec.end(out)) {
              throw scanner.error("corrupt zstd data: the decoder rejected the end of the stream");
            }
            dec.delete();
            decoder = undefined;
            lease?.release();
            lease = undefined;
          }
        } catch (e) {
          drop();
          throw wrapAbort(e, subject);
        }
      },
      cancel() {
        cancelled = true;
        drop();
      },
    }),
    undefined,
    { highWaterMark: QUEUE_BYTES, size: (c) => c.byteLength },
  );
}

/**
 * `transformer.cancel` (called when the reader cancels or the writer aborts) is
 * supported by Node 20+, Deno and Bun but missing from TypeScript's lib.
 */
function withCancel<I, O>(
  t: Transformer<I, O> & { cancel?: (reason: unknown) => void | Promise<void> },
): Transformer<I, O> {
  return t;
}

function checkChunk(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new InvalidArgument(`zstd streams take Uint8Array chunks, got ${Object.prototype.toString.call(chunk)}`);
  }
}

/** Turn an emscripten abort (a thrown string) into a CompressionError; pass other errors through. */
function wrapAbort(e: unknown, subject: string): unknown {
  if (e instanceof Error) return e;
  return new CompressionError(`${subject}: zstd-codec aborted (${String(e).split(".")[0]})`, { cause: e });
}

/**
 * Wait while the readable side holds more than its high-water mark. Web
 * Streams give a transformer no signal when the reader drains the queue, so
 * this polls (every few ms, only while the reader is behind).
 */
async function roomFor(controller: TransformStreamDefaultController<Uint8Array>, cancelled: () => boolean): Promise<void> {
  while (!cancelled()) {
    const size = controller.desiredSize;
    if (size === null || size > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Collects the compressor's small outputs into chunks of about {@link OUT_CHUNK_BYTES}. */
class Gatherer {
  #parts: Uint8Array[] = [];
  #size = 0;

  add(u: Uint8Array, heap: Uint8Array): void {
    if (u.length === 0) return;
    this.#parts.push(u.buffer === heap.buffer ? u.slice() : u);
    this.#size += u.length;
  }

  /** A chunk when enough is gathered (or anything at all when `all`). */
  take(all: boolean): Uint8Array | undefined {
    if (this.#size === 0 || (!all && this.#size < OUT_CHUNK_BYTES)) return undefined;
    // A part that is large already (incompressible input) goes out as it is:
    // joining it would copy every output byte once more for nothing.
    const first = this.#parts[0]!;
    if (first.length >= PASS_THROUGH_BYTES) {
      this.#parts.shift();
      this.#size -= first.length;
      return first;
    }
    const parts = this.#parts;
    this.#parts = [];
    const size = this.#size;
    this.#size = 0;
    if (parts.length === 1) return parts[0]!;
    const joined = new Uint8Array(size);
    let p = 0;
    for (const part of parts) {
      joined.set(part, p);
      p += part.length;
    }
    return joined;
  }
}
