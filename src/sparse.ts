/**
 * Sparse files: finding data extents by zero-scanning, the
 * `msb-sparse-sha256-v1` digest, and writing only data so holes stay holes.
 *
 * No portable API reports a file's holes (`SEEK_HOLE` is not in `node:fs`),
 * so extents are found by reading and treating every all-zero 4 KiB block as
 * a hole. Reading a hole costs no disk I/O, and the result is the same either
 * way: the logical bytes are identical, and a zero block need not be stored.
 *
 * @example
 * ```ts
 * import { scanFile } from "./sparse.js";
 * const r = await scanFile(fs, "/h/snapshots/a/upper.ext4", size, { algorithm: "msb-sparse-sha256-v1", extents: true });
 * r.digest;  // "sha256:…"
 * r.extents; // [{ offset: 0, length: 4096 }, …]
 * ```
 * @module
 */

import { createSha256, isSharedZeros, type Sha256 } from "../wasm/mod.js";
import { InvalidArgument } from "./errors.js";
import type { FileHandle, FileSystem } from "./fs/types.js";
import { readChunks, withFile, WriteWindow } from "./io.js";
import { SPARSE_SHA256 } from "./manifest.js";

/** Granularity of hole detection: the ext4 block size. */
export const SPARSE_BLOCK = 4096;

/** A data region of a sparse file: `[offset, offset + length)`. */
export interface Extent {
  readonly offset: number;
  readonly length: number;
}

/** True when every byte of `data` is zero. */
export function isAllZero(data: Uint8Array): boolean {
  return rangeIsZero(data, wordsOf(data), wordLead(data), 0, data.length);
}

/** Bytes before the first 4-byte-aligned byte of `data`. */
function wordLead(data: Uint8Array): number {
  return Math.min(data.length, (4 - (data.byteOffset & 3)) & 3);
}

/** An `Int32Array` over the aligned whole words of `data` (from {@link wordLead}). */
function wordsOf(data: Uint8Array): Int32Array {
  const lead = wordLead(data);
  const start = data.byteOffset + lead;
  // a view too short to reach an aligned byte has no whole words (and an Int32Array may not start there)
  if ((start & 3) !== 0) return new Int32Array(0);
  return new Int32Array(data.buffer, start, (data.length - lead) >>> 2);
}

/**
 * True when `data[from, to)` is all zero. `words` views `data` from byte
 * `lead` on. Whole words are OR-ed eight at a time (32 bytes), so a data block
 * is rejected at its first non-zero 32 bytes and a zero block costs one pass.
 */
