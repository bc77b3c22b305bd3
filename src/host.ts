/**
 * The host seam: the one place the core learns about the process it runs in.
 *
 * The core is platform-neutral: it reads no `process`, makes no `Worker`,
 * opens no file except through a {@link FileSystem} it is given. What it
 * needs to know about the process — its pid, whether another pid is alive,
 * Linux `/proc` for a lease's identity, the host name, how to read its own
 * `.wasm` files, how to start a compression Worker, and, optionally, system
 * calls reached through FFI — it asks the {@link Host} installed here with
 * {@link installHost}. `snapbundle` (`src/mod.ts`) and the CLI install the
 * Node/Deno/Bun host (`src/hosts/node.ts`); code that uses only
 * `snapbundle/core` installs its own, or none.
 *
 * Without a host: pid 0, no process probe (a leftover is judged by its
 * lease's heartbeat alone), compression inline on the caller's thread, and
 * decompressing or compressing fails with {@link WasmUnavailable}.
 *
 * @example
 * ```ts
 * import { installHost, type ZstdWorker } from "snapbundle/core";
 * installHost({
 *   name: "deno",
 *   pid: Deno.pid,
 *   readWasm: async (url) => await Deno.readFile(url),
 *   // a Web Worker is a ZstdWorker; the cast bridges the DOM typings' event types
 *   makeWorker: (url) => new Worker(url, { type: "module" }) as unknown as ZstdWorker,
 * });
 * ```
 * @module
 */

import { type PlatformSha256, setPlatformSha256, setWasmReader, setZstdWorkerFactory, type WasmReader, type ZstdWorkerFactory } from "../wasm/mod.js";

/**
 * System calls a host may reach through its runtime's FFI, for speed only:
 * the core works without each of them.
 */
export interface HostFfi {
  /**
   * `lseek(2)` on the descriptor `fd` (for `SEEK_DATA` = 3 / `SEEK_HOLE` = 4):
   * the resulting offset, or -1 with the error in `errno`.
   */
  readonly lseek?: (fd: number, offset: number, whence: number) => { offset: number; errno: number };
}

/** What the process can tell and do for the core. Every member but `name` and `pid` is optional. */
export interface Host {
  /** Names the host in messages (`"node"`, `"deno"`, `"bun"`, …). */
  readonly name: string;
  /** This process's id (0 where the runtime has none). */
  readonly pid: number;
  /** Whether `pid` is alive here (`EPERM` counts as alive); `null` when the runtime cannot tell. */
  isAlive?(pid: number): boolean | null;
  /** The text of a small system file (Linux `/proc`), synchronously; throws when it cannot. */
  readText?(path: string): string;
  /** The target of a system link (`/proc/self/ns/pid`), synchronously; throws when it cannot. */
  readLink?(path: string): string;
  /** This machine's host name. */
  hostname?(): string;
  /** Reads the bytes of one of snapbundle's `.wasm` files. */
  readonly readWasm?: WasmReader;
  /** Starts a compression Worker running the module at a URL; without it, compression runs inline. */
  readonly makeWorker?: ZstdWorkerFactory;
  /** The platform's own SHA-256 (faster than hash-wasm's where the CPU has SHA instructions); without it, hash-wasm. */
  readonly sha256?: () => PlatformSha256;
  /** System calls through FFI, where the runtime offers them. */
  readonly ffi?: HostFfi;
}

/** The host of a process nobody described: the core runs, knowing nothing of it. */
export const NO_HOST: Host = Object.freeze({ name: "none", pid: 0 });

let current: Host = NO_HOST;

/**
 * Install `host` as what the core knows about this process (replacing the
 * one before). `snapbundle` and its CLI install the Node/Deno/Bun host;
 * {@link NO_HOST} uninstalls.
 *
 * @example
 * ```ts
 * import { installHost, NO_HOST } from "snapbundle/core";
 * installHost(NO_HOST); // back to knowing nothing: zstd then fails with WasmUnavailable
 * ```
 */
export function installHost(host: Host): void {
  current = host;
  setWasmReader(host.readWasm);
  setZstdWorkerFactory(host.makeWorker ?? null);
  setPlatformSha256(host.sha256 ?? null);
}

/**
 * The installed host ({@link NO_HOST} until one is installed).
 *
 * @example
 * ```ts
 * currentHost().pid; // this process's id, or 0 without a host
 * ```
 */
export function currentHost(): Host {
  return current;
}
