/**
 * Streaming tar reader over Web Streams. It yields one {@link TarEntry} per
 * member, never holding more than one header set and one input chunk; data is
 * handed out as views of the input chunks through {@link TarEntry.segments}.
 *
 * It is strict where a lenient reader would hide damage: bad checksums,
 * truncation anywhere before the two end-of-archive zero blocks, malformed
 * numbers, PAX records or sparse maps are {@link ArchiveError}s naming the
 * entry or byte offset. It interprets POSIX ustar, PAX `x` headers, global
 * `g` headers that carry only ignorable records (`./pax.ts`), old-GNU sparse
 * (`S`) entries and the PAX sparse formats GNU.sparse 0.0, 0.1 and 1.0;
 * everything else (`L`, `K`, links, devices, …) is reported as is, for the
 * caller to accept or reject.
 *
 * @example
 * ```ts
 * import { readTar } from "./reader.js";
 * const res = await fetch("https://example.com/a.tar");
 * for await (const entry of readTar(res.body!, { label: "a.tar" })) {
 *   if (entry.kind !== "file") continue; // unread data is skipped
 *   for await (const { offset, data } of entry.segments()) {
 *     console.log(entry.path, offset, data.length);
 *   }
 * }
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import {
  BLOCK_SIZE,
  decodeLossy,
  decodeUtf8,
  F,
  fieldBytes,
  GNU_SPARSE,
  headerFormat,
  isZeroBlock,
  parseNumeric,
  verifyChecksum,
  type Fail,
} from "./header.js";
import { checkGlobalPax, parsePax, type PaxOverrides, type PaxSparse } from "./pax.js";
import { ByteSource } from "./source.js";
import {
  checkSegmentAlignment,
  DEFAULT_MAX_SPARSE_SEGMENTS,
  readDescriptors,
  readSparseMap10,
  validateSparseMap,
  type SparseSegment,
} from "./sparse.js";

export type { SparseSegment } from "./sparse.js";

/** What an entry is, from its typeflag. `"other"` covers `g`, `x`-less metadata (`L`, `K`, `V`, `M`, …) and unknown flags. */
export type TarEntryKind = "file" | "directory" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other";

/** A piece of an entry's data: `data` holds the logical bytes starting at `offset`. */
export interface TarSegment {
  offset: number;
  data: Uint8Array;
}

/** One archive member as the reader found it. */
export interface TarEntry {
  /** UTF-8 path: PAX `path` if given, else ustar `prefix/name` (POSIX magic only), else `name`. */
  readonly path: string;
  /** The raw typeflag character (`"0"`, `"\0"`, `"5"`, `"S"`, `"g"`, `"L"`, …). */
  readonly typeflag: string;
  readonly kind: TarEntryKind;
  /** True for a sparse entry: old-GNU `S`, or PAX `GNU.sparse` 0.0, 0.1 or 1.0. */
  readonly sparse: boolean;
  /** Logical size: `realsize` for sparse entries, else the PAX or header size. */
  readonly size: number;
  /** Bytes of data stored in the archive for this entry (before padding). */
  readonly storedSize: number;
  /** The data segments of a sparse entry (zero-length descriptors dropped), else `null`. */
  readonly sparseMap: readonly SparseSegment[] | null;
  /** Link target (PAX `linkpath` if given), `""` if none. */
  readonly linkname: string;
  /** Permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Modification time in seconds since the epoch (PAX `mtime` may be fractional). */
  readonly mtime: number;
  /** Offset of the entry's first header (its PAX `x` header, if any) in the tar stream. */
  readonly headerOffset: number;
  /**
   * The entry's data as `(logical offset, bytes)` pieces in increasing
   * offset order; for sparse entries only the data segments (holes are
   * absent). The bytes are views of the input chunks: copy them to keep them.
   * May be called once, and only before the reader moves to the next entry;
   * whatever is not read is skipped by the reader.
   */
  segments(): AsyncGenerator<TarSegment, void, undefined>;
}

