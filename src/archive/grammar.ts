/**
 * The closed grammar of archive entries a load accepts (docs/format.md §8.3, §9.5) — the one
 * home of every entry rule. Anything the grammar does not name fails the
 * whole load with an {@link ArchiveError} that carries the archive's label,
 * names the entry and states the rule.
 *
 * | entry              | allowed                                                        |
 * |--------------------|----------------------------------------------------------------|
 * | snapshot directory | `<prefix>/` (optional, anywhere)                               |
 * | snapshot file      | `<prefix>/manifest.json`, `<prefix>/<upper file its manifest names>` |
 * | cache directories  | `cache/`, `cache/<kind>/` with kind ∈ manifests, layers, fsmeta, vmdk |
 * | cache file         | `cache/manifests/*.json`, `cache/{layers,fsmeta}/*.erofs`, `cache/vmdk/*.vmdk` |
 *
 * ## The checker: {@link BundleGrammar}
 *
 * A small stateful object the unpack step feeds, in archive order:
 *
 * 1. `admit(entry)` for every entry the tar reader yields (the reader has
 *    already decided its kind and applied PAX/sparse records). It applies the
 *    type, path, duplicate, size, membership and apparent-size rules that can
 *    be decided now and answers what to do with the entry: make a directory
 *    (`"directory"`), read a small document whole and hand it back
 *    (`"manifest"`, with the byte bound), or stream the data (`"file"`).
 * 2. `manifest(place, parsed)` once a snapshot's manifest has been read and
 *    parsed: the files of that snapshot seen so far (in any order) are
 *    checked against it; later ones are checked on `admit`.
 * 3. `end()` after the end-of-archive marker: the whole-archive rules (a
 *    manifest exists; no directory without a snapshot; every snapshot file
 *    has its manifest; every manifest's upper came). Resolves
 *    {@link BundleContents}: what the archive holds, in archive order.
 *
 * The checker never touches a filesystem: the unpack step decides where an
 * admitted entry goes (staging, or nowhere for a verify that installs
 * nothing).
 *
 * ## The microsandbox 0.6 layout
 *
 * | entry              | allowed                                                        |
 * |--------------------|----------------------------------------------------------------|
 * | inventory          | `archive.json` (≤ 4 MiB, read whole)                            |
 * | descriptor         | `snapshots/<64hex>/snapshot.json` (≤ 1 MiB, read whole)          |
 * | payload            | `files/<64hex>/<name ≤ 255 bytes, not a reserved artifact name>` |
 * | image file         | `images/<kind>/<name><ext>`                                      |
 * | directories        | `snapshots/`, `files/`, `images/`, `…/<64hex>/`, `images/<kind>/` |
 *
 * {@link isMsb06Path} (the layout rule) sends these to
 * {@link validateMsb06ArchivePath} (the path rule); the size rule is
 * {@link documentBound}; at the end a 0.6 bundle must carry `archive.json`
 * and nothing of the other layout (`#endMsb06`). The unpack step reports each
 * member's sizes and BLAKE3 member hash ({@link BundleGrammar.observed}); the
 * inventory rules themselves (load steps 3, 6, 7) are in `inventory.ts`.
 *
 * @example
 * ```ts
 * import { BundleGrammar } from "./grammar.js";
 * const g = new BundleGrammar({ label: "py.tar.zst" });
 * const act = g.admit({ path: "sha256-0123456789abcdef/upper.ext4", kind: "file", typeflag: "0", size: 4096, headerOffset: 0 });
 * // act.do === "file": stream it; its manifest may still come
 * g.manifest(manifestPlace, parsedManifest); // checks the upper's name and size now
 * const contents = g.end(); // { snapshots: [{ prefix, manifest }], cacheFiles: [...], ... }
 * ```
 * @module
 */

import { DESCRIPTOR_FILENAME, type DescriptorRead, isValidUpperFile, MAX_DESCRIPTOR_BYTES, readDescriptor } from "../descriptor.js";
import { ArchiveError, InvalidSnapshot, labelled } from "../errors.js";
import { CACHE_KINDS, type CacheKind } from "../layout.js";
import { type Manifest, MANIFEST_FILENAME, MAX_MANIFEST_BYTES } from "../manifest.js";
import { MAX_METADATA_BYTES } from "./image-cache.js";
import { MAX_INVENTORY_BYTES, type ObservedMember } from "./inventory.js";
import { INVENTORY_PATH, MSB06_ROOTS } from "./msb06-paths.js";

