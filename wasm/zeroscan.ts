/**
 * A zero scan at memory speed: a tiny WebAssembly SIMD function that tells
 * whether a range of bytes holds anything but zeros, 128 bytes (eight
 * `v128` loads OR-ed) per step. Plain JavaScript loops over typed arrays
 * reach 1–2 GB/s; this reaches memory bandwidth.
 *
 * The module is a dozen instructions, assembled here byte by byte (no
 * toolchain, no file to load). Each {@link ZeroScanner} owns one instance
 * with a fixed memory that never grows: read buffers live in it, so a chunk
 * read from a file is scanned where it lies, without a copy. Bytes that live
 * elsewhere are copied into a scratch area first.
 *
 * @example
 * ```ts
 * const s = new ZeroScanner(2, 4 << 20); // two 4 MiB read buffers
 * const a = s.buffers[0]!;
 * s.isZero(a, 0, a.length); // true
 * ```
 * @module
 */

const PAGE = 65536;

/** `(func (param $p i32) (param $n i32) (result i32))`: 1 when `[p, p+n)` holds a non-zero byte, else 0. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const getP = [0x20, 0x00];
  const load = (offset: number) => [...getP, 0xfd, 0x00, 0x04, offset]; // v128.load align=16
  const loads = [...load(0)];
  for (let i = 1; i < 8; i++) loads.push(...load(16 * i), 0xfd, 0x50); // v128.or
  const code = [
    0x01, 0x01, 0x7f, // one local: $end
    0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x02, // end = p + n
    0x02, 0x40, 0x03, 0x40, // block loop
    0x20, 0x02, 0x20, 0x00, 0x6b, 0x41, 0x80, 0x01, 0x49, 0x0d, 0x01, // if end - p < 128: to the tail
    ...loads,
    0xfd, 0x53, 0x04, 0x40, 0x41, 0x01, 0x0f, 0x0b, // v128.any_true: return 1
    0x20, 0x00, 0x41, 0x80, 0x01, 0x6a, 0x21, 0x00, 0x0c, 0x00, // p += 128; continue
    0x0b, 0x0b,
    0x02, 0x40, 0x03, 0x40, // block loop: the tail, byte by byte
    0x20, 0x00, 0x20, 0x02, 0x4f, 0x0d, 0x01, // if p >= end: done
    0x20, 0x00, 0x2d, 0x00, 0x00, 0x04, 0x40, 0x41, 0x01, 0x0f, 0x0b, // if load8_u(p): return 1
    0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00, 0x0c, 0x00, // p += 1; continue
    0x0b, 0x0b,
    0x41, 0x00, 0x0b, // 0
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]),
    ...section(2, [0x01, ...name("m"), ...name("memory"), 0x02, 0x00, 0x01]), // imported memory, at least one page
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, ...name("nz"), 0x00, 0x00]),
    ...section(10, [0x01, ...leb(code.length), ...code]),
  ]);
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

let compiled: WebAssembly.Module | null | undefined;
/** The compiled module, or null where WebAssembly SIMD is missing (the caller then scans in JavaScript). */
function zeroScanModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(moduleBytes() as Uint8Array<ArrayBuffer>);
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** Scratch bytes a scanner keeps for bytes that are not in its memory. */
const SCRATCH = 1 << 20;

/**
 * One instance of the zero scan with `count` buffers of `bytes` each (read
 * into them to scan in place) and a 1 MiB scratch area. Its memory is fixed
 * at creation and dropped with it.
 */
export class ZeroScanner {
  /** Buffers in the scanner's memory, free for its owner to fill. */
  readonly buffers: readonly Uint8Array[];
  readonly #memory: ArrayBufferLike;
  readonly #nz: ((p: number, n: number) => number) | null;
  readonly #bytes: Uint8Array;

  constructor(count = 0, bytes = 0) {
    const total = count * bytes + SCRATCH;
    const mod = zeroScanModule();
    if (mod === null) {
      this.#memory = new ArrayBuffer(total);
      this.#nz = null;
    } else {
      const pages = Math.ceil(total / PAGE);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      const instance = new WebAssembly.Instance(mod, { m: { memory } });
      this.#memory = memory.buffer;
      this.#nz = instance.exports.nz as (p: number, n: number) => number;
    }
    this.#bytes = new Uint8Array(this.#memory);
    this.buffers = Array.from({ length: count }, (_, i) => new Uint8Array(this.#memory, SCRATCH + i * bytes, bytes));
  }

  /** Whether `data` lies in this scanner's memory (is, or is a view of, one of its buffers). */
  owns(data: Uint8Array): boolean {
    return data.buffer === this.#memory;
  }

  /**
   * True when `data[from, to)` is all zero. `data` must be {@link owns owned};
   * others go through {@link ZeroScanner.scratch} first.
   */
  isZero(data: Uint8Array, from: number, to: number): boolean {
    if (this.#nz !== null) return this.#nz(data.byteOffset + from, to - from) === 0;
    return jsIsZero(data, from, to);
  }

  /** Copy up to 1 MiB of `data` from `from` into the scratch area; resolves the copy (a view, valid until the next call). */
  scratch(data: Uint8Array, from: number, length: number): Uint8Array {
    const n = Math.min(length, SCRATCH);
    this.#bytes.set(data.subarray(from, from + n), 0);
    return this.#bytes.subarray(0, n);
  }
}

/** The JavaScript zero test, where WebAssembly SIMD is missing: whole 4-byte words, eight at a time. */
function jsIsZero(data: Uint8Array, from: number, to: number): boolean {
  let i = from;
  while (i < to && (data.byteOffset + i) % 4 !== 0) if (data[i++] !== 0) return false;
  const words = new Int32Array(data.buffer, data.byteOffset + i, (to - i) >>> 2);
  let w = 0;
  for (; w + 8 <= words.length; w += 8) {
    if ((words[w]! | words[w + 1]! | words[w + 2]! | words[w + 3]! | words[w + 4]! | words[w + 5]! | words[w + 6]! | words[w + 7]!) !== 0) return false;
  }
  for (; w < words.length; w++) if (words[w] !== 0) return false;
  for (i += 4 * words.length; i < to; i++) if (data[i] !== 0) return false;
  return true;
}
