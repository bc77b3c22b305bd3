/**
 * The one place snapbundle loads its own WebAssembly modules (the `.wasm`
 * files that `scripts/build-wasm.mjs` puts beside this module in `dist/wasm/`).
 *
 * A module is located with `new URL("./name.wasm", import.meta.url)` and
 * compiled once. Its bytes are read, in this order, by:
 * 1. the reader an adapter registered with {@link setWasmReader} — the Node
 *    adapter (`src/fs/node.ts`) registers one, because Node's `fetch` does
 *    not read `file:` URLs;
 * 2. `fetch`, which reads `file:` URLs on Deno and Bun (and `http(s):` anywhere);
 * 3. the runtime's own `fs` module where it hands it out without an import
 *    (`process.getBuiltinModule`, Node ≥ 20.16), for code that uses only
 *    `snapbundle/core` on Node.
 * This module imports nothing platform-specific.
 *
 * @example
 * ```ts
 * setWasmReader(async (url) => new Uint8Array(await Deno.readFile(url)));
 * const module = await wasmModule("zstd.wasm");
 * const instance = await WebAssembly.instantiate(module, {});
 * ```
 * @module
 */

/** Reads the bytes of a `.wasm` file given its URL. */
export type WasmReader = (url: URL) => Promise<Uint8Array>;

/** The part of a runtime's built-in `fs` module read here. */
interface RuntimeFs {
  promises: { readFile(url: URL): Promise<Uint8Array> };
}

let reader: WasmReader | undefined;
const compiled = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Register how `.wasm` files are read (adapters call this once). Modules
 * compiled already are kept.
 *
 * @example
 * ```ts
 * import { readFile } from "node:fs/promises";
 * setWasmReader(async (url) => new Uint8Array(await readFile(url)));
 * ```
 */
export function setWasmReader(read: WasmReader): void {
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

async function read(url: URL): Promise<Uint8Array> {
  if (reader !== undefined) return reader(url);
  let why: string;
  try {
    const res = await fetch(url);
    if (res.ok) return new Uint8Array(await res.arrayBuffer());
    why = `HTTP ${res.status}`;
  } catch (e) {
    why = e instanceof Error ? e.message : String(e);
  }
  const builtin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const fs = url.protocol === "file:" ? (builtin?.("fs") as RuntimeFs | undefined) : undefined;
  if (fs !== undefined) return new Uint8Array(await fs.promises.readFile(url));
  throw new Error(
    `cannot read ${url.href} (${why}): this runtime's fetch() does not read it; import "snapbundle" ` +
      `(its Node adapter registers a file reader) or call setWasmReader() from snapbundle's wasm boundary`,
  );
}