/** A snapshot directory entry `<prefix>/`. */
export interface SnapshotDirPlace {
  readonly area: "snapshot";
  readonly prefix: string;
  readonly file: null;
}
/** A snapshot file `<prefix>/<file>`. */
export interface SnapshotFilePlace {
  readonly area: "snapshot";
  readonly prefix: string;
  readonly file: string;
}
/** A cache directory `cache/` (kind `null`) or `cache/<kind>/`. */
export interface CacheDirPlace {
  readonly area: "cache";
  readonly kind: CacheKind | null;
  readonly file: null;
}
/** A cache file `cache/<kind>/<file>`. */
export interface CacheFilePlace {
  readonly area: "cache";
  readonly kind: CacheKind;
  readonly file: string;
}
/** A directory of the microsandbox 0.6 layout: `snapshots/`, `files/`, `images/`, `snapshots|files/<64hex>/`, `images/<kind>/`. */
export interface Msb06DirPlace {
  readonly area: "msb06";
  readonly role: "directory";
  readonly path: string;
  readonly file: null;
}
/**
 * A file of the microsandbox 0.6 layout: `archive.json` (inventory),
 * `snapshots/<64hex>/snapshot.json` (descriptor), `files/<64hex>/<name>`
 * (payload), `images/<kind>/<name><ext>` (image).
 */
export interface Msb06FilePlace {
  readonly area: "msb06";
  readonly role: "inventory" | "descriptor" | "payload" | "image";
  readonly path: string;
  /** The 64-hex snapshot id of a descriptor or payload. */
  readonly hex: string | null;
  /** The image kind of an image file. */
  readonly kind: CacheKind | null;
  readonly file: string;
}
/** Where an accepted entry goes. */
export type EntryPlace = SnapshotDirPlace | SnapshotFilePlace | CacheDirPlace | CacheFilePlace | Msb06DirPlace | Msb06FilePlace;
/** An accepted directory entry. */
export type DirectoryPlace = SnapshotDirPlace | CacheDirPlace | Msb06DirPlace;
/** An accepted file entry. */
export type FilePlace = SnapshotFilePlace | CacheFilePlace | Msb06FilePlace;

/** The entry kinds the reader reports that a load may accept. */
export type AcceptedKind = "file" | "directory";

/** What the grammar needs to know of an entry (a {@link TarEntry} has all of it). */
export interface EntryFacts {
  readonly path: string;
  /** The kind the tar reader decided: `"file"` for regular and sparse files of every format. */
  readonly kind: string;
  /** The raw typeflag, only used to name refused kinds. */
  readonly typeflag: string;
  /** Logical (apparent) size in bytes. */
  readonly size: number;
  readonly headerOffset: number;
}

/** What the unpack step should do with an admitted entry. */
export type Admission =
  | { readonly do: "directory"; readonly place: DirectoryPlace }
  /** Read the whole entry (at most `maxBytes`, already checked), parse it, hand it to {@link BundleGrammar.manifest}. */
  | { readonly do: "manifest"; readonly place: SnapshotFilePlace; readonly maxBytes: number }
  /** Stream the entry's data to its place (an upper, or a cache file). */
  | { readonly do: "file"; readonly place: FilePlace }
  /** A 0.6 inventory or descriptor: read it whole (at most `maxBytes`, already checked). */
  | { readonly do: "document"; readonly place: Msb06FilePlace; readonly maxBytes: number };

/** One snapshot of the archive: its prefix and manifest, in the order the manifests came. */
export interface BundleSnapshot {
  readonly prefix: string;
  readonly manifest: Manifest;
}

/** What a 0.6 bundle holds (see {@link BundleContents.msb06}). */
export interface Msb06Contents {
  /** The bytes of `archive.json`. */
  readonly inventory: Uint8Array;
  /** Every file member but `archive.json`, with its sizes and hashes. */
  readonly observed: ReadonlyMap<string, ObservedMember>;
  /**
   * The descriptors present, by 64-hex id in archive order, each parsed as it
   * streamed past (or why it does not parse: reported by the step that opens
   * the snapshot, see `load06.ts`).
   */
  readonly descriptors: ReadonlyMap<string, DescriptorRead>;
}

