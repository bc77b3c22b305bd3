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
import { type BundleContents, BundleGrammar, type DirectoryPlace, type FilePlace, type GrammarOptions } from "./grammar.js";
import { decompressIfZstd, lendStream } from "./streams.js";

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
export function stagingSink(fs: FileSystem, stage: StagingDirs): UnpackSink {
  const made = new Set<string>();
  const mkdir = async (p: string) => {
    if (!made.has(p)) await fs.mkdir(p, { recursive: true });
    made.add(p);
  };
  const dirOf = (place: DirectoryPlace | FilePlace) =>
    place.area === "snapshot" ? join(stage.snapshots, place.prefix) : place.kind === null ? stage.cache : join(stage.cache, place.kind);
  return {
    directory: (place) => mkdir(dirOf(place)),
    file: async (place, data) => {
      const dir = dirOf(place);
      await mkdir(dir);
      const target = join(dir, place.file);
      if (data instanceof Uint8Array) await writeNewFile(fs, target, data);
      else await writeEntry(fs, target, data);
    },
  };
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
export async function unpackArchive(source: ReadableStream<Uint8Array>, sink: UnpackSink, options: GrammarOptions): Promise<BundleContents> {
  const lent = lendStream(await decompressIfZstd(source, options.label));
  try {
    const contents = await unpackEntries(lent.stream, sink, new BundleGrammar(options));
    await lent.drain();
    return contents;
  } catch (e) {
    await lent.abort(e);
    throw e;
  }
}

/** The entry loop: each entry through the grammar, then into the sink. */
async function unpackEntries(tar: ReadableStream<Uint8Array>, sink: UnpackSink, grammar: BundleGrammar): Promise<BundleContents> {
  for await (const entry of readTar(tar, { label: grammar.label })) {
    const act = grammar.admit(entry);
    if (act.do === "directory") {
      await sink.directory(act.place);
    } else if (act.do === "manifest") {
      const bytes = await collectEntry(entry);
      grammar.manifest(act.place, parseManifest(bytes, `${grammar.label}: ${entry.path}`));
      await sink.file(act.place, bytes);
    } else {
      await sink.file(act.place, entry);
    }
  }
  return grammar.end();
}

/** Gather a small entry (already size-checked) into one buffer. */
async function collectEntry(entry: TarEntry): Promise<Uint8Array> {
  const out = new Uint8Array(entry.size);
  for await (const seg of entry.segments()) out.set(seg.data, seg.offset);
  return out;
}

/** Write an entry's data to a new file, only its non-zero blocks, then set its length: holes stay holes. */
async function writeEntry(fs: FileSystem, target: string, entry: TarEntry): Promise<void> {
  const h = await fs.open(target, "wx");
  // Segments are views of fresh input chunks (never refilled), so their writes
  // may stay in flight while the next segments arrive.
  const writes = new WriteWindow(h);
  try {
    try {
      for await (const seg of entry.segments()) {
        for (const r of dataRuns(seg.data, seg.offset)) {
          await writes.write(seg.data.subarray(r.offset - seg.offset, r.offset - seg.offset + r.length), r.offset);
        }
      }
      await writes.drain();
    } catch (e) {
      await writes.drain().catch(() => {}); // nothing may land after the close; the first error is the one to report
      throw e;
    }
    await h.setLength(entry.size);
    await h.sync();
  } finally {
    await h.close();
  }
}
