/**
 * Run the CLI under a pseudo-terminal (util-linux `script`), as a user at a
 * terminal would, and read back the frames its progress line drew.
 */
import { spawnSync } from "node:child_process";
import { childEnv, cliInvocation } from "./cli-run.js";

/** Run a shell command line under a pseudo-terminal `cols` wide (with `env` added); resolves everything the terminal received. */
export function underTerminal(commandLine: string, cols: number, env: Readonly<Record<string, string>> = {}): { status: number | null; output: string } {
  const r = spawnSync("script", ["-qec", `stty cols ${cols} rows 24; ${commandLine}`, "/dev/null"], { encoding: "utf8", env: childEnv(env), timeout: 120_000 });
  return { status: r.status, output: r.stdout };
}

/** The CLI as a shell word list for this runtime. */
export function cliWords(): string {
  const inv = cliInvocation();
  return [inv.command, ...inv.args].map((a) => `'${a}'`).join(" ");
}

/** Every state a progress line showed: the text between carriage returns and newlines, escape codes removed. */
export function drawnLines(output: string): string[] {
  // deno-lint-ignore no-control-regex
  return output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").split(/[\r\n]/).filter((l) => l.trim() !== "");
}

/** Whether `script` is there to make a pseudo-terminal. */
export const hasScript = spawnSync("script", ["--version"]).status === 0;