/** Options of {@link readTar}. */
export interface ReadTarOptions {
  /** Prefix for error messages, e.g. the archive's file name. */
  label?: string;
  /** Largest PAX extended header accepted, in bytes (default 1 MiB). */
  maxPaxBytes?: number;
  /** Most descriptors accepted in one sparse map (default 1,000,000). */
  maxSparseSegments?: number;
}

/** Default bound on a PAX extended header's size. */
export const DEFAULT_MAX_PAX_BYTES = 1 << 20;

const FINISH = Symbol("finish");
const DETACH = Symbol("detach");

function kindOf(typeflag: string): TarEntryKind {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7":
    case "S":
      return "file";
    case "5":
      return "directory";
    case "2":
      return "symlink";
    case "1":
      return "hardlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "6":
      return "fifo";
    default:
      return "other";
  }
}

function padding(n: number): number {
  return (BLOCK_SIZE - (n % BLOCK_SIZE)) % BLOCK_SIZE;
}

interface EntryInit {
  path: string;
  typeflag: string;
  kind: TarEntryKind;
  sparse: boolean;
  size: number;
  storedSize: number;
  sparseMap: SparseSegment[] | null;
  linkname: string;
  mode: number;
  mtime: number;
  headerOffset: number;
}

class Entry implements TarEntry {
  readonly path: string;
  readonly typeflag: string;
  readonly kind: TarEntryKind;
  readonly sparse: boolean;
  readonly size: number;
  readonly storedSize: number;
  readonly sparseMap: readonly SparseSegment[] | null;
  readonly linkname: string;
  readonly mode: number;
  readonly mtime: number;
  readonly headerOffset: number;
  readonly #src: ByteSource;
  readonly #truncated: (what: string) => ArchiveError;
  #remaining: number;
  #started = false;
  #closed = false;

  constructor(init: EntryInit, src: ByteSource, truncated: (what: string) => ArchiveError) {
    this.path = init.path;
    this.typeflag = init.typeflag;
    this.kind = init.kind;
    this.sparse = init.sparse;
    this.size = init.size;
    this.storedSize = init.storedSize;
    this.sparseMap = init.sparseMap;
    this.linkname = init.linkname;
    this.mode = init.mode;
    this.mtime = init.mtime;
    this.headerOffset = init.headerOffset;
    this.#src = src;
    this.#truncated = truncated;
    this.#remaining = init.storedSize;
  }

  segments(): AsyncGenerator<TarSegment, void, undefined> {
    if (this.#closed) {
      throw new ArchiveError(`archive entry ${JSON.stringify(this.path)}: data is gone, the reader has moved past it`);
    }
    if (this.#started) {
      throw new ArchiveError(`archive entry ${JSON.stringify(this.path)}: segments() may be called only once`);
    }
    this.#started = true;
    return this.#generate();
  }

  async #take(max: number): Promise<Uint8Array> {
    if (this.#closed) {
      throw new ArchiveError(`archive entry ${JSON.stringify(this.path)}: data is gone, the reader has moved past it`);
    }
    const v = await this.#src.take(max);
    if (v === null) throw this.#dataTruncated();
    this.#remaining -= v.length;
    return v;
  }

  #dataTruncated(): ArchiveError {
    return this.#truncated(
      `input ends inside the data of entry ${JSON.stringify(this.path)} (header at offset ${this.headerOffset}): ` +
        `${this.#remaining} of ${this.storedSize} bytes missing`,
    );
  }

  async *#generate(): AsyncGenerator<TarSegment, void, undefined> {
    const map = this.sparseMap;
    if (map === null) {
      let logical = 0;
      while (logical < this.storedSize) {
        const data = await this.#take(this.#remaining);
        const offset = logical;
        logical += data.length;
        yield { offset, data };
      }
      return;
    }
    for (const seg of map) {
      let done = 0;
      while (done < seg.length) {
        const data = await this.#take(seg.length - done);
        const offset = seg.offset + done;
        done += data.length;
        yield { offset, data };
      }
    }
  }

  /** Skip what was not read, and the padding; detach the data. */
  async [FINISH](): Promise<void> {
    this.#closed = true;
    if (this.#remaining > 0) {
      const want = this.#remaining;
      const got = await this.#src.skip(want);
      this.#remaining -= got;
      if (got < want) throw this.#dataTruncated();
    }
    const pad = padding(this.storedSize);
    const got = await this.#src.skip(pad);
    if (got < pad) {
      throw this.#truncated(
        `input ends inside the padding of entry ${JSON.stringify(this.path)} (header at offset ${this.headerOffset})`,
      );
    }
  }

  /** Close without reading further (the reader is being abandoned). */
  [DETACH](): void {
    this.#closed = true;
  }
}

