/**
 * Load a `.tar.zst` (or plain `.tar`) bundle into a home — the hardened
 * pipeline of SPEC §4. The whole load reads as its steps:
 *
 * 1. {@link unpackArchive} (`./unpack.ts`) into fresh staging directories, every entry through the
 *    grammar (`./grammar.ts`): types, paths, duplicates, membership, sizes, the apparent-size cap;
 * 2. {@link verifyImportedSnapshots}: open and verify every staged snapshot;
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

import { ArchiveError, isFsError } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { lstatOrNull, readSmallFile } from "../io.js";
import type { HomeLayout } from "../layout.js";
import { join } from "../path.js";
import { openSnapshot, type Snapshot, validateSnapshotName, verifySnapshot } from "../snapshot.js";
import { installStagedCache } from "./cache-install.js";
import { importMsb06 } from "./load06.js";
import type { BundleContents } from "./grammar.js";
import { clearPromoteJournal, recoverInterruptedPromotion, writePromoteJournal } from "./journal.js";
import { ensurePromoteTargetsAvailable, promoteStage, promotionPlan } from "./promote.js";
import { countingStream, fileReadable } from "./streams.js";
import { ABANDONED_AFTER_MS, CACHE_STAGE_PREFIX, currentPid, defaultSweepPolicy, SNAPSHOT_STAGE_PREFIX, stagingPrefix, sweepStaleStaging, type SweepPolicy } from "./staging.js";
import { removeDirIfEmpty, UndoLog } from "./undo.js";
import { stagingSink, type StagingDirs, unpackArchive } from "./unpack.js";

export { DEFAULT_MAX_APPARENT_BYTES } from "./grammar.js";

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
   * Cap on the apparent (logical) bytes of all the archive's files, holes
   * included (default {@link DEFAULT_MAX_APPARENT_BYTES}, 256 GiB): a load reads
   * and hashes every logical byte, so this bounds the work a tiny archive
   * declaring a huge upper can cause.
   */
  readonly maxApparentBytes?: number;
}

/** Staging directories of one load (where the unpack step's {@link stagingSink} writes). */
export type Staging = StagingDirs;

/** The pipeline, one named step per line. Resolves the promoted head snapshot. */
export async function loadArchive(
  fs: FileSystem,
  layout: HomeLayout,
  source: string | ReadableStream<Uint8Array>,
  options: LoadOptions = {},
): Promise<Snapshot> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  if (options.name !== undefined) validateSnapshotName(options.name);
  const snapshotsDir = options.dest ?? layout.snapshotsDir;
  const undo = new UndoLog();
  await sweepStaleStaging(fs, layout, snapshotsDir, options.sweep ?? defaultSweepPolicy());
  const stage = await createStaging(fs, layout, snapshotsDir, undo);
  try {
    const contents = await unpackArchive(openArchive(fs, source, options.onProgress), stagingSink(fs, stage), { label, maxApparentBytes: options.maxApparentBytes });
    let imported: Snapshot[];
    let head: Snapshot;
    if (contents.msb06 !== null) {
      ({ imported, head } = await importMsb06(fs, stage, contents.msb06, label));
    } else {
      imported = await verifyImportedSnapshots(fs, stage, contents);
      head = imported[selectHeadSnapshot(imported, label)]!;
    }
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
 * Step 2. Open and verify every staged snapshot, in archive order (the
 * grammar has already required at least one, each with its upper).
 *
 * @example
 * ```ts
 * const imported = await verifyImportedSnapshots(fs, stage, contents);
 * ```
 */
export async function verifyImportedSnapshots(fs: FileSystem, stage: Staging, contents: BundleContents): Promise<Snapshot[]> {
  const snapshots: Snapshot[] = [];
  for (const { prefix } of contents.snapshots) {
    const snap = await openSnapshot(fs, join(stage.snapshots, prefix));
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
