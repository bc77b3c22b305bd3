/**
 * The image cache a bundle may carry (docs/format.md §8.2, §10 step 7): the cached metadata of the
 * head's image, its fsmeta EROFS, its VMDK descriptor, and one EROFS per
 * layer. Save uses {@link requiredCacheFiles} to pick what to ship; load and
 * `verify BUNDLE` use {@link checkCarriedCache} to decide whether what a
 * bundle carries may be installed.
 *
 * @example
 * ```ts
 * const shipped = await requiredCacheFiles(fs, layout, head.manifest); // save
 * const install = await checkCarriedCache(layout, head.manifest, carried, "a.tar.zst"); // load, verify BUNDLE
 * ```
 * @module
 */

import { sha256Hex } from "../../wasm/mod.js";
import { ImageCacheError, InvalidArgument } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { lstatOrNull, readSmallFile, withFile } from "../io.js";
import { decodeUtf8Strict, parseStrictJson, plainJson } from "../json.js";
import type { FileInfo } from "../fs/types.js";
import { CACHE_KINDS, EROFS_BLOCK, type HomeLayout, isErofsMaterialized } from "../layout.js";
import { isDigestForm, type Manifest } from "../manifest.js";
import { dirname } from "../path.js";
import { EROFS_RULE, ErofsCheck } from "./erofs.js";

/** The largest image metadata file snapbundle reads (64 MiB). */
export const MAX_METADATA_BYTES = 64 << 20;

/**
 * Most JSON values image metadata may hold (its raw manifest and config are
 * strings, each one value): bounds the memory of reading a hostile document.
 */
export const MAX_METADATA_VALUES = 1_000_000;

/** The fields of `cache/manifests/<key>.json` snapbundle checks (`config` stays opaque). */
export interface CachedImageMetadata {
  readonly manifest_digest: string;
  readonly config_digest: string;
  readonly raw_manifest_json: string;
  readonly raw_config_json: string;
  readonly layers: readonly { readonly digest: string; readonly diff_id: string }[];
}

/** A cache file: where it is (or is staged) and its archive name, e.g. `cache/layers/sha256_ab.erofs`. */
export interface CacheFile {
  readonly path: string;
  readonly archivePath: string;
  readonly kind: "manifests" | "fsmeta" | "vmdk" | "layers";
}

/**
 * Read and shape-check the metadata at `path`. Throws {@link ImageCacheError}
 * naming the file when it is missing, too large, not JSON, or lacks a field.
 */
export async function readImageMetadataFile(fs: FileSystem, path: string): Promise<CachedImageMetadata> {
  const info = await lstatOrNull(fs, path);
  if (info === null) throw new ImageCacheError(`image metadata ${path} is missing`);
  if (info.kind !== "file") throw new ImageCacheError(`image metadata ${path} must be a regular file, not a ${info.kind}`);
  let bytes: Uint8Array;
  try {
    bytes = await readSmallFile(fs, path, MAX_METADATA_BYTES);
  } catch (e) {
    if (e instanceof InvalidArgument) throw new ImageCacheError(`image metadata ${path} is larger than ${MAX_METADATA_BYTES} bytes`);
    throw e;
  }
  return parseImageMetadata(bytes, `image metadata ${path}`);
}

/**
 * Parse and shape-check metadata bytes (strict UTF-8 JSON within
 * {@link MAX_METADATA_VALUES}). `what` starts each message, e.g.
 * `image metadata /h/cache/manifests/….json`. Throws {@link ImageCacheError}.
 *
 * @example
 * ```ts
 * const meta = parseImageMetadata(bytes, "a.tar.zst: image metadata cache/manifests/….json");
 * ```
 */
