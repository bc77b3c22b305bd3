/**
 * The Node/Deno/Bun host (see `src/host.ts`): what the core learns about the
 * process, through the `node:` modules all three runtimes have, and their Web
 * `Worker` where they have one (Deno, Bun). `snapbundle` (`src/mod.ts`) and
 * the CLI install it; nothing happens when this module is imported.
 *
 * - pid and `isAlive` from `node:process` (`kill(pid, 0)`; `EPERM` is alive);
 * - `/proc` and the host name through `node:fs` and `node:os`, for leases;
 * - `.wasm` files read with `node:fs/promises`;
 * - compression Workers: the runtime's Web `Worker` (Deno, Bun), else a
 *   `node:worker_threads` thread that runs `node-thread.ts` first, which
 *   gives it the Web Worker globals the Worker script uses (Node).
 *
 * @example
 * ```ts
 * import { installHost, nodeHost } from "snapbundle";
 * installHost(nodeHost()); // what importing "snapbundle" already did
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";
import { Worker as ThreadWorker } from "node:worker_threads";
import type { PlatformSha256, ZstdWorker } from "../../wasm/mod.js";
import type { Host } from "../host.js";
import { hostFfi } from "./ffi.js";

type WebWorker = new (url: URL, options: { type: "module" }) => ZstdWorker;

/**
 * The host of this Node, Deno or Bun process.
 *
 * @example
 * ```ts
 * nodeHost().pid === process.pid; // true
 * ```
 */
export function nodeHost(): Host {
  const Web = (globalThis as { Worker?: WebWorker }).Worker;
  return {
    name: runtimeName(),
    pid: process.pid,
    isAlive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (e) {
        return (e as { code?: string }).code === "EPERM";
      }
    },
    readText: (path) => readFileSync(path, "utf8"),
    readLink: (path) => readlinkSync(path),
    hostname,
    readWasm: async (url) => new Uint8Array(await readFile(url)),
    makeWorker: typeof Web === "function" ? (url) => new Web(url, { type: "module" }) : threadWorker,
    sha256: platformSha256,
    ffi: hostFfi(), // libc lseek on Deno and Bun (SEEK_DATA/SEEK_HOLE); none on Node
  };
}

/** `node:crypto`'s SHA-256 (Node, Deno and Bun all have it): the CPU's SHA instructions, not WebAssembly. */
function platformSha256(): PlatformSha256 {
  const h = createHash("sha256");
  return {
    update: (data) => void h.update(data),
    digest: () => new Uint8Array(h.digest()),
  };
}

function runtimeName(): string {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";
}

/**
 * A `node:worker_threads` Worker running the module at `url`, seen as a Web
 * Worker ({@link ZstdWorker}): the thread starts with `node-thread.js`,
 * which then imports `url`. What {@link nodeHost} makes where the runtime has
 * no Web `Worker` (Node).
 *
 * @example
 * ```ts
 * installHost({ ...nodeHost(), makeWorker: threadWorker }); // threads even on Deno and Bun
 * ```
 */
export function threadWorker(url: URL): ZstdWorker {
  const thread = new ThreadWorker(new URL("./node-thread.js", import.meta.url), { workerData: { snapbundleWorkerEntry: url.href } });
  const worker: ZstdWorker = {
    onmessage: null,
    onerror: null,
    postMessage: (message, transfer) => thread.postMessage(message, transfer as never),
    terminate: () => void thread.terminate(),
    ref: () => thread.ref(),
    unref: () => thread.unref(),
  };
  thread.on("message", (data: unknown) => worker.onmessage?.({ data }));
  thread.on("error", (error: Error) => worker.onerror?.({ message: error.message, error }));
  thread.on("exit", (code: number) => worker.onerror?.({ message: `the Worker exited (code ${code}) before the stream ended` }));
  return worker;
}
