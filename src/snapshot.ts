/**
 * Snapshot artifacts (docs/format.md §6): open (cheap checks), verify (reads every
 * byte) and create (upper first, then the manifest through a temporary file
 * and a rename, the whole directory staged and renamed into place).
 *
 * @example
 * ```ts
 * import { nodeFs, openSnapshot, verifySnapshot } from "snapbundle";
 * const fs = nodeFs();
 * const snap = await openSnapshot(fs, "/root/.microsandbox/snapshots/a");
 * const v = await verifySnapshot(fs, snap); // { status: "verified", … }
 * ```
 * @module
 */

import {
  InvalidArgument,
  InvalidManifest,
  InvalidSnapshot,
  isFsError,
  SnapshotAlreadyExists,
  SnapshotIntegrityError,
  SnapshotNotFound,
} from "./errors.js";
import type { FileSystem } from "./fs/types.js";
import { isRenameCollision, lstatOrNull, readSmallFile, writeAtomically } from "./io.js";
import {
  canonicalManifest,
  isDigestForm,
  type Manifest,
  MANIFEST_FILENAME,
  manifestDigest,
  MAX_MANIFEST_BYTES,
  parseManifest,
  SPARSE_SHA256,
  validateManifest,
} from "./manifest.js";
import {
  canonicalDescriptor,
  DESCRIPTOR_FILENAME,
  descriptorDigest,
  type DescriptorIntegrity,
  MAX_DESCRIPTOR_BYTES,
  MERKLE_BLAKE3,
  MERKLE_LEAF_SIZE,
  isSha256Digest,
  normalizeRfc3339,
  parseDescriptor,
  type SnapshotDescriptor,
  validateDescriptor,
} from "./descriptor.js";
import { merkleRootOfFile, MerkleBuilder } from "./merkle.js";
import { abortingProgress, throwIfAborted } from "./abort.js";
import { basename, dirname, join } from "./path.js";
import { digestProblem } from "./reference.js";
import { Lease } from "./lease.js";
import { CREATE_STAGE_PREFIX, REPLACED_PREFIX } from "./staging.js";
import { copySparse, type Extent, scanFile } from "./sparse.js";

/**
 * Which artifact form a snapshot is: `manifest` (`manifest.json`, the seeds
 * and microsandbox ≤ 0.6.6) or `snapshot` (`snapshot.json`, microsandbox 0.6.7+).
 */
export type SnapshotForm = "manifest" | "snapshot";

/** An opened snapshot artifact, of either form. */
export interface Snapshot {
  /** `sha256:` + hex SHA-256 of the canonical manifest or descriptor. */
  readonly digest: string;
  /** The artifact directory. */
  readonly path: string;
  /** The directory's name. */
  readonly name: string;
  /** Which descriptor the artifact holds. */
  readonly form: SnapshotForm;
  /**
   * The manifest; for the `snapshot` form a read-only view of the descriptor in
   * manifest shape (Merkle integrity shows its root as `digest`; a checkpoint
   * shows no upper: file `""`, size 0). Never written anywhere.
   */
  readonly manifest: Manifest;
  /** The 0.6 descriptor (`snapshot` form only). */
  readonly descriptor: SnapshotDescriptor | null;
  /** Path of the upper file, or `null` for checkpoint state (no payload). */
  readonly upperPath: string | null;
}

/** The outcome of {@link verifySnapshot}. `unsupported`: checkpoint state, which has no payload to check. */
export interface Verification {
  readonly status: "verified" | "not-recorded" | "unsupported";
  readonly algorithm: string | null;
  readonly digest: string | null;
}

/**
 * The manifest-shaped view of a descriptor that {@link Snapshot.manifest} holds.
 *
 * @example
 * ```ts
 * manifestView(parseDescriptor(text)).upper.size_bytes;
 * ```
 */
