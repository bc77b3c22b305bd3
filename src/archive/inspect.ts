/**
 * Look inside a bundle, and check it, without a home: the load's own unpack
 * step (the tar reader and the entry grammar, `./unpack.ts`) runs over the
 * stream with a sink that writes nothing but hashes each upper as its data
 * streams past. Both bundle layouts: `manifest.json` (`<prefix>/manifest.json`
 * + upper, `cache/…`) and microsandbox 0.6's (`snapshots/<64hex>/snapshot.json`,
 * `files/<64hex>/<upper>`, `images/…`, `archive.json`).
 * {@link inspectBundle} reports what the bundle holds; {@link verifyBundle}
 * also requires what a load's later steps require of it, by the load's own
 * rules on what the pass kept: for a 0.6 bundle the inventory, member hashes,
 * descriptor identities, owner bindings and head (`./load06.ts`), then for
 * either layout every recorded integrity matches, there is a head, and the
 * image cache it carries is the head image's.
 *
 * @example
 * ```ts
 * import { nodeFs, verifyBundle } from "snapbundle";
 * const report = await verifyBundle(nodeFs(), "/tmp/py.tar.zst"); // throws on the first problem
 * console.log(report.layout, report.head, report.snapshots.map((s) => s.digest));
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import type { FileInfo, FileSystem } from "../fs/types.js";
import { type CacheKind, HomeLayout } from "../layout.js";
import { type Manifest, manifestDigest, parseManifest } from "../manifest.js";
import { checkIntegrityAlgorithm, checkIntegrityMatch, manifestView, type SnapshotForm } from "../snapshot.js";
import type { TarEntry } from "../tar/mod.js";
import type { BundleContents, FilePlace, Msb06Contents } from "./grammar.js";
import { ErofsStreamCheck } from "./erofs.js";
import { type CarriedCache, checkCarriedCache } from "./image-cache.js";
import { parseInventory } from "./inventory.js";
import { headIndex, noHeadSnapshot } from "./load.js";
import { checkMsb06Contents, readMsb06Snapshot } from "./load06.js";
import { openBundle } from "./sniff.js";
import { algorithmsFor, hashSegments, RecordedIntegrity } from "./upper-hash.js";
import { countingReadable, fileReadable } from "./streams.js";
import { collectEntry, unpackArchive, type UnpackSink } from "./unpack.js";

/** One snapshot of a bundle, as {@link inspectBundle} reports it. */
export interface BundleSnapshotReport {
  readonly digest: string;
  /** The directory name in the archive, the name a load installs it under: `sha256-<16hex>`, or a 0.6 snapshot's 64 hex digits. */
  readonly name: string;
  /** `checkpoint` for a microsandbox 0.6 checkpoint, which has no payload (its `size_bytes` is 0), else `file`. */
  readonly state_kind: "file" | "checkpoint";
  readonly parent: string | null;
  readonly image_ref: string;
  readonly image_manifest_digest: string;
  readonly size_bytes: number;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The recorded integrity (a Merkle root for `msb-file-merkle-blake3-v1`),
   * and what the upper streaming past hashed to with that algorithm.
   * `unsupported`: checkpoint state, no payload to check; `missing`: the
   * descriptor names a payload the archive does not carry; `not-checked`:
   * a quick pass ({@link InspectOptions.quick}) hashed nothing.
   */
  readonly integrity: {
    readonly status: "verified" | "mismatch" | "not-recorded" | "unsupported" | "missing" | "not-checked";
    readonly algorithm: string | null;
    readonly recorded: string | null;
    readonly computed: string | null;
  };
}

