/**
 * The promotion journal: what makes step 6 of a load (renaming each staged
 * snapshot into place) all-or-nothing even when the process is killed
 * between two renames.
 *
 * Under the install lock, before its first rename, a load writes
 * `<home>/cache/tmp/promote.json` naming every target it is about to create
 * and the digest it will hold. Removing the journal after the last rename is
 * the commit point. Until then:
 *
 * - listings skip the targets it names ({@link pendingPromotionTargets}), so a
 *   half-promoted chain is never shown — not while a live load promotes, and
 *   not after a crash;
 * - the next load, once it holds the install lock, finds the journal of the
 *   load that died and removes what that load promoted
 *   ({@link recoverInterruptedPromotion}): a target is removed only if it still
 *   holds the digest the journal recorded.
 *
 * @example
 * ```ts
 * await writePromoteJournal(fs, layout, [{ to: "/h/snapshots/sha256-ab…", digest: "sha256:ab…" }]);
 * // … rename the staged snapshots into place …
 * await clearPromoteJournal(fs, layout); // committed
 * ```
 * @module
 */

import { FsError, isFsError, SnapbundleError } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { lstatOrNull, readSmallJson, writeAtomically } from "../io.js";
import { plainJson } from "../json.js";
import type { HomeLayout } from "../layout.js";
import { dirname, join, normalize } from "../path.js";
import { openSnapshot } from "../snapshot.js";
import { REMOVING_PREFIX, stagingName } from "../staging.js";

/** Name of the journal in `<home>/cache/tmp`. */
export const PROMOTE_JOURNAL = "promote.json";

/** Largest journal read back (a load promotes one directory per snapshot of its chain). */
const MAX_JOURNAL_BYTES = 1 << 20;

/** One target a load is about to create, and the digest of the snapshot it will hold. */
export interface PromoteTarget {
  readonly to: string;
  readonly digest: string;
}

function journalPath(layout: HomeLayout): string {
  return join(layout.cacheTmpDir, PROMOTE_JOURNAL);
}

/**
 * Record the targets of a promotion, durably, before the first rename.
 *
 * @example
 * ```ts
 * await writePromoteJournal(fs, layout, moves.map((m) => ({ to: m.to, digest: m.digest })));
 * ```
 */
export async function writePromoteJournal(fs: FileSystem, layout: HomeLayout, targets: readonly PromoteTarget[]): Promise<void> {
  const body = { version: 1, targets: targets.map((t) => ({ to: normalize(t.to), digest: t.digest })) };
  await writeAtomically(fs, journalPath(layout), new TextEncoder().encode(JSON.stringify(body)));
}

/**
 * Commit a promotion: remove its journal, durably.
 *
 * @example
 * ```ts
 * await clearPromoteJournal(fs, layout);
 * ```
 */
export async function clearPromoteJournal(fs: FileSystem, layout: HomeLayout): Promise<void> {
  await fs.remove(journalPath(layout), { force: true });
  await fs.syncDir(layout.cacheTmpDir);
}

/**
 * The targets of a journal, or `null` when there is none. A journal that
 * cannot be parsed is an error naming it: it is written atomically, so a
 * damaged one was damaged by something else, and guessing could hide or
 * remove the wrong snapshots.
 */
async function readPromoteJournal(fs: FileSystem, layout: HomeLayout): Promise<PromoteTarget[] | null> {
  const path = journalPath(layout);
  let parsed: unknown;
  try {
    parsed = plainJson(await readSmallJson(fs, path, MAX_JOURNAL_BYTES));
  } catch (e) {
    if (isFsError(e, "ENOENT")) return null;
    if (e instanceof FsError) throw e;
    throw new SnapbundleError("invalid-journal", `promotion journal ${path} is not valid JSON; remove it by hand after checking ${layout.snapshotsDir}`, { cause: e });
  }
  const targets = (parsed as { targets?: unknown } | null)?.targets;
  const valid = Array.isArray(targets) && targets.every((t) => typeof t?.to === "string" && typeof t?.digest === "string");
  if (!valid) throw new SnapbundleError("invalid-journal", `promotion journal ${path} does not list targets as {to, digest}`);
  return targets as PromoteTarget[];
}

/**
 * Paths that an uncommitted promotion (live or crashed) has created or is
 * about to create: listings must not show them.
 *
 * @example
 * ```ts
 * const hidden = await pendingPromotionTargets(fs, layout);
 * if (hidden.has("/h/snapshots/sha256-ab…")) console.log("not committed yet");
 * ```
 */
export async function pendingPromotionTargets(fs: FileSystem, layout: HomeLayout): Promise<Set<string>> {
  const targets = await readPromoteJournal(fs, layout);
  return new Set((targets ?? []).map((t) => normalize(t.to)));
}

/**
 * Undo the promotion of a load that died before committing (call with the
 * install lock held): every target that holds the recorded digest is renamed
 * to a dot-name and deleted, then the journal is removed. Resolves the
 * targets removed.
 *
 * @example
 * ```ts
 * const removed = await recoverInterruptedPromotion(fs, layout);
 * ```
 */
export async function recoverInterruptedPromotion(fs: FileSystem, layout: HomeLayout): Promise<string[]> {
  const targets = await readPromoteJournal(fs, layout);
  if (targets === null) return [];
  const removed: string[] = [];
  for (const t of targets) {
    const info = await lstatOrNull(fs, t.to);
    if (info === null || info.kind !== "directory") continue; // never promoted
    const digest = await openSnapshot(fs, t.to).then((s) => s.digest, () => null);
    if (digest !== t.digest) continue; // not what the dead load put there: not ours to remove
    const trash = join(dirname(t.to), stagingName(REMOVING_PREFIX));
    await fs.rename(t.to, trash);
    await fs.syncDir(dirname(t.to));
    await fs.remove(trash, { recursive: true, force: true }).catch(() => {}); // a dot-name: swept later if left
    removed.push(t.to);
  }
  await clearPromoteJournal(fs, layout);
  return removed;
}
