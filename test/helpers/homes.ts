/**
 * Test fixtures: a fresh home on each backend (memfs, and a real temporary
 * directory through node:fs), plus small builders for uppers and manifests.
 */
import type { FileInfo, FileSystem } from "../../src/fs/types.js";
import { SnapshotStore } from "../../src/store.js";
import type { Backend } from "./backends.js";
import "./node-host.js"; // the core learns the process (its .wasm reader, Workers, pid) from the installed host

export { type Backend, BACKENDS } from "./backends.js";
export { noise } from "./bytes.js";

export const IMAGE = {
  ref: "docker.io/library/python:3.12",
  manifest_digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

/** Write a sparse file with `data` pieces at offsets, `size` bytes long (or as long as the pieces reach, if longer). */
export async function writeSparse(fs: FileSystem, path: string, size: number, pieces: readonly [number, Uint8Array | string][]): Promise<void> {
  const h = await fs.open(path, "w");
  try {
    let end = 0;
    for (const [off, d] of pieces) {
      const bytes = typeof d === "string" ? new TextEncoder().encode(d) : d;
      await h.write(bytes, off);
      end = Math.max(end, off + bytes.length);
    }
    await h.setLength(Math.max(size, end));
  } finally {
    await h.close();
  }
}

/** A home on a backend with a store over it. */
export async function makeHome(b: Backend): Promise<{ fs: FileSystem; root: string; home: string; store: SnapshotStore; cleanup: () => void }> {
  const { fs, root, cleanup } = await b.make();
  const home = `${root}/home`;
  await fs.mkdir(home, { recursive: true });
  return { fs, root, home, store: new SnapshotStore(fs, home, { cwd: root, userHome: root }), cleanup };
}

/**
 * Visit every entry below `dir`, depth first in sorted order, with its path
 * relative to `dir`. A directory that cannot be read is seen as empty; an
 * entry `skip` names (relative path) is neither visited nor entered.
 */
export async function walkTree(
  fs: FileSystem,
  dir: string,
  visit: (rel: string, path: string, info: FileInfo) => Promise<void> | void,
  skip: (rel: string) => boolean = () => false,
): Promise<void> {
  const walk = async (d: string, rel: string) => {
    let names: string[];
    try {
      names = await fs.readdir(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      if (skip(`${rel}${n}`)) continue;
      const p = `${d}/${n}`;
      const info = await fs.lstat(p);
      await visit(`${rel}${n}`, p, info);
      if (info.kind === "directory") await walk(p, `${rel}${n}/`);
    }
  };
  await walk(dir, "");
}

/** Recursively list every path below `dir` (sorted), for before/after comparisons. */
export async function tree(fs: FileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  await walkTree(fs, dir, (rel, _path, info) => void out.push(`${rel}${info.kind === "directory" ? "/" : info.kind === "symlink" ? "@" : ""}`));
  return out;
}
