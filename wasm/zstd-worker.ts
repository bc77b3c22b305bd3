/**
 * The body of a compression Worker (see `workerCompressStream` in
 * `zstd-worker-host.ts`): it compiles the zstd.wasm bytes it is sent, compresses each
 * batch of input as it arrives, posts the output back, transferred, one
 * 1 MiB buffer at a time, and gives each batch back. Messages are {@link ToZstdWorker} in,
 * {@link FromZstdWorker} out, handled strictly in order.
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

import { openPushCompressor, type PushCompressor } from "./zstd-compress.js";
import type { FromZstdWorker, ToZstdWorker } from "./zstd-worker-host.js";

interface WorkerScope {
  onmessage: ((event: { data: ToZstdWorker }) => void) | null;
  postMessage(message: FromZstdWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let compressor: PushCompressor | undefined;
let failed = false;
let queue: Promise<void> = Promise.resolve();

const emit = (bytes: Uint8Array): void => scope.postMessage({ type: "out", bytes }, [bytes.buffer as ArrayBuffer]);

async function handle(m: ToZstdWorker): Promise<void> {
  if (m.type === "init") {
    compressor = await openPushCompressor(await WebAssembly.compile(m.wasm as BufferSource), m.level);
  } else if (m.type === "data") {
    compressor!.write(m.bytes, emit);
    scope.postMessage({ type: "took", bytes: m.bytes }, [m.bytes.buffer as ArrayBuffer]); // given back, to be filled again
  } else {
    compressor!.end(emit);
    compressor!.free();
    compressor = undefined;
    scope.postMessage({ type: "done" });
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
