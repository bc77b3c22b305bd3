/**
 * Staging directories and their leftovers.
 *
 * A load stages into `<snapshots>/.msb-snapshot-import-<pid>-XXXXXX` and
 * `<home>/cache/tmp/snapshot-import-<pid>-XXXXXX`; create, rm and a
 * replacing create use `.msb-create-*`, `.msb-removing-*`, `.msb-replaced-*`
 * in the snapshots directory. A process killed mid-way leaves them behind.
 * Listings never show them (dot-names, or outside `snapshots/`), and
 * {@link sweepStaleStaging} removes the ones that are old enough and whose
 * process is gone.
 *
 * @example
 * ```ts
 * const swept = await sweepStaleStaging(fs, layout, snapshotsDir, { now: Date.now(), isProcessAlive });
 * ```
 * @module
 */

import type { FileSystem } from "../fs/types.js";
import { lstatOrNull } from "../io.js";
import type { HomeLayout } from "../layout.js";
import { join } from "../path.js";

/** Prefix of snapshot staging directories inside a snapshots directory. */
export const SNAPSHOT_STAGE_PREFIX = ".msb-snapshot-import-";
/** Prefix of cache staging directories inside `cache/tmp`. */
export const CACHE_STAGE_PREFIX = "snapshot-import-";
/** Dot-directories that snapshot operations leave in a snapshots directory while they run. */
export const SNAPSHOTS_DIR_STAGING_PREFIXES = [SNAPSHOT_STAGE_PREFIX, ".msb-create-", ".msb-removing-", ".msb-replaced-"] as const;

/** Default age after which a leftover may be swept, when its process is known to be gone. */
export const STALE_AFTER_MS = 60 * 60 * 1000;
/** Age after which a leftover is swept even when no process check is available. */
export const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

/** How to decide that a staging directory is abandoned. */
export interface SweepPolicy {
  /** The current time (ms since the epoch). */
  readonly now: number;
  /** Whether a process id is alive on this machine; without it, only {@link ABANDONED_AFTER_MS} applies. */
  readonly isProcessAlive?: (pid: number) => boolean;
  readonly staleAfterMs?: number;
}

/**
 * The default policy: now, and a liveness check through the runtime's
 * `process.kill(pid, 0)` where it exists (Node, Deno and Bun all have it):
 * `EPERM` means alive but someone else's.
 */
export function defaultSweepPolicy(): SweepPolicy {
  const proc = (globalThis as { process?: { kill?: (pid: number, signal: number) => unknown } }).process;
  const kill = proc?.kill?.bind(proc);
  if (!kill) return { now: Date.now() };
  return {
    now: Date.now(),
    isProcessAlive: (pid) => {
      if (pid <= 0) return true;
      try {
        kill(pid, 0);
        return true;
      } catch (e) {
        return (e as { code?: string }).code === "EPERM";
      }
    },
  };
}

/** The process id embedded in a staging name (`…-<pid>-XXXXXX`), if any. */
export function stagingPid(name: string): number | null {
  const m = /-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** This process's id where the runtime exposes one (Node, Deno and Bun all do), else 0. */
export function currentPid(): number {
  return (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
}

/** The name prefix this process uses for a staging directory: `<base><pid>-`. */
export function stagingPrefix(base: string, pid = currentPid()): string {
  return `${base}${pid}-`;
}

/** A fresh staging name `<base><pid>-XXXXXX` for a rename target (which must not exist yet). */
export function stagingName(base: string): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let suffix = "";
  for (const b of crypto.getRandomValues(new Uint8Array(6))) suffix += chars[b % chars.length];
  return `${stagingPrefix(base)}${suffix}`;
}

/**
 * True when a leftover is abandoned: older than `staleAfterMs` and its
 * process is not alive, or older than {@link ABANDONED_AFTER_MS} when no
 * process check is possible (or the name holds no pid).
 */
export function isAbandoned(name: string, mtimeMs: number, policy: SweepPolicy): boolean {
  const age = policy.now - mtimeMs;
  const pid = stagingPid(name);
  if (pid !== null && policy.isProcessAlive) return age >= (policy.staleAfterMs ?? STALE_AFTER_MS) && !policy.isProcessAlive(pid);
  return age >= ABANDONED_AFTER_MS;
}

/**
 * Remove abandoned staging directories from `snapshotsDir` and
 * `<home>/cache/tmp`. Best effort: a leftover that cannot be removed stays
 * (it is invisible to listings) and is tried again next time. Resolves the
 * paths removed.
 */
export async function sweepStaleStaging(fs: FileSystem, layout: HomeLayout, snapshotsDir: string, policy: SweepPolicy): Promise<string[]> {
  const removed: string[] = [];
  const sweep = async (dir: string, prefixes: readonly string[]) => {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!prefixes.some((p) => name.startsWith(p))) continue;
      const path = join(dir, name);
      const info = await lstatOrNull(fs, path).catch(() => null);
      if (info === null || info.kind !== "directory" || !isAbandoned(name, info.mtimeMs, policy)) continue;
      try {
        await fs.remove(path, { recursive: true, force: true });
        removed.push(path);
      } catch {
        // left for the next sweep
      }
    }
  };
  await sweep(snapshotsDir, SNAPSHOTS_DIR_STAGING_PREFIXES);
  await sweep(layout.cacheTmpDir, [CACHE_STAGE_PREFIX]);
  return removed;
}
