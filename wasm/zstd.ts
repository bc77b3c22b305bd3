/**
 * zstd compression and decompression as Web Streams, on zstd's own C library
 * compiled to WebAssembly (`dist/wasm/zstd.wasm`, built by `scripts/build-wasm.mjs`
 * from `wasm/zstd-shim.c`).
 *
 * Each stream instantiates its own module (compiled once, see `load.ts`),
 * so the memory a large window needed is given back when the stream ends.
 * Input is copied once into the module's memory and output once out of it;
 * zstd's streaming API (`ZSTD_compressStream2`, `ZSTD_decompressStream`)
 * does the rest: several frames in a row, skippable frames anywhere,
 * content checksums verified, windows up to `maxWindowBytes`.
 *
 * Both are readable/writable pairs that run at most 2 MiB ahead of their
 * reader; nothing polls. The decompressor, and the compressor where no
 * Worker can be made, are pull-driven: they run when their reader wants
 * output, one output buffer (1 MiB) at a time, and a write completes once
 * its bytes are taken. So a writer must not wait for its writes to finish
 * before it starts reading. The compressor otherwise runs on a Worker of its
 * own (`zstd-worker.ts`), so compression overlaps the work of the thread
 * that feeds it.
 *
 * A decompressor's output chunks are read-only: output that is all zeros
 * is handed out as a view of one shared zero chunk.
 *
 * @example
 * ```ts
 * const roundTrip = new Blob([data]).stream()
 *   .pipeThrough(zstdCompressStream())
 *   .pipeThrough(zstdDecompressStream({ label: "example" }));
 * ```
 * @module
 */

import { ArchiveError, CompressionError, InvalidArgument } from "../src/errors.js";
import { wasmBytes, wasmModule } from "./load.js";

/** Default largest window a frame may need: 128 MiB, the `zstd` CLI's default limit. */
export const ZSTD_DEFAULT_MAX_WINDOW_BYTES: number = 128 * 1024 * 1024;
/**
 * Largest `maxWindowBytes` accepted: 2 GiB (`zstd --long=31`), the largest
 * window zstd itself decodes. zstd stops at 1 GiB on 32-bit builds, as
 * WebAssembly is; ours is built with its 32-bit decoder's long-offset path
 * widened to 31 bits (see scripts/build-wasm.mjs), since a module's memory
 * has room for a 2 GiB window.
 */
export const ZSTD_MAX_WINDOW_BYTES: number = 2 * 1024 * 1024 * 1024;
/** Lowest compression level `save` accepts. */
export const ZSTD_MIN_LEVEL = 1;
/** Highest compression level `save` accepts (20–22, zstd's `--ultra` levels, need up to 1 GiB more memory to write). */
export const ZSTD_MAX_LEVEL = 19;
/** Default compression level (the `zstd` CLI's). */
export const ZSTD_DEFAULT_LEVEL = 3;

/** Bytes copied into the module per call. */
const IN_BYTES = 1024 * 1024;
/** Output gathered in the module's memory before it is copied out as one chunk. */
const OUT_BYTES = 1024 * 1024;
/**
 * Output a stream makes ahead of its reader, so the codec runs while the
 * reader writes the previous chunks out (measured: save and load of the
 * 2 GiB/256 MiB case 10-25 % faster than with none).
 */
const AHEAD_BYTES = 2 * OUT_BYTES;

const ZSTD_E_CONTINUE = 0;
const ZSTD_E_END = 2;
const ERROR_WINDOW_TOO_LARGE = 16;
const ERROR_CHECKSUM_WRONG = 22;
const ERROR_DICTIONARY_WRONG = 32;

/** Options of {@link zstdCompressStream}. */
export interface ZstdCompressOptions {
  /** zstd level, {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL} (default {@link ZSTD_DEFAULT_LEVEL}). */
  level?: number;
  /**
   * Compress on a Worker, so the caller's thread goes on reading and framing
   * meanwhile (default true). Used only where a Worker can be made (see
   * {@link setZstdWorkerFactory}); elsewhere the stream compresses inline.
   * The bytes written are the same either way.
   */
  worker?: boolean;
}

