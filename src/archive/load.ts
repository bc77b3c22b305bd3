/**
 * Load a `.tar.zst` (or plain `.tar`) bundle into a home — the hardened
 * pipeline of docs/format.md §10. The whole load reads as its steps:
 *
 * 1. {@link unpackArchive} (`./unpack.ts`) into fresh staging directories, every entry through the
 *    grammar (`./grammar.ts`): types, paths, duplicates, membership, sizes, the apparent-size cap;
 * 2. {@link verifyImportedSnapshots}: open and verify every staged snapshot (on the
 *    digests its upper hashed to as the unpack step wrote it, when its manifest came first);
 * 3. {@link selectHeadSnapshot}: the last snapshot no other imported one names as parent;
 * 4. {@link ensurePromoteTargetsAvailable} (`./promote.ts`): no target exists (lstat, links never followed);
 * 5. {@link installStagedCache} (`./cache-install.ts`): check the image cache and install it, metadata last;
 * 6. {@link promoteStage} (`./promote.ts`): rename the staged snapshots into place, under a
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

import { checkMaxWindow } from "../zstd.js";
import { abortableReadable, abortingProgress, throwIfAborted } from "../abort.js";
import { descriptorDigest, parseDescriptor } from "../descriptor.js";
import { ArchiveError, labelled, SnapbundleError, SnapshotAlreadyInstalled } from "../errors.js";
import { MANIFEST_FILENAME, manifestDigest, parseManifest } from "../manifest.js";
import type { FileSystem } from "../fs/types.js";
import { lstatOrNull } from "../io.js";
import type { HomeLayout } from "../layout.js";
import { dirname, join } from "../path.js";
import { openSnapshot, type Snapshot, validateSnapshotName } from "../snapshot.js";
import { installStagedCache } from "./cache-install.js";
import { importMsb06, verifyStaged } from "./load06.js";
import type { BundleContents } from "./grammar.js";
import { clearPromoteJournal, recoverInterruptedPromotion, writePromoteJournal } from "./journal.js";
import { ensureNotInstalled, ensurePromoteTargetsAvailable, promoteStage, promotionPlan } from "./promote.js";
import { countingReadable, fileReadable } from "./streams.js";
import { Lease } from "../lease.js";
import { withInstallLock } from "../lock.js";
import { CACHE_STAGE_PREFIX, defaultSweepPolicy, SNAPSHOT_STAGE_PREFIX, sweepStaleStaging, type SweepPolicy } from "../staging.js";
import { removeDirIfEmpty, UndoLog } from "./undo.js";
import { type StagedHashes, stagingSink, type StagingDirs, type UnpackSink, unpackArchive, unpackArchiveParts } from "./unpack.js";

/**
 * A bundle in parts, read one after the other as one bundle (see
 * {@link unpackArchiveParts}): a registry pull's layers.
 */
export interface BundleParts {
  readonly parts: AsyncIterable<ReadableStream<Uint8Array>>;
}

export { DEFAULT_MAX_APPARENT_BYTES } from "./grammar.js";

