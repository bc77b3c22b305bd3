/**
 * Streaming GNU-format tar writer (magic `ustar  \0`, as `tar --format=gnu`
 * writes): regular files and old-GNU sparse (`S`) files, mode 0644 and
 * uid/gid 0 unless told otherwise. Numbers that do not fit in octal (sizes
 * and sparse offsets past 8 GiB) are written in GNU base-256. Output goes to a
 * `WritableStreamDefaultWriter<Uint8Array>` in chunks of about `chunkSize`
 * bytes (1 MiB by default), honouring the stream's backpressure.
 *
 * @example
 * ```ts
 * import { TarWriter } from "./writer.js";
 * const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
 * const out = new Response(readable).arrayBuffer(); // consume concurrently
 * const sink = writable.getWriter();
 * const tar = new TarWriter(sink);
 * const hello = new TextEncoder().encode("hello");
 * await tar.addFile("dir/hello.txt", hello.length, [hello]);
 * await tar.addSparseFile("disk.img", 1 << 30, [{ offset: 4096, length: 5 }], [hello]);
 * await tar.finish();
 * await sink.close();
 * console.log((await out).byteLength); // 10240
 * ```
 * @module
 */

import { ArchiveError, InvalidArgument } from "../errors.js";
import { BLOCK_SIZE, encodeNumeric, F, GNU_SPARSE, RECORD_SIZE, writeChecksum } from "./header.js";
import { blockAlignMap, validateSparseMap, writeDescriptors, type SparseSegment } from "./sparse.js";

/** Options of {@link TarWriter}. */
export interface TarWriterOptions {
  /** Size of the chunks handed to the sink (default 1 MiB, at least 512). */
  chunkSize?: number;
  /**
   * Reuse a chunk's buffer once the sink's write of it has resolved, instead
   * of allocating one per chunk. Only for a sink that is done with a chunk
   * when its write resolves and never keeps it — snapbundle's zstd stream,
   * which copies each chunk into the WASM heap — not, e.g., an identity
   * `TransformStream`, which hands the very chunk to its reader. Default
   * `false`: every chunk is a fresh buffer the sink may keep.
   */
  recycleChunks?: boolean;
}

/** Chunk buffers kept for reuse with `recycleChunks`. */
const MAX_SPARE_CHUNKS = 4;

/** Per-entry options. */
export interface TarFileOptions {
  /** Modification time, whole seconds since the epoch (default 0). */
  mtime?: number;
  /** Permission bits (default 0o644). */
  mode?: number;
}

/** Bytes an entry's data may be given as: any (async) iterable of chunks, e.g. a `ReadableStream`. */
export type TarData = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const DEFAULT_CHUNK = 1 << 20;
const encoder = new TextEncoder();
const GNU_MAGIC = encoder.encode("ustar  \0");
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Writes a tar stream entry by entry. Calls must not overlap (await each);
 * after any failure (a data length mismatch, an error from the sink) the
 * archive is incomplete and every later call rejects. `finish()` writes the
 * end-of-archive marker, pads to a 10240-byte record and waits until the sink
 * has accepted everything; it does not close the writer — the caller does.
 * Data chunks are copied, so a source may reuse its buffers.
 *
 * @example
 * ```ts
 * const tar = new TarWriter(fileWritable.getWriter());
 * await tar.addFile("a/manifest.json", bytes.length, [bytes], { mtime: 1714560000 });
 * await tar.finish();
 * ```
 */
export class TarWriter {
  readonly #sink: WritableStreamDefaultWriter<Uint8Array>;
  readonly #chunkSize: number;
  #buf: Uint8Array;
  #len = 0;
  #lastWrite: Promise<void> = Promise.resolve();
  #busy = false;
  #failed: unknown = undefined;
  #finished = false;
  #bytes = 0;
  readonly #recycle: boolean;
  readonly #spare: Uint8Array[] = [];

