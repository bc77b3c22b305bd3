/**
 * PAX extended headers: which records the reader applies, which it may
 * ignore, and which it refuses — and the `GNU.sparse.*` records of the three
 * PAX sparse formats GNU tar and libarchive write (0.0, 0.1, 1.0).
 *
 * - Applied: `path`, `linkpath`, `size`, `mtime`, `GNU.sparse.*`.
 * - Ignored (they change nothing a load keeps): `atime`, `ctime`, `uid`,
 *   `gid`, `uname`, `gname`, `charset`, `comment`, `hdrcharset` when it
 *   says UTF-8, and every `SCHILY.*` and `LIBARCHIVE.*` record (xattrs,
 *   device numbers, inode data, creation times).
 * - Refused: `hdrcharset=BINARY` (the path would not be UTF-8), and in a
 *   global header (`g`) anything that is not ignorable, since it would
 *   change every later entry.
 *
 * Other keywords are ignored, as POSIX asks of a reader that does not know them.
 *
 * @example
 * ```ts
 * import { parsePax } from "./pax.js";
 * const o = parsePax(new TextEncoder().encode("12 path=ab\n"), 0, (r) => { throw new Error(r); }, 1000);
 * o.path; // "ab"
 * ```
 * @module
 */

import { decodeLossy, decodeUtf8, type Fail, parsePaxRecords } from "./header.js";
import type { SparseSegment } from "./sparse.js";

/** What a PAX `x` header changes about the entry after it. */
export interface PaxOverrides {
  offset: number;
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
  /** The `GNU.sparse.*` records, if any. */
  sparse?: PaxSparse;
}

/** The `GNU.sparse.*` records of one entry, not yet checked against each other. */
export interface PaxSparse {
  major?: number;
  minor?: number;
  /** `GNU.sparse.name` (1.0; 0.1 when GNU tar writes it). */
  name?: string;
  /** `GNU.sparse.realsize` (1.0) or `GNU.sparse.size` (0.x). */
  realSize?: number;
  numBlocks?: number;
  /** 0.0: the `GNU.sparse.offset`/`GNU.sparse.numbytes` pairs, in order. */
  pairs?: SparseSegment[];
  /** 0.1: `GNU.sparse.map`, parsed. */
  map?: SparseSegment[];
}

const DECIMAL = /^[0-9]+$/;
const PAX_TIME = /^-?[0-9]+(\.[0-9]+)?$/;

/**
 * Records that change nothing a load keeps (see the module doc).
 *
 * @example
 * ```ts
 * isIgnorablePaxKey("SCHILY.xattr.user.a", "b"); // true
 * isIgnorablePaxKey("path", "x"); // false
 * ```
 */
export function isIgnorablePaxKey(key: string, value: string): boolean {
  if (key === "hdrcharset") return value === "ISO-IEC 10646 2000 UTF-8";
  return (
    key === "atime" || key === "ctime" || key === "mtime" || key === "uid" || key === "gid" || key === "uname" || key === "gname" ||
    key === "charset" || key === "comment" || key.startsWith("SCHILY.") || key.startsWith("LIBARCHIVE.")
  );
}

/** A decimal integer up to 2^53−1, or `fail`. */
function decimal(key: string, value: string, fail: Fail): number {
  const n = Number(value);
  if (!DECIMAL.test(value) || value.length > 16 || !Number.isSafeInteger(n)) fail(`PAX ${key} ${JSON.stringify(value.slice(0, 40))} is not a decimal integer up to 2^53-1`);
  return n;
}

/**
 * Parse a `GNU.sparse.map` value (`offset,numbytes,offset,numbytes,…`) into
 * at most `maxSegments` segments. The value is bounded by the PAX header's size.
 *
 * @example
 * ```ts
 * parseSparseMapRecord("0,512,4096,10", 10, (r) => { throw new Error(r); }); // two segments
 * ```
 */
export function parseSparseMapRecord(value: string, maxSegments: number, fail: Fail): SparseSegment[] {
  if (value === "") return [];
  const parts = value.split(",");
  if (parts.length % 2 !== 0) fail(`PAX GNU.sparse.map has ${parts.length} numbers; it must hold offset,numbytes pairs`);
  if (parts.length / 2 > maxSegments) fail(`PAX GNU.sparse.map has more than ${maxSegments} segments`);
  const out: SparseSegment[] = [];
  for (let k = 0; k < parts.length; k += 2) {
    out.push({ offset: decimal(`GNU.sparse.map offset ${k / 2}`, parts[k]!, fail), length: decimal(`GNU.sparse.map numbytes ${k / 2}`, parts[k + 1]!, fail) });
  }
  return out;
}

