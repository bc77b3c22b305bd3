/**
 * Synthetic upper files for benchmarks: a sparse file of a given apparent
 * size holding a given number of data bytes in evenly spread extents, filled
 * with random, text-like, or zero-riddled bytes. Deterministic (seeded), so
 * every runtime benchmarks the same bytes.
 *
 * @example
 * ```ts
 * import { writeUpper } from "./synth.js";
 * writeUpper("/tmp/upper.ext4", { apparent: 1 << 30, data: 64 << 20, kind: "text", extents: 64 });
 * ```
 * @module
 */

import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";

/** What the data extents hold. */
export type DataKind = "random" | "text" | "zeros" | "mixed";

/** Shape of a synthetic upper. */
export interface UpperSpec {
  /** Apparent (logical) size in bytes. */
  readonly apparent: number;
  /** Bytes written (rounded to whole 4 KiB blocks per extent). */
  readonly data: number;
  /**
   * `random`: incompressible; `text`: words and lines, compresses ~3-4x with
   * zstd -3; `zeros`: random blocks with every other 4 KiB block all zero
   * *written* (allocated) — zero-scan finds half the data to be holes;
   * `mixed`: 4 MiB pieces alternately text and random (half each, issue 10's target case).
   */
  readonly kind: DataKind;
  /** Number of data extents, evenly spread over the file (the first at offset 0). */
  readonly extents: number;
  readonly seed?: number;
}

const BLOCK = 4096;
const PIECE = 4 << 20;

/** The extents (offset, length) a spec lays out. */
export function layout(spec: UpperSpec): { offset: number; length: number }[] {
  const n = Math.max(1, spec.extents);
  const per = Math.ceil(spec.data / n / BLOCK) * BLOCK;
  const stride = Math.floor(spec.apparent / n / BLOCK) * BLOCK;
  if (per > stride) throw new Error(`upper spec: ${spec.data} data bytes in ${n} extents do not fit in ${spec.apparent} bytes`);
  const out = [];
  let left = spec.data;
  for (let i = 0; i < n && left > 0; i++) {
    const length = Math.min(per, Math.ceil(left / BLOCK) * BLOCK);
    out.push({ offset: i * stride, length });
    left -= length;
  }
  return out;
}

/** xorshift32 filling, fast enough to generate GiBs. */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  fill(buf: Uint8Array): void {
    const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
    let s = this.#s;
    for (let i = 0; i < words.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = s;
    }
    this.#s = s;
  }
  next(): number {
    let s = this.#s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.#s = s;
    return s >>> 0;
  }
}

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were " +
  "her she there been one all we their has would when if so no will what can out up other into more them some could time " +
  "these two may then do first any my now such like our over man me even most made after also did many before must through " +
  "years where much your way well down should because each just those people how too little state good very make world still " +
  "own see men work long get here between both life being under never day same another know while last might us great old year " +
  "snapshot upper ext4 sandbox image layer block inode kernel journal superblock extent bitmap directory python node module"
).split(" ");
const ENCODED = WORDS.map((w) => new TextEncoder().encode(w));

/** Text-like bytes: words, spaces, numbers and newlines. */
function fillText(buf: Uint8Array, rng: Rng): void {
  let i = 0;
  let col = 0;
  const n = buf.length;
  while (i < n) {
    const r = rng.next();
    if ((r & 15) === 0) {
      // a number of 1-5 digits
      let v = (r >>> 4) % 100000;
      const start = i;
      do {
        if (i < n) buf[i++] = 48 + (v % 10);
        v = Math.floor(v / 10);
      } while (v > 0);
      buf.subarray(start, i).reverse();
      col += i - start + 1;
    } else {
      const w = ENCODED[r % ENCODED.length]!;
      const k = Math.min(w.length, n - i);
      buf.set(k === w.length ? w : w.subarray(0, k), i);
      i += k;
      col += w.length + 1;
    }
    if (i < n) buf[i++] = col > 72 ? 10 : 32;
    if (col > 72) col = 0;
  }
}

/** Create `path` (replacing it) as a sparse file per `spec`. Returns the data extents written. */
export function writeUpper(path: string, spec: UpperSpec): { offset: number; length: number }[] {
  const extents = layout(spec);
  const rng = new Rng(spec.seed ?? 12345);
  const buf = new Uint8Array(PIECE);
  const fd = openSync(path, "w");
  try {
    let pieceNo = 0;
    for (const e of extents) {
      for (let done = 0; done < e.length; done += PIECE) {
        const n = Math.min(PIECE, e.length - done);
        const piece = buf.subarray(0, n);
        if (spec.kind === "text" || (spec.kind === "mixed" && pieceNo++ % 2 === 0)) fillText(piece, rng);
        else rng.fill(piece);
        if (spec.kind === "zeros") for (let b = BLOCK; b < n; b += 2 * BLOCK) piece.fill(0, b, Math.min(n, b + BLOCK));
        // a block that happens to be all zero is impossible for random/text; keep the first byte non-zero anyway
        if (piece.length > 0 && piece[0] === 0) piece[0] = 1;
        let w = 0;
        while (w < n) w += writeSync(fd, piece, w, n - w, e.offset + done + w);
      }
    }
    ftruncateSync(fd, spec.apparent);
  } finally {
    closeSync(fd);
  }
  return extents;
}
