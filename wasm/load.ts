/**
 * The one place snapbundle loads its own WebAssembly modules (the `.wasm`
 * files that `scripts/build-wasm.mjs` puts beside this module in `dist/wasm/`).
 *
 * A module is located with `new URL("./name.wasm", import.meta.url)` and
 * compiled once. Its bytes are read only by the reader an adapter registered
 * with {@link setWasmReader}: the core's host seam (`src/host.ts`) registers
 * its host's, and `snapbundle` installs the Node/Deno/Bun host; code that
 * uses only `snapbundle/core` installs its own. Nothing is read any other way (no `fetch`, no runtime
 * `fs` module): this module, like the rest of the core, reaches no platform
 * API, and without a reader loading fails with a {@link WasmError}
 * (code `unavailable`) saying what to install.
 *
 * @example
 * ```ts
 * setWasmReader(async (url) => new Uint8Array(await Deno.readFile(url)));
 * const module = await wasmModule("zstd.wasm");
 * const instance = await WebAssembly.instantiate(module, {});
 * ```
 * @module
 */

import { WasmError } from "./error.js";

/** Reads the bytes of a `.wasm` file given its URL. */
export type WasmReader = (url: URL) => Promise<Uint8Array>;

let reader: WasmReader | undefined;
const compiled = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Register how `.wasm` files are read: the only way they are read
 * (`undefined`: none). The core's host seam (`src/host.ts`, `installHost`)
 * calls this with its host's `readWasm`. Modules compiled already are kept.
 *
 * @example
 * ```ts
 * import { setWasmReader } from "./load.js"; // snapbundle's host seam calls it: installHost({ readWasm })
 * setWasmReader(async (url) => new Uint8Array(await Deno.readFile(url)));
 * ```
 */
export function setWasmReader(read: WasmReader | undefined): void {
  reader = read;
}

/**
 * The compiled module `name` (a file beside this module), compiled on first
 * use; a failed attempt is not remembered, so a later call retries.
 *
 * @example
 * ```ts
 * const { exports } = await WebAssembly.instantiate(await wasmModule("zstd.wasm"), {});
 * ```
 */
export function wasmModule(name: string): Promise<WebAssembly.Module> {
  let m = compiled.get(name);
  if (m === undefined) {
    m = compile(new URL(`./${name}`, import.meta.url));
    compiled.set(name, m);
    m.catch(() => compiled.delete(name));
  }
  return m;
}

async function compile(url: URL): Promise<WebAssembly.Module> {
  return WebAssembly.compile((await read(url)) as BufferSource);
}

/**
 * The bytes of the module `name` (a file beside this module), read through
 * the registered reader each time: for a Worker, which compiles them itself
 * (no runtime is required to pass a compiled module to a Worker).
 *
 * @example
 * ```ts
 * worker.postMessage({ wasm: await wasmBytes("zstd.wasm") });
 * ```
 */
export function wasmBytes(name: string): Promise<Uint8Array> {
  return read(new URL(`./${name}`, import.meta.url));
}

async function read(url: URL): Promise<Uint8Array> {
  if (reader !== undefined) return reader(url);
  throw new WasmError(
    "unavailable",
    `cannot read ${url.href}: no reader of snapbundle's .wasm files is registered (setWasmReader)`,
  );
}
