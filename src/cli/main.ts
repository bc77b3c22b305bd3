#!/usr/bin/env node
/**
 * `snapbundle`, the command line: create, list, inspect, verify, remove,
 * reindex, save and load microsandbox snapshots. Runs on Node
 * (`node dist/src/cli/main.js`), Deno (`deno run -A dist/src/cli/main.js`)
 * and Bun (`bun dist/src/cli/main.js`).
 *
 * Exit status: 0 success; 1 failure, with one `error: …` line on stderr;
 * 2 bad usage, with the usage line and a hint. Set `SNAPBUNDLE_DEBUG=1` to
 * see the stack of an internal error.
 *
 * @example
 * ```sh
 * snapbundle create base --upper ./upper.ext4 --image python:3.12 --image-digest sha256:… --integrity
 * snapbundle save base - | ssh host snapbundle load -
 * ```
 * @module
 */

import { homedir } from "node:os";
import { type CliEnvironment, runCli } from "./run.js";

/** The process's own environment. */
function processEnvironment(): CliEnvironment {
  return {
    env: process.env,
    cwd: process.cwd(),
    userHome: homedir(),
    stderrIsTTY: process.stderr.isTTY === true,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
}

/**
 * A promise rejected with nobody listening would end the process with a stack
 * trace (Node, Deno and Bun all do this), and one handled only later makes
 * Node print a warning. Such a rejection is a second report of a failure that
 * also reaches `runCli` through the awaited path (e.g. a pipe whose sink
 * failed), so it is recorded rather than fatal; if the command nevertheless
 * succeeded and a rejection was never handled, that is an internal error.
 * (Counted, not keyed by promise: Deno's `rejectionHandled` passes a
 * different promise object than its `unhandledRejection` did.)
 */
let pendingRejections = 0;
let firstRejection: unknown = undefined;
process.on("unhandledRejection", (reason: unknown) => {
  if (pendingRejections === 0) firstRejection = reason;
  pendingRejections++;
  if (process.env.SNAPBUNDLE_DEBUG === "1") {
    process.stderr.write(`debug: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
  }
});
process.on("rejectionHandled", () => {
  pendingRejections = Math.max(0, pendingRejections - 1);
});
// Text output to a reader that went away (e.g. `snapbundle ls | head -1`) is
// not worth a stack trace; any other stdout failure makes the exit status 1.
let stdoutError: Error | null = null;
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e?.code !== "EPIPE") stdoutError ??= e;
});

let code = await runCli(process.argv.slice(2), processEnvironment());
if (code === 0 && pendingRejections > 0) {
  const message = firstRejection instanceof Error ? firstRejection.message : String(firstRejection);
  process.stderr.write(`error: internal: unhandled rejection: ${message.replace(/\s*\n\s*/g, "; ")}\n`);
  code = 1;
}
if (code === 0 && stdoutError !== null) {
  process.stderr.write(`error: writing to stdout: ${(stdoutError as Error).message}\n`);
  code = 1;
}
process.exitCode = code;
