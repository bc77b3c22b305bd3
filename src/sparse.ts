/**
 * Sparse files: finding data extents by zero-scanning, the
 * `msb-sparse-sha256-v1` digest, and writing only data so holes stay holes.
 *
 * Where the filesystem adapter reports a file's data ranges
 * (`FileHandle.dataRanges`: `SEEK_DATA`/`SEEK_HOLE`, on Deno and Bun), holes
 * are skipped unread. Everything read is zero-scanned: every all-zero 4 KiB
 * block counts as a hole (at memory speed, `wasm/zeroscan.ts`). On Node
 * (`node:fs` has no `SEEK_HOLE`) that scan is how holes are found; reading a
 * hole costs no disk I/O, and the result is the same either way: the logical
 * bytes are identical, and a zero block need not be stored.
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

import { createSha256, isSharedZeros, type Sha256, ZeroScanner } from "../wasm/mod.js";
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

/** The scanner for bytes that live in no scanner's memory: they are copied into its scratch area, 1 MiB at a time. */
let shared: ZeroScanner | undefined;

/** True when every byte of `data` is zero. */
export function isAllZero(data: Uint8Array): boolean {
  return dataRuns(data, 0).length === 0;
}

/**
 * The data runs of a chunk at `[base, base + data.length)`, at
 * {@link SPARSE_BLOCK} granularity (aligned to the file, so runs from
 * consecutive chunks join up): zero blocks are left out. A decompressor's
 * shared zero chunk has no runs, without a scan. The test runs at memory
 * speed (`wasm/zeroscan.ts`): in place when `data` lies in `scanner`'s
 * memory, else through a 1 MiB copy.
 */
export function dataRuns(data: Uint8Array, base: number, scanner?: ZeroScanner): Extent[] {
  if (isSharedZeros(data)) return [];
  if (scanner?.owns(data)) return inPlaceRuns(scanner, data, base);
  shared ??= new ZeroScanner();
  const runs: Extent[] = [];
  for (let at = 0; at < data.length;) {
    // pieces end on block boundaries of the file (or at the end), so their runs join up
    const n = Math.min(data.length - at, (1 << 20) - ((base + at) % SPARSE_BLOCK));
    for (const r of inPlaceRuns(shared, shared.scratch(data, at, n), base + at)) pushExtent(runs, r);
    at += n;
  }
  return runs;
}

/** {@link dataRuns} of bytes in `scanner`'s memory: one pass over a zero chunk, block by block for one with data. */
function inPlaceRuns(scanner: ZeroScanner, data: Uint8Array, base: number): Extent[] {
  if (scanner.isZero(data, 0, data.length)) return [];
  return blockRuns(data.length, base, (from, to) => scanner.isZero(data, from, to));
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
  /**
   * Called for each hole the file itself reported ({@link FileHandle.dataRanges}),
   * which is not read: `[offset, offset + length)` is zero. Holes start on
   * {@link HOLE_ALIGN} boundaries; the chunks around them too.
   */
  readonly onHole?: (offset: number, length: number) => Promise<void> | void;
}

/** Reported holes are rounded in to this (a BLAKE3 Merkle leaf), so chunks and holes start on leaf boundaries. */
export const HOLE_ALIGN = 65536;

/** The regions of `[0, size)` to read: the data ranges rounded out to {@link HOLE_ALIGN}, merged; all of it when unknown. */
function regionsToRead(ranges: readonly Extent[] | null, size: number): Extent[] {
  if (ranges === null) return size > 0 ? [{ offset: 0, length: size }] : [];
  const out: Extent[] = [];
  for (const r of ranges) {
    if (r.length <= 0) continue;
    const start = Math.floor(r.offset / HOLE_ALIGN) * HOLE_ALIGN;
    const end = Math.min(size, Math.ceil((r.offset + r.length) / HOLE_ALIGN) * HOLE_ALIGN);
    const last = out[out.length - 1];
    if (last && start <= last.offset + last.length) {
      if (end > last.offset + last.length) out[out.length - 1] = { offset: last.offset, length: end - last.offset };
    } else if (end > start) out.push({ offset: start, length: end - start });
  }
  return out;
}

const ZEROS = new Uint8Array(1 << 20);

/** Size of one scan read: 2 MiB, three buffers (6 MiB) in all. */
const SCAN_CHUNK_BYTES = 2 << 20;

/** What {@link scanFile} found. */
export interface ScanResult {
  /** `sha256:<hex>` when an algorithm was given, else `null`. */
  readonly digest: string | null;
  readonly extents: Extent[] | null;
  /** Bytes in data extents. */
  readonly dataBytes: number;
}

/**
 * Read a file's `[0, size)` once, hashing and/or mapping its extents along
 * the way. Where the handle reports its data ranges, holes are not read:
 * they are hashed as zeros where the algorithm needs their bytes, and handed
 * to {@link ScanOptions.onHole}. Chunks are read into the buffers of a zero
 * scanner and scanned where they lie.
 */
export async function scanHandle(h: FileHandle, size: number, path: string, options: ScanOptions = {}): Promise<ScanResult> {
  const hasher = options.algorithm ? await createUpperHasher(options.algorithm, size) : null;
  const extents: Extent[] | null = options.extents || options.onChunk ? [] : null;
  let dataBytes = 0;
  // three 2 MiB buffers: the one being scanned and two reads in flight (see readChunks)
  const scanner = new ZeroScanner(3, SCAN_CHUNK_BYTES);
  try {
    const ranges = h.dataRanges ? await h.dataRanges(0, size) : null;
    let at = 0;
    const hole = async (end: number) => {
      if (end <= at) return;
      if (hasher) for (let o = at; o < end; o += ZEROS.length) hasher.update(ZEROS.subarray(0, Math.min(ZEROS.length, end - o)));
      await options.onHole?.(at, end - at);
      at = end;
      options.onProgress?.(at);
    };
    for (const region of regionsToRead(ranges, size)) {
      await hole(region.offset);
      for await (const chunk of readChunks(h, region.length, path, { start: region.offset, chunkBytes: SCAN_CHUNK_BYTES, buffers: scanner.buffers })) {
        hasher?.update(chunk.data);
        if (extents) {
          const runs = dataRuns(chunk.data, chunk.offset, scanner);
          for (const r of runs) {
            pushExtent(extents, r);
            dataBytes += r.length;
          }
          if (options.onChunk) await options.onChunk(chunk, runs);
        }
        at = chunk.offset + chunk.data.length;
        options.onProgress?.(at);
      }
    }
    await hole(size);
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
