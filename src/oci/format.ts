/**
 * What a snapshot is on the wire (docs/oci-format.md says it for people): an
 * OCI image manifest with `artifactType` {@link SNAPSHOT_ARTIFACT_TYPE}, the
 * empty config, one layer per snapshot of the chain oldest first (each layer
 * blob a one-snapshot `.tar.zst` bundle that `snapbundle load` and
 * `msb snapshot load` accept), then one layer per image cache file (the
 * file's bytes as they are, so snapshots of one image share them).
 *
 * @example
 * ```ts
 * const doc = parseSnapshotManifest(bytes, "localhost:5000/snaps:base");
 * doc.snapshots.at(-1)!.digest; // the head's snapshot digest
 * ```
 * @module
 */

import { RegistryError } from "../errors.js";
import { isSha256Digest } from "../reference.js";
import type { Descriptor } from "./client.js";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const SNAPSHOT_ARTIFACT_TYPE = "application/vnd.snapbundle.snapshot.v1";
/** A layer holding one snapshot as a zstd-compressed bundle (either artifact layout). */
export const SNAPSHOT_LAYER = "application/vnd.snapbundle.snapshot.layer.v1.tar+zstd";
/** A layer holding one image cache file, its bytes unchanged. */
export const IMAGE_CACHE_LAYER = "application/vnd.snapbundle.image-cache.v1";
export const EMPTY_CONFIG: Descriptor = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
};
export const EMPTY_CONFIG_BYTES = new TextEncoder().encode("{}");

/** Annotation keys. */
export const A = {
  title: "org.opencontainers.image.title",
  created: "org.opencontainers.image.created",
  name: "io.snapbundle.snapshot.name",
  digest: "io.snapbundle.snapshot.digest",
  parent: "io.snapbundle.snapshot.parent",
  layout: "io.snapbundle.snapshot.layout",
  size: "io.snapbundle.snapshot.size",
  image: "io.snapbundle.snapshot.image",
} as const;

/** One snapshot layer, as the manifest describes it. */
export interface SnapshotLayer {
  readonly descriptor: Descriptor;
  readonly name: string;
  readonly digest: string;
  readonly parent: string | null;
  readonly created: string | null;
  readonly layout: "manifest" | "snapshot";
  readonly size: number | null;
}

/** One image cache layer: where the file goes in a bundle (`cache/layers/…`). */
export interface CacheLayer {
  readonly descriptor: Descriptor;
  readonly path: string;
}

export interface SnapshotManifest {
  readonly snapshots: readonly SnapshotLayer[];
  readonly cache: readonly CacheLayer[];
  readonly annotations: Readonly<Record<string, string>>;
}

