/**
 * Load steps 3, 5, 6 and 7 for a microsandbox 0.6 bundle (SPEC-msb06 §2),
 * once the unpack step has staged its members and the grammar accepted them:
 * the inventory against the members present, each staged snapshot opened
 * (and its recorded integrity verified, as snapbundle does for every load),
 * the owner bindings, and the head the inventory names.
 *
 * @example
 * ```ts
 * const { imported, head } = await importMsb06(fs, stage, contents.msb06, label);
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import type { SnapshotDescriptor } from "../descriptor.js";
import type { FileSystem } from "../fs/types.js";
import { join } from "../path.js";
import { openSnapshot, type Snapshot, verifySnapshot } from "../snapshot.js";
import type { Msb06Contents } from "./grammar.js";
import { checkInventoryBindings, checkInventoryMembers, parseInventory } from "./inventory.js";

/**
 * Check and open the staged snapshots of a 0.6 bundle. Throws
 * {@link ArchiveError} (or the integrity/manifest errors of open and verify)
 * naming the archive and the rule.
 */
export async function importMsb06(fs: FileSystem, stage: { readonly snapshots: string }, contents: Msb06Contents, label: string, signal?: AbortSignal): Promise<{ imported: Snapshot[]; head: Snapshot }> {
  const inventory = parseInventory(contents.inventory, `${label}: archive.json`);
  checkInventoryMembers(inventory, contents.observed, label);
  const imported: Snapshot[] = [];
  const descriptors = new Map<string, SnapshotDescriptor>();
  for (const { snapshot_id } of inventory.snapshots) {
    const snap = await openSnapshot(fs, join(stage.snapshots, snapshot_id.slice(7)));
    if (snap.digest !== snapshot_id) {
      // sha256 of the file matched (step 3); its parsed identity does not: the file is not canonical
      throw new ArchiveError(`${label}: snapshots/${snapshot_id.slice(7)}/snapshot.json is not in canonical form: its identity is ${snap.digest}, not ${snapshot_id}`);
    }
    descriptors.set(snap.digest, snap.descriptor!);
    imported.push(snap);
  }
  checkInventoryBindings(inventory, descriptors, label);
  for (const snap of imported) await verifySnapshot(fs, snap, { signal });
  const head = imported.find((s) => s.digest === inventory.head)!;
  return { imported, head };
}
