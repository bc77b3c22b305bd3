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
/** Input hashed per call on the caller's thread. */
const HASH_BYTES = 1024 * 1024;

/** One job: its prefix and input in one buffer, prefix first. */
export interface ZstdJob {
  index: number;
  bytes: Uint8Array;
  prefixLen: number;
  srcLen: number;
  first: boolean;
  last: boolean;
}

/** What the main thread posts to a compression Worker. */
export type ToZstdWorker = { type: "init"; wasm: Uint8Array; level: number } | ({ type: "job" } & ZstdJob);
/** What a compression Worker posts back: a job's output (and its buffer, given back), or a failure. */
export type FromZstdWorker = { type: "job"; index: number; pieces: Uint8Array[]; bytes: Uint8Array } | { type: "error"; message: string };

function check(x: ZstdExports, ret: number, what: string): number {
  if (x.sb_error_code(ret) !== 0) throw new WasmError("compression", `zstd compression failed (${what}): ${zstdErrorName(x, ret)}`);
  return ret >>> 0;
}

/**
 * Compresses jobs at one level in one module instance (on a Worker, or
 * inline): a job's bytes are copied into the module's memory, then
 * compressed {@link CHUNK_BYTES} at a time; the output comes back as pieces.
 */
export class JobCompressor {
  readonly #x: ZstdExports;
  readonly #m: number;
  #inPtr = 0;
  #inCap = 0;
  readonly #outPtr: number;
  readonly #outCap: number;

