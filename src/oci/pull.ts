/**
 * Pull a snapshot artifact (docs/oci-format.md) from a registry into a home,
 * and look at one without installing anything.
 *
 * A pull is one load: the layers of the snapshots not installed yet are
 * fetched one after the other, each checked against its digest as it
 * streams, and fed as the parts of one bundle into the hardened loader
 * (`../archive/load.ts`, {@link BundleParts}): one staging, one grammar, one
 * verification, one promotion under the install lock and its journal, so the
 * whole chain installs all-or-nothing, as the load of a multi-snapshot bundle
 * does. (Loading each layer as its own load would leave the ancestors
 * installed when a later layer fails, or when the process is killed between
 * two loads.) The image cache layers come last, packed on the fly as the
 * `cache/…` entries of a plain tar part.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore, pullSnapshot } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * const r = await pullSnapshot(store, "localhost:5000/snaps:child", { plainHttp: true });
 * console.log(r.head.name, r.fetched.length);
 * ```
 * @module
 */

import type { LoadOptions } from "../archive/load.js";
import { type BundleReport, verifyBundle } from "../archive/inspect.js";
import { writeTar } from "../archive/output.js";
import { OperationAborted, RegistryError, SnapshotAlreadyInstalled } from "../errors.js";
import type { SnapshotInfo, SnapshotStore } from "../store.js";
import { iterate, RegistryClient, type RegistryOptions } from "./client.js";
import { type CacheLayer, parseSnapshotManifest, type SnapshotLayer, type SnapshotManifest } from "./format.js";
import { manifestReference, parseRegistryReference, type RegistryReference } from "./reference.js";

/** Progress of a pull or remote verify: the layer being fetched and its bytes. */
export interface PullProgress {
  readonly phase: "downloading" | "verifying" | "installing";
  readonly layer: string;
  readonly bytes: number;
  readonly total: number;
}

export interface PullOptions extends RegistryOptions, Pick<LoadOptions, "maxApparentBytes" | "maxWindowBytes" | "onLockWait" | "lockTimeoutMs"> {
  /** Install the head under this name (also as a second copy when its digest is installed already). */
  readonly name?: string;
  /** Install into this snapshots directory instead of `<home>/snapshots`. */
  readonly dest?: string;
  readonly onProgress?: (p: PullProgress) => void;
}

export interface PullResult {
  readonly reference: string;
  /** The manifest's digest. */
  readonly digest: string;
  /** The head snapshot as installed (or as found installed already). */
  readonly head: SnapshotInfo;
  /** Snapshot digests whose layers were downloaded and installed. */
  readonly fetched: readonly string[];
  /** Snapshot digests found installed already: their layers were not downloaded. */
  readonly skipped: readonly string[];
  /** Nothing was installed: the head was there already. */
  readonly alreadyInstalled: boolean;
}

/** The artifact's manifest, fetched and checked. */
export async function fetchSnapshotManifest(client: RegistryClient): Promise<{ manifest: SnapshotManifest; digest: string; bytes: Uint8Array }> {
  const m = await client.getManifest(manifestReference(client.ref));
  return { manifest: parseSnapshotManifest(m!.bytes, client.ref.text), digest: m!.digest, bytes: m!.bytes };
}