export function manifestView(d: SnapshotDescriptor): Manifest {
  const st = d.state;
  const integrity = (i: DescriptorIntegrity | null) =>
    i === null ? null : i.algorithm === MERKLE_BLAKE3 ? { algorithm: i.algorithm, digest: i.root } : { algorithm: i.algorithm, digest: i.digest };
  return {
    schema: 1,
    format: st.kind === "file" ? st.format : "raw",
    fstype: st.kind === "file" ? st.fstype : "",
    image: d.image,
    parent: d.parent,
    created_at: d.created_at,
    labels: d.labels,
    upper: st.kind === "file" ? { file: st.upper.file, size_bytes: st.upper.size_bytes, integrity: integrity(st.upper.integrity) } : { file: "", size_bytes: 0, integrity: null },
    source_sandbox: d.source_sandbox,
  };
}

async function checkUpper(fs: FileSystem, upperPath: string, size: number, source: string): Promise<void> {
  const uInfo = await lstatOrNull(fs, upperPath);
  if (uInfo === null) throw new InvalidSnapshot(`${upperPath}: the upper named by the ${source} does not exist`);
  if (uInfo.kind !== "file") throw new InvalidSnapshot(`${upperPath}: the upper must be a regular file, not a ${uInfo.kind}`);
  if (uInfo.size !== size) throw new InvalidSnapshot(`${upperPath}: the upper is ${uInfo.size} bytes but the ${source} records size_bytes ${size}`);
}

async function openDescriptorSnapshot(fs: FileSystem, dir: string, path: string, size: number): Promise<Snapshot> {
  if (size > MAX_DESCRIPTOR_BYTES) throw new InvalidManifest(`${path}: descriptor is ${size} bytes; the limit is ${MAX_DESCRIPTOR_BYTES}`);
  const d = parseDescriptor(await readSmallFile(fs, path, MAX_DESCRIPTOR_BYTES), path);
  let upperPath: string | null = null;
  if (d.state.kind === "file") {
    upperPath = join(dir, d.state.upper.file);
    await checkUpper(fs, upperPath, d.state.upper.size_bytes, DESCRIPTOR_FILENAME);
  }
  return { digest: await descriptorDigest(d), path: dir, name: basename(dir), form: "snapshot", manifest: manifestView(d), descriptor: d, upperPath };
}

/**
 * Open a snapshot directory with the cheap checks only: the directory exists,
 * its descriptor parses and validates — `snapshot.json` (0.6) if present,
 * else `manifest.json` — and a file-state upper is a regular file (not a
 * link) of exactly `size_bytes`. Never reads the upper's contents, and never
 * changes the artifact (migrating `manifest.json` is microsandbox's job).
 */
export async function openSnapshot(fs: FileSystem, dir: string): Promise<Snapshot> {
  const info = await lstatOrNull(fs, dir);
  if (info === null) throw new SnapshotNotFound(`snapshot directory ${dir} does not exist`);
  if (info.kind !== "directory") throw new SnapshotNotFound(`${dir} is not a snapshot directory (it is a ${info.kind})`);
  const descriptorPath = join(dir, DESCRIPTOR_FILENAME);
  const dInfo = await lstatOrNull(fs, descriptorPath);
  if (dInfo !== null) {
    if (dInfo.kind !== "file") throw new InvalidManifest(`${descriptorPath}: must be a regular file (it is a ${dInfo.kind})`);
    return openDescriptorSnapshot(fs, dir, descriptorPath, dInfo.size);
  }
  const manifestPath = join(dir, MANIFEST_FILENAME);
  const mInfo = await lstatOrNull(fs, manifestPath);
  if (mInfo === null) throw new SnapshotNotFound(`${dir} is not a snapshot: it has neither ${DESCRIPTOR_FILENAME} nor ${MANIFEST_FILENAME}`);
  if (mInfo.kind !== "file") throw new InvalidManifest(`${manifestPath}: must be a regular file (it is a ${mInfo.kind})`);
  if (mInfo.size > MAX_MANIFEST_BYTES) throw new InvalidManifest(`${manifestPath}: manifest is ${mInfo.size} bytes; the limit is ${MAX_MANIFEST_BYTES}`);
  const manifest = parseManifest(await readSmallFile(fs, manifestPath, MAX_MANIFEST_BYTES), manifestPath);
  const upperPath = join(dir, manifest.upper.file);
  await checkUpper(fs, upperPath, manifest.upper.size_bytes, "manifest");
  return { digest: await manifestDigest(manifest), path: dir, name: basename(dir), form: "manifest", manifest, descriptor: null, upperPath };
}

