/**
 * The package version, read from `package.json` next to the installed code.
 * Found by walking up from this module's URL (`dist/src/cli/` → package
 * root), which works the same on Node, Deno and Bun and whether the code runs
 * from `dist/` or from source; no JSON import attribute is needed.
 *
 * @example
 * ```ts
 * import { packageVersion } from "./version.js";
 * console.log(packageVersion()); // "0.1.0"
 * ```
 * @module
 */

import { readFileSync } from "node:fs";

/**
 * The `version` of the nearest `package.json` named `snapbundle` above this module.
 *
 * @example
 * ```ts
 * console.log(packageVersion()); // "0.1.0"
 * ```
 */
export function packageVersion(): string {
  for (let up = "./"; up.length < 40; up += "../") {
    let text: string;
    try {
      text = readFileSync(new URL(`${up}package.json`, import.meta.url), "utf8");
    } catch {
      continue;
    }
    const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (pkg.name === "snapbundle" && typeof pkg.version === "string") return pkg.version;
  }
  throw new Error("cannot find snapbundle's package.json above " + import.meta.url);
}
