/**
 * The core's face of zstd: the streams of `wasm/` with their failures mapped
 * to snapbundle's errors at the boundary (`wasm/` imports nothing of the
 * core; its errors are {@link WasmError}s with a code and figures), the
 * option checks with messages in the core's terms, and the `wasm/` constants
 * the core and its CLI use.
 *
 * - a frame needing a window above `maxWindowBytes` → {@link ArchiveError}
 *   naming the frame's offset, its window and the option that would load it;
 * - corrupt data, a wrong checksum, a truncated or empty stream, a failed
 *   compressor or Worker → {@link CompressionError};
 * - a bad option or chunk → {@link InvalidArgument};
 * - no host that reads `.wasm` → {@link WasmUnavailable}, saying what to install.
 *
 * A decompressor's messages start with its `label` (e.g. the archive path).
 *
 * @example
 * ```ts
 * const tar = archive.pipeThrough(zstdDecompressStream({ label: "backup.tar.zst", maxWindowBytes: 1 << 30 }));
 * ```
 * @module
 */

import {
  checkLevel as wasmCheckLevel,
  WasmError,
  ZSTD_DEFAULT_MAX_WINDOW_BYTES,
  ZSTD_MAX_LEVEL,
  ZSTD_MAX_WINDOW_BYTES,
  ZSTD_MIN_LEVEL,
  zstdCompressStream as wasmCompressStream,
  zstdDecompressStream as wasmDecompressStream,
  type ZstdCompressOptions,
} from "../wasm/mod.js";
import { formatBytes } from "./bytes.js";
import { ArchiveError, CompressionError, InvalidArgument, labelled, SnapbundleError, WasmUnavailable } from "./errors.js";

export {
  isSharedZeros,
  isZstdMagic,
  ZSTD_DEFAULT_LEVEL,
  ZSTD_DEFAULT_MAX_WINDOW_BYTES,
  ZSTD_MAX_LEVEL,
  ZSTD_MAX_WINDOW_BYTES,
  ZSTD_MIN_LEVEL,
  type ZstdCompressOptions,
} from "../wasm/mod.js";

/** Options of {@link zstdDecompressStream}. */
export interface ZstdDecompressOptions {
  /**
   * Refuse frames needing a larger window, in bytes (default
   * {@link ZSTD_DEFAULT_MAX_WINDOW_BYTES}, at most {@link ZSTD_MAX_WINDOW_BYTES}).
   * A decoder holds up to one window of memory.
   */
  maxWindowBytes?: number;
  /** Names the stream in error messages, e.g. the archive path. */
  label?: string;
  /**
   * Lend output chunks from a fixed ring, each valid until the next read
   * (see `wasm/lend.ts`), instead of a fresh copy per chunk the reader may
   * keep. For readers that keep nothing past a read: a load's tar reader.
   */
  lend?: boolean;
}

/**
 * `wasm/`'s compressor (one zstd frame with a content checksum, on a Worker
 * where the host makes one), its failures mapped to snapbundle's errors.
 * Throws {@link InvalidArgument} for a level outside
 * {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}.
 *
 * @example
 * ```ts
 * const compressed = file.readable.pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 */
export function zstdCompressStream(options: ZstdCompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  if (options.level !== undefined) checkLevel(options.level);
  return mapErrors(wasmCompressStream(options), (e) => fromWasm(e, null, 0));
}

/**
 * `wasm/`'s decompressor (frames and skippable frames, checksums verified),
 * its failures mapped to snapbundle's errors, each message starting with
 * `label`. Throws {@link InvalidArgument} for a `maxWindowBytes` outside
 * 1 KiB..{@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * const tar = archive.readable.pipeThrough(zstdDecompressStream({ label: "backup.tar.zst" }));
 * ```
 */
export function zstdDecompressStream(options: ZstdDecompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const maxWindowBytes = checkMaxWindow(options.maxWindowBytes ?? ZSTD_DEFAULT_MAX_WINDOW_BYTES);
  const subject = options.label === undefined ? "zstd stream" : `"${options.label}"`;
  return mapErrors(wasmDecompressStream({ maxWindowBytes, lend: options.lend === true }), (e) => fromWasm(e, subject, maxWindowBytes));
}

