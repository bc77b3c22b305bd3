/**
 * Streaming BLAKE3 (256-bit output) on `hash-wasm`.
 *
 * Loaded on first use; finished hashers are reset and pooled, so hashing
 * many leaves or members does not instantiate a module each time.
 *
 * @example
 * ```ts
 * const h = await createBlake3();
 * h.update(new TextEncoder().encode("abc"));
 * h.digestHex(); // "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
 * ```
 * @module
 */

import type { IHasher } from "hash-wasm";

/** Streaming BLAKE3. */
export interface Blake3 {
  /** Hash more bytes. */
  update(data: Uint8Array): void;
  /** The 32-byte digest as lowercase hex. Ends the hasher. */
  digestHex(): string;
  /** The 32-byte digest as bytes. Ends the hasher. */
  digestBytes(): Uint8Array;
}

const MAX_IDLE_HASHERS = 4;
const idle: IHasher[] = [];
let create: Promise<(bits?: number) => Promise<IHasher>> | undefined;

class PooledBlake3 implements Blake3 {
  #hasher: IHasher | undefined;
  constructor(hasher: IHasher) {
    this.#hasher = hasher;
  }
  update(data: Uint8Array): void {
    const h = this.#hasher;
    if (h === undefined) throw new Error("Blake3.update: the hasher has finished");
    if (!(data instanceof Uint8Array)) throw new TypeError(`Blake3.update takes a Uint8Array, got ${Object.prototype.toString.call(data)}`);
    try {
      h.update(data);
    } catch (e) {
      this.#hasher = undefined;
      throw e;
    }
  }
  digestHex(): string {
    return this.#finish("hex");
  }
  digestBytes(): Uint8Array {
    return this.#finish("binary");
  }
  #finish(kind: "hex"): string;
  #finish(kind: "binary"): Uint8Array;
  #finish(kind: "hex" | "binary"): string | Uint8Array {
    const h = this.#hasher;
    if (h === undefined) throw new Error("Blake3: the hasher has finished");
    this.#hasher = undefined;
    const out = kind === "hex" ? h.digest("hex") : h.digest("binary");
    h.init();
    if (idle.length < MAX_IDLE_HASHERS) idle.push(h);
    return out;
  }
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
  let h = idle.pop();
  if (h === undefined) {
    create ??= import("hash-wasm").then((m) => m.createBLAKE3);
    h = await (await create)(256);
  }
  return new PooledBlake3(h);
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
