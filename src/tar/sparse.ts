/**
 * Old-GNU sparse maps (typeflag `S`): the segment type, reading and writing
 * the 24-byte descriptors, and the rules a map must obey.
 *
 * A map lists the *data* segments of a file by logical offset and length; the
 * archive stores only their bytes, concatenated. GNU tar ends a map whose file
 * ends in a hole with a zero-length descriptor at the logical size, which is
 * how its extractor learns the final size; the writer emits one and the
 * reader drops zero-length descriptors from the map it reports.
 *
 * @example
 * ```ts
 * import { validateSparseMap } from "./sparse.js";
 * validateSparseMap([{ offset: 0, length: 5 }, { offset: 4096, length: 5 }], 8192, 10,
 *   (rule) => { throw new Error(rule); }); // ok: returns the two segments
 * ```
 * @module
 */

import { encodeNumeric, parseNumeric, type Fail } from "./header.js";

/** A data segment of a sparse file: `length` bytes at logical `offset`. */
export interface SparseSegment {
  offset: number;
  length: number;
}

/** Default bound on the descriptors of one sparse entry (memory guard). */
export const DEFAULT_MAX_SPARSE_SEGMENTS = 1_000_000;

/**
 * Read up to `count` descriptors (offset[12] + numbytes[12]) starting at
 * `offset` in `block` into `out`. Returns `false` when a descriptor whose
 * `numbytes` starts with NUL ends the map (as GNU tar reads it).
 *
 * @example
 * ```ts
 * const out: SparseSegment[] = [];
 * readDescriptors(headerBlock, 386, 4, out, (rule) => { throw new Error(rule); });
 * ```
 */
export function readDescriptors(
  block: Uint8Array,
  offset: number,
  count: number,
  out: SparseSegment[],
  fail: Fail,
): boolean {
  for (let k = 0; k < count; k++) {
    const o = offset + 24 * k;
    if (block[o + 12] === 0) return false;
    const segOffset = parseNumeric(block, o, 12, (rule) => fail(`sparse descriptor ${out.length} offset: ${rule}`));
    const segLength = parseNumeric(block, o + 12, 12, (rule) => fail(`sparse descriptor ${out.length} length: ${rule}`));
    out.push({ offset: segOffset, length: segLength });
  }
  return true;
}

/**
 * Write `segments` as descriptors at `offset` in `block` (octal, or base-256 past 8 GiB).
 *
 * @example
 * ```ts
 * writeDescriptors(headerBlock, 386, [{ offset: 0, length: 512 }, { offset: 1 << 20, length: 0 }]);
 * ```
 */
export function writeDescriptors(block: Uint8Array, offset: number, segments: readonly SparseSegment[]): void {
  segments.forEach((s, k) => {
    encodeNumeric(block, offset + 24 * k, 12, s.offset);
    encodeNumeric(block, offset + 24 * k + 12, 12, s.length);
  });
}

/**
 * Check a sparse map: segments sorted and non-overlapping, each within
 * `realSize`, lengths summing to `storedSize`. Returns the map without
 * zero-length segments. Calls `fail` naming the first rule broken.
 *
 * @example
 * ```ts
 * validateSparseMap([{ offset: 0, length: 512 }, { offset: 4096, length: 0 }], 4096, 512,
 *   (rule) => { throw new Error(rule); }); // [{ offset: 0, length: 512 }]
 * ```
 */
export function validateSparseMap(
  map: readonly SparseSegment[],
  realSize: number,
  storedSize: number,
  fail: Fail,
): SparseSegment[] {
  const out: SparseSegment[] = [];
  let prevEnd = 0;
  let sum = 0;
  map.forEach((s, i) => {
    if (!Number.isSafeInteger(s.offset) || s.offset < 0 || !Number.isSafeInteger(s.length) || s.length < 0) {
      fail(`sparse map segment ${i} (offset ${s.offset}, length ${s.length}) is not a pair of non-negative integers`);
    }
    if (s.offset < prevEnd) {
      fail(
        `sparse map segment ${i} (offset ${s.offset}, length ${s.length}) overlaps or precedes the previous segment ending at ${prevEnd}`,
      );
    }
    const end = s.offset + s.length;
    if (end > realSize) {
      fail(`sparse map segment ${i} (offset ${s.offset}, length ${s.length}) extends beyond the logical size ${realSize}`);
    }
    prevEnd = end;
    sum += s.length;
    if (s.length > 0) out.push({ offset: s.offset, length: s.length });
  });
  if (sum !== storedSize) {
    fail(`sparse map covers ${sum} bytes but the entry stores ${storedSize}`);
  }
  return out;
}

