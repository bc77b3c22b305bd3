/**
 * zstd compression as a Web Stream: {@link zstdCompressStream} writes one
 * zstd frame with a content checksum, cut into jobs compressed on Workers
 * where they can be made (`zstd-mt.ts`, `zstd-worker-host.ts`), else inline
 * by the same code. However many Workers, the bytes are the same.
 *
 * @example
 * ```ts
 * const packed = new Blob([data]).stream().pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { parallelCompressStream } from "./zstd-mt.js";
import { workerSpawner } from "./zstd-worker-host.js";

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
  /**
   * How many Workers compress at most (default {@link ZSTD_DEFAULT_WORKERS});
   * 0 compresses inline, as `worker: false` does. The bytes written do not
   * depend on it.
   */
  workers?: number;
}

/** Workers a compressor uses by default: the two cores of a small machine. */
export const ZSTD_DEFAULT_WORKERS = 2;

/**
 * A stream that zstd-compresses its input into exactly one zstd frame with
 * a content checksum (XXH64), at `level` (default 3). Throws
 * {@link InvalidArgument} for a level outside
 * {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL} or a `workers` count that is
 * not a whole number. It is a readable/writable pair for `pipeThrough`. The
 * input is cut into jobs the way zstd's multithreaded mode cuts it (8 MiB
 * at level 3), compressed on up to `workers` Workers where a Worker can be
 * made (Deno, Bun, and Node through its adapter; see
 * {@link setZstdWorkerFactory}) and `worker` is not false, else inline, and
 * emitted in order as the blocks of one frame: the bytes are the same either
 * way. A job is started only while the reader keeps up.
 *
 * @example
 * ```ts
 * const compressed = file.readable.pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 */
export function zstdCompressStream(options: ZstdCompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const level = checkLevel(options.level ?? ZSTD_DEFAULT_LEVEL);
  const workers = options.workers ?? ZSTD_DEFAULT_WORKERS;
  if (!Number.isInteger(workers) || workers < 0) {
    throw new WasmError("invalid-argument", `zstd workers ${String(workers)}: must be a whole number (0 compresses inline)`);
  }
  const spawn = options.worker === false || workers === 0 ? null : workerSpawner();
  return parallelCompressStream(level, workers, spawn);
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