  constructor(sink: WritableStreamDefaultWriter<Uint8Array>, options: TarWriterOptions = {}) {
    const size = options.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isSafeInteger(size) || size < BLOCK_SIZE) {
      throw new InvalidArgument(`tar writer: chunkSize ${size} must be an integer of at least ${BLOCK_SIZE}`);
    }
    this.#sink = sink;
    this.#chunkSize = size;
    this.#buf = new Uint8Array(size);
    this.#recycle = options.recycleChunks === true;
  }

  /** Bytes of tar stream produced so far (some may still be buffered). */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /**
   * Add a regular file (typeflag `0`) of exactly `size` bytes taken from
   * `data`. Rejects with an {@link ArchiveError} if the name is longer than
   * 100 bytes or `data` is longer or shorter than `size`.
   *
   * @example
   * ```ts
   * await tar.addFile("sha256-0123456789abcdef/manifest.json", json.length, [json]);
   * ```
   */
  async addFile(path: string, size: number, data: TarData, options: TarFileOptions = {}): Promise<void> {
    await this.#run(async () => {
      checkCount(size, `file ${JSON.stringify(path)}: size`);
      const header = this.#header(path, "0", size, options);
      writeChecksum(header);
      await this.#put(header);
      await this.#copyData(path, size, data);
    });
  }

  /**
   * Add an old-GNU sparse file (typeflag `S`) of logical size `realSize`
   * whose data segments are `map` (sorted, non-overlapping, within
   * `realSize`); `data` yields the segments' bytes concatenated. An empty
   * map with `realSize > 0` is a file that is all hole.
   *
   * The map written is `map` widened to 512-byte boundaries, with touching
   * segments merged (the widening covers holes, so zeros are stored there):
   * GNU tar starts each segment's data on a fresh block while tar-rs and
   * libarchive read it contiguously, and only block-aligned maps mean the
   * same to all of them. Maps of more than 4 descriptors continue in
   * extension headers; a file ending in a hole gets GNU tar's final
   * zero-length descriptor at `realSize`.
   *
   * @example
   * ```ts
   * const map = [{ offset: 0, length: 4096 }, { offset: 1 << 30, length: 4096 }];
   * await tar.addSparseFile("sha256-0123456789abcdef/upper.ext4", 4 << 30, map, chunks);
   * ```
   */
  async addSparseFile(
    path: string,
    realSize: number,
    map: readonly SparseSegment[],
    data: TarData,
    options: TarFileOptions = {},
  ): Promise<void> {
    await this.#run(async () => {
      checkCount(realSize, `sparse file ${JSON.stringify(path)}: realSize`);
      let given = 0;
      for (const s of map) given += s.length;
      const segments = validateSparseMap(map, realSize, given, (rule) => {
        throw new ArchiveError(`tar entry ${JSON.stringify(path)}: ${rule}`);
      });
      const aligned = blockAlignMap(segments, realSize);
      let stored = 0;
      for (const s of aligned) stored += s.length;
      // GNU tar learns the size of a file that ends in a hole from a final
      // zero-length descriptor at the logical size.
      const last = aligned[aligned.length - 1];
      const descriptors = aligned.slice();
      if (realSize > (last ? last.offset + last.length : 0)) descriptors.push({ offset: realSize, length: 0 });

      const header = this.#header(path, "S", stored, options);
      writeDescriptors(header, GNU_SPARSE.descriptors, descriptors.slice(0, GNU_SPARSE.count));
      header[GNU_SPARSE.isExtended] = descriptors.length > GNU_SPARSE.count ? 1 : 0;
      encodeNumeric(header, GNU_SPARSE.realSize, 12, realSize);
      writeChecksum(header);
      await this.#put(header);
      for (let i = GNU_SPARSE.count; i < descriptors.length; i += GNU_SPARSE.extCount) {
        const ext = new Uint8Array(BLOCK_SIZE);
        writeDescriptors(ext, 0, descriptors.slice(i, i + GNU_SPARSE.extCount));
        ext[GNU_SPARSE.extIsExtended] = i + GNU_SPARSE.extCount < descriptors.length ? 1 : 0;
        await this.#put(ext);
      }

      const cursor = new DataCursor(path, given, data);
      try {
        let j = 0;
        for (const out of aligned) {
          const outEnd = out.offset + out.length;
          let pos = out.offset;
          while (j < segments.length && segments[j]!.offset < outEnd) {
            const s = segments[j++]!;
            await this.#zeros(s.offset - pos);
            await cursor.copy(s.length, (b) => this.#put(b));
            pos = s.offset + s.length;
          }
          await this.#zeros(outEnd - pos);
        }
        await cursor.end();
      } finally {
        await cursor.close();
      }
      await this.#zeros(padding(stored));
    });
  }

  /**
   * Write the end-of-archive marker (two zero blocks), pad to a 10240-byte
   * record, hand everything to the sink and wait for it to be accepted.
   * Does not close the sink writer.
   */
  async finish(): Promise<void> {
    await this.#run(async () => {
      await this.#zeros(2 * BLOCK_SIZE);
      const rest = this.#bytes % RECORD_SIZE;
      if (rest !== 0) await this.#zeros(RECORD_SIZE - rest);
      await this.#flush();
      await this.#lastWrite;
      this.#finished = true;
    });
  }

  async #run(op: () => Promise<void>): Promise<void> {
    if (this.#failed !== undefined) {
      throw new ArchiveError("tar writer: an earlier operation failed, the archive is incomplete", {
        cause: this.#failed,
      });
    }
    if (this.#finished) throw new ArchiveError("tar writer: finish() was already called");
    if (this.#busy) throw new ArchiveError("tar writer: calls must not overlap (await each one)");
    this.#busy = true;
    try {
      await op();
    } catch (e) {
      this.#failed = e;
      throw e;
    } finally {
      this.#busy = false;
    }
  }

  #header(path: string, typeflag: string, size: number, options: TarFileOptions): Uint8Array {
    const mode = options.mode ?? 0o644;
    const mtime = options.mtime ?? 0;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new InvalidArgument(`tar entry ${JSON.stringify(path)}: mode ${mode} is not within 0..0o7777`);
    }
    checkCount(mtime, `tar entry ${JSON.stringify(path)}: mtime`);
    if (typeof path !== "string" || path === "") throw new ArchiveError("tar entry: the name is empty");
    if (path.includes("\0") || LONE_SURROGATE.test(path)) {
      throw new ArchiveError(`tar entry ${JSON.stringify(path)}: the name holds a NUL or an unpaired surrogate`);
    }
    const name = encoder.encode(path);
    if (name.length > F.name[1]) {
      throw new ArchiveError(
        `tar entry ${JSON.stringify(path)}: the name is ${name.length} bytes, longer than the ${F.name[1]} a GNU header holds`,
      );
    }
    const h = new Uint8Array(BLOCK_SIZE);
    h.set(name, F.name[0]);
    encodeNumeric(h, F.mode[0], F.mode[1], mode);
    encodeNumeric(h, F.uid[0], F.uid[1], 0);
    encodeNumeric(h, F.gid[0], F.gid[1], 0);
    encodeNumeric(h, F.size[0], F.size[1], size);
    encodeNumeric(h, F.mtime[0], F.mtime[1], mtime);
    h[F.typeflag[0]] = typeflag.charCodeAt(0);
    h.set(GNU_MAGIC, F.magic[0]);
    return h;
  }

  async #copyData(path: string, size: number, data: TarData): Promise<void> {
    const cursor = new DataCursor(path, size, data);
    try {
      await cursor.copy(size, (b) => this.#put(b));
      await cursor.end();
    } finally {
      await cursor.close();
    }
    await this.#zeros(padding(size));
  }

  /** Copy bytes into the chunk buffer, handing full chunks to the sink. */
  async #put(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, this.#buf.length - this.#len);
      this.#buf.set(n === bytes.length ? bytes : bytes.subarray(at, at + n), this.#len);
      this.#len += n;
      this.#bytes += n;
      at += n;
      if (this.#len === this.#buf.length) await this.#flush();
    }
  }

  /** Append zeros (fresh chunk buffers are zero-filled, so this only advances). */
  async #zeros(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      const n = Math.min(left, this.#buf.length - this.#len);
      this.#len += n;
      this.#bytes += n;
      left -= n;
      if (this.#len === this.#buf.length) await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    if (this.#len === 0) return;
    const whole = this.#buf;
    const chunk = this.#len === whole.length ? whole : whole.subarray(0, this.#len);
    // A fresh buffer is zero-filled, which #zeros relies on; a recycled one is zeroed when it comes back.
    this.#buf = this.#spare.pop() ?? new Uint8Array(this.#chunkSize);
    this.#len = 0;
    await this.#sink.ready;
    const p = this.#sink.write(chunk);
    p.then(
      () => {
        if (this.#recycle && this.#spare.length < MAX_SPARE_CHUNKS) this.#spare.push(whole.fill(0));
      },
      () => {
        // Reported through `ready` on the next write, or by finish().
      },
    );
    this.#lastWrite = p;
  }
}

