/**
 * The host's FFI slot on Deno and Bun (`src/host.ts`, {@link HostFfi}):
 * libc's `lseek(2)`, for `SEEK_DATA`/`SEEK_HOLE`, through `Deno.dlopen` or
 * `bun:ffi`. Linux only (the whence values differ elsewhere). The library is
 * opened on the first call; where that fails (Deno without `--allow-ffi`, no
 * `libc.so.6`) every call fails with `ENOSYS` and the caller reads instead.
 * Node has no FFI: {@link hostFfi} gives it nothing.
 *
 * @example
 * ```ts
 * const ffi = hostFfi(); // undefined on Node
 * ffi?.lseek?.(fd, 0, 3); // { offset, errno }: SEEK_DATA from 0
 * ```
 * @module
 */

import type { HostFfi } from "../host.js";

type Lseek = NonNullable<HostFfi["lseek"]>;
type Symbols = Record<string, (...args: unknown[]) => unknown>;

interface DenoFfi {
  build: { os: string };
  dlopen(path: string, symbols: Record<string, unknown>): { symbols: Symbols };
  UnsafePointerView: new (pointer: unknown) => { getInt32(offset?: number): number };
}

const ENOSYS = 38;

/** The FFI this runtime offers the core, or undefined (Node, non-Linux). */
export function hostFfi(): HostFfi | undefined {
  const g = globalThis as { Deno?: DenoFfi; Bun?: unknown; process?: { platform?: string } };
  const linux = g.Deno !== undefined ? g.Deno.build.os === "linux" : g.Bun !== undefined && g.process?.platform === "linux";
  if (!linux) return undefined;
  let call: Lseek | null | undefined;
  return {
    lseek: (fd, offset, whence) => {
      if (call === undefined) {
        try {
          call = g.Deno !== undefined ? denoLseek(g.Deno) : bunLseek();
        } catch {
          call = null;
        }
      }
      return call === null ? { offset: -1, errno: ENOSYS } : call(fd, offset, whence);
    },
  };
}

function denoLseek(D: DenoFfi): Lseek {
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

function bunLseek(): Lseek {
  // Bun resolves its own modules synchronously through import.meta.require
  const ffi = (import.meta as unknown as { require(id: string): unknown }).require("bun:ffi") as {
    dlopen(path: string, symbols: Record<string, unknown>): { symbols: Symbols };
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
