/**
 * Shared helpers of the benchmark scripts: which runtime we are, how to start
 * a runtime (or the CLI) as a child, peak-RSS readings, formatting.
 *
 * Benchmarks are scripts, not tests: they may use `node:*` freely (Node, Deno
 * and Bun all provide the modules used here).
 *
 * @example
 * ```ts
 * import { RUNTIME, runtimeCommand, peakRssBytes } from "./common.js";
 * const { command, args } = runtimeCommand("deno", "/work/main/dist/bench/op.js");
 * console.log(RUNTIME, peakRssBytes());
 * ```
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A JavaScript runtime the benchmarks can run on. */
export type Runtime = "node" | "deno" | "bun";

/** Which runtime this process is. */
export const RUNTIME: Runtime =
  typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
    ? "deno"
    : typeof process.versions.bun === "string"
      ? "bun"
      : "node";

/** The package root (`/work/main`), found from `dist/bench/common.js`. */
export const PACKAGE_ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
/** The built CLI entry. */
export const CLI_MAIN: string = `${PACKAGE_ROOT}/dist/src/cli/main.js`;
/** The built bench directory. */
export const BENCH_DIST: string = `${PACKAGE_ROOT}/dist/bench`;

/** The executable of `rt`: this process's own when it is `rt`, else `node_modules/.bin/<rt>`, else `$PATH`. */
export function runtimeExecutable(rt: Runtime): string {
  if (rt === RUNTIME) return process.execPath;
  const local = `${PACKAGE_ROOT}/node_modules/.bin/${rt}`;
  return existsSync(local) ? local : rt;
}

/** Command and arguments that run `script` (a built `.js`) on `rt`. */
export function runtimeCommand(rt: Runtime, script: string, args: readonly string[] = []): { command: string; args: string[] } {
  const exe = runtimeExecutable(rt);
  if (rt === "deno") return { command: exe, args: ["run", "-A", "--no-lock", script, ...args] };
  return { command: exe, args: [script, ...args] };
}

/** This process's peak resident set size (`VmHWM` of `/proc/self/status`, Linux), or `maxRSS` elsewhere. */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** What a child process did. */
export interface ChildResult {
  readonly code: number | null;
  readonly ms: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion, timing it from spawn to exit; stdout/stderr are collected (keep them small). */
export function runChild(command: string, args: readonly string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<ChildResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...options.env })) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, [...args], { env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8");
    child.stderr!.setEncoding("utf8");
    child.stdout!.on("data", (s: string) => (stdout += s));
    child.stderr!.on("data", (s: string) => (stderr += s.length + stderr.length > 1 << 20 ? "" : s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, ms: performance.now() - t0, stdout, stderr }));
  });
}

/** Like {@link runChild} but rejects unless the exit status is 0. */
export async function mustRun(command: string, args: readonly string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<ChildResult> {
  const r = await runChild(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  return r;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `1073741824` → `"1 GiB"`; `67108864` → `"64 MiB"`. */
export function fmtBytes(n: number): string {
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} ${UNITS[u]}`;
}

/** Parse `64M`, `4G`, `1g`, `4096`, `512k` (binary units). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a byte count: ${JSON.stringify(s)} (use e.g. 64M, 4G)`);
  const mult = { "": 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.round(Number(m[1]) * mult);
}

/** Milliseconds as `"1.23 s"` or `"456 ms"`. */
export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

/** Throughput of `bytes` in `ms`, as MB/s (10^6). */
export function mbps(bytes: number, ms: number): string {
  return ms > 0 ? `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s` : "-";
}
