/**
 * The snapshot store over a home: resolve a name, digest or path; list;
 * remove; reindex.
 *
 * The index (`<home>/snapshots/.snapbundle-index.json`) is only a cache of
 * what is on disk. Every use reconciles it first: one `readdir` per indexed
 * root and an `lstat` of each artifact's directory, manifest and upper. An
 * entry whose manifest (mtime, size) or upper (kind, size) changed is
 * re-opened; a missing or unreadable index is rebuilt. Deleting or corrupting
 * the file therefore costs time, never correctness.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * const { snapshots, problems } = await store.list();
 * const snap = await store.resolve("my-snap"); // or "sha256:…" or "./path"
 * ```
 * @module
 */

import { pendingPromotionTargets } from "./archive/journal.js";
import type { BundleParts, LoadOptions } from "./archive/load.js";
import { defaultSweepPolicy, findLeftovers, type Leftover, type SweepPolicy, REMOVING_PREFIX, stagingName, sweepLeftovers, type SweepResult } from "./staging.js";
import type { SaveOptions, SaveResult } from "./archive/save.js";
import type { MemberHashes } from "./archive/save06.js";
import { FsError, InvalidArgument, isFsError, OutputRefused, SnapbundleError, SnapshotInUse, SnapshotNotFound } from "./errors.js";
import type { FileSystem } from "./fs/types.js";
import { lstatOrNull, readSmallFile, writeAtomically } from "./io.js";
import { decodeUtf8Strict, parseStrictJson, plainJson } from "./json.js";
import { HomeLayout } from "./layout.js";
import { DESCRIPTOR_FILENAME } from "./descriptor.js";
import { MANIFEST_FILENAME } from "./manifest.js";
import { basename, dirname, join, normalize, resolve } from "./path.js";
import { claimReading, refuseWhileRead } from "./reading.js";
import {
  type CreateOptions,
  createSnapshot,
  openSnapshot,
  type Snapshot,
  type SnapshotForm,
  validateSnapshotName,
  type Verification,
  verifySnapshot,
} from "./snapshot.js";

