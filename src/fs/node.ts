/**
 * The `node:fs` adapter: {@link FileSystem} over `node:fs/promises`, for
 * Node 20+, Deno 2 and Bun 1 (through their `node:fs` compatibility layers).
 *
 * Every rejection is an {@link FsError} whose `errno` is the POSIX code the
 * runtime reported (`err.code`); an error without a recognisable code becomes
 * `EIO`, with the original error as `cause`. The original error is always the
 * `cause`.
 *
 * Behaviour worth knowing (measured on Linux, ext4, with Node 20.20, Deno 2.9 and Bun 1.4):
 * - `open` follows symbolic links, like POSIX `open(2)` (`"w"` on a dangling
 *   link creates the link's target). Only `"wx"` never follows: it fails with
 *   `EEXIST` when anything, even a dangling link, is at the path. The core
 *   `lstat`s a path first when a link there would matter.
 * - `remove` `lstat`s first and calls `unlink` only for non-directories: Deno's
 *   `unlink` silently removes an *empty directory* (Node and Bun fail `EISDIR`),
 *   and Bun's `rm` reports `EFAULT` instead of `ENOTDIR` for a path below a file.
 * - `syncDir` opens the directory read-only and `fsync`s it. Linux accepts this
 *   on all three runtimes; platforms that refuse it (`EINVAL`, `EISDIR`,
 *   `EPERM`, `EBADF`, `ENOTSUP`/`EOPNOTSUPP`, e.g. Windows) make it a no-op.
 * - `allocatedBytes` is `st_blocks * 512`; all three runtimes fill `blocks`.
 *
 * @example
 * ```ts
 * import { nodeFs } from "snapbundle";
 * const fs = nodeFs();
 * const dir = await fs.makeTempDir("/tmp", "demo-");
 * const h = await fs.open(`${dir}/disk.img`, "wx");
 * await h.setLength(1 << 30); // 1 GiB, all hole
 * await h.write(new TextEncoder().encode("boot"), 0);
 * console.log((await h.info()).allocatedBytes); // a few KiB, not 1 GiB
 * await h.close();
 * await fs.remove(dir, { recursive: true });
 * ```
 * @module
 */

import * as fsp from "node:fs/promises";
import type { Stats } from "node:fs";
import { FsError } from "../errors.js";
import { checkOffset, kindOf, toFsError } from "./shared.js";
import type { FileHandle, FileInfo, FileKind, FileSystem, OpenMode, RemoveOptions } from "./types.js";

/**
 * Create the `node:fs` adapter. It keeps no state; one instance can be shared.
 *
 * @example
 * ```ts
 * import { nodeFs } from "snapbundle";
 * const fs = nodeFs();
 * console.log(fs.label);                   // "node:fs"
 * console.log(await fs.readdir("/tmp"));   // names only
 * ```
 */
export function nodeFs(): FileSystem {
  return new NodeFileSystem();
}

const OPEN_MODES: ReadonlySet<string> = new Set(["r", "r+", "w", "wx"]);
/** Codes with which a platform refuses to `fsync` a directory. */
const DIR_FSYNC_UNSUPPORTED: ReadonlySet<string> = new Set(["EINVAL", "EISDIR", "EPERM", "EBADF", "ENOTSUP", "EOPNOTSUPP"]);

