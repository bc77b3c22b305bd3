#!/usr/bin/env node
// Builds dist/wasm/zstd.wasm: zstd's official C library (lib/common,
// lib/compress, lib/decompress) plus our wasm/zstd-shim.c, compiled to a
// wasm32 reactor with SIMD by @yowasp/clang (LLVM as WebAssembly, from npm).
//
// The C sources come from the npm package zstd-napi (its deps/zstd/lib),
// fetched with `npm pack` at a pinned version and checked against a pinned
// sha512 — the package is never installed, so its native install script
// never runs. Nothing third-party is committed.
//
// The result is cached by a hash of every input (this script, the shim, the
// source package's integrity, the compiler's version): with nothing changed a
// rebuild is a copy. Run: `node scripts/build-wasm.mjs` (part of `npm run build`).
// It then builds dist/wasm/blake3.wasm (scripts/build-blake3-wasm.mjs).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { buildCached, clangToWasm, clangVersion, editSources, inputsHash, sourceTarball, tree, untar } from "./wasm-sources.mjs";

const ZSTD_SOURCE = {
  name: "zstd-napi",
  version: "0.0.13", // ships zstd 1.5.7
  integrity: "sha512-ErGF+Ko1PsbooU6oC/sc/diiWKwVa0kd/5AkFSs7kg5kwcEuOtSzOy3xUOadXQlAVNab9TxsxaUk3hOq3cj/lA==",
  lib: "package/deps/zstd/lib/",
};

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const shimPath = join(root, "wasm", "zstd-shim.c");
const outPath = join(root, "dist", "wasm", "zstd.wasm");
const cacheDir = join(root, "node_modules", ".cache", "snapbundle-zstd");

const FLAGS = [
  "--target=wasm32-wasip1",
  "-O3",
  "-msimd128",
  "-mbulk-memory",
  "-DNDEBUG",
  "-DZSTD_DISABLE_ASM",
  "-DZSTD_NO_TRACE",
  "-DZSTD_LEGACY_SUPPORT=0",
  "-DDEBUGLEVEL=0",
];
/**
 * Edits made to zstd's sources before compiling, each required to match
 * exactly once. One purpose: decode `zstd --long=31` frames (2 GiB windows).
 * zstd caps windows at 2^30 when size_t is 32 bits, as on wasm32, because a
 * 32-bit process rarely has 2 GiB of contiguous address space; a wasm32
 * module has 4 GiB of its own. Its decoder already reads long offsets in two
 * parts on 32-bit builds (at most 25 bits of the bit container per read); a
 * 31-bit offset needs 6 bits in the second part instead of 5, which is what
 * LONG_OFFSETS_MAX_EXTRA_BITS_32 becomes, and its asserts are moved with it.
 * A 2 GiB window makes the streaming decoder's ring buffer a little over
 * 2 GiB, and the room left in it was passed down as a block's destination
 * capacity, which zstd adds to a pointer as a ptrdiff_t (32 bits here, so it
 * turned negative and every compressed block was "too small"); a block never
 * writes more than 128 KiB, so that capacity is capped at 1 GiB.
 * Compression is unaffected: snapbundle sets only a level (windows ≤ 2^27)
 * and the content checksum, never a window log.
 */
const SOURCE_EDITS = [
  ["zstd.h", "#define ZSTD_WINDOWLOG_MAX_32    30", "#define ZSTD_WINDOWLOG_MAX_32    31"],
  [
    "decompress/zstd_decompress_block.c",
    "ZSTD_STATIC_ASSERT(LONG_OFFSETS_MAX_EXTRA_BITS_32 == 5);",
    "ZSTD_STATIC_ASSERT(LONG_OFFSETS_MAX_EXTRA_BITS_32 == 6);",
  ],
  [
    "decompress/zstd_decompress.c",
    "size_t const dstSize = isSkipFrame ? 0 : zds->outBuffSize - zds->outStart;",
    "size_t const dstSize = isSkipFrame ? 0 : MIN(zds->outBuffSize - zds->outStart, (size_t)1 << 30);",
  ],
  ["compress/zstd_compress.c", "ZSTD_STATIC_ASSERT(ZSTD_WINDOWLOG_MAX_32 <= 30);", "ZSTD_STATIC_ASSERT(ZSTD_WINDOWLOG_MAX_32 <= 31);"],
];

const LINK_FLAGS = ["-mexec-model=reactor", "-Wl,--initial-memory=2097152", "-Wl,--max-memory=4294967296", "-Wl,--strip-all"];

const log = (m) => process.stderr.write(`scripts/build-wasm.mjs: ${m}\n`);

async function compile() {
  const lib = untar(gunzipSync(sourceTarball(ZSTD_SOURCE, cacheDir, log)), ZSTD_SOURCE.lib);
  editSources(lib, SOURCE_EDITS, "zstd");
  const pick = (dirs) => Object.keys(lib).filter((p) => new RegExp(`^(${dirs})/[^/]+\\.c$`).test(p)).sort();
  const sources = [
    "shim.c",
    ...pick("common|compress|decompress")
      .filter((p) => !/(zstdmt_compress|pool|threading)\.c$/.test(p))
      .map((p) => `zstd/${p}`),
  ];
  const files = { zstd: tree(lib), "shim.c": readFileSync(shimPath) };
  log(`compiling ${sources.length} C files with @yowasp/clang ${clangVersion()} (a minute or two)`);
  // zstd's sources include "../zstd.h"; the toolchain's virtual filesystem
  // resolves such paths through the include path (-Izstd), not beside the
  // including file.
  return clangToWasm([...FLAGS, ...LINK_FLAGS, "-Izstd", ...sources], files, "zstd.wasm");
}

await buildCached(join(cacheDir, `zstd-${inputsHash([
    readFileSync(fileURLToPath(import.meta.url)),
    readFileSync(shimPath),
    ZSTD_SOURCE.integrity,
    FLAGS.join(" "),
    LINK_FLAGS.join(" "),
    JSON.stringify(SOURCE_EDITS),
  ]).slice(0, 32)}.wasm`), outPath, compile, log);

await import("./build-blake3-wasm.mjs");
