/**
 * The body of a compression Worker (see `parallelCompressStream` in
 * `zstd-mt.ts`): it compiles the zstd.wasm bytes it is sent, then for each
 * job copies its prefix and input batches into a {@link JobCompressor}'s
 * memory (giving each batch back, to be filled again), compresses the job at
 * its end and posts the output back, transferred. Messages are
 * {@link ToZstdWorker} in, {@link FromZstdWorker} out, handled strictly in
 * order.
 *
 * Platform-neutral: it uses only the Web Worker globals `onmessage` and
 * `postMessage`, which Deno and Bun give a Worker, and which the Node host
 * provides over `node:worker_threads` (`src/hosts/node-thread.ts`, which a
 * thread it starts runs first).
 *
 * @example
 * ```ts
 * const worker = new Worker(new URL("./zstd-worker.js", import.meta.url), { type: "module" });
 * worker.postMessage({ type: "init", wasm: bytesOfZstdWasm, level: 3 });
 * ```
 * @module
 */

import { type FromZstdWorker, JobCompressor, type ToZstdWorker } from "./zstd-mt.js";

interface WorkerScope {
  onmessage: ((event: { data: ToZstdWorker }) => void) | null;
  postMessage(message: FromZstdWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let compressor: JobCompressor | undefined;
let index = -1;
let failed = false;
let queue: Promise<void> = Promise.resolve();

async function handle(m: ToZstdWorker): Promise<void> {
  if (m.type === "init") {
    compressor = await JobCompressor.open(m.level, await WebAssembly.compile(m.wasm as BufferSource));
  } else if (m.type === "start") {
    index = m.index;
    compressor!.begin(m.prefix, m.first);
  } else if (m.type === "data") {
    compressor!.append(m.bytes);
    scope.postMessage({ type: "took", bytes: m.bytes }, [m.bytes.buffer as ArrayBuffer]);
  } else {
    const pieces = compressor!.finish(m.last);
    scope.postMessage({ type: "job", index, pieces }, pieces.map((p) => p.buffer as ArrayBuffer));
  }
}

scope.onmessage = ({ data }) => {
  queue = queue.then(async () => {
    if (failed) return;
    try {
      await handle(data);
    } catch (e) {
      failed = true;
      scope.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
    }
  });
};
