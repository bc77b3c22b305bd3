/**
 * Test bytes, one copy for every suite: a seeded xorshift32 generator (the
 * same seed gives the same bytes on every runtime), random bytes from it,
 * and concatenation.
 *
 * @example
 * ```ts
 * import { concat, noise, Rng } from "./bytes.js";
 * const a = noise(4096, 3);                  // incompressible, reproducible
 * const b = new Rng(9).fill(new Uint8Array(16));
 * const ab = concat([a, b]);                 // or concatBytes(a, b)
 * ```
 * @module
 */

/** A xorshift32 generator from `seed` (0 is taken as 1): each call returns the next unsigned 32-bit value. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** A seeded random source over {@link xorshift32}: integers and filled buffers. */
export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = xorshift32(seed >>> 0 || 0x9e3779b9);
  }
  /** Next 32-bit value. */
  u32(): number {
    return this.#next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.u32() % n;
  }
  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** Fill with random bytes, four per value. */
  fill(u: Uint8Array): Uint8Array {
    const n4 = u.length & ~3;
    const view = new DataView(u.buffer, u.byteOffset, u.byteLength);
    for (let i = 0; i < n4; i += 4) view.setUint32(i, this.u32());
    for (let i = n4; i < u.length; i++) u[i] = this.u32() & 255;
    return u;
  }
}

/** `n` random bytes, four per generated value (fast: for MiBs of data). */
export function randomBytes(n: number, seed = 1): Uint8Array {
  return new Rng(seed).fill(new Uint8Array(n));
}

/** `n` deterministic incompressible bytes, the low byte of each generated value. */
export function noise(n: number, seed = 1): Uint8Array {
  const next = xorshift32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Concatenate byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** {@link concat} of its arguments. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concat(parts);
}
