/**
 * BLAKE3 (256-bit output) on snapbundle's own `blake3.wasm`: the official
 * BLAKE3 C library with our WebAssembly SIMD `hash_many` (four chunks at a
 * time), built by `scripts/build-blake3-wasm.mjs` and read through the
 * host's reader (`load.ts`). One instance per thread, made on first use.
 *
 * Besides a streaming hasher, {@link Blake3Engine.prefixedMany} hashes many
 * pieces of one buffer in one call into the module, each as
 * `BLAKE3(prefix ‖ piece)`: Merkle leaves in batches, or a level of parents.
 *
 * @example
 * ```ts
 * const h = await createBlake3();
 * h.update(new TextEncoder().encode("abc"));
 * h.digestHex(); // "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
 * ```
 * @module
 */

import { wasmModule } from "./load.js";

/** Streaming BLAKE3. */
export interface Blake3 {
  /** Hash more bytes. */
  update(data: Uint8Array): void;
  /** The 32-byte digest as lowercase hex. Ends the hasher. */
  digestHex(): string;
  /** The 32-byte digest as bytes. Ends the hasher. */
  digestBytes(): Uint8Array;
}

interface Blake3Exports {
  memory: WebAssembly.Memory;
  _initialize?(): void;
  b3_malloc(n: number): number;
  b3_free(p: number): void;
  b3_new(): number;
  b3_reset(h: number): void;
  b3_update(h: number, data: number, len: number): void;
  b3_final(h: number, out: number): void;
  b3_prefixed_many(prefix: number, prefixLen: number, data: number, len: number, unit: number, out: number): number;
}

/** Bytes copied into the module per call: input staging, and the digests of one batch. */
const STAGE_BYTES = 256 * 1024;
const PREFIX_BYTES = 256;
const OUT_LEN = 32;
const MAX_IDLE_HASHERS = 8;

/** BLAKE3 on one instance of `blake3.wasm`. Synchronous once made. */
export class Blake3Engine {
  readonly #e: Blake3Exports;
  readonly #stage: number;
  readonly #prefix: number;
  readonly #out: number;
  readonly #idle: number[] = [];
  /** Frees the state of a hasher dropped unfinished. */
  readonly #dropped = new FinalizationRegistry<number>((h) => this.#e.b3_free(h));

  constructor(instance: WebAssembly.Instance) {
    const e = instance.exports as unknown as Blake3Exports;
    e._initialize?.();
    this.#e = e;
    this.#stage = this.#alloc(STAGE_BYTES);
    this.#prefix = this.#alloc(PREFIX_BYTES);
    this.#out = this.#alloc(Math.max(OUT_LEN, (STAGE_BYTES / 64) * OUT_LEN));
  }

