/**
 * Save in the microsandbox 0.6 bundle layout (docs/format.md §9): for each
 * snapshot, oldest first, `snapshots/<64hex>/snapshot.json` then its payload
 * `files/<64hex>/<upper.file>` (old-GNU sparse when it has holes); then the
 * image files under `images/<kind>/`; `archive.json` last. Member hashes are
 * computed while the bytes stream; the output replaces the target atomically.
 *
 * Which microsandbox versions can load the result (see docs/compatibility.md):
 * 0.6.7–0.6.8 refuse `requires` and `transport_integrity`, refuse null
 * integrity, and verify Merkle-less integrity on load; 0.6.9+ accept all.
 * The default ({@link MemberHashes} `"auto"`) therefore records member hashes
 * only when 0.6.7–0.6.8 could not load the set anyway (some integrity is null
 * or Merkle, or a snapshot is checkpoint state).
 *
 * @example
 * ```ts
 * import { saveArchive06 } from "./save06.js";
 * await saveArchive06(fs, layout, chain, "/tmp/a.tar.zst", { withParents: true });
 * ```
 * @module
 */

import { createSha256, sha256Hex } from "../../wasm/mod.js";
import { checkLevel } from "../zstd.js";
import { canonicalDescriptor, DESCRIPTOR_FILENAME, descriptorFromManifest, MAX_DESCRIPTOR_BYTES, MERKLE_BLAKE3 } from "../descriptor.js";
import { MANIFEST_FILENAME } from "../manifest.js";
import { InvalidArgument, InvalidManifest } from "../errors.js";
import type { FileSystem } from "../fs/types.js";
import { readSmallFile } from "../io.js";
import type { HomeLayout } from "../layout.js";
import { basename, join } from "../path.js";
import { type Extent, scanFile } from "../sparse.js";
import { type Snapshot, verifySnapshot } from "../snapshot.js";
import type { TarData, TarInput } from "../tar/mod.js";
import { blockAlignMap } from "../tar/sparse.js";
import { requiredCacheFiles } from "./image-cache.js";
import { type ArchiveInventory, type InventoryEntry, serializeInventory } from "./inventory.js";
import { hashedChunks, MEMBER_BLAKE3, MemberHasher, sparseDescriptors } from "./member-hash.js";
import { descriptorPath, imagePath, INVENTORY_PATH, type MemberKind, memberKindOf, payloadPath } from "./msb06-paths.js";
import { checkOutput, isDense, readRanges, writeOutput, writeTar } from "./output.js";
import type { SaveOptions, SaveResult } from "./save.js";
import { abortableWritable, abortingProgress, throwIfAborted } from "../abort.js";

/**
 * Whether to record member hashes (`transport_integrity`, `requires:
 * ["msb-archive-member-blake3-v1"]`): `true`, `false`, or `"auto"` (see the
 * module doc).
 */
export type MemberHashes = boolean | "auto";

/** Options of {@link saveArchive06}. */
export interface Save06Options extends Omit<SaveOptions, "dense" | "sparse"> {
  readonly memberHashes?: MemberHashes;
}

/**
 * True when microsandbox 0.6.7–0.6.8 could load these snapshots at all:
 * every one is file state with `sha256` or `msb-sparse-sha256-v1` integrity.
 *
 * @example
 * ```ts
 * loadableBy067(chain); // false when any integrity is null or Merkle
 * ```
 */
export function loadableBy067(chain: readonly Snapshot[]): boolean {
  return chain.every((s) => {
    const st = s.descriptor?.state;
    return st?.kind === "file" && st.upper.integrity !== null && st.upper.integrity.algorithm !== MERKLE_BLAKE3;
  });
}

/**
 * Write `chain` (oldest first, head last; every one a `snapshot.json`
 * artifact) as a 0.6 bundle to `out`, a path (atomic replace) or a stream.
 * Each payload is verified first (its recorded integrity, Merkle included)
 * and its data extents mapped in the same pass. A descriptor whose file is
 * not exactly canonical is refused: upstream's loader checks sha256(file) =
 * identity, so it would not load.
 */