/** Options of {@link loadArchive}. */
export interface LoadOptions {
  /** Snapshots directory to install into (default `<home>/snapshots`). */
  readonly dest?: string;
  /** How leftovers of killed operations are judged (default: by their leases, see `../staging.ts`). */
  readonly sweep?: SweepPolicy;
  /** Install the head under this name instead of its archive directory name. */
  readonly name?: string;
  /**
   * A microsandbox 0.6 bundle's `suggested_name` (archive.json: the head's
   * directory name where it was saved) becomes the head's name when no `name`
   * is given, it is a valid snapshot name and nothing lies at that name in the
   * destination; otherwise the head keeps its 64-hex name, as msb 0.6.18
   * always does. Unlike `name`, it never asks for a second copy: a head
   * installed already is still "already installed". Default false (msb's way).
   */
  readonly useSuggestedName?: boolean;
  /** Called with the number of archive bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
  /** Used in messages for a stream source (a path source names itself). */
  readonly label?: string;
  /** Progress after the unpack step: upper bytes verified of `total`, then the install. */
  readonly onStep?: (p: { phase: "verifying" | "installing"; bytes: number; total: number }) => void;
  /**
   * Where a snapshot with this digest is installed already, if anywhere (the
   * store's index). When the head is, and no `name` asks for a second copy,
   * the load installs nothing and fails with {@link SnapshotAlreadyInstalled}.
   */
  readonly findInstalled?: (digest: string) => Promise<string | null>;
  /**
   * Cap on the apparent (logical) bytes of all the archive's files, holes
   * included (default {@link DEFAULT_MAX_APPARENT_BYTES}, 256 GiB): a load reads
   * and hashes every logical byte, so this bounds the work a tiny archive
   * declaring a huge upper can cause.
   */
  readonly maxApparentBytes?: number;
  /** Stop (rejecting with `OperationAborted`, everything undone) once this fires. */
  readonly signal?: AbortSignal;
  /** Called when the install lock is held by another load, with who holds it. */
  readonly onLockWait?: (holder: string) => void;
  /**
   * Told, once the load has succeeded, what the user should know of it (one
   * call per notice): a corrupt image cache file it replaced; a snapshot
   * installed without its parent (only when `findInstalled` can tell).
   */
  readonly onNotice?: (notice: LoadNotice) => void;
  /** Bound on waiting for the install lock (default 10 minutes). */
  readonly lockTimeoutMs?: number;
  /**
   * Largest zstd window a frame may need, in bytes (default 128 MiB, the
   * `zstd` CLI's default; at most 2 GiB, the window of `zstd --long=31`). The decoder
   * holds up to one window of memory; a frame needing more is an {@link ArchiveError}.
   */
  readonly maxWindowBytes?: number;
}

/**
 * Something a successful load tells the user: `cache-healed` names a corrupt
 * image cache file (`path`) the load replaced, and what was wrong with it.
 */
export interface LoadNotice {
  readonly code: "cache-healed" | "parent-missing";
  readonly path: string;
  readonly message: string;
}

/**
 * The one-line notice of a snapshot whose parent neither the bundle nor the
 * home holds (a bundle saved without `--with-parents`): it is installed, as
 * microsandbox 0.6 installs it, but cannot be used until its parent is
 * loaded. `where` is its path (load) or its name in the bundle (verify BUNDLE).
 */
export function parentMissingNotice(where: string, digest: string, parent: string, home: "home" | "bundle"): LoadNotice {
  const held = home === "home" ? "is not in this home" : "the bundle does not carry";
  return {
    code: "parent-missing",
    path: where,
    message: `snapshot ${where} (${digest}) needs its parent ${parent}, which ${held}: load a bundle that carries the parent (its own, or one saved with --with-parents) before using it`,
  };
}

/** Staging directories of one load (where the unpack step's {@link stagingSink} writes). */
export type Staging = StagingDirs;