  #alloc(n: number): number {
    const p = this.#e.b3_malloc(n);
    if (p === 0) throw new RangeError(`blake3.wasm: cannot allocate ${n} bytes`);
    return p;
  }

  #mem(): Uint8Array {
    return new Uint8Array(this.#e.memory.buffer);
  }

  /** A fresh streaming hasher on this instance. */
  hasher(): Blake3 {
    let h = this.#idle.pop();
    if (h === undefined) h = this.#e.b3_new();
    if (h === 0) throw new RangeError("blake3.wasm: cannot allocate a hasher");
    this.#e.b3_reset(h);
    const hasher = new EngineBlake3(this, h);
    this.#dropped.register(hasher, h, hasher);
    return hasher;
  }

  /** @internal */
  update(h: number, data: Uint8Array): void {
    for (let at = 0; at < data.length; at += STAGE_BYTES) {
      const piece = data.subarray(at, at + STAGE_BYTES);
      this.#mem().set(piece, this.#stage);
      this.#e.b3_update(h, this.#stage, piece.length);
    }
  }

  /** @internal */
  final(hasher: Blake3, h: number): Uint8Array {
    this.#dropped.unregister(hasher);
    this.#e.b3_final(h, this.#out);
    const digest = this.#mem().slice(this.#out, this.#out + OUT_LEN);
    if (this.#idle.length < MAX_IDLE_HASHERS) this.#idle.push(h);
    else this.#e.b3_free(h);
    return digest;
  }

  /**
   * `BLAKE3(prefix ‖ piece)` of each `unit`-byte piece of `data` (the last
   * zero-filled to `unit`), as consecutive 32-byte digests. `unit` is 64 or a
   * multiple of 64 up to 256 KiB; `prefix` at most 256 bytes.
   */
  prefixedMany(prefix: Uint8Array, data: Uint8Array, unit: number): Uint8Array {
    if (prefix.length > PREFIX_BYTES) throw new RangeError(`Blake3Engine.prefixedMany: a prefix of ${prefix.length} bytes`);
    if (!(unit >= 64 && unit <= STAGE_BYTES && unit % 64 === 0)) throw new RangeError(`Blake3Engine.prefixedMany: unit ${unit}`);
    const count = Math.ceil(data.length / unit);
    const digests = new Uint8Array(count * OUT_LEN);
    this.#mem().set(prefix, this.#prefix);
    const perCall = STAGE_BYTES - (STAGE_BYTES % unit);
    for (let at = 0; at < data.length; at += perCall) {
      const piece = data.subarray(at, at + perCall);
      this.#mem().set(piece, this.#stage);
      const n = this.#e.b3_prefixed_many(this.#prefix, prefix.length, this.#stage, piece.length, unit, this.#out);
      digests.set(this.#mem().subarray(this.#out, this.#out + n * OUT_LEN), (at / unit) * OUT_LEN);
    }
    return digests;
  }
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

class EngineBlake3 implements Blake3 {
  readonly #engine: Blake3Engine;
  #h: number | undefined;
  constructor(engine: Blake3Engine, h: number) {
    this.#engine = engine;
    this.#h = h;
  }
  update(data: Uint8Array): void {
    if (this.#h === undefined) throw new Error("Blake3.update: the hasher has finished");
    if (!(data instanceof Uint8Array)) throw new TypeError(`Blake3.update takes a Uint8Array, got ${Object.prototype.toString.call(data)}`);
    this.#engine.update(this.#h, data);
  }
  digestHex(): string {
    return hex(this.digestBytes());
  }
  digestBytes(): Uint8Array {
    const h = this.#h;
    if (h === undefined) throw new Error("Blake3: the hasher has finished");
    this.#h = undefined;
    return this.#engine.final(this, h);
  }
}

let engine: Promise<Blake3Engine> | undefined;

/**
 * This thread's {@link Blake3Engine}, made on first use (a failed attempt is
 * not remembered). `module` is the compiled `blake3.wasm` where the caller
 * has it (a Worker given the bytes); otherwise it is read through `load.ts`.
 *
 * @example
 * ```ts
 * const e = await blake3Engine();
 * e.prefixedMany(new Uint8Array(0), new Uint8Array(128), 64); // two digests
 * ```
 */
export function blake3Engine(module?: WebAssembly.Module): Promise<Blake3Engine> {
  if (engine === undefined) {
    engine = (async () => new Blake3Engine(await WebAssembly.instantiate(module ?? (await wasmModule("blake3.wasm")), {})))();
    engine.catch(() => (engine = undefined));
  }
  return engine;
}

/**
 * A fresh streaming BLAKE3 hasher (32-byte output, no key).
 *
 * @example
 * ```ts
 * const h = await createBlake3();
 * for await (const chunk of stream) h.update(chunk);
 * h.digestHex();
 * ```
 */
export async function createBlake3(): Promise<Blake3> {
  return (await blake3Engine()).hasher();
}

/**
 * BLAKE3 of one buffer as lowercase hex.
 *
 * @example
 * ```ts
 * await blake3Hex(new Uint8Array()); // "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
 * ```
 */
export async function blake3Hex(data: Uint8Array): Promise<string> {
  const h = await createBlake3();
  h.update(data);
  return h.digestHex();
}
