/**
 * Step 1 of a load: stream the archive through the tar reader and the entry
 * grammar ({@link BundleGrammar}) into a sink. The step decides nothing
 * itself: the reader decides each entry's kind, the grammar whether and
 * where it may go, and the sink what "going there" means —
 * {@link stagingSink} writes into a load's staging directories,
 * {@link discardSink} writes nothing (to check a bundle without installing
 * it).
 *
 * @example
 * ```ts
 * import { unpackArchive, discardSink } from "./unpack.js";
 * const contents = await unpackArchive(fileReadable(fs, "a.tar.zst"), discardSink, { label: "a.tar.zst" });
 * console.log(contents.snapshots.map((s) => s.prefix));
 * ```
 * @module
 */

import type { FileSystem } from "../fs/types.js";
import { WriteWindow, writeNewFile } from "../io.js";
import { parseManifest } from "../manifest.js";
import { join } from "../path.js";
import { dataRuns } from "../sparse.js";
import { readTar, type TarEntry } from "../tar/mod.js";
import { createSha256 } from "../../wasm/mod.js";
import { type BundleContents, BundleGrammar, type DirectoryPlace, type FilePlace, type GrammarOptions, type Msb06DirPlace, type Msb06FilePlace } from "./grammar.js";
import type { ObservedMember } from "./inventory.js";
import { hashingEntry, MemberHasher, sparseDescriptors } from "./member-hash.js";
import { memberKindOf } from "./msb06-paths.js";
import { openBundleStream } from "./sniff.js";
import { lendStream, type ZstdReadOptions } from "./streams.js";
import { algorithmsFor, hashSegments, RecordedIntegrity } from "./upper-hash.js";

/**
 * Where admitted entries go. `file` receives either the whole bytes of a
 * small document (a manifest, already parsed and checked) or the tar entry
 * to stream; it may leave the entry unread (the reader then skips its data).
 */
export interface UnpackSink {
  directory(place: DirectoryPlace): Promise<void>;
  file(place: FilePlace, data: Uint8Array | TarEntry): Promise<void>;
}

/**
 * A sink that writes nothing and reads no data it need not: the grammar still
 * sees every entry, and the manifests are still read and parsed.
 *
 * @example
 * ```ts
 * await unpackArchive(stream, discardSink, { label: "archive stream" });
 * ```
 */
export const discardSink: UnpackSink = {
  directory: async () => {},
  file: async () => {},
};

/**
 * The digests of staged uppers, by staged path, hashed from the bytes as they
 * were written: a load checks them against the recorded integrity instead of
 * reading the uppers back (`verifySnapshot`'s `hashed`).
 */
export type StagedHashes = Map<string, { readonly size: number; readonly digests: ReadonlyMap<string, string> }>;

/** The staging directories of one load (see `load.ts`). */
export interface StagingDirs {
  readonly snapshots: string;
  readonly cache: string;
}

/**
 * A sink into a load's staging: snapshot files under `<stage.snapshots>/<prefix>/`,
 * cache files under `<stage.cache>/<kind>/`. Files are created new (`wx`);
 * zero runs of streamed data become holes.
 *
 * @example
 * ```ts
 * const contents = await unpackArchive(stream, stagingSink(fs, stage), { label });
 * ```
 */
export function stagingSink(fs: FileSystem, stage: StagingDirs, hashed?: StagedHashes): UnpackSink {
  const made = new Set<string>();
  const recorded = new RecordedIntegrity();
  const mkdir = async (p: string) => {
    if (!made.has(p)) await fs.mkdir(p, { recursive: true });
    made.add(p);
  };
  const dirOf = (place: DirectoryPlace | FilePlace) => {
    if (place.area === "msb06") return msb06StagingDir(stage, place);
    return place.area === "snapshot" ? join(stage.snapshots, place.prefix) : place.kind === null ? stage.cache : join(stage.cache, place.kind);
  };
  return {
    directory: async (place) => {
      if (place.area !== "msb06") await mkdir(dirOf(place)); // 0.6 directories carry nothing: files make their own
    },
    file: async (place, data) => {
      if (place.area === "msb06" && place.role === "inventory") return; // kept in memory, never installed
      const dir = dirOf(place);
      await mkdir(dir);
      const target = join(dir, place.file);
      if (data instanceof Uint8Array) {
        if (hashed) recorded.note(place, data, target);
        await writeNewFile(fs, target, data);
        return;
      }
      // an upper is hashed as it is written, with the algorithm its manifest or descriptor (come before it) records
      const upper = hashed !== undefined && (place.area === "snapshot" || (place.area === "msb06" && place.role === "payload"));
      const algorithms = upper ? algorithmsFor(recorded.recordedFor(place), []) : [];
      const digests = await writeEntry(fs, target, data, algorithms);
      if (upper && algorithms.length > 0) hashed.set(target, { size: data.size, digests });
    },
  };
}

