/**
 * What both filesystem adapters share: mapping whatever a runtime or memfs
 * threw to an {@link FsError}, argument checks, and `Stats` → kind.
 * Platform-neutral (no `node:` imports), so either adapter can use it.
 *
 * @example
 * ```ts
 * try { fs.openSync(p, "r"); } catch (e) { throw toFsError(e, "open", p); }
 * ```
 * @module
 */

import { FsError } from "../errors.js";
import type { FileKind } from "./types.js";

const ERRNO_SHAPE = /^E[A-Z0-9]+$/;

/**
 * Map anything thrown to an {@link FsError}: `err.code` when it is a POSIX
 * errno; Node's `ERR_FS_*` system errors carry it in `err.info.code`;
 * argument errors become `EINVAL`; everything else `EIO`. The original is
 * kept as `cause`.
 */
export function toFsError(e: unknown, op: string, path: string, detail?: string): FsError {
  if (e instanceof FsError) return e;
  const err = e as { code?: unknown; info?: { code?: unknown }; message?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : undefined;
  const infoCode = typeof err?.info?.code === "string" ? err.info.code : undefined;
  let errno: string;
  let extra = detail;
  if (code !== undefined && ERRNO_SHAPE.test(code)) errno = code;
  else if (infoCode !== undefined && ERRNO_SHAPE.test(infoCode)) errno = infoCode;
  else if (code !== undefined && (code.startsWith("ERR_INVALID_ARG") || code === "ERR_OUT_OF_RANGE")) {
    errno = "EINVAL";
    extra = joinDetail(detail, String(err?.message ?? code));
  } else {
    errno = "EIO";
    extra = joinDetail(detail, String(err?.message ?? e));
  }
  return new FsError(errno, op, path, extra, { cause: e });
}

function joinDetail(a: string | undefined, b: string): string {
  return a === undefined ? b : `${a}; ${b}`;
}

/** `EINVAL` unless `value` is a non-negative safe integer. */
export function checkOffset(op: string, path: string, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new FsError("EINVAL", op, path, `${what} ${value} is not a non-negative safe integer`);
  }
}

/** The {@link FileKind} of a `Stats`-like object (node:fs or memfs). */
export function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileKind {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}
