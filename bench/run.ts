/**
 * `npm run bench`: snapbundle save/load against the native pipeline
 * (`tar --sparse --format=gnu | zstd -3 -T1`, `zstd -dc | tar -x --sparse`)
 * on synthetic sparse uppers, on the runtime this script runs on — or, with
 * `--runtimes node,deno,bun`, on each of them one after another.
 *
 * For every case it builds an upper (sparse file: truncate + writes), then
 * measures, one after the other in the same run: create, save and load
 * through the library (each in a fresh child process, so its peak RSS is its
 * own), save and load through the CLI (the whole process), the native
 * pipeline, `sha256sum` of the logical bytes and snapbundle's `verify`
 * (recorded integrity) next to it; every load is checked against that
 * `sha256sum`. It prints a Markdown table per runtime.
 *
 * Flags (environment variables `SNAPBUNDLE_BENCH_<FLAG>` in upper case work too):
 *   --quick                 one small case (256 MiB apparent, 16 MiB text), 1 run
 *   --target                issue 10's target case only: 2 GiB apparent holding
 *                           256 MiB, half text half random (kind "mixed"), 16 extents
 *   --sparse-too            also time the CLI's `save --sparse` and a load of its archive
 *   --scaling               add the scaling rows: apparent 1/4/16 GiB at 64 MiB data;
 *                           data 64 MiB/256 MiB/1 GiB at 4 GiB apparent (1 run each)
 *   --scaling-only          the 1G/64M text case and the scaling rows only
 *   --memory                only the memory check: save and load of a 4 GiB upper
 *                           holding 16 MiB, peak RSS each; fails above --limit (200M)
 *   --apparent 4G --data 64M --kind random|text|zeros|mixed --extents 16
 *                           one custom case instead of the default set
 *   --integrity null,recorded   integrity modes to benchmark (default both)
 *   --runs N                runs per measurement (default 3; scaling rows 1)
 *   --only lib,cli,native   implementations to run (default all)
 *   --runtimes node,deno,bun    run the whole benchmark on each runtime in turn
 *   --work DIR              scratch directory (default: a fresh one in $TMPDIR)
 *   --json FILE             also append one JSON line per measurement to FILE
 *   --keep                  keep the scratch directory
 *
 * @example
 * ```sh
 * npm run bench                        # default set on Node, Deno and Bun
 * node dist/bench/run.js --quick       # small run on Node
 * deno run -A dist/bench/run.js --apparent 16G --data 64M --runs 1
 * bun dist/bench/run.js --memory
 * ```
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, appendFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import {
  BENCH_DIST,
  fmtBytes,
  fmtMs,
  mbps,
  median,
  mustRun,
  parseBytes,
  RUNTIME,
  type Runtime,
  runChild,
  runtimeCommand,
} from "./common.js";
import type { OpResult } from "./op.js";
import { type DataKind, writeUpper } from "./synth.js";

type Impl = "lib" | "cli" | "native";
type Integrity = "null" | "recorded";

/** One benchmark case: an upper shape and how often to repeat. */
interface Case {
  readonly label: string;
  readonly apparent: number;
  readonly data: number;
  readonly kind: DataKind;
  readonly extents: number;
  readonly runs: number;
  /** Integrity modes to benchmark. */
  readonly integrities: readonly Integrity[];
}

/** One measured row. */
interface Row {
  readonly runtime: Runtime;
  readonly case: string;
  readonly apparent: number;
  readonly data: number;
  readonly kind: DataKind;
  readonly integrity: Integrity | "-";
  readonly op: string;
  readonly impl: Impl | "ref";
  readonly runs: number;
  readonly ms: number;
  readonly allMs: number[];
  readonly peakRss: number | null;
  readonly archive: number | null;
  readonly nativeMs?: number;
}

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);