/** What an archive holds once {@link BundleGrammar.end} accepted it. */
export interface BundleContents {
  /** A microsandbox 0.6 bundle (then `snapshots` is empty: the inventory names them), else `null`. */
  readonly msb06: Msb06Contents | null;
  /** Snapshots in archive order (of their manifests). */
  readonly snapshots: readonly BundleSnapshot[];
  /** Cache files in archive order. */
  readonly cacheFiles: readonly CacheFilePlace[];
  /** Sum of the apparent sizes of every file entry. */
  readonly apparentBytes: number;
}

/** Options of {@link BundleGrammar}. */
export interface GrammarOptions {
  /** Names the archive in every message (a path, or "archive stream"). */
  readonly label: string;
  /** Cap on the sum of the apparent sizes of the archive's files (default {@link DEFAULT_MAX_APPARENT_BYTES}). */
  readonly maxApparentBytes?: number;
}

/**
 * Default cap on the apparent bytes of one load: 256 GiB. A load reads every
 * logical byte of each upper at least once (zero runs become holes, the
 * recorded integrity hashes holes too: ~13 s per 4 GiB), so without a cap a
 * 3 KB archive declaring a 1 TiB upper keeps a load busy for an hour. 256 GiB
 * is well above the uppers microsandbox creates and bounds that work to
 * minutes; larger uppers need `maxApparentBytes` (`load --max-apparent-size`).
 */
export const DEFAULT_MAX_APPARENT_BYTES = 256 * 2 ** 30;

const KIND_WORDS: Record<string, string> = {
  symlink: "a symbolic link",
  hardlink: "a hard link",
  char: "a character device",
  block: "a block device",
  fifo: "a FIFO",
};

/**
 * The type rule. Only files and directories as the tar reader decided them
 * (regular, contiguous and every sparse form are files). Links of any kind,
 * devices, FIFOs, GNU long-name/long-link records and every other type are
 * refused, naming the entry.
 *
 * @example
 * ```ts
 * validateArchiveEntryType({ path: "a/upper.ext4", kind: "file", typeflag: "0", headerOffset: 0 }); // "file"
 * validateArchiveEntryType({ path: "a/x", kind: "symlink", typeflag: "2", headerOffset: 512 }); // throws ArchiveError
 * ```
 */
export function validateArchiveEntryType(entry: { path: string; typeflag: string; kind: string; headerOffset: number }): AcceptedKind {
  if (entry.kind === "file") return "file";
  if (entry.kind === "directory") return "directory";
  const t = entry.typeflag;
  const what =
    KIND_WORDS[entry.kind] ??
    (t === "L" ? "a GNU long-name record" : t === "K" ? "a GNU long-link record" : t === "g" ? "a global PAX header" : `type ${JSON.stringify(t)}`);
  throw new ArchiveError(`archive entry ${JSON.stringify(entry.path)} at byte ${entry.headerOffset} is ${what}; only regular files and directories may be loaded`);
}

/**
 * The path rule: split an entry path into normal UTF-8 components. A
 * directory may end in one `/`. Refused: absolute paths, empty, `.` and `..`
 * components, backslashes and NUL.
 *
 * @example
 * ```ts
 * normalComponents("cache/layers/", "directory"); // ["cache", "layers"]
 * normalComponents("a/../b", "file"); // throws ArchiveError
 * ```
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

/**
 * Snapshot entries: `<prefix>/` for a directory, `<prefix>/<file>` for a file; a prefix may not start with `.`.
 *
 * @example
 * ```ts
 * validateSnapshotArchivePath("s/upper.ext4", ["s", "upper.ext4"], "file"); // { area: "snapshot", prefix: "s", file: "upper.ext4" }
 * ```
 */
export function validateSnapshotArchivePath(path: string, parts: string[], kind: AcceptedKind): SnapshotDirPlace | SnapshotFilePlace {
  const prefix = parts[0]!;
  if (prefix.startsWith(".")) throw new ArchiveError(`archive entry ${JSON.stringify(path)}: a snapshot directory name must not start with "."`);
  if (kind === "directory" && parts.length === 1) return { area: "snapshot", prefix, file: null };
  if (kind === "file" && parts.length === 2) return { area: "snapshot", prefix, file: parts[1]! };
  throw new ArchiveError(
    `archive entry ${JSON.stringify(path)}: unsupported snapshot path (a snapshot ${kind} must be ${kind === "file" ? "<dir>/<file>, exactly two components" : "<dir>/, one component"})`,
  );
}

