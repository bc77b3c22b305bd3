/**
 * Reading claims: a save marks each snapshot it reads, so that a concurrent
 * remove refuses instead of pulling the files out from under it.
 *
 * The mark is a lease file beside the snapshot directory,
 * `.snapbundle-lease-reading.<name>-<pid>-<token>`, refreshed while the save
 * runs (see `lease.ts`). It is an ordinary lease to every sweep: once its
 * owner is provably gone (a `kill -9`'d save), the next command that writes
 * reclaims it, and a remove ignores it.
 *
 * @example
 * ```ts
 * const claim = await claimReading(fs, snap);
 * try { … } finally { await claim?.release(); }
 * await refuseWhileRead(fs, snap.path); // in remove: SnapshotInUse while a save reads it
 * ```
 * @module
 */

import { SnapshotInUse, SnapshotNotFound } from "./errors.js";
import type { FileSystem } from "./fs/types.js";
import { describeOwner, judgeLease, Lease, LEASE_PREFIX, LEASE_TTL_MS, readLease } from "./lease.js";
import { basename, dirname, join } from "./path.js";
import { defaultSweepPolicy } from "./staging.js";

function readingPrefix(snapshotDir: string): string {
  return `${LEASE_PREFIX}reading.${basename(snapshotDir)}-`;
}

/**
 * Mark `snap` as being read by this process until `release()`. Best effort:
 * where the mark cannot be written (a read-only home), the read goes on
 * unmarked and `null` is returned.
 */
export async function claimReading(fs: FileSystem, snap: { readonly path: string }): Promise<Lease | null> {
  const lease = new Lease(fs);
  try {
    await lease.claim(join(dirname(snap.path), lease.name(readingPrefix(snap.path))));
  } catch {
    return null;
  }
  // removed between its resolution and the mark: fail now, naming it, rather than midway
  if ((await fs.lstat(snap.path).catch(() => null)) === null) {
    await lease.release();
    throw new SnapshotNotFound(`snapshot ${snap.path} was removed before the save could read it`);
  }
  return lease;
}

/** Throw {@link SnapshotInUse} while a live process (a save) holds a reading mark on the snapshot at `path`. */
export async function refuseWhileRead(fs: FileSystem, path: string): Promise<void> {
  const prefix = readingPrefix(path);
  const names = await fs.readdir(dirname(path)).catch(() => [] as string[]);
  const policy = defaultSweepPolicy();
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+-[a-z0-9]{12}$/.test(name.slice(prefix.length))) continue;
    const lease = await readLease(fs, join(dirname(path), name));
    if (lease === null) continue;
    const who = lease.owner === null ? "another process" : describeOwner(lease.owner);
    const state = lease.owner === null ? (policy.now - lease.heartbeatMs > LEASE_TTL_MS ? "gone" : "live") : judgeLease(lease.owner, lease.heartbeatMs, policy).state;
    if (state !== "gone") {
      throw new SnapshotInUse(`snapshot ${path} is being read by a save (${who}); wait for it to finish or stop it, then remove the snapshot (--force does not override this)`);
    }
  }
}
