/**
 * A file's data ranges by `lseek(2)` with `SEEK_DATA`/`SEEK_HOLE`, for the
 * `node:fs` adapter's {@link import("./types.js").FileHandle.dataRanges}. The
 * `lseek` itself comes from the host's FFI slot (`src/host.ts`; on Deno and
 * Bun `src/hosts/ffi.ts` calls libc); where there is none (Node) the adapter
 * answers null and the core scans for zeros (at memory speed, `wasm/zeroscan.ts`).
 *
 * @example
 * ```ts
 * const lseek = currentHost().ffi?.lseek;
 * if (lseek) dataRangesOfFd(lseek, fd, 0, size); // [{ offset, length }, …]
 * ```
 * @module
 */

import type { DataRange } from "./types.js";

/** `lseek(fd, offset, whence)`: the resulting offset, or -1 with the error in `errno` (the host's `ffi.lseek`). */
export type Lseek = (fd: number, offset: number, whence: number) => { offset: number; errno: number };

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

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
