/**
 * A source stream that reports how it is used: how many chunks were pulled
 * from it (it reads nothing ahead: highWaterMark 0) and every cancel reason,
 * optionally failing at a given pull. For the byte-stream plumbing tests.
 * @module
 */

import { concatBytes } from "./tar-craft.js";

/** A probed source and what happened to it so far. */
export interface ProbedSource {
  readonly stream: ReadableStream<Uint8Array>;
  /** Chunks handed out so far. */
  readonly pulls: () => number;
  /** Reasons it was cancelled with, in order. */
  readonly cancels: unknown[];
}

/**
 * `bytes` in chunks of `chunk` bytes (the last one shorter). `failAt`: the
 * 1-based pull that errors the stream with `error` instead of giving a chunk.
 */
export function probedSource(bytes: Uint8Array, chunk: number, options: { failAt?: number; error?: Error } = {}): ProbedSource {
  let at = 0;
  let pulls = 0;
  const cancels: unknown[] = [];
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (options.failAt === pulls + 1) {
          controller.error(options.error ?? new Error("probe: read failed"));
          return;
        }
        if (at >= bytes.length) {
          controller.close();
          return;
        }
        pulls++;
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
      cancel(reason) {
        cancels.push(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulls: () => pulls, cancels };
}

/** Every chunk a stream gives, read to its end. */
export async function readChunks(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) return out;
    out.push(r.value);
  }
}

/** All of a stream's bytes, concatenated. */
export async function readBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return concatBytes(...(await readChunks(stream)));
}
