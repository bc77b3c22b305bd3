// Helpers of the WebAssembly builds (scripts/build-wasm.mjs and
// scripts/build-blake3-wasm.mjs): C sources come from npm packages fetched
// with `npm pack` at a pinned version and checked against a pinned sha512,
// never installed; they are read straight from the tarball.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** A cache key: sha256 of `parts`, this file and the compiler's version. */
export function inputsHash(parts) {
  const h = createHash("sha256");
  for (const part of [...parts, readFileSync(fileURLToPath(import.meta.url)), clangVersion()]) {
    h.update(part);
    h.update("\0");
  }
  return h.digest("hex");
}

/** The version of @yowasp/clang installed (part of every build's cache key). */
export function clangVersion() {
  const pkg = JSON.parse(readFileSync(join(root, "node_modules", "@yowasp", "clang", "package.json"), "utf8"));
  return pkg.version;
}

/** A source package's tarball: from the cache, else `npm pack` (no install, no scripts); integrity checked. */
export function sourceTarball(source, cacheDir, log) {
  const file = join(cacheDir, `${source.name.replace(/^@/, "").replace("/", "-")}-${source.version}.tgz`);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    log(`fetching ${source.name}@${source.version} with npm pack`);
    const npmCli = process.env.npm_execpath;
    const [cmd, pre] = npmCli && npmCli.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
    execFileSync(
      cmd,
      [...pre, "pack", `${source.name}@${source.version}`, "--pack-destination", cacheDir, "--silent", "--ignore-scripts"],
      { stdio: ["ignore", "ignore", "inherit"], shell: cmd === "npm" && process.platform === "win32" },
    );
  }
  const bytes = readFileSync(file);
  const got = "sha512-" + createHash("sha512").update(bytes).digest("base64");
  if (got !== source.integrity) {
    throw new Error(`${file}: integrity ${got} is not the pinned ${source.integrity}; delete it and retry`);
  }
  return bytes;
}

/** The regular files under `prefix` in a (ustar/GNU) tar, as { relativePath: bytes }. */
export function untar(tar, prefix) {
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

/** A @yowasp/clang file tree { dir: { sub: {...}, ... } } from flat relative paths. */
export function tree(files) {
  const t = {};
  for (const [path, bytes] of Object.entries(files)) {
    const parts = path.split("/");
    let dir = t;
    for (const p of parts.slice(0, -1)) dir = dir[p] ??= {};
    dir[parts.at(-1)] = bytes;
  }
  return t;
}

/** Apply source edits [file, from, to] to untarred sources; each must match exactly once. */
export function editSources(lib, edits, label) {
  for (const [file, from, to] of edits) {
    const text = lib[file] === undefined ? undefined : Buffer.from(lib[file]).toString("utf8");
    const count = text === undefined ? 0 : text.split(from).length - 1;
    if (count !== 1) throw new Error(`${label} source edit: ${file} holds "${from}" ${count} times, not once`);
    lib[file] = new TextEncoder().encode(text.replace(from, to));
  }
}

/** Run clang (@yowasp/clang) over `files`, and check the module `name` it wrote imports nothing. */
export async function clangToWasm(args, files, name) {
  const { runClang } = await import("@yowasp/clang");
  let out;
  try {
    out = await runClang(["clang", ...args, "-o", name], files);
  } catch (e) {
    throw new Error(`clang failed (exit code ${e?.code ?? "?"}); its messages are above`);
  }
  const wasm = out[name];
  if (!(wasm instanceof Uint8Array)) throw new Error(`clang produced no ${name}`);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm));
  if (imports.length > 0) {
    throw new Error(`${name} must import nothing, but imports ${imports.map((i) => `${i.module}.${i.name}`).join(", ")}`);
  }
  return wasm;
}

/** `cached` built by `compile` unless it exists, then copied to `outPath` (each by a rename). */
export async function buildCached(cached, outPath, compile, log) {
  if (!existsSync(cached)) {
    const wasm = await compile();
    mkdirSync(dirname(cached), { recursive: true });
    writeFileSync(cached + ".tmp", wasm);
    renameSync(cached + ".tmp", cached);
    log(`built ${cached} (${wasm.length} bytes)`);
  }
  mkdirSync(dirname(outPath), { recursive: true });
  copyFileSync(cached, outPath + ".tmp");
  renameSync(outPath + ".tmp", outPath);
}
