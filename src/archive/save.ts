/**
 * Save a snapshot — with its ancestors and its image cache if asked — as a
 * `.tar.zst` (or plain `.tar`) bundle, in the layout of docs/format.md §8:
 * `sha256-<16 hex>/manifest.json` then its upper, for each snapshot oldest
 * first, then the cache files. Uppers are regular (dense) entries unless
 * `sparse` is set; then an upper with holes is an old-GNU sparse entry
 * holding only its data.
 *
 * A path output must be a regular file or not exist yet (its directory must
 * exist); an existing one is replaced only with `overwrite`. It is written
 * under a temporary name beside it (`.<name>.partial-<pid>-<token>`, covered
 * by a lease, see `../lease.ts`) and renamed into place only when complete: a
 * failed or interrupted save removes it, and the next save into that
 * directory reclaims one a killed save left. An existing FIFO or device is
 * never renamed over: the library refuses it, the CLI writes into it as a stream.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * await store.save("my-snap", "/tmp/my-snap.tar.zst", { withParents: true });
 * ```
 * @module
 */

import { checkLevel, ZSTD_DEFAULT_LEVEL, zstdCompressStream } from "../zstd.js";
import { abortableWritable, throwIfAborted } from "../abort.js";
import { FsError, InvalidArgument, isFsError, OutputRefused, SnapshotNotFound } from "../errors.js";
import type { FileHandle, FileInfo, FileSystem } from "../fs/types.js";
import { Lease } from "../lease.js";
import { defaultSweepPolicy, partialName, sweepLeftovers } from "../staging.js";
import { readChunks, readSmallFile, replaceAtomically } from "../io.js";
import { archivePrefix, type HomeLayout } from "../layout.js";
import { MANIFEST_FILENAME, MAX_MANIFEST_BYTES } from "../manifest.js";
import { basename, dirname, join } from "../path.js";
import { type Extent, scanFile } from "../sparse.js";
import { type Snapshot, verifySnapshot } from "../snapshot.js";
import { TarWriter } from "../tar/mod.js";
import { type CacheFile, requiredCacheFiles } from "./image-cache.js";
import { handleWritable } from "./streams.js";

/** Options of {@link saveArchive}. */
export interface SaveOptions {
  /** Include every ancestor (found in the home by parent digest), oldest first. */
  readonly withParents?: boolean;
  /** Include the image cache files the head's image needs. */
  readonly withImage?: boolean;
  /** Write a plain `.tar` instead of zstd. */
  readonly plainTar?: boolean;
  /** zstd level, 1 (fastest) to 19 (smallest); default 3, as the `zstd` CLI. */
  readonly level?: number;
  /**
   * Store uppers with holes as old-GNU sparse (`S`) entries holding only
   * their data. Off by default: the default regular entries load in every
   * microsandbox that reads this layout (seed 004's loader, the 0.5-era
   * `msb snapshot load`, refuses `S` entries), and zstd makes zero runs cheap.
   */
  readonly sparse?: boolean;
  /** @deprecated Dense is the default; kept so old callers still work. `dense: true` wins over `sparse`. */
  readonly dense?: boolean;
  /**
   * Check each upper against its recorded integrity before writing (default
   * true, as the seeds do). `false` skips the hashing (microsandbox ≥ 0.6.9
   * does not verify on save); a sparse save still reads the upper once to map its data.
   */
  readonly verify?: boolean;
  /** Progress: `phase` "verify" while reading uppers to check them, "write" while writing the archive. */
  readonly onProgress?: (p: { phase: "verify" | "write"; bytes: number; total: number }) => void;
  /** Stop (rejecting with `OperationAborted`, nothing left behind) once this fires. */
  readonly signal?: AbortSignal;
  /** Replace an existing regular file at a path output (the CLI's `--force`). */
  readonly overwrite?: boolean;
}

/** What a save wrote. */
export interface SaveResult {
  /** Snapshots in archive order (ancestors first, head last). */
  readonly snapshots: readonly Snapshot[];
  readonly cacheFiles: readonly string[];
  /** Bytes of tar stream (before compression). */
  readonly tarBytes: number;
}

