/**
 * The zstd frame guard: a pure (no WASM) scanner of the zstd frame structure
 * of RFC 8878 §3.1 — frame headers, block headers, content checksums and
 * skippable frames.
 *
 * It exists because `zstd-codec`'s WASM heap is fixed at 16 MiB: a frame that
 * needs a larger window makes the module abort, and the binding reports
 * neither truncation nor a window it cannot hold. The scanner reads every frame
 * header *before* any byte of that frame reaches the decoder, refuses windows
 * above a limit, follows the blocks to find where each frame ends (so the next
 * frame of a concatenated stream is checked too), drops skippable frames, and
 * knows whether the input ended mid-frame.
 *
 * It also cuts the stream into pieces no larger than `maxPieceBytes` whose
 * decoded size is bounded by `maxOutputBytes`, so the caller can feed the
 * decoder in large calls and still keep memory bounded.
 *
 * @example
 * ```ts
 * import { ZstdFrameScanner } from "./zstd-frame.js";
 * const scanner = new ZstdFrameScanner({ maxWindowBytes: 8 << 20, label: "a.tar.zst" });
 * for (const piece of scanner.push(chunk)) decoder.feed(piece.bytes);
 * scanner.finish(); // throws CompressionError if the input ended mid-frame
 * ```
 * @module
 */

import { CompressionError } from "../src/errors.js";

/** Largest block a zstd frame may hold (RFC 8878 §3.1.1.2.3). */
export const ZSTD_BLOCK_SIZE_MAX = 128 * 1024;
/** Largest zstd frame header: magic 4 + descriptor 1 + window 1 + dictionary 4 + content size 8. */
export const ZSTD_FRAME_HEADER_MAX = 18;

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC_BASE = 0x184d2a50;

/**
 * True when the bytes start with the zstd frame magic `28 b5 2f fd`.
 *
 * @example
 * ```ts
 * isZstdMagic(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x04])); // true
 * ```
 */
export function isZstdMagic(firstBytes: Uint8Array): boolean {
  return firstBytes.length >= 4 && readU32(firstBytes, 0) === ZSTD_MAGIC;
}

/**
 * True when the bytes start with a skippable-frame magic (`0x184D2A50`–`0x184D2A5F`, little endian).
 *
 * @example
 * ```ts
 * isSkippableMagic(new Uint8Array([0x50, 0x2a, 0x4d, 0x18])); // true
 * ```
 */
export function isSkippableMagic(firstBytes: Uint8Array): boolean {
  return firstBytes.length >= 4 && ((readU32(firstBytes, 0) & SKIPPABLE_MAGIC_MASK) >>> 0) === SKIPPABLE_MAGIC_BASE;
}

/**
 * Window size stated by a Window_Descriptor byte: `2^(10+Exponent) + Mantissa/8 * 2^(10+Exponent)`.
 *
 * @example
 * ```ts
 * windowSizeFromDescriptor(0x68); // 8388608 (8 MiB, `zstd --long=23`)
 * windowSizeFromDescriptor(0x4b); // 720896 (512 KiB + 3/8 of it)
 * ```
 */
export function windowSizeFromDescriptor(descriptor: number): number {
  const exponent = (descriptor >>> 3) & 0x1f;
  const mantissa = descriptor & 7;
  const base = 2 ** (10 + exponent);
  return base + (base / 8) * mantissa;
}

/**
 * Size in bytes of a zstd frame header (magic included) given its
 * Frame_Header_Descriptor byte.
 *
 * @example
 * ```ts
 * frameHeaderSize(0x84); // 10: magic, descriptor, window, 4-byte content size
 * ```
 */
export function frameHeaderSize(descriptor: number): number {
  const fcsFlag = descriptor >>> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const dictIdFlag = descriptor & 3;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : fcsFlag === 1 ? 2 : fcsFlag === 2 ? 4 : 8;
  const dictBytes = dictIdFlag === 0 ? 0 : dictIdFlag === 1 ? 1 : dictIdFlag === 2 ? 2 : 4;
  return 4 + 1 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
}

