/**
 * Cancellation for long operations. `create`, `save`, `load` and `verify`
 * take an `AbortSignal` (`signal`); these helpers check it in their streaming
 * loops (each chunk reports progress, and the progress hook checks the
 * signal) and around stream reads and writes that may block on a slow peer,
 * so an abort is honoured within one chunk (≤ 1 MiB of I/O) or at once when
 * waiting on a pipe. The library installs no signal handlers: the CLI maps
 * SIGINT/SIGTERM/SIGHUP to an abort.
 *
 * @example
 * ```ts
 * import { throwIfAborted } from "./abort.js";
 * const ac = new AbortController();
 * ac.abort();
 * throwIfAborted(ac.signal); // throws OperationAborted
 * ```
 * @module
 */

import { OperationAborted } from "./errors.js";

/**
 * The error an aborted operation rejects with: the signal's reason when it
 * is already an {@link OperationAborted}, else a new one carrying it.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * ac.abort("SIGINT");
 * abortError(ac.signal).reason; // "SIGINT"
 * ```
 */
export function abortError(signal: AbortSignal): OperationAborted {
  const reason: unknown = signal.reason;
  if (reason instanceof OperationAborted) return reason;
  return new OperationAborted(typeof reason === "string" ? `the operation was aborted (${reason})` : "the operation was aborted", { reason });
}

/**
 * Throw {@link OperationAborted} if `signal` has fired.
 *
 * @example
 * ```ts
 * throwIfAborted(undefined); // no signal: never throws
 * ```
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * A progress callback that first checks `signal`: the streaming loops call
 * it after every chunk, so passing it down makes them abortable.
 *
 * @example
 * ```ts
 * const onProgress = abortingProgress(ac.signal, (n) => bar.update(n));
 * ```
 */
export function abortingProgress<A extends unknown[]>(signal: AbortSignal | undefined, onProgress?: (...args: A) => void): ((...args: A) => void) | undefined {
  if (!signal) return onProgress;
  return (...args: A) => {
    throwIfAborted(signal);
    onProgress?.(...args);
  };
}

/**
 * Settle as `work` does, or reject with {@link OperationAborted} as soon as
 * `signal` fires (the abandoned `work` is left to settle on its own).
 *
 * @example
 * ```ts
 * const r = await raceAbort(reader.read(), signal);
 * ```
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * `source` as a stream whose reads fail with {@link OperationAborted} as
 * soon as `signal` fires, even while waiting for a slow producer (e.g. a
 * throttled pipe on stdin). The source is cancelled on abort.
 *
 * @example
 * ```ts
 * const input = abortableReadable(stdinStream, ac.signal);
 * ```
 */
export function abortableReadable(source: ReadableStream<Uint8Array>, signal: AbortSignal | undefined): ReadableStream<Uint8Array> {
  if (!signal) return source;
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await raceAbort(reader.read(), signal);
        } catch (e) {
          reader.cancel(e).catch(() => {});
          throw e;
        }
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * `sink` as a stream whose writes fail with {@link OperationAborted} as soon
 * as `signal` fires, even while blocked on a slow reader. The sink is aborted
 * on abort.
 *
 * @example
 * ```ts
 * await readable.pipeTo(abortableWritable(stdoutSink, ac.signal));
 * ```
 */
export function abortableWritable(sink: WritableStream<Uint8Array>, signal: AbortSignal | undefined): WritableStream<Uint8Array> {
  if (!signal) return sink;
  const writer = sink.getWriter();
  const fail = (e: unknown) => {
    writer.abort(e).catch(() => {});
    throw e;
  };
  return new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        await raceAbort(writer.write(chunk), signal).catch(fail);
      },
      async close() {
        await raceAbort(writer.close(), signal).catch(fail);
      },
      async abort(reason) {
        await writer.abort(reason);
      },
    },
    { highWaterMark: 1 },
  );
}
