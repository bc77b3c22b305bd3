/**
 * snapbundle's streaming tar codec: {@link readTar} reads POSIX ustar, PAX
 * and GNU archives (including old-GNU sparse entries) from a
 * `ReadableStream<Uint8Array>`; {@link TarWriter} writes GNU-format archives
 * (regular and old-GNU sparse entries) into a `WritableStreamDefaultWriter`,
 * and {@link TarStream} is the same writer as a pair for `pipeThrough`.
 * Platform-neutral: Uint8Array and Web Streams only.
 *
 * @example
 * ```ts
 * import { readTar, TarWriter } from "snapbundle";
 * const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
 * const sink = writable.getWriter();
 * const writing = (async () => {
 *   const tar = new TarWriter(sink);
 *   const bytes = new TextEncoder().encode("hi");
 *   await tar.addFile("a/b.txt", bytes.length, [bytes]);
 *   await tar.finish();
 *   await sink.close();
 * })();
 * for await (const e of readTar(readable)) console.log(e.path, e.size); // "a/b.txt" 2
 * await writing;
 * ```
 * @module
 */

export {
  readTar,
  DEFAULT_MAX_PAX_BYTES,
  type ReadTarOptions,
  type TarEntry,
  type TarEntryKind,
  type TarSegment,
} from "./reader.js";
export { TarWriter, type TarData, type TarFileOptions, type TarWriterOptions } from "./writer.js";
export { type TarInput, TarStream } from "./stream.js";
export { DEFAULT_MAX_SPARSE_SEGMENTS, type SparseSegment } from "./sparse.js";
