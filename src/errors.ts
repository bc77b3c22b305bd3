/**
 * Typed errors. Every error snapbundle raises on purpose is a
 * {@link SnapbundleError}; its message names the file, entry or snapshot at
 * fault and the rule that was broken, so it can be shown to a user as is.
 *
 * @example
 * ```ts
 * import { SnapshotNotFound, SnapbundleError } from "snapbundle";
 * try {
 *   await home.open("nope");
 * } catch (e) {
 *   if (e instanceof SnapshotNotFound) console.error(e.message);
 *   else throw e;
 * }
 * ```
 * @module
 */

/** Base class of every error snapbundle raises on purpose. */
export class SnapbundleError extends Error {
  /** A stable machine-readable code, e.g. `"snapshot-not-found"`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No snapshot answers to a name, digest or path. */
export class SnapshotNotFound extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("snapshot-not-found", message, options);
  }
}

/** A snapshot (or promote target) already exists where one would be created. */
export class SnapshotAlreadyExists extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("snapshot-already-exists", message, options);
  }
}

/**
 * A load found the bundle's head snapshot installed already (same digest) and
 * installed nothing. `existing` is the installed snapshot's directory.
 */
export class SnapshotAlreadyInstalled extends SnapshotAlreadyExists {
  constructor(message: string, readonly existing: string, options?: { cause?: unknown }) {
    super(message, options);
    (this as { code: string }).code = "snapshot-already-installed";
  }
}

/** A snapshot's upper does not match the integrity its manifest records. */
export class SnapshotIntegrityError extends SnapbundleError {
  /** The upper file that does not match, when it is a file on disk (not an entry streaming past in a bundle). */
  declare readonly path?: string;
  constructor(message: string, options?: { cause?: unknown; path?: string }) {
    super("snapshot-integrity", message, options);
    if (options?.path !== undefined) Object.defineProperty(this, "path", { value: options.path, enumerable: true, configurable: true, writable: true });
  }
}

/** A `manifest.json` does not parse or does not validate (docs/format.md §3). */
export class InvalidManifest extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid-manifest", message, options);
  }
}

/** A snapshot artifact is malformed: its upper is missing, a link, or the wrong size. */
export class InvalidSnapshot extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid-snapshot", message, options);
  }
}

/** A snapshot cannot be removed because indexed snapshots name it as parent. */
export class SnapshotInUse extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("snapshot-in-use", message, options);
  }
}

/** An archive is malformed, truncated, or breaks the load grammar (docs/format.md §8.3). */
export class ArchiveError extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("archive", message, options);
  }
}

/** The zstd stream is corrupt, truncated, or needs a window the decoder cannot hold. */
export class CompressionError extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("compression", message, options);
  }
}

/** The image cache is missing, inconsistent, or conflicts with what is installed. */
export class ImageCacheError extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("image-cache", message, options);
  }
}

/** A caller passed an argument that breaks a documented rule (e.g. a bad name). */
export class InvalidArgument extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid-argument", message, options);
  }
}

/**
 * snapbundle's own WebAssembly (its zstd) cannot be loaded because no reader
 * of its `.wasm` files is installed: `snapbundle` installs the Node/Deno/Bun
 * host, which reads them; code that uses only `snapbundle/core` installs a
 * host with a `readWasm` first (`installHost`, `src/host.ts`).
 *
 * @example
 * ```ts
 * import { installHost, WasmUnavailable } from "snapbundle/core";
 * try {
 *   await store.save("base", out);
 * } catch (e) {
 *   if (!(e instanceof WasmUnavailable)) throw e;
 *   installHost({ name: "deno", pid: Deno.pid, readWasm: (url) => Deno.readFile(url) });
 * }
 * ```
 */
export class WasmUnavailable extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("wasm-unavailable", message, options);
  }
}

/** What the commonest errno codes mean, for messages a user reads. */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EEXIST: "file exists",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EIO: "input/output error",
  EXDEV: "on another filesystem",
  EMFILE: "too many open files",
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EBUSY: "device or resource busy",
  EFBIG: "file too large",
};