export async function saveArchive06(
  fs: FileSystem,
  layout: HomeLayout,
  source: readonly Snapshot[],
  out: string | WritableStream<Uint8Array>,
  options: Save06Options = {},
): Promise<SaveResult & { inventory: ArchiveInventory }> {
  if (options.level !== undefined) checkLevel(options.level);
  if (typeof out === "string") await checkOutput(fs, out, options.overwrite ?? false);
  let chain = source;
  const head = () => chain[chain.length - 1]!;
  const descriptors: Uint8Array[] = [];
  const extents: (Extent[] | null)[] = [];
  const total = chain.reduce((n, c) => n + (c.upperPath === null ? 0 : c.manifest.upper.size_bytes), 0);
  let verified = 0;
  chain = await translateManifests(chain);
  for (const snap of chain) {
    const translated = snap.form === "manifest";
    const bytes = translated ? canonicalDescriptor(snap.descriptor!) : await readSmallFile(fs, join(snap.path, DESCRIPTOR_FILENAME), MAX_DESCRIPTOR_BYTES);
    const h = await createSha256();
    h.update(bytes);
    if (!translated && `sha256:${h.digestHex()}` !== snap.digest) {
      throw new InvalidManifest(`${join(snap.path, DESCRIPTOR_FILENAME)} is not in canonical form (its file hash differs from its identity ${snap.digest}); microsandbox 0.6 would refuse it in a bundle`);
    }
    if (translated) h.digestHex();
    if (snap.upperPath !== null && snap.manifest.upper.file.length > 29) {
      throw new InvalidArgument(`${snap.path}: upper file name ${JSON.stringify(snap.manifest.upper.file)} is over 29 bytes; files/<64hex>/<name> would need a GNU long-name entry, which microsandbox's loader refuses`);
    }
    descriptors.push(bytes);
    const onProgress = options.onProgress ? (b: number) => options.onProgress!({ phase: "verify", bytes: verified + b, total }) : undefined;
    const upper = snap.upperPath;
    extents.push(
      upper === null
        ? null
        : options.verify === false
          ? (await scanFile(fs, upper, snap.manifest.upper.size_bytes, { algorithm: null, extents: true, onProgress: abortingProgress(options.signal, onProgress) })).extents
          : (await verifySnapshot(fs, snap, { extents: true, onProgress, signal: options.signal })).extents,
    );
    verified += snap.upperPath === null ? 0 : snap.manifest.upper.size_bytes;
  }
  const cache = options.withImage ? await requiredCacheFiles(fs, layout, head().manifest) : [];
  const memberHashes = options.memberHashes === undefined || options.memberHashes === "auto" ? !loadableBy067(chain) : options.memberHashes;
  let inventory: ArchiveInventory | null = null;
  const toWrite = extents.reduce((n, e) => n + (e === null ? 0 : e.reduce((m, x) => m + x.length, 0)), 0);
  let written = 0;
  const progress = (n: number) => {
    throwIfAborted(options.signal);
    written += n;
    options.onProgress?.({ phase: "write", bytes: written, total: toWrite });
  };
  const records: InventoryEntry[] = [];
  /** Settle when each member's data has been written (or failed): the inventory is built after them. */
  const finished: Promise<void>[] = [];
  /** The tar entry of one member, its hashes taken as its data is written and its inventory record made at its end. */
  const member = async (kind: MemberKind, path: string, apparent: number, map: Extent[] | null, data: TarData, mtime: number, owner: string | null, integrity: InventoryEntry["integrity"], sha: boolean): Promise<TarInput> => {
    const encoded = map === null ? apparent : map.reduce((n, e) => n + e.length, 0);
    const hasher = await MemberHasher.create({ kind, path, encodedSize: encoded, apparentSize: apparent, ranges: map === null ? [] : sparseDescriptors(map, apparent) });
    const sha256 = sha ? await createSha256() : null;
    let done!: () => void;
    finished.push(new Promise<void>((resolve) => (done = resolve)));
    async function* recorded(): AsyncGenerator<Uint8Array> {
      try {
        yield* hashedChunks(data, ...(sha256 === null ? [hasher] : [hasher, sha256]));
        records.push({
          path,
          owner_snapshot: owner,
          kind,
          included: true,
          encoded_size: encoded,
          apparent_size: apparent,
          integrity: sha256 === null ? integrity : { algorithm: "sha256", digest: `sha256:${sha256.digestHex()}` },
          ...(memberHashes ? { transport_integrity: { algorithm: MEMBER_BLAKE3, digest: hasher.digest() } } : {}),
        });
        if (!memberHashes) hasher.digest();
      } finally {
        done();
      }
    }
    return { path, size: apparent, ...(map === null ? {} : { sparseMap: map }), data: recorded(), options: { mtime } };
  };
  async function* entries(): AsyncGenerator<TarInput> {
    for (let i = 0; i < chain.length; i++) {
      const snap = chain[i]!;
      const hex = snap.digest.slice(7);
      const dInfo = await fs.lstat(join(snap.path, snap.form === "manifest" ? MANIFEST_FILENAME : DESCRIPTOR_FILENAME));
      yield await member("snapshot-descriptor", descriptorPath(hex), descriptors[i]!.length, null, [descriptors[i]!], Math.floor(dInfo.mtimeMs / 1000), snap.digest, null, true);
      if (snap.upperPath === null) continue;
      const size = snap.manifest.upper.size_bytes;
      const ext = extents[i]!;
      const mtime = Math.floor((await fs.lstat(snap.upperPath)).mtimeMs / 1000);
      const path = payloadPath(hex, snap.manifest.upper.file);
      const integrity = snap.descriptor!.state.kind === "file" ? snap.descriptor!.state.upper.integrity : null;
      if (isDense(ext, size) || size === 0) {
        yield await member("file-payload", path, size, null, readRanges(fs, snap.upperPath, [{ offset: 0, length: size }], progress), mtime, snap.digest, integrity, false);
      } else {
        // the map as written (widened to 512, merged): its data is exactly the stored bytes
        const map = blockAlignMap(ext, size);
        yield await member("file-payload", path, size, map, readRanges(fs, snap.upperPath, map, progress), mtime, snap.digest, integrity, false);
      }
    }
    for (const f of cache) {
      const info = await fs.lstat(f.path);
      const data = readRanges(fs, f.path, [{ offset: 0, length: info.size }]);
      yield await member(memberKindOf({ role: "image", kind: f.kind })!, imagePath(f.kind, basename(f.archivePath)), info.size, null, data, Math.floor(info.mtimeMs / 1000), null, null, true);
    }
    await Promise.all(finished);
    const suggested = basename(head().path);
    inventory = {
      schema: 1,
      artifact: "snapshot-archive",
      head: head().digest,
      suggested_name: suggested !== "" && new TextEncoder().encode(suggested).length <= 255 && !suggested.includes("\\") ? suggested : null,
      completeness: "boot-complete",
      with_parents: chain.length > 1,
      with_image: options.withImage === true,
      snapshots: chain.map((c) => ({ snapshot_id: c.digest, descriptor: descriptorPath(c.digest.slice(7)) })).sort((a, b) => (a.snapshot_id < b.snapshot_id ? -1 : 1)),
      entries: records.sort((a, b) => compareUtf8(a.path, b.path)),
      protection_requirements: [],
      extensions: {},
      requires: memberHashes ? [MEMBER_BLAKE3] : [],
    };
    const json = serializeInventory(inventory);
    yield { path: INVENTORY_PATH, size: json.length, data: [json], options: { mtime: Math.floor(Date.now() / 1000), mode: 0o644 } };
  }
  const write = (sink: WritableStream<Uint8Array>): Promise<number> => writeTar(sink, entries(), options);
  const guarded = (sink: WritableStream<Uint8Array>) => write(abortableWritable(sink, options.signal));
  const tarBytes = typeof out === "string" ? await writeOutput(fs, out, guarded, options) : await guarded(out);
  return { snapshots: chain, cacheFiles: cache.map((c) => c.path), tarBytes, inventory: inventory! };
}

