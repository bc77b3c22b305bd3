/**
 * snapbundle's WebAssembly boundary: the only modules that touch `hash-wasm`
 * (SHA-256) and snapbundle's own zstd build (`zstd.wasm`). Each WASM module
 * is loaded lazily, once (see `load.ts`), and exposed as plain typed
 * functions and Web Streams.
 *
 * @example
 * ```ts
 * import { sha256Hex, zstdCompressStream, zstdDecompressStream, isZstdMagic } from "../wasm/mod.js";
 * await sha256Hex(new TextEncoder().encode("abc"));
 * const packed = source.pipeThrough(zstdCompressStream());
 * if (isZstdMagic(head)) archive = archive.pipeThrough(zstdDecompressStream({ label: path }));
 * ```
 * @module
 */

export { setWasmReader, type WasmReader } from "./load.js";
export { createSha256, type Sha256, sha256Hex } from "./sha256.js";
export {
  checkLevel,
  checkMaxWindow,
  formatBytes,
  type FromZstdWorker,
  isSharedZeros,
  isZstdMagic,
  setZstdWorkerFactory,
  type ToZstdWorker,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_DEFAULT_MAX_WINDOW_BYTES,
  ZSTD_MAX_LEVEL,
  ZSTD_MAX_WINDOW_BYTES,
  ZSTD_MIN_LEVEL,
  type ZstdCompressOptions,
  zstdCompressStream,
  type ZstdDecompressOptions,
  zstdDecompressStream,
  type ZstdWorker,
  type ZstdWorkerFactory,
} from "./zstd.js";
export { type Blake3, blake3Hex, createBlake3 } from "./blake3.js";
export { ZeroScanner } from "./zeroscan.js";
