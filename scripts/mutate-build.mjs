// Build step of a Stryker sandbox (see stryker.config.mjs): compile the
// instrumented TypeScript, and take zstd.wasm from the checkout's own build,
// given as the first argument (the sandbox has no toolchain to build it with).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const [wasm] = process.argv.slice(2);
if (!wasm) throw new Error("usage: node scripts/mutate-build.mjs <path of a built dist/wasm/zstd.wasm>");
const tsc = createRequire(wasm).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { stdio: "inherit" });
mkdirSync("dist/wasm", { recursive: true });
copyFileSync(wasm, "dist/wasm/zstd.wasm");
