/**
 * The Worker room: how a compression Worker is made (the factory the core's
 * host registers with {@link setZstdWorkerFactory}), the messages it and the
 * main thread exchange, and {@link workerCompressStream}, the compressor that
 * runs on one, so compression overlaps the work of the thread that feeds it.
 * The Worker's own body is `zstd-worker.ts`.
 *
 * @example
 * ```ts
 * setZstdWorkerFactory((url) => new Worker(url, { type: "module" }) as unknown as ZstdWorker);
 * const spawn = workerSpawner();
 * if (spawn !== null) source.pipeThrough(workerCompressStream(3, spawn));
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import { wasmBytes } from "./load.js";
import { AHEAD_BYTES, PairState } from "./pair.js";

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

/**
 * How to make a Worker running the module script `name` (beside this
 * module) with the registered factory, or null where none can be made. The
 * factory is generic: it starts whatever script URL it is given.
 */
export function spawnerFor(name: string): (() => ZstdWorker) | null {
  const factory = workerFactory;
  return factory === null ? null : () => factory(new URL(`./${name}`, import.meta.url));
}

/** How to make a compression Worker here, or null where none can be made. */
export function workerSpawner(): (() => ZstdWorker) | null {
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
export function workerCompressStream(level: number, spawn: () => ZstdWorker): ReadableWritablePair<Uint8Array, Uint8Array> {
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
      else pair.fail(new WasmError("worker", `zstd compression failed on its Worker: ${m.message}`));
    };
    worker.onerror = (event) => {
      const e = event as { message?: unknown; error?: unknown; preventDefault?: () => void };
      e.preventDefault?.(); // Deno and Bun: handled here, not an uncaught error of the process
      pair.fail(new WasmError("worker", `zstd compression Worker failed: ${String(e.message ?? e.error ?? event)}`));
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
