/**
 * BLAKE3 batches on up to two Workers (`blake3-worker.ts`), so a Merkle
 * tree's leaves are hashed on the other cores while the caller's thread
 * reads the next chunk. Where no Worker can be made (no factory registered
 * with `setZstdWorkerFactory`) every batch runs inline, with the same result.
 *
 * Workers cost tens of milliseconds to start and compile blake3.wasm, so a
 * pool starts none until {@link INLINE_BYTES} have been hashed inline: a
 * short input never pays for them. A Worker keeps the process alive only
 * while it has a job; {@link HashPool.close} terminates them all.
 *
 * @example
 * ```ts
 * const pool = new HashPool();
 * try {
 *   const digests = await pool.prefixedMany(new TextEncoder().encode("domain"), new Uint8Array(3 * 65536), 65536);
 * } finally {
 *   pool.close();
 * }
 * ```
 * @module
 */

import { blake3Engine } from "./blake3.js";
import { WasmError } from "./error.js";
import { wasmBytes } from "./load.js";
import { spawnerFor, type ZstdWorker } from "./zstd-worker-host.js";

/** What the main thread posts to a hashing Worker. */
export type ToHashWorker = { type: "init"; wasm: Uint8Array } | { type: "job"; id: number; prefix: Uint8Array; data: Uint8Array; unit: number };
/** What a hashing Worker posts back. */
export type FromHashWorker = { type: "done"; id: number; digests: Uint8Array } | { type: "error"; id: number; message: string };

/** Bytes hashed inline before a pool starts its Workers. */
export const INLINE_BYTES = 32 * 1024 * 1024;
/** Workers at most (the machines this targets have two cores; the caller's thread reads). */
export const MAX_HASH_WORKERS = 2;

interface Job {
  resolve(digests: Uint8Array): void;
  reject(e: unknown): void;
}

class HashWorker {
  readonly jobs = new Map<number, Job>();
  constructor(readonly worker: ZstdWorker) {}
}

/** BLAKE3 batches, inline or on Workers. See the module's description. */
export class HashPool {
  readonly #spawn: (() => ZstdWorker) | null;
  readonly #max: number;
  readonly #workers: HashWorker[] = [];
  #wasm: Promise<Uint8Array> | undefined;
  #inline = 0;
  #nextId = 0;
  #failure: WasmError | undefined;
  #closed = false;

  /** `maxWorkers` 0 hashes inline only. */
  constructor(maxWorkers = MAX_HASH_WORKERS) {
    this.#max = maxWorkers;
    this.#spawn = maxWorkers > 0 ? spawnerFor("blake3-worker.js") : null;
  }

  /** Workers started so far (for tests). */
  get workers(): number {
    return this.#workers.length;
  }

  /**
   * `BLAKE3(prefix ‖ piece)` of each `unit`-byte piece of `data`, the last
   * zero-filled, as consecutive 32-byte digests. On a Worker, `data` is
   * copied before this returns; inline, it is read when the promise settles
   * (see {@link HashPool.workers}).
   */
  prefixedMany(prefix: Uint8Array, data: Uint8Array, unit: number): Promise<Uint8Array> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new WasmError("worker", "HashPool: used after close"));
    if (this.#spawn === null || this.#inline < INLINE_BYTES) {
      this.#inline += data.length;
      return blake3Engine().then((e) => e.prefixedMany(prefix, data, unit));
    }
    const copy = data.slice(); // before any wait: the caller refills `data` once this returns
    return this.#pick().then((w) => {
      const id = this.#nextId++;
      const done = new Promise<Uint8Array>((resolve, reject) => w.jobs.set(id, { resolve, reject }));
      w.worker.ref?.();
      w.worker.postMessage({ type: "job", id, prefix, data: copy, unit } satisfies ToHashWorker, [copy.buffer]);
      return done;
    });
  }

  /** The Worker with the fewest jobs; a new one while fewer than the maximum run and all are busy. */
  async #pick(): Promise<HashWorker> {
    let best = this.#workers.reduce<HashWorker | undefined>((a, w) => (a === undefined || w.jobs.size < a.jobs.size ? w : a), undefined);
    if ((best === undefined || best.jobs.size > 0) && this.#workers.length < this.#max) {
      this.#wasm ??= wasmBytes("blake3.wasm");
      const wasm = await this.#wasm;
      if (this.#closed) throw new WasmError("worker", "HashPool: closed while starting a Worker");
      if (this.#workers.length < this.#max) best = this.#start(wasm);
    }
    return best!;
  }

  #start(wasm: Uint8Array): HashWorker {
    const w = new HashWorker(this.#spawn!());
    this.#workers.push(w);
    w.worker.onmessage = ({ data }) => {
      const m = data as FromHashWorker;
      const job = w.jobs.get(m.id);
      if (job === undefined) return;
      w.jobs.delete(m.id);
      if (w.jobs.size === 0) w.worker.unref?.();
      if (m.type === "done") job.resolve(m.digests);
      else this.#fail(new WasmError("worker", `BLAKE3 hashing failed on its Worker: ${m.message}`));
      if (m.type === "error") job.reject(this.#failure);
    };
    w.worker.onerror = (event) => {
      const e = event as { message?: unknown; error?: unknown; preventDefault?: () => void };
      e.preventDefault?.(); // Deno and Bun: handled here, not an uncaught error of the process
      this.#fail(new WasmError("worker", `BLAKE3 hashing Worker failed: ${String(e.message ?? e.error ?? event)}`));
    };
    w.worker.postMessage({ type: "init", wasm } satisfies ToHashWorker, []);
    w.worker.unref?.();
    return w;
  }

  #fail(e: WasmError): void {
    this.#failure ??= e;
    this.close();
  }

  /** Terminate every Worker; jobs still out are rejected. Idempotent. */
  close(): void {
    this.#closed = true;
    const failure = this.#failure ?? new WasmError("worker", "HashPool: closed with jobs still out");
    for (const w of this.#workers.splice(0)) {
      w.worker.onmessage = null;
      w.worker.onerror = null;
      w.worker.terminate();
      for (const job of w.jobs.values()) job.reject(failure);
      w.jobs.clear();
    }
  }
}