/** What a bundle holds. */
export interface BundleReport {
  /** `manifest` (`<prefix>/manifest.json` + upper), or `snapshot` (microsandbox 0.6.7+: `snapshots/`, `files/`, `images/`, `archive.json`). */
  readonly layout: "manifest" | "snapshot";
  /** Snapshots in archive order (of their manifests or descriptors). */
  readonly snapshots: readonly BundleSnapshotReport[];
  /**
   * The head's digest: for the `manifest` layout the last snapshot no other
   * one names as parent (null if none); for `snapshot` the `head` of archive.json.
   */
  readonly head: string | null;
  /**
   * A microsandbox 0.6 bundle's `suggested_name` (archive.json: the head's
   * directory name where it was saved; the CLI's load installs the head under
   * it where it is free), else null.
   */
  readonly suggested_name: string | null;
  /** Image cache files by archive path, in archive order: `cache/<kind>/<file>`, or `images/<kind>/<file>` in a 0.6 bundle. */
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
  /**
   * A quick listing, as `tar -t`: the data is decoded and skipped, no upper is
   * hashed, and each recorded integrity is reported `not-checked`
   * ({@link inspectBundle} only; {@link verifyBundle} always hashes).
   */
  readonly quick?: boolean;
  /** Called with each member the grammar admitted, before its data is read: what was read so far when a later one fails. */
  readonly onMember?: (member: { readonly path: string; readonly size: number; readonly sparse: boolean }) => void;
}

/** A home's names without a home: its cache directory is `cache`, so cache paths are archive paths. */
const ARCHIVE_NAMES = new HomeLayout("");

/**
 * Stream a bundle (a path, or a Web `ReadableStream`) through the load's
 * reader and grammar, writing nothing, and report what it holds. Grammar,
 * size and checksum problems throw as a load would, and so does a manifest,
 * descriptor or archive.json that does not parse; integrity mismatches are
 * reported, not thrown, and a 0.6 bundle's inventory rules (member hashes,
 * bindings) are not applied: that is {@link verifyBundle}.
 *
 * @example
 * ```ts
 * const report = await inspectBundle(nodeFs(), "/tmp/py.tar.zst");
 * for (const s of report.snapshots) console.log(s.digest, s.integrity.status);
 * ```
 */
export async function inspectBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions = {}): Promise<BundleReport> {
  const pass = await streamBundle(fs, source, options, options.quick !== true);
  const inventory = pass.contents.msb06 === null ? null : parseInventory(pass.contents.msb06.inventory, `${pass.label}: archive.json`);
  return (await reportOf(pass, inventory?.head ?? null, inventory?.suggested_name ?? null)).report;
}

/** What one pass over a bundle saw: what the unpack step accepted, the uppers' hashes, the cache carried. No upper bytes. */
interface BundlePass {
  readonly label: string;
  readonly contents: BundleContents;
  readonly compression: "zstd" | "none";
  readonly formats: ReadonlySet<string>;
  /** Per upper (archive path), its digest by algorithm. */
  readonly uppers: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** The manifests of the `manifest.json` layout, by prefix (a 0.6 bundle's descriptors are in `contents`). */
  readonly manifests: ReadonlyMap<string, Manifest>;
  /** Image cache files by archive path, in archive order. */
  readonly cacheFiles: readonly string[];
  readonly cache: CarriedCache;
  /** Whether the uppers were hashed (not a quick pass). */
  readonly hashed: boolean;
}

/** The pass of {@link inspectBundle} and {@link verifyBundle}: the load's unpack step into a sink that keeps hashes and small documents. */
async function streamBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions, hash: boolean): Promise<BundlePass> {
  const label = typeof source === "string" ? source : (options.label ?? "archive stream");
  let raw = typeof source === "string" ? fileReadable(fs, source, { reuse: true }) : source;
  if (options.onProgress) raw = countingReadable(raw, options.onProgress);
  const opened = await openBundle(raw, label);
  const formats = new Set<string>(opened.firstFormat === null ? [] : [opened.firstFormat]);
  const manifests = new Map<string, Manifest>();
  /** What the manifests and descriptors seen so far record (what each upper is hashed with). */
  const recorded = new RecordedIntegrity();
  const uppers = new Map<string, Map<string, string>>();
  const cacheFiles: string[] = [];
  const cache = new CacheRecorder();
  const upper = async (path: string, entry: TarEntry, place: FilePlace) => {
    if (entry.sparse) formats.add("gnu-sparse");
    const algorithms = hash ? algorithmsFor(recorded.recordedFor(place)) : [];
    // with no algorithm the data is left unread (or drained by the unpack step)
    uppers.set(path, algorithms.length === 0 ? new Map() : await hashSegments(entry, algorithms));
  };
  const sink: UnpackSink = {
    directory: async () => {},
    async file(place: FilePlace, data: Uint8Array | TarEntry) {
      const path = place.area === "msb06" ? place.path : place.area === "cache" ? `cache/${place.kind}/${place.file}` : `${place.prefix}/${place.file}`;
      options.onMember?.({ path, size: data instanceof Uint8Array ? data.length : data.size, sparse: !(data instanceof Uint8Array) && data.sparse });
      if (place.area === "cache" || (place.area === "msb06" && place.role === "image")) {
        cacheFiles.push(path);
        return cache.add(place.kind!, place.file, data);
      }
      if (place.area === "msb06") {
        // the grammar keeps the parsed descriptor for the checks; here only its algorithm matters
        if (place.role === "descriptor" && data instanceof Uint8Array) recorded.note(place, data, label);
        else if (place.role === "payload" && !(data instanceof Uint8Array)) await upper(place.path, data, place);
        return;
      }
      if (data instanceof Uint8Array) {
        manifests.set(place.prefix, parseManifest(data, `${label}: ${place.prefix}/${place.file}`));
        recorded.note(place, data, label);
        return;
      }
      await upper(path, data, place);
    },
  };
  // the load's own unpack step (it sniffs again: a plain tar now, already checked)
  const contents = await unpackArchive(opened.tar, sink, { label, memberHashes: hash });
  return { label, contents, compression: opened.compression, formats, uppers, manifests, cacheFiles, cache: cache.carried(), hashed: hash };
}

