/**
 * Human-readable output of the CLI: sizes, short digests, tables and
 * `key: value` blocks. (With `--json` none of this is used.)
 *
 * @example
 * ```ts
 * import { humanBytes, shortDigest, table } from "./format.js";
 * humanBytes(1536);                 // "1.5 KiB"
 * shortDigest("sha256:0123456789abcdef…"); // "0123456789ab"
 * table([["NAME", "SIZE"], ["base", "4.0 GiB"]]); // aligned columns
 * ```
 * @module
 */

import { formatBytes } from "../bytes.js";
import type { SnapshotInfo } from "../store.js";

/**
 * Bytes as the CLI's tables and summaries write them: `512 B`, `1.5 KiB`,
 * `4.0 GiB` (one decimal, so columns line up; {@link formatBytes}).
 *
 * @example
 * ```ts
 * humanBytes(4 << 30); // "4.0 GiB"
 * ```
 */
export function humanBytes(n: number): string {
  return formatBytes(n, { fixed: 1 });
}

/**
 * The first 12 hex digits of a `sha256:` digest (other algorithms keep their prefix); `-` for none.
 *
 * @example
 * ```ts
 * shortDigest("sha256:" + "ab".repeat(32)); // "abababababab"
 * shortDigest(null);                        // "-"
 * ```
 */
export function shortDigest(digest: string | null): string {
  if (digest === null) return "-";
  const colon = digest.indexOf(":");
  const algo = digest.slice(0, colon);
  const hex = digest.slice(colon + 1, colon + 13);
  return algo === "sha256" ? hex : `${algo}:${hex}`;
}

/**
 * Rows as columns separated by two spaces, each padded to its widest cell (the last column is not padded).
 *
 * @example
 * ```ts
 * table([["A", "B"], ["long cell", "x"]]); // "A          B\nlong cell  x\n"
 * ```
 */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/**
 * The `ls` table: NAME FORM DIGEST SIZE CREATED PARENT LABELS (FORM: `manifest` or `snapshot`, the artifact's descriptor).
 *
 * @example
 * ```ts
 * process.stdout.write(snapshotTable((await store.list()).snapshots));
 * ```
 */
export function snapshotTable(snapshots: readonly SnapshotInfo[], diskBytes?: readonly (number | null)[]): string {
  // DISK (allocated bytes, as du counts them) beside SIZE (apparent) when known
  const disk = (i: number) => (diskBytes === undefined ? [] : [diskBytes[i] === null || diskBytes[i] === undefined ? "-" : humanBytes(diskBytes[i]!)]);
  return table([
    ["NAME", "FORM", "DIGEST", "SIZE", ...(diskBytes === undefined ? [] : ["DISK"]), "CREATED", "PARENT", "LABELS"],
    ...snapshots.map((s, i) => [
      printable(s.name),
      s.state_kind === "checkpoint" ? "snapshot (checkpoint)" : s.form,
      shortDigest(s.digest),
      s.state_kind === "checkpoint" ? "-" : humanBytes(s.size_bytes),
      ...disk(i),
      printable(s.created_at),
      shortDigest(s.parent),
      labelList(s.labels),
    ]),
  ]);
}

/**
 * `key: value` lines with the values aligned.
 *
 * @example
 * ```ts
 * keyValues([["name", "base"], ["format", "raw"]]); // "name:   base\nformat: raw\n"
 * ```
 */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join("\n") + "\n";
}

/**
 * A value with control characters escaped, so a hostile name cannot rewrite the terminal.
 *
 * @example
 * ```ts
 * printable("base");     // "base"
 * printable("a\u001bb"); // "\"a\\u001bb\"" (JSON-quoted)
 * ```
 */
export function printable(s: string): string {
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f-\u009f]/.test(s) ? JSON.stringify(s) : s;
}

/**
 * A label record as `a=1, b=2` (or `-`).
 *
 * @example
 * ```ts
 * labelList({ a: "1", b: "2" }); // "a=1, b=2"
 * ```
 */
export function labelList(labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "-" : entries.map(([k, v]) => printable(`${k}=${v}`)).join(", ");
}

/**
 * The JSON document printed with `--json`.
 *
 * @example
 * ```ts
 * process.stdout.write(jsonDocument({ ok: true })); // pretty-printed, one trailing newline
 * ```
 */
export function jsonDocument(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