/** The integrity algorithms verify knows how to check. */
export const INTEGRITY_ALGORITHMS: readonly string[] = ["sha256", SPARSE_SHA256, MERKLE_BLAKE3];

/**
 * Verify's algorithm rule, for an upper on disk and one streaming past in a
 * bundle: the recorded algorithm is one of {@link INTEGRITY_ALGORITHMS}, else
 * {@link SnapshotIntegrityError} naming `where` (the upper).
 *
 * @example
 * ```ts
 * checkIntegrityAlgorithm("/h/snapshots/a/upper.ext4", "md5"); // throws: "md5" is not supported
 * ```
 */
export function checkIntegrityAlgorithm(where: string, algorithm: string): void {
  if (!INTEGRITY_ALGORITHMS.includes(algorithm)) {
    throw new SnapshotIntegrityError(`${where}: integrity algorithm ${JSON.stringify(algorithm)} is not supported (known: ${INTEGRITY_ALGORITHMS.join(", ")})`);
  }
}

/**
 * Verify's match rule, for an upper on disk and one streaming past in a
 * bundle: what the upper hashes to (`actual`, `null` when it could not be
 * hashed) is the recorded digest (a Merkle root for
 * `msb-file-merkle-blake3-v1`), else {@link SnapshotIntegrityError} naming
 * `where`, the descriptor of `form` and both values.
 *
 * @example
 * ```ts
 * checkIntegrityMatch("a.tar.zst: files/ab…/upper.ext4", "snapshot", { algorithm: "sha256", digest }, computed);
 * ```
 */
export function checkIntegrityMatch(where: string, form: SnapshotForm, recorded: { readonly algorithm: string; readonly digest: string }, actual: string | null, path?: string): void {
  if (actual !== recorded.digest) {
    throw new SnapshotIntegrityError(
      `${where}: upper does not match its recorded integrity (${recorded.algorithm}): ${form === "snapshot" ? DESCRIPTOR_FILENAME : MANIFEST_FILENAME} records ${recorded.digest}, upper hashes to ${actual}`,
      { path },
    );
  }
}

/** Options of {@link verifySnapshot}. */
export interface VerifyOptions {
  /** Called with the number of upper bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
  /** Also return the upper's data extents (used by save to write sparse entries). */
  readonly extents?: boolean;
  /** Stop reading (rejecting with `OperationAborted`) once this fires. */
  readonly signal?: AbortSignal;
  /**
   * The upper's digests by algorithm, hashed as a load's staging wrote it (`archive/unpack.ts`), with the size
   * they covered: when they cover the recorded algorithm and size (and no `extents`), the upper is not read again.
   */
  readonly hashed?: { readonly size: number; readonly digests: ReadonlyMap<string, string> };
}

/**
 * Verify the upper against the recorded integrity, reading every byte:
 * `sha256`, `msb-sparse-sha256-v1` or `msb-file-merkle-blake3-v1` (zero
 * leaves are not hashed). `null` integrity → `"not-recorded"`; checkpoint
 * state (no payload) → `"unsupported"`, not an error. A mismatch throws
 * {@link SnapshotIntegrityError} naming both values; an unknown algorithm
 * throws {@link SnapshotIntegrityError} too.
 */