/** A snapshot as listed: the CLI's `--json` shape. */
export interface SnapshotInfo {
  readonly digest: string;
  readonly name: string;
  readonly path: string;
  /** `manifest` (`manifest.json`) or `snapshot` (`snapshot.json`, microsandbox 0.6.7+). */
  readonly form: SnapshotForm;
  /** `file` (an upper payload) or `checkpoint` (0.6 resumable state: no payload; size is 0). */
  readonly state_kind: "file" | "checkpoint";
  /** `disk`, or `resumable` for a 0.6 checkpoint. A `manifest.json` snapshot is `disk`. */
  readonly scope: "disk" | "resumable";
  readonly parent: string | null;
  readonly image_ref: string;
  readonly image_manifest_digest: string;
  readonly format: "raw" | "qcow2";
  readonly fstype: string;
  readonly size_bytes: number;
  readonly created_at: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Save options the store adds: which bundle layout, and member hashes for the 0.6 one. */
export interface StoreSaveOptions {
  /**
   * `manifest` (`sha256-<16hex>/manifest.json`, every microsandbox reads it)
   * or `snapshot` (0.6.7+: `snapshots/…`, `files/…`, `archive.json`). Default:
   * the head's own form. A layout that cannot carry the head is refused, saying why.
   */
  readonly layout?: "manifest" | "snapshot";
  /** 0.6 layout: record member hashes (default `"auto"`: see {@link saveArchive06}). */
  readonly memberHashes?: MemberHashes;
}

/** A directory that looks like an artifact (it has a manifest) but does not open. */
export interface ListProblem {
  readonly path: string;
  readonly message: string;
}

/** The summary of a snapshot that {@link SnapshotStore.list} returns. */
export function snapshotInfo(s: Snapshot): SnapshotInfo {
  const m = s.manifest;
  return {
    digest: s.digest,
    name: s.name,
    path: s.path,
    form: s.form,
    state_kind: s.descriptor?.state.kind ?? "file",
    scope: s.descriptor?.scope ?? "disk",
    parent: m.parent,
    image_ref: m.image.ref,
    image_manifest_digest: m.image.manifest_digest,
    format: m.format,
    fstype: m.fstype,
    size_bytes: m.upper.size_bytes,
    created_at: m.created_at,
    labels: m.labels,
  };
}

/** What an index entry was built from: the descriptor's (mtime, size, file name) and the upper's (file name, size; null for checkpoint state). */
interface Stamp {
  readonly manifest: [number, number, string];
  readonly upper: [string, number] | null;
}

interface IndexEntry {
  readonly stamp: Stamp;
  readonly info?: SnapshotInfo;
  readonly problem?: string;
}

interface IndexFile {
  version: 1;
  roots: string[];
  entries: Record<string, IndexEntry>;
}

const INDEX_VERSION = 1;
const MAX_INDEX_BYTES = 64 << 20;

/** `e`, with `path` (the file at fault) for the CLI's `--json` error document. */
function withPath<E extends SnapbundleError>(e: E, path: string): E {
  Object.defineProperty(e, "path", { value: path, enumerable: false, configurable: true, writable: true });
  return e;
}

/** Refuse, naming it, a bundle path that is missing or a directory, before any work. */
async function checkBundlePath(fs: FileSystem, path: string): Promise<void> {
  let info;
  try {
    info = await fs.stat(path);
  } catch (e) {
    if (isFsError(e, "ENOENT") || isFsError(e, "ENOTDIR")) throw withPath(new InvalidArgument(`cannot load ${path}: no such file`, { cause: e }), path);
    throw e;
  }
  if (info.kind === "directory") throw withPath(new InvalidArgument(`cannot load ${path}: it is a directory, not a bundle; name the .tar.zst file to load`), path);
}

/** True when a CLI argument names a path rather than a bare name (docs/format.md §6). */
export function isPathLike(arg: string): boolean {
  return arg.includes("/") || arg.startsWith(".") || arg.startsWith("~");
}

/** The snapshots of one home, with a self-healing index. */
export class SnapshotStore {
  readonly layout: HomeLayout;
  /**
   * @param fs the filesystem to work on.
   * @param home the home directory (absolute).
   * @param context `cwd` resolves relative paths, `userHome` expands `~`.
   */
  constructor(
    readonly fs: FileSystem,
    home: string,
    readonly context: { readonly cwd?: string; readonly userHome?: string } = {},
  ) {
    if (!home.startsWith("/")) throw new InvalidArgument(`home ${JSON.stringify(home)} must be an absolute path`);
    this.layout = new HomeLayout(normalize(home));
  }

  /** Expand `~` and make a path absolute. */
  absolutePath(p: string): string {
    if (p === "~" || p.startsWith("~/")) {
      if (!this.context.userHome) throw new InvalidArgument(`cannot expand ${JSON.stringify(p)}: no user home directory is known`);
      return join(this.context.userHome, p.slice(1));
    }
    if (p.startsWith("/")) return normalize(p);
    if (!this.context.cwd) throw new InvalidArgument(`relative path ${JSON.stringify(p)} needs a working directory`);
    return resolve(this.context.cwd, p);
  }

  /**
   * Find a snapshot by path (an argument with `/`, or starting with `.` or
   * `~`), by name under `<home>/snapshots/`, or by digest (`sha256:…`, or a
   * unique prefix of at least 12 hex digits). Opens it (cheap checks only).
   */
  async resolve(ref: string): Promise<Snapshot> {
    if (ref === "") throw new InvalidArgument("a snapshot name, digest or path must not be empty");
    if (isPathLike(ref)) return openSnapshot(this.fs, this.absolutePath(ref));
    const byName = join(this.layout.snapshotsDir, ref);
    if ((await lstatOrNull(this.fs, byName)) !== null) return openSnapshot(this.fs, byName);
    // a name in another indexed root (a load's or create's --dest): found by name as `ls` shows it
    const named = (await this.list()).snapshots.filter((s) => s.name === ref);
    if (named.length > 1) throw new InvalidArgument(`name ${JSON.stringify(ref)} names ${named.length} snapshots: ${named.map((s) => s.path).join(", ")}; name one by its path or digest`);
    if (named.length === 1) return openSnapshot(this.fs, named[0]!.path);
    const found = await this.findByDigest(ref, { unique: true });
    if (found) return openSnapshot(this.fs, found.path);
    const short = /^(sha256:)?[0-9a-f]{1,11}$/.test(ref) ? `; a digest prefix needs at least 12 hex digits (${JSON.stringify(ref)} has ${ref.replace(/^sha256:/, "").length})` : "";
    throw new SnapshotNotFound(`no snapshot named ${JSON.stringify(ref)} in ${this.layout.snapshotsDir} or another indexed directory, and no indexed snapshot has that digest${short}`);
  }

