/**
 * The home layout (docs/format.md §2): where snapshots and image-cache files live,
 * image-reference normalization and the cache key, digest-safe file names.
 *
 * @example
 * ```ts
 * import { HomeLayout, normalizeImageRef, imageCacheKey } from "snapbundle";
 * normalizeImageRef("python:3.12");      // "docker.io/library/python:3.12"
 * await imageCacheKey("python:3.12");    // "9f39de2c…70ff"
 * const l = new HomeLayout("/root/.microsandbox");
 * l.layerPath("sha256:abc");             // "/root/.microsandbox/cache/layers/sha256_abc.erofs"
 * ```
 * @module
 */

import { sha256Hex } from "../wasm/mod.js";
import { InvalidArgument } from "./errors.js";
import type { FileInfo } from "./fs/types.js";
import { join } from "./path.js";

/** Size granularity of a materialized EROFS image. */
export const EROFS_BLOCK = 4096;

/**
 * Normalize an image reference to `REGISTRY/REPOSITORY[:TAG][@DIGEST]`:
 * no registry means `docker.io` (`index.docker.io` too), a one-part
 * repository on `docker.io` gets `library/`, and no tag and no digest means
 * `:latest`. Throws {@link InvalidArgument} for an empty reference.
 */
export function normalizeImageRef(ref: string): string {
  if (ref === "") throw new InvalidArgument("image reference must not be empty");
  let rest = ref;
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at);
    rest = rest.slice(0, at);
  }
  let tag = "";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon);
    rest = rest.slice(0, colon);
  }
  let registry = "docker.io";
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (registry === "index.docker.io") registry = "docker.io";
  if (registry === "docker.io" && !rest.includes("/")) rest = `library/${rest}`;
  if (rest === "" || rest.endsWith("/")) throw new InvalidArgument(`image reference ${JSON.stringify(ref)} has no repository`);
  if (tag === "" && digest === "") tag = ":latest";
  return `${registry}/${rest}${tag}${digest}`;
}

/** The cache key of an image reference: lowercase hex SHA-256 of its normalized form. */
export async function imageCacheKey(ref: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(normalizeImageRef(ref)));
}

/** `algo:hex` → `algo_hex`, every byte outside `[A-Za-z0-9+.=_-]` replaced by `_` (per UTF-8 byte). */
export function digestSafe(digest: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(digest)) {
    const c = String.fromCharCode(b);
    out += /^[A-Za-z0-9+.=_-]$/.test(c) ? c : "_";
  }
  return out;
}

/** `sha256-<first 16 hex>`: the directory name a snapshot gets inside an archive. */
export function archivePrefix(digest: string): string {
  if (digest.startsWith("sha256:")) return `sha256-${digest.slice(7, 23)}`;
  return digest.replace(/:/g, "-").slice(0, 20);
}

/** An EROFS image is materialized when it is a regular file of non-zero size, a multiple of 4096. */
export function isErofsMaterialized(info: FileInfo | null): boolean {
  return info !== null && info.kind === "file" && info.size > 0 && info.size % EROFS_BLOCK === 0;
}

/** The kinds of image-cache file an archive may carry, with their extensions. */
export const CACHE_KINDS = { manifests: ".json", layers: ".erofs", fsmeta: ".erofs", vmdk: ".vmdk" } as const;
/** One of {@link CACHE_KINDS}. */
export type CacheKind = keyof typeof CACHE_KINDS;

/** Paths inside a home directory. */
export class HomeLayout {
  constructor(readonly home: string) {}
  get snapshotsDir(): string {
    return join(this.home, "snapshots");
  }
  get cacheDir(): string {
    return join(this.home, "cache");
  }
  get cacheTmpDir(): string {
    return join(this.home, "cache", "tmp");
  }
  /** Where the snapbundle index lives (a cache of what is on disk; see `store.ts`). */
  get indexPath(): string {
    return join(this.home, "snapshots", ".snapbundle-index.json");
  }
  /** `cache/manifests/<key>.json` for an image reference. */
  async metadataPath(imageRef: string, cacheDir = this.cacheDir): Promise<string> {
    return join(cacheDir, "manifests", `${await imageCacheKey(imageRef)}.json`);
  }
  layerPath(diffId: string, cacheDir = this.cacheDir): string {
    return join(cacheDir, "layers", `${digestSafe(diffId)}.erofs`);
  }
  fsmetaPath(manifestDigest: string, cacheDir = this.cacheDir): string {
    return join(cacheDir, "fsmeta", `${digestSafe(manifestDigest)}.erofs`);
  }
  vmdkPath(manifestDigest: string, cacheDir = this.cacheDir): string {
    return join(cacheDir, "vmdk", `${digestSafe(manifestDigest)}.vmdk`);
  }
}
