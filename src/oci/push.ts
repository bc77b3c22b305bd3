/**
 * Push a snapshot (with its ancestors, and its image cache, if asked) to an
 * OCI registry as the artifact of docs/oci-format.md.
 *
 * Only what the registry lacks is uploaded: the layers of snapshots that a
 * manifest of the target repository (or of a `mountFrom` repository, then
 * mounted) already describes are confirmed with `HEAD` and reused; a cache
 * file is hashed first and looked up by digest. Everything else is saved as a
 * one-snapshot bundle straight into a chunked upload, its digest computed on
 * the way: no blob is ever held whole in memory or written to disk. The
 * manifest goes last, so a failed push leaves no tag at missing blobs.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore, pushSnapshot } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * const r = await pushSnapshot(store, "child", "localhost:5000/snaps:child", { withParents: true, plainHttp: true });
 * console.log(r.digest, r.layers.filter((l) => l.action === "uploaded").length);
 * ```
 * @module
 */

import { createSha256 } from "../../wasm/mod.js";
import { throwIfAborted } from "../abort.js";
import { type CacheFile, requiredCacheFiles } from "../archive/image-cache.js";
import { collectAncestry } from "../archive/save.js";
import { fileReadable } from "../archive/streams.js";
import { InvalidArgument, RegistryError, SnapshotNotFound } from "../errors.js";
import { lstatOrNull, readSmallFile, writeAtomically } from "../io.js";
import { join } from "../path.js";
import type { Snapshot } from "../snapshot.js";
import type { SnapshotStore } from "../store.js";
import { type Descriptor, iterate, RegistryClient, type RegistryOptions } from "./client.js";
import { A, buildManifest, EMPTY_CONFIG, EMPTY_CONFIG_BYTES, IMAGE_CACHE_LAYER, OCI_MANIFEST, parseSnapshotManifest, SNAPSHOT_LAYER } from "./format.js";
import { parseRegistryReference } from "./reference.js";

/** Progress of a push: the layer at work and its bytes. */
export interface PushProgress {
  readonly phase: "checking" | "uploading" | "hashing" | "manifest";
  /** Which layer: a snapshot name or cache file path. */
  readonly layer: string;
  readonly bytes: number;
}

export interface PushOptions extends RegistryOptions {
  /** Push every ancestor too, one layer each, oldest first. */
  readonly withParents?: boolean;
  /** Push the image cache files the head's image needs, one layer each. */
  readonly withImage?: boolean;
  /** zstd level of the layer bundles (default 3). */
  readonly level?: number;
  /** Other repositories of the same registry to look in and mount blobs from. */
  readonly mountFrom?: readonly string[];
  /** How many tags of each repository are looked through for known layers (default 100). */
  readonly tagScanLimit?: number;
  readonly onProgress?: (p: PushProgress) => void;
}

/** What happened to one layer. */
export interface PushedLayer {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /** The snapshot digest (snapshot layers) or cache file path. */
  readonly what: string;
  /** `uploaded`, `exists` (the registry had it) or `mounted` (from another repository). */
  readonly action: "uploaded" | "exists" | "mounted";
}

export interface PushResult {
  readonly reference: string;
  /** The manifest's digest: `<registry>/<repo>@<digest>` names exactly what was pushed. */
  readonly digest: string;
  readonly layers: readonly PushedLayer[];
  /** Bytes uploaded (0 when the registry had every blob). */
  readonly uploadedBytes: number;
}