  /**
   * Reclaim what killed operations left in this home (their owner provably
   * gone), as every command that writes does first. Best effort: a sweep that
   * fails is tried again by the next one.
   */
  private async reclaim(): Promise<void> {
    await this.gc().catch(() => {});
  }

  /**
   * Create a snapshot named `name` under `<home>/snapshots/` (or under
   * `destDir`, which then becomes an indexed root) from an upper file.
   * See {@link createSnapshot} for the guarantees.
   */
  async create(name: string, options: CreateOptions & { readonly destDir?: string }): Promise<SnapshotInfo> {
    validateSnapshotName(name);
    const root = options.destDir === undefined ? this.layout.snapshotsDir : this.absolutePath(options.destDir);
    await this.reclaim();
    return this.leavingNoTrace(root, async () => {
      // the home's form is read inside: a listing may write the index, which a failed create must not leave behind
      const form = options.form ?? (await this.homeForm());
      validateSnapshotName(name, form);
      const snap = await createSnapshot(this.fs, join(root, name), { ...options, form, upper: this.absolutePath(options.upper) });
      return snapshotInfo(snap);
    });
  }

  /**
   * Run a writing operation whose snapshots go to `root`. An extra root lives
   * only in the index, so it is recorded before anything is created there (a
   * snapshot is never made where the store would not find it); if the
   * operation fails, the root is forgotten again, and a home the operation
   * created (index included) is removed: a failed command leaves no trace.
   */
  private async leavingNoTrace<T>(root: string, body: () => Promise<T>): Promise<T> {
    const homeExisted = (await lstatOrNull(this.fs, this.layout.home)) !== null;
    const snapshotsExisted = (await lstatOrNull(this.fs, this.layout.snapshotsDir)) !== null;
    const added = root !== this.layout.snapshotsDir && (await this.ensureRoot(root));
    try {
      return await body();
    } catch (e) {
      if (added) {
        const prior = await this.readIndex().catch(() => null);
        const roots = (prior?.roots ?? []).filter((r) => normalize(r) !== normalize(root));
        await this.reconcile({ roots, mustWrite: true }).catch(() => {});
      }
      if (!snapshotsExisted) {
        await this.fs.remove(this.layout.indexPath, { force: true }).catch(() => {});
        for (const dir of [this.layout.snapshotsDir, ...(homeExisted ? [] : [this.layout.home])]) {
          if ((await this.fs.readdir(dir).catch(() => ["?"])).length === 0) await this.fs.remove(dir, { recursive: true, force: true }).catch(() => {});
        }
      }
      throw e;
    }
  }

  /**
   * The artifact form this home uses: `snapshot` when any indexed snapshot is a
   * `snapshot.json` artifact (a microsandbox 0.6.7+ home, which would migrate a
   * new `manifest.json` artifact, changing its identity), else `manifest`.
   * {@link create} writes this form unless told otherwise.
   */
  async homeForm(): Promise<SnapshotForm> {
    const { snapshots } = await this.list();
    return snapshots.some((s) => s.form === "snapshot") ? "snapshot" : "manifest";
  }

  /** Resolve and verify a snapshot, reading every byte of its upper. */
  async verify(ref: string, options: { onProgress?: (bytes: number) => void; signal?: AbortSignal } = {}): Promise<SnapshotInfo & { integrity: Verification }> {
    const snap = await this.resolve(ref);
    const v = await verifySnapshot(this.fs, snap, { onProgress: options.onProgress, signal: options.signal });
    return { ...snapshotInfo(snap), integrity: { status: v.status, algorithm: v.algorithm, digest: v.digest } };
  }

  /**
   * Save a snapshot (by name, digest or path) to `out` — a path, written
   * atomically, or a Web `WritableStream` (closed when done, aborted on
   * failure). See {@link saveArchive}.
   */
  async save(ref: string, out: string | WritableStream<Uint8Array>, options: SaveOptions & StoreSaveOptions = {}): Promise<SaveResult> {
    await this.reclaim();
    const head = await this.resolve(ref);
    const reading = await claimReading(this.fs, head);
    try {
      return await this.saveResolved(head, out, options);
    } finally {
      await reading?.release();
    }
  }