/** Options of {@link zstdDecompressStream}. */
export interface ZstdDecompressOptions {
  /**
   * Refuse frames needing a larger window, in bytes (default
   * {@link ZSTD_DEFAULT_MAX_WINDOW_BYTES}, at most {@link ZSTD_MAX_WINDOW_BYTES}).
   * A decoder holds up to one window of memory.
   */
  maxWindowBytes?: number;
  /** Names the stream in error messages, e.g. the archive path. */
  label?: string;
}

/** The exports of `zstd.wasm` (see `zstd-shim.c`); `size_t` values arrive as signed 32-bit numbers. */
interface ZstdExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  sb_malloc(n: number): number;
  sb_free(p: number): void;
  sb_cstream_new(level: number): number;
  sb_dstream_new(maxWindow: number): number;
  sb_stream_free(s: number): void;
  sb_compress(s: number, src: number, size: number, pos: number, dst: number, cap: number, dstPos: number, end: number): number;
  sb_decompress(s: number, src: number, size: number, pos: number, dst: number, cap: number, dstPos: number): number;
  sb_in_pos(s: number): number;
  sb_out_pos(s: number): number;
  sb_error_code(code: number): number;
  sb_error_name(code: number): number;
  sb_frame_window(s: number): number;
  sb_frame_consumed(s: number): number;
  sb_find_frame_size(src: number, size: number): number;
  sb_all_zero(src: number, size: number): number;
}

/**
 * The chunk a decoder hands out for output that is all zeros, shared by
 * every decoder so a dense disk image's zero runs cost no allocation (and no
 * garbage for a runtime that collects it late). Replaced if a consumer
 * transfers (detaches) it.
 */
let zeros = new Uint8Array(OUT_BYTES);

/**
 * Whether `bytes` is a view of the shared zero chunk a decompressor hands out
 * for output that is all zeros: such a view is known to be all zeros without
 * looking at it, so a reader that skips zero blocks need not scan it again.
 * False for every other array, zero or not.
 *
 * @example
 * ```ts
 * for await (const chunk of body.pipeThrough(zstdDecompressStream())) {
 *   if (isSharedZeros(chunk)) continue; // a hole: nothing to write
 *   await write(chunk);
 * }
 * ```
 */
export function isSharedZeros(bytes: Uint8Array): boolean {
  return bytes.byteLength > 0 && bytes.buffer === zeros.buffer;
}

/** One module instance running one zstd stream, with its input and output buffers. */
class ZstdCall {
  readonly #x: ZstdExports;
  readonly stream: number;
  readonly inPtr: number;
  readonly outPtr: number;
  /** Bytes of output waiting in the output buffer. */
  outPos = 0;

  private constructor(x: ZstdExports, stream: number) {
    this.#x = x;
    this.stream = stream;
    this.inPtr = x.sb_malloc(IN_BYTES);
    this.outPtr = x.sb_malloc(OUT_BYTES);
    if (this.inPtr === 0 || this.outPtr === 0) throw new CompressionError("zstd: out of memory for buffers");
  }

  static async open(make: (x: ZstdExports) => number, what: string, module?: WebAssembly.Module): Promise<ZstdCall> {
    const instance = await WebAssembly.instantiate(module ?? (await wasmModule("zstd.wasm")), {});
    const x = instance.exports as unknown as ZstdExports;
    x._initialize?.();
    const s = make(x);
    if (s === 0) throw new CompressionError(`zstd: could not create the ${what}`);
    return new ZstdCall(x, s);
  }

  get x(): ZstdExports {
    return this.#x;
  }

