/**
 * The stream room of `wasm/`: readable/writable pairs (for `pipeThrough`)
 * whose codec runs at most {@link AHEAD_BYTES} ahead of its reader, and
 * nothing polls. {@link PairState} is what every pair shares (whether it has
 * stopped and why, one waiter, the settlement of the writer's close);
 * {@link pullDriven} is a pair whose codec runs when its reader wants output,
 * one output buffer at a time, and whose writes complete once their bytes
 * are taken. So a writer must not wait for its writes to finish before it
 * starts reading.
 *
 * @example
 * ```ts
 * const pair = pullDriven({ async pull(controller, feed) { …; return true; }, free() {} }); // true: the end
 * source.pipeThrough(pair);
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { assertLive } from "./lend.js";
import { OUT_BYTES } from "./zstd-abi.js";

/**
 * Output a stream makes ahead of its reader, so the codec runs while the
 * reader writes the previous chunks out (measured: save and load of the
 * 2 GiB/256 MiB case 10-25 % faster than with none).
 */
export const AHEAD_BYTES = 2 * OUT_BYTES;

/** The input side of a {@link pullDriven} pair, as its codec sees it. */
export interface Feed {
  /**
   * The next piece (at most `max` bytes) of the chunk written last; null
   * when no written bytes wait (a used-up chunk's write then completes).
   */
  take(max: number): Uint8Array | null;
  /** The writer has closed and every written byte was taken. */
  readonly ended: boolean;
  /** Wait for the next write or the close; throws why the pair stopped, if it has. */
  wait(): Promise<void>;
  /** Throw why the pair stopped, if it has (after an await). */
  check(): void;
}

/** A codec driven by its reader (see {@link pullDriven}). */
export interface PullCodec {
  /**
   * Make output for one read: enqueue one chunk and resolve false, or
   * resolve true at the end (after enqueuing the last chunk, if any). It
   * takes input from `feed`, waiting for it as needed. Throwing fails the pair.
   */
  pull(controller: ReadableStreamDefaultController<Uint8Array>, feed: Feed): Promise<boolean>;
  /** Free what the codec holds; called once, at the end or when the pair fails, is cancelled or aborted. */
  free(): void;
}

/**
 * What both kinds of readable/writable pair share: whether the pair has
 * stopped and why, one waiter to wake, and the settlement of the writer's
 * close. `release` frees what the codec holds; it runs once, when the pair
 * ends or fails.
 */
export class PairState {
  #stopped: { reason: unknown } | undefined;
  #wake: (() => void) | undefined;
  #finished!: { resolve: () => void; reject: (e: unknown) => void };
  /** Settles when the pair has ended (resolved) or failed (rejected). */
  readonly closed: Promise<void>;
  writeController!: WritableStreamDefaultController;
  readController!: ReadableStreamDefaultController<Uint8Array>;
  readonly #release: (reason: unknown) => void;

