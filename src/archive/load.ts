/**
 * Load a `.tar.zst` (or plain `.tar`) bundle into a home — the hardened
 * pipeline of SPEC §4. The whole load reads as its steps:
 *
 * 1. {@link unpackArchive} into fresh staging directories, enforcing the entry grammar and declared sizes;
 * 2. {@link verifyImportedSnapshots}: open and verify every staged snapshot;
 * 3. {@link selectHeadSnapshot}: the last snapshot no other imported one names as parent;
 * 4. {@link ensurePromoteTargetsAvailable}: no target exists (lstat, links never followed);
 * 5. {@link installStagedCache}: check the image cache and install it, metadata last;
 * 6. {@link promoteStage}: rename the staged snapshots into place, under a
 *    promotion journal (`./journal.ts`) so that a process killed between two
 *    renames leaves nothing listed, and the next load removes what it promoted.
 *
 * Any failure undoes what steps 5–6 made visible, removes the staging
 * directories and any of `snapshots/`, `cache/`, `cache/tmp/` that this load
 * created: `snapshots/` and `cache/` end as they began.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * const head = await store.load("/tmp/py.tar.zst");
 * console.log(head.name, head.digest);
 * ```
 * @module
 */

import { ArchiveError, ImageCacheError, isFsError, SnapshotAlreadyExists } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { lstatOrNull, readSmallFile, WriteWindow, writeNewFile } from "../io.js";
import type { HomeLayout } from "../layout.js";
import { type Manifest, MANIFEST_FILENAME, MAX_MANIFEST_BYTES, parseManifest } from "../manifest.js";
import { join } from "../path.js";
import { openSnapshot, type Snapshot, validateSnapshotName, verifySnapshot } from "../snapshot.js";
import { dataRuns, scanFile } from "../sparse.js";
import { readTar, type TarEntry } from "../tar/mod.js";
import { classifyEntry, validateArchiveEntryType } from "./grammar.js";
import { expectedCacheFiles, MAX_METADATA_BYTES, readImageMetadataFile, validateCachedMetadata } from "./image-cache.js";
import { checkMaxWindow } from "../../wasm/mod.js";
import { countingStream, decompressIfZstd, fileReadable, lendStream, type ZstdReadOptions } from "./streams.js";
import { ABANDONED_AFTER_MS, CACHE_STAGE_PREFIX, currentPid, defaultSweepPolicy, SNAPSHOT_STAGE_PREFIX, stagingPrefix, sweepStaleStaging, type SweepPolicy } from "./staging.js";
import { clearPromoteJournal, recoverInterruptedPromotion, writePromoteJournal } from "./journal.js";
import { removeDirIfEmpty, UndoLog } from "./undo.js";

/** Options of {@link loadArchive}. */
export interface LoadOptions {
  /** Snapshots directory to install into (default `<home>/snapshots`). */
  readonly dest?: string;
  /** When leftover staging of crashed loads may be swept (default: an hour old and its process gone). */
  readonly sweep?: SweepPolicy;
  /** Install the head under this name instead of its archive directory name. */
  readonly name?: string;
  /** Called with the number of archive bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
  /** Used in messages for a stream source (a path source names itself). */
  readonly label?: string;
  /**
   * Largest zstd window a frame may need, in bytes (default 128 MiB, the
   * `zstd` CLI's default; at most 1 GiB, zstd's 32-bit limit). The decoder holds up to one window
   * of memory; a frame needing more is an {@link ArchiveError}.
   */
  readonly maxWindowBytes?: number;
}

/** Staging directories of one load. */
export interface Staging {
  readonly snapshots: string;
  readonly cache: string;
}

/** What {@link unpackArchive} staged. */
export interface Unpacked {
  /** Staged snapshot directories holding a manifest, in archive order. */
  readonly snapshotDirs: string[];
  /** Archive directory entries (`x/`) whose directory never received a manifest. */
  readonly bareDirs: string[];
  readonly cacheFiles: string[];
}