/** A parsed zstd frame header. */
export interface ZstdFrameHeader {
  /** Header length in bytes, magic included (6–18). */
  headerSize: number;
  /** Window the decoder must hold: from the Window_Descriptor, or the content size of a single-segment frame. */
  windowSize: number;
  /** Frame_Content_Size when present. Exact up to 2^53. */
  contentSize: number | undefined;
  /** Single_Segment_flag: no Window_Descriptor, window = content size. */
  singleSegment: boolean;
  /** Content_Checksum_flag: a 4-byte checksum follows the last block. */
  hasChecksum: boolean;
  /** Dictionary_ID (0 when absent or zero). */
  dictionaryId: number;
  /** Reserved_bit of the descriptor (must be 0). */
  reservedBit: boolean;
}

/** Result of {@link parseFrameHeader}. */
export type FrameHeaderResult =
  | { kind: "incomplete"; need: number }
  | { kind: "zstd"; header: ZstdFrameHeader }
  | { kind: "skippable"; headerSize: 8; contentSize: number }
  | { kind: "unknown"; magic: number };

/**
 * Parse the frame starting at `bytes[0]`. Says how many bytes it needs when
 * `bytes` is too short; does not judge the values (see {@link ZstdFrameScanner}).
 *
 * @example
 * ```ts
 * const r = parseFrameHeader(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]));
 * // { kind: "zstd", header: { headerSize: 6, windowSize: 1048576, ... } }
 * ```
 */
export function parseFrameHeader(bytes: Uint8Array): FrameHeaderResult {
  if (bytes.length < 4) return { kind: "incomplete", need: 4 };
  const magic = readU32(bytes, 0);
  if (((magic & SKIPPABLE_MAGIC_MASK) >>> 0) === SKIPPABLE_MAGIC_BASE) {
    if (bytes.length < 8) return { kind: "incomplete", need: 8 };
    return { kind: "skippable", headerSize: 8, contentSize: readU32(bytes, 4) };
  }
  if (magic !== ZSTD_MAGIC) return { kind: "unknown", magic };
  if (bytes.length < 5) return { kind: "incomplete", need: 5 };
  const fhd = bytes[4]!;
  const headerSize = frameHeaderSize(fhd);
  if (bytes.length < headerSize) return { kind: "incomplete", need: headerSize };

  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  const reservedBit = (fhd & 0x08) !== 0;
  const hasChecksum = (fhd & 0x04) !== 0;
  const dictIdFlag = fhd & 3;
  let p = 5;
  let windowSize = 0;
  if (!singleSegment) windowSize = windowSizeFromDescriptor(bytes[p++]!);
  let dictionaryId = 0;
  if (dictIdFlag === 1) dictionaryId = bytes[p]!;
  else if (dictIdFlag === 2) dictionaryId = bytes[p]! | (bytes[p + 1]! << 8);
  else if (dictIdFlag === 3) dictionaryId = readU32(bytes, p);
  p += dictIdFlag === 0 ? 0 : dictIdFlag === 3 ? 4 : dictIdFlag;
  let contentSize: number | undefined;
  if (fcsFlag === 0) {
    if (singleSegment) contentSize = bytes[p]!;
  } else if (fcsFlag === 1) {
    contentSize = (bytes[p]! | (bytes[p + 1]! << 8)) + 256;
  } else if (fcsFlag === 2) {
    contentSize = readU32(bytes, p);
  } else {
    contentSize = readU32(bytes, p) + readU32(bytes, p + 4) * 2 ** 32;
  }
  if (singleSegment) windowSize = contentSize!;
  return {
    kind: "zstd",
    header: { headerSize, windowSize, contentSize, singleSegment, hasChecksum, dictionaryId, reservedBit },
  };
}

/** A parsed 3-byte block header. */
export interface ZstdBlockHeader {
  last: boolean;
  /** 0 raw, 1 RLE, 2 compressed, 3 reserved. */
  type: 0 | 1 | 2 | 3;
  /** Block_Size: content size for raw/RLE blocks, compressed size for compressed blocks. */
  size: number;
}

