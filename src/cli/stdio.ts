/**
 * stdin and stdout as Web streams, for `load -` and `save … -`, with
 * backpressure on Node, Deno and Bun.
 *
 * - stdin: `Readable.toWeb(process.stdin)`. Measured with a 300 MB pipe and a
 *   slow consumer: memory stays bounded (≈60–95 MiB RSS) on all three.
 * - stdout: NOT `Writable.toWeb(process.stdout)`. On Bun 1.4 its writes
 *   resolve before the data leaves the process, so a slow reader makes the
 *   whole archive pile up in memory (589 MiB RSS for 300 MB). Instead each
 *   chunk goes through `process.stdout.write(chunk, callback)` and the write
 *   resolves when the callback fires: bounded on all three (≈55–105 MiB).
 *
 * @example
 * ```ts
 * import { stdinSource, stdoutWritable } from "./stdio.js";
 * const stdin = stdinSource();
 * await stdin.stream.pipeTo(stdoutWritable()); // cat
 * ```
 * @module
 */

import { Readable } from "node:stream";
import { SnapbundleError } from "../errors.js";

/**
 * An error writing to or reading from the standard streams (e.g. the reader of a pipe went away).
 *
 * @example
 * ```ts
 * throw new StdioError("writing the archive to stdout: EPIPE");
 * ```
 */
export class StdioError extends SnapbundleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("stdio", message, options);
  }
}

function describe(e: unknown, stream: "stdout" | "stdin"): Error {
  const err = e as { code?: string; name?: string; message?: string };
  if (stream === "stdout" && (err?.code === "EPIPE" || err?.name === "BrokenPipe")) {
    return new StdioError(`writing the archive to ${stream}: the reading end of the pipe was closed (EPIPE)`, { cause: e });
  }
  return new StdioError(`${stream === "stdout" ? "writing the archive to" : "reading the archive from"} ${stream}: ${err?.message ?? String(e)}`, { cause: e });
}

/** stdin as a byte stream, and how to finish with it. */
export interface StdinSource {
  /** The bytes. Cancelling it leaves stdin open, so that {@link StdinSource.drain} can still run. */
  readonly stream: ReadableStream<Uint8Array>;
  /**
   * After a successful load: read (and discard) whatever follows the archive
   * up to end of file, so the writer of the pipe (e.g. `snapbundle save x -`)
   * finishes cleanly instead of failing with EPIPE.
   */
  drain(): Promise<void>;
  /** After a failed load: stop reading now (the writer of the pipe sees EPIPE). */
  close(): void;
}

/**
 * The process's stdin as a byte stream. Refuses a terminal (an archive is binary and must be piped in).
 *
 * @example
 * ```ts
 * const stdin = stdinSource();
 * try {
 *   await store.load(stdin.stream);
 *   await stdin.drain();
 * } catch (e) {
 *   stdin.close();
 *   throw e;
 * }
 * ```
 */
export function stdinSource(): StdinSource {
  if (process.stdin.isTTY) {
    throw new StdioError("refusing to read an archive from a terminal: pipe one in, e.g. 'snapbundle save x - | snapbundle load -'");
  }
  const reader = (Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>).getReader();
  let ended = false;
  const read = async (): Promise<ReadableStreamReadResult<Uint8Array>> => {
    try {
      const r = await reader.read();
      if (r.done) ended = true;
      return r;
    } catch (e) {
      ended = true;
      throw describe(e, "stdin");
    }
  };
  // Pass chunks through one at a time (no extra buffering), naming stdin in read errors.
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    async drain() {
      while (!ended) await read();
    },
    close() {
      ended = true;
      reader.cancel().catch(() => {});
      process.stdin.destroy();
    },
  };
}

/**
 * The process's stdout as a byte sink. Each write resolves once the runtime
 * has handed the chunk to the OS, so a slow reader throttles the producer.
 * Closing it does not end `process.stdout`. Refuses a terminal.
 *
 * @example
 * ```ts
 * await store.save("base", stdoutWritable()); // `snapbundle save base -`
 * ```
 */
export function stdoutWritable(): WritableStream<Uint8Array> {
  const out = process.stdout;
  if (out.isTTY) {
    throw new StdioError("refusing to write a binary archive to a terminal: redirect stdout to a file or a pipe");
  }
  let failure: Error | null = null;
  const waiting = new Set<(e: Error) => void>();
  // Keep a listener for the life of the process: an EPIPE emitted after the
  // stream is done must not become an uncaught exception.
  out.on("error", (e: unknown) => {
    failure ??= describe(e, "stdout");
    for (const reject of waiting) reject(failure);
    waiting.clear();
  });
  return new WritableStream<Uint8Array>(
    {
      write(chunk) {
        if (failure) return Promise.reject(failure);
        return new Promise<void>((resolve, reject) => {
          waiting.add(reject);
          out.write(chunk, (err) => {
            waiting.delete(reject);
            if (err) reject((failure ??= describe(err, "stdout")));
            else resolve();
          });
        });
      },
      close() {
        if (failure) throw failure;
      },
    },
    { highWaterMark: 1 },
  );
}