/** A snapshot ready to be written, with the data extents its verification found. */
interface Planned {
  readonly snap: Snapshot;
  readonly extents: Extent[] | null;
}

/** Looks up a snapshot by digest (the store's index). */
export type ParentLookup = (digest: string) => Promise<Snapshot | null>;

/** Save `head` to `out`: verify, collect, then write. */
export async function saveArchive(
  fs: FileSystem,
  layout: HomeLayout,
  head: Snapshot,
  findParent: ParentLookup,
  out: string | WritableStream<Uint8Array>,
  options: SaveOptions = {},
): Promise<SaveResult> {
  if (options.level !== undefined) checkLevel(options.level);
  if (typeof out === "string") await checkOutput(fs, out, options.overwrite ?? false);
  const chain = options.withParents ? await collectAncestry(head, findParent) : [head];
  for (const s of chain) {
    if (s.form !== "manifest" || s.upperPath === null) {
      throw new InvalidArgument(`${s.path} is a snapshot.json artifact; the manifest.json bundle layout cannot carry it (save it in the 0.6 layout)`);
    }
  }
  const planned = await verifyChain(fs, chain, options);
  const cache = options.withImage ? await requiredCacheFiles(fs, layout, head.manifest) : [];
  const write = (sink: WritableStream<Uint8Array>) => writeBundle(fs, planned, cache, abortableWritable(sink, options.signal), options);
  const tarBytes = typeof out === "string" ? await writeAtomically(fs, out, write, options) : await write(out);
  return { snapshots: chain, cacheFiles: cache.map((c) => c.path), tarBytes };
}

/** The head and its ancestors, oldest first. A parent missing from the home is {@link SnapshotNotFound}. */
export async function collectAncestry(head: Snapshot, findParent: ParentLookup): Promise<Snapshot[]> {
  const chain = [head];
  const seen = new Set([head.digest]);
  for (let parent = head.manifest.parent; parent !== null; ) {
    if (seen.has(parent)) throw new SnapshotNotFound(`parent chain of ${head.path} loops back to ${parent}`);
    const found = await findParent(parent);
    if (found === null) {
      throw new SnapshotNotFound(
        `parent ${parent} of ${chain[chain.length - 1]!.path} is not in this home's index; ship it alongside or save from a home that has it`,
      );
    }
    seen.add(parent);
    chain.push(found);
    parent = found.manifest.parent;
  }
  return chain.reverse();
}

/** Verify every snapshot to be shipped, mapping its upper's data extents in the same pass. */
async function verifyChain(fs: FileSystem, chain: readonly Snapshot[], options: SaveOptions): Promise<Planned[]> {
  const total = chain.reduce((n, s) => n + s.manifest.upper.size_bytes, 0);
  let done = 0;
  const planned: Planned[] = [];
  for (const snap of chain) {
    const onProgress = options.onProgress ? (b: number) => options.onProgress!({ phase: "verify", bytes: done + b, total }) : undefined;
    const sparse = options.sparse === true && options.dense !== true;
    const extents = options.verify === false
      ? sparse ? (await scanFile(fs, snap.upperPath!, snap.manifest.upper.size_bytes, { algorithm: null, extents: true, onProgress })).extents : null
      : (await verifySnapshot(fs, snap, { extents: sparse, signal: options.signal, onProgress })).extents;
    done += snap.manifest.upper.size_bytes;
    planned.push({ snap, extents });
  }
  return planned;
}

/**
 * Refuse, before any work, an output that cannot or may not be written: a
 * directory, a FIFO or device (it would be renamed over), a path whose
 * directory is missing, an existing file without `overwrite`.
 */