/**
 * Where a 0.6 member is staged: a descriptor and its payload together under
 * `<stage.snapshots>/<64hex>/` (so the staged directory is the artifact that
 * gets promoted to `<dest>/<64hex>`), an image file under `<stage.cache>/<kind>/`.
 */
function msb06StagingDir(stage: StagingDirs, place: Msb06DirPlace | Msb06FilePlace): string {
  if (place.file === null || place.role === "inventory") return stage.snapshots;
  return place.role === "image" ? join(stage.cache, place.kind!) : join(stage.snapshots, place.hex!);
}

/**
 * Stream `source` (zstd or plain tar) through the grammar into `sink`. After
 * the end-of-archive marker the input is still read to its end, so a zstd
 * stream cut short (or corrupt) past the tar's last block fails too; bytes
 * after the marker are otherwise ignored, as GNU tar ignores them.
 *
 * @example
 * ```ts
 * const contents = await unpackArchive(stream, stagingSink(fs, stage), { label: "a.tar.zst" });
 * ```
 */
export async function unpackArchive(
  source: ReadableStream<Uint8Array>,
  sink: UnpackSink,
  options: GrammarOptions & ZstdReadOptions & { readonly memberHashes?: boolean },
): Promise<BundleContents> {
  const grammar = new BundleGrammar(options);
  await unpackPart(source, sink, grammar, options);
  return grammar.end();
}

/**
 * Several bundles unpacked as one: each part (a `.tar.zst` or `.tar` of its
 * own, opened only when the previous one is done) goes through the same
 * grammar into the same sink, so the parts must together read as one bundle
 * in SPEC order (snapshots oldest first, cache files last) — a registry pull
 * feeds its layers this way and the whole chain installs as one load.
 *
 * @example
 * ```ts
 * const contents = await unpackArchiveParts(layerStreams(), stagingSink(fs, stage), { label: ref });
 * ```
 */
export async function unpackArchiveParts(
  parts: AsyncIterable<ReadableStream<Uint8Array>>,
  sink: UnpackSink,
  options: GrammarOptions & ZstdReadOptions,
): Promise<BundleContents> {
  const grammar = new BundleGrammar(options);
  for await (const part of parts) await unpackPart(part, sink, grammar, options);
  return grammar.end();
}

async function unpackPart(source: ReadableStream<Uint8Array>, sink: UnpackSink, grammar: BundleGrammar, options: GrammarOptions & ZstdReadOptions & { readonly memberHashes?: boolean }): Promise<void> {
  const lent = lendStream(await openBundleStream(source, options.label, options));
  try {
    await unpackEntries(lent.stream, sink, grammar, options.memberHashes !== false);
    await lent.drain();
  } catch (e) {
    await lent.abort(e);
    throw e;
  }
}

/**
 * The entry loop: each entry through the grammar, then into the sink.
 * Without `memberHashes` (a quick listing, which checks no inventory) a 0.6
 * payload or image goes to the sink unhashed and is not recorded as observed.
 */
