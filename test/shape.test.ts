/**
 * The shape of the house, read statically from the sources (src/ and wasm/,
 * the `.ts` files themselves, not dist/): which module may import what, that
 * no import loop exists at file or folder level, and that rooms stay small.
 *
 * - the core (src/ except src/cli/, the host src/hosts/, the node:fs
 *   adapter src/fs/node.ts and the entry point src/mod.ts that installs
 *   the host) reaches no `node:` module, and neither it nor
 *   wasm/ reads `globalThis.process`, `Worker`, `Deno` or `Bun`;
 * - wasm/ imports nothing from src/; only wasm/ imports hash-wasm;
 * - no import cycle between files, nor between the rooms of any folder (a
 *   folder's files and subfolders, each subfolder as one room);
 * - no file over 450 lines but the exceptions listed here, each with why it
 *   is one concern.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

/** The repository (this suite runs from dist/test/). */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAX_LINES = 450;

/** Files allowed over {@link MAX_LINES}, and why each is one concern. */
const LONG_FILES: Readonly<Record<string, string>> = {
  "src/archive/grammar.ts": "the bundle grammar is one stateful checker: every rule an entry of either layout must pass, in the order a load meets them",
  "src/store.ts": "SnapshotStore is the library's one public face over a home: each method is a short delegation with its documented contract",
  "src/tar/reader.ts": "one tar reader: header, PAX and GNU sparse parsing interleave per entry as the byte stream arrives",
  "src/cli/args.ts": "the CLI's one table of commands and options with their help text; the parser over it is short",
  "src/cli/commands.ts": "one function per CLI command, each a thin print over a library call",
};

/** Every .ts file under `dir` (relative to the repository, `/`-separated). */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out.sort();
}

/** The text without comments and string contents that are not import specifiers. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** The specifiers a module imports or re-exports (static and dynamic). */
function specifiers(text: string): string[] {
  const t = code(text);
  const found: string[] = [];
  for (const m of t.matchAll(/\b(?:import|export)\s+(?:type\s+)?(?:[^"'`;]*?\s+from\s+)?["']([^"']+)["']/g)) found.push(m[1]!);
  for (const m of t.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1]!);
  return found;
}

interface Module {
  readonly path: string;
  readonly text: string;
  /** Imported files of this repository (resolved to .ts). */
  readonly local: string[];
  /** Everything else imported (`node:fs`, `hash-wasm`, …). */
  readonly external: string[];
}

const FILES = [...sources("src"), ...sources("wasm")];
const MODULES = new Map<string, Module>(
  FILES.map((path) => {
    const text = readFileSync(join(ROOT, path), "utf8");
    const local: string[] = [];
    const external: string[] = [];
    for (const s of specifiers(text)) {
      if (s.startsWith(".")) local.push(posix.normalize(posix.join(posix.dirname(path), s)).replace(/\.js$/, ".ts"));
      else external.push(s);
    }
    return [path, { path, text, local, external }];
  }),
);

/** The host side: what may touch the platform. */
const isHostSide = (p: string): boolean => p.startsWith("src/cli/") || p.startsWith("src/hosts/") || p === "src/fs/node.ts" || p === "src/mod.ts";
const CORE = FILES.filter((p) => p.startsWith("src/") && !isHostSide(p));

/** The modules `from` reaches through imports (itself included). */
function reach(from: string): Set<string> {
  const seen = new Set<string>();
  const walk = (p: string): void => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const q of MODULES.get(p)?.local ?? []) walk(q);
  };
  walk(from);
  return seen;
}

/** Every cycle of the graph (as one path each, via Tarjan's strongly connected components of more than one node or a self-loop). */
function cycles(nodes: Iterable<string>, edges: (n: string) => Iterable<string>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || [...edges(v)].includes(v)) found.push(component.sort());
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return found;
}