/**
 * Parse a block header (RFC 8878 §3.1.1.2): 3 bytes, little endian.
 *
 * @example
 * ```ts
 * parseBlockHeader(0x01, 0x00, 0x00); // { last: true, type: 0, size: 0 }
 * ```
 */
export function parseBlockHeader(b0: number, b1: number, b2: number): ZstdBlockHeader {
  const v = b0 | (b1 << 8) | (b2 << 16);
  return { last: (v & 1) === 1, type: ((v >>> 1) & 3) as 0 | 1 | 2 | 3, size: v >>> 3 };
}

/** A run of input for the decoder, in stream order. */
export interface ZstdPiece {
  /** Bytes to feed (a view into the pushed chunk, or a small copy of a header split across chunks). */
  bytes: Uint8Array;
  /** Offset of `bytes[0]` in the whole compressed stream. */
  offset: number;
  /** Upper bound of the output blocks that begin in this piece. */
  maxOutputBytes: number;
}

/** Options of {@link ZstdFrameScanner}. */
export interface ZstdFrameScannerOptions {
  /** Refuse frames whose window is larger than this. */
  maxWindowBytes: number;
  /** Names the stream in error messages (e.g. an archive path). Default `zstd stream`. */
  label?: string;
  /** Largest piece returned (default 512 KiB; at least 64). */
  maxPieceBytes?: number;
  /** Cut a piece before a block that would push its output bound above this (default 8 MiB). */
  maxPieceOutputBytes?: number;
}

const enum State {
  FrameHeader,
  BlockHeader,
  BlockBody,
  Checksum,
  Skip,
}

/**
 * Incremental checker of a zstd stream's frame structure. Feed it the
 * compressed stream in chunks with {@link push}; feed the pieces it returns to
 * the decoder; call {@link finish} at end of input. Every problem throws
 * {@link CompressionError} naming the label and the byte offset.
 *
 * @example
 * ```ts
 * const s = new ZstdFrameScanner({ maxWindowBytes: 8 << 20, label: "x.zst" });
 * s.push(new Uint8Array([0x28, 0xb5, 0x2f])); // [] — header held back until complete
 * s.finish(); // throws: input ended inside the frame header
 * ```
 */
export class ZstdFrameScanner {
  readonly #maxWindow: number;
  readonly #subject: string;
  readonly #maxPiece: number;
  readonly #maxPieceOut: number;

  #state: State = State.FrameHeader;
  /** Stream offset of the first byte of the next pushed chunk. */
  #base = 0;
  /** Header bytes collected so far (frame header or block header). */
  readonly #hdr = new Uint8Array(ZSTD_FRAME_HEADER_MAX);
  #hdrLen = 0;
  #hdrNeed = 4;
  /** Current frame. */
  #frameStart = 0;
  #blockMax = 0;
  #hasChecksum = false;
  #lastBlock = false;
  #blockStart = 0;
  /** Bytes left in the current block body, checksum or skippable frame. */
  #left = 0;
  #frames = 0;
  #skippable = 0;

  constructor(options: ZstdFrameScannerOptions) {
    this.#maxWindow = options.maxWindowBytes;
    this.#subject = options.label === undefined ? "zstd stream" : `"${options.label}"`;
    this.#maxPiece = Math.max(64, options.maxPieceBytes ?? 512 * 1024);
    this.#maxPieceOut = options.maxPieceOutputBytes ?? 8 * 1024 * 1024;
  }

  /** Bytes pushed so far. */
  get bytesSeen(): number {
    return this.#base;
  }

  /** Complete zstd frames seen so far (skippable frames not counted). */
  get framesSeen(): number {
    return this.#frames;
  }

  /** Skippable frames skipped so far. */
  get skippableFramesSeen(): number {
    return this.#skippable;
  }

