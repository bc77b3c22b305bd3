/**
 * The closed grammar of archive entries a load accepts (SPEC §4). Each rule
 * lives in one function here; anything the grammar does not name fails the
 * whole load with an {@link ArchiveError} naming the entry and the rule.
 *
 * | entry              | allowed                                                        |
 * |--------------------|----------------------------------------------------------------|
 * | snapshot directory | `<prefix>/`                                                    |
 * | snapshot file      | `<prefix>/<file>`                                              |
 * | cache directories  | `cache/`, `cache/<kind>/` with kind ∈ manifests, layers, fsmeta, vmdk |
 * | cache file         | `cache/manifests/*.json`, `cache/{layers,fsmeta}/*.erofs`, `cache/vmdk/*.vmdk` |
 *
 * @example
 * ```ts
 * import { classifyEntry } from "./grammar.js";
 * classifyEntry("sha256-0123456789abcdef/manifest.json", "file");
 * // { area: "snapshot", prefix: "sha256-0123456789abcdef", file: "manifest.json" }
 * classifyEntry("../etc/passwd", "file"); // throws ArchiveError
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import { CACHE_KINDS, type CacheKind } from "../layout.js";

/** Where an accepted entry goes. */
export type EntryPlace =
  | { readonly area: "snapshot"; readonly prefix: string; readonly file: null }
  | { readonly area: "snapshot"; readonly prefix: string; readonly file: string }
  | { readonly area: "cache"; readonly kind: CacheKind | null; readonly file: null }
  | { readonly area: "cache"; readonly kind: CacheKind; readonly file: string };

/** The entry kinds the reader reports that a load may accept. */
export type AcceptedKind = "file" | "directory";

const KIND_WORDS: Record<string, string> = {
  symlink: "a symbolic link",
  hardlink: "a hard link",
  char: "a character device",
  block: "a block device",
  fifo: "a FIFO",
};

/**
 * Only regular, contiguous and directory entries (old-GNU sparse entries are
 * regular files stored sparsely). Links of any kind, devices, FIFOs, GNU
 * long-name/long-link records, global PAX headers and every other type are refused.
 */
export function validateArchiveEntryType(entry: { path: string; typeflag: string; kind: string; headerOffset: number }): AcceptedKind {
  const t = entry.typeflag;
  if (t === "0" || t === "\0" || t === "7" || t === "S") return "file";
  if (t === "5") return "directory";
  const what =
    KIND_WORDS[entry.kind] ??
    (t === "L" ? "a GNU long-name record" : t === "K" ? "a GNU long-link record" : t === "g" ? "a global PAX header" : `type ${JSON.stringify(t)}`);
  throw new ArchiveError(`archive entry ${JSON.stringify(entry.path)} at byte ${entry.headerOffset} is ${what}; only regular files and directories may be loaded`);
}

/**
 * Split an entry path into normal UTF-8 components. A directory may end in
 * one `/`. Refused: absolute paths, empty, `.` and `..` components,
 * backslashes and NUL.
 */
export function normalComponents(path: string, kind: AcceptedKind): string[] {
  const fail = (rule: string): never => {
    throw new ArchiveError(`archive entry ${JSON.stringify(path)}: ${rule}`);
  };
  if (path === "") fail("the path is empty");
  if (path.startsWith("/")) fail("absolute paths are not allowed");
  if (path.includes("\0")) fail("NUL in a path is not allowed");
  if (path.includes("\\")) fail("backslashes in a path are not allowed");
  let body = path;
  if (body.endsWith("/")) {
    if (kind !== "directory") fail("a file path must not end in '/'");
    body = body.slice(0, -1);
  }
  const parts = body.split("/");
  for (const p of parts) {
    if (p === "") fail("empty path components are not allowed");
    if (p === ".") fail('path component "." is not allowed');
    if (p === "..") fail('path component ".." is not allowed');
  }
  return parts;
}

/** Snapshot entries: `<prefix>/` for a directory, `<prefix>/<file>` for a file; a prefix may not start with `.`. */
export function validateSnapshotArchivePath(path: string, parts: string[], kind: AcceptedKind): EntryPlace {
  const prefix = parts[0]!;
  if (prefix.startsWith(".")) throw new ArchiveError(`archive entry ${JSON.stringify(path)}: a snapshot directory name must not start with "."`);
  if (kind === "directory" && parts.length === 1) return { area: "snapshot", prefix, file: null };
  if (kind === "file" && parts.length === 2) return { area: "snapshot", prefix, file: parts[1]! };
  throw new ArchiveError(
    `archive entry ${JSON.stringify(path)}: unsupported snapshot path (a snapshot ${kind} must be ${kind === "file" ? "<dir>/<file>, exactly two components" : "<dir>/, one component"})`,
  );
}

/** Cache entries: `cache/`, `cache/<kind>/`, `cache/<kind>/<file><ext>` for the known kinds. */
export function validateCacheArchivePath(path: string, parts: string[], kind: AcceptedKind): EntryPlace {
  const fail = (rule: string): never => {
    throw new ArchiveError(`archive entry ${JSON.stringify(path)}: unsupported cache path (${rule})`);
  };
  const cacheKind = parts[1];
  if (cacheKind !== undefined && !Object.hasOwn(CACHE_KINDS, cacheKind)) fail(`unknown cache kind ${JSON.stringify(cacheKind)}; known: ${Object.keys(CACHE_KINDS).join(", ")}`);
  if (kind === "directory") {
    if (parts.length === 1) return { area: "cache", kind: null, file: null };
    if (parts.length === 2) return { area: "cache", kind: cacheKind as CacheKind, file: null };
    return fail("cache directories are cache/ and cache/<kind>/ only");
  }
  if (parts.length !== 3) return fail("a cache file must be cache/<kind>/<file>");
  const ext = CACHE_KINDS[cacheKind as CacheKind];
  const file = parts[2]!;
  if (!file.endsWith(ext)) fail(`files in cache/${cacheKind}/ must end in ${ext}`);
  return { area: "cache", kind: cacheKind as CacheKind, file };
}

/** Apply the whole grammar to one entry: components, then the snapshot or cache rule. */
export function classifyEntry(path: string, kind: AcceptedKind): EntryPlace {
  const parts = normalComponents(path, kind);
  return parts[0] === "cache" ? validateCacheArchivePath(path, parts, kind) : validateSnapshotArchivePath(path, parts, kind);
}