async function unpackEntries(tar: ReadableStream<Uint8Array>, sink: UnpackSink, grammar: BundleGrammar, memberHashes: boolean): Promise<void> {
  for await (const entry of readTar(tar, { label: grammar.label })) {
    const act = grammar.admit(entry);
    if (act.do === "directory") {
      await sink.directory(act.place);
    } else if (act.do === "manifest") {
      const bytes = await collectEntry(entry);
      grammar.manifest(act.place, parseManifest(bytes, `${grammar.label}: ${entry.path}`));
      await sink.file(act.place, bytes);
    } else if (act.do === "document") {
      const bytes = await collectEntry(entry);
      grammar.document(act.place, bytes);
      if (act.place.role !== "inventory") grammar.observed(act.place, await observeMember(entry, act.place, [bytes], true));
      await sink.file(act.place, bytes);
    } else if (act.place.area === "msb06" && memberHashes) {
      // the member hash (and an image's sha256) is computed as the bytes stream to the sink
      const place = act.place;
      const hashers = await memberHashers(entry, place, place.role === "image");
      const view = hashingEntry(entry, ...hashers.list);
      await sink.file(place, view.entry);
      await view.drain();
      grammar.observed(place, hashers.finish());
    } else {
      await sink.file(act.place, entry);
    }
  }
}

/** The member hash (and optionally sha256) of one 0.6 member, ready for its stored bytes. */
async function memberHashers(entry: TarEntry, place: Msb06FilePlace, sha: boolean) {
  const member = await MemberHasher.create({
    kind: memberKindOf(place)!,
    path: place.path,
    encodedSize: entry.storedSize,
    apparentSize: entry.size,
    ranges: entry.sparse ? sparseDescriptors(entry.sparseMap ?? [], entry.size) : [],
  });
  const sha256 = sha ? await createSha256() : null;
  return {
    list: sha256 === null ? [member] : [member, sha256],
    finish: (): ObservedMember => ({
      encodedSize: entry.storedSize,
      apparentSize: entry.size,
      memberHash: member.digest(),
      sha256: sha256 === null ? null : `sha256:${sha256.digestHex()}`,
    }),
  };
}

/** {@link memberHashers} over bytes already in memory (a document). */
async function observeMember(entry: TarEntry, place: Msb06FilePlace, stored: Uint8Array[], sha: boolean): Promise<ObservedMember> {
  const h = await memberHashers(entry, place, sha);
  for (const b of stored) for (const x of h.list) x.update(b);
  return h.finish();
}

/**
 * Gather a small entry (already size-checked by the grammar) into one
 * buffer, holes as zeros.
 *
 * @example
 * ```ts
 * const bytes = await collectEntry(entry); // a manifest, or image metadata
 * ```
 */
export async function collectEntry(entry: TarEntry): Promise<Uint8Array> {
  const out = new Uint8Array(entry.size);
  for await (const seg of entry.segments()) out.set(seg.data, seg.offset);
  return out;
}

/**
 * The ring an entry's writes are staged in: four of the decoder's 1 MiB
 * chunks in flight (the window's default 8 MiB costs 4 MiB more RSS; the
 * load's wall time was the same within the noise).
 */
const STAGE_BYTES = 4 << 20;

/**
 * Write an entry's data to a new file, only its non-zero blocks, then set its
 * length: holes stay holes. Hashes the logical bytes with each of `algorithms`
 * on the way and resolves the digests.
 */
async function writeEntry(fs: FileSystem, target: string, entry: TarEntry, algorithms: readonly string[]): Promise<Map<string, string>> {
  const h = await fs.open(target, "wx");
  // Segments are lent views (valid until the next read, see wasm/lend.ts):
  // the window copies them into its own ring, so writes stay in flight
  // while the next segments arrive.
  const writes = new WriteWindow(h, { stage: true, maxBytes: STAGE_BYTES });
  try {
    let digests: Map<string, string>;
    try {
      digests = await hashSegments(entry, algorithms, async (seg) => {
        for (const r of dataRuns(seg.data, seg.offset)) {
          await writes.write(seg.data.subarray(r.offset - seg.offset, r.offset - seg.offset + r.length), r.offset);
        }
      });
      await writes.drain();
    } catch (e) {
      await writes.drain().catch(() => {}); // nothing may land after the close; the first error is the one to report
      throw e;
    }
    await h.setLength(entry.size);
    await h.sync();
    return digests;
  } finally {
    await h.close();
  }
}
