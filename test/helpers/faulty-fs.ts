/**
 * A fault-injecting {@link FileSystem}: wraps any FileSystem (and the
 * FileHandles it returns), counts every operation — overall and by kind — and
 * makes a chosen operation fail with a realistic {@link FsError}.
 *
 * - **Counting.** Every call is one operation with a 1-based sequence number,
 *   overall (`seq`) and within its kind (`kindSeq`). {@link FaultyFs.measure}
 *   runs a whole operation (e.g. one `store.save`) without faults and returns
 *   how many calls it made: the fault points to sweep.
 * - **Faults.** {@link FaultyFs.arm} makes the `at`-th operation that matches
 *   (any, a kind, or a predicate) fail. One-shot by default: the failing call
 *   is the only one, so undo paths run on a healthy filesystem. `sticky` keeps
 *   failing every later matching call (a disk that stays full).
 * - **Realism.** The errno fits the call (see {@link realisticErrno}): ENOSPC
 *   for writes, length changes and directory creation, EIO for reads, syncs,
 *   closes and renames, EACCES now and then. A failing `write` first writes
 *   half its bytes (a short write, as a filling disk does); a failing `close`
 *   still closes the handle (as close(2) does), then reports EIO.
 * - **Hooks.** `before(op)` runs (and is awaited) before every call — used to
 *   inject small random delays so concurrent operations interleave differently.
 *
 * @example
 * ```ts
 * const faulty = new FaultyFs(memFs(new Volume()));
 * const store = new SnapshotStore(faulty, "/home");
 * const n = (await faulty.measure(() => store.save("a", "/out.tar.zst"))).count;
 * for (let i = 1; i <= n; i++) {
 *   faulty.arm({ at: i });
 *   await store.save("a", "/out.tar.zst").catch((e) => e);
 *   console.log(faulty.fired); // the op that failed, with its errno
 * }
 * ```
 * @module
 */

import { FsError } from "../../src/errors.js";
import type { FileHandle, FileInfo, FileSystem, OpenMode, RemoveOptions } from "../../src/fs/types.js";
import { xorshift32 } from "./bytes.js";

/** Every kind of call the wrapper counts. */
export type FsOpKind =
  | "open"
  | "read"
  | "write"
  | "setLength"
  | "info"
  | "sync"
  | "close"
  | "stat"
  | "lstat"
  | "readdir"
  | "mkdir"
  | "rename"
  | "remove"
  | "makeTempDir"
  | "symlink"
  | "syncDir";

export const OP_KINDS: readonly FsOpKind[] = [
  "open", "read", "write", "setLength", "info", "sync", "close", "stat", "lstat", "readdir", "mkdir", "rename", "remove", "makeTempDir", "symlink", "syncDir",
];

/** One call as the wrapper saw it. */
export interface FsOp {
  /** 1-based position among all calls since the last reset. */
  readonly seq: number;
  /** 1-based position among calls of the same kind. */
  readonly kindSeq: number;
  readonly kind: FsOpKind;
  /** The path operated on (a handle's path for handle calls; `parent` for makeTempDir). */
  readonly path: string;
  /** Rename target, makeTempDir prefix, symlink target. */
  readonly to?: string;
  readonly mode?: OpenMode;
}

/** Which call to fail. */
export interface Fault {
  /** Fail the `at`-th call (1-based) that matches `kind` and `match`. */
  readonly at: number;
  readonly kind?: FsOpKind;
  readonly match?: (op: FsOp) => boolean;
  /** The errno to report (default {@link realisticErrno}). */
  readonly errno?: string;
  /** Keep failing every later matching call too. */
  readonly sticky?: boolean;
}

/** A call that was made to fail. */
export interface FiredFault extends FsOp {
  readonly errno: string;
}

export interface FaultyHooks {
  /** Awaited before every call (after counting, before any fault). */
  before?: (op: FsOp) => void | Promise<void>;
}

/**
 * The errno a real filesystem would plausibly report for this call: ENOSPC
 * where space is consumed, EIO where data moves, EACCES for every third
 * directory-level call.
 */
export function realisticErrno(op: FsOp): string {
  const third = op.seq % 3 === 0;
  switch (op.kind) {
    case "write":
    case "setLength":
    case "symlink":
      return "ENOSPC";
    case "mkdir":
    case "makeTempDir":
      return third ? "EACCES" : "ENOSPC";
    case "open":
      return op.mode === "r" ? (third ? "EACCES" : "EIO") : third ? "EACCES" : "ENOSPC";
    case "readdir":
    case "rename":
    case "remove":
      return third ? "EACCES" : "EIO";
    default:
      return "EIO";
  }
}

/** The fault-injecting, counting wrapper. */
export class FaultyFs implements FileSystem {
  readonly label: string;
  /** Every call since the last {@link reset}, when `record` is on (it is by default). */
  readonly ops: FsOp[] = [];
  /** Faults that fired since the last {@link arm}. */
  readonly fired: FiredFault[] = [];
  record = true;
  hooks: FaultyHooks;
  #seq = 0;
  #byKind = new Map<FsOpKind, number>();
  #fault: Fault | null = null;
  #matched = 0;
  #tripped = false;

  constructor(readonly inner: FileSystem, hooks: FaultyHooks = {}) {
    this.label = `faulty(${inner.label})`;
    this.hooks = hooks;
  }

  /** Calls since the last reset. */
  get count(): number {
    return this.#seq;
  }

  /** Calls of each kind since the last reset. */
  get byKind(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#byKind);
  }

  /** Zero the counters and the log (the armed fault stays). */
  reset(): void {
    this.#seq = 0;
    this.#byKind.clear();
    this.ops.length = 0;
  }

