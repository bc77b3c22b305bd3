/**
 * Leases: how an operation proves it is alive while it leaves temporary
 * things on disk (staging directories, a save's `.partial-*` output, the
 * install lock).
 *
 * An operation takes a {@link Lease}: a random token plus who it is (pid, the
 * process's start time, host name, boot id and pid namespace). Everything it
 * creates is named `<prefix><pid>-<token>`, and beside it, in the same
 * directory, it writes `.snapbundle-lease-<pid>-<token>` holding its identity. While
 * it works it rewrites that file every {@link HEARTBEAT_MS}, so the file's
 * mtime is its heartbeat. {@link judgeLease} then tells, from another process:
 *
 * - the heartbeat is older than the TTL → the owner stopped refreshing: gone,
 *   whatever its pid says (a reused pid, pid 1 in a restarted container);
 * - the owner ran on this machine (same host, boot and pid namespace) and its
 *   pid is dead, or now belongs to a process that started at another time →
 *   gone at once;
 * - the owner ran elsewhere (another host or pid namespace sharing the home)
 *   and its heartbeat is fresh → it may be alive there: left alone.
 *
 * The identity comes from the runtime where it exposes one
 * (`/proc`, read through the installed host, `src/host.ts`, on Linux);
 * without it, only the heartbeat decides.
 *
 * @example
 * ```ts
 * const lease = new Lease(fs);
 * await lease.cover("/root/.microsandbox/snapshots");
 * const stage = join("/root/.microsandbox/snapshots", lease.name(".msb-create-"));
 * // … work …
 * await lease.release();
 * ```
 * @module
 */

import type { FileSystem } from "./fs/types.js";
import { currentHost, type Host } from "./host.js";
import { lstatOrNull, readSmallFile } from "./io.js";
import { parseStrictJson, plainJson } from "./json.js";
import { join } from "./path.js";

/** Name prefix of a lease file; the token follows. */
export const LEASE_PREFIX = ".snapbundle-lease-";
/** How often a live owner refreshes its lease files. */
export const HEARTBEAT_MS = 2_000;
/** A lease not refreshed for this long is broken, whoever holds it. */
export const LEASE_TTL_MS = 30_000;

/** Who holds a lease: enough to tell, on the same machine, whether that process still runs. */
export interface LeaseOwner {
  readonly token: string;
  readonly pid: number;
  /** Host name, or `null` where the runtime does not say. */
  readonly host: string | null;
  /** `/proc/sys/kernel/random/boot_id`: tells a reboot (pids start over). */
  readonly boot: string | null;
  /** The pid namespace (`/proc/self/ns/pid`): pids of another namespace mean nothing here. */
  readonly pidns: string | null;
  /** The process's start time (clock ticks since boot, `/proc/<pid>/stat`): tells a reused pid. */
  readonly start: string | null;
}

/** What the runtime can tell about processes on this machine. */
export interface ProcessProbe {
  /** This machine and namespace: host, boot id, pid namespace. */
  readonly self: { readonly host: string | null; readonly boot: string | null; readonly pidns: string | null };
  /** This process's pid. */
  readonly pid: number;
  /** Whether a pid is alive here (`EPERM` counts as alive); `null` when no check is possible. */
  isAlive(pid: number): boolean | null;
  /** A pid's start time, or `null` when unknown (or the process is gone). */
  startTime(pid: number): string | null;
}

/**
 * The probe of the running process, from the installed host (`src/host.ts`):
 * its pid and `isAlive`, and, where it reads them, Linux `/proc` and the host
 * name. Without a host, or a host that reads none of them, leases carry no
 * host, boot id, pid namespace or start time, and a leftover is judged by its
 * pid and its lease's refresh time alone.
 *
 * @example
 * ```ts
 * const probe = processProbe();
 * probe.isAlive(probe.pid); // true
 * ```
 */