/** Pull `reference` into `store`. */
export async function pullSnapshot(store: SnapshotStore, reference: string, options: PullOptions = {}): Promise<PullResult> {
  const ref = parseRegistryReference(reference);
  const client = new RegistryClient(ref, options);
  const { manifest, digest } = await fetchSnapshotManifest(client);
  const head = manifest.snapshots[manifest.snapshots.length - 1]!;
  const installed = async (d: string) => (await store.findByDigest(d, { readOnly: true })) ?? null;
  const skipped: string[] = [];
  const wanted: SnapshotLayer[] = [];
  for (const s of manifest.snapshots) {
    const there = s === head && options.name !== undefined ? null : await installed(s.digest);
    if (there !== null) skipped.push(s.digest);
    else wanted.push(s);
  }
  if (!wanted.includes(head)) {
    return { reference: ref.text, digest, head: (await installed(head.digest))!, fetched: [], skipped, alreadyInstalled: true };
  }
  const total = wanted.reduce((n, s) => n + s.descriptor.size, 0) + manifest.cache.reduce((n, c) => n + c.descriptor.size, 0);
  let done = 0;
  const onBytes = (layer: string) => (n: number) => {
    done += n;
    options.onProgress?.({ phase: "downloading", layer, bytes: done, total });
  };
  const opened: OpenedBlob[] = [];
  const loadOptions: LoadOptions = {
      name: options.name,
      dest: options.dest,
      label: ref.text,
      signal: options.signal,
      maxApparentBytes: options.maxApparentBytes,
      maxWindowBytes: options.maxWindowBytes,
      onLockWait: options.onLockWait,
      lockTimeoutMs: options.lockTimeoutMs,
      onStep: (p) => options.onProgress?.({ phase: p.phase, layer: head.name, bytes: p.bytes, total: p.total }),
  };
  let info: SnapshotInfo;
  try {
    info = wanted.length > 1 && wanted.some((s) => s.layout === "snapshot")
      ? await loadOneByOne(store, client, wanted, manifest.cache, onBytes, opened, loadOptions)
      : await store.load({ parts: layerParts(client, wanted, manifest.cache, onBytes, opened) }, loadOptions);
  } catch (e) {
    // a loader refusing what it read may be refusing corrupt bytes: say so, naming the blob
    if (!(e instanceof RegistryError) && !(e instanceof OperationAborted)) {
      for (const b of opened) {
        const bad = await b.check();
        if (bad !== null) throw new RegistryError(bad.message, bad.reference, bad.reason, bad.status, { cause: e });
      }
    }
    if (e instanceof SnapshotAlreadyInstalled) {
      // installed meanwhile by another load
      return { reference: ref.text, digest, head: (await installed(head.digest))!, fetched: [], skipped: manifest.snapshots.map((s) => s.digest), alreadyInstalled: true };
    }
    throw e;
  } finally {
    for (const b of opened) await b.close();
  }
  return { reference: ref.text, digest, head: info, fetched: wanted.map((s) => s.digest), skipped, alreadyInstalled: false };
}

type OpenedBlob = Awaited<ReturnType<RegistryClient["openBlob"]>>;

/** The snapshot layers' blob streams, one at a time, then the cache layers as one plain tar. */
async function* layerParts(client: RegistryClient, snapshots: readonly SnapshotLayer[], cache: readonly CacheLayer[], onBytes: (layer: string) => (n: number) => void, opened: OpenedBlob[]): AsyncGenerator<ReadableStream<Uint8Array>> {
  for (const s of snapshots) {
    const blob = await client.openBlob(s.descriptor, onBytes(s.name || s.digest));
    opened.push(blob);
    yield blob.stream;
  }
  if (cache.length > 0) yield cacheTar(client, cache, onBytes);
}

/**
 * Layers in the microsandbox 0.6 layout each carry their own inventory
 * (`archive.json`), so they cannot be read as one bundle: they are loaded
 * one by one, oldest first, and when one fails those this pull installed are
 * removed again, newest first. Each load is all-or-nothing; a process killed
 * between two of them leaves the ancestors installed (complete snapshots,
 * which the rerun then skips).
 */
async function loadOneByOne(store: SnapshotStore, client: RegistryClient, wanted: readonly SnapshotLayer[], cache: readonly CacheLayer[], onBytes: (layer: string) => (n: number) => void, opened: OpenedBlob[], options: LoadOptions): Promise<SnapshotInfo> {
  const installed: SnapshotInfo[] = [];
  try {
    for (let i = 0; i < wanted.length; i++) {
      const s = wanted[i]!;
      const last = i === wanted.length - 1;
      const parts = async function* () {
        const blob = await client.openBlob(s.descriptor, onBytes(s.name || s.digest));
        opened.push(blob);
        yield blob.stream;
        if (last && cache.length > 0) yield cacheTar(client, cache, onBytes);
      };
      installed.push(await store.load({ parts: parts() }, last ? options : { ...options, name: undefined }));
    }
  } catch (e) {
    for (const s of installed.reverse()) await store.remove(s.path, { force: true }).catch(() => {});
    throw e;
  }
  return installed[installed.length - 1]!;
}