/** The pipeline, one named step per line. Resolves the promoted head snapshot. */
export async function loadArchive(
  fs: FileSystem,
  layout: HomeLayout,
  source: string | ReadableStream<Uint8Array>,
  options: LoadOptions = {},
): Promise<Snapshot> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  if (options.name !== undefined) validateSnapshotName(options.name);
  if (options.maxWindowBytes !== undefined) checkMaxWindow(options.maxWindowBytes);
  const snapshotsDir = options.dest ?? layout.snapshotsDir;
  const undo = new UndoLog();
  await sweepStaleStaging(fs, layout, snapshotsDir, options.sweep ?? defaultSweepPolicy());
  const stage = await createStaging(fs, layout, snapshotsDir, undo);
  try {
    const unpacked = await unpackArchive(fs, openArchive(fs, source, options.onProgress), stage, label, { maxWindowBytes: options.maxWindowBytes });
    const imported = await verifyImportedSnapshots(fs, unpacked, label);
    const head = imported[selectHeadSnapshot(imported, label)]!;
    const moves = promotionPlan(imported, head, snapshotsDir, options.name);
    // Steps 4–6 under the home's install lock: two loads never interleave their
    // checks, cache renames and promotions, and a failed one undoes its cache
    // installs before another load can see (and rely on) them.
    const installed = await withInstallLock(fs, layout, options.sweep ?? defaultSweepPolicy(), async () => {
      const installUndo = new UndoLog();
      try {
        await recoverInterruptedPromotion(fs, layout);
        await ensurePromoteTargetsAvailable(fs, moves);
        await installStagedCache(fs, layout, stage.cache, head.manifest, label, installUndo);
        await writePromoteJournal(fs, layout, moves);
        await promoteStage(fs, moves, snapshotsDir, installUndo);
        // open before committing: once committed, nothing may fail any more
        const snap = await openSnapshot(fs, moves.find((m) => m.from === head.path)!.to);
        await clearPromoteJournal(fs, layout); // the commit point
        installUndo.commit();
        return snap;
      } catch (e) {
        const stuck = await installUndo.rollback();
        // Rolled back: the journal has nothing left to hide. If it stays, the next load clears it.
        if (stuck.length === 0) await clearPromoteJournal(fs, layout).catch(() => {});
        if (stuck.length > 0 && e instanceof Error) e.message += ` (and could not undo: ${stuck.join("; ")})`;
        throw e;
      }
    });
    undo.commit();
    return installed;
  } catch (e) {
    const stuck = await undo.rollback();
    if (stuck.length > 0 && e instanceof Error) e.message += ` (and could not undo: ${stuck.join("; ")})`;
    throw e;
  } finally {
    await removeStaging(fs, stage);
  }
}

function openArchive(fs: FileSystem, source: string | ReadableStream<Uint8Array>, onProgress?: (n: number) => void): ReadableStream<Uint8Array> {
  const raw = typeof source === "string" ? fileReadable(fs, source) : source;
  return onProgress ? raw.pipeThrough(countingStream(onProgress)) : raw;
}

/**
 * Fresh staging directories: `<snapshots>/.msb-snapshot-import-*` and
 * `<home>/cache/tmp/snapshot-import-*`. Whichever of the snapshots directory,
 * `cache/` and `cache/tmp/` did not exist is created, and `undo` learns to
 * remove it again (if still empty) after the staging directories are gone.
 */
export async function createStaging(fs: FileSystem, layout: HomeLayout, snapshotsDir: string, undo: UndoLog): Promise<Staging> {
  let snapshots: string | null = null;
  try {
    for (const dir of [snapshotsDir, layout.cacheDir, layout.cacheTmpDir]) {
      if ((await lstatOrNull(fs, dir)) !== null) continue;
      await fs.mkdir(dir, { recursive: true });
      undo.push(`remove directory ${dir}`, () => removeDirIfEmpty(fs, dir));
    }
    snapshots = await fs.makeTempDir(snapshotsDir, stagingPrefix(SNAPSHOT_STAGE_PREFIX));
    const stage = { snapshots, cache: await fs.makeTempDir(layout.cacheTmpDir, stagingPrefix(CACHE_STAGE_PREFIX)) };
    undo.push("remove the staging directories", () => removeStaging(fs, stage));
    return stage;
  } catch (e) {
    if (snapshots !== null) await fs.remove(snapshots, { recursive: true, force: true }).catch(() => {});
    await undo.rollback();
    throw e;
  }
}