  private async saveResolved(head: Snapshot, out: string | WritableStream<Uint8Array>, options: SaveOptions & StoreSaveOptions): Promise<SaveResult> {
    const findParent = async (digest: string) => {
      const found = await this.findByDigest(digest);
      return found === null ? null : openSnapshot(this.fs, found.path);
    };
    const target = typeof out === "string" ? this.absolutePath(out) : out;
    if (typeof target === "string" && (await lstatOrNull(this.fs, target).catch(() => null))?.kind === "symlink") {
      // renaming the archive into place would replace the link, not the file it names
      throw withPath(new OutputRefused(`${target} is a symbolic link: name the file it points to (the CLI follows the link)`), target);
    }
    const layout = options.layout ?? (head.form === "snapshot" ? "snapshot" : "manifest");
    if (layout === "manifest") {
      if (head.form === "snapshot") {
        throw new InvalidArgument(
          `${head.path} is a snapshot.json artifact: the manifest.json bundle layout cannot carry it without changing its identity (and checkpoint state, extensions or Merkle integrity not at all); save it in the snapshot layout`,
        );
      }
      // save and load are imported when used: `ls`, `verify` and `rm` need neither, and
      // the archive modules are most of a CLI start-up's module graph (verify of a tiny
      // snapshot: 0.51-0.58 s with them loaded up front, 0.29 s without, on a loaded machine)
      const { saveArchive } = await import("./archive/save.js");
      return saveArchive(this.fs, this.layout, head, findParent, target, options);
    }
    // A manifest.json chain is translated as microsandbox's migration would (new identities);
    // save06 refuses what the translation cannot hold, saying why.
    // the 0.6 layout always writes payloads with holes as old-GNU sparse entries, as microsandbox 0.6.7+ does (and every 0.6.7+ reads them)
    const [{ collectAncestry }, { saveArchive06 }] = await Promise.all([import("./archive/save.js"), import("./archive/save06.js")]);
    const chain = options.withParents ? await collectAncestry(head, findParent) : [head];
    return saveArchive06(this.fs, this.layout, chain, target, options);
  }

  /**
   * Load a bundle from a path or a Web `ReadableStream` into this home (or
   * into `dest`, which becomes an indexed root). All or nothing; resolves the
   * head. See {@link loadArchive}.
   */
  async load(source: string | ReadableStream<Uint8Array> | BundleParts, options: LoadOptions = {}): Promise<SnapshotInfo> {
    const dest = options.dest === undefined ? undefined : this.absolutePath(options.dest);
    if (typeof source === "string") await checkBundlePath(this.fs, this.absolutePath(source));
    if (dest !== undefined) {
      const info = await this.fs.stat(dest).catch(() => null);
      if (info !== null && info.kind !== "directory") throw withPath(new InvalidArgument(`cannot load into ${dest}: it is not a directory (--dest names the directory the snapshots go into)`), dest);
    }
    return this.leavingNoTrace(dest ?? this.layout.snapshotsDir, async () => {
      // read-only: a load that fails must leave snapshots/ as it found it, index file included
      const findInstalled = async (digest: string) => (await this.findByDigest(digest, { readOnly: true }))?.path ?? null;
      const { loadArchive } = await import("./archive/load.js");
      const head = await loadArchive(this.fs, this.layout, typeof source === "string" ? this.absolutePath(source) : source, { findInstalled, ...options, dest });
      // The load is complete: refreshing the index (a cache) must not turn it into a failure.
      await this.reconcile().catch(() => {});
      return snapshotInfo(head);
    });
  }

  /** The directories where leftovers of this home's operations may lie: every indexed root, and `cache/tmp`. */
  private async leftoverDirs(extra: readonly string[] = []): Promise<string[]> {
    const index = await this.readIndex().catch(() => null);
    return [...new Set([this.layout.snapshotsDir, ...(index?.roots ?? []), this.layout.cacheTmpDir, ...extra.map((d) => this.absolutePath(d))].map(normalize))];
  }

