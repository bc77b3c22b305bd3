/**
 * The filesystems every backend-generic suite runs on: memfs (a fresh
 * volume) and node:fs (a fresh directory under `os.tmpdir()`). One registry
 * for the whole test suite.
 *
 * @example
 * ```ts
 * for (const backend of BACKENDS) {
 *   test(`mkdir on ${backend.label}`, () => withBackend(backend, async (fs, root) => {
 *     await fs.mkdir(`${root}/d`);
 *   }));
 * }
 * ```
 * @module
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { memFs } from "../../src/fs/memfs.js";
import { nodeFs } from "../../src/fs/node.js";
import type { FileSystem } from "../../src/fs/types.js";
import "./node-host.js"; // the core learns the process (its .wasm reader, Workers, pid) from the installed host

export interface Backend {
  readonly label: "memfs" | "node:fs";
  /** True for a real disk (holes are measurable, `allocatedBytes` is a number). */
  readonly onDisk: boolean;
  /** A fresh empty directory on this backend, its filesystem, and a cleanup. */
  make(): Promise<{ fs: FileSystem; root: string; cleanup: () => void }>;
}

export const BACKENDS: readonly Backend[] = [
  {
    label: "memfs",
    onDisk: false,
    async make() {
      const vol = new Volume();
      vol.mkdirSync("/t", { recursive: true });
      return { fs: memFs(vol), root: "/t", cleanup: () => {} };
    },
  },
  {
    label: "node:fs",
    onDisk: true,
    async make() {
      // realpath: os.tmpdir() may itself sit behind a link (macOS /var -> /private/var).
      const root = realpathSync(mkdtempSync(join(tmpdir(), "snapbundle-test-")));
      return { fs: nodeFs(), root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
    },
  },
];

/** Run `body` on a fresh root of `backend`, then clean up. */
export async function withBackend<T>(backend: Backend, body: (fs: FileSystem, root: string) => Promise<T>): Promise<T> {
  const { fs, root, cleanup } = await backend.make();
  try {
    return await body(fs, root);
  } finally {
    cleanup();
  }
}