  /** Copy `bytes` (≤ {@link IN_BYTES}) into the input buffer. */
  load(bytes: Uint8Array): void {
    new Uint8Array(this.#x.memory.buffer, this.inPtr, bytes.length).set(bytes);
  }

  /**
   * The gathered output, empties the output buffer: a view of the shared
   * zero chunk when it is all zeros, else a copy.
   */
  takeDecoded(): Uint8Array {
    if (this.outPos > 0 && this.#x.sb_all_zero(this.outPtr, this.outPos) === 1) {
      if (zeros.byteLength === 0) zeros = new Uint8Array(OUT_BYTES);
      const out = zeros.subarray(0, this.outPos);
      this.outPos = 0;
      return out;
    }
    return this.takeOutput();
  }

  /** A copy of the gathered output; empties the output buffer. */
  takeOutput(): Uint8Array {
    const out = new Uint8Array(this.#x.memory.buffer, this.outPtr, this.outPos).slice();
    this.outPos = 0;
    return out;
  }

  errorCode(ret: number): number {
    return this.#x.sb_error_code(ret);
  }

  errorName(ret: number): string {
    const p = this.#x.sb_error_name(ret) >>> 0;
    const mem = new Uint8Array(this.#x.memory.buffer);
    let end = p;
    while (end < mem.length && mem[end] !== 0) end++;
    return new TextDecoder().decode(mem.subarray(p, end));
  }

  /** Free the zstd context; the instance and its memory go with the last reference. */
  close(): void {
    this.#x.sb_stream_free(this.stream);
  }
}

/** The input side of a {@link pullDriven} pair, as its codec sees it. */
interface Feed {
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
interface PullCodec {
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
class PairState {
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
    this.writeController.error(reason);
    this.readController.error(reason);
    this.nudge();
  }

  /**
   * The pair's readable: `pull` runs when the reader wants output (at most
   * {@link AHEAD_BYTES} are queued); cancelling the reader fails the pair.
   */
  readable(pull: (controller: ReadableStreamDefaultController<Uint8Array>) => void | Promise<void>): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.readController = controller;
        },
        pull,
        cancel: (reason) => this.fail(reason ?? new TypeError("zstd stream cancelled")),
      },
      { highWaterMark: AHEAD_BYTES, size: (c) => c.byteLength },
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
 * the reader, nothing polls, and a write completes once the codec has taken
 * all its bytes. A failure errors both sides; cancelling the reader or
 * aborting the writer stops the codec.
 */
function pullDriven(codec: PullCodec): ReadableWritablePair<Uint8Array, Uint8Array> {
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
  });
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

/** A codec's {@link ZstdCall}, opened when first needed and freed once. */
function lazyCall(make: (x: ZstdExports) => number, what: string) {
  let call: ZstdCall | undefined;
  let freed = false;
  return {
    /** The open call (opening it first); throws why the pair stopped if it was freed meanwhile. */
    async get(feed: Feed): Promise<ZstdCall> {
      if (call === undefined) {
        const c = await ZstdCall.open(make, what);
        if (freed) {
          c.close();
          feed.check();
        }
        call = c;
      }
      return call;
    },
    get current(): ZstdCall | undefined {
      return call;
    },
    free(): void {
      freed = true;
      call?.close();
      call = undefined;
    },
  };
}

/**
 * One compressor call on the piece of `pieceLen` bytes in the input buffer,
 * from `pos` (the new position is `sb_in_pos`): returns when the output
 * buffer is full or the input is taken, or, when `end`, with zstd's 0 once
 * the frame is complete.
 */
function compressStep(c: ZstdCall, pieceLen: number, pos: number, end: boolean): number {
  const ret = c.x.sb_compress(c.stream, c.inPtr, pieceLen, pos, c.outPtr, OUT_BYTES, c.outPos, end ? ZSTD_E_END : ZSTD_E_CONTINUE);
  if (c.errorCode(ret) !== 0) throw new CompressionError(`zstd compression failed: ${c.errorName(ret)}`);
  c.outPos = c.x.sb_out_pos(c.stream) >>> 0;
  return ret;
}

/** A compressor driven by its writer (the body of a compression Worker): output goes to `emit`, 1 MiB at a time. */
export interface PushCompressor {
  /** Compress `bytes`, emitting each output buffer as it fills. */
  write(bytes: Uint8Array, emit: (out: Uint8Array) => void): void;
  /** Finish the frame and emit the rest. */
  end(emit: (out: Uint8Array) => void): void;
  /** Free the zstd context. */
  free(): void;
}

/**
 * A {@link PushCompressor} at `level` in a new instance of `module`
 * (zstd.wasm), for a Worker, which has no reader of its own. It writes what
 * {@link zstdCompressStream} writes inline. Not part of the public API.
 *
 * @example
 * ```ts
 * const c = await openPushCompressor(await WebAssembly.compile(bytes), 3);
 * c.write(data, send);
 * c.end(send);
 * c.free();
 * ```
 */
export async function openPushCompressor(module: WebAssembly.Module, level: number): Promise<PushCompressor> {
  const c = await ZstdCall.open((x) => x.sb_cstream_new(checkLevel(level)), `compressor at level ${level}`, module);
  return {
    write(bytes, emit) {
      for (let off = 0; off < bytes.length; off += IN_BYTES) {
        const piece = bytes.subarray(off, off + IN_BYTES);
        c.load(piece);
        let pos = 0;
        while (pos < piece.length) {
          compressStep(c, piece.length, pos, false);
          pos = c.x.sb_in_pos(c.stream) >>> 0;
          if (c.outPos === OUT_BYTES) emit(c.takeOutput());
        }
      }
    },
    end(emit) {
      for (;;) {
        const ret = compressStep(c, 0, 0, true);
        if (ret === 0 || c.outPos === OUT_BYTES) {
          if (c.outPos > 0) emit(c.takeOutput());
          if (ret === 0) return;
        }
      }
    },
    free() {
      c.close();
    },
  };
}

/**
 * A Worker as the compressor uses it: the part of the Web Worker API that
 * Deno and Bun have, and that the Node adapter provides over
 * `node:worker_threads`. `ref`/`unref`, where present, let an idle stream's
 * Worker not keep the process alive.
 */
export interface ZstdWorker {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  terminate(): void;
  ref?(): void;
  unref?(): void;
}

/** Makes a {@link ZstdWorker} running the module script at `url` (`zstd-worker.js`). */
export type ZstdWorkerFactory = (url: URL) => ZstdWorker;

/** null: no Worker can be made here, compression runs inline. */
let workerFactory: ZstdWorkerFactory | null = null;

/**
 * Register how compression Workers are made (the core's host seam,
 * `src/host.ts`, registers its host's); `null`, the default, makes every
 * compressor run inline.
 *
 * @example
 * ```ts
 * setZstdWorkerFactory(null); // compress on the caller's thread only
 * ```
 */
export function setZstdWorkerFactory(factory: ZstdWorkerFactory | null): void {
  workerFactory = factory;
}

/** How to make a compression Worker here, or null where none can be made. */
function workerSpawner(): (() => ZstdWorker) | null {
  const factory = workerFactory;
  if (factory === null) return null;
  const url = new URL("./zstd-worker.js", import.meta.url);
  return () => factory(url);
}

/** What the main thread posts to a compression Worker. */
export type ToZstdWorker = { type: "init"; wasm: Uint8Array; level: number } | { type: "data"; bytes: Uint8Array } | { type: "end" };
/** What a compression Worker posts back: output, input taken, the end of the frame, or a failure. */
export type FromZstdWorker = { type: "out"; bytes: Uint8Array } | { type: "took"; bytes: Uint8Array } | { type: "done" } | { type: "error"; message: string };

/** Input the main thread gathers before it posts it to the Worker. */
const BATCH_BYTES = 1024 * 1024;
/** Input posted to the Worker and not yet compressed, at most (then writes wait). */
const IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/**
 * {@link zstdCompressStream} on a Worker: writes are copied into 1 MiB
 * batches and posted (transferred); the Worker compresses them, posts the
 * output back, and gives each batch back to be filled again (so a long
 * stream allocates no input buffers after its first few). Writes wait while more than {@link IN_FLIGHT_BYTES} are
 * posted and not compressed, or the reader is {@link AHEAD_BYTES} behind. A
 * failure errors both sides and ends the Worker; so do cancelling the
 * reader and aborting the writer.
 */
function workerCompressStream(level: number, spawn: () => ZstdWorker): ReadableWritablePair<Uint8Array, Uint8Array> {
  /** Made at the first write (or the close): a pair never written to holds no Worker. */
  let worker: ZstdWorker | undefined;
  /** The Worker was sent its module and level. */
  let started: Promise<void> | undefined;
  let inFlight = 0;
  /** The writer closed: the Worker is finishing the frame. */
  let closing = false;
  /** Batches the Worker gave back, to be filled again. */
  const spare: Uint8Array<ArrayBuffer>[] = [];
  let batch = new Uint8Array(BATCH_BYTES);
  let batchLen = 0;
  const pair = new PairState(() => {
    if (worker === undefined) return;
    worker.onmessage = null;
    worker.onerror = null;
    worker.terminate();
  });
  /** Keep the process alive only while the Worker has work the stream waits for. */
  const busy = (yes: boolean): void => void (yes ? worker?.ref?.() : worker?.unref?.());
  const listen = (worker: ZstdWorker): void => {
    worker.onmessage = ({ data }) => {
      const m = data as FromZstdWorker;
      if (m.type === "out") pair.readController.enqueue(m.bytes);
      else if (m.type === "took") {
        inFlight -= m.bytes.length;
        if (m.bytes.buffer.byteLength === BATCH_BYTES) spare.push(new Uint8Array(m.bytes.buffer as ArrayBuffer));
        if (inFlight === 0 && !closing) busy(false);
        pair.nudge();
      } else if (m.type === "done") pair.end();
      else pair.fail(new CompressionError(`zstd compression failed on its Worker: ${m.message}`));
    };
    worker.onerror = (event) => {
      const e = event as { message?: unknown; error?: unknown; preventDefault?: () => void };
      e.preventDefault?.(); // Deno and Bun: handled here, not an uncaught error of the process
      pair.fail(new CompressionError(`zstd compression Worker failed: ${String(e.message ?? e.error ?? event)}`));
    };
  };
  /** The Worker, made and sent its module and level on first use. */
  const ready = async (): Promise<ZstdWorker> => {
    started ??= (async () => {
      const wasm = await wasmBytes("zstd.wasm");
      pair.check();
      worker = spawn();
      listen(worker);
      worker.postMessage({ type: "init", wasm, level } satisfies ToZstdWorker, []);
    })();
    try {
      await started;
    } catch (e) {
      pair.fail(e);
    }
    pair.check();
    return worker!;
  };
  const post = (worker: ZstdWorker): void => {
    if (batchLen === 0) return;
    const bytes = batch.subarray(0, batchLen);
    inFlight += bytes.length;
    busy(true);
    worker.postMessage({ type: "data", bytes } satisfies ToZstdWorker, [bytes.buffer]);
    batch = spare.pop() ?? new Uint8Array(BATCH_BYTES);
    batchLen = 0;
  };

  const readable = pair.readable(() => pair.nudge());
  const writable = pair.writable({
    async write(chunk) {
      const worker = await ready();
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(chunk.length - off, batch.length - batchLen);
        batch.set(chunk.subarray(off, off + n), batchLen);
        batchLen += n;
        off += n;
        if (batchLen === batch.length) post(worker);
      }
      while (!pair.stopped && (inFlight > IN_FLIGHT_BYTES || (pair.readController.desiredSize ?? 0) <= 0)) await pair.wait();
      pair.check();
    },
    async close() {
      const worker = await ready();
      closing = true;
      post(worker);
      busy(true);
      worker.postMessage({ type: "end" } satisfies ToZstdWorker, []);
      return pair.closed;
    },
  });
  return { readable, writable };
}

/**
 * A stream that zstd-compresses its input into exactly one zstd frame with
 * a content checksum (XXH64), at `level` (default 3). Throws
 * {@link InvalidArgument} for a level outside
 * {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}. It is a readable/writable
 * pair for `pipeThrough`. Where a Worker can be made (Deno, Bun, and Node
 * through its adapter; see {@link setZstdWorkerFactory}) and `worker` is not
 * false, it compresses on its own Worker, started at the first write and
 * ended with the stream, while the caller's thread goes on producing input;
 * at most 8 MiB of input wait for it. Elsewhere it compresses inline,
 * pull-driven: when the reader wants output, one output buffer (1 MiB) at
 * a time. Either way it runs at most 2 MiB ahead of its reader and writes
 * the same bytes.
 *
 * @example
 * ```ts
 * const compressed = file.readable.pipeThrough(zstdCompressStream({ level: 3 }));
 * ```
 */
export function zstdCompressStream(options: ZstdCompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const level = checkLevel(options.level ?? ZSTD_DEFAULT_LEVEL);
  const spawn = options.worker === false ? null : workerSpawner();
  if (spawn !== null) return workerCompressStream(level, spawn);
  const call = lazyCall((x) => x.sb_cstream_new(level), `compressor at level ${level}`);
  /** The piece of input in the module's memory and how much of it zstd took. */
  let pieceLen = 0;
  let pos = 0;

  const compress = (c: ZstdCall, end: boolean): number => {
    const ret = compressStep(c, pieceLen, pos, end);
    pos = c.x.sb_in_pos(c.stream) >>> 0;
    return ret;
  };

  return pullDriven({
    async pull(controller, feed) {
      for (;;) {
        if (pos === pieceLen) {
          const piece = feed.take(IN_BYTES);
          if (piece !== null) {
            (await call.get(feed)).load(piece);
            pieceLen = piece.length;
            pos = 0;
          } else if (feed.ended) {
            // finish the frame, one output buffer per read
            const c = await call.get(feed);
            for (;;) {
              const ret = compress(c, true);
              if (ret === 0) {
                if (c.outPos > 0) controller.enqueue(c.takeOutput());
                return true;
              }
              if (c.outPos === OUT_BYTES) {
                controller.enqueue(c.takeOutput());
                return false;
              }
            }
          } else {
            await feed.wait();
            continue;
          }
        }
        const c = call.current!;
        compress(c, false);
        if (c.outPos === OUT_BYTES) {
          controller.enqueue(c.takeOutput());
          return false;
        }
      }
    },
    free: call.free,
  });
}

/**
 * A stream that decodes a zstd stream: one or more zstd frames, with
 * skippable frames before, between or after them, as the zstd format says.
 * It is a readable/writable pair for `pipeThrough`, pull-driven: the
 * decoder runs when the reader wants output, one output buffer (1 MiB)
 * at a time and at most 2 MiB ahead, and a write completes once its bytes
 * are decoded. Output
 * chunks are read-only (all-zero output is a view of a shared chunk).
 * Content checksums are verified. Errors with {@link ArchiveError} when a
 * frame needs a window above `maxWindowBytes` (naming the frame's offset,
 * its window and the option), and with {@link CompressionError} when the
 * data is corrupt, a checksum does not match (naming the frame's byte
 * range), or the input ends mid-frame or holds no frame. The message names
 * `label`. Throws {@link InvalidArgument} for a `maxWindowBytes` outside
 * 1 KiB..{@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * const tar = archive.readable.pipeThrough(zstdDecompressStream({ label: "backup.tar.zst" }));
 * ```
 */
export function zstdDecompressStream(options: ZstdDecompressOptions = {}): ReadableWritablePair<Uint8Array, Uint8Array> {
  const maxWindowBytes = checkMaxWindow(options.maxWindowBytes ?? ZSTD_DEFAULT_MAX_WINDOW_BYTES);
  const subject = options.label === undefined ? "zstd stream" : `"${options.label}"`;
  const call = lazyCall((x) => x.sb_dstream_new(maxWindowBytes), "decompressor");
  /** Input bytes consumed by the decoder so far. */
  let consumed = 0;
  /** Offset of the frame being decoded. */
  let frameStart = 0;
  /** The decoder finished a frame and has not started another. */
  let atBoundary = true;
  /** The first bytes of the current frame (its magic, descriptor and window byte), for messages. */
  const head = new Uint8Array(6);
  let headLen = 0;
  let sawInput = false;
  /** The piece of input in the module's memory (at most {@link IN_BYTES}) and how much of it zstd took. */
  let pieceLen = 0;
  let pos = 0;
  /** The last call filled the output buffer: zstd may hold more output for the input it took. */
  let lastFull = false;

  /**
   * Where the frame that failed ends. A frame that starts in the current
   * piece and lies wholly in it (zstd then decodes it in one pass, keeping
   * no count) is measured there; otherwise the decoder's count of the
   * frame's bytes (header, blocks, checksum) says.
   */
  const frameEnd = (c: ZstdCall, bytes: number, at: number): number => {
    if (frameStart === consumed) {
      const size = c.x.sb_find_frame_size(c.inPtr + at, bytes - at);
      if (c.errorCode(size) === 0) return consumed + (size >>> 0);
    }
    return frameStart + c.x.sb_frame_consumed(c.stream);
  };
  const fail = (c: ZstdCall, ret: number, bytes: number, at: number): Error => {
    const code = c.errorCode(ret);
    if (code === ERROR_WINDOW_TOO_LARGE) {
      // zstd records the window unless its header parser refused it first (above 2 GiB).
      let window = c.x.sb_frame_window(c.stream);
      if (window <= maxWindowBytes) window = headerWindow(head.subarray(0, headLen)) ?? window;
      if (window > ZSTD_MAX_WINDOW_BYTES || window <= maxWindowBytes) {
        return new ArchiveError(
          `${subject}: the zstd frame at byte ${frameStart} needs a ${window > maxWindowBytes ? formatBytes(window) : "larger"} window, ` +
            `more than the ${formatBytes(maxWindowBytes)} allowed and more than any zstd decodes ` +
            `(${formatBytes(ZSTD_MAX_WINDOW_BYTES)}, zstd --long=31); the archive was not written by zstd's own library`,
        );
      }
      return new ArchiveError(
        `${subject}: the zstd frame at byte ${frameStart} needs a ${formatBytes(window)} window, more than the ` +
          `${formatBytes(maxWindowBytes)} allowed; raise maxWindowBytes (snapbundle load --max-window) to at least ${formatBytes(window)} to load it ` +
          `(the decoder then holds that much memory)`,
      );
    }
    if (code === ERROR_DICTIONARY_WRONG) {
      return new CompressionError(
        `${subject}: the zstd frame at byte ${frameStart} needs a dictionary; snapbundle archives are never compressed with one`,
      );
    }
    if (code === ERROR_CHECKSUM_WRONG) {
      return new CompressionError(
        `${subject}: zstd content checksum mismatch: the frame at bytes ${frameStart}..${frameEnd(c, bytes, at)} ` +
          `(end exclusive) decodes to data whose XXH64 differs from the one it records; the archive is corrupt`,
      );
    }
    return new CompressionError(
      `${subject}: corrupt zstd data in the frame at byte ${frameStart} (decoder stopped near byte ${consumed}): ${c.errorName(ret)}`,
    );
  };

  /** One decoder call on the current piece; true when the output buffer is full. */
  const decode = (c: ZstdCall): boolean => {
    if (headLen < head.length) {
      // bytes of the frame the decoder has not taken yet, but `head` holds, start at pos
      const from = pos + headLen - (consumed - frameStart);
      const n = Math.min(head.length - headLen, pieceLen - from);
      if (n > 0 && from >= 0) {
        head.set(new Uint8Array(c.x.memory.buffer, c.inPtr + from, n), headLen);
        headLen += n;
      }
    }
    const ret = c.x.sb_decompress(c.stream, c.inPtr, pieceLen, pos, c.outPtr, OUT_BYTES, c.outPos);
    if (c.errorCode(ret) !== 0) throw fail(c, ret, pieceLen, pos);
    const newPos = c.x.sb_in_pos(c.stream) >>> 0;
    consumed += newPos - pos;
    const took = newPos > pos;
    pos = newPos;
    c.outPos = c.x.sb_out_pos(c.stream) >>> 0;
    // 0: a frame is decoded and flushed. A call that only flushed output
    // (after the frame ended) returns a hint for the next header instead.
    if (ret === 0) {
      atBoundary = true;
      frameStart = consumed;
      headLen = 0;
    } else if (took) atBoundary = false;
    return c.outPos === OUT_BYTES;
  };

  return pullDriven({
    // Decoding happens here, when the reader wants output: one output buffer per read.
    async pull(controller, feed) {
      for (;;) {
        if (pos === pieceLen && !lastFull) {
          // All of the piece is taken and all its output is out of zstd.
          const piece = feed.take(IN_BYTES);
          if (piece !== null) {
            sawInput = true;
            (await call.get(feed)).load(piece);
            pieceLen = piece.length;
            pos = 0;
          } else {
            const c = call.current;
            if (c !== undefined && c.outPos > 0) {
              controller.enqueue(c.takeDecoded());
              return false;
            }
            if (feed.ended) {
              if (!sawInput) throw new CompressionError(`${subject}: empty input, not a zstd stream`);
              if (!atBoundary) {
                throw new CompressionError(
                  `${subject}: truncated zstd stream: the input ended at byte ${consumed}, inside the frame that starts at byte ${frameStart}`,
                );
              }
              return true;
            }
            await feed.wait();
            continue;
          }
        }
        lastFull = decode(call.current!);
        if (lastFull) {
          controller.enqueue(call.current!.takeDecoded());
          return false;
        }
      }
    },
    free: call.free,
  });
}

/** The window a zstd frame header's descriptor states (null for a single-segment frame or too few bytes). */
function headerWindow(h: Uint8Array): number | null {
  if (h.length < 6 || (h[4]! & 0x20) !== 0) return null;
  const base = 2 ** ((h[5]! >> 3) + 10);
  return base + (base / 8) * (h[5]! & 7);
}

/**
 * True when `head` starts like a zstd stream: a zstd frame's magic
 * (`28 b5 2f fd`) or a skippable frame's (`5? 2a 4d 18`).
 *
 * @example
 * ```ts
 * isZstdMagic(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // true
 * ```
 */
export function isZstdMagic(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const m = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0;
  return m === 0xfd2fb528 || (m & 0xfffffff0) >>> 0 === 0x184d2a50;
}

/**
 * Check a `maxWindowBytes` option: an integer from 1 KiB to {@link ZSTD_MAX_WINDOW_BYTES}.
 *
 * @example
 * ```ts
 * checkMaxWindow(2 * 1024 ** 3); // zstd --long=31 frames fit
 * ```
 */
export function checkMaxWindow(maxWindowBytes: number): number {
  if (!Number.isInteger(maxWindowBytes) || maxWindowBytes < 1024 || maxWindowBytes > ZSTD_MAX_WINDOW_BYTES) {
    throw new InvalidArgument(
      `zstd maxWindowBytes ${String(maxWindowBytes)}: must be an integer from 1 KiB to ${formatBytes(ZSTD_MAX_WINDOW_BYTES)}`,
    );
  }
  return maxWindowBytes;
}

/**
 * Check a compression level: an integer in {@link ZSTD_MIN_LEVEL}..{@link ZSTD_MAX_LEVEL}.
 *
 * @example
 * ```ts
 * checkLevel(3); // 3
 * ```
 */
export function checkLevel(level: number, optionName = "level"): number {
  if (!Number.isInteger(level) || level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL) {
    throw new InvalidArgument(
      `zstd ${optionName} ${String(level)}: must be an integer from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL}`,
    );
  }
  return level;
}

/**
 * A byte count as people write it: `128 MiB`, `1.5 GiB`, `512 B`.
 *
 * @example
 * ```ts
 * formatBytes(128 * 1024 * 1024); // "128 MiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2).replace(/\.?0+$/, "")} ${units[u]}`;
}


function checkChunk(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new InvalidArgument(`zstd streams take Uint8Array chunks, got ${Object.prototype.toString.call(chunk)}`);
  }
}

