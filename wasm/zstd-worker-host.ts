/**
 * The Worker room: how a compression Worker is made (the factory the core's
 * host registers with {@link setZstdWorkerFactory}). The compressor that
 * runs jobs on such Workers is `parallelCompressStream` (`zstd-mt.ts`); the
 * Worker's own body is `zstd-worker.ts`.
 *
 * @example
 * ```ts
 * setZstdWorkerFactory((url) => new Worker(url, { type: "module" }) as unknown as ZstdWorker);
 * const spawn = workerSpawner();
 * if (spawn !== null) source.pipeThrough(parallelCompressStream(3, 2, spawn));
 * ```
 * @module
 */

/**
 * A Worker as the compressor uses it: the part of the Web Worker API that
 * Deno and Bun have, and that the Node adapter provides over
 * `node:worker_threads`. `ref`/`unref`, where present, let an idle stream's
 * Worker not keep the process alive.
 */
export interface ZstdWorker {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  terminate(): void;
  ref?(): void;
  unref?(): void;
}

/** Makes a {@link ZstdWorker} running the module script at `url` (`zstd-worker.js`). */
export type ZstdWorkerFactory = (url: URL) => ZstdWorker;

/** null: no Worker can be made here, compression runs inline. */
let workerFactory: ZstdWorkerFactory | null = null;

/**
 * Register how compression Workers are made (the core's host seam,
 * `src/host.ts`, registers its host's); `null`, the default, makes every
 * compressor run inline.
 *
 * @example
 * ```ts
 * setZstdWorkerFactory(null); // compress on the caller's thread only
 * ```
 */
export function setZstdWorkerFactory(factory: ZstdWorkerFactory | null): void {
  workerFactory = factory;
}

/**
 * How to make a Worker running the module script `name` (beside this
 * module) with the registered factory, or null where none can be made. The
 * factory is generic: it starts whatever script URL it is given.
 */
export function spawnerFor(name: string): (() => ZstdWorker) | null {
  const factory = workerFactory;
  return factory === null ? null : () => factory(new URL(`./${name}`, import.meta.url));
}

/** How to make a compression Worker here, or null where none can be made. */
export function workerSpawner(): (() => ZstdWorker) | null {
  const factory = workerFactory;
  if (factory === null) return null;
  const url = new URL("./zstd-worker.js", import.meta.url);
  return () => factory(url);
}
