/**
 * POSIX path helpers for the core, which may not import `node:path`.
 *
 * @example
 * ```ts
 * import { join, dirname, basename } from "./path.js";
 * join("/home", "snapshots", "a"); // "/home/snapshots/a"
 * dirname("/home/snapshots/a");    // "/home/snapshots"
 * basename("/home/snapshots/a/");  // "a"
 * ```
 * @module
 */

/** Normalize a POSIX path: collapse `//`, `.` and `..` (never above the root of an absolute path). */
export function normalize(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(part);
  }
  const body = out.join("/");
  if (absolute) return "/" + body;
  return body === "" ? "." : body;
}

/** Join path segments and normalize the result. */
export function join(...parts: string[]): string {
  return normalize(parts.filter((p) => p !== "").join("/"));
}

/** Resolve `path` against `base` (an absolute directory) unless it is already absolute. */
export function resolve(base: string, path: string): string {
  return path.startsWith("/") ? normalize(path) : join(base, path);
}

/** The directory part of a path (`"/"` for a top-level entry). */
export function dirname(path: string): string {
  const p = normalize(path);
  const i = p.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return p.slice(0, i);
}

/** The last component of a path. */
export function basename(path: string): string {
  const p = normalize(path);
  const i = p.lastIndexOf("/");
  return i < 0 ? p : p.slice(i + 1);
}

/** True when `child` is `parent` or lies below it (both normalized, absolute). */
export function isWithin(parent: string, child: string): boolean {
  const p = normalize(parent);
  const c = normalize(child);
  return c === p || c.startsWith(p === "/" ? "/" : p + "/");
}
