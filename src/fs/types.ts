/**
 * The filesystem interface: the only way the core touches files.
 *
 * Paths are absolute POSIX strings (`/a/b`). Every method rejects with an
 * {@link FsError} carrying the POSIX errno (`ENOENT`, `EEXIST`, `ENOTEMPTY`,
 * `ENOTDIR`, `EISDIR`, `ENOSPC`, `EIO`, …), the operation and the path, so the
 * core can branch on `errno` without knowing which adapter it runs on.
 *
 * Two adapters ship: {@link import("./node.js").nodeFs} over `node:fs` (Node,
 * Deno and Bun) and {@link import("./memfs.js").memFs} over a `memfs` volume.
 * Where they differ, the method's comment says so.
 *
 * @example
 * ```ts
 * import { nodeFs } from "snapbundle";
 * const fs = nodeFs();
 * const h = await fs.open("/tmp/x", "w");
 * await h.write(new TextEncoder().encode("hi"), 0);
 * await h.setLength(1 << 20); // a 1 MiB file holding 2 bytes of data
 * await h.close();
 * ```
 * @module
 */

/** What a path is. `lstat` reports `"symlink"` for links; `stat` follows them. */
export type FileKind = "file" | "directory" | "symlink" | "other";

/** The subset of `stat` the core needs. */
export interface FileInfo {
  readonly kind: FileKind;
  /** Apparent size in bytes. */
  readonly size: number;
  readonly mtimeMs: number;
  /**
   * Bytes actually allocated on disk (`st_blocks * 512`), or `null` where the
   * backend does not know (memfs). Lets tests see that holes stayed holes.
   */
  readonly allocatedBytes: number | null;
}

/**
 * How to open a file:
 * - `"r"` read only; the file must exist.
 * - `"r+"` read and write; the file must exist.
 * - `"w"` write; created if missing, truncated to zero if present.
 * - `"wx"` write; created, and `EEXIST` if the path exists (even as a dangling link).
 */
export type OpenMode = "r" | "r+" | "w" | "wx";

/** A run of bytes of a file that may hold data: `[offset, offset + length)`. */
export interface DataRange {
  readonly offset: number;
  readonly length: number;
}

/** An open file. Reads and writes are positional; there is no cursor. */
export interface FileHandle {
  /** Read up to `into.length` bytes at `position`; resolves the count, 0 at end of file. Holes read as zeros. */
  read(into: Uint8Array, position: number): Promise<number>;
  /** Write all of `data` at `position`, extending the file if needed. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Set the file's length. Growing it adds a hole (no blocks allocated on a real disk). */
  setLength(length: number): Promise<void>;
  /** `fstat` of the open file. */
  info(): Promise<FileInfo>;
  /** Flush data and metadata to stable storage (`fsync`). A no-op on memfs. */
  sync(): Promise<void>;
  /**
   * Optional: where `[from, to)` may hold data (`SEEK_DATA`/`SEEK_HOLE`), in
   * order; every byte outside the ranges reads as zero. Resolves `null` where
   * the platform cannot tell, and the caller reads everything. The `node:fs`
   * adapter answers on Deno and Bun (libc `lseek` through the host's FFI, `src/hosts/ffi.ts`, Linux), not on
   * Node (no FFI); memfs keeps no holes and does not answer.
   */
  dataRanges?(from: number, to: number): Promise<DataRange[] | null>;
  /** Close the handle. Closing twice is an error on no adapter; it is a no-op. */
  close(): Promise<void>;
}

/** Options of {@link FileSystem.remove}. */
export interface RemoveOptions {
  /** Remove a directory and everything below it. Links are removed, never followed. */
  readonly recursive?: boolean;
  /** A missing path is not an error. */
  readonly force?: boolean;
}

/** The filesystem operations the core uses, and nothing more. */
export interface FileSystem {
  /** A short label for messages and benchmarks, e.g. `"node:fs"` or `"memfs"`. */
  readonly label: string;
  /** Open a file. Like POSIX `open`, it follows a final symbolic link — except `"wx"`, which fails `EEXIST` on any link. The core `lstat`s first where that matters. */
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** `stat`: follows symbolic links. */
  stat(path: string): Promise<FileInfo>;
  /** `lstat`: never follows a link; a link is reported as `"symlink"`. */
  lstat(path: string): Promise<FileInfo>;
  /** Names in a directory (no `.`/`..`), in no particular order. */
  readdir(path: string): Promise<string[]>;
  /** Create a directory; with `recursive`, its missing parents too, and an existing directory is fine. */
  mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void>;
  /**
   * POSIX `rename`: atomic within one filesystem. A file replaces an existing
   * file; a directory replaces only an *empty* directory, and fails with
   * `ENOTEMPTY` (or `EEXIST`) over a non-empty one and `ENOTDIR` over a file
   * or link, and `EINVAL` for moving a directory into itself. A link is moved
   * as a link. Both adapters keep these rules (memfs needed help: see memfs.ts).
   */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file, link or (with `recursive`) a directory tree. Never follows links. Without `recursive`, any directory (even empty) fails `EISDIR`. */
  remove(path: string, options?: RemoveOptions): Promise<void>;
  /** Create a fresh directory `parent/prefixXXXXXX` that did not exist before; resolves its path. */
  makeTempDir(parent: string, prefix: string): Promise<string>;
  /** Create a symbolic link at `path` pointing to `target` (used by tests and conformance checks). */
  symlink(target: string, path: string): Promise<void>;
  /** `fsync` a directory so renames in it are durable. The path must be a directory (`ENOENT`/`ENOTDIR`); the sync itself is a no-op where unsupported (memfs, some platforms). */
  syncDir(path: string): Promise<void>;
}