/**
 * Read a tar stream entry by entry. The stream is read only as far as the
 * end-of-archive marker (two zero blocks); then, or when the loop is left
 * early or fails, the stream is cancelled and its lock released.
 *
 * Rules (each an {@link ArchiveError} naming the entry or offset): valid
 * header checksums (unsigned or signed sum); octal or positive GNU base-256
 * numbers up to 2^53−1; no truncation before the end marker, and no lone zero
 * block followed by more headers; PAX `x` records well formed and at most
 * `maxPaxBytes`; global headers only with ignorable records; sparse maps
 * (old-GNU and PAX 0.0/0.1/1.0, at most `maxSparseSegments`) sorted,
 * non-overlapping, within the logical size, matching the stored size, and
 * with every segment's data starting on a 512-byte boundary (GNU tar pads
 * each segment to a block, tar-rs and libarchive do not: only such maps mean
 * the same to all of them);
 * names valid UTF-8; directories, links, devices and FIFOs carry no data.
 *
 * @example
 * ```ts
 * import { readTar } from "./reader.js";
 * const tar = new Blob([bytes]).stream();
 * for await (const e of readTar(tar)) console.log(e.kind, e.path, e.size);
 * ```
 */
export async function* readTar(
  source: ReadableStream<Uint8Array>,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry, void, undefined> {
  const label = options.label ? `${options.label}: ` : "";
  const maxPax = options.maxPaxBytes ?? DEFAULT_MAX_PAX_BYTES;
  const maxSegments = options.maxSparseSegments ?? DEFAULT_MAX_SPARSE_SEGMENTS;
  const truncated = (what: string) => new ArchiveError(`${label}archive truncated: ${what}`);
  const headerFail =
    (offset: number): Fail =>
    (rule) => {
      throw new ArchiveError(`${label}tar header at offset ${offset}: ${rule}`);
    };
  const entryFail =
    (path: string, offset: number): Fail =>
    (rule) => {
      throw new ArchiveError(`${label}archive entry ${JSON.stringify(path)} (header at offset ${offset}): ${rule}`);
    };

  const src = new ByteSource(source);
  let current: Entry | null = null;
  let pax: PaxOverrides | null = null;
  try {
    for (;;) {
      const offset = src.position;
      const block = await src.readBlock();
      if (typeof block === "number") {
        if (block > 0) {
          throw truncated(`input ends inside the header at offset ${offset} (${block} of ${BLOCK_SIZE} bytes)`);
        }
        if (pax) throw truncated(`input ends after the PAX extended header at offset ${pax.offset}`);
        throw truncated(`input ends at offset ${offset} without the end-of-archive marker (two zero blocks)`);
      }
      if (isZeroBlock(block)) {
        if (pax) headerFail(pax.offset)("PAX extended header is followed by the end of the archive, not an entry");
        const second = await src.readBlock();
        if (typeof second === "number") {
          throw truncated(
            second > 0
              ? `input ends inside the second end-of-archive block at offset ${offset + BLOCK_SIZE}`
              : `input ends after one zero block at offset ${offset} (the end-of-archive marker is two)`,
          );
        }
        if (!isZeroBlock(second)) {
          headerFail(offset)(`lone zero block followed by a non-zero block at offset ${offset + BLOCK_SIZE}`);
        }
        return;
      }

      const hfail: Fail = headerFail(offset);
      verifyChecksum(block, hfail);
      const format = headerFormat(block);
      if (format === null) hfail("unrecognized magic (neither POSIX ustar, GNU nor v7)");
      const typeflag = String.fromCharCode(block[F.typeflag[0]]!);
      const headerSize = parseNumeric(block, F.size[0], F.size[1], (r) => hfail(`size field: ${r}`));

      if (typeflag === "x" || typeflag === "g") {
        const what = typeflag === "x" ? "PAX extended header" : "PAX global header";
        if (pax) hfail(`a ${what} follows the PAX extended header at offset ${pax.offset}`);
        if (headerSize > maxPax) hfail(`${what} of ${headerSize} bytes exceeds the limit of ${maxPax}`);
        const data = new Uint8Array(headerSize);
        let got = 0;
        while (got < headerSize) {
          const v = await src.take(headerSize - got);
          if (v === null) throw truncated(`input ends inside the ${what} at offset ${offset}`);
          data.set(v, got);
          got += v.length;
        }
        const pad = padding(headerSize);
        if ((await src.skip(pad)) < pad) throw truncated(`input ends inside the padding of the ${what} at offset ${offset}`);
        if (typeflag === "x") pax = parsePax(data, offset, hfail, maxSegments);
        else checkGlobalPax(data, hfail); // only ignorable records: nothing to apply
        continue;
      }

      const entryOffset = pax ? pax.offset : offset;
      // Path: PAX `path`, else (POSIX ustar) prefix + "/" + name, else name.
      let path: string;
      const paxPath = pax?.sparse?.name ?? pax?.path;
      if (paxPath !== undefined) {
        path = paxPath;
      } else {
        let raw = fieldBytes(block, F.name[0], F.name[1]);
        if (format === "ustar") {
          const prefix = fieldBytes(block, F.prefix[0], F.prefix[1]);
          if (prefix.length > 0) {
            const joined = new Uint8Array(prefix.length + 1 + raw.length);
            joined.set(prefix, 0);
            joined[prefix.length] = 0x2f;
            joined.set(raw, prefix.length + 1);
            raw = joined;
          }
        }
        const decoded = decodeUtf8(raw);
        if (decoded === null) {
          const lossyFail: Fail = entryFail(decodeLossy(raw), entryOffset);
          lossyFail("name is not valid UTF-8");
        }
        path = decoded;
      }
      const efail: Fail = entryFail(path, entryOffset);
      let linkname: string;
      if (pax?.linkpath !== undefined) {
        linkname = pax.linkpath;
      } else {
        const raw = fieldBytes(block, F.linkname[0], F.linkname[1]);
        const decoded = decodeUtf8(raw);
        if (decoded === null) efail(`link name ${JSON.stringify(decodeLossy(raw))} is not valid UTF-8`);
        linkname = decoded;
      }
      const mode = parseNumeric(block, F.mode[0], F.mode[1], (r) => efail(`mode field: ${r}`)) & 0o7777;
      const mtime =
        pax?.mtime ?? parseNumeric(block, F.mtime[0], F.mtime[1], (r) => efail(`mtime field: ${r}`), true);
      let storedSize = pax?.size ?? headerSize;
      const kind = kindOf(typeflag);
      if (kind !== "file" && kind !== "other" && storedSize !== 0) {
        efail(`a ${kind} entry must not carry data, but its size is ${storedSize}`);
      }

      let size = storedSize;
      let sparseMap: SparseSegment[] | null = null;
      if (typeflag === "S") {
        if (format !== "gnu") efail("old-GNU sparse entry (typeflag S) without the GNU magic");
        size = parseNumeric(block, GNU_SPARSE.realSize, 12, (r) => efail(`sparse realsize field: ${r}`));
        const raw: SparseSegment[] = [];
        let more = readDescriptors(block, GNU_SPARSE.descriptors, GNU_SPARSE.count, raw, efail);
        let extended = block[GNU_SPARSE.isExtended] !== 0;
        while (extended) {
          if (!more) efail("sparse map ends in a header that is marked as extended");
          if (raw.length >= maxSegments) {
            efail(`sparse map has more than ${maxSegments} segments`);
          }
          const extOffset = src.position;
          const ext = await src.readBlock();
          if (typeof ext === "number") {
            throw truncated(
              `input ends inside the sparse extension header at offset ${extOffset} of entry ${JSON.stringify(path)}`,
            );
          }
          more = readDescriptors(ext, 0, GNU_SPARSE.extCount, raw, efail);
          extended = ext[GNU_SPARSE.extIsExtended] !== 0;
        }
        if (raw.length > maxSegments) efail(`sparse map has more than ${maxSegments} segments`);
        sparseMap = validateSparseMap(raw, size, storedSize, efail);
        checkSegmentAlignment(raw, efail);
      }

      if (pax?.sparse !== undefined) {
        if (kind !== "file" || typeflag === "S") efail(`GNU.sparse records on a ${typeflag === "S" ? "old-GNU sparse" : kind} entry`);
        const paxSparse = await paxSparseMap(pax.sparse, storedSize, maxSegments, () => src.readBlock(), efail, () =>
          truncated(`input ends inside the sparse map of entry ${JSON.stringify(path)} (header at offset ${entryOffset})`),
        );
        size = paxSparse.realSize;
        storedSize = paxSparse.storedSize;
        sparseMap = paxSparse.map;
      }

      const sparse = sparseMap !== null;
      pax = null;
      current = new Entry(
        {
          path,
          typeflag,
          kind,
          sparse,
          size,
          storedSize,
          sparseMap,
          linkname,
          mode,
          mtime,
          headerOffset: entryOffset,
        },
        src,
        truncated,
      );
      yield current;
      await current[FINISH]();
      current = null;
    }
  } finally {
    current?.[DETACH]();
    await src.release();
  }
}

/**
 * The map of a PAX sparse entry (GNU.sparse 0.0, 0.1 or 1.0), checked like an
 * old-GNU map: sorted, non-overlapping, inside the real size, covering the
 * stored data, each segment's data starting on a 512-byte boundary. For 1.0
 * the map is read from the data area first; the stored size left is the data.
 */
async function paxSparseMap(
  s: PaxSparse,
  storedTotal: number,
  maxSegments: number,
  readBlock: () => Promise<Uint8Array | number>,
  fail: Fail,
  truncated: () => Error,
): Promise<{ realSize: number; storedSize: number; map: SparseSegment[] }> {
  const v1 = s.major !== undefined || s.minor !== undefined;
  if (v1 && (s.major !== 1 || s.minor !== 0)) fail(`PAX sparse format ${s.major ?? "?"}.${s.minor ?? "?"} is not one this reader knows (0.0, 0.1, 1.0)`);
  if (s.realSize === undefined) fail(`PAX sparse entry without its real size (GNU.sparse.${v1 ? "realsize" : "size"})`);
  let raw: SparseSegment[];
  let storedSize = storedTotal;
  if (v1) {
    if (s.pairs !== undefined || s.map !== undefined) fail("PAX sparse 1.0 entry also carries a 0.x map record");
    const read = await readSparseMap10(readBlock, storedTotal, maxSegments, fail, truncated);
    raw = read.map;
    storedSize = storedTotal - read.bytes;
  } else {
    if (s.pairs !== undefined && s.map !== undefined) fail("PAX sparse entry carries both GNU.sparse.offset/numbytes (0.0) and GNU.sparse.map (0.1)");
    raw = s.map ?? s.pairs ?? [];
    if (s.numBlocks !== undefined && s.numBlocks !== raw.length) fail(`PAX GNU.sparse.numblocks is ${s.numBlocks} but the map lists ${raw.length} segments`);
    if (s.numBlocks === undefined && raw.length === 0) fail("PAX sparse 0.x entry without a map (GNU.sparse.numblocks, GNU.sparse.map or offset/numbytes)");
  }
  const map = validateSparseMap(raw, s.realSize, storedSize, fail);
  checkSegmentAlignment(raw, fail);
  return { realSize: s.realSize, storedSize, map };
}