export function processProbe(): ProcessProbe {
  const host = currentHost();
  if (cached?.host === host) return cached.probe;
  const startTime = (pid: number): string | null => {
    const stat = safe(() => host.readText?.(`/proc/${pid}/stat`));
    if (!stat) return null;
    // fields after the command (which may hold spaces and parentheses): state is field 3, starttime field 22
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19] ?? null;
  };
  const probe: ProcessProbe = {
    self: {
      host: safe(() => host.hostname?.()) ?? null,
      boot: safe(() => host.readText?.("/proc/sys/kernel/random/boot_id").trim()) ?? null,
      pidns: safe(() => host.readLink?.("/proc/self/ns/pid")) ?? null,
    },
    pid: host.pid,
    isAlive(pid) {
      if (host.isAlive === undefined) return null;
      return pid <= 0 ? true : host.isAlive(pid);
    },
    startTime,
  };
  cached = { host, probe };
  return probe;
}

let cached: { host: Host; probe: ProcessProbe } | undefined;

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** How to judge leases: the clock, the TTL, and what can be known about processes. */
export interface LeasePolicy {
  /** The current time (ms since the epoch). */
  readonly now: number;
  /** Default {@link LEASE_TTL_MS}. */
  readonly ttlMs?: number;
  /** Default {@link processProbe}. */
  readonly probe?: ProcessProbe;
}

/** The verdict on a lease. */
export type LeaseVerdict =
  | { readonly state: "live"; readonly why: string }
  | { readonly state: "gone"; readonly why: string }
  | { readonly state: "elsewhere"; readonly why: string };

/** `pid 123 on host h`, for messages. */
export function describeOwner(owner: LeaseOwner): string {
  return `pid ${owner.pid}${owner.host ? ` on host ${owner.host}` : ""}`;
}

/**
 * Judge a lease by its owner and its heartbeat (the lease file's mtime).
 *
 * @example
 * ```ts
 * judgeLease(owner, info.mtimeMs, { now: Date.now() }).state; // "live" | "gone" | "elsewhere"
 * ```
 */
export function judgeLease(owner: LeaseOwner, heartbeatMs: number, policy: LeasePolicy): LeaseVerdict {
  const probe = policy.probe ?? processProbe();
  const ttl = policy.ttlMs ?? LEASE_TTL_MS;
  const age = policy.now - heartbeatMs;
  const who = describeOwner(owner);
  if (age > ttl) return { state: "gone", why: `${who} stopped refreshing its lease ${Math.round(age / 1000)}s ago` };
  const s = probe.self;
  const here = s.host !== null && s.boot !== null && s.pidns !== null && owner.host === s.host && owner.boot === s.boot && owner.pidns === s.pidns;
  if (!here) {
    return { state: "elsewhere", why: `${who} (another host or pid namespace) may still be alive there; its lease expires ${Math.ceil((ttl - age) / 1000)}s after its last refresh` };
  }
  const alive = probe.isAlive(owner.pid);
  if (alive === false) return { state: "gone", why: `${who} is gone` };
  if (alive === true && owner.start !== null) {
    const start = probe.startTime(owner.pid);
    if (start !== null && start !== owner.start) return { state: "gone", why: `${who} is gone (the pid now belongs to another process)` };
  }
  return { state: "live", why: `${who} is alive` };
}

/** Parse a lease file's text; `null` if it is not one. */
export function parseLeaseOwner(text: string): LeaseOwner | null {
  try {
    const v = plainJson(parseStrictJson(text));
    if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
    const o = v as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === "string" ? v : null);
    if (typeof o.token !== "string" || typeof o.pid !== "number") return null;
    return { token: o.token, pid: o.pid, host: str(o.host), boot: str(o.boot), pidns: str(o.pidns), start: str(o.start) };
  } catch {
    return null;
  }
}

/**
 * Read the lease file `path`: its owner and heartbeat, or `null` when it is
 * missing. A file that does not parse has no owner (`owner: null`).
 *
 * @example
 * ```ts
 * const l = await readLease(fs, "/h/snapshots/.snapbundle-lease-abc");
 * ```
 */
