/**
 * The CLI's zstd options: `save --level N` and `load --max-window SIZE`.
 *
 * @example
 * ```ts
 * levelOption({ level: "19" });          // 19
 * maxWindowOption({ "max-window": "1G" }); // 1073741824
 * ```
 * @module
 */

import { ZSTD_MAX_LEVEL, ZSTD_MAX_WINDOW_BYTES, ZSTD_MIN_LEVEL } from "../zstd.js";
import { parseByteSize, UsageError } from "./args.js";

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
  const n = parseByteSize(v, "--max-window");
  if (n < 1024 || n > ZSTD_MAX_WINDOW_BYTES) {
    throw new UsageError(
      `--max-window ${v}: must be a size from 1K to 2G, such as 128M or 2G (2 GiB, zstd --long=31, is the largest window zstd decodes)`,
    );
  }
  return n;
}
