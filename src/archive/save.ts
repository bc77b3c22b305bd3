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

import { abortableWritable, throwIfAborted } from "../abort.js";
import { InvalidArgument, SnapshotNotFound } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { readSmallFile } from "../io.js";
import { archivePrefix, type HomeLayout } from "../layout.js";
import { MANIFEST_FILENAME, MAX_MANIFEST_BYTES } from "../manifest.js";
import { join } from "../path.js";
import { type Extent, scanFile } from "../sparse.js";
import { type Snapshot, verifySnapshot } from "../snapshot.js";
import type { TarInput } from "../tar/mod.js";
import { checkLevel } from "../zstd.js";
import { type CacheFile, requiredCacheFiles } from "./image-cache.js";
import { checkOutput, isDense, readRanges, writeOutput, writeTar } from "./output.js";

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
  const tarBytes = typeof out === "string" ? await writeOutput(fs, out, write, options) : await write(out);
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

/** The tar entries in the order of docs/format.md §8.1, through zstd unless `plainTar`, into `sink`. Resolves the tar byte count. */
async function writeBundle(fs: FileSystem, planned: readonly Planned[], cache: readonly CacheFile[], sink: WritableStream<Uint8Array>, options: SaveOptions): Promise<number> {
  const total = planned.reduce((n, p) => n + dataBytes(p), 0);
  let done = 0;
  const progress = (n: number) => {
    throwIfAborted(options.signal);
    done += n;
    options.onProgress?.({ phase: "write", bytes: done, total });
  };
  async function* entries(): AsyncGenerator<TarInput> {
    for (const { snap, extents } of planned) {
      const prefix = archivePrefix(snap.digest);
      const upperPath = snap.upperPath!; // checked by saveArchive: manifest form, file state
      const options = { mtime: Math.floor((await fs.lstat(upperPath)).mtimeMs / 1000) };
      const manifest = await readSmallFile(fs, join(snap.path, MANIFEST_FILENAME), MAX_MANIFEST_BYTES);
      yield { path: `${prefix}/${MANIFEST_FILENAME}`, size: manifest.length, data: [manifest], options };
      const size = snap.manifest.upper.size_bytes;
      const path = `${prefix}/${snap.manifest.upper.file}`;
      if (extents === null || isDense(extents, size)) {
        yield { path, size, data: readRanges(fs, upperPath, [{ offset: 0, length: size }], progress), options };
      } else {
        yield { path, size, sparseMap: extents, data: readRanges(fs, upperPath, extents, progress), options };
      }
    }
    for (const f of cache) {
      const info = await fs.lstat(f.path);
      const data = readRanges(fs, f.path, [{ offset: 0, length: info.size }], () => throwIfAborted(options.signal));
      yield { path: f.archivePath, size: info.size, data, options: { mtime: Math.floor(info.mtimeMs / 1000) } };
    }
  }
  return writeTar(sink, entries(), options);
}

function dataBytes(p: Planned): number {
  return p.extents === null ? p.snap.manifest.upper.size_bytes : p.extents.reduce((n, e) => n + e.length, 0);
}