  /**
   * Leftovers of interrupted or killed operations in this home (staging
   * directories, lease files), and `.partial-*` save outputs in `dirs`, each
   * with the verdict on its owner. Reads only.
   */
  async leftovers(dirs: readonly string[] = [], policy: SweepPolicy = defaultSweepPolicy()): Promise<Leftover[]> {
    return findLeftovers(this.fs, await this.leftoverDirs(dirs), policy);
  }

  /**
   * Remove the leftovers whose owner is provably gone (see {@link leftovers});
   * with `dryRun`, only report them. Those whose owner may still be alive —
   * here, or on another host or pid namespace sharing the home — are kept.
   */
  async gc(options: { dryRun?: boolean; dirs?: readonly string[]; policy?: SweepPolicy } = {}): Promise<SweepResult> {
    return sweepLeftovers(this.fs, await this.leftoverDirs(options.dirs), options.policy ?? defaultSweepPolicy(), { dryRun: options.dryRun });
  }

  /**
   * The indexed snapshot with this digest (or unique digest prefix), if any.
   * `readOnly`: do not refresh the index file. With `unique`, a digest installed twice (two copies) is an
   * {@link InvalidArgument} listing both, as is a prefix of two digests;
   * without it, any copy will do (the one under `<home>/snapshots` first).
   */
  async findByDigest(digest: string, options: { unique?: boolean; readOnly?: boolean } = {}): Promise<SnapshotInfo | null> {
    const full = digest.includes(":") ? digest : `sha256:${digest}`;
    const exactOnly = !/^sha256:[0-9a-f]{12,63}$/.test(full);
    const { snapshots } = await this.listWith({ readOnly: options.readOnly });
    const exact = snapshots.filter((s) => s.digest === full);
    if (exact.length > 1 && options.unique) {
      throw new InvalidArgument(`digest ${digest} names ${exact.length} snapshots: ${exact.map((s) => s.path).join(", ")}; name one by its name or path`);
    }
    if (exact.length > 0) return exact.find((s) => dirname(s.path) === this.layout.snapshotsDir) ?? exact[0]!;
    if (exactOnly) return null;
    const matches = snapshots.filter((s) => s.digest.startsWith(full));
    const distinct = new Set(matches.map((s) => s.digest));
    if (distinct.size > 1 || (options.unique && matches.length > 1)) {
      throw new InvalidArgument(`digest prefix ${digest} is ambiguous: it matches ${matches.map((s) => `${s.digest} (${s.path})`).join(", ")}`);
    }
    return matches[0] ?? null;
  }

  /**
   * Every snapshot in the indexed roots (`<home>/snapshots` plus any
   * directory added by {@link reindex}), sorted by name then path. Dot
   * directories and directories without a manifest are skipped; an artifact
   * that does not open is reported in `problems` instead of failing the list.
   */
  async list(): Promise<{ snapshots: SnapshotInfo[]; problems: ListProblem[] }> {
    return this.listWith({});
  }

  private async listWith(options: { strict?: boolean; readOnly?: boolean }): Promise<{ snapshots: SnapshotInfo[]; problems: ListProblem[] }> {
    const index = await this.reconcile({ strict: options.strict, readOnly: options.readOnly });
    const snapshots: SnapshotInfo[] = [];
    const problems: ListProblem[] = [];
    for (const [path, e] of Object.entries(index.entries)) {
      if (e.info) snapshots.push(e.info);
      else problems.push({ path, message: e.problem ?? "unreadable" });
    }
    snapshots.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { snapshots, problems };
  }

  /**
   * Indexed snapshots that name `digest` as their parent. Strict: an artifact
   * that cannot be read because of an I/O error fails the call (it might be a
   * child), rather than being skipped as a listing would report it.
   */
  async children(digest: string): Promise<SnapshotInfo[]> {
    const { snapshots } = await this.listWith({ strict: true });
    return snapshots.filter((s) => s.parent === digest);
  }