  private constructor(x: ZstdExports, m: number) {
    this.#x = x;
    this.#m = m;
    this.#outCap = x.sb_mt_bound(CHUNK_BYTES) >>> 0;
    this.#outPtr = x.sb_malloc(this.#outCap);
    if (this.#outPtr === 0) throw new WasmError("out-of-memory", "zstd: out of memory for a job's output buffer");
  }

  /** A compressor at `level` in a new instance of `module` (default: zstd.wasm). */
  static async open(level: number, module?: WebAssembly.Module): Promise<JobCompressor> {
    const x = await zstdInstance(module);
    const m = x.sb_mt_new(level);
    if (m === 0) throw new WasmError("out-of-memory", `zstd: could not create a job compressor at level ${level}`);
    return new JobCompressor(x, m);
  }

  /** Compress `job`; its output, the frame's next bytes. */
  compress(job: ZstdJob): Uint8Array[] {
    const x = this.#x;
    const pieces: Uint8Array[] = [];
    const take = (n: number): void => void pieces.push(new Uint8Array(x.memory.buffer, this.#outPtr, n).slice());
    if (job.last && !job.first && job.srcLen === 0) {
      take(check(x, x.sb_mt_last_empty_block(this.#outPtr, this.#outCap), "last block"));
      return pieces;
    }
    const total = job.prefixLen + job.srcLen;
    if (total > this.#inCap) {
      x.sb_free(this.#inPtr);
      this.#inPtr = x.sb_malloc(total);
      this.#inCap = this.#inPtr === 0 ? 0 : total;
      if (this.#inPtr === 0) throw new WasmError("out-of-memory", `zstd: out of memory for a job of ${total} bytes`);
    }
    new Uint8Array(x.memory.buffer, this.#inPtr, total).set(job.bytes.subarray(0, total));
    check(x, x.sb_mt_begin(this.#m, this.#inPtr, job.prefixLen, job.srcLen, job.first ? 1 : 0, this.#outPtr, this.#outCap), "job start");
    const src = this.#inPtr + job.prefixLen;
    const chunks = Math.ceil(job.srcLen / CHUNK_BYTES);
    for (let k = 0; k < Math.max(chunks, 1); k++) {
      const n = Math.min(CHUNK_BYTES, job.srcLen - k * CHUNK_BYTES);
      const end = job.last && k >= chunks - 1;
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
    this.#buf = x.sb_malloc(HASH_BYTES);
    if (this.#state === 0 || this.#buf === 0) throw new WasmError("out-of-memory", "zstd: out of memory for the frame checksum");
  }

  update(bytes: Uint8Array): void {
    for (let off = 0; off < bytes.length; off += HASH_BYTES) {
      const piece = bytes.subarray(off, off + HASH_BYTES);
      new Uint8Array(this.#x.memory.buffer, this.#buf, piece.length).set(piece);
      this.#x.sb_xxh64_update(this.#state, this.#buf, piece.length);
    }
  }

  /** The frame's 4-byte checksum: XXH64's low 32 bits, little-endian. */
  checksum(): Uint8Array {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.#x.sb_xxh64_low32(this.#state) >>> 0, true);
    return out;
  }
}

/** Where jobs run: a Worker, or the caller's thread. */
interface Runner {
  run(job: ZstdJob): Promise<{ pieces: Uint8Array[]; bytes: Uint8Array }>;
  close(): void;
}

/** Jobs compressed on the caller's thread, one at a time, by the same {@link JobCompressor} a Worker runs. */
function inlineRunner(level: number): Runner {
  let compressor: Promise<JobCompressor> | undefined;
  let closed = false;
  return {
    async run(job) {
      compressor ??= JobCompressor.open(level);
      const c = await compressor;
      if (closed) throw new WasmError("compression", "the zstd stream has ended");
      return { pieces: c.compress(job), bytes: job.bytes };
    },
    close() {
      closed = true;
      compressor?.then((c) => c.free(), () => {});
    },
  };
}

/** Jobs compressed on a Worker made by `spawn`, one at a time; a failure is reported to `fail`. */
function workerRunner(level: number, wasm: Uint8Array, spawn: () => ZstdWorker, fail: (e: WasmError) => void): Runner {
  const worker = spawn();
  let pending: { resolve: (r: { pieces: Uint8Array[]; bytes: Uint8Array }) => void; index: number } | undefined;
  worker.onmessage = ({ data }) => {
    const m = data as FromZstdWorker;
    if (m.type === "error") return fail(new WasmError("worker", `zstd compression failed on its Worker: ${m.message}`));
    const p = pending;
    if (p === undefined || p.index !== m.index) return fail(new WasmError("worker", `zstd compression Worker answered job ${m.index} unasked`));
    pending = undefined;
    worker.unref?.(); // idle: it does not keep the process alive
    p.resolve({ pieces: m.pieces, bytes: m.bytes });
  };
  worker.onerror = (event) => {
    const e = event as { message?: unknown; error?: unknown; preventDefault?: () => void };
    e.preventDefault?.(); // Deno and Bun: handled here, not an uncaught error of the process
    fail(new WasmError("worker", `zstd compression Worker failed: ${String(e.message ?? e.error ?? event)}`));
  };
  worker.postMessage({ type: "init", wasm, level } satisfies ToZstdWorker, []);
  return {
    run(job) {
      return new Promise((resolve) => {
        pending = { resolve, index: job.index };
        worker.ref?.();
        worker.postMessage({ type: "job", ...job } satisfies ToZstdWorker, [job.bytes.buffer]);
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
 * for `pipeThrough`; the bytes do not depend on `workers`. Workers are made
 * when a job finds none idle, and all are terminated when the stream ends,
 * fails, is cancelled or aborted.
 */
export function parallelCompressStream(level: number, workers: number, spawn: (() => ZstdWorker) | null): ReadableWritablePair<Uint8Array, Uint8Array> {
  const maxRunners = spawn === null ? 1 : Math.max(1, workers);
  const useWorkers = spawn !== null && workers > 0;
  const runners: Runner[] = [];
  const idle: Runner[] = [];
  let setup: Promise<{ hash: Xxh64; jobSize: number; overlap: number; wasm: Uint8Array | null }> | undefined;
  let hash: Xxh64 | undefined;
  let jobSize = 0;
  let overlap = 0;
  let wasm: Uint8Array | null = null;
  /** The job being filled: prefix first, then input. */
  let fill: Uint8Array = new Uint8Array(0);
  let prefixLen = 0;
  let srcLen = 0;
  const spare: Uint8Array[] = [];
  let nextIndex = 0;
  let nextEmit = 0;
  let lastIndex = -1;
  const done = new Map<number, Uint8Array[]>();
  const pair = new PairState(() => {
    for (const r of runners) r.close();
    runners.length = 0;
    idle.length = 0;
  });

  const ready = async (): Promise<void> => {
    setup ??= (async () => {
      const [x, bytes] = await Promise.all([zstdInstance(), useWorkers ? wasmBytes("zstd.wasm") : null]);
      // the job size and overlap zstd's multithreaded mode picks at this level
      return { hash: new Xxh64(x), jobSize: x.sb_mt_job_size(level) >>> 0, overlap: x.sb_mt_overlap(level) >>> 0, wasm: bytes };
    })();
    try {
      const s = await setup;
      if (hash === undefined) {
        ({ hash, jobSize, overlap, wasm } = s);
        fill = new Uint8Array(overlap + jobSize);
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
    const r = useWorkers ? workerRunner(level, wasm!, spawn!, (e) => pair.fail(e)) : inlineRunner(level);
    runners.push(r);
    return r;
  };

  /**
   * Send the job being filled to a free runner, once fewer than one job per
   * runner is unemitted (running, or done and waiting for an earlier one)
   * and the reader keeps up; start the next job with this one's tail.
   */
  const dispatch = async (last: boolean): Promise<void> => {
    const busy = (): boolean => nextIndex - nextEmit >= maxRunners || (idle.length === 0 && runners.length >= maxRunners);
    while (!pair.stopped && (busy() || (pair.readController.desiredSize ?? 0) <= 0)) await pair.wait();
    pair.check();
    const r = idle.pop() ?? runner();
    const index = nextIndex++;
    const job: ZstdJob = { index, bytes: fill, prefixLen, srcLen, first: index === 0, last };
    if (last) lastIndex = job.index;
    else {
      const next = spare.pop() ?? new Uint8Array(overlap + jobSize);
      next.set(fill.subarray(prefixLen + srcLen - overlap, prefixLen + srcLen));
      fill = next;
      prefixLen = overlap;
      srcLen = 0;
    }
    r.run(job).then(
      ({ pieces, bytes }) => {
        if (pair.stopped) return;
        if (bytes.byteLength === overlap + jobSize) spare.push(bytes);
        done.set(job.index, pieces);
        idle.push(r);
        flush();
        pair.nudge();
      },
      (e) => pair.fail(e),
    );
  };

  const readable = pair.readable(() => pair.nudge());
  const writable = pair.writable({
    async write(chunk) {
      await ready();
      hash!.update(chunk);
      for (let off = 0; off < chunk.length; ) {
        if (srcLen === jobSize) await dispatch(false); // more input follows: the full job is not the last
        const n = Math.min(chunk.length - off, jobSize - srcLen);
        fill.set(chunk.subarray(off, off + n), prefixLen + srcLen);
        srcLen += n;
        off += n;
      }
    },
    async close() {
      await ready();
      await dispatch(true);
      return pair.closed;
    },
  });
  return { readable, writable };
}
