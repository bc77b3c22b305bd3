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

import { closeSync, constants, openSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { Readable } from "node:stream";
import { abortError } from "../abort.js";
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

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EPIPE: "the reading end of the pipe was closed (EPIPE)",
  ENOSPC: "no space left on device (ENOSPC)",
  EBADF: "the stream is not open for writing (EBADF)",
  EIO: "input/output error (EIO)",
  EDQUOT: "disk quota exceeded (EDQUOT)",
};

/** The errno of a stream error, as Node, Bun (`code`) and Deno (`code`, or `name` such as "BrokenPipe") report it. */
function errnoOf(e: unknown): string | null {
  const err = e as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof err?.code === "string") return err.code;
  if (err?.name === "BrokenPipe") return "EPIPE";
  const m = typeof err?.message === "string" ? /\b(E[A-Z]{2,})\b/.exec(err.message) : null;
  if (m) return m[1]!;
  if (typeof err?.message === "string" && /no space left/i.test(err.message)) return "ENOSPC";
  if (typeof err?.message === "string" && /bad file descriptor/i.test(err.message)) return "EBADF";
  return null;
}

/**
 * A failure on a standard stream as a {@link StdioError} with the same
 * message on every runtime: `writing to stdout: no space left on device (ENOSPC)`.
 *
 * @example
 * ```ts
 * describeStdioError({ code: "EPIPE" }, "stdout").message; // "writing to stdout: the reading end of the pipe was closed (EPIPE)"
 * ```
 */
export function describeStdioError(e: unknown, stream: "stdout" | "stderr" | "stdin", what = ""): StdioError {
  const errno = errnoOf(e);
  const detail = errno !== null ? (ERRNO_TEXT[errno] ?? errno) : String((e as { message?: unknown })?.message ?? e);
  const verb = stream === "stdin" ? `reading ${what || ""}${what ? " " : ""}from` : `writing ${what || ""}${what ? " " : ""}to`;
  return new StdioError(`${verb} ${stream}: ${detail}`, { cause: e });
}

/** True when `e` is (or was caused by) EPIPE: the reader of stdout went away. */
export function isBrokenPipe(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    if (errnoOf(c) === "EPIPE") return true;
  }
  return false;
}

function describe(e: unknown, stream: "stdout" | "stdin"): Error {
  return describeStdioError(e, stream, "the archive");
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
  // Deno's process.stdout.write is a blocking write: with a slow reader it
  // would stall the event loop, and with it the signal handlers. Deno.stdout
  // writes off the main thread.
  const deno = (globalThis as { Deno?: { stdout: { write(p: Uint8Array): Promise<number> } } }).Deno;
  if (deno) {
    return new WritableStream<Uint8Array>(
      {
        async write(chunk) {
          try {
            for (let done = 0; done < chunk.length; ) done += await deno.stdout.write(chunk.subarray(done));
          } catch (e) {
            throw describe(e, "stdout");
          }
        },
      },
      { highWaterMark: 1 },
    );
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

/**
 * An existing FIFO or device (or `/dev/stdout`) as a byte sink: opened for
 * writing and written sequentially, never replaced. Each write resolves once
 * the OS took the chunk, so a slow reader throttles the producer.
 *
 * @example
 * ```ts
 * await store.save("base", await fileStreamWritable("/tmp/fifo"));
 * ```
 */
export async function fileStreamWritable(path: string, signal?: AbortSignal): Promise<WritableStream<Uint8Array>> {
  const fh = await openSpecial(path, "w", signal);
  const fail = (e: unknown) => new StdioError(`writing the archive to ${path}: ${describeStdioError(e, "stdout").message.replace(/^writing to stdout: /, "")}`, { cause: e });
  return new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        try {
          for (let done = 0; done < chunk.length; ) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
        } catch (e) {
          await fh.close().catch(() => {});
          throw fail(e);
        }
      },
      async close() {
        await fh.close();
      },
      async abort() {
        await fh.close().catch(() => {});
      },
    },
    { highWaterMark: 1 },
  );
}

/**
 * Open a FIFO or device for reading or writing, abortably. Opening a FIFO
 * blocks until its other end is opened, and that blocked `open(2)` holds a
 * runtime worker thread that no signal frees: the process could then not
 * even exit (Node) or needed a second Ctrl-C (Deno, Bun). When `signal`
 * fires first, we open the other end ourselves (`O_RDWR|O_NONBLOCK`, which
 * never blocks on Linux), so the pending open returns; both are closed and
 * the open rejects with `OperationAborted`.
 */
export async function openSpecial(path: string, mode: "r" | "w", signal?: AbortSignal): Promise<FileHandle> {
  const pending = open(path, mode);
  let unblocker: number | null = null;
  const onAbort = () => {
    try {
      unblocker = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    } catch {
      // not a FIFO (or gone): nothing blocks on it
    }
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  let fh: FileHandle;
  try {
    fh = await pending;
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw new StdioError(`opening ${path} for ${mode === "r" ? "reading" : "writing"}: ${(e as Error).message}`, { cause: e });
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (unblocker !== null) closeSync(unblocker);
  }
  if (signal?.aborted) {
    await fh.close().catch(() => {});
    throw abortError(signal);
  }
  return fh;
}

/**
 * A FIFO or device read as a byte stream (`load FIFO`), opened abortably (see
 * {@link openSpecial}) when the stream is first read.
 */
export function specialReadable(path: string, signal?: AbortSignal): ReadableStream<Uint8Array> {
  let fh: FileHandle | null = null;
  const close = async () => {
    const h = fh;
    fh = null;
    await h?.close().catch(() => {});
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        fh ??= await openSpecial(path, "r", signal);
        const buf = new Uint8Array(1 << 20);
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) {
          await close();
          controller.close();
        } else controller.enqueue(buf.subarray(0, bytesRead));
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}

/** `sink`, counting the bytes written through it into `count.bytes`. */
export function countingWritable(sink: WritableStream<Uint8Array>, count: { bytes: number }): WritableStream<Uint8Array> {
  const writer = sink.getWriter();
  return new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        await writer.write(chunk);
        count.bytes += chunk.length;
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    },
    { highWaterMark: 1 },
  );
}
