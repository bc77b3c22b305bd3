/**
 * Test fixtures: a fresh home on each backend (memfs, and a real temporary
 * directory through node:fs), plus small builders for uppers and manifests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { memFs } from "../../src/fs/memfs.js";
import { nodeFs } from "../../src/fs/node.js";
import type { FileSystem } from "../../src/fs/types.js";
import { SnapshotStore } from "../../src/store.js";
import "./node-host.js"; // the core learns the process (its .wasm reader, Workers, pid) from the installed host

export interface Backend {
  readonly label: "memfs" | "node:fs";
  /** A fresh empty directory on this backend, its filesystem, and a cleanup. */
  make(): Promise<{ fs: FileSystem; root: string; cleanup: () => void }>;
}

export const BACKENDS: readonly Backend[] = [
  {
    label: "memfs",
    async make() {
      const vol = new Volume();
      vol.mkdirSync("/t", { recursive: true });
      return { fs: memFs(vol), root: "/t", cleanup: () => {} };
    },
  },
  {
    label: "node:fs",
    async make() {
      const root = mkdtempSync(join(tmpdir(), "snapbundle-test-"));
      return { fs: nodeFs(), root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
    },
  },
];

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

/** Deterministic pseudo-random bytes. */
export function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A home on a backend with a store over it. */
export async function makeHome(b: Backend): Promise<{ fs: FileSystem; root: string; home: string; store: SnapshotStore; cleanup: () => void }> {
  const { fs, root, cleanup } = await b.make();
  const home = `${root}/home`;
  await fs.mkdir(home, { recursive: true });
  return { fs, root, home, store: new SnapshotStore(fs, home, { cwd: root, userHome: root }), cleanup };
}

/** Recursively list every path below `dir` (sorted), for before/after comparisons. */
export async function tree(fs: FileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    let names: string[];
    try {
      names = await fs.readdir(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const info = await fs.lstat(`${d}/${n}`);
      out.push(`${rel}${n}${info.kind === "directory" ? "/" : info.kind === "symlink" ? "@" : ""}`);
      if (info.kind === "directory") await walk(`${d}/${n}`, `${rel}${n}/`);
    }
  };
  await walk(dir, "");
  return out;
}
