/**
 * The real microsandbox CLI (`msb` 0.6.18, the devDependency `microsandbox`
 * with its optional platform package) as a test witness. Every `msb snapshot`
 * subcommand except `create` works on files, without virtualization.
 *
 * @example
 * ```ts
 * test("msb agrees", { skip: MSB_SKIP }, () => {
 *   const home = msbHome("witness-");
 *   const r = runMsb(home, ["snapshot", "list", "--format", "json"]);
 * });
 * ```
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The static binary of the platform package (its `bin/msb`), found from the repository's node_modules. */
export const MSB_BIN = fileURLToPath(new URL("../../../node_modules/@superradcompany/microsandbox-linux-x64-gnu/bin/msb", import.meta.url));

function findBinary(): string | null {
  try {
    accessSync(MSB_BIN, constants.X_OK);
    const r = spawnSync(MSB_BIN, ["--version"], { encoding: "utf8", timeout: 30_000 });
    return r.status === 0 ? r.stdout.trim() : null;
  } catch {
    return null;
  }
}

/** `msb --version`, or null when the platform package is missing (not linux-x64-gnu, or not installed). */
export const MSB_VERSION: string | null = process.platform === "linux" && process.arch === "x64" ? findBinary() : null;

/**
 * Pass as a test's `skip` option: false where msb runs, else the reason,
 * so the run reports the witness tests as skipped with why — never as passed.
 */
export const MSB_SKIP: false | string = MSB_VERSION !== null
  ? false
  : `msb witness skipped: ${MSB_BIN} is missing or does not run (the optional dependency @superradcompany/microsandbox-linux-x64-gnu of microsandbox installs on linux-x64 only)`;

export interface MsbResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `msb ARGS…` with `MSB_HOME=home` (and nothing else of the test's msb setup). */
export function runMsb(home: string, args: readonly string[], timeoutMs = 60_000): MsbResult {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("MSB_")) env[k] = v;
  env.MSB_HOME = home;
  const r = spawnSync(MSB_BIN, [...args], { env, encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run msb and fail the test, with its stderr, unless it succeeds. */
export function msbOk(home: string, args: readonly string[]): string {
  const r = runMsb(home, args);
  if (r.code !== 0) throw new Error(`msb ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** One row of `msb snapshot list --format json`. */
export interface MsbRow {
  readonly digest: string;
  readonly name: string | null;
  readonly parent_digest: string | null;
  readonly artifact_path: string;
  readonly image_ref: string;
  readonly size_bytes: number | null;
  readonly [k: string]: unknown;
}

/** `msb snapshot list --format json`, sorted by digest. */
export function msbList(home: string): MsbRow[] {
  const rows = JSON.parse(msbOk(home, ["snapshot", "list", "--format", "json"])) as MsbRow[];
  return rows.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

/**
 * A fresh msb home under the temp directory (real path, as msb records
 * canonical paths), with msb's database created by one `msb snapshot list`.
 */
export function msbHome(prefix: string): { root: string; home: string } {
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const home = join(root, "home");
  mkdirSync(join(home, "snapshots"), { recursive: true });
  msbOk(home, ["snapshot", "list"]);
  return { root, home };
}