export function parseImageMetadata(bytes: Uint8Array, what: string): CachedImageMetadata {
  let raw: unknown;
  try {
    raw = plainJson(parseStrictJson(decodeUtf8Strict(bytes), { maxValues: MAX_METADATA_VALUES }));
  } catch (e) {
    throw new ImageCacheError(`${what} is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const o = raw as Record<string, unknown>;
  const need = (k: string) => {
    if (typeof o?.[k] !== "string") throw new ImageCacheError(`${what}: field "${k}" must be a string`);
    return o[k] as string;
  };
  const meta = {
    manifest_digest: need("manifest_digest"),
    config_digest: need("config_digest"),
    raw_manifest_json: need("raw_manifest_json"),
    raw_config_json: need("raw_config_json"),
    layers: [] as { digest: string; diff_id: string }[],
  };
  if (!Array.isArray(o.layers)) throw new ImageCacheError(`${what}: field "layers" must be an array`);
  o.layers.forEach((l: unknown, i: number) => {
    const layer = l as Record<string, unknown>;
    if (typeof layer?.digest !== "string" || typeof layer?.diff_id !== "string") {
      throw new ImageCacheError(`${what}: layers[${i}] must have string "digest" and "diff_id"`);
    }
    meta.layers.push({ digest: layer.digest, diff_id: layer.diff_id });
  });
  return meta;
}

async function checkSha256(text: string, digest: string, what: string, where: string): Promise<void> {
  if (!digest.startsWith("sha256:")) throw new ImageCacheError(`${where}: ${what} digest must use sha256 (got ${digest})`);
  const actual = `sha256:${await sha256Hex(new TextEncoder().encode(text))}`;
  if (actual !== digest) throw new ImageCacheError(`${where}: ${what} digest mismatch: metadata records ${digest}, content hashes to ${actual}`);
}

/**
 * The one metadata-matches-snapshot rule, on save and on load: the metadata
 * belongs to the snapshot's image and is self-consistent: same
 * manifest digest, raw manifest and config hash to their digests, every layer
 * digest and diff_id has the form `algo:hex`.
 */
export async function validateCachedMetadata(meta: CachedImageMetadata, manifest: Manifest, where: string): Promise<void> {
  if (meta.manifest_digest !== manifest.image.manifest_digest) {
    throw new ImageCacheError(`${where}: image metadata is for ${meta.manifest_digest}, but the snapshot's image is ${manifest.image.manifest_digest}`);
  }
  await checkMetadataItself(meta, where);
}

/** The part of {@link validateCachedMetadata} that needs no snapshot: the metadata hashes to the digests it records, and its layer digests have the digest form. */
async function checkMetadataItself(meta: CachedImageMetadata, where: string): Promise<void> {
  await checkSha256(meta.raw_manifest_json, meta.manifest_digest, "raw manifest", where);
  await checkSha256(meta.raw_config_json, meta.config_digest, "image config", where);
  meta.layers.forEach((l, i) => {
    if (!isDigestForm(l.digest)) throw new ImageCacheError(`${where}: layers[${i}].digest ${JSON.stringify(l.digest)} is not a digest`);
    if (!isDigestForm(l.diff_id)) throw new ImageCacheError(`${where}: layers[${i}].diff_id ${JSON.stringify(l.diff_id)} is not a digest`);
  });
}

/**
 * The cache files an image needs, under `cacheDir`: metadata, fsmeta, VMDK,
 * then each distinct layer — the order save writes them in.
 */
export async function expectedCacheFiles(layout: HomeLayout, manifest: Manifest, meta: CachedImageMetadata, cacheDir: string): Promise<CacheFile[]> {
  const rel = (p: string) => `cache${p.slice(cacheDir.length)}`;
  const files: CacheFile[] = [];
  const seen = new Set<string>(); // linear in the layers: 100k of them must not take minutes
  const add = (path: string, kind: CacheFile["kind"]) => {
    if (seen.has(path)) return;
    seen.add(path);
    files.push({ path, archivePath: rel(path), kind });
  };
  add(await layout.metadataPath(manifest.image.ref, cacheDir), "manifests");
  add(layout.fsmetaPath(manifest.image.manifest_digest, cacheDir), "fsmeta");
  add(layout.vmdkPath(manifest.image.manifest_digest, cacheDir), "vmdk");
  for (const l of meta.layers) add(layout.layerPath(l.diff_id, cacheDir), "layers");
  return files;
}

/**
 * The one rule for a cache file's state, on save and on load: it exists, is
 * a regular file, and an EROFS image (layers, fsmeta) is materialized (a
 * non-empty multiple of 4096 bytes). Returns what is wrong, or `null`.
 *
 * @example
 * ```ts
 * cacheFileProblem({ path, archivePath, kind: "layers" }, await lstatOrNull(fs, path)); // null when fine
 * ```
 */
export function cacheFileProblem(f: CacheFile, info: FileInfo | null): string | null {
  if (info === null) return "missing";
  if (info.kind !== "file") return `a ${info.kind}, not a regular file`;
  if ((f.kind === "layers" || f.kind === "fsmeta") && !isErofsMaterialized(info)) return `not materialized (an EROFS image must be a non-empty multiple of ${EROFS_BLOCK} bytes)`;
  return null;
}

/**
 * The EROFS rule (`./erofs.ts`) over the file at `path` of `size` bytes, by
 * positioned reads of the few ranges it needs (bounded memory whatever the
 * image's size). Resolves what is wrong, or `null` for a valid image.
 *
 * @example
 * ```ts
 * await erofsFileProblem(fs, "/h/cache/layers/sha256_ab.erofs", 4096); // null when valid
 * ```
 */
export async function erofsFileProblem(fs: FileSystem, path: string, size: number): Promise<string | null> {
  const check = new ErofsCheck(size);
  if (check.need === null) return check.problem;
  return withFile(fs, path, "r", async (h) => {
    for (let r = check.need; r !== null; r = check.need) {
      const buf = new Uint8Array(r.length);
      for (let got = 0; got < r.length; ) {
        const n = await h.read(buf.subarray(got), r.offset + got);
        if (n === 0) return `the image ended at byte ${r.offset + got}, before the ${size} bytes it had`;
        got += n;
      }
      check.supply(buf);
    }
    return check.problem;
  });
}

/**
 * {@link cacheFileProblem}, then for an EROFS file (layers, fsmeta) the
 * EROFS rule, by `imageProblem` (what the EROFS check found, or `null`).
 * Resolves the message part naming the rule, or `null` when the file is fine.
 */
export async function cacheFileVerdict(f: CacheFile, info: FileInfo | null, imageProblem: (path: string, info: FileInfo) => Promise<string | null>): Promise<string | null> {
  const state = cacheFileProblem(f, info);
  if (state !== null || (f.kind !== "layers" && f.kind !== "fsmeta")) return state;
  const problem = await imageProblem(f.path, info!);
  return problem === null ? null : `not a valid EROFS image: ${problem} (${EROFS_RULE})`;
}

/**
 * The image cache files one pass over an archive found: each file's path
 * below `root` with its state, and how to read the metadata. A load's
 * staging directory is one (`root` is the staging directory); the records of
 * a pass that stages nothing are another (`root` is `"cache"`, so paths are
 * archive paths, and only the bytes of image metadata are kept).
 */
export interface CarriedCache {
  /** The directory the paths are under: the cache staging directory, or `"cache"`. */
  readonly root: string;
  /** Every carried cache file: path → its state. */
  readonly files: ReadonlyMap<string, FileInfo>;
  /** The bytes of the carried metadata at `path` (one of `files`; called only when it is the one metadata file carried). */
  readMetadata(path: string): Promise<Uint8Array>;
  /** The EROFS rule's verdict on the carried layer or fsmeta file at `path` (one of `files`): `null` when valid. */
  imageProblem(path: string, info: FileInfo): Promise<string | null>;
}

/**
 * The one rule for the image cache a bundle carries, on load and on verify:
 * when it carries any cache file, it carries the metadata of the head
 * snapshot's image and no other metadata, that metadata is consistent with
 * the snapshot ({@link validateCachedMetadata}), every file the image needs
 * is there and every EROFS file is a valid image ({@link cacheFileVerdict}),
 * and nothing else is. Names are
 * checked before the metadata is read, so a pass need keep only one
 * metadata document. Resolves the expected files, metadata first (none when
 * nothing was carried); throws {@link ImageCacheError} naming the archive
 * path at fault.
 *
 * @example
 * ```ts
 * const expected = await checkCarriedCache(layout, head.manifest, { root: stage.cache, files, readMetadata, imageProblem }, "a.tar.zst");
 * ```
 */
export async function checkCarriedCache(layout: HomeLayout, manifest: Manifest, carried: CarriedCache, label: string): Promise<CacheFile[]> {
  const { root, files } = carried;
  if (files.size === 0) return [];
  const rel = (p: string) => p.slice(root.length + 1);
  const metaPath = await layout.metadataPath(manifest.image.ref, root);
  const metaInfo = files.get(metaPath);
  if (metaInfo === undefined) {
    throw new ImageCacheError(`${label}: the archive carries image cache files but no metadata for the snapshot's image ${manifest.image.ref} (expected ${rel(metaPath)})`);
  }
  // one order whatever order the pass met the files in: load and verify name the same file
  const paths = [...files.keys()].sort();
  const unexpected = (p: string) => new ImageCacheError(`${label}: the archive carries an unexpected image cache file cache/${rel(p)}`);
  const metaDir = dirname(metaPath);
  for (const p of paths) if (p !== metaPath && dirname(p) === metaDir) throw unexpected(p);
  const what = `${label}: image metadata cache/${rel(metaPath)}`;
  if (metaInfo.kind !== "file") throw new ImageCacheError(`${what} must be a regular file, not a ${metaInfo.kind}`);
  if (metaInfo.size > MAX_METADATA_BYTES) throw new ImageCacheError(`${what} is larger than ${MAX_METADATA_BYTES} bytes`);
  const meta = parseImageMetadata(await carried.readMetadata(metaPath), what);
  await validateCachedMetadata(meta, manifest, `${label}: cache/${rel(metaPath)}`);
  const expected = await expectedCacheFiles(layout, manifest, meta, root);
  for (const f of expected) {
    const problem = await cacheFileVerdict(f, files.get(f.path) ?? null, carried.imageProblem);
    if (problem !== null) throw new ImageCacheError(`${label}: image cache file ${f.archivePath} is ${problem === "missing" ? "missing from the archive" : problem}`);
  }
  const wanted = new Set(expected.map((f) => f.path));
  for (const p of paths) if (!wanted.has(p)) throw unexpected(p);
  return expected;
}

/**
 * Save's pre-check: the head image's metadata exists in the home's cache and
 * matches the snapshot, every required file is a regular file, and every
 * EROFS file a valid image (the rule load applies, {@link cacheFileVerdict}). Throws
 * {@link ImageCacheError} naming what is missing.
 */
export async function requiredCacheFiles(fs: FileSystem, layout: HomeLayout, manifest: Manifest): Promise<CacheFile[]> {
  const metaPath = await layout.metadataPath(manifest.image.ref);
  if ((await lstatOrNull(fs, metaPath)) === null) {
    throw new ImageCacheError(`image metadata for ${manifest.image.ref} is missing from the cache (${metaPath})`);
  }
  const meta = await readImageMetadataFile(fs, metaPath);
  // the same check load applies: save never writes a bundle load would refuse
  await validateCachedMetadata(meta, manifest, `cached image metadata ${metaPath}`);
  const files = await expectedCacheFiles(layout, manifest, meta, layout.cacheDir);
  for (const f of files) {
    const problem = await cacheFileVerdict(f, await lstatOrNull(fs, f.path), (p, info) => erofsFileProblem(fs, p, info.size));
    if (problem !== null) throw new ImageCacheError(`required image cache artifact ${f.path} is ${problem}`);
  }
  return files;
}

/**
 * Whether a file already in the home's cache is corrupt: an EROFS file
 * (layers, fsmeta) that is not a valid image ({@link cacheFileVerdict}), or
 * image metadata that does not parse or does not hash to the digests it
 * records. No carried file is content-addressed (fsmeta and VMDK are named
 * by the image's manifest digest, a layer by the digest of its uncompressed
 * tar, metadata by the hash of the image reference), so these are the
 * checks a name allows; a VMDK descriptor has no rule. Resolves what is
 * wrong, or `null` when the file passes (or no rule can tell).
 *
 * @example
 * ```ts
 * await cacheTargetProblem(fs, { path, archivePath, kind: "layers" }, await fs.lstat(path)); // null when valid
 * ```
 */
export async function cacheTargetProblem(fs: FileSystem, f: CacheFile, info: FileInfo): Promise<string | null> {
  if (f.kind === "layers" || f.kind === "fsmeta") return cacheFileVerdict(f, info, (p, i) => erofsFileProblem(fs, p, i.size));
  if (f.kind !== "manifests") return null;
  try {
    await checkMetadataItself(await readImageMetadataFile(fs, f.path), `image metadata ${f.path}`);
    return null;
  } catch (e) {
    if (e instanceof ImageCacheError) return e.message;
    throw e;
  }
}

/** A corrupt file {@link scanCache} found. */
export interface CorruptCacheFile {
  readonly path: string;
  readonly kind: CacheFile["kind"];
  readonly problem: string;
}

/**
 * `verify --cache`: every file of the home's image cache (`cache/<kind>/`,
 * by its extension; msb's `.lock` files and `cache/tmp` are not cache
 * files) checked by {@link cacheTargetProblem}, in name order. Changes
 * nothing. Resolves how many were checked and the corrupt ones.
 *
 * @example
 * ```ts
 * const { checked, corrupt } = await scanCache(fs, new HomeLayout("/root/.microsandbox"));
 * ```
 */
export async function scanCache(fs: FileSystem, layout: HomeLayout): Promise<{ checked: number; corrupt: CorruptCacheFile[] }> {
  let checked = 0;
  const corrupt: CorruptCacheFile[] = [];
  for (const [kind, ext] of Object.entries(CACHE_KINDS) as [CacheFile["kind"], string][]) {
    const dir = `${layout.cacheDir}/${kind}`;
    const names = (await lstatOrNull(fs, dir))?.kind === "directory" ? await fs.readdir(dir) : [];
    for (const name of names.filter((n) => n.endsWith(ext)).sort()) {
      const path = `${dir}/${name}`;
      const info = await fs.lstat(path);
      checked++;
      const f = { path, archivePath: `cache/${kind}/${name}`, kind };
      const problem = info.kind === "file" ? await cacheTargetProblem(fs, f, info) : `a ${info.kind}, not a regular file`;
      if (problem !== null) corrupt.push({ path, kind, problem });
    }
  }
  return { checked, corrupt };
}