/** The pipeline, one named step per line. Resolves the promoted head snapshot. */
export async function loadArchive(
  fs: FileSystem,
  layout: HomeLayout,
  source: string | ReadableStream<Uint8Array> | BundleParts,
  options: LoadOptions = {},
): Promise<Snapshot> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  if (options.name !== undefined) validateSnapshotName(options.name);
  if (options.maxWindowBytes !== undefined) checkMaxWindow(options.maxWindowBytes);
  const snapshotsDir = options.dest ?? layout.snapshotsDir;
  const undo = new UndoLog();
  const notices: LoadNotice[] = [];
  const policy = options.sweep ?? defaultSweepPolicy();
  await sweepStaleStaging(fs, layout, snapshotsDir, policy);
  if (snapshotsDir !== layout.snapshotsDir) await sweepStaleStaging(fs, layout, layout.snapshotsDir, policy);
  const lease = new Lease(fs, policy.probe);
  // `--name EXISTING` needs no byte of the archive: the head's target is known (checked again under the lock)
  if (options.name !== undefined) await ensurePromoteTargetsAvailable(fs, [{ from: "", to: join(snapshotsDir, options.name) }]);
  const stage = await createStaging(fs, layout, snapshotsDir, undo, lease);
  try {
    const hashed: StagedHashes = new Map();
    const sink = earlyInstalledCheck(fs, stagingSink(fs, stage, hashed), snapshotsDir, options, label);
    const unpackOptions = { label, maxApparentBytes: options.maxApparentBytes, maxWindowBytes: options.maxWindowBytes };
    const contents = typeof source === "object" && "parts" in source
      ? await unpackArchiveParts(openParts(source, options), sink, unpackOptions)
      : await unpackArchive(openArchive(fs, source, options), sink, unpackOptions);
    let imported: Snapshot[];
    let head: Snapshot;
    let suggested: string | null = null;
    if (contents.msb06 !== null) {
      ({ imported, head, suggestedName: suggested } = await importMsb06(fs, stage, contents.msb06, label, options.signal, options.onStep, hashed));
    } else {
      imported = await verifyImportedSnapshots(fs, stage, contents, options.signal, options.onStep, hashed);
      head = imported[selectHeadSnapshot(imported, label)]!;
    }
    await ensureNotInstalled(head, options.name, options.findInstalled, label);
    const moves = promotionPlan(imported, head, snapshotsDir, options.name ?? (await usableSuggestedName(fs, snapshotsDir, options.useSuggestedName === true ? suggested : null)));
    await noteMissingParents(imported, moves, options.findInstalled, notices);
    options.onStep?.({ phase: "installing", bytes: 0, total: 0 });
    throwIfAborted(options.signal);
    // Steps 4–6 under the home's install lock: two loads never interleave their
    // checks, cache renames and promotions, and a failed one undoes its cache
    // installs before another load can see (and rely on) them.
    const installed = await withInstallLock(fs, layout, policy, async () => {
      const installUndo = new UndoLog();
      try {
        await recoverInterruptedPromotion(fs, layout);
        // again under the lock: a load racing this one may have installed the head meanwhile
        await ensureNotInstalled(head, options.name, options.findInstalled, label);
        await ensurePromoteTargetsAvailable(fs, moves);
        for (const h of await installStagedCache(fs, layout, stage.cache, head.manifest, label, installUndo)) {
          notices.push({ code: "cache-healed", path: h.path, message: `replaced the corrupt image cache file ${h.path} (${h.problem})` });
        }
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
        throw stuck.length > 0 ? labelled(`(and could not undo: ${stuck.join("; ")})`, e, "after") : e;
      }
    }, { signal: options.signal, onWait: options.onLockWait, timeoutMs: options.lockTimeoutMs });
    undo.commit();
    for (const n of notices) options.onNotice?.(n);
    return installed;
  } catch (e) {
    const stuck = await undo.rollback();
    nameTheBundle(e, stage, label, typeof source === "string" ? source : null);
    throw stuck.length > 0 ? labelled(`(and could not undo: ${stuck.join("; ")})`, e, "after") : e;
  } finally {
    await removeStaging(fs, stage);
    await lease.release();
  }
}

/**
 * The early "already installed" decision, made on the bundle's first snapshot
 * document (its `manifest.json`, or a 0.6 `snapshot.json`), before its
 * payload is read: when no `name` is given, that snapshot's digest is
 * installed already, and its own target in `snapshotsDir` exists, this load
 * cannot install anything — either that snapshot is the head (nothing to
 * do) or a later one is and step 4 would refuse the existing target — so it
 * stops at once with {@link SnapshotAlreadyInstalled}. A load that could
 * install something (the snapshot is installed elsewhere, its target is free)
 * is never stopped here; the late check (and its re-check under the install
 * lock) still decides it.
 */
