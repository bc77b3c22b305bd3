/**
 * The body of a hashing Worker (see {@link HashPool} in `hash-pool.ts`): it
 * compiles the blake3.wasm bytes it is sent, then answers each job, in order,
 * with `BLAKE3(prefix ‖ piece)` of every `unit`-byte piece of its data
 * (transferred back). Messages are {@link ToHashWorker} in,
 * {@link FromHashWorker} out.
 *
 * Platform-neutral: only the Web Worker globals `onmessage` and
 * `postMessage` (the Node host provides them over `node:worker_threads`).
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./blake3-worker.js", import.meta.url), { type: "module" });
 * worker.postMessage({ type: "init", wasm: await wasmBytes("blake3.wasm") });
 * worker.postMessage({ type: "job", id: 1, prefix: new Uint8Array(0), data: new Uint8Array(65536), unit: 65536 });
 * ```
 * @module
 */

import { blake3Engine, type Blake3Engine } from "./blake3.js";
import type { FromHashWorker, ToHashWorker } from "./hash-pool.js";

interface WorkerScope {
  onmessage: ((event: { data: ToHashWorker }) => void) | null;
  postMessage(message: FromHashWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let engine: Promise<Blake3Engine> | undefined;

scope.onmessage = ({ data: m }) => {
  if (m.type === "init") {
    engine = WebAssembly.compile(m.wasm as BufferSource).then((module) => blake3Engine(module));
    engine.catch(() => {}); // reported with the first job
    return;
  }
  const reply = async (): Promise<void> => {
    try {
      const digests = (await engine!).prefixedMany(m.prefix, m.data, m.unit);
      scope.postMessage({ type: "done", id: m.id, digests }, [digests.buffer as ArrayBuffer]);
    } catch (e) {
      scope.postMessage({ type: "error", id: m.id, message: e instanceof Error ? e.message : String(e) });
    }
  };
  void reply();
};
