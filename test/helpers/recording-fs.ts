/**
 * A recording {@link FileSystem}: wraps any FileSystem (and the FileHandles
 * it opens) and records, in order, every *durable* operation — a write to a
 * file, an fsync of a file, a rename, a removal, a directory creation and an
 * fsync of a directory — so tests can assert their sequence: "the manifest is
 * written and fsynced before the rename that publishes it", "a rename into
 * place is followed by an fsync of its directory". Reads are not recorded.
 *
 * Writes to one handle are recorded once per run of consecutive writes (the
 * order of durable steps is what matters, not the chunking).
 *
 * @example
 * ```ts
 * const rec = new RecordingFs(memFs(new Volume()));
 * await new SnapshotStore(rec, "/home").create("a", { upper: "/u", image });
 * console.log(rec.log); // [{ op: "write", path: ".../manifest.json" }, { op: "fsync", ... }, { op: "rename", ... }, ...]
 * ```
 * @module
 */

import type { FileHandle, FileInfo, FileSystem, OpenMode, RemoveOptions } from "../../src/fs/types.js";

/** One durable operation. */
export interface DurableOp {
  readonly op: "write" | "fsync" | "rename" | "fsyncDir" | "remove" | "mkdir";
  readonly path: string;
  /** Rename target. */
  readonly to?: string;
}

/** See the module comment. */
export class RecordingFs implements FileSystem {
  readonly log: DurableOp[] = [];
  readonly label: string;

  constructor(private readonly inner: FileSystem) {
    this.label = `recording(${inner.label})`;
  }

  /** Forget everything recorded so far. */
  reset(): void {
    this.log.length = 0;
  }

  private record(op: DurableOp): void {
    const last = this.log[this.log.length - 1];
    if (op.op === "write" && last?.op === "write" && last.path === op.path) return;
    this.log.push(op);
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const h = await this.inner.open(path, mode);
    const rec = (op: DurableOp) => this.record(op);
    return {
      read: (into, position) => h.read(into, position),
      write: async (data, position) => {
        await h.write(data, position);
        rec({ op: "write", path });
      },
      setLength: async (length) => {
        await h.setLength(length);
        rec({ op: "write", path });
      },
      info: () => h.info(),
      sync: async () => {
        await h.sync();
        rec({ op: "fsync", path });
      },
      close: () => h.close(),
    };
  }
  stat(path: string): Promise<FileInfo> {
    return this.inner.stat(path);
  }
  lstat(path: string): Promise<FileInfo> {
    return this.inner.lstat(path);
  }
  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }
  async mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void> {
    await this.inner.mkdir(path, options);
    this.record({ op: "mkdir", path });
  }
  async rename(from: string, to: string): Promise<void> {
    await this.inner.rename(from, to);
    this.record({ op: "rename", path: from, to });
  }
  async remove(path: string, options?: RemoveOptions): Promise<void> {
    await this.inner.remove(path, options);
    this.record({ op: "remove", path });
  }
  async makeTempDir(parent: string, prefix: string): Promise<string> {
    const made = await this.inner.makeTempDir(parent, prefix);
    this.record({ op: "mkdir", path: made });
    return made;
  }
  symlink(target: string, path: string): Promise<void> {
    return this.inner.symlink(target, path);
  }
  async syncDir(path: string): Promise<void> {
    await this.inner.syncDir(path);
    this.record({ op: "fsyncDir", path });
  }
}

/** The parent directory of an absolute POSIX path. */
function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/**
 * Every rename in `log` whose target's directory is not fsynced later in the
 * log (before the end): renames that a power cut could undo. Empty when
 * every rename is made durable.
 *
 * @example
 * ```ts
 * assert.deepEqual(undurableRenames(rec.log), []);
 * ```
 */
export function undurableRenames(log: readonly DurableOp[]): DurableOp[] {
  return log.filter((op, i) => op.op === "rename" && !log.slice(i + 1).some((o) => o.op === "fsyncDir" && o.path === parentOf(op.to!)));
}

/** Index of the first op matching `pred`, or -1. */
export function indexOfOp(log: readonly DurableOp[], pred: (op: DurableOp) => boolean, from = 0): number {
  for (let i = from; i < log.length; i++) if (pred(log[i]!)) return i;
  return -1;
}

/**
 * What a power cut could lose in `log`, as sentences (empty when nothing):
 * - a file renamed into place whose last write was not fsynced before the rename;
 * - a directory renamed into place while an entry created in it (a file
 *   written, a rename into it) was not yet made durable by an fsync of that
 *   directory;
 * - a rename not followed by an fsync of its target's directory.
 *
 * @example
 * ```ts
 * assert.deepEqual(durabilityProblems(rec.log), []);
 * ```
 */
export function durabilityProblems(log: readonly DurableOp[]): string[] {
  const problems: string[] = [];
  log.forEach((op, i) => {
    if (op.op !== "rename") return;
    const before = log.slice(0, i);
    const lastWrite = before.map((o) => o.op === "write" && o.path === op.path).lastIndexOf(true);
    if (lastWrite >= 0 && !before.slice(lastWrite).some((o) => o.op === "fsync" && o.path === op.path)) {
      problems.push(`${op.path} renamed to ${op.to} before its data was fsynced`);
    }
    const inside = (p: string | undefined) => p !== undefined && parentOf(p) === op.path;
    const lastEntry = before.map((o) => (o.op === "write" && inside(o.path)) || (o.op === "rename" && inside(o.to))).lastIndexOf(true);
    if (lastEntry >= 0 && !before.slice(lastEntry).some((o) => o.op === "fsyncDir" && o.path === op.path)) {
      problems.push(`directory ${op.path} renamed to ${op.to} before the entries created in it were fsynced`);
    }
  });
  for (const r of undurableRenames(log)) problems.push(`rename ${r.path} -> ${r.to} is not followed by an fsync of ${parentOf(r.to!)}`);
  return problems;
}
