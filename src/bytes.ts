/**
 * The one byte formatter of snapbundle: messages, the CLI's tables and its
 * summaries all write sizes with {@link formatBytes}.
 *
 * @example
 * ```ts
 * formatBytes(128 * 1024 * 1024);           // "128 MiB"
 * formatBytes(1536, { fixed: 1 });          // "1.5 KiB"
 * ```
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/**
 * A byte count in binary units, as people write it: `512 B`, `128 MiB`,
 * `1.5 GiB` (at most two decimals, trailing zeros dropped). With `fixed`,
 * every size from 1 KiB up has exactly that many decimals (`8.0 MiB`), for
 * columns that line up.
 *
 * @example
 * ```ts
 * formatBytes(3 * 1024 ** 3 / 2);            // "1.5 GiB"
 * formatBytes(8 * 1024 ** 2, { fixed: 1 });  // "8.0 MiB"
 * ```
 */
export function formatBytes(n: number, options: { readonly fixed?: number } = {}): string {
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${n} B`;
  const digits = options.fixed === undefined ? v.toFixed(2).replace(/\.?0+$/, "") : v.toFixed(options.fixed);
  return `${digits} ${UNITS[u]}`;
}