/** One snapshot's integrity report: its state, what it records, what its upper (if carried) hashed to. */
function integrityReport(state: "file" | "checkpoint", recorded: { readonly algorithm: string; readonly digest: string } | null, hashed: ReadonlyMap<string, string> | undefined, checked: boolean): BundleSnapshotReport["integrity"] {
  const none = { algorithm: recorded?.algorithm ?? null, recorded: recorded?.digest ?? null, computed: null };
  if (state === "checkpoint") return { status: "unsupported", ...none };
  if (hashed === undefined) return { status: "missing", ...none };
  if (recorded === null) return { status: "not-recorded", ...none };
  if (!checked) return { status: "not-checked", ...none };
  const computed = hashed.get(recorded.algorithm) ?? null;
  return { status: computed === recorded.digest ? "verified" : "mismatch", algorithm: recorded.algorithm, recorded: recorded.digest, computed };
}

/** A snapshot as the report and the later checks see it. */
interface Seen {
  readonly report: BundleSnapshotReport;
  readonly manifest: Manifest;
  readonly form: SnapshotForm;
  /** The upper's archive path (named by an integrity error). */
  readonly where: string;
}

/**
 * The report of a pass, with each snapshot's manifest (a 0.6 descriptor in
 * manifest shape) for the checks after it. `head` is the 0.6 inventory's.
 */
async function reportOf(pass: BundlePass, head: string | null, suggestedName: string | null): Promise<{ report: BundleReport; seen: Seen[] }> {
  const seen: Seen[] = [];
  const add = (digest: string, name: string, form: SnapshotForm, state: "file" | "checkpoint", m: Manifest, upperPath: string) => {
    seen.push({
      manifest: m,
      form,
      where: form === "snapshot" ? `${pass.label}: ${upperPath}` : `${pass.label}: ${name}`,
      report: {
        digest,
        name,
        state_kind: state,
        parent: m.parent,
        image_ref: m.image.ref,
        image_manifest_digest: m.image.manifest_digest,
        size_bytes: m.upper.size_bytes,
        labels: m.labels,
        integrity: integrityReport(state, m.upper.integrity, pass.uppers.get(upperPath), pass.hashed),
      },
    });
  };
  const msb06: Msb06Contents | null = pass.contents.msb06;
  if (msb06 !== null) {
    for (const hex of msb06.descriptors.keys()) {
      const { digest, descriptor } = await readMsb06Snapshot(msb06, hex, pass.label);
      const m = manifestView(descriptor);
      add(digest, hex, "snapshot", descriptor.state.kind, m, `files/${hex}/${m.upper.file}`);
    }
  } else {
    for (const { prefix, manifest: m } of pass.contents.snapshots) add(await manifestDigest(m), prefix, "manifest", "file", m, `${prefix}/${m.upper.file}`);
    const reports = seen.map((s) => s.report);
    const i = headIndex(reports);
    head = i === null ? null : reports[i]!.digest;
  }
  const report: BundleReport = {
    layout: msb06 === null ? "manifest" : "snapshot",
    snapshots: seen.map((s) => s.report),
    head,
    suggested_name: suggestedName,
    cache_files: [...pass.cacheFiles],
    compression: pass.compression,
    tar_formats: [...pass.formats].sort(),
  };
  return { report, seen };
}

