/**
 * zstd decompression as a Web Stream: {@link zstdDecompressStream} decodes
 * one or more zstd frames, with skippable frames anywhere, verifying content
 * checksums and refusing windows above `maxWindowBytes`. It is pull-driven
 * (`pair.ts`): it runs when its reader wants output, one output buffer
 * (1 MiB) at a time. Its output chunks are read-only; with `lend` they are
 * lent: each is valid until the reader's next read (see `lend.ts`; at most
 * {@link DECODE_AHEAD} chunks are decoded ahead, into a fixed ring of
 * {@link DECODE_RING} buffers, so nothing is allocated per chunk). Output
 * that is all zeros is a view of one shared zero chunk (see {@link isSharedZeros}).
 * Failures are {@link WasmError}s carrying the frame's offsets and windows.
 *
 * @example
 * ```ts
 * const tar = archive.readable.pipeThrough(zstdDecompressStream());
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { LendingRing } from "./lend.js";
import { pullDriven } from "./pair.js";
import {
  ERROR_CHECKSUM_WRONG,
  ERROR_DICTIONARY_WRONG,
  ERROR_WINDOW_TOO_LARGE,
  IN_BYTES,
  lazyCall,
  OUT_BYTES,
  type ZstdCall,
} from "./zstd-abi.js";
import { headerWindow } from "./zstd-frame.js";

/** Default largest window a frame may need: 128 MiB, the `zstd` CLI's default limit. */
export const ZSTD_DEFAULT_MAX_WINDOW_BYTES: number = 128 * 1024 * 1024;
/**
 * Largest `maxWindowBytes` accepted: 2 GiB (`zstd --long=31`), the largest
 * window zstd itself decodes. zstd stops at 1 GiB on 32-bit builds, as
 * WebAssembly is; ours is built with its 32-bit decoder's long-offset path
 * widened to 31 bits (see scripts/build-wasm.mjs), since a module's memory
 * has room for a 2 GiB window.
 */
export const ZSTD_MAX_WINDOW_BYTES: number = 2 * 1024 * 1024 * 1024;

/** Output chunks decoded ahead of the reader (as before: 2 MiB). */
export const DECODE_AHEAD = 2;
/**
 * The decoder's output ring: when it fills a slot, at most
 * {@link DECODE_AHEAD} - 1 chunks wait in the readable's queue and the reader
 * holds one (valid until its next read), so one more slot is free.
 */
export const DECODE_RING = DECODE_AHEAD + 1;

/** Options of {@link zstdDecompressStream}. */
export interface ZstdDecompressOptions {
  /**
   * Refuse frames needing a larger window, in bytes (default
   * {@link ZSTD_DEFAULT_MAX_WINDOW_BYTES}, at most {@link ZSTD_MAX_WINDOW_BYTES}).
   * A decoder holds up to one window of memory.
   */
  maxWindowBytes?: number;
  /**
   * Lend output chunks from a fixed ring of {@link DECODE_RING} buffers, each
   * valid until the reader's next read (a later use meets a detached buffer
   * and throws), instead of a fresh copy per chunk the reader may keep.
   */
  lend?: boolean;
}

/**
 * A stream that decodes a zstd stream: one or more zstd frames, with
 * skippable frames before, between or after them, as the zstd format says.
 * It is a readable/writable pair for `pipeThrough`, pull-driven: the
 * decoder runs when the reader wants output, one output buffer (1 MiB)
 * at a time and at most 2 MiB ahead, and a write completes once its bytes
 * are decoded. Output chunks are read-only; with `lend`, a reader may use a
 * chunk until its next read, no longer (a later use meets a detached buffer
 * and throws); all-zero output is a view of a shared chunk.
 * Content checksums are verified. Errors with a {@link WasmError}: code
 * `window-too-large` when a frame needs a window above `maxWindowBytes`
 * (with the frame's offset and window), `dictionary`, `checksum` (with the
 * frame's byte range), `corrupt`, `truncated` (the input ends mid-frame) or
 * `empty` (no frame). Throws one with code `invalid-argument` for a
 * `maxWindowBytes` outside 1 KiB..{@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * const tar = archive.readable.pipeThrough(zstdDecompressStream({ maxWindowBytes: 1 << 30 }));
 * ```
 */