function earlyInstalledCheck(fs: FileSystem, sink: UnpackSink, snapshotsDir: string, options: LoadOptions, label: string): UnpackSink {
  if (options.name !== undefined || options.findInstalled === undefined) return sink;
  const findInstalled = options.findInstalled;
  let first = true;
  return {
    directory: (place) => sink.directory(place),
    file: async (place, data) => {
      const document = data instanceof Uint8Array &&
        ((place.area === "snapshot" && place.file === MANIFEST_FILENAME) || (place.area === "msb06" && place.role === "descriptor"));
      if (first && document) {
        first = false;
        const dirName = place.area === "snapshot" ? place.prefix : (place as { hex: string }).hex;
        // a document that does not parse decides nothing here: the load's own step reports it, naming its member
        const digest = await (async () => (place.area === "snapshot" ? manifestDigest(parseManifest(data)) : descriptorDigest(parseDescriptor(data))))().catch(() => null);
        const existing = digest === null ? null : await findInstalled(digest);
        if (existing !== null && (await lstatOrNull(fs, join(snapshotsDir, dirName))) !== null) {
          throw new SnapshotAlreadyInstalled(
            `${label}: snapshot ${digest}, the bundle's first, is already installed at ${existing}; nothing was loaded (give a name to install a second copy)`,
            existing,
          );
        }
      }
      return sink.file(place, data);
    },
  };
}

/** `name` when it is a valid snapshot name with nothing at `<snapshotsDir>/<name>` (a link counts), else undefined. */
async function usableSuggestedName(fs: FileSystem, snapshotsDir: string, name: string | null): Promise<string | undefined> {
  if (name === null) return undefined;
  try {
    validateSnapshotName(name);
  } catch {
    return undefined;
  }
  return (await lstatOrNull(fs, join(snapshotsDir, name))) === null ? name : undefined;
}

/** A {@link parentMissingNotice} for each imported snapshot whose parent is neither imported nor installed (when the caller can tell: `findInstalled`). */
async function noteMissingParents(imported: readonly Snapshot[], moves: readonly { from: string; to: string }[], findInstalled: LoadOptions["findInstalled"], notices: LoadNotice[]): Promise<void> {
  if (findInstalled === undefined) return;
  const digests = new Set(imported.map((s) => s.digest));
  for (const s of imported) {
    const parent = s.manifest.parent;
    if (parent === null || digests.has(parent) || (await findInstalled(parent)) !== null) continue;
    notices.push(parentMissingNotice(moves.find((m) => m.from === s.path)!.to, s.digest, parent, "home"));
  }
}

/**
 * An error about a file in the staging directories (a mismatch found in the
 * unpacked copy, ENOSPC while unpacking) names that temporary copy, which is
 * gone by the time the user reads it: name the bundle and the snapshot's
 * entry instead, and say the copy was temporary. Its `path` becomes the bundle's.
 */
function nameTheBundle(e: unknown, stage: Staging, label: string, bundlePath: string | null): void {
  if (!(e instanceof SnapbundleError)) return;
  const inStage = (text: string) => text.includes(`${stage.snapshots}/`) || text.includes(`${stage.cache}/`);
  if (!inStage(e.message)) return;
  const where = dirname(stage.snapshots);
  e.message = `${label}: ${e.message.split(`${stage.snapshots}/`).join("").split(`${stage.cache}/`).join("cache ")} (in the temporary copy unpacked into ${where}, now removed)`;
  const path = (e as { path?: unknown }).path;
  if (typeof path === "string" && inStage(path)) Object.defineProperty(e, "path", { value: bundlePath, enumerable: true, configurable: true, writable: true });
}

function openArchive(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: LoadOptions): ReadableStream<Uint8Array> {
  const raw = abortableReadable(typeof source === "string" ? fileReadable(fs, source, { reuse: true }) : source, options.signal);
  const onProgress = abortingProgress(options.signal, options.onProgress);
  return onProgress ? countingReadable(raw, onProgress) : raw;
}

/** Each part abortable, with progress counted over all of them. */
async function* openParts(source: BundleParts, options: LoadOptions): AsyncGenerator<ReadableStream<Uint8Array>> {
  const onProgress = abortingProgress(options.signal, options.onProgress);
  let before = 0;
  for await (const part of source.parts) {
    const raw = abortableReadable(part, options.signal);
    let seen = 0;
    const base = before;
    yield onProgress ? countingReadable(raw, (n) => onProgress(base + (seen = n))) : raw;
    before += seen;
  }
}

