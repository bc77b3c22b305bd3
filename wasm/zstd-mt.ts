/**
 * The parallel writer: one zstd frame compressed on several Workers, cut the
 * way zstd's own multithreaded mode cuts it (`zstdmt_compress.c`), so that
 * every reader of zstd (msb 0.6.18, which decodes only a bundle's first
 * frame, `zstd -d`, GNU tar, bsdtar) sees one ordinary frame.
 *
 * - The input is cut into jobs whose size follows from the level's window
 *   (four windows: 8 MiB at level 3), never from the number of Workers.
 * - Each job is compressed on a context of its own, primed with the last
 *   bytes of the job before it (a fraction of the window: 256 KiB at level 3)
 *   as raw content it may refer back to, its repeat offsets forgotten, and
 *   its frame header dropped; its blocks are the frame's next blocks. Job 0
 *   writes the frame header (window and checksum flag, no content size).
 * - The frame's XXH64 is computed here, over all input in order, and written
 *   after the last job's blocks (a single-job frame's context writes its own).
 * - A full job is dispatched only once a later byte (or the end) arrives, so
 *   the last job is never empty unless the input is: the frame's bytes do not
 *   depend on how the input was chunked either.
 *
 * So the bytes are the same with 0 (inline, on the caller's thread), 1, 2 or
 * more Workers: the same job compressor (`JobCompressor`) runs on each, and
 * the scheduler only decides where. At most one job per Worker is unemitted
 * (running, or done and waiting for an earlier one), plus the one being filled, and a job is dispatched only while the reader
 * keeps up (back-pressure reaches the writer); outputs are emitted in job
 * order. Cancelling the reader, aborting the writer or any failure terminates
 * every Worker.
 *
 * Why not zstd's own `ZSTD_MULTITHREAD` on wasm threads: it needs a shared
 * memory and `wasi-threads`, i.e. a threads-enabled wasi-libc build, a host
 * import that spawns a Worker synchronously from inside a zstd call, and
 * `Atomics.wait` on the caller's thread; zstd.wasm would import from its
 * host (it imports nothing today), and the three runtimes differ in exactly
 * those places. Jobs over plain message passing need none of it, keep each
 * Worker's memory its own (given back when the stream ends), and run the
 * same code inline where no Worker can be made.
 *
 * @example
 * ```ts
 * const packed = source.pipeThrough(parallelCompressStream(3, 2, workerSpawner()));
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { wasmBytes } from "./load.js";
import { PairState } from "./pair.js";
import { type ZstdExports, zstdErrorName, zstdInstance } from "./zstd-abi.js";
import type { ZstdWorker } from "./zstd-worker-host.js";

/** Input a job compresses per zstd call (zstdmt's: four 128 KiB blocks); its output is copied out per call. */
const CHUNK_BYTES = 4 * 128 * 1024;
/** Input gathered on the caller's thread before it is handed to a job's runner (and hashed). */
const BATCH_BYTES = 1024 * 1024;

/** What the main thread posts to a compression Worker: a job is `start`, its input in `data` batches, then `end`. */
export type ToZstdWorker =
  | { type: "init"; wasm: Uint8Array; level: number }
  | { type: "start"; index: number; prefix: Uint8Array; first: boolean }
  | { type: "data"; bytes: Uint8Array }
  | { type: "end"; last: boolean };
/** What a compression Worker posts back: a batch given back to be filled again, a job's output, or a failure. */
export type FromZstdWorker = { type: "took"; bytes: Uint8Array } | { type: "job"; index: number; pieces: Uint8Array[] } | { type: "error"; message: string };

function check(x: ZstdExports, ret: number, what: string): number {
  if (x.sb_error_code(ret) !== 0) throw new WasmError("compression", `zstd compression failed (${what}): ${zstdErrorName(x, ret)}`);
  return ret >>> 0;
}

/**
 * Compresses jobs at one level in one module instance (on a Worker, or
 * inline): a job is {@link begin} with its prefix, its input is
 * {@link append}ed straight into the module's memory (the only copy of it
 * the thread keeps), and {@link finish} compresses it {@link CHUNK_BYTES} at
 * a time; the output comes back as pieces.
 */
export class JobCompressor {
  readonly #x: ZstdExports;
  readonly #m: number;
  readonly #inPtr: number;
  readonly #outPtr: number;
  readonly #outCap: number;
  /** Input bytes of one job at this level (zstd's multithreaded mode's choice). */
  readonly jobSize: number;
  /** Bytes of the previous job a job is primed with. */
  readonly overlap: number;
  #prefixLen = 0;
  #srcLen = 0;
  #first = false;