function padding(n: number): number {
  return (BLOCK_SIZE - (n % BLOCK_SIZE)) % BLOCK_SIZE;
}

const EMPTY = new Uint8Array(0);

/** Pulls exactly the declared number of bytes out of an entry's data source. */
class DataCursor {
  readonly #path: string;
  readonly #declared: number;
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #left: Uint8Array = EMPTY;
  #pulled = 0;
  #done = false;

  constructor(path: string, declared: number, data: TarData) {
    this.#path = path;
    this.#declared = declared;
    this.#it =
      Symbol.asyncIterator in data
        ? (data as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
        : (data as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  async #next(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#done) return null;
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return null;
      }
      const v: unknown = r.value;
      if (!(v instanceof Uint8Array)) {
        throw new InvalidArgument(`tar entry ${JSON.stringify(this.#path)}: data must be Uint8Array chunks`);
      }
      if (v.length === 0) continue;
      this.#pulled += v.length;
      if (this.#pulled > this.#declared) {
        throw new ArchiveError(
          `tar entry ${JSON.stringify(this.#path)}: data is longer than the declared size of ${this.#declared} bytes`,
        );
      }
      return v;
    }
  }

  /** Hand the next `n` bytes to `put` (views; `put` must copy before returning). */
  async copy(n: number, put: (bytes: Uint8Array) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.#left.length === 0) {
        const v = await this.#next();
        if (v === null) {
          throw new ArchiveError(
            `tar entry ${JSON.stringify(this.#path)}: data ended after ${this.#pulled} bytes, the declared size is ${this.#declared}`,
          );
        }
        this.#left = v;
      }
      const k = Math.min(left, this.#left.length);
      await put(k === this.#left.length ? this.#left : this.#left.subarray(0, k));
      this.#left = this.#left.subarray(k);
      left -= k;
    }
  }

  /** Require the source to be exhausted. */
  async end(): Promise<void> {
    if (this.#left.length > 0 || (await this.#next()) !== null) {
      throw new ArchiveError(
        `tar entry ${JSON.stringify(this.#path)}: data is longer than the declared size of ${this.#declared} bytes`,
      );
    }
  }

  /** Let an unfinished source clean up. */
  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await this.#it.return?.();
    } catch {
      // The error that got us here is the one to report.
    }
  }
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgument(`${what} ${value} is not a non-negative integer up to 2^53-1`);
  }
}