/** Push snapshot `snapshot` (name, digest or path in `store`) to `reference`. */
export async function pushSnapshot(store: SnapshotStore, snapshot: string, reference: string, options: PushOptions = {}): Promise<PushResult> {
  const ref = parseRegistryReference(reference);
  if (ref.digest !== null) throw new InvalidArgument(`${reference}: push to a tag, not a digest (the manifest's digest is known only once it is built)`);
  const head = await store.resolve(snapshot);
  const chain = options.withParents ? await collectAncestry(head, async (d) => store.resolve(d).catch((e) => (e instanceof SnapshotNotFound ? null : Promise.reject(e)))) : [head];
  for (const s of chain) if (s.upperPath === null) throw new InvalidArgument(`${s.path} is checkpoint state (no payload): it cannot be pushed as a layer`);
  let cacheFiles: CacheFile[] = [];
  if (options.withImage) {
    if (head.form !== "manifest") throw new InvalidArgument(`--with-image: ${head.path} is a snapshot.json artifact; pushing its image cache is supported for manifest.json snapshots only`);
    cacheFiles = await requiredCacheFiles(store.fs, store.layout, head.manifest);
  }
  const client = new RegistryClient(ref, options);
  const progress = options.onProgress;
  const known = await knownLayers(client, ref.repository, ref.tag!, options);
  const memo = await LayerMemo.open(store);
  const here = `${ref.registry}/${ref.repository}`;
  const layers: PushedLayer[] = [];
  const descriptors: Descriptor[] = [];
  let uploadedBytes = 0;

  for (const snap of chain) {
    throwIfAborted(options.signal);
    const annotations = layerAnnotations(snap);
    progress?.({ phase: "checking", layer: snap.name, bytes: 0 });
    const memoKey = `${snap.digest} ${options.level ?? 3}`;
    const reuse = await reuseKnown(client, [...(known.get(snap.digest) ?? []), ...memo.candidates(memoKey, ref.registry)], options);
    if (reuse !== null) {
      await memo.record(memoKey, reuse, here);
      descriptors.push({ mediaType: SNAPSHOT_LAYER, digest: reuse.digest, size: reuse.size, annotations });
      layers.push({ digest: reuse.digest, size: reuse.size, mediaType: SNAPSHOT_LAYER, what: snap.digest, action: reuse.action });
      continue;
    }
    let sent = 0;
    const { digest, size } = await uploadSaved(client, store, snap, options, (n) => {
      sent += n;
      progress?.({ phase: "uploading", layer: snap.name, bytes: sent });
    });
    uploadedBytes += size;
    // remembered at once: a push killed after this blob, rerun, uploads it no more
    await memo.record(memoKey, { digest, size }, here);
    descriptors.push({ mediaType: SNAPSHOT_LAYER, digest, size, annotations });
    layers.push({ digest, size, mediaType: SNAPSHOT_LAYER, what: snap.digest, action: "uploaded" });
  }

  for (const f of cacheFiles) {
    throwIfAborted(options.signal);
    progress?.({ phase: "hashing", layer: f.archivePath, bytes: 0 });
    const { digest, size } = await hashFile(store, f.path, options.signal);
    const annotations = { [A.title]: f.archivePath };
    const action = await blobAction(client, digest, known.mountable.get(digest) ?? options.mountFrom ?? []);
    if (action === null) {
      let sent = 0;
      await client.uploadBlob(fileReadable(store.fs, f.path), { expect: digest, onBytes: (n) => progress?.({ phase: "uploading", layer: f.archivePath, bytes: (sent += n) }) });
      uploadedBytes += size;
    }
    descriptors.push({ mediaType: IMAGE_CACHE_LAYER, digest, size, annotations });
    layers.push({ digest, size, mediaType: IMAGE_CACHE_LAYER, what: f.archivePath, action: action ?? "uploaded" });
  }

  // the empty config, then the manifest: last, once every blob it names is there
  if ((await blobAction(client, EMPTY_CONFIG.digest, [...(options.mountFrom ?? []), ...memo.repositories(ref.registry)])) === null) {
    await client.putSmallBlob(EMPTY_CONFIG_BYTES, EMPTY_CONFIG.digest);
  }
  const last = chain[chain.length - 1]!;
  const manifest = buildManifest(descriptors, {
    // the head's own creation time, not the push's: re-pushing an unchanged chain puts the very same manifest
    [A.created]: last.manifest.created_at,
    [A.name]: last.name,
    [A.digest]: last.digest,
    ...(last.manifest.parent !== null && chain.length === 1 ? { [A.parent]: last.manifest.parent } : {}),
  });
  progress?.({ phase: "manifest", layer: ref.tag!, bytes: manifest.length });
  await client.putManifest(ref.tag!, manifest, OCI_MANIFEST);
  const h = await createSha256();
  h.update(manifest);
  return { reference: ref.text, digest: `sha256:${h.digestHex()}`, layers, uploadedBytes };
}

