/**
 * The pool of `zstd-codec` WASM module instances.
 *
 * Each instance has a fixed 16 MiB heap, so a stream leases one instance
 * exclusively for its whole life (two 8 MiB-window decoders do not fit in one
 * heap). A stream that ends cleanly returns its instance; one that failed in
 * any way discards it, and an instance that ever aborted (emscripten `abort`,
 * e.g. "OOM") is never handed out again. At most {@link MAX_IDLE_INSTANCES}
 * idle instances are kept.
 *
 * Internal to `wasm/`; the rest of snapbundle uses the streams in `zstd.ts`.
 *
 * @example
 * ```ts
 * const lease = await leaseZstd();
 * try {
 *   const d = new lease.module.ZstdDecompressStreamBinding();
 *   // ...
 *   lease.release();
 * } catch (e) {
 *   lease.discard();
 *   throw e;
 * }
 * ```
 * @module
 */

import { createRequire } from "node:module";

/** Callback the binding calls with output bytes. */
export type ZstdOutput = (bytes: Uint8Array) => void;

/** `zstd-codec`'s streaming compressor (C++ `ZstdCompressStreamBinding` via embind). */
export interface ZstdCompressBinding {
  begin(level: number): boolean;
  transform(chunk: Uint8Array, out: ZstdOutput): boolean;
  flush(out: ZstdOutput): boolean;
  end(out: ZstdOutput): boolean;
  delete(): void;
}

/** `zstd-codec`'s streaming decompressor (C++ `ZstdDecompressStreamBinding` via embind). */
export interface ZstdDecompressBinding {
  begin(): boolean;
  transform(chunk: Uint8Array, out: ZstdOutput): boolean;
  flush(out: ZstdOutput): boolean;
  end(out: ZstdOutput): boolean;
  delete(): void;
}

/** The parts of an initialized emscripten module of `zstd-codec` that snapbundle uses. */
export interface ZstdModule {
  ZstdCompressStreamBinding: new () => ZstdCompressBinding;
  ZstdDecompressStreamBinding: new () => ZstdDecompressBinding;
  HEAPU8: Uint8Array;
}

/** One instantiated module and what it has said. */
export interface ZstdInstance {
  readonly module: ZstdModule;
  /** Set when emscripten aborted (the instance is dead). */
  abortReason: string | undefined;
  /** Last lines the module printed (emscripten prints "OOM" before aborting). */
  readonly printed: string[];
  /** Serial number, for tests and diagnostics. */
  readonly id: number;
}

/** Idle instances kept for reuse. */
export const MAX_IDLE_INSTANCES = 2;

type Factory = (module: Record<string, unknown>) => unknown;

let factory: Factory | undefined;
let serial = 0;
const idle: ZstdInstance[] = [];

function loadFactory(): Factory {
  if (factory === undefined) {
    // zstd-codec is CommonJS; createRequire works on Node, Deno and Bun.
    const require = createRequire(import.meta.url);
    factory = require("zstd-codec/lib/zstd-codec-binding-wasm.js") as Factory;
  }
  return factory;
}

/** Instantiate a fresh module (a new 16 MiB heap). */
export function instantiateZstd(): Promise<ZstdInstance> {
  const make = loadFactory();
  return new Promise<ZstdInstance>((resolve, reject) => {
    const printed: string[] = [];
    const say = (line: unknown): void => {
      printed.push(String(line));
      if (printed.length > 8) printed.shift();
    };
    let instance: ZstdInstance | undefined;
    const settings: Record<string, unknown> = {
      print: say,
      printErr: say,
      onAbort: (what: unknown) => {
        if (instance) instance.abortReason = String(what);
        else reject(new Error(`zstd-codec failed to start: ${String(what)}`));
      },
      onRuntimeInitialized: () => {
        instance = { module: settings as unknown as ZstdModule, abortReason: undefined, printed, id: ++serial };
        // Resolve with a wrapper: the emscripten module has a `then` method and must not be awaited.
        resolve(instance);
      },
    };
    try {
      make(settings);
    } catch (e) {
      reject(e);
    }
  });
}

/** An instance leased exclusively by one stream. */
export class ZstdLease {
  #instance: ZstdInstance | undefined;

  constructor(instance: ZstdInstance) {
    this.#instance = instance;
  }

  /** The leased instance. Throws after release/discard. */
  get instance(): ZstdInstance {
    if (this.#instance === undefined) throw new Error("zstd-codec lease already returned");
    return this.#instance;
  }

  /** The leased module. */
  get module(): ZstdModule {
    return this.instance.module;
  }

  /** Return the instance to the pool (unless it aborted or the pool is full). Idempotent. */
  release(): void {
    const inst = this.#instance;
    this.#instance = undefined;
    if (inst !== undefined && inst.abortReason === undefined && idle.length < MAX_IDLE_INSTANCES) idle.push(inst);
  }

  /** Drop the instance for good (after any error). Idempotent. */
  discard(): void {
    this.#instance = undefined;
  }
}

/** Lease an idle instance, or instantiate a new one. */
export async function leaseZstd(): Promise<ZstdLease> {
  const inst = idle.pop() ?? (await instantiateZstd());
  return new ZstdLease(inst);
}

/** Number of idle instances (for tests). */
export function idleZstdInstances(): number {
  return idle.length;
}

/** Ids of the idle instances (for tests). */
export function idleZstdInstanceIds(): number[] {
  return idle.map((i) => i.id);
}