/**
 * Require every data segment's bytes to start on a 512-byte boundary of the
 * stored data (all lengths but the last a multiple of 512). GNU tar starts
 * each segment's data on a fresh block while other readers (tar-rs,
 * libarchive) read the data contiguously; they agree only on such maps, and
 * GNU tar only writes such maps. Calls `fail` on the first offender.
 *
 * @example
 * ```ts
 * checkSegmentAlignment([{ offset: 0, length: 10 }, { offset: 600, length: 5 }],
 *   (rule) => { throw new Error(rule); }); // throws: segment 1 starts at stored byte 10
 * ```
 */
export function checkSegmentAlignment(map: readonly SparseSegment[], fail: Fail): void {
  let stored = 0;
  map.forEach((s, i) => {
    if (s.length > 0 && stored % 512 !== 0) {
      fail(
        `sparse map segment ${i} (offset ${s.offset}, length ${s.length}) starts at stored byte ${stored}, ` +
          `not on a 512-byte boundary (GNU tar and other readers would disagree about its data)`,
      );
    }
    stored += s.length;
  });
}

/**
 * Widen a valid map to 512-byte boundaries (capped at `realSize`), merging
 * segments that then touch, so that every segment but the last has a length
 * that is a multiple of 512 (see {@link checkSegmentAlignment}). The bytes
 * added are holes, i.e. zeros, so the logical content is unchanged.
 *
 * @example
 * ```ts
 * blockAlignMap([{ offset: 10, length: 5 }, { offset: 600, length: 5 }], 2000);
 * // [{ offset: 0, length: 1024 }]
 * ```
 */
export function blockAlignMap(map: readonly SparseSegment[], realSize: number): SparseSegment[] {
  const out: SparseSegment[] = [];
  for (const s of map) {
    if (s.length === 0) continue;
    const start = Math.floor(s.offset / 512) * 512;
    const end = Math.min(Math.ceil((s.offset + s.length) / 512) * 512, realSize);
    const last = out[out.length - 1];
    if (last && start <= last.offset + last.length) {
      last.length = Math.max(last.offset + last.length, end) - last.offset;
    } else {
      out.push({ offset: start, length: end - start });
    }
  }
  return out;
}

/** Longest decimal number accepted in a sparse 1.0 map (2^53−1 has 16 digits). */
const MAX_MAP_DIGITS = 16;

/**
 * Read the map a PAX sparse 1.0 entry stores at the start of its data area:
 * decimal numbers, each ended by `\n` — the count, then `count` offset/numbytes
 * pairs — padded with zeros to a 512-byte boundary. Reads block by block, at
 * most `available` bytes (the entry's stored size), and allocates only for
 * numbers actually present: a count is bounded by `maxSegments` before anything
 * else. Resolves the raw map and the bytes the map area took (whole blocks).
 *
 * @example
 * ```ts
 * const { map, bytes } = await readSparseMap10(() => src.readBlock(), storedTotal, 1_000_000, fail, truncated);
 * ```
 */
export async function readSparseMap10(
  readBlock: () => Promise<Uint8Array | number>,
  available: number,
  maxSegments: number,
  fail: Fail,
  truncated: () => Error,
): Promise<{ map: SparseSegment[]; bytes: number }> {
  const map: SparseSegment[] = [];
  let count = -1;
  let pendingOffset = -1;
  let digits = 0;
  let value = 0;
  let bytes = 0;
  for (;;) {
    if (bytes + 512 > available) fail(`PAX sparse 1.0 map runs past the entry's ${available} stored bytes`);
    const block = await readBlock();
    if (typeof block === "number") throw truncated();
    bytes += 512;
    for (let i = 0; i < 512; i++) {
      const c = block[i]!;
      if (c >= 0x30 && c <= 0x39) {
        if (++digits > MAX_MAP_DIGITS) fail(`PAX sparse 1.0 map: number ${map.length * 2 + (pendingOffset >= 0 ? 1 : 0)} has more than ${MAX_MAP_DIGITS} digits`);
        value = value * 10 + (c - 0x30);
        continue;
      }
      if (c !== 0x0a || digits === 0) {
        fail(`PAX sparse 1.0 map: byte ${bytes - 512 + i} is ${JSON.stringify(String.fromCharCode(c))}, expected a decimal number ended by a newline`);
      }
      if (!Number.isSafeInteger(value)) fail(`PAX sparse 1.0 map: ${value} exceeds 2^53-1`);
      if (count < 0) {
        if (value > maxSegments) fail(`PAX sparse 1.0 map declares ${value} segments; the limit is ${maxSegments}`);
        count = value;
      } else if (pendingOffset < 0) {
        pendingOffset = value;
      } else {
        map.push({ offset: pendingOffset, length: value });
        pendingOffset = -1;
      }
      digits = 0;
      value = 0;
      if (map.length === count && pendingOffset < 0) return { map, bytes };
    }
  }
}