function layerAnnotations(snap: Snapshot): Record<string, string> {
  return {
    [A.name]: snap.name,
    [A.digest]: snap.digest,
    ...(snap.manifest.parent !== null ? { [A.parent]: snap.manifest.parent } : {}),
    [A.created]: snap.manifest.created_at,
    [A.layout]: snap.form,
    [A.size]: String(snap.manifest.upper.size_bytes),
  };
}

/** Layers the registry is known to hold, by snapshot digest, with the repository holding each. */
interface Known extends Map<string, { desc: Descriptor; repository: string }[]> {
  /** Cache blobs by digest: repositories where a manifest names them. */
  mountable: Map<string, string[]>;
}

/**
 * Look through the manifests of the target repository (its tag first) and of
 * `mountFrom` repositories for snapshot layers: a snapshot already pushed is
 * never saved and uploaded again. A repository or manifest that cannot be
 * read is skipped (it may not exist yet); auth failures are not.
 */
async function knownLayers(client: RegistryClient, repository: string, tag: string, options: PushOptions): Promise<Known> {
  const known = new Map() as Known;
  known.mountable = new Map();
  const limit = options.tagScanLimit ?? 100;
  for (const repo of [repository, ...(options.mountFrom ?? [])]) {
    const c = repo === repository ? client : client.sibling(repo);
    let tags: string[];
    try {
      tags = await c.tags(limit);
    } catch (e) {
      if (e instanceof RegistryError && (e.reason === "not-found" || e.reason === "protocol")) continue;
      throw e;
    }
    if (repo === repository) tags = [tag, ...tags.filter((t) => t !== tag)];
    for (const t of tags) {
      const m = await c.getManifest(t, true).catch((e) => {
        if (e instanceof RegistryError && (e.reason === "not-found" || e.reason === "protocol" || e.reason === "digest-mismatch")) return null;
        throw e;
      });
      if (m === null) continue;
      let doc;
      try {
        doc = parseSnapshotManifest(m.bytes, `${c.ref.text}:${t}`);
      } catch {
        continue; // another kind of artifact
      }
      for (const s of doc.snapshots) {
        const list = known.get(s.digest) ?? [];
        if (!list.some((k) => k.repository === repo && k.desc.digest === s.descriptor.digest)) list.push({ desc: s.descriptor, repository: repo });
        known.set(s.digest, list);
      }
      for (const cl of doc.cache) {
        const list = known.mountable.get(cl.descriptor.digest) ?? [];
        if (repo !== repository && !list.includes(repo)) list.push(repo);
        known.mountable.set(cl.descriptor.digest, list);
      }
    }
  }
  return known;
}

/** A known layer blob confirmed in the target repository (HEAD), or mounted into it. */
async function reuseKnown(client: RegistryClient, candidates: { desc: Descriptor; repository: string; mount?: boolean }[], options: PushOptions): Promise<{ digest: string; size: number; action: "exists" | "mounted" } | null> {
  const tried = new Set<string>();
  for (const k of candidates) {
    if (tried.has(k.desc.digest)) continue;
    tried.add(k.desc.digest);
    const size = await client.blobSize(k.desc.digest);
    if (size !== null) return { digest: k.desc.digest, size: k.desc.size, action: "exists" };
  }
  for (const k of candidates) {
    if (k.repository === client.ref.repository || !(k.mount === true || (options.mountFrom ?? []).includes(k.repository))) continue;
    if (await client.mountBlob(k.desc.digest, k.repository)) return { digest: k.desc.digest, size: k.desc.size, action: "mounted" };
  }
  return null;
}

/** `exists`, `mounted` (from one of `from`), or null: to be uploaded. */
async function blobAction(client: RegistryClient, digest: string, from: readonly string[]): Promise<"exists" | "mounted" | null> {
  if ((await client.blobSize(digest)) !== null) return "exists";
  for (const repo of from) if (repo !== client.ref.repository && (await client.mountBlob(digest, repo))) return "mounted";
  return null;
}