/**
 * Fresh staging directories: `<snapshots>/.msb-snapshot-import-*` and
 * `<home>/cache/tmp/snapshot-import-*`. Whichever of the snapshots directory,
 * `cache/` and `cache/tmp/` did not exist is created, and `undo` learns to
 * remove it again (if still empty) after the staging directories are gone.
 */
export async function createStaging(fs: FileSystem, layout: HomeLayout, snapshotsDir: string, undo: UndoLog, lease: Lease): Promise<Staging> {
  let snapshots: string | null = null;
  try {
    // The home itself too: a failed load leaves no home it created.
    for (const dir of [layout.home, snapshotsDir, layout.cacheDir, layout.cacheTmpDir]) {
      if ((await lstatOrNull(fs, dir)) !== null) continue;
      await fs.mkdir(dir, { recursive: true });
      undo.push(`remove directory ${dir}`, () => removeDirIfEmpty(fs, dir));
    }
    // lease files first, so a leftover is never without its owner's name
    await lease.cover(snapshotsDir);
    await lease.cover(layout.cacheTmpDir);
    undo.push("release the lease", () => lease.release());
    snapshots = join(snapshotsDir, lease.name(SNAPSHOT_STAGE_PREFIX));
    await fs.mkdir(snapshots);
    const cache = join(layout.cacheTmpDir, lease.name(CACHE_STAGE_PREFIX));
    await fs.mkdir(cache);
    const stage = { snapshots, cache };
    undo.push("remove the staging directories", () => removeStaging(fs, stage));
    return stage;
  } catch (e) {
    if (snapshots !== null) await fs.remove(snapshots, { recursive: true, force: true }).catch(() => {});
    await lease.release();
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
 * Step 2. Open and verify every staged snapshot, in archive order (the
 * grammar has already required at least one, each with its upper).
 *
 * @example
 * ```ts
 * const imported = await verifyImportedSnapshots(fs, stage, contents);
 * ```
 */
export async function verifyImportedSnapshots(
  fs: FileSystem,
  stage: Staging,
  contents: BundleContents,
  signal?: AbortSignal,
  onStep?: LoadOptions["onStep"],
  hashed?: StagedHashes,
): Promise<Snapshot[]> {
  const snapshots: Snapshot[] = [];
  for (const { prefix } of contents.snapshots) snapshots.push(await openSnapshot(fs, join(stage.snapshots, prefix)));
  await verifyStaged(fs, snapshots, signal, onStep, hashed);
  return snapshots;
}

/**
 * Step 3's rule, the one place it lives (`inspect`/`verify` of a bundle use
 * it too): the index of the last snapshot, in archive order, that no other
 * one of them names as parent; null when every one is another's parent.
 *
 * @example
 * ```ts
 * headIndex([{ digest: "sha256:a…", parent: null }, { digest: "sha256:b…", parent: "sha256:a…" }]); // 1
 * ```
 */
export function headIndex(snapshots: readonly { readonly digest: string; readonly parent: string | null }[]): number | null {
  const imported = new Set(snapshots.map((s) => s.digest));
  const parents = new Set(snapshots.map((s) => s.parent).filter((p): p is string => p !== null && imported.has(p)));
  for (let i = snapshots.length - 1; i >= 0; i--) if (!parents.has(snapshots[i]!.digest)) return i;
  return null;
}

/** Step 3. The head: the last snapshot, in archive order, that no other imported snapshot names as parent ({@link headIndex}). */
export function selectHeadSnapshot(snapshots: readonly Snapshot[], label: string): number {
  const i = headIndex(snapshots.map((s) => ({ digest: s.digest, parent: s.manifest.parent })));
  if (i === null) throw noHeadSnapshot(label);
  return i;
}

/**
 * The refusal of an archive with no head ({@link headIndex} null), in the one
 * wording load, inspect and verify share.
 *
 * @example
 * ```ts
 * if (headIndex(snapshots) === null) throw noHeadSnapshot("backup.tar.zst");
 * ```
 */
export function noHeadSnapshot(label: string): ArchiveError {
  return new ArchiveError(`${label}: the archive contains no head snapshot (every snapshot is another's parent)`);
}
