/**
 * The install lock: `<home>/cache/tmp/install.lock`, held by a load while it
 * checks targets, installs the image cache and promotes (steps 6–8 of
 * docs/format.md §10). The lock is a lease (see `./lease.ts`): it names its holder (pid, host,
 * pid namespace, start time) and the holder refreshes it while it works.
 *
 * A waiter breaks a lock whose holder is provably gone — its lease went
 * unrefreshed for the TTL, whatever its pid says (so a lock saying `1` that a
 * SIGKILLed containerised load left does not stop the next one), or its pid
 * on this machine is dead or now another process. Waiting is bounded
 * (`timeoutMs`) and reports whom it waits for.
 *
 * @example
 * ```ts
 * await withInstallLock(fs, layout, defaultSweepPolicy(), async () => { … }, { onWait: (who) => console.error(`waiting for ${who}`) });
 * ```
 * @module
 */

import { raceAbort, throwIfAborted } from "./abort.js";
import { isFsError, SnapbundleError } from "./errors.js";
import type { FileSystem } from "./fs/types.js";
import type { HomeLayout } from "./layout.js";
import { describeOwner, judgeLease, Lease, LEASE_TTL_MS, readLease } from "./lease.js";
import { dirname, join } from "./path.js";
import { BROKEN_LOCK_PREFIX, type SweepPolicy } from "./staging.js";

/** Name of the install lock in `<home>/cache/tmp`. */
export const INSTALL_LOCK = "install.lock";
/**
 * A lock file that names no owner (its holder died between creating and
 * writing it, or is writing it now) is broken once untouched this long, or
 * the lease TTL if shorter: writing a few hundred bytes takes far less.
 */
export const EMPTY_LOCK_TTL_MS = 10_000;
/** Default bound on waiting for a live holder. */
export const LOCK_WAIT_MS = 10 * 60 * 1000;

/**
 * Waiting for a lock took longer than allowed.
 *
 * @example
 * ```ts
 * try { await store.load(p); } catch (e) { if (e instanceof LockTimeout) console.error(e.message); }
 * ```
 */
export class LockTimeout extends SnapbundleError {
  constructor(message: string) {
    super("lock-timeout", message);
  }
}

/** Options of {@link withInstallLock}. */
export interface LockOptions {
  /** Give up after waiting this long for a live holder (default {@link LOCK_WAIT_MS}). */
  readonly timeoutMs?: number;
  /** Called once, when the lock is found held, with a description of the holder. */
  readonly onWait?: (holder: string) => void;
  readonly signal?: AbortSignal;
}

/**
 * Run `body` holding `<home>/cache/tmp/install.lock`, waiting with backoff
 * while a live holder has it.
 *
 * @example
 * ```ts
 * const snap = await withInstallLock(fs, layout, defaultSweepPolicy(), () => promote());
 * ```
 */
export async function withInstallLock<T>(fs: FileSystem, layout: HomeLayout, policy: SweepPolicy, body: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = join(layout.cacheTmpDir, INSTALL_LOCK);
  const lease = new Lease(fs, policy.probe);
  const started = Date.now();
  const limit = options.timeoutMs ?? LOCK_WAIT_MS;
  let told = false;
  for (let wait = 2; ; wait = Math.min(wait * 2, 250)) {
    throwIfAborted(options.signal);
    try {
      await lease.claim(lock);
      break;
    } catch (e) {
      if (!isFsError(e, "EEXIST")) throw e;
    }
    const held = await readLease(fs, lock);
    if (held === null) continue; // released meanwhile
    // `now` advances while we wait: the policy's clock is an offset from the real one
    const now = Date.now() + (policy.now - started);
    const ttl = policy.ttlMs ?? LEASE_TTL_MS;
    const verdict = held.owner !== null
      ? judgeLease(held.owner, held.heartbeatMs, { ...policy, now })
      : now - held.heartbeatMs > Math.min(ttl, EMPTY_LOCK_TTL_MS) ? { state: "gone" as const, why: "an empty lock" } : { state: "live" as const, why: "being written" };
    if (verdict.state === "gone") {
      await breakLock(fs, lock, held.owner?.token ?? null);
      continue;
    }
    const who = held.owner ? describeOwner(held.owner) : "a process that is writing it";
    if (!told) {
      told = true;
      options.onWait?.(`the install lock ${lock} is held by ${who}${verdict.state === "elsewhere" ? " (another host or pid namespace)" : ""}`);
    }
    if (Date.now() - started >= limit) {
      throw new LockTimeout(`gave up after ${Math.round((Date.now() - started) / 1000)}s waiting for the install lock ${lock}, held by ${who}: ${verdict.why}`);
    }
    await raceAbort(new Promise((r) => setTimeout(r, wait)), options.signal);
  }
  try {
    return await body();
  } finally {
    await lease.releaseFile(lock);
  }
}

/**
 * Remove a lock judged abandoned — only if it still belongs to the holder that
 * was judged: it is first renamed aside, and put back if another waiter has
 * meanwhile broken it and taken the lock.
 */
async function breakLock(fs: FileSystem, lock: string, token: string | null): Promise<void> {
  const aside = join(dirname(lock), `${BROKEN_LOCK_PREFIX}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
  try {
    await fs.rename(lock, aside);
  } catch {
    return; // gone meanwhile
  }
  const taken = await readLease(fs, aside);
  if (taken !== null && (taken.owner?.token ?? null) !== token) {
    // a fresh holder's lock: give it back (unless yet another took its place)
    await fs.rename(aside, lock).catch(() => fs.remove(aside, { force: true }));
    return;
  }
  await fs.remove(aside, { force: true }).catch(() => {});
}