export async function checkOutput(fs: FileSystem, out: string, overwrite: boolean): Promise<void> {
  const info = await statOrNull(fs, out);
  if (info === null) {
    const dir = await statOrNull(fs, dirname(out));
    if (dir === null) throw new OutputRefused(`cannot write ${out}: its directory ${dirname(out)} does not exist`);
    if (dir.kind !== "directory") throw new OutputRefused(`cannot write ${out}: ${dirname(out)} is not a directory`);
    return;
  }
  if (info.kind === "directory") throw new OutputRefused(`${out} is a directory; name the archive file to write, e.g. ${join(out, "snapshot.tar.zst")}`);
  if (info.kind !== "file") throw new OutputRefused(`${out} is not a regular file (a FIFO or device): it is never replaced; write into it as a stream instead (the CLI does this)`);
  if (!overwrite) throw new OutputRefused(`${out} already exists; use --force (library: overwrite: true) to replace it`);
}

async function statOrNull(fs: FileSystem, path: string): Promise<FileInfo | null> {
  try {
    return await fs.stat(path);
  } catch (e) {
    if (isFsError(e, "ENOENT") || isFsError(e, "ENOTDIR")) return null;
    throw e;
  }
}

/**
 * Write to a leased temporary file beside `out` (reclaiming those of killed
 * saves first) and replace `out` with it ({@link replaceAtomically}). On
 * failure the temporary is removed. Errors name `out`, never the temporary.
 */
export async function writeAtomically(fs: FileSystem, out: string, write: (sink: WritableStream<Uint8Array>) => Promise<number>, options: { readonly signal?: AbortSignal; readonly overwrite?: boolean }): Promise<number> {
  const dir = dirname(out);
  await sweepLeftovers(fs, [dir], defaultSweepPolicy()).catch(() => {});
  const lease = new Lease(fs);
  const tmpName = partialName(basename(out), lease);
  const tmp = join(dir, tmpName);
  try {
    await lease.cover(dir);
    return await replaceAtomically(fs, out, (h) => write(handleWritable(h)), {
      tmpName,
      beforeRename: async () => {
        throwIfAborted(options.signal);
        // re-checked at the end: the output may have appeared meanwhile
        if (!options.overwrite && (await statOrNull(fs, out)) !== null) throw new OutputRefused(`${out} appeared while the archive was being written; use --force (library: overwrite: true) to replace it`);
      },
    });
  } catch (e) {
    if (isFsError(e) && e.path === tmp) throw new FsError(e.errno, e.op, out, "while writing it under a temporary name beside it", { cause: e });
    throw e;
  } finally {
    await lease.release();
  }
}

/**
 * Run `body` with a {@link TarWriter} over `sink` (through zstd at
 * `options.level`, default 3, unless `plainTar`), finish the tar, close the
 * stream and wait for the sink; on failure abort it. Resolves the tar byte count.
 */
export async function withTarSink(sink: WritableStream<Uint8Array>, options: Pick<SaveOptions, "plainTar" | "level">, body: (tar: TarWriter) => Promise<void>): Promise<number> {
  const compress = options.plainTar ? null : zstdCompressStream({ level: options.level ?? ZSTD_DEFAULT_LEVEL });
  const piping = compress ? compress.readable.pipeTo(sink) : null;
  piping?.catch(() => {}); // observed below; without this a failing sink is an unhandled rejection meanwhile
  const writer = (compress ? compress.writable : sink).getWriter();
  try {
    // The zstd stream copies each chunk into the WASM heap before its write
    // resolves, so the tar chunks can be reused; a caller's plain-tar sink may keep them.
    const tar = new TarWriter(writer, { recycleChunks: compress !== null });
    await body(tar);
    await tar.finish();
    await writer.close();
    await piping;
    return tar.bytesWritten;
  } catch (e) {
    await writer.abort(e).catch(() => {});
    await piping?.catch(() => {});
    throw e;
  }
}

