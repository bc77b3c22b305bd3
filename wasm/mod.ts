/**
 * snapbundle's WebAssembly boundary: the only modules that touch `hash-wasm`
 * (SHA-256) and snapbundle's own zstd build (`zstd.wasm`). Each WASM module
 * is loaded lazily, once (see `load.ts`), and exposed as plain typed
 * functions and Web Streams. It imports nothing of `src/`: its failures are
 * {@link WasmError}s, which the core maps to its own errors (`src/zstd.ts`).
 *
 * Rooms: `load.ts` (reading and compiling `.wasm`), `sha256.ts` and
 * `blake3.ts` (hash-wasm), `zstd-abi.ts` (zstd.wasm's exports, one instance
 * per stream), `pair.ts` (streams and back-pressure), `zstd-compress.ts` and
 * `zstd-decompress.ts` (the two faces), `zstd-worker-host.ts` and
 * `zstd-worker.ts` (the Worker seam and body), `zstd-mt.ts` (one frame
 * compressed as jobs on several Workers or inline), `zstd-frame.ts` (sniffing),
 * `zeroscan.ts` (the SIMD zero scan, assembled in place: no file to load).
 *
 * @example
 * ```ts
 * import { sha256Hex, zstdCompressStream, zstdDecompressStream, isZstdMagic } from "../wasm/mod.js";
 * await sha256Hex(new TextEncoder().encode("abc"));
 * const packed = source.pipeThrough(zstdCompressStream());
 * if (isZstdMagic(head)) archive = archive.pipeThrough(zstdDecompressStream());
 * ```
 * @module
 */

export { WasmError, type WasmErrorCode, type WasmErrorDetail } from "./error.js";
export { setWasmReader, type WasmReader } from "./load.js";
export { createSha256, type PlatformSha256, setPlatformSha256, type Sha256, sha256Hex } from "./sha256.js";
export { type Blake3, Blake3Engine, blake3Engine, blake3Hex, createBlake3 } from "./blake3.js";
export { isSharedZeros } from "./zstd-abi.js";
export { assertLive, isDetached, LendingRing } from "./lend.js";
export { isZstdMagic } from "./zstd-frame.js";
export {
  checkLevel,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_DEFAULT_WORKERS,
  ZSTD_MAX_LEVEL,
  ZSTD_MIN_LEVEL,
  type ZstdCompressOptions,
  zstdCompressStream,
} from "./zstd-compress.js";
export {
  checkMaxWindow,
  ZSTD_DEFAULT_MAX_WINDOW_BYTES,
  ZSTD_MAX_WINDOW_BYTES,
  type ZstdDecompressOptions,
  zstdDecompressStream,
} from "./zstd-decompress.js";
export { setZstdWorkerFactory, type ZstdWorker, type ZstdWorkerFactory } from "./zstd-worker-host.js";
export type { FromZstdWorker, ToZstdWorker } from "./zstd-mt.js";
export { ZeroScanner } from "./zeroscan.js";
export { HashPool, INLINE_BYTES, MAX_HASH_WORKERS } from "./hash-pool.js";