/**
 * Check a `maxWindowBytes` option: an integer from 1 KiB to {@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * checkMaxWindow(2 * 1024 ** 3); // zstd --long=31 frames fit
 * ```
 */
export function checkMaxWindow(maxWindowBytes: number): number {
  if (!Number.isInteger(maxWindowBytes) || maxWindowBytes < 1024 || maxWindowBytes > ZSTD_MAX_WINDOW_BYTES) {
    throw new InvalidArgument(
      `zstd maxWindowBytes ${String(maxWindowBytes)}: must be an integer from 1 KiB to ${formatBytes(ZSTD_MAX_WINDOW_BYTES)}`,
    );
  }
  return maxWindowBytes;
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
  try {
    return wasmCheckLevel(level, optionName);
  } catch (e) {
    throw fromWasm(e, null, 0);
  }
}

/**
 * The snapbundle error for a failure of `wasm/` (anything else passes
 * through): `subject` names a decompressor's stream (null for a compressor),
 * `maxWindowBytes` is its limit.
 */
function fromWasm(e: unknown, subject: string | null, maxWindowBytes: number): unknown {
  if (!(e instanceof WasmError)) return e;
  const at = (error: SnapbundleError): SnapbundleError => (subject === null ? error : labelled(subject, error));
  const d = e.detail;
  switch (e.code) {
    case "unavailable":
      return new WasmUnavailable(
        `${e.message}. Import "snapbundle" (it installs the Node/Deno/Bun host, which reads them), or, using only ` +
          `"snapbundle/core", call installHost({ name, pid, readWasm: async (url) => bytes of the file at url }) once before compressing or decompressing`,
        { cause: e },
      );
    case "invalid-argument":
      return new InvalidArgument(e.message, { cause: e });
    case "window-too-large": {
      const w = d.window;
      if (w === undefined || w > ZSTD_MAX_WINDOW_BYTES) {
        return at(
          new ArchiveError(
            `the zstd frame at byte ${d.frameStart} needs a ${w !== undefined ? formatBytes(w) : "larger"} window, ` +
              `more than the ${formatBytes(maxWindowBytes)} allowed and more than any zstd decodes ` +
              `(${formatBytes(ZSTD_MAX_WINDOW_BYTES)}, zstd --long=31); the archive was not written by zstd's own library`,
            { cause: e },
          ),
        );
      }
      return at(
        new ArchiveError(
          `the zstd frame at byte ${d.frameStart} needs a ${formatBytes(w)} window, more than the ${formatBytes(maxWindowBytes)} allowed; ` +
            `raise maxWindowBytes (snapbundle load --max-window) to at least ${formatBytes(w)} to load it (the decoder then holds that much memory)`,
          { cause: e },
        ),
      );
    }
    case "dictionary":
      return at(new CompressionError(`${e.message}; snapbundle archives are never compressed with one`, { cause: e }));
    case "checksum":
      return at(new CompressionError(`${e.message}; the archive is corrupt`, { cause: e }));
    default:
      return at(new CompressionError(e.message, { cause: e }));
  }
}

/**
 * `pair` with every error its reader or writer sees passed through `map`.
 * The readable is read one chunk per pull, so it adds no read-ahead of its own.
 */
function mapErrors(pair: ReadableWritablePair<Uint8Array, Uint8Array>, map: (e: unknown) => unknown): ReadableWritablePair<Uint8Array, Uint8Array> {
  const reader = pair.readable.getReader();
  const writer = pair.writable.getWriter();
  const readable = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throw map(e);
        }
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      // pass an abort on at once: the sink's abort runs only once the write in flight settles, and that write may wait on the codec
      const signal = (controller as { signal?: AbortSignal }).signal;
      signal?.addEventListener("abort", () => void writer.abort(signal.reason).catch(() => {}), { once: true });
    },
    async write(chunk) {
      try {
        await writer.write(chunk);
      } catch (e) {
        throw map(e);
      }
    },
    async close() {
      try {
        await writer.close();
      } catch (e) {
        // Node rejects a close of an errored stream with a TypeError of its own: the stream's error is the reason
        throw map(await writer.closed.then(() => e, (why: unknown) => why));
      }
    },
    abort: (reason) => writer.abort(reason),
  });
  return { readable, writable };
}
