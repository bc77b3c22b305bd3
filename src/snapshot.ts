/**
 * Snapshot artifacts (SPEC §3): open (cheap checks), verify (reads every
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
import { isRenameCollision, lstatOrNull, readSmallFile, writeFileAtomic } from "./io.js";
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
import { basename, dirname, join } from "./path.js";
import { stagingName, stagingPrefix } from "./archive/staging.js";
import { copySparse, type Extent, scanFile } from "./sparse.js";

/** An opened snapshot artifact. */
export interface Snapshot {
  /** `sha256:` + hex SHA-256 of the canonical manifest. */
  readonly digest: string;
  /** The artifact directory. */
  readonly path: string;
  /** The directory's name. */
  readonly name: string;
  readonly manifest: Manifest;
  /** Path of the upper file. */
  readonly upperPath: string;
}

/** The outcome of {@link verifySnapshot}. */
export interface Verification {
  readonly status: "verified" | "not-recorded";
  readonly algorithm: string | null;
  readonly digest: string | null;
}

/**
 * Open a snapshot directory with the cheap checks only: the directory exists,
 * `manifest.json` parses and validates, the upper is a regular file (not a
 * link) of exactly `size_bytes`. Never reads the upper's contents.
 */
export async function openSnapshot(fs: FileSystem, dir: string): Promise<Snapshot> {
  const info = await lstatOrNull(fs, dir);
  if (info === null) throw new SnapshotNotFound(`snapshot directory ${dir} does not exist`);
  if (info.kind !== "directory") throw new SnapshotNotFound(`${dir} is not a snapshot directory (it is a ${info.kind})`);
  const manifestPath = join(dir, MANIFEST_FILENAME);
  const mInfo = await lstatOrNull(fs, manifestPath);
  if (mInfo === null) throw new SnapshotNotFound(`${dir} is not a snapshot: it has no ${MANIFEST_FILENAME}`);
  if (mInfo.kind !== "file") throw new InvalidManifest(`${manifestPath}: must be a regular file (it is a ${mInfo.kind})`);
  if (mInfo.size > MAX_MANIFEST_BYTES) throw new InvalidManifest(`${manifestPath}: manifest is ${mInfo.size} bytes; the limit is ${MAX_MANIFEST_BYTES}`);
  const manifest = parseManifest(await readSmallFile(fs, manifestPath, MAX_MANIFEST_BYTES), manifestPath);
  const upperPath = join(dir, manifest.upper.file);
  const uInfo = await lstatOrNull(fs, upperPath);
  if (uInfo === null) throw new InvalidSnapshot(`${upperPath}: the upper named by the manifest does not exist`);
  if (uInfo.kind !== "file") throw new InvalidSnapshot(`${upperPath}: the upper must be a regular file, not a ${uInfo.kind}`);
  if (uInfo.size !== manifest.upper.size_bytes) {
    throw new InvalidSnapshot(`${upperPath}: the upper is ${uInfo.size} bytes but the manifest records size_bytes ${manifest.upper.size_bytes}`);
  }
  return { digest: await manifestDigest(manifest), path: dir, name: basename(dir), manifest, upperPath };
}

/** Options of {@link verifySnapshot}. */
export interface VerifyOptions {
  /** Called with the number of upper bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
  /** Also return the upper's data extents (used by save to write sparse entries). */
  readonly extents?: boolean;
}

/**
 * Verify the upper against the recorded integrity, reading every byte.
 * `null` integrity → `"not-recorded"`. A mismatch throws
 * {@link SnapshotIntegrityError} naming both digests; an unknown algorithm
 * throws {@link SnapshotIntegrityError} too.
 */
export async function verifySnapshot(fs: FileSystem, snap: Snapshot, options: VerifyOptions = {}): Promise<Verification & { extents: Extent[] | null }> {
  const integrity = snap.manifest.upper.integrity;
  if (integrity !== null && integrity.algorithm !== "sha256" && integrity.algorithm !== SPARSE_SHA256) {
    throw new SnapshotIntegrityError(
      `${snap.upperPath}: integrity algorithm ${JSON.stringify(integrity.algorithm)} is not supported (known: sha256, ${SPARSE_SHA256})`,
    );
  }
  if (integrity === null && !options.extents) return { status: "not-recorded", algorithm: null, digest: null, extents: null };
  const r = await scanFile(fs, snap.upperPath, snap.manifest.upper.size_bytes, {
    algorithm: integrity?.algorithm ?? null,
    extents: options.extents ?? false,
    onProgress: options.onProgress,
  });
  if (integrity === null) return { status: "not-recorded", algorithm: null, digest: null, extents: r.extents };
  if (r.digest !== integrity.digest) {
    throw new SnapshotIntegrityError(
      `${snap.upperPath}: upper does not match its recorded integrity (${integrity.algorithm}): manifest records ${integrity.digest}, upper hashes to ${r.digest}`,
    );
  }
  return { status: "verified", algorithm: integrity.algorithm, digest: integrity.digest, extents: r.extents };
}

