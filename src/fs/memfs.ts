/**
 * The `memfs` adapter: {@link FileSystem} over an in-memory
 * [memfs](https://github.com/streamich/memfs) volume, for tests, browsers and
 * benchmarks. memfs is imported only as a type: the caller creates the volume
 * (`new Volume()` or `memfs().vol`) and snapbundle never loads memfs itself.
 *
 * Each method runs memfs's *synchronous* API inside one call, so the adapter's
 * extra checks and the operation they guard are atomic with respect to other
 * JavaScript. Every rejection is an {@link FsError} carrying the errno memfs
 * reported (`err.code`), or `EIO` with the original error as `cause`.
 *
 * memfs (checked with 4.80) departs from POSIX in several places; the adapter
 * restores POSIX behaviour, matching {@link import("./node.js").nodeFs}:
 * - **Parent that is a symlink.** memfs's `mkdir`, `symlink`, `rename`,
 *   `unlink`, `lstat`, `rm` and `mkdtemp` fail `ENOTDIR`/`ENOENT` when the
 *   path's *parent* component is a link to a directory (`/link/x`). The adapter
 *   resolves the parent with `realpathSync` and operates on `realParent/name`.
 * - **rename.** memfs's `rename` replaces whatever is at the target: a
 *   directory over a non-empty directory (its contents silently vanish), over a
 *   file or over a link, a file over a directory, and a directory into its own
 *   subdirectory (the tree becomes unreachable). The adapter `lstat`s both ends
 *   first and fails `ENOTEMPTY`, `ENOTDIR`, `EISDIR` or `EINVAL` as Linux does.
 *   memfs's `rename` also *follows* a link at the source, moving the link's
 *   target and leaving the link behind; the adapter moves the link itself (as
 *   a hard link to the same link node plus `unlink`, so it keeps its inode).
 *   Renaming onto another name of the same file is a no-op, as in POSIX.
 * - **rm.** memfs's `rm` follows a final link: removing a link to a directory
 *   deletes the *directory* and keeps the link, and a dangling link is
 *   `ENOENT`. The adapter `lstat`s first and `unlink`s links and files;
 *   directories need `recursive` and go through `rmdir(recursive)`, which
 *   detaches the tree without following links inside it. Without `recursive`,
 *   a directory is `EISDIR` (memfs's own `rm` reports `ERR_FS_EISDIR`).
 * - **mkdir recursive.** memfs's `mkdirp` succeeds silently when a *file* is
 *   at the path. The adapter walks the components itself: a non-directory at
 *   the path is `EEXIST`, above it `ENOTDIR`, an existing directory is fine.
 * - **Handles.** memfs lets an `"r"` descriptor write and truncate, a `"w"`
 *   descriptor read, and reads a directory as empty. The adapter rejects these
 *   as Linux does: `EBADF` for write on `"r"` and read on `"w"`/`"wx"`,
 *   `EINVAL` for `setLength` on `"r"`, `EISDIR` for reading a directory.
 * - `sync` and `syncDir` are no-ops (`syncDir` still checks that the path is a
 *   directory); `allocatedBytes` is always `null` (memfs stores holes as
 *   zero-filled memory); paths must be absolute (memfs would resolve a relative
 *   path against the host's `process.cwd()`).
 *
 * @example
 * ```ts
 * import { Volume } from "memfs";
 * import { memFs } from "snapbundle";
 * const vol = new Volume();
 * vol.mkdirSync("/work");
 * const fs = memFs(vol);
 * const h = await fs.open("/work/a", "wx");
 * await h.write(new TextEncoder().encode("hi"), 0);
 * await h.close();
 * console.log(await fs.readdir("/work")); // ["a"]
 * ```
 * @module
 */

import type { Volume } from "memfs";
import { FsError } from "../errors.js";
import { checkOffset, kindOf, toFsError } from "./shared.js";
import type { FileHandle, FileInfo, FileKind, FileSystem, OpenMode, RemoveOptions } from "./types.js";

