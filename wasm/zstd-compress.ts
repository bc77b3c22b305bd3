/**
 * zstd compression as a Web Stream: {@link zstdCompressStream} writes one
 * zstd frame with a content checksum, on a Worker where one can be made
 * (`zstd-worker-host.ts`), else inline, pull-driven (`pair.ts`); and
 * {@link openPushCompressor}, the same compressor driven by its writer, the
 * body of a compression Worker. Either way the bytes are the same.
 *
 * @example
 * ```ts
 * const packed = new Blob([data]).stream().pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { pullDriven } from "./pair.js";
import { compressStep, IN_BYTES, lazyCall, OUT_BYTES, type ZstdCall, ZstdCall as Call } from "./zstd-abi.js";
import { workerCompressStream, workerSpawner } from "./zstd-worker-host.js";

/** Lowest compression level `save` accepts. */
export const ZSTD_MIN_LEVEL = 1;
/** Highest compression level `save` accepts (20–22, zstd's `--ultra` levels, need up to 1 GiB more memory to write). */
export const ZSTD_MAX_LEVEL = 19;
/** Default compression level (the `zstd` CLI's). */
export const ZSTD_DEFAULT_LEVEL = 3;

/** Options of {@link zstdCompressStream}. */
export interface ZstdCompressOptions {
  /** zstd level, {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL} (default {@link ZSTD_DEFAULT_LEVEL}). */
  level?: number;
  /**
   * Compress on a Worker, so the caller's thread goes on reading and framing
   * meanwhile (default true). Used only where a Worker can be made (see
   * {@link setZstdWorkerFactory}); elsewhere the stream compresses inline.
   * The bytes written are the same either way.
   */
  worker?: boolean;
}

/** Options of {@link zstdDecompressStream}. */

/**
 * A stream that zstd-compresses its input into exactly one zstd frame with
 * a content checksum (XXH64), at `level` (default 3). Throws
 * {@link InvalidArgument} for a level outside
 * {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}. It is a readable/writable
 * pair for `pipeThrough`. Where a Worker can be made (Deno, Bun, and Node
 * through its adapter; see {@link setZstdWorkerFactory}) and `worker` is not
 * false, it compresses on its own Worker, started at the first write and
 * ended with the stream, while the caller's thread goes on producing input;
 * at most 8 MiB of input wait for it. Elsewhere it compresses inline,
 * pull-driven: when the reader wants output, one output buffer (1 MiB) at
 * a time. Either way it runs at most 2 MiB ahead of its reader and writes
 * the same bytes.
 *
 * @example
 * ```ts
 * const compressed = file.readable.pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 */
export function zstdCompressStream(options: ZstdCompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const level = checkLevel(options.level ?? ZSTD_DEFAULT_LEVEL);
  const spawn = options.worker === false ? null : workerSpawner();
  if (spawn !== null) return workerCompressStream(level, spawn);
  const call = lazyCall((x) => x.sb_cstream_new(level), `compressor at level ${level}`);
  /** The piece of input in the module's memory and how much of it zstd took. */
  let pieceLen = 0;
  let pos = 0;

  const compress = (c: ZstdCall, end: boolean): number => {
    const ret = compressStep(c, pieceLen, pos, end);
    pos = c.x.sb_in_pos(c.stream) >>> 0;
    return ret;
  };

  return pullDriven({
    async pull(controller, feed) {
      for (;;) {
        if (pos === pieceLen) {
          const piece = feed.take(IN_BYTES);
          if (piece !== null) {
            (await call.get(feed)).load(piece);
            pieceLen = piece.length;
            pos = 0;
          } else if (feed.ended) {
            // finish the frame, one output buffer per read
            const c = await call.get(feed);
            for (;;) {
              const ret = compress(c, true);
              if (ret === 0) {
                if (c.outPos > 0) controller.enqueue(c.takeOutput());
                return true;
              }
              if (c.outPos === OUT_BYTES) {
                controller.enqueue(c.takeOutput());
                return false;
              }
            }
          } else {
            await feed.wait();
            continue;
          }
        }
        const c = call.current!;
        compress(c, false);
        if (c.outPos === OUT_BYTES) {
          controller.enqueue(c.takeOutput());
          return false;
        }
      }
    },
    free: call.free,
  });
}

/** A compressor driven by its writer (the body of a compression Worker): output goes to `emit`, 1 MiB at a time. */
export interface PushCompressor {
  /** Compress `bytes`, emitting each output buffer as it fills. */
  write(bytes: Uint8Array, emit: (out: Uint8Array) => void): void;
  /** Finish the frame and emit the rest. */
  end(emit: (out: Uint8Array) => void): void;
  /** Free the zstd context. */
  free(): void;
}

/**
 * A {@link PushCompressor} at `level` in a new instance of `module`
 * (zstd.wasm), for a Worker, which has no reader of its own. It writes what
 * {@link zstdCompressStream} writes inline. Not part of the public API.
 *
 * @example
 * ```ts
 * const c = await openPushCompressor(await WebAssembly.compile(bytes), 3);
 * c.write(data, send);
 * c.end(send);
 * c.free();
 * ```
 */
export async function openPushCompressor(module: WebAssembly.Module, level: number): Promise<PushCompressor> {
  const c = await Call.open((x) => x.sb_cstream_new(checkLevel(level)), `compressor at level ${level}`, module);
  return {
    write(bytes, emit) {
      for (let off = 0; off < bytes.length; off += IN_BYTES) {
        const piece = bytes.subarray(off, off + IN_BYTES);
        c.load(piece);
        let pos = 0;
        while (pos < piece.length) {
          compressStep(c, piece.length, pos, false);
          pos = c.x.sb_in_pos(c.stream) >>> 0;
          if (c.outPos === OUT_BYTES) emit(c.takeOutput());
        }
      }
    },
    end(emit) {
      for (;;) {
        const ret = compressStep(c, 0, 0, true);
        if (ret === 0 || c.outPos === OUT_BYTES) {
          if (c.outPos > 0) emit(c.takeOutput());
          if (ret === 0) return;
        }
      }
    },
    free() {
      c.close();
    },
  };
}

/**
 * Check a compression level: an integer in {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}.
 *
 * @example
 * ```ts
 * checkLevel(3); // 3
 * ```
 */
export function checkLevel(level: number, optionName = "level"): number {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new WasmError("invalid-argument", `zstd ${optionName} ${String(level)}: must be an integer from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL}`);
  }
  return level;
}