function opt(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  return process.env[`SNAPBUNDLE_BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
}

function has(name: string): boolean {
  if (argv.includes(`--${name}`)) return true;
  const v = process.env[`SNAPBUNDLE_BENCH_${name.toUpperCase()}`];
  return v === "1" || v === "true";
}

const KNOWN = new Set(["quick", "target", "sparse-too", "scaling", "scaling-only", "memory", "keep", "apparent", "data", "kind", "extents", "integrity", "runs", "only", "runtimes", "work", "json", "limit"]);
for (const a of argv) {
  if (a.startsWith("--") && !KNOWN.has(a.slice(2))) {
    process.stderr.write(`bench: unknown flag ${a}\n`);
    process.exit(2);
  }
}

const quick = has("quick");
const memoryMode = has("memory");
const runsFlag = opt("runs") === undefined ? undefined : Number(opt("runs"));
const impls = new Set((opt("only") ?? "lib,cli,native").split(",") as Impl[]);
const integrityFlag = opt("integrity")?.split(",") as Integrity[] | undefined;
const memLimit = parseBytes(opt("limit") ?? "200M");
const jsonOut = opt("json");

function defaultCases(): Case[] {
  const G = 1 << 30;
  const M = 1 << 20;
  const runs = runsFlag ?? 3;
  const both: Integrity[] = integrityFlag ?? ["null", "recorded"];
  const plain: Integrity[] = integrityFlag ?? ["null"];
  if (memoryMode) {
    return [{ label: "memory 4G/16M text", apparent: 4 * G, data: 16 * M, kind: "text", extents: 16, runs: runsFlag ?? 1, integrities: both }];
  }
  if (opt("apparent") || opt("data") || opt("kind") || opt("extents")) {
    const apparent = parseBytes(opt("apparent") ?? "1G");
    const data = parseBytes(opt("data") ?? "64M");
    const kind = (opt("kind") ?? "text") as DataKind;
    const extents = Number(opt("extents") ?? 16);
    return [{ label: `${fmtBytes(apparent)}/${fmtBytes(data)} ${kind}, ${extents} extents`, apparent, data, kind, extents, runs, integrities: both }];
  }
  if (has("target")) {
    return [{ label: "target 2G/256M mixed", apparent: 2 * G, data: 256 * M, kind: "mixed", extents: 16, runs: runsFlag ?? 1, integrities: plain }];
  }
  if (quick) {
    return [{ label: "quick 256M/16M text", apparent: 256 * M, data: 16 * M, kind: "text", extents: 8, runs: runsFlag ?? 1, integrities: both }];
  }
  const cases: Case[] = [
    { label: "1G/64M text", apparent: G, data: 64 * M, kind: "text", extents: 16, runs, integrities: both },
    { label: "1G/64M random", apparent: G, data: 64 * M, kind: "random", extents: 16, runs, integrities: plain },
    { label: "1G/64M zeros-in-data", apparent: G, data: 64 * M, kind: "zeros", extents: 16, runs, integrities: plain },
    { label: "1G/64M text, 4096 extents", apparent: G, data: 64 * M, kind: "text", extents: 4096, runs, integrities: plain },
  ];
  if (has("scaling") || has("scaling-only")) {
    const r = runsFlag ?? 1;
    if (has("scaling-only")) cases.splice(1);
    cases.push(
      { label: "scale: 4G/64M text", apparent: 4 * G, data: 64 * M, kind: "text", extents: 16, runs: r, integrities: both },
      { label: "scale: 16G/64M text", apparent: 16 * G, data: 64 * M, kind: "text", extents: 16, runs: r, integrities: both },
      { label: "scale: 4G/256M text", apparent: 4 * G, data: 256 * M, kind: "text", extents: 16, runs: r, integrities: both },
      { label: "scale: 4G/1G text", apparent: 4 * G, data: G, kind: "text", extents: 16, runs: r, integrities: both },
    );
  }
  return cases;
}

// ---------------------------------------------------------------- orchestration over runtimes

async function runOnRuntimes(list: Runtime[]): Promise<number> {
  const passthrough: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runtimes") {
      i++;
      continue;
    }
    passthrough.push(argv[i]!);
  }
  let status = 0;
  const { spawn } = await import("node:child_process");
  for (const rt of list) {
    const { command, args } = runtimeCommand(rt, `${BENCH_DIST}/run.js`, passthrough);
    process.stderr.write(`\n=== ${rt}: ${command} ${args.join(" ")}\n`);
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(command, args, { stdio: "inherit", env: { ...process.env, SNAPBUNDLE_BENCH_RUNTIMES: "" } });
      child.on("error", reject);
      child.on("close", resolve);
    });
    if (code !== 0) status = 1;
  }
  return status;
}

// ---------------------------------------------------------------- measurements

const hasGnuTime = existsSync("/usr/bin/time");

function log(s: string): void {
  process.stderr.write(`[${RUNTIME}] ${s}\n`);
}

/** A library op in a fresh child of this runtime. */
async function libOp(args: string[]): Promise<OpResult> {
  const { command, args: a } = runtimeCommand(RUNTIME, `${BENCH_DIST}/op.js`, args);
  const r = await mustRun(command, a);
  const line = r.stdout.trim().split("\n").pop()!;
  return JSON.parse(line) as OpResult;
}

/** The CLI as a whole process (wrapped to report its peak RSS). */
async function cliOp(work: string, args: string[]): Promise<{ ms: number; peakRss: number; stdout: string }> {
  const rssFile = `${work}/cli-rss`;
  rmSync(rssFile, { force: true });
  const { command, args: a } = runtimeCommand(RUNTIME, `${BENCH_DIST}/cli-rss.js`, args);
  const r = await mustRun(command, a, { env: { SNAPBUNDLE_BENCH_RSS_FILE: rssFile } });
  return { ms: r.ms, peakRss: Number(readFileSync(rssFile, "utf8")), stdout: r.stdout };
}

/** A shell pipeline, under /usr/bin/time when it exists (peak RSS = largest process of the pipeline). */
async function shellOp(work: string, script: string): Promise<{ ms: number; peakRss: number | null }> {
  const timeFile = `${work}/time-out`;
  if (hasGnuTime) {
    const r = await mustRun("/usr/bin/time", ["-f", "%M", "-o", timeFile, "bash", "-o", "pipefail", "-c", script]);
    return { ms: r.ms, peakRss: Number(readFileSync(timeFile, "utf8").trim().split("\n").pop()) * 1024 };
  }
  const r = await mustRun("bash", ["-o", "pipefail", "-c", script]);
  return { ms: r.ms, peakRss: null };
}

async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { open } = await import("node:fs/promises");
  const h = createHash("sha256");
  const f = await open(path, "r");
  try {
    const buf = new Uint8Array(4 << 20);
    for (;;) {
      const { bytesRead } = await f.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await f.close();
  }
  return h.digest("hex");
}

async function sha256sum(path: string): Promise<{ hex: string; ms: number }> {
  const r = await mustRun("sha256sum", [path]);
  return { hex: r.stdout.split(" ")[0]!, ms: r.ms };
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function benchCase(c: Case, work: string): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = mkdtempSync(`${work}/case-`);
  const upper = `${dir}/upper.img`;
  log(`${c.label}: writing upper (${fmtBytes(c.apparent)} apparent, ${fmtBytes(c.data)} ${c.kind} in ${c.extents} extents)`);
  writeUpper(upper, { apparent: c.apparent, data: c.data, kind: c.kind, extents: c.extents });
  const push = (r: Omit<Row, "runtime" | "case" | "apparent" | "data" | "kind" | "ms"> & { ms?: number }) => {
    const row: Row = { runtime: RUNTIME, case: c.label, apparent: c.apparent, data: c.data, kind: c.kind, ms: r.ms ?? median(r.allMs), ...r };
    rows.push(row);
    if (jsonOut) appendFileSync(jsonOut, `${JSON.stringify(row)}\n`);
    log(`  ${row.op} ${row.impl} integrity=${row.integrity}: ${fmtMs(row.ms)} (${row.allMs.map((m) => m.toFixed(0)).join(", ")} ms), peak RSS ${row.peakRss === null ? "-" : fmtBytes(row.peakRss)}`);
  };

  const refMs: number[] = [];
  let ref = { hex: "", ms: 0 };
  for (let i = 0; i < c.runs; i++) {
    ref = await sha256sum(upper);
    refMs.push(ref.ms);
  }
  push({ integrity: "-", op: "sha256sum", impl: "ref", runs: c.runs, allMs: refMs, peakRss: null, archive: null });

  // Loads are checked against sha256sum's digest; the loaded file is hashed
  // with node:crypto (same SHA-256, ~7x faster than coreutils here).
  const checkUpper = async (path: string, what: string) => {
    const got = { hex: await sha256File(path) };
    if (got.hex !== ref.hex) throw new Error(`${c.label}: ${what}: loaded upper ${path} hashes to ${got.hex}, expected ${ref.hex}`);
  };

  // Native pipeline (independent of integrity): the snapshot directory as GNU sparse tar, zstd -3 -T1.
  let native: { save: number; load: number } | null = null;
  const home = `${dir}/home`;

  for (const integrity of c.integrities) {
    const name = integrity === "recorded" ? "xi" : "x";
    const createArgs = (h: string) => ["create", "--home", h, "--name", name, "--upper", upper, ...(integrity === "recorded" ? ["--integrity"] : [])];
    // create: run 1 makes the snapshot used below; later runs go to scratch homes.
    {
      const ms: number[] = [];
      let rss = 0;
      for (let i = 0; i < c.runs; i++) {
        const h = i === 0 ? home : `${dir}/create-${i}`;
        const r = await libOp(createArgs(h));
        ms.push(r.ms);
        rss = Math.max(rss, r.peakRss);
        if (i > 0) rmSync(h, { recursive: true, force: true });
      }
      if (impls.has("lib")) push({ integrity, op: "create", impl: "lib", runs: c.runs, allMs: ms, peakRss: rss, archive: null });
    }
    const snapDir = `${home}/snapshots/${name}`;

    // verify (recorded integrity only): the sparse SHA-256 of every logical byte, against sha256sum's
    if (integrity === "recorded") {
      for (const impl of ["lib", "cli"] as const) {
        if (!impls.has(impl)) continue;
        const ms: number[] = [];
        let rss = 0;
        for (let i = 0; i < c.runs; i++) {
          const r = impl === "lib" ? await libOp(["verify", "--home", home, "--name", name]) : await cliOp(dir, ["--home", home, "verify", name]);
          ms.push(r.ms);
          rss = Math.max(rss, r.peakRss);
        }
        push({ integrity, op: "verify", impl, runs: c.runs, allMs: ms, peakRss: rss, archive: null, nativeMs: median(refMs) });
      }
    }

    if (native === null && impls.has("native")) {
      const out = `${dir}/native.tar.zst`;
      const save: number[] = [];
      let saveRss = 0;
      for (let i = 0; i < c.runs; i++) {
        rmSync(out, { force: true });
        const r = await shellOp(dir, `tar --sparse --format=gnu -C ${q(`${home}/snapshots`)} -cf - ${q(name)} | zstd -3 -T1 -q > ${q(out)}`);
        save.push(r.ms);
        saveRss = Math.max(saveRss, r.peakRss ?? 0);
      }
      const archive = statSync(out).size;
      push({ integrity: "-", op: "save", impl: "native", runs: c.runs, allMs: save, peakRss: hasGnuTime ? saveRss : null, archive });
      const load: number[] = [];
      let loadRss = 0;
      for (let i = 0; i < c.runs; i++) {
        const dest = `${dir}/native-dest`;
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(dest);
        const r = await shellOp(dir, `zstd -dc -q ${q(out)} | tar -x --sparse -C ${q(dest)}`);
        load.push(r.ms);
        loadRss = Math.max(loadRss, r.peakRss ?? 0);
        if (i === 0) await checkUpper(`${dest}/${name}/upper.ext4`, "native load");
        rmSync(dest, { recursive: true, force: true });
      }
      push({ integrity: "-", op: "load", impl: "native", runs: c.runs, allMs: load, peakRss: hasGnuTime ? loadRss : null, archive: null });
      rmSync(out, { force: true });
      native = { save: median(save), load: median(load) };
    }

    // The same work natively: with recorded integrity, snapbundle verifies the
    // upper's SHA-256 on save and on load, so the native side adds sha256sum.
    const nativeFor = (op: "save" | "load"): number | undefined =>
      native === null ? undefined : native[op] + (integrity === "recorded" ? median(refMs) : 0);
    const archive = `${dir}/${name}.tar.zst`;
    // save: library, then CLI (the library's archive is what the loads read)
    if (impls.has("lib") || impls.has("cli")) {
      const ms: number[] = [];
      let rss = 0;
      for (let i = 0; i < c.runs; i++) {
        rmSync(archive, { force: true });
        const r = await libOp(["save", "--home", home, "--name", name, "--out", archive]);
        ms.push(r.ms);
        rss = Math.max(rss, r.peakRss);
      }
      if (impls.has("lib")) push({ integrity, op: "save", impl: "lib", runs: c.runs, allMs: ms, peakRss: rss, archive: statSync(archive).size, nativeMs: nativeFor("save") });
    }
    if (impls.has("cli")) {
      const out = `${dir}/cli.tar.zst`;
      const ms: number[] = [];
      let rss = 0;
      for (let i = 0; i < c.runs; i++) {
        rmSync(out, { force: true });
        const r = await cliOp(dir, ["--home", home, "save", name, out]);
        ms.push(r.ms);
        rss = Math.max(rss, r.peakRss);
      }
      push({ integrity, op: "save", impl: "cli", runs: c.runs, allMs: ms, peakRss: rss, archive: statSync(out).size, nativeMs: nativeFor("save") });
      rmSync(out, { force: true });
    }
    // --sparse-too: the CLI's `save --sparse` (old-GNU sparse entries, like the
    // native pipeline's) and a CLI load of what it wrote, beside the dense default.
    if (impls.has("cli") && has("sparse-too")) {
      const out = `${dir}/cli-sparse.tar.zst`;
      const saveMs: number[] = [];
      const loadMs: number[] = [];
      let saveRss = 0;
      let loadRss = 0;
      for (let i = 0; i < c.runs; i++) {
        rmSync(out, { force: true });
        const r = await cliOp(dir, ["--home", home, "save", name, out, "--sparse"]);
        saveMs.push(r.ms);
        saveRss = Math.max(saveRss, r.peakRss);
      }
      push({ integrity, op: "save --sparse", impl: "cli", runs: c.runs, allMs: saveMs, peakRss: saveRss, archive: statSync(out).size, nativeMs: nativeFor("save") });
      for (let i = 0; i < c.runs; i++) {
        const h = `${dir}/load-home`;
        rmSync(h, { recursive: true, force: true });
        const r = await cliOp(dir, ["--home", h, "--json", "load", out]);
        loadMs.push(r.ms);
        loadRss = Math.max(loadRss, r.peakRss);
        if (i === 0) await checkUpper(`${(JSON.parse(r.stdout) as { path: string }).path}/upper.ext4`, "cli load of save --sparse");
        rmSync(h, { recursive: true, force: true });
      }
      push({ integrity, op: "load (--sparse archive)", impl: "cli", runs: c.runs, allMs: loadMs, peakRss: loadRss, archive: null, nativeMs: nativeFor("load") });
      rmSync(out, { force: true });
    }
    // load: library, then CLI, each into a fresh home, checked against sha256sum
    for (const impl of ["lib", "cli"] as const) {
      if (!impls.has(impl)) continue;
      const ms: number[] = [];
      let rss = 0;
      for (let i = 0; i < c.runs; i++) {
        const h = `${dir}/load-home`;
        rmSync(h, { recursive: true, force: true });
        let path: string;
        if (impl === "lib") {
          const r = await libOp(["load", "--home", h, "--src", archive]);
          ms.push(r.ms);
          rss = Math.max(rss, r.peakRss);
          path = (r.detail as { path: string }).path;
        } else {
          const r = await cliOp(dir, ["--home", h, "--json", "load", archive]);
          ms.push(r.ms);
          rss = Math.max(rss, r.peakRss);
          path = (JSON.parse(r.stdout) as { path: string }).path;
        }
        if (i === 0) await checkUpper(`${path}/upper.ext4`, `${impl} load`);
        rmSync(h, { recursive: true, force: true });
      }
      push({ integrity, op: "load", impl, runs: c.runs, allMs: ms, peakRss: rss, archive: null, nativeMs: nativeFor("load") });
    }
    rmSync(archive, { force: true });
    rmSync(snapDir, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
  return rows;
}

// ---------------------------------------------------------------- output

function table(rows: readonly Row[]): string {
  const head = "| case | integrity | op | impl | runs | median | data MB/s | × native | peak RSS | archive |";
  const sep = "|---|---|---|---|---:|---:|---:|---:|---:|---:|";
  const lines = rows.map((r) =>
    [
      r.case,
      r.integrity,
      r.op,
      r.impl,
      r.runs,
      fmtMs(r.ms),
      r.op === "sha256sum" || r.op === "verify" ? `${mbps(r.apparent, r.ms)} (logical)` : mbps(r.data, r.ms),
      r.nativeMs ? `${(r.ms / r.nativeMs).toFixed(2)}×` : "",
      r.peakRss === null ? "-" : fmtBytes(r.peakRss),
      r.archive === null ? "" : fmtBytes(r.archive),
    ].join(" | "),
  );
  const foot =
    "\n\n× native: snapbundle's median over the native pipeline's (tar --sparse --format=gnu | zstd -3 -T1; zstd -dc | tar -x --sparse); " +
    "with recorded integrity snapbundle also verifies the upper's SHA-256 on save and load, so those rows compare with native + sha256sum. " +
    "verify compares with sha256sum of the same logical bytes. data MB/s is over data bytes (logical bytes for sha256sum and verify).";
  return [head, sep, ...lines.map((l) => `| ${l} |`)].join("\n") + foot;
}

async function runtimeVersion(): Promise<string> {
  return runtimeName();
}

async function runtimeName(): Promise<string> {
  if (RUNTIME === "deno") return `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;
  if (RUNTIME === "bun") return `bun ${process.versions.bun}`;
  return `node ${process.versions.node}`;
}

async function main(): Promise<number> {
  const rtList = opt("runtimes");
  if (rtList) return runOnRuntimes(rtList.split(",").filter(Boolean) as Runtime[]);

  const work = opt("work") ?? mkdtempSync(`${tmpdir()}/snapbundle-bench-`);
  mkdirSync(work, { recursive: true });
  const t0 = performance.now();
  const loadBefore = loadavg()[0]!;
  const rows: Row[] = [];
  let failed = false;
  try {
    for (const c of defaultCases()) rows.push(...(await benchCase(c, work)));
  } catch (e) {
    failed = true;
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  } finally {
    if (!has("keep") && !opt("work")) rmSync(work, { recursive: true, force: true });
  }
  const version = await runtimeVersion();
  const load = `load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`;
  process.stdout.write(`\n### ${version} — ${new Date().toISOString().slice(0, 10)} — ${((performance.now() - t0) / 1000).toFixed(0)} s total, ${load}\n\n${table(rows)}\n`);
  if (memoryMode) {
    const over = rows.filter((r) => (r.op === "save" || r.op === "load") && (r.impl === "lib" || r.impl === "cli") && r.peakRss !== null && r.peakRss > memLimit);
    process.stdout.write(
      over.length === 0
        ? `\nmemory: PASS — every snapbundle save/load stayed under ${fmtBytes(memLimit)} peak RSS on ${version}\n`
        : `\nmemory: FAIL — over ${fmtBytes(memLimit)}: ${over.map((r) => `${r.op} ${r.impl} (${r.integrity}) ${fmtBytes(r.peakRss!)}`).join(", ")}\n`,
    );
    if (over.length > 0) failed = true;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