/** The tar entries in the order of docs/format.md §8.1, through zstd unless `plainTar`, into `sink`. Resolves the tar byte count. */
async function writeBundle(fs: FileSystem, planned: readonly Planned[], cache: readonly CacheFile[], sink: WritableStream<Uint8Array>, options: SaveOptions): Promise<number> {
  const total = planned.reduce((n, p) => n + dataBytes(p), 0);
  let done = 0;
  const progress = (n: number) => {
    throwIfAborted(options.signal);
    done += n;
    options.onProgress?.({ phase: "write", bytes: done, total });
  };
  return withTarSink(sink, options, async (tar) => {
    for (const { snap, extents } of planned) {
      const prefix = archivePrefix(snap.digest);
      const upperPath = snap.upperPath!; // checked by saveArchive: manifest form, file state
      const mtime = Math.floor((await fs.lstat(upperPath)).mtimeMs / 1000);
      const manifest = await readSmallFile(fs, join(snap.path, MANIFEST_FILENAME), MAX_MANIFEST_BYTES);
      await tar.addFile(`${prefix}/${MANIFEST_FILENAME}`, manifest.length, [manifest], { mtime });
      const size = snap.manifest.upper.size_bytes;
      const name = `${prefix}/${snap.manifest.upper.file}`;
      if (extents === null || isDense(extents, size)) {
        await tar.addFile(name, size, readRanges(fs, upperPath, [{ offset: 0, length: size }], progress), { mtime });
      } else {
        await tar.addSparseFile(name, size, extents, readRanges(fs, upperPath, extents, progress), { mtime });
      }
    }
    for (const f of cache) {
      const info = await fs.lstat(f.path);
      await tar.addFile(f.archivePath, info.size, readRanges(fs, f.path, [{ offset: 0, length: info.size }], () => throwIfAborted(options.signal)), { mtime: Math.floor(info.mtimeMs / 1000) });
    }
  });
}

function dataBytes(p: Planned): number {
  return p.extents === null ? p.snap.manifest.upper.size_bytes : p.extents.reduce((n, e) => n + e.length, 0);
}

export function isDense(extents: readonly Extent[], size: number): boolean {
  return size === 0 || (extents.length === 1 && extents[0]!.offset === 0 && extents[0]!.length === size);
}

/** Ranges closer than this are read as one span (the gap is read and skipped). */
const MERGE_GAP_BYTES = 64 * 1024;

/**
 * The bytes of `ranges` of a file, in order, in bounded chunks. Ranges less
 * than {@link MERGE_GAP_BYTES} apart are read as one span, so a fragmented
 * upper (thousands of 4 KiB extents) costs a few large reads, not one round
 * trip per extent. The chunk buffers are recycled: {@link TarWriter} copies
 * each piece before it asks for the next.
 */
export async function* readRanges(fs: FileSystem, path: string, ranges: readonly Extent[], onBytes?: (n: number) => void): AsyncGenerator<Uint8Array> {
  const h = await fs.open(path, "r");
  try {
    for (const span of spansOf(ranges)) {
      let i = 0;
      for await (const c of readChunks(h, span.length, path, { start: span.offset, reuse: true })) {
        const end = c.offset + c.data.length;
        for (; i < span.ranges.length; i++) {
          const r = span.ranges[i]!;
          const from = Math.max(r.offset, c.offset);
          const to = Math.min(r.offset + r.length, end);
          if (from < to) {
            onBytes?.(to - from);
            yield c.data.subarray(from - c.offset, to - c.offset);
          }
          if (r.offset + r.length > end) break; // continues in the next chunk
        }
      }
    }
  } finally {
    await h.close();
  }
}

/** Group sorted, disjoint ranges into spans whose gaps are under {@link MERGE_GAP_BYTES}. */
function spansOf(ranges: readonly Extent[]): { offset: number; length: number; ranges: Extent[] }[] {
  const spans: { offset: number; length: number; ranges: Extent[] }[] = [];
  for (const r of ranges) {
    const last = spans[spans.length - 1];
    if (last && r.offset - (last.offset + last.length) < MERGE_GAP_BYTES) {
      last.length = r.offset + r.length - last.offset;
      last.ranges.push(r);
    } else {
      spans.push({ offset: r.offset, length: r.length, ranges: [r] });
    }
  }
  return spans;
}