/**
 * A filesystem operation failed. `errno` is the POSIX code the adapter saw
 * (`ENOENT`, `ENOSPC`, `EIO`, …), `op` the operation and `path` its subject.
 */
export class FsError extends SnapbundleError {
  readonly errno: string;
  readonly op: string;
  readonly path: string;
  constructor(errno: string, op: string, path: string, detail?: string, options?: { cause?: unknown }) {
    const words = ERRNO_WORDS[errno];
    const said = [words, detail].filter((x) => x).join("; ");
    super("fs", `${op} ${path}: ${errno}${said ? ` (${said})` : ""}`, options);
    this.errno = errno;
    this.op = op;
    this.path = path;
  }
}

/** True when `e` is an {@link FsError} with the given errno (any errno if omitted). */
export function isFsError(e: unknown, errno?: string): e is FsError {
  return e instanceof FsError && (errno === undefined || e.errno === errno);
}

/**
 * An operation stopped because its `AbortSignal` fired (e.g. the CLI caught
 * SIGINT). Whatever the operation had made is undone, as for any failure.
 * `reason` is what the signal carried (the CLI passes the signal's name).
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * ac.abort();
 * try {
 *   await store.save("base", "/tmp/base.tar.zst", { signal: ac.signal });
 * } catch (e) {
 *   if (e instanceof OperationAborted) console.error("interrupted");
 * }
 * ```
 */
export class OperationAborted extends SnapbundleError {
  readonly reason: unknown;
  constructor(message = "the operation was aborted", options?: { cause?: unknown; reason?: unknown }) {
    super("aborted", message, options);
    this.reason = options?.reason;
  }
}

/**
 * The output path of a save exists and replacing it was not asked for
 * (`overwrite: true`, the CLI's `--force`), or cannot be written there (a
 * directory, a missing parent directory).
 *
 * @example
 * ```ts
 * try { await store.save("base", "/tmp/base.tar.zst"); } catch (e) { if (e instanceof OutputRefused) console.error(e.message); }
 * ```
 */
export class OutputRefused extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("output-refused", message, options);
  }
}

/**
 * Add context to an error: `label` goes before its message (`"label: message"`),
 * or, with `"after"`, after it (`"message label"`); the error keeps its class,
 * code and cause. The one place snapbundle rewrites a message, as node-tar's
 * `warn` adds its context to an error in one place. A value that is not an
 * Error passes through unchanged.
 *
 * @example
 * ```ts
 * throw labelled('"backup.tar.zst"', e);                             // "backup.tar.zst": truncated …
 * throw labelled("(and could not undo: /home/x: EBUSY)", e, "after"); // … (and could not undo: …)
 * ```
 */
export function labelled<E>(label: string, error: E, where: "before" | "after" = "before"): E {
  if (error instanceof Error) error.message = where === "before" ? `${label}: ${error.message}` : `${error.message} ${label}`;
  return error;
}

/**
 * A registry refused or failed a request, or served bytes that do not match
 * their digest. `reference` is the OCI reference being pushed or pulled,
 * `status` the HTTP status (0 when no response came), `reason` a stable
 * word: `unauthorized` (401), `denied` (403), `not-found` (404),
 * `rate-limited` (429), `server` (5xx), `digest-mismatch`, `network`,
 * `protocol`. Messages never carry a credential.
 *
 * @example
 * ```ts
 * try { await pullSnapshot(store, "localhost:5000/snaps:base"); } catch (e) { if (e instanceof RegistryError && e.reason === "not-found") console.error(e.message); }
 * ```
 */
export class RegistryError extends SnapbundleError {
  constructor(
    message: string,
    readonly reference: string,
    readonly reason: "unauthorized" | "denied" | "not-found" | "rate-limited" | "server" | "digest-mismatch" | "network" | "protocol",
    readonly status = 0,
    options?: { cause?: unknown },
  ) {
    super("registry", message, options);
  }
}
