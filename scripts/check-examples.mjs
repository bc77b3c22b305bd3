#!/usr/bin/env node
/**
 * Type-check every `@example` block in src/ and wasm/.
 *
 * Each block becomes a small TypeScript module (in dist/examples/): its
 * `import` lines stay at the top ("snapbundle" and "snapbundle/core" mean
 * src/mod.ts and src/core.ts), every export of the module it documents is
 * imported for it, and the rest of the block is the body of an async
 * function. Names the example uses without importing them are imported from
 * the module that exports them (its own module first, then `src/mod.ts`, then
 * any other module of src/ or wasm/). An example may also use the names of
 * the context it is written in (CONTEXT below: a filesystem `fs`, a `store`,
 * a `layout`, …), typed `any`. Any other unknown name is an error, so an
 * example that calls a function that no longer exists fails. `…` stands for
 * elided code and is read as a comment. Then the whole set is compiled with
 * the project's compiler options; every diagnostic names the source file and
 * line of the example.
 *
 * Usage: node scripts/check-examples.mjs [--list]   (exit 1 on any error)
 * Also exported: checkExamples(repo) → { examples, errors }.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

/** Names an example may use from the context it is written in (typed any). */
export const CONTEXT = [
  "fs", "store", "layout", "home", "dir", "root", "path", "stage", "lease", "owner", "info", "policy", "probe",
  "snap", "snapshot", "snapshots", "manifest", "descriptor", "bytes", "data", "chunk", "chunks", "source", "sink",
  "stream", "readable", "writable", "reader", "writer", "h", "handle", "out", "tar", "entry", "entries", "archive",
  "contents", "label", "signal", "ac", "controller", "options", "size", "result", "image", "metadata", "upper", "e",
  "err", "error", "args", "argv", "io", "stdio", "stdoutSink", "stderr", "stdout", "bundle", "plan", "journal",
  "undo", "log", "cache", "key", "digest", "ref", "name", "vol", "volume", "offset", "length", "n", "buf", "segments",
  "map", "sparseMap", "inventory", "members", "member", "kind", "place", "grammar", "state", "target", "targets",
  "staged", "imported", "head", "parent", "child", "payload", "file", "files", "url", "text", "json", "value",
  "worker", "compressor", "decoder", "encoder", "frame", "level", "window", "total", "progress", "onProgress", "t0",
  "expected", "actual", "hasher", "zstd", "inner", "outer", "fsmeta", "layers", "layer", "vmdk", "ctx", "context",
  "input", "output", "spec", "cfg", "config", "msg", "message", "code", "rule", "op", "ops", "now", "ms", "ttl",
  "report", "summary", "problems", "item", "items", "count", "limit", "lock", "ranges", "range", "run", "runs",
  "extents", "extent", "tree", "node", "nodes", "leaf", "leaves", "root06", "inv", "desc", "view", "block", "blocks",
  "header", "headers", "pax", "records", "record", "gnu", "ustar", "mode", "flags", "fd", "stat", "stats", "line",
  "lines", "cmd", "command", "argvRest", "parsed", "token", "tokens", "pid", "host", "moves", "chain", "raw", "env",
  "p", "pretty", "draft", "m", "computed", "body", "write", "send", "fail", "headerBlock", "src", "storedTotal",
  "truncated", "fileText", "promote", "Deno", "Bun", "bar", "stdinStream", "manifestPlace", "parsedManifest",
  "collect", "carried", "archivePath", "observed", "hex", "encodedSize", "apparentSize", "stored", "fileWritable",
  "bytesOfZstdWasm", "readMetadata", "positionals", "values", "readAt", "imageProblem", "otherStore", "layerStreams",
];

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith(".ts") && !d.name.endsWith(".d.ts") ? [join(dir, d.name)] : []
  );
}

/** Every `@example` fenced block of `file`: { line, code }. */
export function examplesOf(text) {
  const out = [];
  const re = /@example[^\n]*\n((?:\s*\*[^\n]*\n)*?)\s*\*\s*```(?:ts|typescript|js)?\s*\n([\s\S]*?)\n\s*\*\s*```/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const start = m.index + m[0].indexOf("```");
    const line = text.slice(0, start).split("\n").length + 1;
    const code = m[2].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n");
    out.push({ line, code });
  }
  return out;
}

function exportNames(program, checker, file) {
  const sf = program.getSourceFile(file);
  const sym = sf && checker.getSymbolAtLocation(sf);
  if (!sym) return { values: [], types: [] };
  const values = [];
  const types = [];
  for (const e of checker.getExportsOfModule(sym)) {
    const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
    if (target.flags & ts.SymbolFlags.Value) values.push(e.name);
    else types.push(e.name);
  }
  return { values, types };
}

