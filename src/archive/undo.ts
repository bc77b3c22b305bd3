/**
 * An undo log for multi-step installs. Each step that makes something
 * visible registers how to take it back; on failure the steps are undone in
 * reverse order, so a load that fails half-way leaves `snapshots/` and
 * `cache/` as they were.
 *
 * @example
 * ```ts
 * const undo = new UndoLog();
 * await fs.rename(staged, target);
 * undo.push(`rename ${target} back`, () => fs.rename(target, staged));
 * // … a later step fails:
 * await undo.rollback(); // renames target back to staged
 * ```
 * @module
 */

import { isFsError } from "../errors.js";
import type { FileSystem } from "../fs/types.js";

/** Steps to take back, newest first. */
export class UndoLog {
  private readonly steps: { label: string; run: () => Promise<void> }[] = [];

  /** Register how to undo a step that just succeeded. */
  push(label: string, run: () => Promise<void>): void {
    this.steps.push({ label, run });
  }

  /** Forget every step: the transaction is complete. */
  commit(): void {
    this.steps.length = 0;
  }

  /**
   * Undo every registered step, newest first. Keeps going when one fails and
   * resolves the labels of the steps that could not be undone (for the error message).
   */
  async rollback(): Promise<string[]> {
    const failed: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
      } catch {
        failed.push(step.label);
      }
    }
    return failed;
  }
}

/**
 * The undo of a `mkdir`: remove `dir` if it is still empty. A directory that
 * is gone is fine; one that holds something (put there by someone else since)
 * is left alone — it is not ours to delete. (The {@link FileSystem}
 * interface has no `rmdir`, so this is a `readdir` then a remove: a name
 * created in between is removed too, which can only fail a concurrent load's
 * staging, loudly.)
 *
 * @example
 * ```ts
 * await fs.mkdir(dir);
 * undo.push(`remove directory ${dir}`, () => removeDirIfEmpty(fs, dir));
 * ```
 */
export async function removeDirIfEmpty(fs: FileSystem, dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (isFsError(e, "ENOENT")) return;
    throw e;
  }
  if (names.length === 0) await fs.remove(dir, { recursive: true, force: true });
}