  /**
   * Scan the next chunk. Returns the pieces to feed the decoder, in order;
   * skippable frames and not-yet-complete frame headers are held back.
   * Throws {@link CompressionError} on a frame that must not be decoded.
   */
  push(chunk: Uint8Array): ZstdPiece[] {
    const pieces: ZstdPiece[] = [];
    const n = chunk.length;
    const base = this.#base;
    let pos = 0;
    // The run of this chunk that goes to the decoder: [runStart, pos).
    let runStart = -1;
    let runOut = 0;
    // Where in this chunk the frame / block header being read began (-1: in an earlier chunk).
    let hdrStart = -1;
    const close = (end: number): void => {
      if (runStart >= 0 && end > runStart) {
        pieces.push({ bytes: chunk.subarray(runStart, end), offset: base + runStart, maxOutputBytes: runOut });
      }
      runStart = -1;
      runOut = 0;
    };
    const inFrame = (s: State): boolean => s === State.BlockHeader || s === State.BlockBody || s === State.Checksum;
    if (inFrame(this.#state)) runStart = 0;

    while (pos < n) {
      const state = this.#state;
      if (state === State.FrameHeader) {
        if (this.#hdrLen === 0) {
          close(pos);
          hdrStart = pos;
          this.#frameStart = base + pos;
          this.#hdrNeed = 4;
        }
        const take = Math.min(this.#hdrNeed - this.#hdrLen, n - pos);
        this.#hdr.set(chunk.subarray(pos, pos + take), this.#hdrLen);
        this.#hdrLen += take;
        pos += take;
        if (this.#hdrLen < this.#hdrNeed) continue;
        const r = parseFrameHeader(this.#hdr.subarray(0, this.#hdrLen));
        if (r.kind === "incomplete") {
          this.#hdrNeed = r.need;
          continue;
        }
        if (r.kind === "unknown") {
          const hex = Array.from(this.#hdr.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
          throw this.#error(
            `bytes at offset ${this.#frameStart} are not a zstd frame (magic ${hex}; expected 28 b5 2f fd or a skippable frame)`,
          );
        }
        if (r.kind === "skippable") {
          this.#hdrLen = 0;
          this.#left = r.contentSize;
          this.#state = State.Skip;
          if (this.#left === 0) this.#endSkippable();
          continue;
        }
        this.#checkHeader(r.header);
        const h = r.header;
        this.#blockMax = Math.min(h.windowSize, ZSTD_BLOCK_SIZE_MAX);
        this.#hasChecksum = h.hasChecksum;
        this.#state = State.BlockHeader;
        if (hdrStart >= 0) {
          runStart = hdrStart;
        } else {
          pieces.push({ bytes: this.#hdr.slice(0, this.#hdrLen), offset: this.#frameStart, maxOutputBytes: 0 });
          runStart = pos;
        }
        runOut = 0;
        this.#hdrLen = 0;
        hdrStart = -1;
        continue;
      }
      if (state === State.Skip) {
        const take = Math.min(this.#left, n - pos);
        pos += take;
        this.#left -= take;
        if (this.#left === 0) this.#endSkippable();
        continue;
      }

      // In a frame: bytes join the run, which is cut at #maxPiece.
      if (pos - runStart >= this.#maxPiece) {
        close(pos);
        runStart = pos;
      }
      const room = this.#maxPiece - (pos - runStart);
      if (state === State.BlockHeader) {
        if (this.#hdrLen === 0) {
          hdrStart = pos;
          this.#blockStart = base + pos;
        }
        const take = Math.min(3 - this.#hdrLen, n - pos, room);
        this.#hdr.set(chunk.subarray(pos, pos + take), this.#hdrLen);
        this.#hdrLen += take;
        pos += take;
        if (this.#hdrLen < 3) continue;
        this.#hdrLen = 0;
        const b = parseBlockHeader(this.#hdr[0]!, this.#hdr[1]!, this.#hdr[2]!);
        if (b.type === 3) {
          throw this.#error(`corrupt zstd data: the block at byte ${this.#blockStart} has the reserved block type 3`);
        }
        if (b.size > this.#blockMax) {
          throw this.#error(
            `corrupt zstd data: the block at byte ${this.#blockStart} declares ${b.size} bytes, ` +
              `more than the frame's maximum block size of ${this.#blockMax}`,
          );
        }
        const out = b.type === 2 ? this.#blockMax : b.size;
        if (runOut + out > this.#maxPieceOut && hdrStart > runStart) {
          close(hdrStart);
          runStart = hdrStart;
        }
        runOut += out;
        hdrStart = -1;
        this.#lastBlock = b.last;
        this.#left = b.type === 1 ? 1 : b.size;
        if (this.#left > 0) this.#state = State.BlockBody;
        else this.#endBlock();
        continue;
      }
      // BlockBody or Checksum.
      const take = Math.min(this.#left, n - pos, room);
      pos += take;
      this.#left -= take;
      if (this.#left > 0) continue;
      if (state === State.BlockBody) this.#endBlock();
      else this.#endFrame();
    }
    close(n);
    this.#base += n;
    return pieces;
  }

  /**
   * Declare the end of input. Throws {@link CompressionError} when the input
   * was empty or ended inside a frame (a truncated stream is an error, never a
   * quiet end).
   */
  finish(): void {
    const at = this.#base;
    switch (this.#state) {
      case State.FrameHeader:
        if (this.#hdrLen === 0) {
          if (at === 0) throw this.#error("zstd stream is truncated: the input is empty (expected a zstd frame)");
          return;
        }
        throw this.#error(
          `zstd stream is truncated: input ended at byte ${at}, inside the frame header at byte ${this.#frameStart}`,
        );
      case State.Skip:
        throw this.#error(
          `zstd stream is truncated: input ended at byte ${at}, ${this.#left} bytes short of the end of the ` +
            `skippable frame at byte ${this.#frameStart}`,
        );
      case State.BlockHeader:
      case State.BlockBody:
        throw this.#error(
          `zstd stream is truncated: input ended at byte ${at}, inside the block at byte ${this.#blockStart} ` +
            `of the frame at byte ${this.#frameStart}`,
        );
      case State.Checksum:
        throw this.#error(
          `zstd stream is truncated: input ended at byte ${at}, inside the content checksum of the frame ` +
            `at byte ${this.#frameStart}`,
        );
    }
  }

  /** A {@link CompressionError} whose message starts with this stream's label. */
  error(message: string, cause?: unknown): CompressionError {
    return this.#error(message, cause);
  }

  #error(message: string, cause?: unknown): CompressionError {
    return new CompressionError(`${this.#subject}: ${message}`, cause === undefined ? undefined : { cause });
  }

  #checkHeader(h: ZstdFrameHeader): void {
    const at = this.#frameStart;
    if (h.reservedBit) {
      throw this.#error(
        `zstd frame at byte ${at} sets the reserved bit of its frame header descriptor (unsupported zstd format)`,
      );
    }
    if (h.dictionaryId !== 0) {
      throw this.#error(
        `zstd frame at byte ${at} needs dictionary ${h.dictionaryId}; snapbundle does not support zstd dictionaries`,
      );
    }
    if (h.windowSize > this.#maxWindow) {
      throw this.#error(
        `zstd frame at byte ${at} needs a ${formatBytes(h.windowSize)} window` +
          `${h.singleSegment ? " (single-segment frame: window = content size)" : ""}; ` +
          `snapbundle decodes windows up to ${formatBytes(this.#maxWindow)} (re-compress without --long/--ultra)`,
      );
    }
  }

  #endBlock(): void {
    if (!this.#lastBlock) {
      this.#state = State.BlockHeader;
    } else if (this.#hasChecksum) {
      this.#state = State.Checksum;
      this.#left = 4;
    } else {
      this.#endFrame();
    }
  }

  #endSkippable(): void {
    this.#skippable++;
    this.#state = State.FrameHeader;
  }

  #endFrame(): void {
    this.#frames++;
    this.#state = State.FrameHeader;
    this.#hdrLen = 0;
  }
}

/**
 * Human size: `16 MiB`, `704 KiB`, `1.5 GiB`, `100 bytes`.
 *
 * @example
 * ```ts
 * formatBytes(16 * 1024 * 1024); // "16 MiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  if (n < 1024) return `${n} bytes`;
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[i]}${Number.isInteger(v) ? "" : ` (${n} bytes)`}`;
}

function readU32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}