/** Save `snap` alone as a bundle straight into an upload; both ends fail together. */
async function uploadSaved(client: RegistryClient, store: SnapshotStore, snap: Snapshot, options: PushOptions, onBytes: (n: number) => void): Promise<{ digest: string; size: number }> {
  const pipe = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 4 }, { highWaterMark: 4 });
  const saving = store.save(snap.path, pipe.writable, { withParents: false, level: options.level, signal: options.signal });
  const uploading = client.uploadBlob(pipe.readable, { onBytes });
  // whichever fails first ends the other: the upload cancels the pipe, a failed save aborts it
  const [saved, uploaded] = await Promise.allSettled([saving, uploading]);
  if (uploaded.status === "rejected" && uploaded.reason instanceof RegistryError) throw uploaded.reason;
  if (saved.status === "rejected") throw saved.reason;
  if (uploaded.status === "rejected") throw uploaded.reason;
  return uploaded.value;
}

async function hashFile(store: SnapshotStore, path: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  const h = await createSha256();
  let size = 0;
  for await (const c of iterate(fileReadable(store.fs, path))) {
    throwIfAborted(signal);
    h.update(c);
    size += c.length;
  }
  return { digest: `sha256:${h.digestHex()}`, size };
}

/**
 * What this home pushed before: for a snapshot digest and zstd level, the
 * layer blob's digest and size and the repositories it went to
 * (`<home>/snapshots/.snapbundle-oci-layers.json`, a cache: losing it only
 * costs an upload). A push asks the registry (`HEAD`) before it trusts an
 * entry, and mounts from a repository of the same registry that got the blob.
 */
class LayerMemo {
  #entries: Record<string, { digest: string; size: number; repos: string[] }>;
  private constructor(readonly store: SnapshotStore, readonly path: string, entries: Record<string, { digest: string; size: number; repos: string[] }>) {
    this.#entries = entries;
  }

  static async open(store: SnapshotStore): Promise<LayerMemo> {
    const path = join(store.layout.snapshotsDir, ".snapbundle-oci-layers.json");
    let entries = {};
    try {
      if ((await lstatOrNull(store.fs, path)) !== null) {
        const doc = JSON.parse(new TextDecoder().decode(await readSmallFile(store.fs, path, 4 << 20)));
        if (doc !== null && typeof doc === "object" && !Array.isArray(doc)) entries = doc;
      }
    } catch {
      entries = {}; // a cache: unreadable is empty
    }
    return new LayerMemo(store, path, entries);
  }

  candidates(key: string, registry: string): { desc: Descriptor; repository: string; mount: boolean }[] {
    const e = this.#entries[key];
    if (e === undefined || typeof e.digest !== "string" || typeof e.size !== "number" || !Array.isArray(e.repos)) return [];
    return e.repos
      .filter((r) => typeof r === "string" && r.startsWith(`${registry}/`))
      .map((r) => ({ desc: { mediaType: SNAPSHOT_LAYER, digest: e.digest, size: e.size }, repository: r.slice(registry.length + 1), mount: true }));
  }

  /** Repositories of `registry` this home pushed layers to. */
  repositories(registry: string): string[] {
    const all = Object.values(this.#entries).flatMap((e) => (Array.isArray(e?.repos) ? e.repos : []));
    return [...new Set(all.filter((r) => typeof r === "string" && r.startsWith(`${registry}/`)).map((r) => r.slice(registry.length + 1)))].slice(0, 8);
  }

  async record(key: string, blob: { digest: string; size: number }, repo: string): Promise<void> {
    const old = this.#entries[key];
    const repos = old?.digest === blob.digest && Array.isArray(old.repos) ? old.repos.filter((r) => r !== repo) : [];
    this.#entries[key] = { digest: blob.digest, size: blob.size, repos: [repo, ...repos].slice(0, 16) };
    await writeAtomically(this.store.fs, this.path, new TextEncoder().encode(JSON.stringify(this.#entries))).catch(() => {});
  }
}
