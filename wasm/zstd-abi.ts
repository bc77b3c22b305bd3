/**
 * The ABI of snapbundle's `zstd.wasm` (built by `scripts/build-wasm.mjs`
 * from zstd's C library and `zstd-shim.c`): its exports, one instance running
 * one zstd decoding stream with its input and output buffers
 * ({@link ZstdCall}), and the shared zero chunk a decoder hands out for output
 * that is all zeros. Each stream instantiates its own module (compiled once,
 * see `load.ts`), so the memory a large window needed is given back when the
 * stream ends. Input is copied once into the module's memory and output once
 * out of it.
 *
 * @example
 * ```ts
 * const c = await ZstdCall.open((x) => x.sb_dstream_new(1 << 27), "decompressor");
 * c.load(bytes);
 * c.x.sb_decompress(c.stream, c.inPtr, bytes.length, 0, c.outPtr, OUT_BYTES, 0);
 * c.close();
 * ```
 * @module
 */

import { WasmError } from "./error.js";
import type { LendingRing } from "./lend.js";
import { wasmModule } from "./load.js";

/** Bytes copied into the module per call. */
export const IN_BYTES = 1024 * 1024;
/** Output gathered in the module's memory before it is copied out as one chunk. */
export const OUT_BYTES = 1024 * 1024;

export const ERROR_WINDOW_TOO_LARGE = 16;
export const ERROR_CHECKSUM_WRONG = 22;
export const ERROR_DICTIONARY_WRONG = 32;

/** The exports of `zstd.wasm` (see `zstd-shim.c`); `size_t` values arrive as signed 32-bit numbers. */
export interface ZstdExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  sb_malloc(n: number): number;
  sb_free(p: number): void;
  sb_dstream_new(maxWindow: number): number;
  sb_stream_free(s: number): void;
  sb_decompress(s: number, src: number, size: number, pos: number, dst: number, cap: number, dstPos: number): number;
  sb_in_pos(s: number): number;
  sb_out_pos(s: number): number;
  sb_error_code(code: number): number;
  sb_error_name(code: number): number;
  sb_frame_window(s: number): number;
  sb_frame_consumed(s: number): number;
  sb_find_frame_size(src: number, size: number): number;
  sb_all_zero(src: number, size: number): number;
  sb_mt_job_size(level: number): number;
  sb_mt_overlap(level: number): number;
  sb_mt_bound(n: number): number;
  sb_mt_new(level: number): number;
  sb_mt_free(m: number): void;
  sb_mt_begin(m: number, prefix: number, prefixSize: number, srcSize: number, first: number, scratch: number, cap: number): number;
  sb_mt_chunk(m: number, dst: number, cap: number, src: number, n: number, end: number): number;
  sb_mt_last_empty_block(dst: number, cap: number): number;
  sb_xxh64_new(): number;
  sb_xxh64_update(s: number, p: number, n: number): void;
  sb_xxh64_low32(s: number): number;
}

/** A new instance of `module` (default: zstd.wasm, compiled once), initialised. */
export async function zstdInstance(module?: WebAssembly.Module): Promise<ZstdExports> {
  const instance = await WebAssembly.instantiate(module ?? (await wasmModule("zstd.wasm")), {});
  const x = instance.exports as unknown as ZstdExports;
  x._initialize?.();
  return x;
}

/** zstd's name of the error code `ret` (a `size_t` return of `x`). */
export function zstdErrorName(x: ZstdExports, ret: number): string {
  const p = x.sb_error_name(ret) >>> 0;
  const mem = new Uint8Array(x.memory.buffer);
  let end = p;
  while (end < mem.length && mem[end] !== 0) end++;
  return new TextDecoder().decode(mem.subarray(p, end));
}

/**
 * The chunk a decoder hands out for output that is all zeros, shared by
 * every decoder so a dense disk image's zero runs cost no allocation (and no
 * garbage for a runtime that collects it late). Replaced if a consumer
 * transfers (detaches) it.
 */
let zeros = new Uint8Array(OUT_BYTES);