export function zstdDecompressStream(options: ZstdDecompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const maxWindowBytes = checkMaxWindow(options.maxWindowBytes ?? ZSTD_DEFAULT_MAX_WINDOW_BYTES);
  const call = lazyCall((x) => x.sb_dstream_new(maxWindowBytes), "decompressor");
  const ring = options.lend === true ? new LendingRing(DECODE_RING, OUT_BYTES) : undefined;
  /** Input bytes consumed by the decoder so far. */
  let consumed = 0;
  /** Offset of the frame being decoded. */
  let frameStart = 0;
  /** The decoder finished a frame and has not started another. */
  let atBoundary = true;
  /** The first bytes of the current frame (its magic, descriptor and window byte), for messages. */
  const head = new Uint8Array(6);
  let headLen = 0;
  let sawInput = false;
  /** The piece of input in the module's memory (at most {@link IN_BYTES}) and how much of it zstd took. */
  let pieceLen = 0;
  let pos = 0;
  /** The last call filled the output buffer: zstd may hold more output for the input it took. */
  let lastFull = false;

  /**
   * Where the frame that failed ends. A frame that starts in the current
   * piece and lies wholly in it (zstd then decodes it in one pass, keeping
   * no count) is measured there; otherwise the decoder's count of the
   * frame's bytes (header, blocks, checksum) says.
   */
  const frameEndOf = (c: ZstdCall, bytes: number, at: number): number => {
    if (frameStart === consumed) {
      const size = c.x.sb_find_frame_size(c.inPtr + at, bytes - at);
      if (c.errorCode(size) === 0) return consumed + (size >>> 0);
    }
    return frameStart + c.x.sb_frame_consumed(c.stream);
  };
  const fail = (c: ZstdCall, ret: number, bytes: number, at: number): WasmError => {
    const code = c.errorCode(ret);
    if (code === ERROR_WINDOW_TOO_LARGE) {
      // zstd records the window unless its header parser refused it first (above 2 GiB).
      let window = c.x.sb_frame_window(c.stream);
      if (window <= maxWindowBytes) window = headerWindow(head.subarray(0, headLen)) ?? window;
      return new WasmError("window-too-large", `the zstd frame at byte ${frameStart} needs a window of ${window} bytes, more than the ${maxWindowBytes} allowed`, {
        frameStart,
        window: window > maxWindowBytes ? window : undefined,
        maxWindow: maxWindowBytes,
      });
    }
    if (code === ERROR_DICTIONARY_WRONG) {
      return new WasmError("dictionary", `the zstd frame at byte ${frameStart} needs a dictionary`, { frameStart });
    }
    if (code === ERROR_CHECKSUM_WRONG) {
      const frameEnd = frameEndOf(c, bytes, at);
      return new WasmError(
        "checksum",
        `zstd content checksum mismatch: the frame at bytes ${frameStart}..${frameEnd} (end exclusive) ` +
          `decodes to data whose XXH64 differs from the one it records`,
        { frameStart, frameEnd },
      );
    }
    return new WasmError("corrupt", `corrupt zstd data in the frame at byte ${frameStart} (decoder stopped near byte ${consumed}): ${c.errorName(ret)}`, {
      frameStart,
      consumed,
    });
  };

  /** One decoder call on the current piece; true when the output buffer is full. */
  const decode = (c: ZstdCall): boolean => {
    if (headLen < head.length) {
      // bytes of the frame the decoder has not taken yet, but `head` holds, start at pos
      const from = pos + headLen - (consumed - frameStart);
      const n = Math.min(head.length - headLen, pieceLen - from);
      if (n > 0 && from >= 0) {
        head.set(new Uint8Array(c.x.memory.buffer, c.inPtr + from, n), headLen);
        headLen += n;
      }
    }
    const ret = c.x.sb_decompress(c.stream, c.inPtr, pieceLen, pos, c.outPtr, OUT_BYTES, c.outPos);
    if (c.errorCode(ret) !== 0) throw fail(c, ret, pieceLen, pos);
    const newPos = c.x.sb_in_pos(c.stream) >>> 0;
    consumed += newPos - pos;
    const took = newPos > pos;
    pos = newPos;
    c.outPos = c.x.sb_out_pos(c.stream) >>> 0;
    // 0: a frame is decoded and flushed. A call that only flushed output
    // (after the frame ended) returns a hint for the next header instead.
    if (ret === 0) {
      atBoundary = true;
      frameStart = consumed;
      headLen = 0;
    } else if (took) atBoundary = false;
    return c.outPos === OUT_BYTES;
  };

  return pullDriven({
    // Decoding happens here, when the reader wants output: one output buffer per read.
    async pull(controller, feed) {
      for (;;) {
        if (pos === pieceLen && !lastFull) {
          // All of the piece is taken and all its output is out of zstd.
          const piece = feed.take(IN_BYTES);
          if (piece !== null) {
            sawInput = true;
            (await call.get(feed)).load(piece);
            pieceLen = piece.length;
            pos = 0;
          } else {
            const c = call.current;
            if (c !== undefined && c.outPos > 0) {
              controller.enqueue(c.takeDecoded(ring));
              return false;
            }
            if (feed.ended) {
              if (!sawInput) throw new WasmError("empty", "empty input, not a zstd stream");
              if (!atBoundary) {
                throw new WasmError(
                  "truncated",
                  `truncated zstd stream: the input ended at byte ${consumed}, inside the frame that starts at byte ${frameStart}`,
                  { frameStart, consumed },
                );
              }
              return true;
            }
            await feed.wait();
            continue;
          }
        }
        lastFull = decode(call.current!);
        if (lastFull) {
          controller.enqueue(call.current!.takeDecoded(ring));
          return false;
        }
      }
    },
    free: call.free,
  }, DECODE_AHEAD);
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
    throw new WasmError("invalid-argument", `zstd maxWindowBytes ${String(maxWindowBytes)}: must be an integer from 1024 to ${ZSTD_MAX_WINDOW_BYTES}`, {
      maxWindow: ZSTD_MAX_WINDOW_BYTES,
    });
  }
  return maxWindowBytes;
}
