/**
 * Filesystem helpers for load tests: a spying {@link FileSystem} wrapper
 * (records opens, runs a hook after a rename), a content fingerprint of a
 * directory tree, and writing bytes to a backend.
 * @module
 */

import { createHash } from "node:crypto";
import type { FileHandle, FileSystem, OpenMode, RemoveOptions } from "../../src/fs/types.js";
import { readSmallFile } from "../../src/io.js";
import { walkTree } from "./homes.js";

export interface SpyHooks {
  /** Runs after every successful rename, before it resolves. */
  afterRename?: (from: string, to: string) => Promise<void>;
}

/** A FileSystem that delegates to `inner`, logging every `open` as `"<mode> <path>"`. */
export function spyFs(inner: FileSystem, hooks: SpyHooks = {}): FileSystem & { readonly opens: string[] } {
  const opens: string[] = [];
  return {
    label: `spy(${inner.label})`,
    opens,
    open: (p: string, mode: OpenMode): Promise<FileHandle> => {
      opens.push(`${mode} ${p}`);
      return inner.open(p, mode);
    },
    stat: (p) => inner.stat(p),
    lstat: (p) => inner.lstat(p),
    readdir: (p) => inner.readdir(p),
    mkdir: (p, o) => inner.mkdir(p, o),
    rename: async (from: string, to: string) => {
      await inner.rename(from, to);
      await hooks.afterRename?.(from, to);
    },
    remove: (p: string, o?: RemoveOptions) => inner.remove(p, o),
    makeTempDir: (parent, prefix) => inner.makeTempDir(parent, prefix),
    symlink: (target, p) => inner.symlink(target, p),
    syncDir: (p) => inner.syncDir(p),
  };
}

/** Every path below `dir` with its kind, size and SHA-256 (files), sorted: equal fingerprints mean nothing changed. */
export async function fingerprint(fs: FileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  await walkTree(fs, dir, async (rel, path, info) => {
    if (info.kind === "file") out.push(`${rel} ${info.size} ${createHash("sha256").update(await readSmallFile(fs, path, 256 << 20)).digest("hex")}`);
    else out.push(`${rel} ${info.kind}`);
  });
  return out;
}

/** Write `bytes` as a new file on a backend. */
export async function writeBytes(fs: FileSystem, path: string, bytes: Uint8Array): Promise<void> {
  const h = await fs.open(path, "w");
  try {
    await h.write(bytes, 0);
  } finally {
    await h.close();
  }
}