/** Remove both staging directories and everything in them (idempotent). */
async function removeStaging(fs: FileSystem, stage: Staging): Promise<void> {
  await fs.remove(stage.snapshots, { recursive: true, force: true }).catch(() => {});
  await fs.remove(stage.cache, { recursive: true, force: true }).catch(() => {});
}

/**
 * Step 1. Stream the archive into staging. Every entry passes the type and
 * path grammar; a path may appear once; each snapshot's `manifest.json` must
 * come before its other files (as microsandbox writes them) so the upper's
 * declared size is known before a byte of it is written; sizes are enforced
 * from the headers before any data is read. After the end-of-archive marker
 * the input is still read to its end, so a zstd stream cut short (or corrupt)
 * past the tar's last block fails too; bytes after the marker are otherwise
 * ignored, as GNU tar ignores them.
 */
export async function unpackArchive(
  fs: FileSystem,
  source: ReadableStream<Uint8Array>,
  stage: Staging,
  label: string,
  zstd: ZstdReadOptions = {},
): Promise<Unpacked> {
  const lent = lendStream(await decompressIfZstd(source, label, zstd));
  try {
    const unpacked = await unpackEntries(fs, lent.stream, stage, label);
    // Past the end-of-archive marker the archive is still read to its end, so
    // a zstd frame cut short (or corrupt) after the tar's last block is an error.
    await lent.drain();
    return unpacked;
  } catch (e) {
    await lent.abort(e);
    throw e;
  }
}

/** Step 1's entry loop: grammar, order and size rules, then each entry into staging. */
async function unpackEntries(fs: FileSystem, tar: ReadableStream<Uint8Array>, stage: Staging, label: string): Promise<Unpacked> {
  const seen = new Set<string>();
  const manifests = new Map<string, Manifest>();
  const snapshotDirs: string[] = [];
  const dirEntries: string[] = [];
  const cacheFiles: string[] = [];
  const made = new Set<string>();
  const mkdir = async (p: string) => {
    if (!made.has(p)) await fs.mkdir(p, { recursive: true });
    made.add(p);
  };
  for await (const entry of readTar(tar, { label })) {
    const kind = validateArchiveEntryType(entry);
    const place = classifyEntry(entry.path, kind);
    const key = entry.path.replace(/\/$/, "");
    if (seen.has(key)) throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} appears twice`);
    seen.add(key);
    if (place.area === "snapshot") {
      const dir = join(stage.snapshots, place.prefix);
      await mkdir(dir);
      if (place.file === null) {
        dirEntries.push(place.prefix);
        continue;
      }
      const target = join(dir, place.file);
      const manifest = manifests.get(place.prefix);
      if (place.file === MANIFEST_FILENAME) {
        if (entry.size > MAX_MANIFEST_BYTES) throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} declares ${entry.size} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES}`);
        const bytes = await collectEntry(entry);
        await writeNewFile(fs, target, bytes);
        manifests.set(place.prefix, parseManifest(bytes, `${label}: ${entry.path}`));
        snapshotDirs.push(dir);
      } else if (manifest === undefined) {
        throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} comes before ${place.prefix}/${MANIFEST_FILENAME}; each snapshot's manifest must come first`);
      } else if (place.file !== manifest.upper.file) {
        throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} is not part of the snapshot (its manifest names only ${MANIFEST_FILENAME} and ${manifest.upper.file})`);
      } else {
        if (entry.size !== manifest.upper.size_bytes) {
          throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} declares ${entry.size} bytes but its manifest records size_bytes ${manifest.upper.size_bytes}`);
        }
        await writeEntry(fs, target, entry);
      }
    } else {
      const dir = place.kind === null ? stage.cache : join(stage.cache, place.kind);
      await mkdir(dir);
      if (place.file === null) continue;
      if (place.kind === "manifests" && entry.size > MAX_METADATA_BYTES) {
        throw new ArchiveError(`${label}: archive entry ${JSON.stringify(entry.path)} declares ${entry.size} bytes; image metadata may be at most ${MAX_METADATA_BYTES}`);
      }
      const target = join(dir, place.file);
      await writeEntry(fs, target, entry);
      cacheFiles.push(target);
    }
  }
  return { snapshotDirs, bareDirs: dirEntries.filter((p) => !manifests.has(p)), cacheFiles };
}