/**
 * The cache files a pass streams past, by the path a load stages them under
 * (a {@link CarriedCache} rooted at `cache`: `cache/<kind>/<file>`, for a 0.6
 * bundle's `images/<kind>/<file>` too): each one's size, the EROFS rule's
 * verdict on each layer and fsmeta file (checked as it streams past), and the
 * bytes of the image metadata while it is the only one (a second one is refused by name, unread).
 */
class CacheRecorder {
  readonly #files = new Map<string, FileInfo>();
  #metadata: { path: string; bytes: Uint8Array } | null = null;
  #metadataSeen = 0;
  /** The EROFS rule's verdict on each layer and fsmeta file, by path. */
  readonly #images = new Map<string, string | null>();

  async add(kind: CacheKind, file: string, data: Uint8Array | TarEntry): Promise<void> {
    const path = `cache/${kind}/${file}`;
    const size = data instanceof Uint8Array ? data.length : data.size;
    this.#files.set(path, { kind: "file", size, mtimeMs: 0, allocatedBytes: null });
    if (kind === "layers" || kind === "fsmeta") {
      // the EROFS rule, on the bytes as they stream past (nothing kept but the few it reads)
      const check = new ErofsStreamCheck(size);
      if (data instanceof Uint8Array) check.feed(data);
      else for await (const seg of data.segments()) check.feed(seg.data, seg.offset);
      this.#images.set(path, check.finish());
    }
    if (kind !== "manifests") return;
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
      imageProblem: async (path) => {
        if (!this.#images.has(path)) throw new Error(`inspect: ${path} was not checked as an EROFS image`);
        return this.#images.get(path)!;
      },
    };
  }
}

/**
 * {@link inspectBundle}, then every check a load into an empty home makes of
 * the bundle itself, by the load's own rules and in its order: for a 0.6
 * bundle the inventory against the members (member hashes when recorded,
 * descriptor and image sha256), each descriptor's identity, the owner
 * bindings and the head ({@link checkMsb06Contents}, else
 * {@link ArchiveError} or {@link InvalidManifest}); each recorded integrity
 * matches its upper (else {@link SnapshotIntegrityError} naming both
 * digests); there is a head; and the image cache it carries passes the
 * load's rule for the head's image ({@link checkCarriedCache}, else
 * {@link ImageCacheError}). Writes nothing. Resolves the report.
 *
 * @example
 * ```ts
 * await verifyBundle(nodeFs(), "/tmp/py.tar.zst"); // throws if a load would fail
 * ```
 */
export async function verifyBundle(fs: FileSystem, source: string | ReadableStream<Uint8Array>, options: InspectOptions = {}): Promise<BundleReport> {
  const pass = await streamBundle(fs, source, options, true);
  const label = pass.label;
  // the 0.6 load's steps 3, 5, 6, 7 first, as a load takes them
  const bundle = pass.contents.msb06 === null ? null : await checkMsb06Contents(pass.contents.msb06, label);
  const { report, seen } = await reportOf(pass, bundle?.head ?? null, bundle?.inventory.suggested_name ?? null);
  // integrity in the order the load verifies: archive order, or the inventory's
  const byDigest = new Map(seen.map((s) => [s.report.digest, s]));
  const order = bundle === null ? seen : bundle.snapshots.map((s) => byDigest.get(s.digest)!);
  for (const s of order) {
    const recorded = s.manifest.upper.integrity;
    if (s.report.state_kind === "checkpoint" || recorded === null) continue; // the load's verify: unsupported, not recorded
    checkIntegrityAlgorithm(s.where, recorded.algorithm);
    checkIntegrityMatch(s.where, s.form, recorded, s.report.integrity.computed);
  }
  if (report.head === null) throw noHeadSnapshot(label);
  // the load's own cache rule, on what the pass kept: nothing is staged
  await checkCarriedCache(ARCHIVE_NAMES, byDigest.get(report.head)!.manifest, pass.cache, label);
  return report;
}