/**
 * Whether `bytes` is a view of the shared zero chunk a decompressor hands out
 * for output that is all zeros: such a view is known to be all zeros without
 * looking at it, so a reader that skips zero blocks need not scan it again.
 * False for every other array, zero or not.
 *
 * @example
 * ```ts
 * for await (const chunk of body.pipeThrough(zstdDecompressStream())) {
 *   if (isSharedZeros(chunk)) continue; // a hole: nothing to write
 *   await write(chunk);
 * }
 * ```
 */
export function isSharedZeros(bytes: Uint8Array): boolean {
  return bytes.byteLength > 0 && bytes.buffer === zeros.buffer;
}

/** One module instance running one zstd stream, with its input and output buffers. */
export class ZstdCall {
  readonly #x: ZstdExports;
  readonly stream: number;
  readonly inPtr: number;
  readonly outPtr: number;
  /** Bytes of output waiting in the output buffer. */
  outPos = 0;

  private constructor(x: ZstdExports, stream: number) {
    this.#x = x;
    this.stream = stream;
    this.inPtr = x.sb_malloc(IN_BYTES);
    this.outPtr = x.sb_malloc(OUT_BYTES);
    if (this.inPtr === 0 || this.outPtr === 0) throw new WasmError("out-of-memory", "zstd: out of memory for buffers");
  }

  static async open(make: (x: ZstdExports) => number, what: string, module?: WebAssembly.Module): Promise<ZstdCall> {
    const x = await zstdInstance(module);
    const s = make(x);
    if (s === 0) throw new WasmError("out-of-memory", `zstd: could not create the ${what}`);
    return new ZstdCall(x, s);
  }

  get x(): ZstdExports {
    return this.#x;
  }

  /** Copy `bytes` (≤ {@link IN_BYTES}) into the input buffer. */
  load(bytes: Uint8Array): void {
    new Uint8Array(this.#x.memory.buffer, this.inPtr, bytes.length).set(bytes);
  }

  /**
   * The gathered output, empties the output buffer: a view of the shared
   * zero chunk when it is all zeros, else a copy — into the next slot of
   * `ring` when given (lent: valid until the ring comes round), else fresh.
   */
  takeDecoded(ring?: LendingRing): Uint8Array {
    if (this.outPos > 0 && this.#x.sb_all_zero(this.outPtr, this.outPos) === 1) {
      if (zeros.byteLength === 0) zeros = new Uint8Array(OUT_BYTES);
      const out = zeros.subarray(0, this.outPos);
      this.outPos = 0;
      return out;
    }
    if (ring === undefined) return this.takeOutput();
    const out = ring.take().subarray(0, this.outPos);
    out.set(new Uint8Array(this.#x.memory.buffer, this.outPtr, this.outPos));
    this.outPos = 0;
    return out;
  }

  /** A copy of the gathered output; empties the output buffer. */
  takeOutput(): Uint8Array {
    const out = new Uint8Array(this.#x.memory.buffer, this.outPtr, this.outPos).slice();
    this.outPos = 0;
    return out;
  }

  errorCode(ret: number): number {
    return this.#x.sb_error_code(ret);
  }

  errorName(ret: number): string {
    return zstdErrorName(this.#x, ret);
  }

  /** Free the zstd context; the instance and its memory go with the last reference. */
  close(): void {
    this.#x.sb_stream_free(this.stream);
  }
}

/** A codec's {@link ZstdCall}, opened when first needed and freed once. */
export function lazyCall(make: (x: ZstdExports) => number, what: string) {
  let call: ZstdCall | undefined;
  let freed = false;
  return {
    /** The open call (opening it first); throws why the pair stopped if it was freed meanwhile. */
    async get(feed: { check(): void }): Promise<ZstdCall> {
      if (call === undefined) {
        const c = await ZstdCall.open(make, what);
        if (freed) {
          c.close();
          feed.check();
        }
        call = c;
      }
      return call;
    },
    get current(): ZstdCall | undefined {
      return call;
    },
    free(): void {
      freed = true;
      call?.close();
      call = undefined;
    },
  };
}