export async function readLease(fs: FileSystem, path: string): Promise<{ owner: LeaseOwner | null; heartbeatMs: number } | null> {
  const info = await lstatOrNull(fs, path).catch(() => null);
  if (info === null) return null;
  const text = await readSmallFile(fs, path, 4096).then((b) => new TextDecoder().decode(b), () => "");
  return { owner: parseLeaseOwner(text), heartbeatMs: info.mtimeMs };
}

/** A fresh random token: 12 characters `[a-z0-9]`. */
export function newToken(): string {
  const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
  let t = "";
  for (const b of crypto.getRandomValues(new Uint8Array(12))) t += chars[b % chars.length];
  return t;
}

/**
 * This process's claim on what one operation leaves on disk. See the module
 * documentation.
 *
 * @example
 * ```ts
 * const lease = new Lease(fs);
 * await lease.cover(dir);
 * try { … } finally { await lease.release(); }
 * ```
 */
export class Lease {
  readonly owner: LeaseOwner;
  private readonly files = new Set<string>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly bytes: Uint8Array;

  constructor(
    readonly fs: FileSystem,
    probe: ProcessProbe = processProbe(),
  ) {
    this.owner = { token: newToken(), pid: probe.pid, ...probe.self, start: probe.startTime(probe.pid) };
    this.bytes = new TextEncoder().encode(`${JSON.stringify({ version: 1, ...this.owner })}\n`);
  }

  /** A name for something this operation creates: `<prefix><pid>-<token>`. */
  name(prefix: string): string {
    return `${prefix}${this.owner.pid}-${this.owner.token}`;
  }

  /** The lease file in `dir`: `.snapbundle-lease-<pid>-<token>`. */
  fileIn(dir: string): string {
    return join(dir, this.name(LEASE_PREFIX));
  }

  /** Write the lease file in `dir` (which must exist), before anything is created there. Starts the heartbeat. */
  async cover(dir: string): Promise<void> {
    const path = this.fileIn(dir);
    if (this.files.has(path)) return;
    await this.writeNew(path, "w");
  }

  /**
   * Create `path` exclusively (`"wx"`: `EEXIST` if it exists) holding this
   * lease, and refresh it with the others: a lock file.
   */
  async claim(path: string): Promise<void> {
    await this.writeNew(path, "wx");
  }

  /** Write the lease to `path` and track it; nothing is left if that fails. */
  private async writeNew(path: string, mode: "w" | "wx"): Promise<void> {
    const h = await this.fs.open(path, mode);
    try {
      try {
        await h.write(this.bytes, 0);
      } finally {
        await h.close();
      }
    } catch (e) {
      await this.fs.remove(path, { force: true }).catch(() => {});
      throw e;
    }
    this.track(path);
  }

  private track(path: string): void {
    this.files.add(path);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.refresh(), HEARTBEAT_MS);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Stop refreshing `path` and remove it. */
  async releaseFile(path: string): Promise<void> {
    this.files.delete(path);
    if (this.files.size === 0) this.stop();
    await removeTwice(this.fs, path);
  }

  /** Refresh every lease file now (best effort: a failed refresh is retried at the next beat). */
  async refresh(): Promise<void> {
    for (const path of this.files) {
      try {
        const h = await this.fs.open(path, "r+");
        try {
          await h.write(this.bytes, 0);
        } finally {
          await h.close();
        }
      } catch {
        // retried at the next beat
      }
    }
  }

  /** Stop refreshing and remove the lease file in `dir` (after what it covered there is gone). */
  async releaseIn(dir: string): Promise<void> {
    await this.releaseFile(this.fileIn(dir));
  }

  /** Stop refreshing and remove every lease file (after what they covered is gone). Idempotent. */
  async release(): Promise<void> {
    this.stop();
    const files = [...this.files];
    this.files.clear();
    for (const f of files) await removeTwice(this.fs, f);
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Remove a lease file, trying once more after a transient failure (EIO): a
 * lease left behind is harmless — the next command reclaims it, its owner
 * being gone — but litters the user's directory meanwhile.
 */
async function removeTwice(fs: FileSystem, path: string): Promise<void> {
  await fs.remove(path, { force: true }).catch(() => fs.remove(path, { force: true })).catch(() => {});
}
