/**
 * Staging directories, partial outputs, and reclaiming what a killed
 * process left of them.
 *
 * A load stages into `<snapshots>/.msb-snapshot-import-<pid>-<token>` and
 * `<home>/cache/tmp/snapshot-import-<pid>-<token>`; create, rm and a
 * replacing create use `.msb-create-*`, `.msb-removing-*`, `.msb-replaced-*`
 * in the snapshots directory; a save writes `.<name>.partial-<pid>-<token>`
 * beside its output. Each operation holds a {@link Lease} whose file sits
 * beside what it made (`.snapbundle-lease-<pid>-<token>`), refreshed while it
 * works. Listings never show any of them (dot-names, or outside `snapshots/`).
 *
 * {@link findLeftovers} judges each one by its lease (see `./lease.ts`):
 * gone owner → reclaimable at once; live owner → kept; an owner on another
 * host or pid namespace with a fresh lease → kept, and the verdict says so.
 * Names of older versions (`…-<pid>-XXXXXX`, no lease) keep the old rule:
 * reclaimable an hour after their process is gone, or after a day.
 *
 * @example
 * ```ts
 * const { removed, kept } = await sweepLeftovers(fs, [layout.snapshotsDir, layout.cacheTmpDir], defaultSweepPolicy());
 * ```
 * @module
 */

import type { FileSystem } from "./fs/types.js";
import { currentHost } from "./host.js";
import { lstatOrNull } from "./io.js";
import type { HomeLayout } from "./layout.js";
import { judgeLease, LEASE_PREFIX, LEASE_TTL_MS, type LeasePolicy, type LeaseVerdict, newToken, processProbe, readLease } from "./lease.js";
import { join } from "./path.js";

/** Prefix of snapshot staging directories inside a snapshots directory. */
export const SNAPSHOT_STAGE_PREFIX = ".msb-snapshot-import-";
/** Prefix of cache staging directories inside `cache/tmp`. */
export const CACHE_STAGE_PREFIX = "snapshot-import-";
/** Prefix of a create's staging directory. */
export const CREATE_STAGE_PREFIX = ".msb-create-";
/** Prefix of a removed snapshot on its way out. */
export const REMOVING_PREFIX = ".msb-removing-";
/** Prefix of a snapshot replaced by `create --force`, on its way out. */
export const REPLACED_PREFIX = ".msb-replaced-";
/** Dot-directories that snapshot operations leave in a snapshots directory while they run. */
export const SNAPSHOTS_DIR_STAGING_PREFIXES = [SNAPSHOT_STAGE_PREFIX, CREATE_STAGE_PREFIX, REMOVING_PREFIX, REPLACED_PREFIX] as const;
/** Prefix of an install lock set aside to be broken (`cache/tmp/install.lock.broken-<stamp>`, see `lock.ts`). */
export const BROKEN_LOCK_PREFIX = "install.lock.broken-";

/**
 * Every name an operation leaves while it runs, with the kind of file it
 * must be and the kind of leftover it is: the one list {@link findLeftovers}
 * reads. (A save's partial output, `.<name>.partial-…`, is matched by
 * pattern: its prefix is the output's name.)
 */
const LEFTOVER_NAMES: readonly { readonly prefix: string; readonly file: "file" | "directory"; readonly kind: Leftover["kind"] }[] = [
  ...SNAPSHOTS_DIR_STAGING_PREFIXES.map((prefix) => ({ prefix, file: "directory" as const, kind: "staging" as const })),
  { prefix: CACHE_STAGE_PREFIX, file: "directory", kind: "staging" },
  { prefix: LEASE_PREFIX, file: "file", kind: "lease" },
  // judged as a partial file of old: gone once untouched for an hour (its breaker needs milliseconds)
  { prefix: BROKEN_LOCK_PREFIX, file: "file", kind: "partial" },
];

/** Old names (no lease): age after which a leftover may be swept, when its process is known to be gone. */
export const STALE_AFTER_MS = 60 * 60 * 1000;
/** Old names (no lease): age after which a leftover is swept even when no process check is available. */
export const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

/** How to judge leftovers: the lease policy, plus the process check used for names of older versions. */
export interface SweepPolicy extends LeasePolicy {
  /** Whether a pid is alive on this machine (old names only); without it, only {@link ABANDONED_AFTER_MS} applies to them. */
  readonly isProcessAlive?: (pid: number) => boolean;
  /** Old names only; default {@link STALE_AFTER_MS}. */
  readonly staleAfterMs?: number;
}

/**
 * The default policy: now, the running process's probe, and `process.kill(pid, 0)`.
 *
 * @example
 * ```ts
 * await sweepLeftovers(fs, [dir], defaultSweepPolicy());
 * ```
 */
