#!/usr/bin/env node
/**
 * `snapbundle`, the command line: create, list, inspect, verify, remove,
 * reindex, save and load microsandbox snapshots. Runs on Node
 * (`node dist/src/cli/main.js`), Deno (`deno run -A dist/src/cli/main.js`)
 * and Bun (`bun dist/src/cli/main.js`).
 *
 * Exit status: 0 success; 1 failure, with one `error: …` line on stderr
 * (a failure to write stdout or stderr included); 2 bad usage, with the usage
 * line and a hint; 130, 143, 129 when interrupted by SIGINT, SIGTERM, SIGHUP
 * (`error: interrupted`, after the command undid its work; a second signal
 * exits at once). Set `SNAPBUNDLE_DEBUG=1` to see the stack of an internal error.
 *
 * @example
 * ```sh
 * snapbundle create base --upper ./upper.ext4 --image python:3.12 --image-digest sha256:… --integrity
 * snapbundle save base - | ssh host snapbundle load -
 * ```
 * @module
 */

import { homedir } from "node:os";
import { stopAllProgress } from "./progress.js";
import { BROKEN_PIPE_EXIT_CODE, type CliEnvironment, runCli, SIGNAL_EXIT_CODES } from "./run.js";
import { describeStdioError, isBrokenPipe } from "./stdio.js";

/**
 * Output to stdout and stderr. Every write's outcome is observed: a failure
 * (ENOSPC on `> /dev/full`, EPIPE, EBADF), whether thrown at once or
 * reported later, is remembered and makes the command fail — on Node, Deno
 * and Bun alike. `settle()` waits for the writes issued so far.
 */
function observedStreams() {
  let failure: { stream: "stdout" | "stderr"; error: unknown } | null = null;
  const pending = new Set<Promise<void>>();
  const record = (stream: "stdout" | "stderr", error: unknown) => {
    failure ??= { stream, error };
  };
  const writer = (stream: "stdout" | "stderr") => {
    const target = stream === "stdout" ? process.stdout : process.stderr;
    target.on("error", (e: unknown) => record(stream, e));
    return (text: string) => {
      if (failure?.stream === stream) return; // a broken stream stays broken: do not pile up writes
      const done = new Promise<void>((resolve) => {
        try {
          target.write(text, (e?: Error | null) => {
            if (e) record(stream, e);
            resolve();
          });
        } catch (e) {
          // Deno throws a failed write (e.g. ENOSPC) at once
          record(stream, e);
          resolve();
        }
      });
      pending.add(done);
      void done.then(() => pending.delete(done));
    };
  };
  return {
    out: writer("stdout"),
    err: writer("stderr"),
    failure: () => failure,
    settle: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

const streams = observedStreams();

/**
 * SIGINT, SIGTERM and SIGHUP abort the running command (which then undoes
 * its work as after any failure); the terminal is restored at once. A second
 * signal exits at once.
 */
const controller = new AbortController();
for (const name of Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[]) {
  process.on(name, () => {
    stopAllProgress();
    if (controller.signal.aborted) {
      process.stderr.write("error: interrupted\n");
      process.exit(SIGNAL_EXIT_CODES[name]);
    }
    controller.abort(name);
  });
}

/** The process's own environment. */
function processEnvironment(): CliEnvironment {
  return {
    env: process.env,
    cwd: process.cwd(),
    userHome: homedir(),
    stderrIsTTY: process.stderr.isTTY === true,
    out: streams.out,
    err: streams.err,
    signal: controller.signal,
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

let code = await runCli(process.argv.slice(2), processEnvironment());
if (code === 0 && pendingRejections > 0) {
  const message = firstRejection instanceof Error ? firstRejection.message : String(firstRejection);
  streams.err(`error: internal: unhandled rejection: ${message.replace(/\s*\n\s*/g, "; ")}\n`);
  code = 1;
}
await streams.settle();
const failed = streams.failure();
if (failed !== null) {
  // stdout failed: say so on stderr; stderr failed: nothing can be said, the status tells.
  // A reader that left early (EPIPE, `snapbundle ls | head -1`) is normal: quiet, 141 as for SIGPIPE.
  const brokenPipe = failed.stream === "stdout" && isBrokenPipe(failed.error);
  if (failed.stream === "stdout" && code === 0 && !brokenPipe) streams.err(`error: ${describeStdioError(failed.error, "stdout").message}\n`);
  if (code === 0) code = brokenPipe ? BROKEN_PIPE_EXIT_CODE : 1;
  await streams.settle();
}
if (controller.signal.aborted) process.exit(code); // nothing left to wait for (e.g. a stdin read)
process.exitCode = code;
