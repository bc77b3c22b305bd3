/**
 * The CLI as a function: {@link runCli} parses `argv`, runs the command
 * against a {@link SnapshotStore} over `node:fs` and the Node/Deno/Bun host, prints, and resolves the
 * exit status (0 success, 1 failure with one `error: …` line, 2 bad usage,
 * 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP).
 * `main.ts` calls it with the process's own streams.
 *
 * @example
 * ```ts
 * import { runCli } from "./run.js";
 * const code = await runCli(["--json", "ls"], {
 *   env: process.env, cwd: process.cwd(), userHome: "/root", stderrIsTTY: false,
 *   out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t),
 * });
 * ```
 * @module
 */

import { homedir } from "node:os";
import { resolve as resolvePath } from "node:path";
import { OperationAborted, SnapbundleError } from "../errors.js";
import { nodeFs } from "../fs/node.js";
import { installHost } from "../host.js";
import { nodeHost } from "../hosts/node.js";
import { SnapshotStore } from "../store.js";
import { type CommandSpec, commandHelp, globalHelp, parseCommandLine, tryHelpLine, usageLine, UsageError } from "./args.js";
import { runCommand } from "./commands.js";
import { jsonDocument } from "./format.js";
import { indexRoots, msbWouldMigrate, syncMsbIndex } from "./msb-index.js";
import { isBrokenPipe } from "./stdio.js";
import { packageVersion } from "./version.js";

/** Where the process's text output goes (stdout, stderr) and what it runs in. */
export interface CliEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly userHome: string;
  readonly stderrIsTTY: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Aborted, with the signal's name as reason, when the process is interrupted. */
  readonly signal?: AbortSignal;
}

/** Exit status when the reader of stdout went away (EPIPE): 128 + SIGPIPE, what a tool killed by SIGPIPE reports. */
export const BROKEN_PIPE_EXIT_CODE = 141;

/** Exit status of a command interrupted by each signal: 128 + its number. */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/** The exit status for an interruption whose reason is `reason` (a signal name; else 130). */
export function interruptedExitCode(reason: unknown): number {
  return typeof reason === "string" && reason in SIGNAL_EXIT_CODES ? SIGNAL_EXIT_CODES[reason as keyof typeof SIGNAL_EXIT_CODES] : 130;
}

/**
 * The home: `--home`, else `$MSB_HOME`, else `~/.microsandbox`; relative paths against `cwd`.
 *
 * @example
 * ```ts
 * resolveHome(undefined, { ...env, env: {}, userHome: "/home/me" }); // "/home/me/.microsandbox"
 * ```
 */
export function resolveHome(option: string | undefined, env: CliEnvironment): string {
  const chosen = option ?? (env.env.MSB_HOME ? env.env.MSB_HOME : resolvePath(env.userHome, ".microsandbox"));
  return resolvePath(env.cwd, chosen);
}

/** A message on one line: newlines inside it become "; ", other control characters are escaped; the library's option names are dropped. */
function oneLine(message: string): string {
  return message
    .replace(/ \(library: [^)]*\)/g, "")
    .trim()
    .replace(/\s*\n\s*/g, "; ")
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * The `--json` document of a failure: `{"error": {"code", "message", "path"}}`.
 *
 * @example
 * ```ts
 * jsonError("snapshot-not-found", "no snapshot named \"x\"", null);
 * ```
 */
export function jsonError(code: string, message: string, path: string | null): string {
  return jsonDocument({ error: { code, message, path } });
}

/** The file at fault, when the error knows it (an {@link FsError}, or an error naming its snapshot directory). */
function errorPath(e: SnapbundleError): string | null {
  const p = (e as { path?: unknown; existing?: unknown }).path;
  return typeof p === "string" ? p : null;
}

/**
 * Run the CLI on `argv` (without runtime and script path). Resolves the exit
 * status; never throws.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(["ls"], env);
 * ```
 */
export async function runCli(argv: readonly string[], env: CliEnvironment): Promise<number> {
  installHost(nodeHost()); // the CLI runs on node:fs and the Node/Deno/Bun host
  let usageCommand: CommandSpec | null = null;
  // Until the arguments parse, `--json` is whatever the raw argv says.
  const options = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : argv.length);
  let json = options.includes("--json") || options.includes("--format=json") || options.some((a, i) => a === "--format" && options[i + 1] === "json");
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === "help") {
      env.out(parsed.command ? commandHelp(parsed.command) : globalHelp());
      return 0;
    }
    if (parsed.kind === "version") {
      env.out(`${packageVersion()}\n`);
      return 0;
    }
    usageCommand = parsed.command;
    json = parsed.values.json === true || parsed.values.format === "json"; // --format json: msb's spelling
    const quiet = parsed.values.quiet === true;
    const home = resolveHome(parsed.values.home as string | undefined, env);
    const store = new SnapshotStore(nodeFs(), home, { cwd: env.cwd, userHome: env.userHome });
    // in an msb 0.6.7+ home a manifest.json artifact would be migrated (new identity) by the index update below
    const values = parsed.command.name === "create" && parsed.values.layout === undefined && msbWouldMigrate(home, env.env) ? { ...parsed.values, layout: "snapshot" } : parsed.values;
    await runCommand(
      { store, json, quiet, progress: env.stderrIsTTY && !json && !quiet && parsed.values["no-progress"] !== true, out: env.out, err: env.err, signal: env.signal },
      parsed.command,
      parsed.positionals,
      values,
    );
    // A home msb also uses: bring msb's own index (db/msb.db) in step with what we wrote.
    if (["create", "load", "rm", "reindex"].includes(parsed.command.name)) syncMsbIndex({ home, roots: indexRoots(home), env: env.env, err: env.err });
    return 0;
  } catch (e) {
    // Interrupted: whatever the command failed with on its way out (e.g. stdin
    // cut short by the same Ctrl-C in a pipeline), it stopped because of the signal.
    if (env.signal?.aborted || e instanceof OperationAborted) {
      const reason = env.signal?.aborted ? env.signal.reason : (e as OperationAborted).reason;
      env.err("error: interrupted\n");
      if (json) env.out(jsonError("aborted", typeof reason === "string" ? `interrupted (${reason})` : "interrupted", null));
      return interruptedExitCode(reason);
    }
    // The reader of stdout went away (`… | head`): normal in a pipeline. Quiet, and
    // 141 (128 + SIGPIPE) as tar, cat or ls report it, so `set -o pipefail` still sees it.
    if (isBrokenPipe(e)) return BROKEN_PIPE_EXIT_CODE;
    if (e instanceof UsageError) {
      const command = e.command ?? usageCommand;
      env.err(`error: ${oneLine(e.message)}\n${usageLine(command)}\n${tryHelpLine(command)}\n`);
      if (json) env.out(jsonError("usage", oneLine(e.message), null));
      return 2;
    }
    if (e instanceof SnapbundleError) {
      env.err(`error: ${oneLine(e.message)}\n`);
      if (env.env.SNAPBUNDLE_DEBUG === "1" && e.stack) env.err(`${e.stack}\n`);
      if (json) env.out(jsonError(e.code, oneLine(e.message), errorPath(e)));
      return 1;
    }
    const message = e instanceof Error ? e.message : String(e);
    env.err(`error: internal: ${oneLine(message)}\n`);
    if (json) env.out(jsonError("internal", `internal: ${oneLine(message)}`, null));
    if (env.env.SNAPBUNDLE_DEBUG === "1" && e instanceof Error && e.stack) env.err(`${e.stack}\n`);
    return 1;
  }
}
