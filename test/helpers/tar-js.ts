/**
 * Loads the `tar-js` devDependency (CommonJS, untyped) the same way on Node,
 * Deno and Bun: through `createRequire`.
 * @module
 */

import { createRequire } from "node:module";

/** The tar-js archive builder: `append` returns the whole archive so far (zero-padded). */
export interface TarJs {
  append(path: string, input: Uint8Array, opts?: { mode?: number; mtime?: number; uid?: number; gid?: number }): Uint8Array;
  written: number;
}

const require = createRequire(import.meta.url);
const TarJsCtor = require("tar-js") as new (recordsPerBlock?: number) => TarJs;

/** A new tar-js archive. */
export function newTarJs(): TarJs {
  return new TarJsCtor();
}
