/**
 * {@link TarStream}: the {@link TarWriter} as a Web Streams pair, as Deno
 * std's `TarStream` is, so an archive is written with `pipeThrough`:
 * entries ({@link TarInput}) go in, tar bytes come out.
 *
 * A chunk is handed out only when the reader asks for it, and the writer
 * takes it back (to fill again, with `recycleChunks`) only when the reader
 * asks for the next one: a consumer that is done with a chunk when it reads
 * the next (a `pipeTo` into any sink whose write completes once the bytes
 * are taken, as snapbundle's zstd stream and file sinks do) can never see
 * one overwritten.
 *
 * @example
 * ```ts
 * const tar = new TarStream();
 * const entries = new ReadableStream({
 *   start(c) {
 *     c.enqueue({ path: "a/b.txt", size: 2, data: [new TextEncoder().encode("hi")] });
 *     c.close();
 *   },
 * });
 * await entries.pipeThrough(tar).pipeTo(file.writable);
 * console.log(tar.bytesWritten); // 10240
 * ```
 * @module
 */

import type { SparseSegment } from "./sparse.js";
import { type TarData, type TarFileOptions, TarWriter, type TarWriterOptions } from "./writer.js";

/** One entry for a {@link TarStream}: a regular file, or an old-GNU sparse one when `sparseMap` is given. */
export interface TarInput {
  readonly path: string;
  /** The file's size (for a sparse file, its real size, holes included). */
  readonly size: number;
  /** Its bytes (for a sparse file, only the bytes of `sparseMap`'s segments, in order). */
  readonly data: TarData;
  /** The data segments of a sparse file. */
  readonly sparseMap?: readonly SparseSegment[];
  readonly options?: TarFileOptions;
}

/**
 * A readable/writable pair (for `pipeThrough`) that writes the entries
 * written to it as a GNU-format tar stream, ended by the end-of-archive
 * marker and padded to a 10240-byte record when the writable closes. An
 * entry that fails (a name too long, data longer or shorter than its size,
 * an error of its data) errors both sides with that error; cancelling the
 * reader fails the entry being written.
 *
 * @example
 * ```ts
 * const tar = new TarStream({ recycleChunks: true });
 * await entries.pipeThrough(tar).pipeThrough(zstdCompressStream()).pipeTo(sink);
 * ```
 */
export class TarStream implements ReadableWritablePair<Uint8Array, TarInput> {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<TarInput>;
  readonly #tar: TarWriter;

  constructor(options: TarWriterOptions = {}) {
    let out!: ReadableStreamDefaultController<Uint8Array>;
    /** Settles the write of the chunk handed out last: at the next read, or when the reader cancels. */
    let handedOut: { resolve: () => void; reject: (e: unknown) => void } | undefined;
    let cancelled: { reason: unknown } | undefined;
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => void (out = c),
        pull: () => {
          const h = handedOut;
          handedOut = undefined;
          h?.resolve();
        },
        cancel: (reason) => {
          cancelled = { reason };
          handedOut?.reject(reason);
          handedOut = undefined;
        },
      },
      { highWaterMark: 0 },
    );
    const bytes = new WritableStream<Uint8Array>({
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          if (cancelled) return reject(cancelled.reason);
          handedOut = { resolve, reject };
          out.enqueue(chunk);
        }),
      close: () => out.close(),
    });
    const sink = bytes.getWriter();
    const tar = new TarWriter(sink, options);
    this.#tar = tar;
    const failing = async (step: Promise<void>): Promise<void> => {
      try {
        await step;
      } catch (e) {
        if (!cancelled) out.error(e);
        throw e;
      }
    };
    this.writable = new WritableStream<TarInput>({
      write: (e) =>
        failing(e.sparseMap === undefined ? tar.addFile(e.path, e.size, e.data, e.options) : tar.addSparseFile(e.path, e.size, e.sparseMap, e.data, e.options)),
      close: () => failing(tar.finish().then(() => sink.close())),
      abort: (reason) => {
        if (!cancelled) out.error(reason);
      },
    });
  }

  /** Bytes of tar stream produced so far. */
  get bytesWritten(): number {
    return this.#tar.bytesWritten;
  }
}