/** Check a snapshot name to create: non-empty, no `/`, no NUL, not starting with `.`. */
export function validateSnapshotName(name: string): void {
  if (name === "" || name.includes("/") || name.includes("\0") || name.startsWith(".")) {
    throw new InvalidArgument(`snapshot name ${JSON.stringify(name)} is not allowed: a name must be non-empty, contain no "/" and not start with "."`);
  }
}

/** What {@link createSnapshot} needs. */
export interface CreateOptions {
  /** The upper file to capture (copied sparsely; the source is not changed). */
  readonly upper: string;
  readonly image: { readonly ref: string; readonly manifest_digest: string };
  readonly parent?: string | null;
  readonly labels?: Readonly<Record<string, string>>;
  /** Record `msb-sparse-sha256-v1` integrity (reads every byte once more). */
  readonly integrity?: boolean;
  readonly sourceSandbox?: string | null;
  readonly format?: "raw" | "qcow2";
  readonly fstype?: string;
  /** Defaults to now, RFC 3339 in UTC with second precision. */
  readonly createdAt?: string;
  /** Replace an existing snapshot of the same name (the old one is removed only once the new one is in place). */
  readonly force?: boolean;
  readonly onProgress?: (bytes: number) => void;
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
 * Throws {@link SnapshotAlreadyExists} if `dir` exists and `force` is not set.
 */
export async function createSnapshot(fs: FileSystem, dir: string, options: CreateOptions): Promise<Snapshot> {
  const name = basename(dir);
  validateSnapshotName(name);
  if (options.parent != null && !isDigestForm(options.parent)) {
    throw new InvalidArgument(`parent ${JSON.stringify(options.parent)} must be a digest of the form algo:hex`);
  }
  const parentDir = dirname(dir);
  const existing = await lstatOrNull(fs, dir);
  if (existing !== null && !options.force) throw new SnapshotAlreadyExists(`snapshot ${dir} already exists (use force to replace it)`);
  const srcInfo = await lstatOrNull(fs, options.upper);
  if (srcInfo === null) throw new InvalidArgument(`upper file ${options.upper} does not exist`);
  if (srcInfo.kind !== "file") throw new InvalidArgument(`upper file ${options.upper} must be a regular file, not a ${srcInfo.kind}`);

  await fs.mkdir(parentDir, { recursive: true });
  const stage = await fs.makeTempDir(parentDir, stagingPrefix(".msb-create-"));
  let staged: Snapshot;
  try {
    const upperFile = "upper.ext4";
    const copied = await copySparse(fs, options.upper, join(stage, upperFile), srcInfo.size, options.integrity ? SPARSE_SHA256 : null, options.onProgress);
    const draft: Manifest = {
      schema: 1,
      format: options.format ?? "raw",
      fstype: options.fstype ?? "ext4",
      image: { ref: options.image.ref, manifest_digest: options.image.manifest_digest },
      parent: options.parent ?? null,
      created_at: options.createdAt ?? rfc3339Now(),
      labels: Object.fromEntries(Object.entries(options.labels ?? {})),
      upper: { file: upperFile, size_bytes: srcInfo.size, integrity: copied.digest ? { algorithm: SPARSE_SHA256, digest: copied.digest } : null },
      source_sandbox: options.sourceSandbox ?? null,
    };
    const manifest = validateManifest(draft, `manifest for ${dir}`);
    await writeFileAtomic(fs, join(stage, MANIFEST_FILENAME), canonicalManifest(manifest));
    // Open it while it is still staged: once it is renamed into place, nothing may fail any more.
    staged = await openSnapshot(fs, stage);
    await installDir(fs, stage, dir, options.force ?? false);
  } catch (e) {
    await fs.remove(stage, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  return { ...staged, path: dir, name, upperPath: join(dir, staged.manifest.upper.file) };
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
async function installDir(fs: FileSystem, stage: string, dir: string, replace: boolean): Promise<void> {
  let aside: string | null = null;
  if (replace && (await lstatOrNull(fs, dir)) !== null) {
    aside = join(dirname(dir), stagingName(".msb-replaced-"));
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
