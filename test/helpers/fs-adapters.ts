/**
 * The filesystem adapters under test, each able to make a fresh, empty root
 * directory for one test case, plus assertion helpers for {@link FsError}s.
 *
 * @example
 * ```ts
 * for (const adapter of fsAdapters) {
 *   test(`${adapter.name}: mkdir`, () => adapter.run(async (fs, root) => {
 *     await fs.mkdir(`${root}/d`);
 *   }));
 * }
 * ```
 * @module
 */

import assert from "node:assert/strict";
import { FsError } from "../../src/errors.js";
import type { FileSystem } from "../../src/fs/types.js";
import { BACKENDS, withBackend } from "./backends.js";
import "./node-host.js";

/** One adapter under test. */
export interface FsAdapter {
  /** The label the adapter must report. */
  readonly name: string;
  /** True for a real disk (holes are measurable, `allocatedBytes` is a number). */
  readonly onDisk: boolean;
  /** Run `body` against a fresh adapter and an empty root directory, then clean up. */
  run(body: (fs: FileSystem, root: string) => Promise<void>): Promise<void>;
}

/** Both adapters, from the one registry of backends (`./backends.ts`). */
export const fsAdapters: readonly FsAdapter[] = BACKENDS.map((b) => ({ name: b.label, onDisk: b.onDisk, run: (body) => withBackend(b, body) }));

/**
 * Assert that `promise` rejects with an {@link FsError} whose errno is one of
 * `errnos` (and, when given, whose `op` and `path` match). Resolves the error.
 */
export async function rejectsFs(
  promise: Promise<unknown>,
  errnos: string | readonly string[],
  expect: { op?: string; path?: string } = {},
): Promise<FsError> {
  const allowed = typeof errnos === "string" ? [errnos] : errnos;
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a rejection with ${allowed.join(" or ")}, but it resolved`);
  assert.ok(caught instanceof FsError, `expected an FsError, got ${String(caught)} (${(caught as Error)?.constructor?.name})`);
  assert.ok(allowed.includes(caught.errno), `expected ${allowed.join(" or ")}, got ${caught.errno}: ${caught.message}`);
  if (expect.op !== undefined) assert.equal(caught.op, expect.op);
  if (expect.path !== undefined) assert.equal(caught.path, expect.path);
  assert.equal(caught.code, "fs");
  return caught;
}

/** Write a whole small file (`"w"`), for test setup. */
export async function writeFile(fs: FileSystem, path: string, text: string): Promise<void> {
  const h = await fs.open(path, "w");
  try {
    await h.write(new TextEncoder().encode(text), 0);
  } finally {
    await h.close();
  }
}

/** Read a whole small file, for test checks. */
export async function readBytes(fs: FileSystem, path: string): Promise<Uint8Array> {
  const h = await fs.open(path, "r");
  try {
    const size = (await h.info()).size;
    const out = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = await h.read(out.subarray(done), done);
      if (n === 0) break;
      done += n;
    }
    return out.subarray(0, done);
  } finally {
    await h.close();
  }
}

/** Read a whole small file as text. */
export async function readText(fs: FileSystem, path: string): Promise<string> {
  return new TextDecoder().decode(await readBytes(fs, path));
}

/** True when every byte is zero. */
export function allZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}
