/**
 * Streaming SHA-256 on `hash-wasm`.
 *
 * `hash-wasm` is loaded on first use. Each hasher owns a small WASM instance;
 * finished hashers are reset and kept in a small pool, so hashing many files
 * does not instantiate a module per file.
 *
 * @example
 * ```ts
 * const h = await createSha256();
 * h.update(new TextEncoder().encode("ab"));
 * h.update(new TextEncoder().encode("c"));
 * h.digestHex(); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 * @module
 */

import type { IHasher } from "hash-wasm";

/** Streaming SHA-256. */
export interface Sha256 {
  /** Hash more bytes. */
  update(data: Uint8Array): void;
  /** The lowercase hex digest. Ends the hasher: later calls throw. */
  digestHex(): string;
}

/**
 * A SHA-256 the platform itself provides, as a host hands it over (the
 * Node/Deno/Bun host hands over its runtime's crypto module's): it runs on the CPU's SHA instructions,
 * 3–5× hash-wasm's speed here (500–780 against 125 MB/s on a loaded 2-core
 * machine), which decides how long a `msb-sparse-sha256-v1` verify takes:
 * that digest covers every logical byte, holes included.
 */
export interface PlatformSha256 {
  update(data: Uint8Array): void;
  /** The 32-byte digest; called once. */
  digest(): Uint8Array;
}

/** null: hash-wasm, the portable default. */
let platform: (() => PlatformSha256) | null = null;

/**
 * Register the platform's SHA-256 (the core's host seam, `src/host.ts`,
 * registers its host's); `null` goes back to hash-wasm. Both give the same
 * digests; later {@link createSha256} calls use the one registered.
 *
 * @example
 * ```ts
 * setPlatformSha256(host.sha256 ?? null); // what installHost does with a host's SHA-256
 * setPlatformSha256(null); // hash-wasm again
 * ```
 */
export function setPlatformSha256(make: (() => PlatformSha256) | null): void {
  platform = make;
}

class PlatformBacked implements Sha256 {
  #hasher: PlatformSha256 | undefined;
  constructor(hasher: PlatformSha256) {
    this.#hasher = hasher;
  }
  update(data: Uint8Array): void {
    const h = this.#hasher;
    if (h === undefined) throw new Error("Sha256.update: the hasher has finished (digestHex() ends it)");
    if (!(data instanceof Uint8Array)) throw new TypeError(`Sha256.update takes a Uint8Array, got ${Object.prototype.toString.call(data)}`);
    h.update(data);
  }
  digestHex(): string {
    const h = this.#hasher;
    if (h === undefined) throw new Error("Sha256.digestHex: the hasher has finished (digestHex() ends it)");
    this.#hasher = undefined;
    return Array.from(h.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
  }
}

/** Finished hashers kept for reuse. */
const MAX_IDLE_HASHERS = 4;
const idle: IHasher[] = [];
let create: Promise<() => Promise<IHasher>> | undefined;

async function newHasher(): Promise<IHasher> {
  create ??= import("hash-wasm").then((m) => m.createSHA256);
  const make = await create;
  return make();
}

class PooledSha256 implements Sha256 {
  #hasher: IHasher | undefined;

  constructor(hasher: IHasher) {
    this.#hasher = hasher;
  }

  update(data: Uint8Array): void {
    const h = this.#live("update");
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`Sha256.update takes a Uint8Array, got ${Object.prototype.toString.call(data)}`);
    }
    try {
      h.update(data);
    } catch (e) {
      this.#hasher = undefined; // state unknown: never pool it
      throw e;
    }
  }

  digestHex(): string {
    const h = this.#live("digestHex");
    this.#hasher = undefined;
    const hex = h.digest("hex");
    h.init();
    if (idle.length < MAX_IDLE_HASHERS) idle.push(h);
    return hex;
  }

  #live(op: string): IHasher {
    const h = this.#hasher;
    if (h === undefined) throw new Error(`Sha256.${op}: the hasher has finished (digestHex() ends it)`);
    return h;
  }
}

/**
 * A fresh streaming SHA-256 hasher.
 *
 * @example
 * ```ts
 * const h = await createSha256();
 * for await (const chunk of file.readable) h.update(chunk);
 * console.log(h.digestHex());
 * ```
 */
export async function createSha256(): Promise<Sha256> {
  if (platform !== null) return new PlatformBacked(platform());
  const hasher = idle.pop() ?? (await newHasher());
  return new PooledSha256(hasher);
}

/**
 * SHA-256 of one buffer, as lowercase hex.
 *
 * @example
 * ```ts
 * await sha256Hex(new Uint8Array()); // "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
 * ```
 */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const h = await createSha256();
  h.update(data);
  return h.digestHex();
}