  /** Arm one fault (replacing any other) and zero the counters. */
  arm(fault: Fault): void {
    this.reset();
    this.#fault = fault;
    this.#matched = 0;
    this.#tripped = false;
    this.fired.length = 0;
  }

  /** No more faults. */
  disarm(): void {
    this.#fault = null;
  }

  /** Run `body` without faults and report how many calls it made (and which). */
  async measure<T>(body: () => Promise<T>): Promise<{ count: number; byKind: Readonly<Record<string, number>>; ops: FsOp[]; result: T }> {
    this.disarm();
    this.reset();
    const result = await body();
    return { count: this.#seq, byKind: this.byKind, ops: [...this.ops], result };
  }

  /** Count a call, run the hook, and throw if it is the one to fail. */
  async gate(kind: FsOpKind, path: string, extra: { to?: string; mode?: OpenMode } = {}): Promise<FiredFault | null> {
    const kindSeq = (this.#byKind.get(kind) ?? 0) + 1;
    this.#byKind.set(kind, kindSeq);
    const op: FsOp = { seq: ++this.#seq, kindSeq, kind, path, ...extra };
    if (this.record) this.ops.push(op);
    await this.hooks.before?.(op);
    const f = this.#fault;
    if (f === null) return null;
    if ((f.kind !== undefined && f.kind !== kind) || (f.match !== undefined && !f.match(op))) return null;
    this.#matched++;
    if (this.#matched === f.at || (f.sticky && this.#matched > f.at)) {
      if (!f.sticky) this.#tripped = true;
      const fired = { ...op, errno: f.errno ?? realisticErrno(op) };
      this.fired.push(fired);
      if (!f.sticky && this.#tripped) this.#fault = null;
      return fired;
    }
    return null;
  }

  /** The error for a fired fault. */
  static error(f: FiredFault): FsError {
    return new FsError(f.errno, f.kind, f.path, `injected fault at call #${f.seq} (${f.kind} #${f.kindSeq})`);
  }

  async #call<T>(kind: FsOpKind, path: string, run: () => Promise<T>, extra: { to?: string; mode?: OpenMode } = {}): Promise<T> {
    const f = await this.gate(kind, path, extra);
    if (f) throw FaultyFs.error(f);
    return run();
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const h = await this.#call("open", path, () => this.inner.open(path, mode), { mode });
    return new FaultyHandle(this, h, path);
  }
  stat(path: string): Promise<FileInfo> {
    return this.#call("stat", path, () => this.inner.stat(path));
  }
  lstat(path: string): Promise<FileInfo> {
    return this.#call("lstat", path, () => this.inner.lstat(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.#call("readdir", path, () => this.inner.readdir(path));
  }
  mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void> {
    return this.#call("mkdir", path, () => this.inner.mkdir(path, options));
  }
  rename(from: string, to: string): Promise<void> {
    return this.#call("rename", from, () => this.inner.rename(from, to), { to });
  }
  remove(path: string, options?: RemoveOptions): Promise<void> {
    return this.#call("remove", path, () => this.inner.remove(path, options));
  }
  makeTempDir(parent: string, prefix: string): Promise<string> {
    return this.#call("makeTempDir", parent, () => this.inner.makeTempDir(parent, prefix), { to: prefix });
  }
  symlink(target: string, path: string): Promise<void> {
    return this.#call("symlink", path, () => this.inner.symlink(target, path), { to: target });
  }
  syncDir(path: string): Promise<void> {
    return this.#call("syncDir", path, () => this.inner.syncDir(path));
  }
}

class FaultyHandle implements FileHandle {
  constructor(
    private readonly fs: FaultyFs,
    private readonly inner: FileHandle,
    private readonly path: string,
  ) {}

  async read(into: Uint8Array, position: number): Promise<number> {
    const f = await this.fs.gate("read", this.path);
    if (f) throw FaultyFs.error(f);
    return this.inner.read(into, position);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    const f = await this.fs.gate("write", this.path);
    if (f) {
      // a short write: half the bytes land, then the disk is full
      const half = data.length >>> 1;
      if (half > 0) await this.inner.write(data.subarray(0, half), position).catch(() => {});
      throw FaultyFs.error(f);
    }
    return this.inner.write(data, position);
  }

  async setLength(length: number): Promise<void> {
    const f = await this.fs.gate("setLength", this.path);
    if (f) throw FaultyFs.error(f);
    return this.inner.setLength(length);
  }

  async info(): Promise<FileInfo> {
    const f = await this.fs.gate("info", this.path);
    if (f) throw FaultyFs.error(f);
    return this.inner.info();
  }

  async sync(): Promise<void> {
    const f = await this.fs.gate("sync", this.path);
    if (f) throw FaultyFs.error(f);
    return this.inner.sync();
  }

  async close(): Promise<void> {
    const f = await this.fs.gate("close", this.path);
    // close(2) releases the descriptor even when it reports an error
    await this.inner.close();
    if (f) throw FaultyFs.error(f);
  }
}

/** A hook that waits a random 0..maxMs milliseconds (or just yields) before each call, from a seeded generator. */
export function randomDelays(seed: number, maxMs = 2, yieldOnlyRatio = 0.7): (op: FsOp) => Promise<void> {
  const u32 = xorshift32(seed);
  const next = () => u32() / 2 ** 32;
  return async () => {
    const r = next();
    if (r < yieldOnlyRatio) {
      if (r < yieldOnlyRatio / 2) await Promise.resolve();
      else await new Promise((resolve) => setImmediate(resolve));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.floor(next() * (maxMs + 1))));
  };
}