class NodeFileSystem implements FileSystem {
  readonly label = "node:fs";

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    if (!OPEN_MODES.has(mode)) throw new FsError("EINVAL", "open", path, `unknown open mode ${JSON.stringify(mode)}`);
    try {
      return new NodeFileHandle(await fsp.open(path, mode), path);
    } catch (e) {
      throw toFsError(e, "open", path);
    }
  }

  async stat(path: string): Promise<FileInfo> {
    try {
      return toFileInfo(await fsp.stat(path));
    } catch (e) {
      throw toFsError(e, "stat", path);
    }
  }

  async lstat(path: string): Promise<FileInfo> {
    try {
      return toFileInfo(await fsp.lstat(path));
    } catch (e) {
      throw toFsError(e, "lstat", path);
    }
  }

  async readdir(path: string): Promise<string[]> {
    try {
      return await fsp.readdir(path);
    } catch (e) {
      throw toFsError(e, "readdir", path);
    }
  }

  async mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void> {
    try {
      // Node, Deno and Bun all fail EEXIST for a non-directory at `path`, and
      // ENOTDIR for a non-directory above it, with or without `recursive`.
      await fsp.mkdir(path, { recursive: options?.recursive === true });
    } catch (e) {
      throw toFsError(e, "mkdir", path);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      // rename(2) itself enforces the POSIX rules on all three runtimes.
      await fsp.rename(from, to);
    } catch (e) {
      throw toFsError(e, "rename", from, `to ${to}`);
    }
  }

  async remove(path: string, options?: RemoveOptions): Promise<void> {
    const force = options?.force === true;
    let st: Stats;
    try {
      st = await fsp.lstat(path);
    } catch (e) {
      const err = toFsError(e, "remove", path);
      if (force && err.errno === "ENOENT") return;
      throw err;
    }
    try {
      if (st.isDirectory()) {
        if (options?.recursive !== true) throw new FsError("EISDIR", "remove", path, "a directory needs { recursive: true }");
        // fs.rm never follows links inside the tree (checked on all three runtimes).
        await fsp.rm(path, { recursive: true, force });
      } else {
        // A link (even to a directory) is unlinked itself, never followed.
        await fsp.unlink(path);
      }
    } catch (e) {
      const err = toFsError(e, "remove", path);
      if (force && err.errno === "ENOENT") return;
      throw err;
    }
  }

  async makeTempDir(parent: string, prefix: string): Promise<string> {
    if (prefix.includes("/") || prefix.includes("\0")) {
      throw new FsError("EINVAL", "makeTempDir", parent, `prefix ${JSON.stringify(prefix)} must be a plain name`);
    }
    try {
      // mkdtemp(3): O_EXCL-style creation with a random 6-character suffix.
      return await fsp.mkdtemp(parent.endsWith("/") ? parent + prefix : `${parent}/${prefix}`);
    } catch (e) {
      throw toFsError(e, "makeTempDir", parent);
    }
  }

  async symlink(target: string, path: string): Promise<void> {
    try {
      await fsp.symlink(target, path);
    } catch (e) {
      throw toFsError(e, "symlink", path, `to ${target}`);
    }
  }

  async syncDir(path: string): Promise<void> {
    let dir: fsp.FileHandle;
    try {
      dir = await fsp.open(path, "r");
    } catch (e) {
      const err = toFsError(e, "syncDir", path);
      // Windows cannot open a directory at all; nothing to sync then.
      if (err.errno === "EISDIR" || err.errno === "EPERM") return;
      throw err;
    }
    try {
      if (!(await dir.stat()).isDirectory()) throw new FsError("ENOTDIR", "syncDir", path);
      try {
        await dir.sync();
      } catch (e) {
        const err = toFsError(e, "syncDir", path);
        if (!DIR_FSYNC_UNSUPPORTED.has(err.errno)) throw err;
      }
    } catch (e) {
      throw toFsError(e, "syncDir", path);
    } finally {
      await dir.close().catch(() => undefined);
    }
  }
}

class NodeFileHandle implements FileHandle {
  #fh: fsp.FileHandle;
  #path: string;
  #closed = false;

  constructor(fh: fsp.FileHandle, path: string) {
    this.#fh = fh;
    this.#path = path;
  }

  #check(op: string): void {
    if (this.#closed) throw new FsError("EBADF", op, this.#path, "the handle is closed");
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    this.#check("read");
    checkOffset("read", this.#path, position, "position");
    if (into.length === 0) return 0;
    try {
      const { bytesRead } = await this.#fh.read(into, 0, into.length, position);
      return bytesRead;
    } catch (e) {
      throw toFsError(e, "read", this.#path);
    }
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    this.#check("write");
    checkOffset("write", this.#path, position, "position");
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await this.#fh.write(data, done, data.length - done, position + done);
        if (bytesWritten <= 0) {
          throw new FsError("EIO", "write", this.#path, `no progress at offset ${position + done}`);
        }
        done += bytesWritten;
      }
    } catch (e) {
      throw toFsError(e, "write", this.#path);
    }
  }

  async setLength(length: number): Promise<void> {
    this.#check("setLength");
    checkOffset("setLength", this.#path, length, "length");
    try {
      await this.#fh.truncate(length);
    } catch (e) {
      throw toFsError(e, "setLength", this.#path);
    }
  }

  async info(): Promise<FileInfo> {
    this.#check("info");
    try {
      return toFileInfo(await this.#fh.stat());
    } catch (e) {
      throw toFsError(e, "info", this.#path);
    }
  }

  async sync(): Promise<void> {
    this.#check("sync");
    try {
      await this.#fh.sync();
    } catch (e) {
      throw toFsError(e, "sync", this.#path);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#fh.close();
    } catch (e) {
      throw toFsError(e, "close", this.#path);
    }
  }
}



function toFileInfo(st: Stats): FileInfo {
  const blocks: unknown = st.blocks;
  return {
    kind: kindOf(st),
    size: st.size,
    mtimeMs: st.mtimeMs,
    allocatedBytes: typeof blocks === "number" && Number.isFinite(blocks) ? blocks * 512 : null,
  };
}



