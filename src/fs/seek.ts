/**
 * `lseek(2)` with `SEEK_DATA`/`SEEK_HOLE` through the runtime's FFI, for
 * the `node:fs` adapter's {@link import("./types.js").FileHandle.dataRanges}:
 * Deno (`Deno.dlopen`) and Bun (`bun:ffi`) call libc's `lseek` on the file
 * descriptor, so holes are skipped without being read. Node has no FFI: there
 * the query is absent and the core scans for zeros (at memory speed,
 * `wasm/zeroscan.ts`). Linux only (the whence values differ elsewhere);
 * Deno without `--allow-ffi` falls back the same way.
 *
 * This is a platform module, like `node.ts` beside it: the core never
 * imports it.
 *
 * @example
 * ```ts
 * const lseek = await libcLseek();
 * if (lseek) await dataRangesOfFd(lseek, fd, 0, size); // [{ offset, length }, …]
 * ```
 * @module
 */

import type { DataRange } from "./types.js";

/** `lseek(fd, offset, whence)`: the resulting offset, or -1 with the error in `errno`. */
export type Lseek = (fd: number, offset: number, whence: number) => { offset: number; errno: number };

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

interface DenoFfi {
  build: { os: string };
  dlopen(path: string, symbols: Record<string, unknown>): { symbols: Record<string, (...args: unknown[]) => unknown> };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
}

let loaded: Promise<Lseek | null> | undefined;

/** libc's `lseek` through this runtime's FFI, or null where there is none (Node, non-Linux, no permission). */
export function libcLseek(): Promise<Lseek | null> {
  loaded ??= load().catch(() => null);
  return loaded;
}

async function load(): Promise<Lseek | null> {
  const g = globalThis as { Deno?: DenoFfi; Bun?: unknown; process?: { platform?: string } };
  if (g.Deno !== undefined) {
    const D = g.Deno;
    if (D.build.os !== "linux") return null;
    const lib = D.dlopen("libc.so.6", {
      lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
      __errno_location: { parameters: [], result: "pointer" },
    });
    const errno = () => new D.UnsafePointerView(lib.symbols.__errno_location!()).getInt32();
    return (fd, offset, whence) => {
      const r = Number(lib.symbols.lseek!(fd, BigInt(offset), whence));
      return { offset: r, errno: r < 0 ? errno() : 0 };
    };
  }
  if (g.Bun !== undefined) {
    if (g.process?.platform !== "linux") return null;
    const spec = "bun:ffi"; // a variable: only Bun resolves it
    const ffi = (await import(spec)) as {
      dlopen(path: string, symbols: Record<string, unknown>): { symbols: Record<string, (...args: unknown[]) => unknown> };
      FFIType: Record<string, unknown>;
      read: { i32(ptr: unknown, offset: number): number };
    };
    const T = ffi.FFIType;
    const lib = ffi.dlopen("libc.so.6", {
      lseek: { args: [T.i32, T.i64, T.i32], returns: T.i64 },
      __errno_location: { args: [], returns: T.ptr },
    });
    return (fd, offset, whence) => {
      const r = Number(lib.symbols.lseek!(fd, offset, whence));
      return { offset: r, errno: r < 0 ? ffi.read.i32(lib.symbols.__errno_location!(), 0) : 0 };
    };
  }
  return null;
}

/**
 * The data ranges of `[from, to)` of the open descriptor `fd`, by
 * `SEEK_DATA`/`SEEK_HOLE`, or null when `lseek` fails otherwise than with
 * `ENXIO` (no data past the offset). A filesystem without hole support
 * reports the whole file as data, which is still right.
 */
export function dataRangesOfFd(lseek: Lseek, fd: number, from: number, to: number): DataRange[] | null {
  const ranges: DataRange[] = [];
  let pos = from;
  while (pos < to) {
    const data = lseek(fd, pos, SEEK_DATA);
    if (data.offset < 0) {
      if (data.errno === ENXIO) break;
      return null;
    }
    if (data.offset >= to) break;
    const hole = lseek(fd, data.offset, SEEK_HOLE);
    if (hole.offset < 0 || hole.offset <= data.offset) return null;
    const end = Math.min(hole.offset, to);
    ranges.push({ offset: data.offset, length: end - data.offset });
    pos = hole.offset;
  }
  return ranges;
}