  /**
   * Remove a snapshot. Refused with {@link SnapshotInUse} while indexed
   * snapshots name it as parent, unless `force`. The directory is first
   * renamed to a dot-name (so it vanishes from listings at once), then deleted.
   */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<SnapshotInfo> {
    await this.reclaim();
    const snap = await this.resolve(ref);
    const kids = (await this.children(snap.digest)).filter((c) => c.path !== snap.path);
    if (kids.length > 0 && !options.force) {
      throw new SnapshotInUse(
        `snapshot ${snap.path} is the parent of ${kids.map((k) => k.path).join(", ")}; remove them first, or use --force (library: force: true) to remove it anyway`,
      );
    }
    await refuseWhileRead(this.fs, snap.path);
    const trash = join(dirname(snap.path), stagingName(REMOVING_PREFIX));
    await this.fs.rename(snap.path, trash);
    // checked again once it is out of sight: a save that claimed it meanwhile keeps it
    try {
      await refuseWhileRead(this.fs, snap.path);
    } catch (e) {
      await this.fs.rename(trash, snap.path).catch(() => {});
      throw e;
    }
    try {
      await this.fs.syncDir(dirname(snap.path));
    } catch (e) {
      // not durably gone: put it back, so a failed rm leaves the snapshot as it was
      await this.fs.rename(trash, snap.path).catch(() => {});
      throw e;
    }
    // From here the snapshot is gone from the home. Deleting the (dot-named,
    // never listed) trash and refreshing the index are best effort: a trash
    // left behind is swept later as an abandoned staging directory.
    await this.fs.remove(trash, { recursive: true, force: true }).catch(() => {});
    await this.reconcile().catch(() => {});
    return snapshotInfo(snap);
  }

  /**
   * Rebuild the index from the artifacts on disk, adding `dir` (absolute or
   * relative to `cwd`) as an indexed root. Returns what is now indexed.
   */
  async reindex(dir?: string): Promise<{ snapshots: SnapshotInfo[]; problems: ListProblem[] }> {
    const extra = dir === undefined ? [] : [this.absolutePath(dir)];
    for (const d of extra) {
      const info = await lstatOrNull(this.fs, d).catch(() => null);
      if (info?.kind !== "directory") {
        const what = info === null ? "does not exist" : "is not a directory";
        throw withPath(new InvalidArgument(`cannot index ${d}: it ${what}; nothing was added to the index`), d);
      }
    }
    await this.reclaim();
    const prior = await this.readIndex();
    // a new root is remembered only by the index: writing it is then part of the command
    await this.reconcile({ fresh: true, roots: [...(prior?.roots ?? []), ...extra], mustWrite: extra.length > 0 });
    return this.list();
  }

  /** Add a root (e.g. a load `dest`) to the index without rebuilding it. */
  async addRoot(dir: string): Promise<void> {
    const prior = await this.readIndex();
    await this.reconcile({ roots: [...(prior?.roots ?? []), dir] });
  }

  /**
   * Make sure `dir` is an indexed root, writing the index if it is not. Unlike
   * the cache refreshes, a failure to write is an error: an extra root is
   * remembered only by the index. Resolves whether it was added.
   */
  private async ensureRoot(dir: string): Promise<boolean> {
    const prior = await this.readIndex();
    if (prior?.roots.map(normalize).includes(normalize(dir))) return false;
    await this.reconcile({ roots: [...(prior?.roots ?? []), dir], mustWrite: true });
    return true;
  }

  /**
   * The index, or `null` when it is missing or does not parse (then it is
   * rebuilt). An I/O error reading it is thrown: rebuilding from a file that
   * could not be read would forget the extra roots it records.
   */
  private async readIndex(): Promise<IndexFile | null> {
    let bytes: Uint8Array;
    try {
      bytes = await readSmallFile(this.fs, this.layout.indexPath, MAX_INDEX_BYTES);
    } catch (e) {
      if (e instanceof FsError && e.errno !== "ENOENT" && e.errno !== "ENOTDIR") throw e;
      return null; // missing, or too large to be ours: rebuild
    }
    try {
      const raw = plainJson(parseStrictJson(decodeUtf8Strict(bytes))) as IndexFile;
      if (raw?.version !== INDEX_VERSION || !Array.isArray(raw.roots) || !raw.roots.every((r) => typeof r === "string") || typeof raw.entries !== "object" || raw.entries === null) return null;
      // The first root is always the home's own snapshots directory. Another one
      // means the home was copied or moved here: that old path is not an extra root.
      if (raw.roots.length > 0 && normalize(raw.roots[0]!) !== this.layout.snapshotsDir) return { version: INDEX_VERSION, roots: raw.roots.slice(1), entries: {} };
      return raw;
    } catch {
      return null; // corrupt: rebuild
    }
  }