export function defaultSweepPolicy(): SweepPolicy {
  const probe = processProbe();
  const alive = probe.isAlive(probe.pid) === null ? undefined : (pid: number) => probe.isAlive(pid) !== false;
  return { now: Date.now(), probe, isProcessAlive: alive };
}

const TOKEN_NAME = /-(\d+)-([a-z0-9]{12})$/;
const LEGACY_NAME = /-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * The process id embedded in a staging name (`…-<pid>-<token>`, or an older `…-<pid>-XXXXXX`), if any.
 *
 * @example
 * ```ts
 * stagingPid(".msb-snapshot-import-123-abcdef"); // 123
 * ```
 */
export function stagingPid(name: string): number | null {
  const m = TOKEN_NAME.exec(name) ?? LEGACY_NAME.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * This process's id, as the installed host (`src/host.ts`) tells it; 0 without a host.
 *
 * @example
 * ```ts
 * currentPid() > 0; // true on Node, Deno and Bun
 * ```
 */
export function currentPid(): number {
  return currentHost().pid;
}

/**
 * A fresh name `<base><pid>-<token>` for something with no lease of its own
 * (a removed snapshot's trash): judged by its age alone once unclaimed.
 *
 * @example
 * ```ts
 * stagingName(".msb-removing-"); // ".msb-removing-4242-k3j9x0a1b2c3"
 * ```
 */
export function stagingName(base: string): string {
  return `${base}${currentPid()}-${newToken()}`;
}

/** The output's partial name pattern: `.<name>.partial-…`. */
const PARTIAL = /^\..+\.partial-[A-Za-z0-9-]+$/;

/**
 * The temporary name a save writes `<dir>/<name>` under: `.<name>.partial-<pid>-<token>`.
 *
 * @example
 * ```ts
 * partialName("out.tar.zst", lease); // ".out.tar.zst.partial-4242-k3j9x0a1b2c3"
 * ```
 */
export function partialName(name: string, lease: { name(prefix: string): string }): string {
  return lease.name(`.${name}.partial-`);
}

/** One thing a killed (or running) operation left. */
export interface Leftover {
  readonly path: string;
  readonly kind: "staging" | "partial" | "lease";
  readonly verdict: LeaseVerdict;
  /** Bytes it holds on disk (allocated where known, else apparent). */
  readonly bytes: number;
}

/** What a sweep did. */
export interface SweepResult {
  /** Reclaimed (or, in a dry run, reclaimable). */
  readonly removed: Leftover[];
  /** Kept: their owner is alive, or may be alive elsewhere. */
  readonly kept: Leftover[];
  /** Reclaimable but could not be removed (tried again next time). */
  readonly failed: Leftover[];
}

/** The leftover a name could be, by {@link LEFTOVER_NAMES} and the partial-output pattern; null for any other name. */
function leftoverName(name: string): { readonly file: "file" | "directory"; readonly kind: Leftover["kind"] } | null {
  const known = LEFTOVER_NAMES.find((n) => name.startsWith(n.prefix));
  if (known !== undefined) return known;
  return PARTIAL.test(name) ? { file: "file", kind: "partial" } : null;
}

/** The old rule for names without a lease token. */
function legacyVerdict(name: string, mtimeMs: number, policy: SweepPolicy, kind: "staging" | "partial"): LeaseVerdict {
  const age = policy.now - mtimeMs;
  const pid = stagingPid(name);
  if (kind === "partial") {
    return age >= (policy.staleAfterMs ?? STALE_AFTER_MS) ? { state: "gone", why: `untouched for ${Math.round(age / 60000)} min` } : { state: "live", why: "recently written" };
  }
  if (pid !== null && policy.isProcessAlive) {
    if (age >= (policy.staleAfterMs ?? STALE_AFTER_MS) && !policy.isProcessAlive(pid)) return { state: "gone", why: `pid ${pid} is gone` };
    return { state: "live", why: `pid ${pid} may be alive, or the leftover is under an hour old` };
  }
  return age >= ABANDONED_AFTER_MS ? { state: "gone", why: "older than a day" } : { state: "live", why: "under a day old and its owner unknown" };
}

/** Bytes held by `path` (a file, or a directory tree). */
async function diskBytes(fs: FileSystem, path: string): Promise<number> {
  const info = await lstatOrNull(fs, path).catch(() => null);
  if (info === null) return 0;
  if (info.kind !== "directory") return info.allocatedBytes ?? info.size;
  let n = 0;
  for (const name of await fs.readdir(path).catch(() => [] as string[])) n += await diskBytes(fs, join(path, name));
  return n;
}

/**
 * The leftovers in `dirs` (missing directories are skipped), each with the
 * verdict on its owner.
 *
 * @example
 * ```ts
 * for (const l of await findLeftovers(fs, [layout.snapshotsDir], defaultSweepPolicy())) console.log(l.path, l.verdict.why);
 * ```
 */
export async function findLeftovers(fs: FileSystem, dirs: readonly string[], policy: SweepPolicy): Promise<Leftover[]> {
  const out: Leftover[] = [];
  const ttl = policy.ttlMs ?? LEASE_TTL_MS;
  for (const dir of [...new Set(dirs)]) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    const found: { name: string; path: string; kind: "staging" | "partial" | "lease"; mtimeMs: number }[] = [];
    for (const name of names.sort()) {
      const known = leftoverName(name);
      if (known === null) continue;
      const path = join(dir, name);
      const info = await lstatOrNull(fs, path).catch(() => null);
      if (info !== null && info.kind === known.file) found.push({ name, path, kind: known.kind, mtimeMs: info.mtimeMs });
    }
    // verdict per lease token, from the lease file in this directory
    const verdicts = new Map<string, LeaseVerdict>();
    for (const f of found.filter((f) => f.kind === "lease")) {
      const token = TOKEN_NAME.exec(f.name)?.[2];
      const lease = await readLease(fs, f.path);
      if (token === undefined || lease === null) continue;
      verdicts.set(
        token,
        lease.owner !== null
          ? judgeLease(lease.owner, lease.heartbeatMs, policy)
          : policy.now - lease.heartbeatMs > ttl
          ? { state: "gone", why: "its lease file is unreadable and untouched" }
          : { state: "live", why: "its lease is being written" },
      );
    }
    for (const f of found) {
      const token = TOKEN_NAME.exec(f.name)?.[2];
      let verdict: LeaseVerdict;
      if (f.kind === "lease") {
        verdict = verdicts.get(token ?? "") ?? { state: "gone", why: "not a lease" };
      } else if (token === undefined) {
        verdict = legacyVerdict(f.name, f.mtimeMs, policy, f.kind);
      } else {
        const age = policy.now - f.mtimeMs;
        verdict = verdicts.get(token) ?? (age > ttl ? { state: "gone", why: `no lease, untouched for ${Math.round(age / 1000)}s` } : { state: "live", why: "no lease yet, just made" });
      }
      out.push({ path: f.path, kind: f.kind, verdict, bytes: f.kind === "lease" ? 0 : await diskBytes(fs, f.path) });
    }
  }
  return out;
}

