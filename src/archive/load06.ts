/**
 * Load steps 3, 5, 6 and 7 for a microsandbox 0.6 bundle (docs/format.md §9.6),
 * once the unpack step has streamed its members and the grammar accepted
 * them: the inventory against the members present, each listed snapshot's
 * descriptor (parsed as it streamed past, its identity the one listed), the
 * owner bindings, and the head the inventory names.
 *
 * {@link checkMsb06Contents} decides all of that from what the unpack step
 * kept ({@link Msb06Contents}), reading no file: a load runs it on its way to
 * installing ({@link importMsb06}), `verify BUNDLE` on a pass that stages
 * nothing. A load then opens the staged snapshots and verifies each one's
 * recorded integrity, as snapbundle does for every load.
 *
 * @example
 * ```ts
 * const { imported, head } = await importMsb06(fs, stage, contents.msb06, label);
 * const bundle = await checkMsb06Contents(contents.msb06, label); // the same checks, staging nothing
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import { descriptorDigest, type SnapshotDescriptor } from "../descriptor.js";
import type { FileSystem } from "../fs/types.js";
import { join } from "../path.js";
import { openSnapshot, type Snapshot, verifySnapshot } from "../snapshot.js";
import type { Msb06Contents } from "./grammar.js";
import { type ArchiveInventory, checkInventoryBindings, checkInventoryMembers, parseInventory } from "./inventory.js";
import type { StagedHashes } from "./unpack.js";

/** One snapshot of a 0.6 bundle: its identity, 64-hex id and descriptor. */
export interface Msb06Snapshot {
  readonly digest: string;
  readonly hex: string;
  readonly descriptor: SnapshotDescriptor;
}

/** A 0.6 bundle that load steps 3, 5, 6 and 7 accepted. */
export interface Msb06Bundle {
  readonly inventory: ArchiveInventory;
  /** The snapshots the inventory lists, in its order (sorted by id). */
  readonly snapshots: readonly Msb06Snapshot[];
  /** The head's digest: the inventory's `head`. */
  readonly head: string;
}

/**
 * Step 5 for one snapshot, on what the unpack step kept: the descriptor at
 * `snapshots/<hex>/snapshot.json`, parsed (else its {@link InvalidManifest}),
 * and its identity. Throws {@link ArchiveError} when the archive has none.
 *
 * @example
 * ```ts
 * const { digest, descriptor } = await readMsb06Snapshot(contents, hex, "a.tar.zst");
 * ```
 */
export async function readMsb06Snapshot(contents: Msb06Contents, hex: string, label: string): Promise<Msb06Snapshot> {
  const read = contents.descriptors.get(hex);
  if (read === undefined) throw new ArchiveError(`${label}: archive.json lists snapshot sha256:${hex}, but the archive has no snapshots/${hex}/snapshot.json`);
  if (read.error !== null) throw read.error;
  return { digest: await descriptorDigest(read.descriptor), hex, descriptor: read.descriptor };
}

/**
 * Load steps 3, 5, 6 and 7 on what the unpack step kept, in the load's
 * order: the inventory parsed and checked against the members present, each
 * listed snapshot's descriptor read with the listed identity (the file's
 * sha256 matched in step 3; a parsed identity that differs means the file is
 * not canonical), the owner bindings, the head. Reads no file. Throws
 * {@link ArchiveError} (or the descriptor's {@link InvalidManifest}) naming
 * the archive and the rule.
 *
 * @example
 * ```ts
 * const bundle = await checkMsb06Contents(contents.msb06, "a.tar.zst");
 * bundle.head; // "sha256:…"
 * ```
 */
export async function checkMsb06Contents(contents: Msb06Contents, label: string): Promise<Msb06Bundle> {
  const inventory = parseInventory(contents.inventory, `${label}: archive.json`);
  checkInventoryMembers(inventory, contents.observed, label);
  const snapshots: Msb06Snapshot[] = [];
  const descriptors = new Map<string, SnapshotDescriptor>();
  for (const { snapshot_id } of inventory.snapshots) {
    const snap = await readMsb06Snapshot(contents, snapshot_id.slice(7), label);
    if (snap.digest !== snapshot_id) {
      throw new ArchiveError(`${label}: snapshots/${snap.hex}/snapshot.json is not in canonical form: its identity is ${snap.digest}, not ${snapshot_id}`);
    }
    descriptors.set(snap.digest, snap.descriptor);
    snapshots.push(snap);
  }
  checkInventoryBindings(inventory, descriptors, label);
  return { inventory, snapshots, head: inventory.head };
}

/**
 * Verify each staged snapshot's recorded integrity, in order, reporting the
 * bytes verified of all of them (a load's "verifying" step, either layout):
 * on the digests its upper hashed to as the unpack step wrote it (`hashed`,
 * by staged path), else by reading the staged upper.
 */
export async function verifyStaged(
  fs: FileSystem,
  snapshots: readonly Snapshot[],
  signal?: AbortSignal,
  onStep?: (p: { phase: "verifying"; bytes: number; total: number }) => void,
  hashed?: StagedHashes,
): Promise<void> {
  const total = snapshots.reduce((n, s) => n + s.manifest.upper.size_bytes, 0);
  let done = 0;
  onStep?.({ phase: "verifying", bytes: 0, total });
  for (const snap of snapshots) {
    const onProgress = onStep && ((b: number) => onStep({ phase: "verifying", bytes: done + b, total }));
    await verifySnapshot(fs, snap, { signal, onProgress, hashed: snap.upperPath === null ? undefined : hashed?.get(snap.upperPath) });
    done += snap.manifest.upper.size_bytes;
  }
}

/**
 * {@link checkMsb06Contents}, then open the staged snapshots (staged as the
 * members came, so they are what was checked) and verify each one's recorded
 * integrity. Throws {@link ArchiveError} (or the integrity/manifest errors of
 * open and verify) naming the archive and the rule.
 */
export async function importMsb06(
  fs: FileSystem,
  stage: { readonly snapshots: string },
  contents: Msb06Contents,
  label: string,
  signal?: AbortSignal,
  onStep?: (p: { phase: "verifying"; bytes: number; total: number }) => void,
  hashed?: StagedHashes,
): Promise<{ imported: Snapshot[]; head: Snapshot; suggestedName: string | null }> {
  const bundle = await checkMsb06Contents(contents, label);
  const imported: Snapshot[] = [];
  for (const { hex } of bundle.snapshots) imported.push(await openSnapshot(fs, join(stage.snapshots, hex)));
  await verifyStaged(fs, imported, signal, onStep, hashed);
  const head = imported.find((s) => s.digest === bundle.head)!;
  return { imported, head, suggestedName: bundle.inventory.suggested_name };
}
