/**
 * Steps 4 and 6 of a load: check that the head is not installed already
 * (unless a name asks for a second copy) and that no promote target exists, then rename
 * each staged snapshot directory into place. The load writes the promotion
 * journal (`./journal.ts`) before the first rename and removes it after the
 * last: that removal is the commit point.
 *
 * @example
 * ```ts
 * const moves = promotionPlan(imported, head, layout.snapshotsDir, undefined);
 * await ensurePromoteTargetsAvailable(fs, moves);
 * await writePromoteJournal(fs, layout, moves);
 * await promoteStage(fs, moves, layout.snapshotsDir, undo);
 * await clearPromoteJournal(fs, layout);
 * ```
 * @module
 */

import { SnapshotAlreadyExists, SnapshotAlreadyInstalled } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { isRenameCollision, lstatOrNull } from "../io.js";
import { join } from "../path.js";
import type { Snapshot } from "../snapshot.js";
import type { UndoLog } from "./undo.js";

/** A staged snapshot directory and where it will live. */
export interface Move {
  readonly from: string;
  readonly to: string;
}

/** A staged snapshot's move, with its digest (recorded in the promotion journal). */
export interface SnapshotMove extends Move {
  readonly digest: string;
}

/**
 * Where each imported snapshot goes: `<snapshotsDir>/<its name>`, the head under `name` if given.
 *
 * @example
 * ```ts
 * promotionPlan([snap], snap, "/h/snapshots", "mine"); // [{ from: snap.path, to: "/h/snapshots/mine", digest }]
 * ```
 */
export function promotionPlan(imported: readonly Snapshot[], head: Snapshot, snapshotsDir: string, name: string | undefined): SnapshotMove[] {
  return imported.map((s) => ({ from: s.path, to: join(snapshotsDir, s === head && name !== undefined ? name : s.name), digest: s.digest }));
}

/**
 * The head's digest is installed already and no `name` asks for a second
 * copy: refuse with {@link SnapshotAlreadyInstalled} before anything is
 * installed (the caller may treat it as "nothing to do"). Checked before
 * the install lock, to spare the work, and again under it, so that of two
 * racing loads of one bundle the second always says so.
 *
 * @example
 * ```ts
 * await ensureNotInstalled(head, options.name, options.findInstalled, label);
 * ```
 */
export async function ensureNotInstalled(
  head: Snapshot,
  name: string | undefined,
  findInstalled: ((digest: string) => Promise<string | null>) | undefined,
  label: string,
): Promise<void> {
  if (name !== undefined || findInstalled === undefined) return;
  const existing = await findInstalled(head.digest);
  if (existing !== null) {
    throw new SnapshotAlreadyInstalled(
      `${label}: snapshot ${head.digest} is already installed at ${existing}; nothing was loaded (give a name to install a second copy)`,
      existing,
    );
  }
}

/**
 * Step 4. No promote target may exist — checked with lstat, so a link there counts and is never followed.
 *
 * @example
 * ```ts
 * await ensurePromoteTargetsAvailable(fs, moves); // throws SnapshotAlreadyExists naming the target
 * ```
 */
export async function ensurePromoteTargetsAvailable(fs: FileSystem, moves: readonly Move[]): Promise<void> {
  const targets = new Set<string>();
  for (const m of moves) {
    if (targets.has(m.to)) throw new SnapshotAlreadyExists(`${m.to} would be created twice by this load`);
    targets.add(m.to);
    if ((await lstatOrNull(fs, m.to)) !== null) throw new SnapshotAlreadyExists(`snapshot ${m.to} already exists`);
  }
}

/**
 * Step 6. Rename each staged snapshot directory into place. A target that
 * appeared since step 4 makes the rename fail (a directory never replaces a
 * non-empty one), which is reported as {@link SnapshotAlreadyExists} and
 * undone with the rest.
 *
 * @example
 * ```ts
 * await promoteStage(fs, moves, "/h/snapshots", undo);
 * ```
 */
export async function promoteStage(fs: FileSystem, moves: readonly Move[], snapshotsDir: string, undo: UndoLog): Promise<void> {
  for (const m of moves) {
    await fs.syncDir(m.from); // the staged files' entries are durable before the directory is published
    try {
      await fs.rename(m.from, m.to);
    } catch (e) {
      if (isRenameCollision(e)) throw new SnapshotAlreadyExists(`snapshot ${m.to} already exists`, { cause: e });
      throw e;
    }
    undo.push(`move ${m.to} back to staging`, () => fs.rename(m.to, m.from));
  }
  await fs.syncDir(snapshotsDir);
}