export async function verifySnapshot(fs: FileSystem, snap: Snapshot, options: VerifyOptions = {}): Promise<Verification & { extents: Extent[] | null }> {
  if (snap.upperPath === null) return { status: "unsupported", algorithm: null, digest: null, extents: null };
  const upperPath = snap.upperPath;
  const size = snap.manifest.upper.size_bytes;
  const integrity = snap.manifest.upper.integrity;
  const merkle = integrity?.algorithm === MERKLE_BLAKE3;
  if (integrity !== null) checkIntegrityAlgorithm(upperPath, integrity.algorithm);
  throwIfAborted(options.signal);
  if (integrity === null && !options.extents) return { status: "not-recorded", algorithm: null, digest: null, extents: null };
  const written = options.hashed?.size === size ? options.hashed.digests.get(integrity?.algorithm ?? "") : undefined;
  if (integrity !== null && written !== undefined && !options.extents) {
    checkIntegrityMatch(upperPath, snap.form, integrity, written, upperPath);
    options.onProgress?.(size);
    return { status: "verified", algorithm: integrity.algorithm, digest: integrity.digest, extents: null };
  }
  const tree = merkle ? new MerkleBuilder(size) : null;
  const r = await scanFile(fs, upperPath, size, {
    algorithm: merkle ? null : (integrity?.algorithm ?? null),
    extents: options.extents ?? false,
    onProgress: abortingProgress(options.signal, options.onProgress),
    onChunk: tree === null ? undefined : (chunk, runs) => tree.addChunk(chunk.data, runs),
    onHole: tree === null ? undefined : (_, length) => tree.addZeros(length),
  });
  if (integrity === null) return { status: "not-recorded", algorithm: null, digest: null, extents: r.extents };
  checkIntegrityMatch(upperPath, snap.form, integrity, tree === null ? r.digest : await tree.finish(), upperPath);
  return { status: "verified", algorithm: integrity.algorithm, digest: integrity.digest, extents: r.extents };
}

/**
 * Check a snapshot name to create: non-empty, no `/`, no NUL, not starting
 * with `.`. For the `snapshot` form also microsandbox 0.6's rule (no `\\` or
 * `:`, not starting with `~`), so the name stays addressable there.
 */
export function validateSnapshotName(name: string, form: SnapshotForm = "manifest"): void {
  if (name === "" || name.includes("/") || name.includes("\0") || name.startsWith(".")) {
    throw new InvalidArgument(`snapshot name ${JSON.stringify(name)} is not allowed: a name must be non-empty, contain no "/" and not start with "."`);
  }
  if (form === "snapshot" && (name.includes("\\") || name.includes(":") || name.startsWith("~"))) {
    throw new InvalidArgument(`snapshot name ${JSON.stringify(name)} is not allowed for a snapshot.json artifact: microsandbox 0.6 refuses "\\", ":" and a leading "~"`);
  }
}

/** What {@link createSnapshot} needs. */
export interface CreateOptions {
  /** The upper file to capture (copied sparsely; the source is not changed). */
  readonly upper: string;
  /** The image; `manifest_digest` is `sha256:` + 64 lowercase hex digits (the CLI's `--image-digest` rule, {@link digestProblem}). */
  readonly image: { readonly ref: string; readonly manifest_digest: string };
  readonly parent?: string | null;
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Record integrity: `msb-sparse-sha256-v1` in a `manifest.json`, or
   * `msb-file-merkle-blake3-v1` in a `snapshot.json` (as microsandbox 0.6.9+
   * records it on request).
   */
  readonly integrity?: boolean;
  /** Which descriptor to write: `manifest` (`manifest.json`, the default here) or `snapshot` (`snapshot.json`). */
  readonly form?: SnapshotForm;
  readonly sourceSandbox?: string | null;
  readonly format?: "raw" | "qcow2";
  readonly fstype?: string;
  /** Defaults to now, RFC 3339 in UTC with second precision. */
  readonly createdAt?: string;
  /** Replace an existing snapshot of the same name (the old one is removed only once the new one is in place). */
  readonly force?: boolean;
  readonly onProgress?: (bytes: number) => void;
  /** Stop (rejecting with `OperationAborted`, nothing left behind) once this fires. */
  readonly signal?: AbortSignal;
}