/** The manifest document for `layers` (snapshots oldest first, then cache files). */
export function buildManifest(layers: readonly Descriptor[], annotations: Record<string, string>): Uint8Array {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SNAPSHOT_ARTIFACT_TYPE,
    config: EMPTY_CONFIG,
    layers,
    annotations,
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

const CACHE_PATH = /^cache\/(manifests\/[^/]+\.json|fsmeta\/[^/]+|vmdk\/[^/]+|layers\/[^/]+)$/;

/**
 * Parse and check a manifest as a snapshot artifact. Throws a
 * {@link RegistryError} (`protocol`) naming `ref` and what is wrong: another
 * kind of artifact, an index, a layer of an unknown type, a bad annotation.
 */
export function parseSnapshotManifest(bytes: Uint8Array, ref: string): SnapshotManifest {
  const bad = (what: string) => new RegistryError(`${ref}: not a snapbundle snapshot artifact: ${what}`, ref, "protocol");
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw bad("the manifest is not JSON");
  }
  if (doc === null || typeof doc !== "object") throw bad("the manifest is not a JSON object");
  if (doc.mediaType === OCI_INDEX || Array.isArray(doc.manifests)) throw bad("it is an image index (several manifests), not one artifact");
  if (doc.mediaType !== undefined && doc.mediaType !== OCI_MANIFEST) throw bad(`its media type is ${JSON.stringify(doc.mediaType)}, expected ${OCI_MANIFEST}`);
  if (doc.artifactType !== SNAPSHOT_ARTIFACT_TYPE) throw bad(`its artifactType is ${JSON.stringify(doc.artifactType ?? null)}, expected ${SNAPSHOT_ARTIFACT_TYPE} (is it a container image?)`);
  if (!Array.isArray(doc.layers)) throw bad("it has no layers array");
  const snapshots: SnapshotLayer[] = [];
  const cache: CacheLayer[] = [];
  doc.layers.forEach((raw: unknown, i: number) => {
    const d = descriptorOf(raw, `layer ${i}`, bad);
    const a = d.annotations ?? {};
    if (d.mediaType === SNAPSHOT_LAYER) {
      if (cache.length > 0) throw bad(`layer ${i} is a snapshot after image cache layers (snapshots come first)`);
      const digest = a[A.digest];
      if (digest === undefined || !isSha256Digest(digest)) throw bad(`layer ${i} has no valid ${A.digest} annotation`);
      const parent = a[A.parent] ?? "";
      if (parent !== "" && !isSha256Digest(parent)) throw bad(`layer ${i} has a malformed ${A.parent} annotation`);
      const layout = a[A.layout] ?? "manifest";
      if (layout !== "manifest" && layout !== "snapshot") throw bad(`layer ${i} has an unknown ${A.layout} ${JSON.stringify(layout)}`);
      const size = a[A.size] === undefined ? null : Number(a[A.size]);
      snapshots.push({ descriptor: d, name: a[A.name] ?? "", digest, parent: parent === "" ? null : parent, created: a[A.created] ?? null, layout, size: size !== null && Number.isSafeInteger(size) ? size : null });
    } else if (d.mediaType === IMAGE_CACHE_LAYER) {
      const path = a[A.title] ?? "";
      if (!CACHE_PATH.test(path) || path.includes("..")) throw bad(`image cache layer ${i} has a bad ${A.title} ${JSON.stringify(path)}`);
      cache.push({ descriptor: d, path });
    } else {
      throw bad(`layer ${i} has media type ${JSON.stringify(d.mediaType)}, expected ${SNAPSHOT_LAYER} or ${IMAGE_CACHE_LAYER}`);
    }
  });
  if (snapshots.length === 0) throw bad("it has no snapshot layer");
  for (let i = 1; i < snapshots.length; i++) {
    if (snapshots[i]!.parent !== snapshots[i - 1]!.digest) throw bad(`snapshot layer ${i}'s parent is not the layer before it (layers are a chain, oldest first)`);
  }
  const annotations = isStringRecord(doc.annotations) ? doc.annotations : {};
  return { snapshots, cache, annotations };
}

function descriptorOf(raw: unknown, what: string, bad: (w: string) => Error): Descriptor {
  const d = raw as Record<string, unknown>;
  if (d === null || typeof d !== "object") throw bad(`${what} is not a descriptor`);
  if (typeof d.mediaType !== "string") throw bad(`${what} has no mediaType`);
  if (typeof d.digest !== "string" || !isSha256Digest(d.digest)) throw bad(`${what} has no sha256 digest`);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(`${what} has no valid size`);
  if (d.annotations !== undefined && !isStringRecord(d.annotations)) throw bad(`${what} has annotations that are not strings`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: d.annotations as Record<string, string> } : {}) };
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === "string");
}

/**
 * Credentials for `registry` from the text of a Docker config file
 * (`~/.docker/config.json`): its `auths` entry (`auth`, base64 of
 * `user:password`, or `username`/`password`, or `identitytoken`), matched by
 * host, with or without scheme and path (`https://index.docker.io/v1/` for
 * docker.io). Null when there is none or the file does not parse.
 *
 * @example
 * ```ts
 * dockerConfigCredentials('{"auths":{"localhost:5000":{"auth":"dTpw"}}}', "localhost:5000"); // { username: "u", password: "p" }
 * ```
 */
export function dockerConfigCredentials(text: string, registry: string): { username: string; password: string } | null {
  let doc: { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }> };
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const auths = doc?.auths;
  if (auths === null || typeof auths !== "object") return null;
  const want = registry === "docker.io" ? ["docker.io", "index.docker.io", "registry-1.docker.io"] : [registry];
  for (const [key, entry] of Object.entries(auths)) {
    const host = key.replace(/^[a-z]+:\/\//, "").split("/")[0]!.toLowerCase();
    if (!want.includes(host) || entry === null || typeof entry !== "object") continue;
    if (typeof entry.auth === "string" && entry.auth !== "") {
      let decoded: string;
      try {
        decoded = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)));
      } catch {
        continue;
      }
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof entry.username === "string" && typeof entry.password === "string") return { username: entry.username, password: entry.password };
    if (typeof entry.identitytoken === "string") return { username: "<token>", password: entry.identitytoken };
  }
  return null;
}
