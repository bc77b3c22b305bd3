/**
 * The entry of a Worker the Node adapter starts over `node:worker_threads`
 * (Node has no Web `Worker`): it gives the Worker the Web globals
 * `postMessage` and `onmessage` over its `parentPort`, then runs the module
 * named by `workerData.entry` (wasm/zstd-worker.js), which uses only those.
 *
 * @example
 * ```ts
 * new Worker(new URL("./node-worker.js", import.meta.url), { workerData: { entry: url.href } });
 * ```
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";

const port = parentPort!;
const scope = globalThis as unknown as {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};
scope.postMessage = (message, transfer) => port.postMessage(message, transfer as never);
await import((workerData as { entry: string }).entry);
// Messages posted before this listener are queued by the port until it starts.
port.on("message", (data: unknown) => scope.onmessage?.({ data }));