/** RFC 3339 UTC timestamp with second precision, e.g. `2026-05-01T12:00:00Z`. */
export function rfc3339Now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Create a snapshot artifact at `dir` (whose parent must exist). The
 * directory is built under a dot-named staging directory beside it — upper
 * first, then the manifest via a temporary file and a rename — and renamed
 * into place only when complete, so nobody ever sees a half-made snapshot.
 * Throws {@link SnapshotAlreadyExists} if `dir` exists and `force` is not set,
 * {@link InvalidArgument} for an image digest the CLI's `--image-digest`
 * refuses (naming `image.manifest_digest` and the reason), or a `createdAt`
 * that is not RFC 3339.
 */
export async function createSnapshot(fs: FileSystem, dir: string, options: CreateOptions): Promise<Snapshot> {
  const name = basename(dir);
  validateSnapshotName(name, options.form ?? "manifest");
  // the CLI's --image-digest rule, from the same function: a digest microsandbox 0.6 accepts
  const digestRefused = digestProblem(options.image.manifest_digest);
  if (digestRefused !== null) throw new InvalidArgument(`image.manifest_digest ${JSON.stringify(options.image.manifest_digest)} ${digestRefused}`);
  // Reading keeps a manifest's created_at as written; what we write is RFC 3339 in both forms.
  if (options.createdAt !== undefined && normalizeRfc3339(options.createdAt) === null) {
    throw new InvalidArgument(`createdAt ${JSON.stringify(options.createdAt)} must be an RFC 3339 timestamp, such as 2026-05-01T12:00:00Z`);
  }
  if (options.parent != null && options.form === "snapshot" && !isSha256Digest(options.parent)) {
    throw new InvalidArgument(`parent ${JSON.stringify(options.parent)} must be "sha256:" followed by 64 lowercase hex digits in a snapshot.json`);
  }
  if (options.parent != null && !isDigestForm(options.parent)) {
    throw new InvalidArgument(`parent ${JSON.stringify(options.parent)} must be a digest of the form algo:hex`);
  }
  const parentDir = dirname(dir);
  const existing = await lstatOrNull(fs, dir);
  if (existing !== null && !options.force) throw new SnapshotAlreadyExists(`snapshot ${dir} already exists (use force to replace it)`);
  const srcInfo = await lstatOrNull(fs, options.upper);
  if (srcInfo === null) throw new InvalidArgument(`upper file ${options.upper} does not exist`);
  if (srcInfo.kind !== "file") throw new InvalidArgument(`upper file ${options.upper} must be a regular file, not a ${srcInfo.kind}`);

  // A failed create leaves no directory it made (the home included).
  const made = await missingAncestors(fs, parentDir);
  await fs.mkdir(parentDir, { recursive: true });
  const lease = new Lease(fs);
  let staged: Snapshot;
  const stage = join(parentDir, lease.name(CREATE_STAGE_PREFIX));
  try {
    await lease.cover(parentDir);
    await fs.mkdir(stage);
    const upperFile = "upper.ext4";
    const form = options.form ?? "manifest";
    const sparseIntegrity = options.integrity && form === "manifest" ? SPARSE_SHA256 : null;
    const copied = await copySparse(fs, options.upper, join(stage, upperFile), srcInfo.size, sparseIntegrity, abortingProgress(options.signal, options.onProgress));
    const base = {
      image: { ref: options.image.ref, manifest_digest: options.image.manifest_digest },
      parent: options.parent ?? null,
      created_at: options.createdAt ?? rfc3339Now(),
      labels: Object.fromEntries(Object.entries(options.labels ?? {})),
      source_sandbox: options.sourceSandbox ?? null,
    };
    if (form === "snapshot") {
      // the copy is hashed (holes skipped), not the source, which may change under us
      const root = options.integrity ? await merkleRootOfFile(fs, join(stage, upperFile), srcInfo.size, abortingProgress(options.signal, undefined)) : null;
      const draft: SnapshotDescriptor = {
        schema: 1,
        artifact: "snapshot",
        scope: "disk",
        ...base,
        state: {
          kind: "file",
          format: options.format ?? "raw",
          fstype: options.fstype ?? "ext4",
          upper: {
            file: upperFile,
            size_bytes: srcInfo.size,
            integrity: root === null ? null : { algorithm: MERKLE_BLAKE3, root, logical_size: srcInfo.size, leaf_size: MERKLE_LEAF_SIZE },
          },
        },
        extensions: {},
        requires: [],
      };
      const descriptor = validateDescriptor(draft, `snapshot.json for ${dir}`);
      await writeAtomically(fs, join(stage, DESCRIPTOR_FILENAME), canonicalDescriptor(descriptor));
    } else {
      const draft: Manifest = {
        schema: 1,
        format: options.format ?? "raw",
        fstype: options.fstype ?? "ext4",
        ...base,
        upper: { file: upperFile, size_bytes: srcInfo.size, integrity: copied.digest ? { algorithm: SPARSE_SHA256, digest: copied.digest } : null },
      };
      const manifest = validateManifest(draft, `manifest for ${dir}`);
      await writeAtomically(fs, join(stage, MANIFEST_FILENAME), canonicalManifest(manifest));
    }
    // Open it while it is still staged: once it is renamed into place, nothing may fail any more.
    staged = await openSnapshot(fs, stage);
    throwIfAborted(options.signal);
    await installDir(fs, stage, dir, options.force ?? false, lease);
  } catch (e) {
    await fs.remove(stage, { recursive: true, force: true }).catch(() => {});
    await lease.release();
    for (const d of made) {
      if ((await fs.readdir(d).catch(() => ["?"])).length === 0) await fs.remove(d, { recursive: true, force: true }).catch(() => {});
    }
    throw e;
  }
  await lease.release();
  return { ...staged, path: dir, name, upperPath: staged.upperPath === null ? null : join(dir, staged.manifest.upper.file) };
}

