#!/usr/bin/env node
// Builds dist/wasm/blake3.wasm: the official BLAKE3 C library (blake3.c,
// blake3_dispatch.c, blake3_portable.c), our own WebAssembly SIMD hash_many
// (wasm/blake3-simd128.c) and our shim (wasm/blake3-shim.c), compiled to a
// wasm32 reactor with -O3 -msimd128 by @yowasp/clang (LLVM as WebAssembly, from npm).
//
// The C sources (BLAKE3 1.3.1) come from the npm package @c4312/blake3-native
// (its c/ folder), fetched with `npm pack` at a pinned version and checked
// against a pinned sha512; it is never installed. Nothing third-party is
// committed. The result is cached by a hash of every input, as zstd's is.
// Run by scripts/build-wasm.mjs (part of `npm run build`), or on its own.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { buildCached, clangToWasm, clangVersion, editSources, inputsHash, sourceTarball, tree, untar } from "./wasm-sources.mjs";

const BLAKE3_SOURCE = {
  name: "@c4312/blake3-native",
  version: "3.0.0", // ships the official BLAKE3 1.3.1 C sources
  integrity: "sha512-DIabSQJ03G+wVQlO+BtWpVg5PXbfkuPfUJ4vVp26m4nMkpskNvZ8cTQAloim8oLRDBGV+X0YmE7kZXSNf/uqKQ==",
  lib: "package/c/",
};
const C_FILES = ["blake3.c", "blake3_dispatch.c", "blake3_portable.c"];

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ours = ["blake3-shim.c", "blake3-simd128.c"].map((f) => join(root, "wasm", f));
const outPath = join(root, "dist", "wasm", "blake3.wasm");
const cacheDir = join(root, "node_modules", ".cache", "snapbundle-blake3");

const FLAGS = ["--target=wasm32-wasip1", "-O3", "-msimd128", "-DNDEBUG"];
const LINK_FLAGS = ["-mexec-model=reactor", "-Wl,--initial-memory=1114112", "-Wl,--max-memory=268435456", "-Wl,--strip-all"];

/**
 * Edits made to BLAKE3's sources before compiling, each required to match
 * exactly once: with -msimd128, hash_many (the four-chunks-at-a-time step
 * BLAKE3 spends its time in) goes to wasm/blake3-simd128.c, and the SIMD
 * degree the tree code plans for is 4, as on NEON. Without -msimd128 nothing
 * changes and the portable code runs.
 */
const SOURCE_EDITS = [
  [
    "blake3_impl.h",
    "#elif BLAKE3_USE_NEON == 1\n#define MAX_SIMD_DEGREE 4",
    "#elif BLAKE3_USE_NEON == 1 || defined(__wasm_simd128__)\n#define MAX_SIMD_DEGREE 4",
  ],
  [
    "blake3_impl.h",
    "#endif /* BLAKE3_IMPL_H */",
    "void blake3_hash_many_simd128(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,\n" +
      "                              const uint32_t key[8], uint64_t counter, bool increment_counter,\n" +
      "                              uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out);\n" +
      "#endif /* BLAKE3_IMPL_H */",
  ],
  [
    "blake3_dispatch.c",
    "#if BLAKE3_USE_NEON == 1\n  blake3_hash_many_neon(",
    "#if defined(__wasm_simd128__)\n  blake3_hash_many_simd128(inputs, num_inputs, blocks, key, counter,\n" +
      "                           increment_counter, flags, flags_start, flags_end, out);\n  return;\n#endif\n" +
      "#if BLAKE3_USE_NEON == 1\n  blake3_hash_many_neon(",
  ],
  [
    "blake3_dispatch.c",
    "#if BLAKE3_USE_NEON == 1\n  return 4;\n#endif",
    "#if BLAKE3_USE_NEON == 1 || defined(__wasm_simd128__)\n  return 4;\n#endif",
  ],
];

const log = (m) => process.stderr.write(`scripts/build-blake3-wasm.mjs: ${m}\n`);

async function compile() {
  const lib = untar(gunzipSync(sourceTarball(BLAKE3_SOURCE, cacheDir, log)), BLAKE3_SOURCE.lib);
  editSources(lib, SOURCE_EDITS, "BLAKE3");
  const files = { blake3: tree(lib) };
  for (const f of ours) files[f.split("/").at(-1)] = readFileSync(f);
  const sources = [...C_FILES.map((f) => `blake3/${f}`), ...ours.map((f) => f.split("/").at(-1))];
  log(`compiling ${sources.length} C files with @yowasp/clang ${clangVersion()}`);
  return clangToWasm([...FLAGS, ...LINK_FLAGS, "-Iblake3", ...sources], files, "blake3.wasm");
}

await buildCached(join(cacheDir, `blake3-${inputsHash([
    readFileSync(fileURLToPath(import.meta.url)),
    ...ours.map((f) => readFileSync(f)),
    BLAKE3_SOURCE.integrity,
  ]).slice(0, 32)}.wasm`), outPath, compile, log);