  constructor(release: (reason: unknown) => void) {
    this.#release = release;
    this.closed = new Promise<void>((resolve, reject) => (this.#finished = { resolve, reject }));
    this.closed.catch(() => {});
  }

  /** The pair has ended, failed, been cancelled or aborted. */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  /** Throw why the pair stopped, if it has. */
  check(): void {
    if (this.#stopped) throw this.#stopped.reason;
  }

  /** Wait until {@link nudge} (one waiter at a time). */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.#wake = resolve));
  }

  /** Wake the waiter, if any. */
  nudge(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Fail with `reason`: release the codec, error both sides, reject the close. Nothing once stopped. */
  fail(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = { reason };
    this.#release(reason);
    this.#finished.reject(reason);
    // an aborted writable is erroring already (and Node's streams assert if it is errored again meanwhile)
    if (!(this.writeController as { signal?: AbortSignal }).signal?.aborted) this.writeController.error(reason);
    this.readController.error(reason);
    this.nudge();
  }

  /**
   * The pair's readable: `pull` runs when the reader wants output (at most
   * {@link AHEAD_BYTES} are queued); cancelling the reader fails the pair.
   */
  readable(pull: (controller: ReadableStreamDefaultController<Uint8Array>) => void | Promise<void>, aheadChunks?: number): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.readController = controller;
        },
        pull,
        cancel: (reason) => this.fail(reason ?? new TypeError("zstd stream cancelled")),
      },
      aheadChunks === undefined ? { highWaterMark: AHEAD_BYTES, size: (c) => c.byteLength } : { highWaterMark: aheadChunks },
    );
  }

  /**
   * The pair's writable: `write` gets each non-empty chunk (a chunk that is
   * not a Uint8Array is a TypeError, a write after the pair stopped throws
   * why); aborting the writer fails the pair.
   */
  writable(sink: { write(chunk: Uint8Array): void | Promise<void>; close(): Promise<void> }): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      start: (controller) => {
        this.writeController = controller;
        // an abort stops the codec at once, even while a write waits on it (a Worker's job, the reader)
        const signal = (controller as { signal?: AbortSignal }).signal;
        signal?.addEventListener("abort", () => this.fail(signal.reason), { once: true });
      },
      write: (chunk) => {
        checkChunk(chunk);
        this.check();
        if (chunk.length > 0) return sink.write(chunk);
      },
      close: () => sink.close(),
      abort: (reason) => this.fail(reason),
    });
  }

  /** The end: release the codec, close the readable, resolve the close. */
  end(): void {
    const reason = new TypeError("the zstd stream has ended");
    this.#stopped = { reason };
    this.#release(reason);
    this.readController.close();
    this.#finished.resolve();
    this.nudge();
  }
}

/**
 * A readable/writable pair (for `pipeThrough`) whose codec runs when the
 * reader wants output: at most {@link AHEAD_BYTES} are produced ahead of
 * the reader (or `aheadChunks` chunks, counted: a codec that lends its
 * output needs that bound), nothing polls, and a write completes once the
 * codec has taken all its bytes. A failure errors both sides; cancelling the reader or
 * aborting the writer stops the codec.
 */
export function pullDriven(codec: PullCodec, aheadChunks?: number): ReadableWritablePair<Uint8Array, Uint8Array> {
  /** The written chunk being taken, how much of it was taken, and its write's settlement. */
  let pending: { bytes: Uint8Array; taken: number; done: () => void; failed: (e: unknown) => void } | undefined;
  let closing = false;
  const pair = new PairState((reason) => {
    codec.free();
    pending?.failed(reason);
    pending = undefined;
  });
  const feed: Feed = {
    take(max) {
      if (!pending) return null;
      if (pending.taken === pending.bytes.length) {
        pending.done();
        pending = undefined;
        return null;
      }
      const piece = pending.bytes.subarray(pending.taken, pending.taken + max);
      pending.taken += piece.length;
      return piece;
    },
    get ended() {
      return closing && pending === undefined;
    },
    async wait() {
      await pair.wait();
      pair.check();
    },
    check: () => pair.check(),
  };

  const readable = pair.readable(async (controller) => {
    try {
      pair.check();
      if (await codec.pull(controller, feed)) {
        pair.check();
        pair.end();
      }
    } catch (e) {
      pair.fail(e);
      throw e;
    }
  }, aheadChunks);
  const writable = pair.writable({
    write(chunk) {
      return new Promise<void>((done, failed) => {
        pending = { bytes: chunk, taken: 0, done, failed };
        pair.nudge();
      });
    },
    close() {
      closing = true;
      pair.nudge();
      return pair.closed;
    },
  });
  return { readable, writable };
}

function checkChunk(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new WasmError("invalid-argument", `zstd streams take Uint8Array chunks, got ${Object.prototype.toString.call(chunk)}`);
  }
  assertLive(chunk, "zstd stream"); // a detached chunk would read as empty: bytes lost without a word
}