/** The `Stats` a memfs volume returns (only the fields the adapter reads). */
interface MemStats {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/**
 * Create a {@link FileSystem} over a memfs volume. The volume is used as is;
 * create the directories you need first (or with `fs.mkdir`).
 *
 * @example
 * ```ts
 * import { memfs } from "memfs";
 * import { memFs } from "snapbundle";
 * const fs = memFs(memfs({ "/data": null }).vol);
 * const tmp = await fs.makeTempDir("/data", "t-"); // "/data/t-xxxxxx"
 * ```
 */
export function memFs(volume: Volume): FileSystem {
  return new MemFileSystem(volume);
}

const OPEN_MODES: ReadonlySet<string> = new Set(["r", "r+", "w", "wx"]);

class MemFileSystem implements FileSystem {
  readonly label = "memfs";
  readonly #vol: Volume;

  constructor(volume: Volume) {
    this.#vol = volume;
  }

  /**
   * Validate `path` and resolve its parent directory through links (see the
   * module doc: memfs mishandles a link as the last parent component). When the
   * parent does not resolve, the path is returned as given and memfs reports
   * the error of the operation itself.
   */
  #canon(op: string, path: string): string {
    if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
      throw new FsError("EINVAL", op, String(path), "path must be absolute and contain no NUL");
    }
    let end = path.length;
    while (end > 1 && path[end - 1] === "/") end--;
    const trimmed = path.slice(0, end);
    const slash = trimmed.lastIndexOf("/");
    const base = trimmed.slice(slash + 1);
    if (base === "" || base === "." || base === "..") return trimmed;
    const dir = slash === 0 ? "/" : trimmed.slice(0, slash);
    let real: string;
    try {
      real = String(this.#vol.realpathSync(dir));
    } catch {
      return trimmed;
    }
    return real === "/" ? `/${base}` : `${real}/${base}`;
  }

  /** `lstat`, or `undefined` when nothing is at `path` (other errors throw). */
  #lstatOrNone(path: string): MemStats | undefined {
    try {
      return this.#vol.lstatSync(path);
    } catch (e) {
      if (codeOf(e) === "ENOENT") return undefined;
      throw e;
    }
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    try {
      if (!OPEN_MODES.has(mode)) throw new FsError("EINVAL", "open", path, `unknown open mode ${JSON.stringify(mode)}`);
      const fd = this.#vol.openSync(this.#canon("open", path), mode);
      let isDir: boolean;
      try {
        isDir = this.#vol.fstatSync(fd).isDirectory();
      } catch (e) {
        this.#vol.closeSync(fd);
        throw e;
      }
      return new MemFileHandle(this.#vol, fd, path, mode, isDir);
    } catch (e) {
      throw toFsError(e, "open", path);
    }
  }

