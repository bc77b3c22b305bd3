/**
 * Look inside a bundle, and check it, without a home: the load's own unpack
 * step (the tar reader and the entry grammar, `./unpack.ts`) runs over the
 * stream with a sink that writes nothing but hashes each upper as its data
 * streams past. {@link inspectBundle} reports what the bundle holds;
 * {@link verifyBundle} also requires what a load's later steps require of
 * it: every recorded integrity matches, there is a head, and the image cache
 * it carries is the head image's (the load's own rule, on what the pass kept).
 *
 * @example
 * ```ts
 * import { nodeFs, verifyBundle } from "snapbundle";
 * const report = await verifyBundle(nodeFs(), "/tmp/py.tar.zst"); // throws on the first problem
 * console.log(report.head, report.snapshots.map((s) => s.digest));
 * ```
 * @module
 */

import { ArchiveError, SnapshotIntegrityError } from "../errors.js";
import type { FileInfo, FileSystem } from "../fs/types.js";
import { HomeLayout } from "../layout.js";
import { type Manifest, manifestDigest, parseManifest, SPARSE_SHA256 } from "../manifest.js";
import { createUpperHasher } from "../sparse.js";
import type { TarEntry } from "../tar/mod.js";
import type { CacheFilePlace, FilePlace } from "./grammar.js";
import { type CarriedCache, checkCarriedCache } from "./image-cache.js";
import { openBundle } from "./sniff.js";
import { countingStream, fileReadable } from "./streams.js";
import { collectEntry, unpackArchive, type UnpackSink } from "./unpack.js";

/** One snapshot of a bundle, as {@link inspectBundle} reports it. */
export interface BundleSnapshotReport {
  readonly digest: string;
  /** The directory name in the archive (the name a load installs it under). */
  readonly name: string;
  readonly parent: string | null;
  readonly image_ref: string;
  readonly image_manifest_digest: string;
  readonly size_bytes: number;
  readonly labels: Readonly<Record<string, string>>;
  /** The recorded integrity, and whether the streamed upper matched it. */
  readonly integrity: { readonly status: "verified" | "mismatch" | "not-recorded"; readonly algorithm: string | null; readonly recorded: string | null; readonly computed: string | null };
}

/** What a bundle holds. */
export interface BundleReport {
  /** Snapshots in archive order. */
  readonly snapshots: readonly BundleSnapshotReport[];
  /** The head's digest: the last snapshot no other one names as parent (null if none). */
  readonly head: string | null;
  /** Image cache files, as `cache/<kind>/<file>`. */
  readonly cache_files: readonly string[];
  readonly compression: "zstd" | "none";
  /** Tar header dialects seen (`ustar`, `gnu`, `v7`, plus `gnu-sparse` for old-GNU sparse entries). */
  readonly tar_formats: readonly string[];
}

/** Options of {@link inspectBundle}. */
export interface InspectOptions {
  /** Names the bundle in messages (a path source names itself). */
  readonly label?: string;
  /** Called with the number of bundle bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
}

const ZEROS = new Uint8Array(1 << 20);

/** A home's names without a home: its cache directory is `cache`, so cache paths are archive paths. */
const ARCHIVE_NAMES = new HomeLayout("");

/** Hash an upper's logical bytes (holes as zeros) with each algorithm asked for. */
async function hashUpper(entry: TarEntry, algorithms: readonly string[]): Promise<Map<string, string>> {
  const hashers = await Promise.all(algorithms.map((a) => createUpperHasher(a, entry.size)));
  const zeros = (n: number) => {
    for (let left = n; left > 0; left -= ZEROS.length) for (const h of hashers) h.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
  };
  let at = 0;
  for await (const seg of entry.segments()) {
    zeros(seg.offset - at);
    for (const h of hashers) h.update(seg.data);
    at = seg.offset + seg.data.length;
  }
  zeros(entry.size - at);
  return new Map(algorithms.map((a, i) => [a, `sha256:${hashers[i]!.digestHex()}`]));
}

/**
 * Stream a bundle (a path, or a Web `ReadableStream`) through the load's
 * reader and grammar, writing nothing, and report what it holds. Grammar,
 * size and checksum problems throw as a load would; integrity mismatches are
 * reported, not thrown (see {@link verifyBundle}).
 *
 * @example
 * ```ts
 * const report = await inspectBundle(nodeFs(), "/tmp/py.tar.zst");
 * for (const s of report.snapshots) console.log(s.digest, s.integrity.status);
 * ```
 */
export async function inspectBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions = {}): Promise<BundleReport> {
  return (await streamBundle(fs, source, options)).report;
}

/** What one pass over a bundle saw: the report, the manifests in archive order, and the cache it carries. */
interface BundlePass {
  readonly report: BundleReport;
  readonly manifests: readonly Manifest[];
  readonly cache: CarriedCache;
}

