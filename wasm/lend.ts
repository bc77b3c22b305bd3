/**
 * Lent buffers: a fixed ring of buffers a producer fills in turn and lends
 * to its reader, each valid until the reader's next read. Taking a slot
 * back detaches every view of its previous round (the backing store moves
 * to a new `ArrayBuffer` by `structuredClone(…, { transfer })`, no copy), so
 * a reader that kept a view past its time sees an empty, detached buffer and
 * fails loudly (`set`, `subarray` and typed-array construction throw a
 * TypeError; {@link assertLive} names it) instead of reading bytes that were
 * overwritten.
 *
 * Why lending with transfer rather than a pool the consumer hands back: the
 * streams between the decoder and the tar reader are pull-driven with no
 * queue of their own (high-water mark 0), so "valid until the next read"
 * is what each of them already guarantees; a hand-back protocol would need
 * every stage (peek, lend, count, abort, tar reader) to return buffers on
 * every path, errors included. The one stage that keeps bytes past a read,
 * the write window, copies into a ring it owns (`WriteWindow` `stage`).
 *
 * @example
 * ```ts
 * const ring = new LendingRing(3, 1 << 20);
 * const out = ring.take(); // refill and enqueue; the view taken 3 rounds ago is now detached
 * ```
 * @module
 */

/** A fixed ring of `count` buffers of `bytes` each, lent in turn (see the module comment). */
export class LendingRing {
  readonly count: number;
  readonly bytes: number;
  readonly #slots: (ArrayBuffer | null)[];
  #next = 0;
  /** Buffers allocated so far: at most {@link count}, unless a reader transferred one away. */
  allocations = 0;

  constructor(count: number, bytes: number) {
    this.count = count;
    this.bytes = bytes;
    this.#slots = new Array<ArrayBuffer | null>(count).fill(null);
  }

  /** The next slot, whole; every view of its previous round is detached first. */
  take(): Uint8Array {
    const i = this.#next;
    this.#next = (i + 1) % this.count;
    const old = this.#slots[i];
    let buf: ArrayBuffer;
    if (old === null || old === undefined || old.byteLength !== this.bytes) {
      buf = new ArrayBuffer(this.bytes); // first round, or a reader transferred it away
      this.allocations++;
    } else {
      buf = structuredClone(old, { transfer: [old] });
    }
    this.#slots[i] = buf;
    return new Uint8Array(buf);
  }
}

/** Whether `view`'s buffer was detached (a lent view used after its time, or a transferred one). */
export function isDetached(view: ArrayBufferView): boolean {
  if (view.buffer.byteLength > 0) return false;
  try {
    new Uint8Array(view.buffer);
    return false;
  } catch {
    return true;
  }
}

/** Throw a TypeError naming `what` when `view` was detached. */
export function assertLive(view: ArrayBufferView, what: string): void {
  if (isDetached(view)) {
    throw new TypeError(`${what}: a lent buffer was used after its owner took it back (its views are valid until the next read)`);
  }
}