/** Check every example; resolves the number of examples and the error messages. */
export function checkExamples(root = repo) {
  const sources = [...walk(join(root, "src")), ...walk(join(root, "wasm"))].sort();
  const cfg = ts.parseJsonConfigFileContent(ts.readConfigFile(join(root, "tsconfig.json"), ts.sys.readFile).config, ts.sys, root);
  // fragments over context values of type any: their callbacks' parameters are any too
  const options = { ...cfg.options, noEmit: true, declaration: false, noUnusedLocals: false, noUnusedParameters: false, noImplicitAny: false };
  const base = ts.createProgram(sources, options);
  const checker = base.getTypeChecker();
  const exportsOf = new Map(sources.map((f) => [f, exportNames(base, checker, f)]));
  const order = [join(root, "src", "mod.ts"), ...sources];
  /** The module exporting `name` (its own module, then src/mod.ts, then any), as value or type. */
  const exporter = (name, own) => {
    for (const f of [own, ...order]) {
      const e = exportsOf.get(f);
      if (e?.values.includes(name)) return { file: f, type: false };
      if (e?.types.includes(name)) return { file: f, type: true };
    }
    return null;
  };
  const outDir = join(root, "dist", "examples");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const generated = new Map(); // generated file -> { source, line, bodyStart }
  let count = 0;
  for (const file of sources) {
    const examples = examplesOf(readFileSync(file, "utf8"));
    if (examples.length === 0) continue;
    const { values, types } = exportNames(base, checker, file);
    examples.forEach(({ line, code }, i) => {
      count++;
      const rel = relative(root, file);
      const genName = `${rel.replace(/[\/.]/g, "_")}_${i}.ts`;
      const gen = join(outDir, genName);
      const toModule = (spec) => {
        if (spec === "snapbundle") return relative(outDir, join(root, "src", "mod.js")).replace(/^(?!\.)/, "./");
        if (spec === "snapbundle/core") return relative(outDir, join(root, "src", "core.js")).replace(/^(?!\.)/, "./");
        if (spec.startsWith("./") || spec.startsWith("../")) return relative(outDir, join(dirname(file), spec)).replace(/^(?!\.)/, "./");
        // a bare name (a package, node:…) stays as written
        return spec;
      };
      const importLines = [];
      const body = [];
      for (const l of code.replace(/\(…\)/g, "(...(0 as any))").replace(/…/g, "/* … */").split("\n")) {
        if (/^\s*import\s/.test(l)) importLines.push(l.replace(/from\s+"([^"]+)"/, (_, s) => `from "${toModule(s)}"`));
        else body.push(l);
      }
      const own = new Set(importLines.join("\n").match(/[A-Za-z_$][\w$]*/g) ?? []);
      const used = new Set(body.join("\n").replace(/\.\.\./g, "   ").replace(/\/\/[^\n]*|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, " ").match(/(?<![\w$.])[A-Za-z_$][\w$]*/g) ?? []);
      const byModule = new Map();
      for (const name of used) {
        if (own.has(name)) continue;
        const x = exporter(name, file);
        if (x === null) continue;
        const spec = "./" + relative(outDir, x.file).replace(/\.ts$/, ".js");
        const list = byModule.get(spec) ?? [];
        list.push(x.type ? `type ${name}` : name);
        byModule.set(spec, list);
      }
      const selfImport = [...byModule].map(([spec, names]) => `import { ${names.sort().join(", ")} } from "${spec.replace(/^\.\/(?=\.)/, "")}";`);
      const auto = [...byModule.values()].flat();
      const declared = CONTEXT.filter((n) => !own.has(n) && !auto.includes(n) && !auto.includes(`type ${n}`));
      const head = [
        "// generated by scripts/check-examples.mjs — do not edit",
        ...importLines,
        ...selfImport,
        ...declared.map((n) => `declare let ${n}: any;`),
        "export async function example(): Promise<void> {",
      ];
      writeFileSync(gen, [...head, ...body, "}", ""].join("\n"));
      generated.set(gen, { source: rel, line, bodyStart: head.length + 1 });
    });
  }
  const program = ts.createProgram([...generated.keys()], options);
  const errors = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const f = d.file?.fileName;
    const g = f && generated.get(f);
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (!g) {
      errors.push(`${f ?? "?"}: ${msg}`);
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const at = line + 1 - g.bodyStart;
    errors.push(`${g.source}:${g.line + Math.max(0, at)} (@example): ${msg}`);
  }
  return { examples: count, errors: [...new Set(errors)] };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { examples, errors } = checkExamples();
  for (const e of errors) console.error(e);
  console.log(`${examples} @example blocks, ${errors.length} errors`);
  process.exit(errors.length ? 1 : 0);
}