/** The pass of {@link inspectBundle}; keeps what {@link verifyBundle} checks after it (no upper bytes, one metadata document at most). */
async function streamBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions): Promise<BundlePass> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  let raw = typeof source === "string" ? fileReadable(fs, source) : source;
  if (options.onProgress) raw = raw.pipeThrough(countingStream(options.onProgress));
  const opened = await openBundle(raw, label);
  const formats = new Set<string>(opened.firstFormat === null ? [] : [opened.firstFormat]);
  const manifests = new Map<string, Manifest>();
  const uppers = new Map<string, Map<string, string>>();
  const cache = new CacheRecorder();
  const sink: UnpackSink = {
    directory: async () => {},
    async file(place: FilePlace, data: Uint8Array | TarEntry) {
      if (place.area === "cache") return cache.add(place, data);
      if (place.area !== "snapshot") return;
      if (data instanceof Uint8Array) {
        manifests.set(place.prefix, parseManifest(data, `${label}: ${place.prefix}/${place.file}`));
        return;
      }
      if (data.sparse) formats.add("gnu-sparse");
      const known = manifests.get(place.prefix)?.upper.integrity?.algorithm;
      // an upper before its manifest: hash both ways, the manifest will pick one
      uppers.set(place.prefix, await hashUpper(data, known ? [known] : ["sha256", SPARSE_SHA256]));
    },
  };
  // the load's own unpack step (it sniffs again: a plain tar now, already checked)
  const contents = await unpackArchive(opened.tar, sink, { label });
  const snapshots: BundleSnapshotReport[] = [];
  for (const { prefix, manifest: m } of contents.snapshots) {
    const recorded = m.upper.integrity;
    const computed = recorded === null ? null : (uppers.get(prefix)?.get(recorded.algorithm) ?? null);
    snapshots.push({
      digest: await manifestDigest(m),
      name: prefix,
      parent: m.parent,
      image_ref: m.image.ref,
      image_manifest_digest: m.image.manifest_digest,
      size_bytes: m.upper.size_bytes,
      labels: m.labels,
      integrity: {
        status: recorded === null ? "not-recorded" : computed === recorded.digest ? "verified" : "mismatch",
        algorithm: recorded?.algorithm ?? null,
        recorded: recorded?.digest ?? null,
        computed,
      },
    });
  }
  const digests = new Set(snapshots.map((s) => s.digest));
  const parents = new Set(snapshots.map((s) => s.parent).filter((p) => p !== null && digests.has(p)));
  const head = [...snapshots].reverse().find((s) => !parents.has(s.digest))?.digest ?? null;
  const report = {
    snapshots,
    head,
    cache_files: contents.cacheFiles.map((c) => `cache/${c.kind}/${c.file}`),
    compression: opened.compression,
    tar_formats: [...formats].sort(),
  };
  return { report, manifests: contents.snapshots.map((s) => s.manifest), cache: cache.carried() };
}

/**
 * The cache files a pass streams past, by archive path (a {@link CarriedCache}
 * rooted at `cache`): each one's size, and the bytes of the image metadata
 * while it is the only one (a second one is refused by name, unread).
 */
class CacheRecorder {
  readonly #files = new Map<string, FileInfo>();
  #metadata: { path: string; bytes: Uint8Array } | null = null;
  #metadataSeen = 0;

  async add(place: CacheFilePlace, data: Uint8Array | TarEntry): Promise<void> {
    const path = `cache/${place.kind}/${place.file}`;
    this.#files.set(path, { kind: "file", size: data instanceof Uint8Array ? data.length : data.size, mtimeMs: 0, allocatedBytes: null });
    if (place.kind !== "manifests") return;
    this.#metadataSeen++;
    this.#metadata = this.#metadataSeen > 1 ? null : { path, bytes: data instanceof Uint8Array ? data : await collectEntry(data) };
  }

  carried(): CarriedCache {
    const metadata = this.#metadata;
    return {
      root: "cache",
      files: this.#files,
      readMetadata: async (path) => {
        if (metadata?.path !== path) throw new Error(`inspect: ${path} was not kept (the cache rule reads the only metadata carried)`);
        return metadata.bytes;
      },
    };
  }
}

/**
 * {@link inspectBundle}, then every check a load into an empty home makes of
 * the bundle itself: each recorded integrity matches its upper (else
 * {@link SnapshotIntegrityError} naming both digests), there is a head, and
 * the image cache it carries passes the load's rule for the head's image
 * ({@link checkCarriedCache}, else {@link ImageCacheError}). Writes nothing.
 * Resolves the report.
 *
 * @example
 * ```ts
 * await verifyBundle(nodeFs(), "/tmp/py.tar.zst"); // throws if a load would fail
 * ```
 */
export async function verifyBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions = {}): Promise<BundleReport> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  const { report, manifests, cache } = await streamBundle(fs, source, options);
  for (const s of report.snapshots) {
    if (s.integrity.algorithm !== null && s.integrity.algorithm !== "sha256" && s.integrity.algorithm !== SPARSE_SHA256) {
      throw new SnapshotIntegrityError(`${label}: ${s.name}: integrity algorithm ${JSON.stringify(s.integrity.algorithm)} is not supported`);
    }
    if (s.integrity.status === "mismatch") {
      throw new SnapshotIntegrityError(
        `${label}: ${s.name}: upper does not match its recorded integrity (${s.integrity.algorithm}): manifest records ${s.integrity.recorded}, upper hashes to ${s.integrity.computed}`,
      );
    }
  }
  if (report.head === null) throw new ArchiveError(`${label}: the archive contains no head snapshot (every snapshot is another's parent)`);
  // the load's own cache rule, on what the pass kept: nothing is staged
  await checkCarriedCache(ARCHIVE_NAMES, manifests[report.snapshots.findIndex((s) => s.digest === report.head)]!, cache, label);
  return report;
}
