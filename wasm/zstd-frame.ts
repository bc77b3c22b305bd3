/**
 * Frame sniffing: what the first bytes of a zstd stream or frame say,
 * without decoding anything.
 *
 * @example
 * ```ts
 * isZstdMagic(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // true
 * ```
 * @module
 */

/** The window a zstd frame header's descriptor states (null for a single-segment frame or too few bytes). */
export function headerWindow(h: Uint8Array): number | null {
  if (h.length < 6 || (h[4]! & 0x20) !== 0) return null;
  const base = 2 ** ((h[5]! >> 3) + 10);
  return base + (base / 8) * (h[5]! & 7);
}

/**
 * True when `head` starts like a zstd stream: a zstd frame's magic
 * (`28 b5 2f fd`) or a skippable frame's (`5? 2a 4d 18`).
 *
 * @example
 * ```ts
 * isZstdMagic(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // true
 * ```
 */
export function isZstdMagic(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const m = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0;
  return m === 0xfd2fb528 || (m & 0xfffffff0) >>> 0 === 0x184d2a50;
}