/** A plain tar of the cache layers under their `cache/…` paths, written as it is read. */
function cacheTar(client: RegistryClient, cache: readonly CacheLayer[], onBytes: (layer: string) => (n: number) => void): ReadableStream<Uint8Array> {
  const pipe = new TransformStream<Uint8Array, Uint8Array>();
  const entries = async function* () {
    for (const c of cache) yield { path: c.path, size: c.descriptor.size, data: iterate(await client.blobStream(c.descriptor, onBytes(c.path))), options: { mtime: 0 } };
  };
  void writeTar(pipe.writable, entries(), { plainTar: true }).catch(() => {}); // a failure aborts the pipe: the reader sees it
  return pipe.readable;
}

/** What `inspect REF` shows: the manifest, checked, without fetching a layer. */
export interface RemoteReport {
  readonly reference: string;
  readonly digest: string;
  readonly registry: string;
  readonly repository: string;
  readonly created: string | null;
  readonly head: string;
  readonly snapshots: readonly { name: string; digest: string; parent: string | null; created: string | null; layout: string; size_bytes: number | null; blob: string; blob_size: number }[];
  readonly cache_files: readonly { path: string; blob: string; blob_size: number }[];
  /** With verify: each snapshot layer's bundle report. */
  readonly bundles?: readonly BundleReport[];
}

/** Look at an artifact without installing anything; `verify` also downloads every layer and checks it as a load would. */
export async function inspectRemote(store: SnapshotStore, reference: string, options: RegistryOptions & { verify?: boolean; onProgress?: (p: PullProgress) => void } = {}): Promise<RemoteReport> {
  const ref: RegistryReference = parseRegistryReference(reference);
  const client = new RegistryClient(ref, options);
  const { manifest, digest } = await fetchSnapshotManifest(client);
  const report: RemoteReport = {
    reference: ref.text,
    digest,
    registry: ref.registry,
    repository: ref.repository,
    created: manifest.annotations["org.opencontainers.image.created"] ?? null,
    head: manifest.snapshots[manifest.snapshots.length - 1]!.digest,
    snapshots: manifest.snapshots.map((s) => ({ name: s.name, digest: s.digest, parent: s.parent, created: s.created, layout: s.layout, size_bytes: s.size, blob: s.descriptor.digest, blob_size: s.descriptor.size })),
    cache_files: manifest.cache.map((c) => ({ path: c.path, blob: c.descriptor.digest, blob_size: c.descriptor.size })),
  };
  if (!options.verify) return report;
  const total = [...manifest.snapshots, ...manifest.cache].reduce((n, l) => n + l.descriptor.size, 0);
  let done = 0;
  const count = (layer: string) => (n: number) => options.onProgress?.({ phase: "verifying", layer, bytes: (done += n), total });
  const bundles: BundleReport[] = [];
  for (const s of manifest.snapshots) {
    const r = await verifyBundle(store.fs, await client.blobStream(s.descriptor, count(s.name || s.digest)), { label: `${ref.text} layer ${s.descriptor.digest}` });
    if (r.head !== s.digest) throw new RegistryError(`${ref.text}: layer ${s.descriptor.digest} holds snapshot ${r.head}, but the manifest says ${s.digest}`, ref.text, "protocol");
    bundles.push(r);
  }
  for (const c of manifest.cache) for await (const _ of iterate(await client.blobStream(c.descriptor, count(c.path)))) void _;
  return { ...report, bundles };
}