/**
 * Remove the reclaimable leftovers in `dirs` (the lease files last, so a
 * crash mid-sweep leaves them judged the same way). Best effort: what cannot
 * be removed is reported in `failed` and tried again next time. With
 * `dryRun`, nothing is removed and `removed` lists what would be.
 *
 * @example
 * ```ts
 * const r = await sweepLeftovers(fs, [layout.snapshotsDir, layout.cacheTmpDir], defaultSweepPolicy(), { dryRun: true });
 * ```
 */
export async function sweepLeftovers(fs: FileSystem, dirs: readonly string[], policy: SweepPolicy, options: { dryRun?: boolean } = {}): Promise<SweepResult> {
  const all = await findLeftovers(fs, dirs, policy);
  const removed: Leftover[] = [];
  const kept: Leftover[] = [];
  const failed: Leftover[] = [];
  const ordered = [...all.filter((l) => l.kind !== "lease"), ...all.filter((l) => l.kind === "lease")];
  for (const l of ordered) {
    if (l.verdict.state !== "gone") {
      kept.push(l);
      continue;
    }
    if (!options.dryRun) {
      try {
        await fs.remove(l.path, { recursive: true, force: true });
      } catch {
        failed.push(l);
        continue;
      }
    }
    removed.push(l);
  }
  return { removed, kept, failed };
}

/**
 * The sweep a load runs before it stages: the snapshots directory it installs
 * into, and `<home>/cache/tmp`. Resolves the leftovers removed (lease files not counted).
 *
 * @example
 * ```ts
 * const swept = await sweepStaleStaging(fs, layout, layout.snapshotsDir, defaultSweepPolicy());
 * ```
 */
export async function sweepStaleStaging(fs: FileSystem, layout: HomeLayout, snapshotsDir: string, policy: SweepPolicy): Promise<string[]> {
  const r = await sweepLeftovers(fs, [snapshotsDir, layout.cacheTmpDir], policy);
  return r.removed.filter((l) => l.kind !== "lease").map((l) => l.path);
}
