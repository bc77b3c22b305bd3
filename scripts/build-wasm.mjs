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

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

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

/** Apply {@link SOURCE_EDITS} to the untarred sources; each must match exactly once. */
function editSources(lib) {
  for (const [file, from, to] of SOURCE_EDITS) {
    const text = lib[file] === undefined ? undefined : Buffer.from(lib[file]).toString("utf8");
    const count = text === undefined ? 0 : text.split(from).length - 1;
    if (count !== 1) throw new Error(`zstd source edit: ${file} holds "${from}" ${count} times, not once`);
    lib[file] = new TextEncoder().encode(text.replace(from, to));
  }
}

const LINK_FLAGS = ["-mexec-model=reactor", "-Wl,--initial-memory=2097152", "-Wl,--max-memory=4294967296", "-Wl,--strip-all"];

const log = (m) => process.stderr.write(`scripts/build-wasm.mjs: ${m}\n`);

function clangVersion() {
  const pkg = JSON.parse(readFileSync(join(root, "node_modules", "@yowasp", "clang", "package.json"), "utf8"));
  return pkg.version;
}

function inputsHash() {
  const h = createHash("sha256");
  for (const part of [
    readFileSync(fileURLToPath(import.meta.url)),
    readFileSync(shimPath),
    ZSTD_SOURCE.integrity,
    clangVersion(),
    FLAGS.join(" "),
    LINK_FLAGS.join(" "),
    JSON.stringify(SOURCE_EDITS),
  ]) {
    h.update(part);
    h.update("\0");
  }
  return h.digest("hex");
}

/** The zstd-napi tarball: from the cache, else `npm pack` (no install, no scripts); integrity checked. */
function sourceTarball() {
  const file = join(cacheDir, `${ZSTD_SOURCE.name}-${ZSTD_SOURCE.version}.tgz`);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    log(`fetching ${ZSTD_SOURCE.name}@${ZSTD_SOURCE.version} with npm pack`);
    const npmCli = process.env.npm_execpath;
    const [cmd, pre] = npmCli && npmCli.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
    execFileSync(
      cmd,
      [...pre, "pack", `${ZSTD_SOURCE.name}@${ZSTD_SOURCE.version}`, "--pack-destination", cacheDir, "--silent", "--ignore-scripts"],
      { stdio: ["ignore", "ignore", "inherit"], shell: cmd === "npm" && process.platform === "win32" },
    );
  }
  const bytes = readFileSync(file);
  const got = "sha512-" + createHash("sha512").update(bytes).digest("base64");
  if (got !== ZSTD_SOURCE.integrity) {
    throw new Error(`${file}: integrity ${got} is not the pinned ${ZSTD_SOURCE.integrity}; delete it and retry`);
  }
  return bytes;
}

/** The regular files under `prefix` in a (ustar/GNU) tar, as { relativePath: bytes }. */
function untar(tar, prefix) {
  const files = {};
  let longName = null;
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (o, n) => {
      const s = header.subarray(o, o + n);
      const end = s.indexOf(0);
      return Buffer.from(end < 0 ? s : s.subarray(0, end)).toString("utf8");
    };
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 0x30);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") {
      longName = Buffer.from(body).toString("utf8").replace(/\0+$/, "");
      continue;
    }
    const ustarPrefix = field(345, 155);
    const name = longName ?? (ustarPrefix ? `${ustarPrefix}/${field(0, 100)}` : field(0, 100));
    longName = null;
    if ((type === "0" || type === "\0") && name.startsWith(prefix)) files[name.slice(prefix.length)] = Uint8Array.from(body);
  }
  return files;
}

/** A @yowasp/clang file tree { zstd: { common: {...}, ... } } from flat relative paths. */
function tree(files) {
  const t = {};
  for (const [path, bytes] of Object.entries(files)) {
    const parts = path.split("/");
    let dir = t;
    for (const p of parts.slice(0, -1)) dir = dir[p] ??= {};
    dir[parts.at(-1)] = bytes;
  }
  return t;
}

async function compile() {
  const lib = untar(gunzipSync(sourceTarball()), ZSTD_SOURCE.lib);
  editSources(lib);
  const pick = (dirs) => Object.keys(lib).filter((p) => new RegExp(`^(${dirs})/[^/]+\\.c$`).test(p)).sort();
  const sources = [
    "shim.c",
    ...pick("common|compress|decompress")
      .filter((p) => !/(zstdmt_compress|pool|threading)\.c$/.test(p))
      .map((p) => `zstd/${p}`),
  ];
  const files = { zstd: tree(lib), "shim.c": readFileSync(shimPath) };
  const { runClang } = await import("@yowasp/clang");
  log(`compiling ${sources.length} C files with @yowasp/clang ${clangVersion()} (a minute or two)`);
  // zstd's sources include "../zstd.h"; the toolchain's virtual filesystem
  // resolves such paths through the include path (-Izstd), not beside the
  // including file.
  let out;
  try {
    out = await runClang(["clang", ...FLAGS, ...LINK_FLAGS, "-Izstd", ...sources, "-o", "zstd.wasm"], files);
  } catch (e) {
    throw new Error(`clang failed (exit code ${e?.code ?? "?"}); its messages are above`);
  }
  const wasm = out["zstd.wasm"];
  if (!(wasm instanceof Uint8Array)) throw new Error("clang produced no zstd.wasm");
  const module = new WebAssembly.Module(wasm);
  const imports = WebAssembly.Module.imports(module);
  if (imports.length > 0) {
    throw new Error(`zstd.wasm must import nothing, but imports ${imports.map((i) => `${i.module}.${i.name}`).join(", ")}`);
  }
  return wasm;
}

const hash = inputsHash();
const cached = join(cacheDir, `zstd-${hash.slice(0, 32)}.wasm`);
if (!existsSync(cached)) {
  const wasm = await compile();
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(cached + ".tmp", wasm);
  renameSync(cached + ".tmp", cached);
  log(`built ${cached} (${wasm.length} bytes)`);
}
mkdirSync(dirname(outPath), { recursive: true });
copyFileSync(cached, outPath + ".tmp");
renameSync(outPath + ".tmp", outPath);