  private constructor(x: ZstdExports, level: number) {
    this.#x = x;
    this.jobSize = x.sb_mt_job_size(level) >>> 0;
    this.overlap = x.sb_mt_overlap(level) >>> 0;
    this.#outCap = x.sb_mt_bound(CHUNK_BYTES) >>> 0;
    // the buffers first: the scratch context sb_mt_new starts and frees leaves room the job's context reuses
    this.#inPtr = x.sb_malloc(this.overlap + this.jobSize);
    this.#outPtr = x.sb_malloc(this.#outCap);
    this.#m = x.sb_mt_new(level);
    if (this.#inPtr === 0 || this.#outPtr === 0 || this.#m === 0) throw new WasmError("out-of-memory", `zstd: could not create a job compressor at level ${level}`);
  }

  /** A compressor at `level` in a new instance of `module` (default: zstd.wasm). */
  static async open(level: number, module?: WebAssembly.Module): Promise<JobCompressor> {
    return new JobCompressor(await zstdInstance(module), level);
  }

  /** Start a job primed with `prefix` (at most {@link overlap} bytes); job 0 is `first`. */
  begin(prefix: Uint8Array, first: boolean): void {
    new Uint8Array(this.#x.memory.buffer, this.#inPtr, prefix.length).set(prefix);
    this.#prefixLen = prefix.length;
    this.#srcLen = 0;
    this.#first = first;
  }

  /** Add `bytes` to the job's input (at most {@link jobSize} in all). */
  append(bytes: Uint8Array): void {
    if (this.#srcLen + bytes.length > this.jobSize) throw new WasmError("invalid-argument", `zstd: a job holds at most ${this.jobSize} bytes`);
    new Uint8Array(this.#x.memory.buffer, this.#inPtr + this.#prefixLen + this.#srcLen, bytes.length).set(bytes);
    this.#srcLen += bytes.length;
  }

  /** Compress the job; its output, the frame's next bytes (`last`: the frame's end). */
  finish(last: boolean): Uint8Array[] {
    const x = this.#x;
    const srcLen = this.#srcLen;
    const pieces: Uint8Array[] = [];
    const take = (n: number): void => void pieces.push(new Uint8Array(x.memory.buffer, this.#outPtr, n).slice());
    if (last && !this.#first && srcLen === 0) {
      take(check(x, x.sb_mt_last_empty_block(this.#outPtr, this.#outCap), "last block"));
      return pieces;
    }
    check(x, x.sb_mt_begin(this.#m, this.#inPtr, this.#prefixLen, srcLen, this.#first ? 1 : 0, this.#outPtr, this.#outCap), "job start");
    const src = this.#inPtr + this.#prefixLen;
    const chunks = Math.ceil(srcLen / CHUNK_BYTES);
    for (let k = 0; k < Math.max(chunks, 1); k++) {
      const n = Math.min(CHUNK_BYTES, srcLen - k * CHUNK_BYTES);
      const end = last && k >= chunks - 1;
      if (n === 0 && !end) break;
      const written = check(x, x.sb_mt_chunk(this.#m, this.#outPtr, this.#outCap, src + k * CHUNK_BYTES, n, end ? 1 : 0), "block");
      if (written > 0) take(written);
    }
    return pieces;
  }

  /** Free the context; the instance and its memory go with the last reference. */
  free(): void {
    this.#x.sb_mt_free(this.#m);
  }
}

/** XXH64 (seed 0) of a stream, on the caller's thread: a zstd frame's content checksum. */
class Xxh64 {
  readonly #x: ZstdExports;
  readonly #state: number;
  readonly #buf: number;

  constructor(x: ZstdExports) {
    this.#x = x;
    this.#state = x.sb_xxh64_new();
    this.#buf = x.sb_malloc(BATCH_BYTES);
    if (this.#state === 0 || this.#buf === 0) throw new WasmError("out-of-memory", "zstd: out of memory for the frame checksum");
  }

  /** Hash `bytes` (at most {@link BATCH_BYTES}). */
  update(bytes: Uint8Array): void {
    new Uint8Array(this.#x.memory.buffer, this.#buf, bytes.length).set(bytes);
    this.#x.sb_xxh64_update(this.#state, this.#buf, bytes.length);
  }

  /** The frame's 4-byte checksum: XXH64's low 32 bits, little-endian. */
  checksum(): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.#x.sb_xxh64_low32(this.#state) >>> 0, true);
    return out;
  }
}

/** Where jobs run, one at a time: a Worker, or the caller's thread. */
interface Runner {
  start(index: number, prefix: Uint8Array, first: boolean): void;
  /** Hand over a batch of the job's input; it comes back through the scheduler's `giveBack`. */
  data(bytes: Uint8Array): void;
  /** The job's output once compressed. */
  end(last: boolean): Promise<Uint8Array[]>;
  close(): void;
}

/** Jobs compressed on the caller's thread by the same {@link JobCompressor} a Worker runs. */
function inlineRunner(c: JobCompressor, giveBack: (bytes: Uint8Array) => void): Runner {
  return {
    start: (_index, prefix, first) => c.begin(prefix, first),
    data(bytes) {
      c.append(bytes);
      giveBack(bytes);
    },
    end: async (last) => c.finish(last),
    close: () => c.free(),
  };
}

/** Jobs compressed on a Worker made by `spawn`; a failure is reported to `fail`. */
function workerRunner(level: number, wasm: Uint8Array, spawn: () => ZstdWorker, giveBack: (bytes: Uint8Array) => void, fail: (e: WasmError) => void): Runner {
  const worker = spawn();
  let pending: { resolve: (pieces: Uint8Array[]) => void; index: number } | undefined;
  let index = -1;
  worker.onmessage = ({ data }) => {
    const m = data as FromZstdWorker;
    if (m.type === "took") return giveBack(m.bytes);
    if (m.type === "error") return fail(new WasmError("worker", `zstd compression failed on its Worker: ${m.message}`));
    const p = pending;
    if (p === undefined || p.index !== m.index) return fail(new WasmError("worker", `zstd compression Worker answered job ${m.index} unasked`));
    pending = undefined;
    worker.unref?.(); // idle: it does not keep the process alive
    p.resolve(m.pieces);
  };
  worker.onerror = (event) => {
    const e = event as { message?: unknown; error?: unknown; preventDefault?: () => void };
    e.preventDefault?.(); // Deno and Bun: handled here, not an uncaught error of the process
    fail(new WasmError("worker", `zstd compression Worker failed: ${String(e.message ?? e.error ?? event)}`));
  };
  worker.postMessage({ type: "init", wasm, level } satisfies ToZstdWorker, []);
  const post = (m: ToZstdWorker, transfer: Transferable[] = []): void => worker.postMessage(m, transfer);
  return {
    start(i, prefix, first) {
      index = i;
      worker.ref?.();
      post({ type: "start", index, prefix, first }, [prefix.buffer as ArrayBuffer]);
    },
    data: (bytes) => post({ type: "data", bytes }, [bytes.buffer as ArrayBuffer]),
    end(last) {
      return new Promise((resolve) => {
        pending = { resolve, index };
        post({ type: "end", last });
      });
    },
    close() {
      worker.onmessage = null;
      worker.onerror = null;
      worker.terminate();
    },
  };
}

/**
 * One zstd frame with a content checksum at `level`, compressed as jobs on
 * up to `workers` Workers made by `spawn` (jobs run inline, on the caller's
 * thread, when `workers` is 0 or `spawn` is null). A readable/writable pair
 * for `pipeThrough`; the bytes do not depend on `workers`. Input is handed
 * to the current job's runner in 1 MiB batches (a Worker copies each into
 * its module's memory and gives it back), so the caller's thread holds no
 * job buffer. Workers are made when a job finds none idle, and all are
 * terminated when the stream ends, fails, is cancelled or aborted.
 */
export function parallelCompressStream(level: number, workers: number, spawn: (() => ZstdWorker) | null): ReadableWritablePair<Uint8Array, Uint8Array> {
  const maxRunners = spawn === null ? 1 : Math.max(1, workers);
  const useWorkers = spawn !== null && workers > 0;
  const runners: Runner[] = [];
  const idle: Runner[] = [];
  let setup: Promise<{ hash: Xxh64; jobSize: number; overlap: number; wasm: Uint8Array | null; inline: JobCompressor | null }> | undefined;
  let hash: Xxh64 | undefined;
  let jobSize = 0;
  let wasm: Uint8Array | null = null;
  let inline: JobCompressor | null = null;
  /** The last bytes of the input so far (up to the overlap): the next job's prefix. */
  let tail = new Uint8Array(0);
  let tailLen = 0;
  /** The batch being gathered, and batches given back. */
  let batch: Uint8Array = new Uint8Array(BATCH_BYTES);
  let batchLen = 0;
  const spare: Uint8Array[] = [];
  /** The job being fed, and its input so far. */
  let current: { runner: Runner; index: number } | undefined;
  let jobLen = 0;
  let nextIndex = 0;
  let nextEmit = 0;
  let lastIndex = -1;
  const done = new Map<number, Uint8Array[]>();
  const pair = new PairState(() => {
    for (const r of runners) r.close();
    runners.length = 0;
    idle.length = 0;
  });
  const giveBack = (bytes: Uint8Array): void => {
    if (bytes.buffer.byteLength === BATCH_BYTES) spare.push(new Uint8Array(bytes.buffer as ArrayBuffer));
  };

  const ready = async (): Promise<void> => {
    setup ??= (async () => {
      const x = await zstdInstance();
      const bytes = useWorkers ? await wasmBytes("zstd.wasm") : null;
      const c = useWorkers ? null : await JobCompressor.open(level);
      // the job size and overlap zstd's multithreaded mode picks at this level
      return { hash: new Xxh64(x), jobSize: x.sb_mt_job_size(level) >>> 0, overlap: x.sb_mt_overlap(level) >>> 0, wasm: bytes, inline: c };
    })();
    try {
      const s = await setup;
      if (hash === undefined) {
        ({ hash, jobSize, wasm, inline } = s);
        tail = new Uint8Array(s.overlap);
      }
    } catch (e) {
      pair.fail(e);
    }
    pair.check();
  };

  /** Emit finished jobs in order; after the last one, the checksum and the end. */
  const flush = (): void => {
    for (let pieces = done.get(nextEmit); pieces !== undefined && !pair.stopped; pieces = done.get(nextEmit)) {
      done.delete(nextEmit);
      for (const p of pieces) pair.readController.enqueue(p);
      if (nextEmit === lastIndex) {
        if (lastIndex > 0) pair.readController.enqueue(hash!.checksum());
        pair.end();
      }
      nextEmit++;
    }
  };

  const runner = (): Runner => {
    const r = useWorkers ? workerRunner(level, wasm!, spawn!, giveBack, (e) => pair.fail(e)) : inlineRunner(inline!, giveBack);
    runners.push(r);
    return r;
  };

  /** Keep the input's last bytes (up to the overlap) as the next job's prefix. */
  const keepTail = (bytes: Uint8Array): void => {
    if (bytes.length >= tail.length) {
      tail.set(bytes.subarray(bytes.length - tail.length));
      tailLen = tail.length;
    } else {
      const keep = Math.min(tailLen, tail.length - bytes.length);
      tail.copyWithin(0, tailLen - keep, tailLen);
      tail.set(bytes, keep);
      tailLen = keep + bytes.length;
    }
  };

  /** Hash the batch, keep its tail, and hand it to the current job's runner. */
  const post = (): void => {
    if (batchLen === 0) return;
    const bytes = batch.subarray(0, batchLen);
    hash!.update(bytes);
    keepTail(bytes);
    batch = spare.pop() ?? new Uint8Array(BATCH_BYTES);
    batchLen = 0;
    current!.runner.data(bytes);
  };

  /**
   * Start the next job on a free runner, primed with the input's tail, once
   * fewer than one job per runner is unemitted (running, or done and
   * waiting for an earlier one) and the reader keeps up.
   */
  const startJob = async (): Promise<void> => {
    const busy = (): boolean => nextIndex - nextEmit >= maxRunners || (idle.length === 0 && runners.length >= maxRunners);
    while (!pair.stopped && (busy() || (pair.readController.desiredSize ?? 0) <= 0)) await pair.wait();
    pair.check();
    const r = idle.pop() ?? runner();
    const index = nextIndex++;
    r.start(index, tail.slice(0, tailLen), index === 0);
    current = { runner: r, index };
    jobLen = 0;
  };

  /** Hand the current job's last batch over and have it compressed; its output is emitted in order. */
  const endJob = (last: boolean): void => {
    post();
    const { runner: r, index } = current!;
    current = undefined;
    if (last) lastIndex = index;
    r.end(last).then(
      (pieces) => {
        if (pair.stopped) return;
        done.set(index, pieces);
        idle.push(r);
        flush();
        pair.nudge();
      },
      (e) => pair.fail(e),
    );
  };

  /** Run `step`; a failure of ours (not why the pair stopped) fails the pair. */
  const guarded = async (step: () => Promise<void>): Promise<void> => {
    try {
      await step();
    } catch (e) {
      pair.fail(e);
      throw e;
    }
  };

  const readable = pair.readable(() => pair.nudge());
  const writable = pair.writable({
    write: (chunk) =>
      guarded(async () => {
        await ready();
        for (let off = 0; off < chunk.length; ) {
          if (jobLen === jobSize) endJob(false); // more input follows: the full job is not the last
          if (current === undefined) await startJob();
          const n = Math.min(chunk.length - off, jobSize - jobLen, BATCH_BYTES - batchLen);
          batch.set(chunk.subarray(off, off + n), batchLen);
          batchLen += n;
          jobLen += n;
          off += n;
          if (batchLen === BATCH_BYTES) post();
        }
      }),
    close: () =>
      guarded(async () => {
        await ready();
        if (current === undefined) await startJob();
        endJob(true);
        await pair.closed;
      }),
  });
  return { readable, writable };
}