/** The directories from `dir` up that do not exist yet, deepest first. */
async function missingAncestors(fs: FileSystem, dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; d !== "/" && (await lstatOrNull(fs, d)) === null; d = dirname(d)) missing.push(d);
  return missing;
}

/**
 * Rename a complete staged directory to `dir`, and fsync the parent so the
 * rename is durable. With `replace`, an existing `dir` is first moved aside
 * (dot-named) and removed only after the new one is in place. If the rename
 * or the fsync fails, everything is moved back: `dir` is as it was and the
 * new snapshot is back at `stage`. Deleting the replaced snapshot is best
 * effort: a leftover `.msb-replaced-*` directory is never listed and is swept
 * later.
 */
async function installDir(fs: FileSystem, stage: string, dir: string, replace: boolean, lease: Lease): Promise<void> {
  let aside: string | null = null;
  if (replace && (await lstatOrNull(fs, dir)) !== null) {
    aside = join(dirname(dir), lease.name(REPLACED_PREFIX));
    await fs.rename(dir, aside);
  }
  const putBack = async () => {
    if (aside !== null) await fs.rename(aside, dir).catch(() => {});
  };
  try {
    await fs.rename(stage, dir);
  } catch (e) {
    await putBack();
    if (isRenameCollision(e)) {
      throw new SnapshotAlreadyExists(`snapshot ${dir} already exists`, { cause: e });
    }
    throw e;
  }
  try {
    await fs.syncDir(dirname(dir));
  } catch (e) {
    await fs.rename(dir, stage).catch(() => {});
    await putBack();
    throw e;
  }
  if (aside !== null) await fs.remove(aside, { recursive: true, force: true }).catch(() => {});
}