/**
 * Cache entries: `cache/`, `cache/<kind>/`, `cache/<kind>/<file><ext>` for the known kinds.
 *
 * @example
 * ```ts
 * validateCacheArchivePath("cache/vmdk/x.vmdk", ["cache", "vmdk", "x.vmdk"], "file"); // { area: "cache", kind: "vmdk", file: "x.vmdk" }
 * ```
 */
export function validateCacheArchivePath(path: string, parts: string[], kind: AcceptedKind): CacheDirPlace | CacheFilePlace {
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

/**
 * Apply the path grammar to one entry: components, then the snapshot or cache rule.
 *
 * @example
 * ```ts
 * classifyEntry("sha256-0123456789abcdef/manifest.json", "file");
 * // { area: "snapshot", prefix: "sha256-0123456789abcdef", file: "manifest.json" }
 * classifyEntry("../etc/passwd", "file"); // throws ArchiveError
 * ```
 */
export function classifyEntry(path: string, kind: AcceptedKind): EntryPlace {
  const parts = normalComponents(path, kind);
  if (isMsb06Path(parts, kind)) return validateMsb06ArchivePath(path, parts, kind);
  return parts[0] === "cache" ? validateCacheArchivePath(path, parts, kind) : validateSnapshotArchivePath(path, parts, kind);
}

/** The top-level names of the 0.6 layout. */

/**
 * The layout rule: which paths belong to the microsandbox 0.6 layout —
 * `archive.json`, any directory under `snapshots`, `files` or `images`, and
 * any three-component file there. (A two-component file keeps its
 * `manifest.json`-layout meaning; upstream also reserves these names as
 * legacy prefixes.)
 *
 * @example
 * ```ts
 * isMsb06Path(["files", "ab…", "upper.ext4"], "file"); // true
 * isMsb06Path(["sha256-0123456789abcdef", "upper.ext4"], "file"); // false
 * ```
 */
export function isMsb06Path(parts: readonly string[], kind: AcceptedKind): boolean {
  if (parts.length === 1 && parts[0] === INVENTORY_PATH) return true;
  return MSB06_ROOTS.includes(parts[0]!) && (kind === "directory" || parts.length === 3);
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * 0.6 entries (docs/format.md §9.5, load step 2): directories `snapshots|files|images/`,
 * `snapshots|files/<64hex>/`, `images/<kind>/`; files `archive.json`,
 * `snapshots/<64hex>/snapshot.json`, `files/<64hex>/<name ≤255 bytes, not a
 * reserved artifact name>`, `images/<kind>/<name><ext>`.
 *
 * @example
 * ```ts
 * validateMsb06ArchivePath("archive.json", ["archive.json"], "file"); // { area: "msb06", role: "inventory", … }
 * validateMsb06ArchivePath("files/xyz/u", ["files", "xyz", "u"], "file"); // throws ArchiveError (not 64 hex)
 * ```
 */
export function validateMsb06ArchivePath(path: string, parts: string[], kind: AcceptedKind): Msb06DirPlace | Msb06FilePlace {
  const fail = (rule: string): never => {
    throw new ArchiveError(`archive entry ${JSON.stringify(path)}: unsupported 0.6 bundle path (${rule})`);
  };
  const [root, second, name] = parts as [string, string | undefined, string | undefined];
  if (kind === "directory") {
    if (parts.length === 1) return { area: "msb06", role: "directory", path, file: null };
    if (parts.length === 2 && root !== "images" && HEX64.test(second!)) return { area: "msb06", role: "directory", path, file: null };
    if (parts.length === 2 && root === "images" && Object.hasOwn(CACHE_KINDS, second!)) return { area: "msb06", role: "directory", path, file: null };
    return fail("directories are snapshots/, files/, images/, snapshots/<64hex>/, files/<64hex>/ and images/<kind>/ only");
  }
  if (root === INVENTORY_PATH) return { area: "msb06", role: "inventory", path, hex: null, kind: null, file: INVENTORY_PATH };
  if (new TextEncoder().encode(name!).length > 255) fail("a file name may be at most 255 bytes");
  if (root === "images") {
    if (!Object.hasOwn(CACHE_KINDS, second!)) fail(`unknown image kind ${JSON.stringify(second)}; known: ${Object.keys(CACHE_KINDS).join(", ")}`);
    const ext = CACHE_KINDS[second as CacheKind];
    if (!name!.endsWith(ext)) fail(`files in images/${second}/ must end in ${ext}`);
    return { area: "msb06", role: "image", path, hex: null, kind: second as CacheKind, file: name! };
  }
  if (!HEX64.test(second!)) fail(`${root}/<id>/ must name a snapshot by 64 lowercase hex digits`);
  if (root === "snapshots") {
    if (name !== DESCRIPTOR_FILENAME) fail(`a snapshot directory holds only ${DESCRIPTOR_FILENAME}`);
    return { area: "msb06", role: "descriptor", path, hex: second!, kind: null, file: name! };
  }
  if (!isValidUpperFile(name!)) fail(`${JSON.stringify(name)} cannot name a payload (a reserved artifact name)`);
  return { area: "msb06", role: "payload", path, hex: second!, kind: null, file: name! };
}

/**
 * The size rule for small documents read whole: a manifest at most
 * {@link MAX_MANIFEST_BYTES}, image metadata at most {@link MAX_METADATA_BYTES}.
 * Resolves the bound, or `null` for a file that is streamed.
 *
 * @example
 * ```ts
 * documentBound({ area: "snapshot", prefix: "s", file: "manifest.json" }); // 1048576
 * ```
 */
export function documentBound(place: FilePlace): number | null {
  if (place.area === "msb06") {
    if (place.role === "inventory") return MAX_INVENTORY_BYTES;
    if (place.role === "descriptor") return MAX_DESCRIPTOR_BYTES;
    return place.role === "image" && place.kind === "manifests" ? MAX_METADATA_BYTES : null;
  }
  if (place.area === "snapshot") return place.file === MANIFEST_FILENAME ? MAX_MANIFEST_BYTES : null;
  return place.kind === "manifests" ? MAX_METADATA_BYTES : null;
}

/**
 * The membership rule for a snapshot's other file, once its manifest is
 * known: it is the upper the manifest names, with the size it records.
 * Returns the rule broken, or `null`.
 *
 * @example
 * ```ts
 * upperMismatch("notes.txt", 2, manifest); // "is not part of the snapshot (…)"
 * ```
 */
export function upperMismatch(file: string, size: number, manifest: Manifest): string | null {
  if (file !== manifest.upper.file) return `is not part of the snapshot (its manifest names only ${MANIFEST_FILENAME} and ${manifest.upper.file})`;
  if (size !== manifest.upper.size_bytes) return `declares ${size} bytes but its manifest records size_bytes ${manifest.upper.size_bytes}`;
  return null;
}

/** Per snapshot prefix: what has been seen of it so far. */
interface SnapshotState {
  dirSeen: boolean;
  manifest: Manifest | null;
  /** The one non-manifest file seen (before or after the manifest). */
  other: { path: string; file: string; size: number } | null;
}

/**
 * The stateful checker: fed every entry, then the parsed manifests, then the
 * end of the archive (see the module doc). Every refusal is an
 * {@link ArchiveError} (or {@link InvalidSnapshot} for a missing upper)
 * whose message starts with the archive's label.
 *
 * @example
 * ```ts
 * const g = new BundleGrammar({ label: "a.tar", maxApparentBytes: 1 << 30 });
 * for await (const entry of readTar(tar)) {
 *   const act = g.admit(entry);
 *   if (act.do === "manifest") g.manifest(act.place, parseManifest(await collect(entry)));
 * }
 * const contents = g.end();
 * ```
 */
export class BundleGrammar {
  readonly label: string;
  readonly maxApparentBytes: number;
  readonly #seen = new Set<string>();
  readonly #snapshots = new Map<string, SnapshotState>();
  readonly #order: BundleSnapshot[] = [];
  readonly #cacheFiles: CacheFilePlace[] = [];
  /** 0.6 members seen (path → what streaming them showed; `null` until then). */
  readonly #msb06 = new Map<string, ObservedMember | null>();
  #inventory: Uint8Array | null = null;
  readonly #descriptors = new Map<string, DescriptorRead>();
  /** A `manifest.json`-layout or `cache/` entry, to refuse mixing layouts. */
  #legacyPath: string | null = null;
  #apparent = 0;
  #ended = false;

  constructor(options: GrammarOptions) {
    this.label = options.label;
    this.maxApparentBytes = options.maxApparentBytes ?? DEFAULT_MAX_APPARENT_BYTES;
    if (!(this.maxApparentBytes >= 0)) throw new RangeError(`maxApparentBytes must be a non-negative number (got ${this.maxApparentBytes})`);
  }

  /** An {@link ArchiveError} `"<label>: archive entry "<path>" <rule>"`. */
  entryError(path: string, rule: string): ArchiveError {
    return new ArchiveError(`${this.label}: archive entry ${JSON.stringify(path)} ${rule}`);
  }

  /** Apparent bytes of the files admitted so far. */
  get apparentBytes(): number {
    return this.#apparent;
  }

  /** Judge one entry; see {@link Admission}. Throws naming the entry and the rule. */
  admit(entry: EntryFacts): Admission {
    if (this.#ended) throw new Error("BundleGrammar.admit after end()");
    let place: EntryPlace;
    try {
      place = classifyEntry(entry.path, validateArchiveEntryType(entry));
    } catch (e) {
      throw e instanceof ArchiveError ? labelled(this.label, e) : e;
    }
    this.#checkDuplicate(entry.path);
    if (place.area === "msb06") return this.#admitMsb06(entry, place);
    this.#legacyPath ??= entry.path;
    if (place.file === null) {
      if (place.area === "snapshot") this.#state(place.prefix).dirSeen = true;
      return { do: "directory", place };
    }
    const bound = documentBound(place);
    if (bound !== null && entry.size > bound) {
      const what = place.area === "snapshot" ? "a manifest" : "image metadata";
      throw this.entryError(entry.path, `declares ${entry.size} bytes; ${what} may be at most ${bound}`);
    }
    // membership first: a size its manifest contradicts is named as such, not as over the cap
    if (place.area === "snapshot" && place.file !== MANIFEST_FILENAME) this.#admitSnapshotFile(entry, place);
    this.#countApparent(entry);
    if (place.area === "cache") this.#cacheFiles.push(place);
    if (place.area === "snapshot" && place.file === MANIFEST_FILENAME) return { do: "manifest", place, maxBytes: bound! };
    return { do: "file", place };
  }

  /**
   * The snapshot at `place.prefix` has this manifest: check the file of that
   * snapshot seen before it, if any (name and size), and remember it for the
   * files after it.
   */
  manifest(place: SnapshotFilePlace, manifest: Manifest): void {
    const state = this.#state(place.prefix);
    state.manifest = manifest;
    this.#order.push({ prefix: place.prefix, manifest });
    const other = state.other;
    if (other !== null) {
      const broken = upperMismatch(other.file, other.size, manifest);
      if (broken !== null) throw this.entryError(other.path, broken);
    }
  }

  /** A 0.6 inventory or descriptor has been read whole (see {@link Admission} `"document"`): keep the inventory's bytes, the descriptor parsed. */
  document(place: Msb06FilePlace, bytes: Uint8Array): void {
    if (place.role === "inventory") this.#inventory = bytes;
    else if (place.role === "descriptor") this.#descriptors.set(place.hex!, readDescriptor(bytes, `${this.label}: ${place.path}`));
  }

  /** What streaming a 0.6 member showed (sizes, member hash, sha256), for the inventory checks. */
  observed(place: Msb06FilePlace, member: ObservedMember): void {
    this.#msb06.set(place.path, member);
  }

  /** The end-of-archive rules; resolves what the archive holds. */
  end(): BundleContents {
    this.#ended = true;
    if (this.#msb06.size > 0) return this.#endMsb06();
    if (this.#order.length === 0) throw new ArchiveError(`${this.label}: the archive contains no snapshot manifest`);
    for (const [prefix, s] of this.#snapshots) {
      if (s.manifest !== null) continue;
      if (s.other !== null) throw this.entryError(s.other.path, `is not part of a snapshot: the archive has no ${prefix}/${MANIFEST_FILENAME}`);
      if (s.dirSeen) {
        throw this.entryError(`${prefix}/`, `is a snapshot directory with no ${MANIFEST_FILENAME}; every directory in a bundle must hold a snapshot`);
      }
    }
    for (const { prefix, manifest } of this.#order) {
      if (this.#snapshots.get(prefix)!.other === null) {
        throw new InvalidSnapshot(`${this.label}: snapshot ${prefix}: its upper ${prefix}/${manifest.upper.file} does not exist in the archive (its manifest names it)`);
      }
    }
    return { msb06: null, snapshots: [...this.#order], cacheFiles: [...this.#cacheFiles], apparentBytes: this.#apparent };
  }

  /** 0.6 admission: size bounds for documents read whole, then stream or read. */
  #admitMsb06(entry: EntryFacts, place: Msb06DirPlace | Msb06FilePlace): Admission {
    if (place.file === null) return { do: "directory", place };
    const bound = documentBound(place);
    if (bound !== null && entry.size > bound) throw this.entryError(entry.path, `declares ${entry.size} bytes; ${place.role === "inventory" ? "archive.json" : place.role === "descriptor" ? "a snapshot.json" : "image metadata"} may be at most ${bound}`);
    this.#countApparent(entry);
    this.#msb06.set(place.path, null);
    if (place.role === "inventory" || place.role === "descriptor") return { do: "document", place, maxBytes: bound! };
    return { do: "file", place };
  }

  /**
   * The layout rules at the end of a 0.6 bundle: it carries `archive.json`
   * (everything else is checked against it), and nothing of the
   * `manifest.json` layout or `cache/` (which no inventory can list).
   */
  #endMsb06(): BundleContents {
    if (this.#legacyPath !== null) {
      throw this.entryError(this.#legacyPath, "belongs to the manifest.json bundle layout, but this archive is a microsandbox 0.6 bundle (snapshots/, files/, images/, archive.json); one archive holds one layout");
    }
    if (this.#inventory === null) throw new ArchiveError(`${this.label}: a microsandbox 0.6 bundle (snapshots/, files/, images/) must carry archive.json; this one has none`);
    const observed = new Map<string, ObservedMember>();
    for (const [path, m] of this.#msb06) if (m !== null) observed.set(path, m);
    return { msb06: { inventory: this.#inventory, observed, descriptors: new Map(this.#descriptors) }, snapshots: [], cacheFiles: [], apparentBytes: this.#apparent };
  }

  /** Duplicate rule: a path (with or without its trailing `/`) appears once. */
  #checkDuplicate(path: string): void {
    const key = path.endsWith("/") ? path.slice(0, -1) : path;
    if (this.#seen.has(key)) throw this.entryError(path, "appears twice");
    this.#seen.add(key);
  }

  /** Apparent-size rule: the files of one archive declare at most {@link maxApparentBytes} in all. */
  #countApparent(entry: EntryFacts): void {
    this.#apparent += entry.size;
    if (this.#apparent > this.maxApparentBytes) {
      throw this.entryError(
        entry.path,
        `declares ${entry.size} bytes, bringing the archive's files to ${this.#apparent} apparent bytes, over the cap of ${this.maxApparentBytes} ` +
          `(raise it with the maxApparentBytes option or load --max-apparent-size)`,
      );
    }
  }

  /** Membership rule for a snapshot's non-manifest file, in either order with its manifest. */
  #admitSnapshotFile(entry: EntryFacts, place: SnapshotFilePlace): void {
    const state = this.#state(place.prefix);
    if (state.manifest !== null) {
      const broken = upperMismatch(place.file, entry.size, state.manifest);
      if (broken !== null) throw this.entryError(entry.path, broken);
    } else if (state.other !== null) {
      throw this.entryError(
        entry.path,
        `is not part of the snapshot: ${state.other.path} came before it, and a snapshot holds only ${MANIFEST_FILENAME} and one upper`,
      );
    }
    state.other = { path: entry.path, file: place.file, size: entry.size };
  }

  #state(prefix: string): SnapshotState {
    let s = this.#snapshots.get(prefix);
    if (s === undefined) {
      s = { dirSeen: false, manifest: null, other: null };
      this.#snapshots.set(prefix, s);
    }
    return s;
  }
}