/** Gather a small entry (already size-checked) into one buffer. */
async function collectEntry(entry: TarEntry): Promise<Uint8Array> {
  const out = new Uint8Array(entry.size);
  for await (const seg of entry.segments()) out.set(seg.data, seg.offset);
  return out;
}

/** Write an entry's data to a new file, only its non-zero blocks, then set its length: holes stay holes. */
async function writeEntry(fs: FileSystem, target: string, entry: TarEntry): Promise<void> {
  const h = await fs.open(target, "wx");
  // Segments are views of fresh input chunks (never refilled), so their writes
  // may stay in flight while the next segments arrive.
  const writes = new WriteWindow(h);
  try {
    try {
      for await (const seg of entry.segments()) {
        for (const r of dataRuns(seg.data, seg.offset)) {
          await writes.write(seg.data.subarray(r.offset - seg.offset, r.offset - seg.offset + r.length), r.offset);
        }
      }
      await writes.drain();
    } catch (e) {
      await writes.drain().catch(() => {}); // nothing may land after the close; the first error is the one to report
      throw e;
    }
    await h.setLength(entry.size);
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Step 2. Open and verify every staged snapshot, in archive order. No
 * manifest at all is an error; so is a snapshot directory entry (`x/`) whose
 * directory never received a manifest — it would be neither a snapshot nor
 * something a load may leave behind.
 */
export async function verifyImportedSnapshots(fs: FileSystem, unpacked: Unpacked, label: string): Promise<Snapshot[]> {
  if (unpacked.snapshotDirs.length === 0) throw new ArchiveError(`${label}: the archive contains no snapshot manifest`);
  const bare = unpacked.bareDirs[0];
  if (bare !== undefined) {
    throw new ArchiveError(`${label}: archive entry ${JSON.stringify(`${bare}/`)}: the snapshot directory has no ${MANIFEST_FILENAME}; every directory in a bundle must hold a snapshot`);
  }
  const snapshots: Snapshot[] = [];
  for (const dir of unpacked.snapshotDirs) {
    const snap = await openSnapshot(fs, dir);
    await verifySnapshot(fs, snap);
    snapshots.push(snap);
  }
  return snapshots;
}

/** Step 3. The head: the last snapshot, in archive order, that no other imported snapshot names as parent. */
export function selectHeadSnapshot(snapshots: readonly Snapshot[], label: string): number {
  const imported = new Set(snapshots.map((s) => s.digest));
  const parents = new Set(snapshots.map((s) => s.manifest.parent).filter((p): p is string => p !== null && imported.has(p)));
  for (let i = snapshots.length - 1; i >= 0; i--) if (!parents.has(snapshots[i]!.digest)) return i;
  throw new ArchiveError(`${label}: the archive contains no head snapshot (every snapshot is another's parent)`);
}

/** A staged snapshot directory and where it will live. */
export interface Move {
  readonly from: string;
  readonly to: string;
}

/** A staged snapshot's move, with its digest (recorded in the promotion journal). */
export interface SnapshotMove extends Move {
  readonly digest: string;
}

function promotionPlan(imported: readonly Snapshot[], head: Snapshot, snapshotsDir: string, name: string | undefined): SnapshotMove[] {
  return imported.map((s) => ({ from: s.path, to: join(snapshotsDir, s === head && name !== undefined ? name : s.name), digest: s.digest }));
}

/** Step 4. No promote target may exist — checked with lstat, so a link there counts and is never followed. */
export async function ensurePromoteTargetsAvailable(fs: FileSystem, moves: readonly Move[]): Promise<void> {
  const targets = new Set<string>();
  for (const m of moves) {
    if (targets.has(m.to)) throw new SnapshotAlreadyExists(`${m.to} would be created twice by this load`);
    targets.add(m.to);
    if ((await lstatOrNull(fs, m.to)) !== null) throw new SnapshotAlreadyExists(`snapshot ${m.to} already exists`);
  }
}

/**
 * Step 5. If the archive carried image cache files: the head image's
 * metadata is staged and consistent, every expected file is staged and
 * materialized, nothing else is staged, and each file already in the cache
 * has identical content. Then install by rename, the metadata last.
 */
export async function installStagedCache(fs: FileSystem, layout: HomeLayout, cacheStage: string, manifest: Manifest, label: string, undo: UndoLog): Promise<void> {
  const staged = await collectFiles(fs, cacheStage);
  if (staged.length === 0) return;
  const metaPath = await layout.metadataPath(manifest.image.ref, cacheStage);
  if ((await lstatOrNull(fs, metaPath)) === null) {
    throw new ImageCacheError(`${label}: the archive carries image cache files but no metadata for the snapshot's image ${manifest.image.ref} (expected ${metaPath.slice(cacheStage.length + 1)})`);
  }
  const meta = await readImageMetadataFile(fs, metaPath);
  await validateCachedMetadata(meta, manifest, `${label}: cache/${metaPath.slice(cacheStage.length + 1)}`);
  const expected = await expectedCacheFiles(layout, manifest, meta, cacheStage);
  for (const f of expected) {
    const info = await lstatOrNull(fs, f.path);
    const ok = f.kind === "vmdk" || f.kind === "manifests" ? info?.kind === "file" : info?.kind === "file" && info.size > 0 && info.size % 4096 === 0;
    if (!ok) throw new ImageCacheError(`${label}: image cache file ${f.archivePath} is ${info === null ? "missing from the archive" : "not materialized (an EROFS image must be a non-empty multiple of 4096 bytes)"}`);
  }
  const wanted = new Set(expected.map((f) => f.path));
  for (const p of staged) {
    if (!wanted.has(p)) throw new ImageCacheError(`${label}: the archive carries an unexpected image cache file cache/${p.slice(cacheStage.length + 1)}`);
  }
  const fresh: Move[] = [];
  for (const f of expected) {
    const move = { from: f.path, to: join(layout.cacheDir, f.path.slice(cacheStage.length + 1)) };
    if (!(await cacheTargetIdentical(fs, move.from, move.to))) fresh.push(move);
  }
  // Metadata last: a reader that finds the metadata finds every file it names.
  const ordered = [...fresh.filter((m) => m.from !== metaPath), ...fresh.filter((m) => m.from === metaPath)];
  for (const m of ordered) {
    await mkdirTracked(fs, layout.cacheDir, m.to, undo);
    await fs.rename(m.from, m.to);
    undo.push(`remove ${m.to}`, () => fs.remove(m.to, { force: true }));
  }
}

/**
 * True when `target` already holds the same bytes as `source`; false when
 * nothing is there. A target that is not a regular file, or differs in size
 * or SHA-256, is an {@link ImageCacheError}: installing must not replace it.
 */
async function cacheTargetIdentical(fs: FileSystem, source: string, target: string): Promise<boolean> {
  const t = await lstatOrNull(fs, target);
  if (t === null) return false;
  if (t.kind !== "file") throw new ImageCacheError(`cache target ${target} exists and is a ${t.kind}, not a regular file`);
  const s = await fs.lstat(source);
  const sha = async (p: string, size: number) => (await scanFile(fs, p, size, { algorithm: "sha256" })).digest;
  if (s.size !== t.size || (await sha(source, s.size)) !== (await sha(target, t.size))) {
    throw new ImageCacheError(`cache target ${target} already exists with different content`);
  }
  return true;
}

/** Create the parent directories of `target` below `root`, registering each new one for removal on undo. */
async function mkdirTracked(fs: FileSystem, root: string, target: string, undo: UndoLog): Promise<void> {
  const rel = target.slice(root.length + 1).split("/").slice(0, -1);
  let dir = root;
  for (const part of rel) {
    dir = join(dir, part);
    if ((await lstatOrNull(fs, dir)) === null) {
      try {
        await fs.mkdir(dir);
      } catch (e) {
        if (isFsError(e, "EEXIST")) continue; // made meanwhile by another load: not ours to undo
        throw e;
      }
      const made = dir;
      undo.push(`remove directory ${made}`, () => removeDirIfEmpty(fs, made));
    }
  }
}

async function collectFiles(fs: FileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await fs.readdir(dir)) {
    const p = join(dir, name);
    const info = await fs.lstat(p);
    if (info.kind === "directory") out.push(...(await collectFiles(fs, p)));
    else if (info.kind === "file") out.push(p);
    else throw new ArchiveError(`staged cache entry ${p} is a ${info.kind}`);
  }
  return out;
}

/**
 * Step 6. Rename each staged snapshot directory into place. A target that
 * appeared since step 4 makes the rename fail (a directory never replaces a
 * non-empty one), which is reported as {@link SnapshotAlreadyExists} and
 * undone with the rest.
 */
export async function promoteStage(fs: FileSystem, moves: readonly Move[], snapshotsDir: string, undo: UndoLog): Promise<void> {
  for (const m of moves) {
    try {
      await fs.rename(m.from, m.to);
    } catch (e) {
      if (isFsError(e, "ENOTEMPTY") || isFsError(e, "EEXIST") || isFsError(e, "ENOTDIR") || isFsError(e, "EISDIR")) {
        throw new SnapshotAlreadyExists(`snapshot ${m.to} already exists`, { cause: e });
      }
      throw e;
    }
    undo.push(`move ${m.to} back to staging`, () => fs.rename(m.to, m.from));
  }
  await fs.syncDir(snapshotsDir);
}

/** Name of the install lock in `<home>/cache/tmp`. */
export const INSTALL_LOCK = "install.lock";

/**
 * Run `body` holding `<home>/cache/tmp/install.lock` (created with `"wx"`,
 * holding the pid), waiting with backoff while another load holds it. A lock
 * whose holder is gone — by the sweep's policy: its pid is dead, or no
 * process check is possible and it is older than ABANDONED_AFTER_MS — is
 * broken (a SIGKILLed load leaves its lock behind).
 */
async function withInstallLock<T>(fs: FileSystem, layout: HomeLayout, policy: SweepPolicy, body: () => Promise<T>): Promise<T> {
  const lock = join(layout.cacheTmpDir, INSTALL_LOCK);
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    try {
      const h = await fs.open(lock, "wx");
      try {
        await h.write(new TextEncoder().encode(`${currentPid()}\n`), 0);
        await h.close();
      } catch (e) {
        await h.close().catch(() => {});
        await fs.remove(lock, { force: true }).catch(() => {});
        throw e;
      }
      break;
    } catch (e) {
      if (!isFsError(e, "EEXIST")) throw e;
      if (await lockAbandoned(fs, lock, policy)) {
        await fs.remove(lock, { force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  try {
    return await body();
  } finally {
    await fs.remove(lock, { force: true }).catch(() => {});
  }
}

/** True when the lock's holder is gone (see {@link withInstallLock}). */
async function lockAbandoned(fs: FileSystem, lock: string, policy: SweepPolicy): Promise<boolean> {
  const info = await lstatOrNull(fs, lock);
  if (info === null) return false; // released meanwhile: just retry
  const text = await readSmallFile(fs, lock, 64).then((b) => new TextDecoder().decode(b).trim(), () => "");
  const pid = /^\d+$/.test(text) ? Number(text) : null;
  const age = Date.now() - info.mtimeMs;
  if (pid === null) return age > 10_000; // created, never written: its holder died at once
  if (policy.isProcessAlive) return !policy.isProcessAlive(pid);
  return age >= ABANDONED_AFTER_MS;
}
