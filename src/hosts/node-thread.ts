/**
 * The first script of a thread that {@link threadWorker} (`node.ts`) starts:
 * it gives the thread the Web Worker globals `postMessage` and `onmessage`
 * over its parent port, then imports the Worker script named in
 * `workerData` (`wasm/zstd-worker.js`), which uses only those. Messages
 * posted before the listener is attached wait in the port.
 *
 * @example
 * ```ts
 * import { Worker } from "node:worker_threads";
 * new Worker(new URL("./node-thread.js", import.meta.url), { workerData: { snapbundleWorkerEntry: entry.href } });
 * ```
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";

const entry = (workerData as { snapbundleWorkerEntry?: unknown } | null)?.snapbundleWorkerEntry;
if (typeof entry !== "string" || parentPort === null) {
  throw new Error("node-thread.js runs only as the first script of a thread that threadWorker started");
}
const port = parentPort;
const scope = globalThis as unknown as {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};
scope.postMessage = (message, transfer) => port.postMessage(message, transfer as never);
await import(entry);
port.on("message", (data: unknown) => scope.onmessage?.({ data }));
