/**
 * Run the BUILT CLI (`dist/src/cli/main.js`) as a subprocess with the same
 * runtime the test runs on: `deno run -A` under Deno, `bun` under Bun, else
 * `node` — always `process.execPath`, so the matrix really tests each runtime.
 */
import { spawn } from "node:child_process";
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { concat } from "./bytes.js";

/** The old name of {@link noise} (test/helpers/bytes.ts), kept for suites written before it moved. */
export { noise as noiseBytes } from "./bytes.js";

/** Absolute path of the built CLI entry. */
export const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** The package version, as the test sees package.json. */
export const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version;

/** Which runtime this test process is. */
export const RUNTIME: "deno" | "bun" | "node" = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : typeof process.versions.bun === "string"
  ? "bun"
  : "node";

/** Command and leading arguments that run the CLI on this runtime. */
export function cliInvocation(): { command: string; args: string[] } {
  if (RUNTIME === "deno") return { command: process.execPath, args: ["run", "-A", "--no-lock", CLI_MAIN] };
  return { command: process.execPath, args: [CLI_MAIN] };
}

/** What a run produced. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stdoutBytes: Uint8Array;
  readonly stderr: string;
}

export interface RunOptions {
  /** Extra environment (a value of `undefined` removes the variable). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Bytes for stdin (stdin is closed at once when absent). */
  readonly input?: Uint8Array | string;
}

/** The child's environment: the test's, minus anything that would change the CLI's behaviour, plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string | undefined>> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", MSB_HOME: undefined, SNAPBUNDLE_DEBUG: undefined, ...extra };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function collect(stream: NodeJS.ReadableStream | null): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (stream === null) return resolve(new Uint8Array(0));
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(new Uint8Array(c)));
    stream.on("error", reject);
    stream.on("end", () => {
      resolve(concat(chunks));
    });
  });
}

function spawnCli(args: readonly string[], options: RunOptions) {
  const inv = cliInvocation();
  return spawn(inv.command, [...inv.args, ...args], { cwd: options.cwd, env: childEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
}

async function finish(child: ReturnType<typeof spawnCli>): Promise<CliResult> {
  const [stdoutBytes, stderrBytes, [code, signal]] = await Promise.all([
    collect(child.stdout),
    collect(child.stderr),
    new Promise<[number | null, string | null]>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (c, s) => resolve([c, s]));
    }),
  ]);
  const dec = new TextDecoder();
  return { code, signal, stdoutBytes, stdout: dec.decode(stdoutBytes), stderr: dec.decode(stderrBytes) };
}

/** Run `snapbundle <args…>` to completion. */
export async function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  child.stdin!.on("error", () => {}); // the CLI may exit without reading stdin
  child.stdin!.end(options.input ?? undefined);
  return finish(child);
}

/** Run `snapbundle <producer…> | snapbundle <consumer…>`: two processes, stdout piped into stdin. */
export async function pipeCli(producer: readonly string[], consumer: readonly string[], options: RunOptions = {}): Promise<[CliResult, CliResult]> {
  const a = spawnCli(producer, options);
  const b = spawnCli(consumer, options);
  a.stdin!.end();
  b.stdin!.on("error", () => {});
  a.stdout!.pipe(b.stdin!);
  // `finish(a)` would consume a's stdout too; read only its stderr and status.
  const aDone = Promise.all([
    collect(a.stderr),
    new Promise<[number | null, string | null]>((resolve, reject) => {
      a.on("error", reject);
      a.on("close", (c, s) => resolve([c, s]));
    }),
  ]).then(([stderr, [code, signal]]): CliResult => ({ code, signal, stdout: "", stdoutBytes: new Uint8Array(0), stderr: new TextDecoder().decode(stderr) }));
  return Promise.all([aDone, finish(b)]);
}

/** Write a sparse file of `size` bytes with `pieces` of data at their offsets (the rest are holes). */
export function writeSparseFile(path: string, size: number, pieces: readonly [number, Uint8Array | string][]): void {
  const fd = openSync(path, "w");
  try {
    for (const [offset, data] of pieces) {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      writeSync(fd, bytes, 0, bytes.length, offset);
    }
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}