  async stat(path: string): Promise<FileInfo> {
    try {
      return toFileInfo(this.#vol.statSync(this.#canon("stat", path)));
    } catch (e) {
      throw toFsError(e, "stat", path);
    }
  }

  async lstat(path: string): Promise<FileInfo> {
    try {
      return toFileInfo(this.#vol.lstatSync(this.#canon("lstat", path)));
    } catch (e) {
      throw toFsError(e, "lstat", path);
    }
  }

  async readdir(path: string): Promise<string[]> {
    try {
      return (this.#vol.readdirSync(this.#canon("readdir", path)) as unknown[]).map((n) => String(n));
    } catch (e) {
      throw toFsError(e, "readdir", path);
    }
  }

  async mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<void> {
    try {
      const target = this.#canon("mkdir", path);
      if (options?.recursive !== true) {
        this.#vol.mkdirSync(target);
        return;
      }
      // memfs's mkdirp accepts a file at the path; walk the components instead.
      const parts = target.split("/").filter((p) => p !== "");
      let prefix = "";
      for (let i = 0; i < parts.length; i++) {
        prefix += `/${parts[i]}`;
        let st: MemStats | undefined;
        try {
          st = this.#vol.statSync(prefix);
        } catch (e) {
          if (codeOf(e) !== "ENOENT") throw e;
        }
        if (st === undefined) {
          // A dangling link here makes mkdir fail EEXIST, as `mkdir -p` does.
          this.#vol.mkdirSync(this.#canon("mkdir", prefix));
        } else if (!st.isDirectory()) {
          throw new FsError(i === parts.length - 1 ? "EEXIST" : "ENOTDIR", "mkdir", path, `${prefix} is not a directory`);
        }
      }
    } catch (e) {
      throw toFsError(e, "mkdir", path);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const detail = `to ${to}`;
    try {
      const src = this.#canon("rename", from);
      const dst = this.#canon("rename", to);
      const s = this.#vol.lstatSync(src);
      const d = this.#lstatOrNone(dst);
      if (d !== undefined && d.ino === s.ino) return; // the same file: POSIX does nothing
      if (s.isDirectory()) {
        if (dst === src || dst.startsWith(src === "/" ? "/" : `${src}/`)) {
          throw new FsError("EINVAL", "rename", from, `${detail}: a directory cannot move into itself`);
        }
        if (d !== undefined && !d.isDirectory()) throw new FsError("ENOTDIR", "rename", from, `${detail}: target is not a directory`);
        if (d !== undefined && this.#vol.readdirSync(dst).length > 0) {
          throw new FsError("ENOTEMPTY", "rename", from, `${detail}: target directory is not empty`);
        }
      } else if (d?.isDirectory()) {
        throw new FsError("EISDIR", "rename", from, `${detail}: target is a directory`);
      }
      if (s.isSymbolicLink()) {
        // memfs's rename would move the link's target; move the link node instead.
        const parent = dst.slice(0, Math.max(dst.lastIndexOf("/"), 1));
        if (!this.#vol.statSync(parent).isDirectory()) throw new FsError("ENOTDIR", "rename", from, detail);
        if (d !== undefined) this.#vol.unlinkSync(dst);
        this.#vol.linkSync(src, dst); // link(2) does not follow a link at the source
        this.#vol.unlinkSync(src);
        return;
      }
      this.#vol.renameSync(src, dst);
    } catch (e) {
      throw toFsError(e, "rename", from, detail);
    }
  }

  async remove(path: string, options?: RemoveOptions): Promise<void> {
    try {
      const target = this.#canon("remove", path);
      let st: MemStats;
      try {
        st = this.#vol.lstatSync(target);
      } catch (e) {
        if (options?.force === true && codeOf(e) === "ENOENT") return;
        throw e;
      }
      if (st.isDirectory()) {
        if (options?.recursive !== true) throw new FsError("EISDIR", "remove", path, "a directory needs { recursive: true }");
        this.#vol.rmdirSync(target, { recursive: true });
      } else {
        this.#vol.unlinkSync(target); // a link itself, never its target
      }
    } catch (e) {
      throw toFsError(e, "remove", path);
    }
  }

  async makeTempDir(parent: string, prefix: string): Promise<string> {
    try {
      if (prefix.includes("/") || prefix.includes("\0")) {
        throw new FsError("EINVAL", "makeTempDir", parent, `prefix ${JSON.stringify(prefix)} must be a plain name`);
      }
      this.#canon("makeTempDir", parent);
      const real = String(this.#vol.realpathSync(parent));
      const base = real.endsWith("/") ? real + prefix : `${real}/${prefix}`;
      let made: string | undefined;
      if (typeof this.#vol.mkdtempSync === "function") {
        made = String(this.#vol.mkdtempSync(base));
      } else {
        for (let attempt = 0; made === undefined; attempt++) {
          const candidate = base + randomSuffix();
          try {
            this.#vol.mkdirSync(candidate);
            made = candidate;
          } catch (e) {
            if (codeOf(e) !== "EEXIST" || attempt >= 100) throw e;
          }
        }
      }
      const name = made.slice(made.lastIndexOf("/") + 1);
      return parent.endsWith("/") ? parent + name : `${parent}/${name}`;
    } catch (e) {
      throw toFsError(e, "makeTempDir", parent);
    }
  }

  async symlink(target: string, path: string): Promise<void> {
    try {
      this.#vol.symlinkSync(target, this.#canon("symlink", path));
    } catch (e) {
      throw toFsError(e, "symlink", path, `to ${target}`);
    }
  }

  async syncDir(path: string): Promise<void> {
    try {
      if (!this.#vol.statSync(this.#canon("syncDir", path)).isDirectory()) {
        throw new FsError("ENOTDIR", "syncDir", path);
      }
      // Nothing to flush: memfs lives in memory.
    } catch (e) {
      throw toFsError(e, "syncDir", path);
    }
  }
}

class MemFileHandle implements FileHandle {
  readonly #vol: Volume;
  readonly #fd: number;
  readonly #path: string;
  readonly #readable: boolean;
  readonly #writable: boolean;
  readonly #isDir: boolean;
  #closed = false;

  constructor(vol: Volume, fd: number, path: string, mode: OpenMode, isDir: boolean) {
    this.#vol = vol;
    this.#fd = fd;
    this.#path = path;
    this.#readable = mode === "r" || mode === "r+";
    this.#writable = mode !== "r";
    this.#isDir = isDir;
  }

  #check(op: string): void {
    if (this.#closed) throw new FsError("EBADF", op, this.#path, "the handle is closed");
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    try {
      this.#check("read");
      checkOffset("read", this.#path, position, "position");
      if (this.#isDir) throw new FsError("EISDIR", "read", this.#path, "cannot read a directory");
      if (!this.#readable) throw new FsError("EBADF", "read", this.#path, "handle is not open for reading");
      if (into.length === 0) return 0;
      return this.#vol.readSync(this.#fd, into, 0, into.length, position);
    } catch (e) {
      throw toFsError(e, "read", this.#path);
    }
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    try {
      this.#check("write");
      checkOffset("write", this.#path, position, "position");
      if (!this.#writable) throw new FsError("EBADF", "write", this.#path, "handle is not open for writing");
      let done = 0;
      while (done < data.length) {
        const n = this.#vol.writeSync(this.#fd, data, done, data.length - done, position + done);
        if (n <= 0) throw new FsError("EIO", "write", this.#path, `no progress at offset ${position + done}`);
        done += n;
      }
    } catch (e) {
      throw toFsError(e, "write", this.#path);
    }
  }

  async setLength(length: number): Promise<void> {
    try {
      this.#check("setLength");
      checkOffset("setLength", this.#path, length, "length");
      if (!this.#writable) throw new FsError("EINVAL", "setLength", this.#path, "handle is not open for writing");
      this.#vol.ftruncateSync(this.#fd, length);
    } catch (e) {
      throw toFsError(e, "setLength", this.#path);
    }
  }

  async info(): Promise<FileInfo> {
    try {
      this.#check("info");
      return toFileInfo(this.#vol.fstatSync(this.#fd));
    } catch (e) {
      throw toFsError(e, "info", this.#path);
    }
  }

  async sync(): Promise<void> {
    this.#check("sync"); // nothing to flush
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#vol.closeSync(this.#fd);
    } catch (e) {
      throw toFsError(e, "close", this.#path);
    }
  }
}



function toFileInfo(st: MemStats): FileInfo {
  return { kind: kindOf(st), size: st.size, mtimeMs: st.mtimeMs, allocatedBytes: null };
}

const SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  let s = "";
  for (const b of bytes) s += SUFFIX_CHARS[b % SUFFIX_CHARS.length];
  return s;
}

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}



