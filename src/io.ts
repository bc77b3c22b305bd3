/**
 * Small file helpers over the {@link FileSystem} interface: bounded whole-file
 * reads for small files, atomic small-file writes, existence checks, and a
 * chunked sequential reader for large ones.
 *
 * @example
 * ```ts
 * import { readSmallFile, writeFileAtomic } from "./io.js";
 * const bytes = await readSmallFile(fs, "/h/snapshots/a/manifest.json", 1 << 20);
 * await writeFileAtomic(fs, "/h/snapshots/a/manifest.json", bytes);
 * ```
 * @module
 */

import { FsError, InvalidArgument, isFsError } from "./errors.js";
import type { FileHandle, FileInfo, FileSystem } from "./fs/types.js";
import { basename, dirname, join } from "./path.js";

/** Default size of one read when streaming a large file: large, because WASM calls cost per call. */
export const CHUNK_BYTES = 4 << 20;

/** `lstat`, or `null` when nothing is at `path`. Other errors propagate. */
export async function lstatOrNull(fs: FileSystem, path: string): Promise<FileInfo | null> {
  try {
    return await fs.lstat(path);
  } catch (e) {
    if (isFsError(e, "ENOENT") || isFsError(e, "ENOTDIR")) return null;
    throw e;
  }
}

/** Run `body` with an open handle and close it whatever happens. */
export async function withFile<T>(fs: FileSystem, path: string, mode: "r" | "r+" | "w" | "wx", body: (h: FileHandle) => Promise<T>): Promise<T> {
  const h = await fs.open(path, mode);
  try {
    return await body(h);
  } finally {
    await h.close();
  }
}

/**
 * Read a whole small file, refusing one larger than `maxBytes` with
 * {@link InvalidArgument} (callers rewrap it with their own rule).
 */
export async function readSmallFile(fs: FileSystem, path: string, maxBytes: number): Promise<Uint8Array> {
  return withFile(fs, path, "r", async (h) => {
    const info = await h.info();
    if (info.size > maxBytes) throw new InvalidArgument(`${path} is ${info.size} bytes; at most ${maxBytes} are read`);
    const out = new Uint8Array(info.size);
    let off = 0;
    while (off < out.length) {
      const n = await h.read(out.subarray(off), off);
      if (n === 0) break;
      off += n;
    }
    return off === out.length ? out : out.subarray(0, off);
  });
}

/** Write all of `data` to a new file at `path` (mode `wx` unless `overwrite`), fsync and close it. */
export async function writeNewFile(fs: FileSystem, path: string, data: Uint8Array, overwrite = false): Promise<void> {
  await withFile(fs, path, overwrite ? "w" : "wx", async (h) => {
    await h.write(data, 0);
    await h.sync();
  });
}

let tmpCounter = 0;

/**
 * Replace `path` atomically: write a temporary file beside it, fsync it,
 * rename it over `path`, fsync the directory. Readers see the old or the new
 * content, never a mix; a failure leaves the old file and no temporary.
 */
export async function writeFileAtomic(fs: FileSystem, path: string, data: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${Date.now().toString(36)}-${(tmpCounter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    await writeNewFile(fs, tmp, data);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.remove(tmp, { force: true }).catch(() => {});
    throw e;
  }
  await fs.syncDir(dirname(path));
}

/**
 * Read `length` bytes of an open file from `start` (default 0) sequentially,
 * in chunks of at most `chunkBytes`, yielding `(offset, bytes)` with file
 * offsets. Each chunk is a fresh buffer the consumer may keep. A file that
 * ends early is an {@link FsError} (`EIO`), so a caller never mistakes a
 * truncated file for a complete one.
 */
export async function* readChunks(
  h: FileHandle,
  length: number,
  path: string,
  options: { readonly start?: number; readonly chunkBytes?: number } = {},
): AsyncGenerator<{ offset: number; data: Uint8Array }> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const end = (options.start ?? 0) + length;
  let offset = options.start ?? 0;
  while (offset < end) {
    const want = Math.min(chunkBytes, end - offset);
    const buf = new Uint8Array(want);
    let got = 0;
    while (got < want) {
      const n = await h.read(buf.subarray(got), offset + got);
      if (n === 0) throw new FsError("EIO", "read", path, `file ended at ${offset + got} bytes, expected ${end}`);
      got += n;
    }
    yield { offset, data: buf };
    offset += want;
  }
}