function rangeIsZero(data: Uint8Array, words: Int32Array, lead: number, from: number, to: number): boolean {
  let w = from <= lead ? 0 : ((from - lead + 3) >>> 2);
  const wEnd = to <= lead ? 0 : Math.min(words.length, (to - lead) >>> 2);
  if (w >= wEnd) {
    for (let i = from; i < to; i++) if (data[i] !== 0) return false;
    return true;
  }
  const alignedFrom = lead + 4 * w;
  const alignedTo = lead + 4 * wEnd;
  for (let i = from; i < alignedFrom; i++) if (data[i] !== 0) return false;
  for (; w + 8 <= wEnd; w += 8) {
    if ((words[w]! | words[w + 1]! | words[w + 2]! | words[w + 3]! | words[w + 4]! | words[w + 5]! | words[w + 6]! | words[w + 7]!) !== 0) {
      return false;
    }
  }
  for (; w < wEnd; w++) if (words[w] !== 0) return false;
  for (let i = alignedTo; i < to; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * The data runs of a chunk at `[base, base + data.length)`, at
 * {@link SPARSE_BLOCK} granularity (aligned to the file, so runs from
 * consecutive chunks join up): zero blocks are left out. A decompressor's
 * shared zero chunk has no runs, without a scan.
 */
export function dataRuns(data: Uint8Array, base: number): Extent[] {
  if (isSharedZeros(data)) return [];
  const words = wordsOf(data);
  const lead = wordLead(data);
  return blockRuns(data.length, base, (from, to) => rangeIsZero(data, words, lead, from, to));
}

/** {@link dataRuns} of a chunk of `n` bytes at `base`, with `isZero(from, to)` testing a block of it. */
function blockRuns(n: number, base: number, isZero: (from: number, to: number) => boolean): Extent[] {
  const runs: Extent[] = [];
  let runStart = -1;
  let pos = 0;
  while (pos < n) {
    const next = Math.min(n, pos + SPARSE_BLOCK - ((base + pos) % SPARSE_BLOCK));
    const zero = isZero(pos, next);
    if (!zero && runStart < 0) runStart = pos;
    if (zero && runStart >= 0) {
      runs.push({ offset: base + runStart, length: pos - runStart });
      runStart = -1;
    }
    pos = next;
  }
  if (runStart >= 0) runs.push({ offset: base + runStart, length: n - runStart });
  return runs;
}

/** Append `run` to `extents`, merging it with the last one when they touch. */
export function pushExtent(extents: Extent[], run: Extent): void {
  const last = extents[extents.length - 1];
  if (last && last.offset + last.length === run.offset) extents[extents.length - 1] = { offset: last.offset, length: last.length + run.length };
  else extents.push(run);
}

/**
 * A hasher for one integrity algorithm over an upper's logical bytes:
 * `sha256` hashes the bytes; `msb-sparse-sha256-v1` first hashes the tag
 * `"msb-sparse-sha256-v1\0"` and the size as 8-byte little-endian.
 * Throws {@link InvalidArgument} for any other algorithm.
 */
export async function createUpperHasher(algorithm: string, size: number): Promise<Sha256> {
  const h = await createSha256();
  if (algorithm === "sha256") return h;
  if (algorithm === SPARSE_SHA256) {
    h.update(new TextEncoder().encode(`${SPARSE_SHA256}\0`));
    const le = new Uint8Array(8);
    new DataView(le.buffer).setBigUint64(0, BigInt(size), true);
    h.update(le);
    return h;
  }
  h.digestHex();
  throw new InvalidArgument(`integrity algorithm ${JSON.stringify(algorithm)} is not supported (known: sha256, ${SPARSE_SHA256})`);
}

/** Options of {@link scanFile}. */
export interface ScanOptions {
  /** Hash the logical bytes with this integrity algorithm. */
  readonly algorithm?: string | null;
  /** Collect the data extents. */
  readonly extents?: boolean;
  /** Called after each chunk with the bytes scanned so far. */
  readonly onProgress?: (bytes: number) => void;
  /**
   * Called with each chunk and its data runs, e.g. to copy only the data.
   * The chunk's buffer is reused once the returned promise settles: copy
   * what must outlive the call.
   */
  readonly onChunk?: (chunk: { offset: number; data: Uint8Array }, runs: Extent[]) => Promise<void> | void;
}

/** What {@link scanFile} found. */
export interface ScanResult {
  /** `sha256:<hex>` when an algorithm was given, else `null`. */
  readonly digest: string | null;
  readonly extents: Extent[] | null;
  /** Bytes in data extents. */
  readonly dataBytes: number;
}

/** Read a file's `[0, size)` once, hashing and/or mapping its extents along the way. */
export async function scanHandle(h: FileHandle, size: number, path: string, options: ScanOptions = {}): Promise<ScanResult> {
  const hasher = options.algorithm ? await createUpperHasher(options.algorithm, size) : null;
  const extents: Extent[] | null = options.extents || options.onChunk ? [] : null;
  let dataBytes = 0;
  try {
    for await (const chunk of readChunks(h, size, path, { reuse: true })) {
      hasher?.update(chunk.data);
      if (extents) {
        const runs = dataRuns(chunk.data, chunk.offset);
        for (const r of runs) {
          pushExtent(extents, r);
          dataBytes += r.length;
        }
        if (options.onChunk) await options.onChunk(chunk, runs);
      }
      options.onProgress?.(chunk.offset + chunk.data.length);
    }
  } catch (e) {
    hasher?.digestHex();
    throw e;
  }
  return { digest: hasher ? `sha256:${hasher.digestHex()}` : null, extents: options.extents ? extents : null, dataBytes };
}

/** {@link scanHandle} on a path. */
export async function scanFile(fs: FileSystem, path: string, size: number, options: ScanOptions = {}): Promise<ScanResult> {
  return withFile(fs, path, "r", (h) => scanHandle(h, size, path, options));
}

/**
 * Copy `[0, size)` of `src` to a new file `dest`, writing only data blocks
 * and setting the length at the end, so zero blocks become holes. Hashes
 * along the way when `algorithm` is given.
 */
export async function copySparse(fs: FileSystem, src: string, dest: string, size: number, algorithm: string | null, onProgress?: (bytes: number) => void): Promise<ScanResult> {
  return withFile(fs, dest, "wx", async (out) => {
    const result = await withFile(fs, src, "r", async (h) => {
      const info = await h.info();
      if (info.size !== size) throw new InvalidArgument(`${src} changed size while being copied`);
      return scanHandle(h, size, src, {
        algorithm,
        onProgress,
        onChunk: async (chunk, runs) => {
          // the chunk's buffer is refilled once this returns: drain before returning
          const writes = new WriteWindow(out);
          try {
            for (const r of runs) await writes.write(chunk.data.subarray(r.offset - chunk.offset, r.offset - chunk.offset + r.length), r.offset);
          } finally {
            await writes.drain();
          }
        },
      });
    });
    await out.setLength(size);
    await out.sync();
    return result;
  });
}
