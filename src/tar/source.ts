/**
 * A pull-based byte cursor over a `ReadableStream<Uint8Array>`: whole blocks
 * for headers (copies), zero-copy views of the current chunk for data. It
 * holds one chunk at a time and counts the bytes consumed. The source may
 * lend its chunks (valid until the next read, see `wasm/lend.ts`): a data
 * view is valid until the next `take`, `skip` or `readBlock`, and a chunk
 * that arrives already taken back (detached) is a TypeError, never read
 * as empty.
 *
 * @example
 * ```ts
 * import { ByteSource } from "./source.js";
 * const src = new ByteSource(new Blob([new Uint8Array(1024)]).stream());
 * const block = await src.readBlock(); // Uint8Array(512)
 * await src.release();
 * ```
 * @module
 */

import { assertLive } from "../../wasm/mod.js";
import { BLOCK_SIZE } from "./header.js";

const EMPTY = new Uint8Array(0);

/**
 * Sequential reader of a byte stream with an absolute position.
 *
 * @example
 * ```ts
 * const src = new ByteSource(stream);
 * const view = await src.take(4096); // up to 4096 bytes of the current chunk, or null at the end
 * console.log(src.position);
 * await src.release();
 * ```
 */
export class ByteSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  #done = false;
  #released = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Make sure unread bytes are buffered; `false` at end of input. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#done) return false;
      const r = await this.#reader.read();
      if (r.done) {
        this.#done = true;
        this.#chunk = EMPTY;
        this.#pos = 0;
        return false;
      }
      const v: unknown = r.value;
      if (!(v instanceof Uint8Array)) throw new TypeError("tar reader: the source stream must yield Uint8Array chunks");
      assertLive(v, "tar reader");
      this.#chunk = v;
      this.#pos = 0;
    }
    return true;
  }

  /**
   * The next 512-byte block, or the number of bytes that were left (0–511)
   * when the input ends first. A copy: a header is kept across reads.
   */
  async readBlock(): Promise<Uint8Array | number> {
    if (!(await this.#fill())) return 0;
    if (this.#chunk.length - this.#pos >= BLOCK_SIZE) {
      const b = this.#chunk.slice(this.#pos, this.#pos + BLOCK_SIZE);
      this.#pos += BLOCK_SIZE;
      this.position += BLOCK_SIZE;
      return b;
    }
    const out = new Uint8Array(BLOCK_SIZE);
    let got = 0;
    while (got < BLOCK_SIZE) {
      if (!(await this.#fill())) return got;
      const n = Math.min(BLOCK_SIZE - got, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + n), got);
      this.#pos += n;
      this.position += n;
      got += n;
    }
    return out;
  }

  /** Up to `max` (> 0) bytes as a view of the current chunk, or `null` at end of input. */
  async take(max: number): Promise<Uint8Array | null> {
    if (!(await this.#fill())) return null;
    const n = Math.min(max, this.#chunk.length - this.#pos);
    const v = this.#chunk.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.position += n;
    return v;
  }

  /** Skip up to `n` bytes; resolves how many were skipped (fewer only at end of input). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const v = await this.take(left);
      if (v === null) break;
      left -= v.length;
    }
    return n - left;
  }

  /** Stop reading: cancel the stream (it is not drained) and release the lock. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#chunk = EMPTY;
    this.#pos = 0;
    try {
      await this.#reader.cancel();
    } catch {
      // The stream had already failed; its error was (or will be) reported by read().
    }
    try {
      this.#reader.releaseLock();
    } catch {
      // Nothing to release.
    }
  }
}
