/**
 * The output side of a save, shared by both layouts (`save.ts`, `save06.ts`):
 * checking the output path before any work, writing the archive under a
 * leased temporary name that replaces the output only when complete
 * ({@link writeOutput}), the archive's byte pipeline — entries through a
 * {@link TarStream}, then zstd unless a plain tar is asked for, into the
 * sink ({@link writeTar}) — and reading an upper's data ranges in large
 * spans ({@link readRanges}).
 *
 * @example
 * ```ts
 * await checkOutput(fs, out, false);
 * const tarBytes = await writeOutput(fs, out, (sink) => writeTar(sink, entries(), { level: 3 }), {});
 * ```
 * @module
 */

import { throwIfAborted } from "../abort.js";
import { FsError, isFsError, OutputRefused } from "../errors.js";
import type { FileInfo, FileSystem } from "../fs/types.js";
import { readChunks, writeAtomically } from "../io.js";
import { Lease } from "../lease.js";
import { basename, dirname, join } from "../path.js";
import type { Extent } from "../sparse.js";
import { defaultSweepPolicy, partialName, sweepLeftovers } from "../staging.js";
import { type TarInput, TarStream } from "../tar/mod.js";
import { ZSTD_DEFAULT_LEVEL, zstdCompressStream } from "../zstd.js";
import { handleWritable } from "./streams.js";

/**
 * Refuse, before any work, an output that cannot or may not be written: a
 * directory, a FIFO or device (it would be renamed over), a path whose
 * directory is missing, an existing file without `overwrite`.
 *
 * @example
 * ```ts
 * await checkOutput(fs, "/tmp/a.tar.zst", false); // throws OutputRefused if it exists
 * ```
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
 * Write an archive to `out`: to a leased temporary file beside it
 * (reclaiming those of killed saves first), which then replaces `out`
 * ({@link writeAtomically}). Before the rename it checks again that `out`
 * did not appear meanwhile (unless `overwrite`). On failure the temporary is
 * removed. Errors name `out`, never the temporary.
 *
 * @example
 * ```ts
 * const tarBytes = await writeOutput(fs, "/tmp/a.tar.zst", (sink) => writeTar(sink, entries(), {}), { overwrite: false });
 * ```
 */
export async function writeOutput(fs: FileSystem, out: string, write: (sink: WritableStream<Uint8Array>) => Promise<number>, options: { readonly signal?: AbortSignal; readonly overwrite?: boolean }): Promise<number> {
  const dir = dirname(out);
  await sweepLeftovers(fs, [dir], defaultSweepPolicy()).catch(() => {});
  const lease = new Lease(fs);
  const tmpName = partialName(basename(out), lease);
  const tmp = join(dir, tmpName);
  try {
    await lease.cover(dir);
    return await writeAtomically(fs, out, (h) => write(handleWritable(h)), {
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
 * Write `entries` as a tar stream into `sink`: through a {@link TarStream},
 * then zstd at `options.level` (default 3) unless `plainTar`. A failure
 * aborts the sink. Resolves the tar byte count (before compression).
 *
 * @example
 * ```ts
 * const tarBytes = await writeTar(sink, (async function* () { yield { path: "a/b", size: 2, data: [bytes] }; })(), { level: 3 });
 * ```
 */
export async function writeTar(sink: WritableStream<Uint8Array>, entries: AsyncIterable<TarInput>, options: { readonly plainTar?: boolean; readonly level?: number }): Promise<number> {
  // The zstd stream copies each chunk into the WASM heap before it asks for the next, so the tar
  // chunks can be reused; a caller's plain-tar sink may keep them.
  const tar = new TarStream({ recycleChunks: options.plainTar !== true });
  const bytes = fromIterable(entries).pipeThrough(tar);
  await (options.plainTar ? bytes : bytes.pipeThrough(zstdCompressStream({ level: options.level ?? ZSTD_DEFAULT_LEVEL }))).pipeTo(sink);
  return tar.bytesWritten;
}

/** `ReadableStream.from` (Node 20.6+, Deno, Bun), which TypeScript's DOM library does not declare yet. */
const fromIterable = <T>(it: AsyncIterable<T>): ReadableStream<T> =>
  (ReadableStream as unknown as { from(it: AsyncIterable<T>): ReadableStream<T> }).from(it);

/**
 * Whether a file of `size` bytes with data `extents` has no holes.
 *
 * @example
 * ```ts
 * isDense([{ offset: 0, length: 4096 }], 4096); // true
 * ```
 */
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