/**
 * A chain with every `manifest.json` snapshot given the 0.6 descriptor
 * microsandbox's migration would give it (`translate_v066_forward`: scope
 * disk, no extensions, integrity copied, parent = the parent's *new* digest).
 * The snapshot keeps its path and payload; its `digest` becomes the new
 * identity and `descriptor` the translation (written from memory, never to
 * the home). A translated snapshot's parent must be in the chain: upstream
 * blocks a migrated child whose parent is not in the same batch.
 */
async function translateManifests(chain: readonly Snapshot[]): Promise<Snapshot[]> {
  const renamed = new Map<string, string>();
  const out: Snapshot[] = [];
  for (const snap of chain) {
    if (snap.form !== "manifest") {
      out.push(snap);
      continue;
    }
    const m = snap.manifest;
    let parent: string | null = null;
    if (m.parent !== null) {
      parent = renamed.get(m.parent) ?? null;
      if (parent === null) {
        throw new InvalidArgument(
          `${snap.path}: its parent ${m.parent} must be in the same bundle to be translated to the 0.6 layout (use --with-parents): microsandbox blocks a migrated child whose parent is missing (legacy_parent_missing)`,
        );
      }
    }
    const d = descriptorFromManifest(m, parent, join(snap.path, MANIFEST_FILENAME));
    const digest = `sha256:${await sha256Hex(canonicalDescriptor(d))}`;
    renamed.set(snap.digest, digest);
    out.push({ ...snap, digest, descriptor: d });
  }
  return out;
}

function compareUtf8(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