/**
 * Parse the records of a PAX `x` header at `offset` into the overrides the
 * reader applies. `maxSegments` bounds the sparse records.
 *
 * @example
 * ```ts
 * parsePax(bytes, 1024, fail, 1_000_000).sparse?.realSize;
 * ```
 */
export function parsePax(data: Uint8Array, offset: number, fail: Fail, maxSegments: number): PaxOverrides {
  const records = parsePaxRecords(data, (rule) => fail(`PAX extended header: ${rule}`));
  const out: PaxOverrides = { offset };
  const sparse = (): PaxSparse => (out.sparse ??= {});
  let pendingOffset: number | null = null;
  for (const [key, raw] of records) {
    const value = decodeUtf8(raw);
    if (value === null) fail(`PAX ${key} ${JSON.stringify(decodeLossy(raw))} is not valid UTF-8`);
    if (key === "hdrcharset" && !isIgnorablePaxKey(key, value)) {
      fail(`PAX hdrcharset ${JSON.stringify(value)}: names that are not UTF-8 cannot be loaded`);
    }
    if (key.startsWith("GNU.sparse.")) {
      const s = sparse();
      switch (key) {
        case "GNU.sparse.major": s.major = decimal(key, value, fail); break;
        case "GNU.sparse.minor": s.minor = decimal(key, value, fail); break;
        case "GNU.sparse.name": s.name = value; break;
        case "GNU.sparse.realsize":
        case "GNU.sparse.size": s.realSize = decimal(key, value, fail); break;
        case "GNU.sparse.numblocks": {
          const n = decimal(key, value, fail);
          if (n > maxSegments) fail(`PAX GNU.sparse.numblocks ${n} exceeds the limit of ${maxSegments} segments`);
          s.numBlocks = n;
          break;
        }
        case "GNU.sparse.offset":
          if (pendingOffset !== null) fail("PAX GNU.sparse.offset is not followed by GNU.sparse.numbytes");
          pendingOffset = decimal(key, value, fail);
          break;
        case "GNU.sparse.numbytes": {
          if (pendingOffset === null) fail("PAX GNU.sparse.numbytes without a GNU.sparse.offset before it");
          const pairs = (s.pairs ??= []);
          if (pairs.length >= maxSegments) fail(`PAX sparse map has more than ${maxSegments} segments`);
          pairs.push({ offset: pendingOffset, length: decimal(key, value, fail) });
          pendingOffset = null;
          break;
        }
        case "GNU.sparse.map": s.map = parseSparseMapRecord(value, maxSegments, fail); break;
        default: fail(`PAX record ${JSON.stringify(key)} is not a GNU sparse record this reader knows`);
      }
      continue;
    }
    // An empty value removes the keyword: the header field applies.
    if (value === "") continue;
    switch (key) {
      case "path": out.path = value; break;
      case "linkpath": out.linkpath = value; break;
      case "size": out.size = decimal(key, value, fail); break;
      case "mtime": {
        const n = Number(value);
        if (!PAX_TIME.test(value) || !Number.isFinite(n)) fail(`PAX mtime ${JSON.stringify(value)} is not a number`);
        out.mtime = n;
        break;
      }
    }
  }
  if (pendingOffset !== null) fail("PAX GNU.sparse.offset is not followed by GNU.sparse.numbytes");
  return out;
}

/**
 * Check a global header's (`g`) records: only ignorable ones are accepted,
 * since any other would change every entry after it.
 *
 * @example
 * ```ts
 * checkGlobalPax(new TextEncoder().encode("17 comment=hello\n"), fail); // ok
 * ```
 */
export function checkGlobalPax(data: Uint8Array, fail: Fail): void {
  for (const [key, raw] of parsePaxRecords(data, (rule) => fail(`PAX global header: ${rule}`))) {
    const value = decodeUtf8(raw) ?? "";
    if (!isIgnorablePaxKey(key, value)) {
      fail(
        `a global PAX header carrying record ${JSON.stringify(key)} would apply to every entry after it and is refused; ` +
          `only ignorable records (times, ids and names, charset, comment, SCHILY.*, LIBARCHIVE.*) are accepted in a global header`,
      );
    }
  }
}