/** Platform globals the core must not read, in code (comments are not code). */
const PLATFORM_GLOBALS =
  /\bglobalThis\b[^;]*?\b(process|Worker|Deno|Bun)\b|(?<![.\w])(process|Deno|Bun)\s*[.?[]|\bnew\s+Worker\b/;

describe("the shape of the house", () => {
  test("rule: the sources this suite reads are there (it sees src/, wasm/ and their imports)", () => {
    assert.ok(CORE.includes("src/core.ts") && MODULES.has("wasm/mod.ts") && MODULES.has("src/hosts/node.ts"), FILES.join(" "));
    assert.ok(MODULES.get("src/hosts/node.ts")!.external.includes("node:fs"), "the import reader finds node: imports");
    assert.ok(MODULES.get("src/mod.ts")!.local.includes("src/core.ts"), "the import reader finds re-exports");
    assert.ok(PLATFORM_GLOBALS.test(code(MODULES.get("src/hosts/node.ts")!.text)), "the platform-global reader finds the host's");
  });

  test("rule: the core reaches no node: module and no file of the host side (cli/, hosts/, fs/node.ts)", () => {
    const bad: string[] = [];
    for (const file of CORE) {
      for (const p of reach(file)) {
        if (isHostSide(p)) bad.push(`${file} reaches ${p}`);
        for (const s of MODULES.get(p)?.external ?? []) if (s.startsWith("node:")) bad.push(`${file} reaches ${s} (through ${p})`);
      }
    }
    assert.deepEqual([...new Set(bad)], []);
  });

  test("rule: neither the core nor wasm/ reads globalThis.process, Worker, Deno or Bun", () => {
    const bad = [...CORE, ...FILES.filter((p) => p.startsWith("wasm/"))].flatMap((p) => {
      const m = PLATFORM_GLOBALS.exec(code(MODULES.get(p)!.text));
      return m ? [`${p}: ${m[0]}`] : [];
    });
    assert.deepEqual(bad, []);
  });

  test("rule: wasm/ imports nothing from src/ and no node: module; only wasm/ imports hash-wasm", () => {
    const bad: string[] = [];
    for (const m of MODULES.values()) {
      if (m.path.startsWith("wasm/")) {
        for (const q of m.local) if (!q.startsWith("wasm/")) bad.push(`${m.path} imports ${q}`);
        for (const s of m.external) if (s.startsWith("node:")) bad.push(`${m.path} imports ${s}`);
      } else {
        for (const s of m.external) if (s === "hash-wasm" || s.startsWith("hash-wasm/")) bad.push(`${m.path} imports ${s}`);
      }
    }
    assert.deepEqual(bad, []);
    assert.ok(MODULES.get("wasm/sha256.ts")!.external.includes("hash-wasm"), "hash-wasm is found where it is imported");
  });

  test("rule: every import names a file that exists", () => {
    const missing = [...MODULES.values()].flatMap((m) => m.local.filter((q) => !MODULES.has(q)).map((q) => `${m.path} -> ${q}`));
    assert.deepEqual(missing, []);
  });

  test("rule: no import cycle between files", () => {
    assert.deepEqual(cycles(MODULES.keys(), (n) => MODULES.get(n)!.local), []);
  });

  test("rule: no import cycle between the rooms of any folder (each subfolder one room)", () => {
    const folders = new Set<string>([""]);
    for (const f of FILES) for (let d = dirname(f); d !== "."; d = dirname(d)) folders.add(d);
    const found: string[] = [];
    for (const folder of folders) {
      /** The room of `file` in `folder`: its own name, or the subfolder it is in; null when outside. */
      const room = (file: string): string | null => {
        const rel = folder === "" ? file : relative(folder, file);
        if (rel.startsWith("..")) return null;
        const first = rel.split("/")[0]!;
        return folder === "" ? first : `${folder}/${first}`;
      };
      const edges = new Map<string, Set<string>>();
      for (const m of MODULES.values()) {
        const from = room(m.path);
        if (from === null) continue;
        if (!edges.has(from)) edges.set(from, new Set());
        for (const q of m.local) {
          const to = room(q);
          if (to !== null && to !== from) edges.get(from)!.add(to);
        }
      }
      for (const c of cycles(edges.keys(), (n) => edges.get(n) ?? [])) found.push(`${folder || "."}: ${c.join(" <-> ")}`);
    }
    assert.deepEqual(found, []);
  });

  test(`rule: no file in src/ or wasm/ is over ${MAX_LINES} lines, but the listed exceptions`, () => {
    const long = FILES.filter((p) => MODULES.get(p)!.text.split("\n").length > MAX_LINES);
    assert.deepEqual(long.filter((p) => !(p in LONG_FILES)), [], "split these, or list them with why each is one concern");
    assert.deepEqual(Object.keys(LONG_FILES).filter((p) => !long.includes(p)), [], "these are short now: take them off the list");
  });
});