  /**
   * The cheap part of a stamp: is `dir` an artifact directory, and its
   * descriptor's (mtime, size, name) — `snapshot.json` if present (as open
   * prefers it), else `manifest.json`.
   */
  private async manifestStamp(dir: string): Promise<[number, number, string] | null> {
    const d = await lstatOrNull(this.fs, dir);
    if (d === null || d.kind !== "directory") return null;
    for (const file of [DESCRIPTOR_FILENAME, MANIFEST_FILENAME]) {
      const m = await lstatOrNull(this.fs, join(dir, file));
      if (m !== null) return [m.mtimeMs, m.size, file];
    }
    return null;
  }

  /**
   * Bring the index up to date with the disk and write it if it changed.
   * `strict`: an artifact that fails to open with an I/O error fails the call
   * instead of becoming a listed problem. `mustWrite`: a failure to write the
   * index is an error (otherwise it is ignored: the index is a cache).
   */
  private async reconcile(options: { fresh?: boolean; roots?: string[]; strict?: boolean; mustWrite?: boolean; readOnly?: boolean } = {}): Promise<IndexFile> {
    const prior = options.fresh ? null : await this.readIndex();
    const roots = [...new Set([this.layout.snapshotsDir, ...(options.roots ?? prior?.roots ?? [])].map(normalize))];
    const next: IndexFile = { version: INDEX_VERSION, roots, entries: {} };
    // Targets of a load's uncommitted promotion (live, or crashed and not yet recovered) are not shown.
    const pending = await pendingPromotionTargets(this.fs, this.layout);
    for (const root of roots) {
      let names: string[];
      try {
        names = await this.fs.readdir(root);
      } catch (e) {
        // A root that is gone has no snapshots; one that cannot be read is an
        // error — skipping it would hide its snapshots (and make rm think a
        // parent had no children).
        if (isFsError(e, "ENOENT") || isFsError(e, "ENOTDIR")) continue;
        throw e;
      }
      for (const name of names.sort()) {
        if (name.startsWith(".")) continue;
        const dir = join(root, name);
        if (pending.has(dir)) continue;
        const manifest = await this.manifestStamp(dir);
        if (manifest === null) continue; // not an artifact
        const old = prior?.entries[dir];
        next.entries[dir] = old && (await this.stillValid(dir, old, manifest)) ? old : await this.openEntry(dir, manifest, options.strict ?? false);
      }
    }
    if (!options.readOnly && JSON.stringify(prior) !== JSON.stringify(next)) {
      const write = async () => {
        if (options.mustWrite) await this.fs.mkdir(this.layout.snapshotsDir, { recursive: true });
        await writeAtomically(this.fs, this.layout.indexPath, new TextEncoder().encode(JSON.stringify(next)));
      };
      if (options.mustWrite) await write();
      // A cache refresh: only into a snapshots directory that exists (a read-only
      // command never creates a home), and a failure to write is silent.
      else if ((await lstatOrNull(this.fs, this.layout.snapshotsDir).catch(() => null))?.kind === "directory") await write().catch(() => {});
    }
    return next;
  }

  private async stillValid(dir: string, old: IndexEntry, manifest: [number, number, string]): Promise<boolean> {
    const s = old.stamp;
    if (!old.info || !Array.isArray(s.manifest) || s.manifest[0] !== manifest[0] || s.manifest[1] !== manifest[1] || s.manifest[2] !== manifest[2]) return false;
    if (s.upper === null) return old.info.state_kind === "checkpoint";
    const up = await lstatOrNull(this.fs, join(dir, s.upper[0]));
    return up !== null && up.kind === "file" && up.size === s.upper[1];
  }

  private async openEntry(dir: string, manifest: [number, number, string], strict: boolean): Promise<IndexEntry> {
    try {
      const snap = await openSnapshot(this.fs, dir);
      const upper: [string, number] | null = snap.upperPath === null ? null : [snap.manifest.upper.file, snap.manifest.upper.size_bytes];
      return { stamp: { manifest, upper }, info: snapshotInfo(snap) };
    } catch (e) {
      if (!(e instanceof SnapbundleError)) throw e;
      if (strict && e instanceof FsError) throw e;
      return { stamp: { manifest, upper: null }, problem: e.message };
    }
  }
}
