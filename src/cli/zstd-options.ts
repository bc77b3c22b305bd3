/**
 * The CLI's zstd options: `save --level N` and `load --max-window SIZE`.
 *
 * @example
 * ```ts
 * parseSize("1G");     // 1073741824
 * parseSize("128MiB"); // 134217728
 * ```
 * @module
 */

import { ZSTD_MAX_LEVEL, ZSTD_MAX_WINDOW_BYTES, ZSTD_MIN_LEVEL } from "../../wasm/mod.js";
import { UsageError } from "./args.js";

const UNITS: Readonly<Record<string, number>> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * A byte size as the `zstd` CLI spells it: a number with an optional binary
 * unit `K`, `M`, `G`, `T` (also `KB`/`KiB`, …; all powers of 1024); null when
 * it is not one.
 *
 * @example
 * ```ts
 * parseSize("1.5G"); // 1610612736
 * parseSize("lots"); // null
 * ```
 */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (m === null) return null;
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  return Number.isSafeInteger(n) ? n : Math.round(n);
}

/**
 * `--level N` of `save`: undefined when absent.
 *
 * @example
 * ```ts
 * levelOption({ level: "19" }); // 19
 * ```
 */
export function levelOption(values: Readonly<Record<string, unknown>>): number | undefined {
  const v = values.level;
  if (typeof v !== "string") return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= ZSTD_MIN_LEVEL && n <= ZSTD_MAX_LEVEL)) {
    throw new UsageError(`--level ${v}: must be a whole number from ${ZSTD_MIN_LEVEL} to ${ZSTD_MAX_LEVEL}`);
  }
  return n;
}

/**
 * `--max-window SIZE` of `load` (e.g. `1G`, `256M`): undefined when absent.
 *
 * @example
 * ```ts
 * maxWindowOption({ "max-window": "1G" }); // 1073741824
 * ```
 */
export function maxWindowOption(values: Readonly<Record<string, unknown>>): number | undefined {
  const v = values["max-window"];
  if (typeof v !== "string") return undefined;
  const n = parseSize(v);
  if (n === null || n < 1024 || n > ZSTD_MAX_WINDOW_BYTES) {
    throw new UsageError(
      `--max-window ${v}: must be a size from 1K to 1G, such as 128M or 1G (1 GiB is zstd's limit on 32-bit builds such as WebAssembly)`,
    );
  }
  return n;
}
