/**
 * `npm run bench`: snapbundle against the real thing, side by side, through
 * each tool's CLI (start-up included): microsandbox's own `msb` 0.6.18 (the
 * npm devDependency `microsandbox`; skipped with a message where its platform
 * package is missing), snapbundle on Node, Deno and Bun, and the native pipe
 * (`tar --sparse --format=gnu | zstd -3 -T1`, `zstd -dc | tar -x --sparse`).
 *
 * For each case it writes a sparse upper (`synth.ts`, 4 MiB pieces
 * alternating text and random), creates a snapshot of it with recorded
 * integrity in the 0.6 layout (`snapbundle create --layout snapshot
 * --integrity`: msb-file-merkle-blake3-v1), indexes it for msb
 * (`msb snapshot reindex`) and lets msb save the bundle every load reads.
 * Then, one operation at a time, the tools take turns (msb, node, deno, bun,
 * native, msb, node, …) for `--runs` rounds, so a machine that slows down
 * slows them all; each run's wall time and peak RSS (`/usr/bin/time -v`'s
 * maximum resident set) are kept and the median printed.
 *
 * - verify: `msb snapshot verify NAME` / `snapbundle verify NAME` (the Merkle
 *   root over the upper; native: `b3sum` of the logical bytes, a plain
 *   BLAKE3 of every byte, as the nearest native yardstick).
 * - save: `msb snapshot save NAME OUT` / `snapbundle save NAME OUT` (both
 *   write the 0.6 layout with a sparse payload entry).
 * - load: msb's bundle into an empty home: `msb snapshot load` (checks no
 *   payload integrity) / `snapbundle load` (checks the recorded Merkle root
 *   on the bytes as it writes them); native: the native archive unpacked.
 *
 * - verify-sha256, save-dense, save-sparse: the same upper as a
 *   manifest-layout snapshot recording msb-sparse-sha256-v1 (snapbundle's
 *   `save` writes regular entries by default, old-GNU sparse ones with
 *   `--sparse`; msb, which migrates such a snapshot to its 0.6 form, saves
 *   it the one way it can; native: `sha256sum`, `tar` with and without
 *   `--sparse`).
 *
 * Flags: --quick (one 256 MiB/16 MiB case), --runs N (default 3),
 * --cases 2g,16g,1g (default all three), --runtimes node,deno,bun,
 * --ops verify,verify-sha256,save,save-dense,save-sparse,load (default all),
 * --work DIR, --keep, --json FILE (one JSON line per measurement).
 *
 * @example
 * ```sh
 * npm run bench                          # 2 GiB/256 MiB, 16 GiB/64 MiB, 1 GiB/64 MiB, 3 rounds
 * npm run bench -- --quick --runs 1      # the CI smoke
 * node dist/bench/versus.js --cases 2g --runtimes node
 * ```
 * @module
 */

import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { CLI_MAIN, fmtBytes, median, mustRun, PACKAGE_ROOT, type Runtime, runChild, runtimeExecutable } from "./common.js";
import { writeUpper } from "./synth.js";

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const has = (name: string): boolean => argv.includes(`--${name}`);
const KNOWN = new Set(["quick", "runs", "cases", "runtimes", "ops", "work", "keep", "json"]);
for (const a of argv) {
  if (a.startsWith("--") && !KNOWN.has(a.slice(2))) {
    process.stderr.write(`bench: unknown flag ${a}\n`);
    process.exit(2);
  }
}

const runs = Number(opt("runs") ?? 3);
const runtimes = (opt("runtimes") ?? "node,deno,bun").split(",").filter(Boolean) as Runtime[];
const jsonOut = opt("json");
const G = 1 << 30;
const M = 1 << 20;

interface Case {
  readonly key: string;
  readonly apparent: number;
  readonly data: number;
  readonly extents: number;
}
const ALL_CASES: Case[] = [
  { key: "2g", apparent: 2 * G, data: 256 * M, extents: 64 },
  { key: "16g", apparent: 16 * G, data: 64 * M, extents: 16 },
  { key: "1g", apparent: G, data: 64 * M, extents: 16 },
];
const cases: Case[] = has("quick")
  ? [{ key: "quick", apparent: 256 * M, data: 16 * M, extents: 4 }]
  : (opt("cases") ?? "2g,16g,1g").split(",").map((k) => {
      const c = ALL_CASES.find((x) => x.key === k);
      if (!c) throw new Error(`bench: unknown case ${k} (known: ${ALL_CASES.map((x) => x.key).join(", ")})`);
      return c;
    });

const MSB = `${PACKAGE_ROOT}/node_modules/@superradcompany/microsandbox-linux-x64-gnu/bin/msb`;
const TIME = "/usr/bin/time";

function log(s: string): void {
  process.stderr.write(`[bench] ${s}\n`);
}

/** Whether msb runs here; else why not. */
async function msbProblem(): Promise<string | null> {
  if (!existsSync(MSB)) return `${MSB} is missing (npm devDependency microsandbox)`;
  const r = await runChild(MSB, ["--version"]);
  return r.code === 0 ? null : `msb does not run here (its platform package is missing?): ${(r.stderr || r.stdout).trim().split("\n")[0]}`;
}

/** One timed run of `script` under bash: wall ms and peak RSS (largest process) in bytes. */
async function timed(work: string, script: string, env: Record<string, string> = {}): Promise<{ ms: number; rss: number | null }> {
  const out = `${work}/time-v`;
  rmSync(out, { force: true });
  if (!existsSync(TIME)) {
    const r = await mustRun("bash", ["-o", "pipefail", "-c", script], { env });
    return { ms: r.ms, rss: null };
  }
  const r = await mustRun(TIME, ["-v", "-o", out, "bash", "-o", "pipefail", "-c", script], { env });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(out, "utf8"));
  return { ms: r.ms, rss: m ? Number(m[1]) * 1024 : null };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function snapbundle(rt: Runtime): string {
  const exe = q(runtimeExecutable(rt));
  return rt === "deno" ? `${exe} run -A --no-lock ${q(CLI_MAIN)}` : `${exe} ${q(CLI_MAIN)}`;
}

type Tool = "msb" | Runtime | "native";
const ALL_OPS = ["verify", "verify-sha256", "save", "save-dense", "save-sparse", "load"] as const;
type Op = (typeof ALL_OPS)[number];
const ops: Op[] = (opt("ops") ?? ALL_OPS.join(",")).split(",").map((o) => {
  if (!(ALL_OPS as readonly string[]).includes(o)) throw new Error(`bench: unknown op ${o} (known: ${ALL_OPS.join(", ")})`);
  return o as Op;
});

interface Cell {
  readonly ms: number[];
  readonly rss: (number | null)[];
}

/** Archive size of each tool's save, by case. */
const archiveSizes = new Map<string, Map<string, number>>();

async function benchCase(c: Case, work: string, tools: Tool[]): Promise<Map<string, Cell>> {
  const sizes = new Map<string, number>();
  archiveSizes.set(c.key, sizes);
  const dir = mkdtempSync(`${work}/case-${c.key}-`);
  const upper = `${dir}/upper.ext4`;
  const home = `${dir}/home`;
  log(`${c.key}: writing the upper (${fmtBytes(c.apparent)} apparent, ${fmtBytes(c.data)} in ${c.extents} extents, text and random)`);
  writeUpper(upper, { apparent: c.apparent, data: c.data, kind: "mixed", extents: c.extents });
  const digest = `sha256:${"ab".repeat(32)}`;
  await mustRun(runtimeExecutable("node"), [CLI_MAIN, "--home", home, "-q", "create", "s", "--upper", upper, "--image", "python:3.12", "--image-digest", digest, "--layout", "snapshot", "--integrity"]);
  // The same upper as a manifest-layout snapshot recording msb-sparse-sha256-v1,
  // in a home msb never touches (msb migrates a manifest home in place), and a
  // copy of that home that msb has migrated (it keeps the sha256 integrity).
  const homeM = `${dir}/home-manifest`;
  const homeMsbM = `${dir}/home-manifest-msb`;
  await mustRun(runtimeExecutable("node"), [CLI_MAIN, "--home", homeM, "-q", "create", "m", "--upper", upper, "--image", "python:3.12", "--image-digest", digest, "--layout", "manifest", "--integrity"]);
  rmSync(upper);
  await mustRun("cp", ["-a", "--sparse=always", homeM, homeMsbM]);
  if (tools.includes("msb")) {
    await mustRun(MSB, ["snapshot", "reindex"], { env: { MSB_HOME: homeMsbM } });
    await mustRun(MSB, ["snapshot", "verify", "m"], { env: { MSB_HOME: homeMsbM } });
  }
  const msbEnv = { MSB_HOME: home };
  const ref = `${dir}/ref.tar.zst`;
  const native = `${dir}/native.tar.zst`;
  if (tools.includes("msb")) {
    await mustRun(MSB, ["snapshot", "reindex"], { env: msbEnv });
    await mustRun(MSB, ["snapshot", "save", "s", ref], { env: msbEnv });
  } else {
    await mustRun(runtimeExecutable("node"), [CLI_MAIN, "--home", home, "-q", "save", "s", ref]);
  }
  await mustRun("bash", ["-o", "pipefail", "-c", `tar --sparse --format=gnu -C ${q(`${home}/snapshots`)} -cf - s | zstd -3 -T1 -q > ${q(native)}`]);
  const upperPath = `${home}/snapshots/s/upper.ext4`;
  const out = `${dir}/out.tar.zst`;
  const dest = `${dir}/dest`;
  const scripts: Record<Op, (t: Tool) => string> = {
    verify: (t) =>
      t === "msb" ? `${q(MSB)} snapshot verify s >/dev/null` : t === "native" ? `b3sum --no-names ${q(upperPath)} >/dev/null` : `${snapbundle(t)} --home ${q(home)} -q verify s >/dev/null`,
    "verify-sha256": (t) =>
      t === "msb"
        ? `MSB_HOME=${q(homeMsbM)} ${q(MSB)} snapshot verify m >/dev/null`
        : t === "native"
          ? `sha256sum ${q(`${homeM}/snapshots/m/upper.ext4`)} >/dev/null`
          : `${snapbundle(t)} --home ${q(homeM)} -q verify m >/dev/null`,
    save: (t) =>
      `rm -f ${q(out)}; ` +
      (t === "msb" ? `${q(MSB)} snapshot save s ${q(out)} >/dev/null` : t === "native" ? `tar --sparse --format=gnu -C ${q(`${home}/snapshots`)} -cf - s | zstd -3 -T1 -q > ${q(out)}` : `${snapbundle(t)} --home ${q(home)} -q save s ${q(out)}`),
    // The manifest-layout snapshot: snapbundle's default writes regular (dense)
    // entries, as every msb loads; msb has no dense mode (it writes its 0.6
    // sparse layout), so its row is the same command in both save-* rows.
    "save-dense": (t) =>
      `rm -f ${q(out)}; ` +
      (t === "msb"
        ? `MSB_HOME=${q(homeMsbM)} ${q(MSB)} snapshot save m ${q(out)} >/dev/null`
        : t === "native"
          ? `tar --format=gnu -C ${q(`${homeM}/snapshots`)} -cf - m | zstd -3 -T1 -q > ${q(out)}`
          : `${snapbundle(t)} --home ${q(homeM)} -q save m ${q(out)}`),
    "save-sparse": (t) =>
      `rm -f ${q(out)}; ` +
      (t === "msb"
        ? `MSB_HOME=${q(homeMsbM)} ${q(MSB)} snapshot save m ${q(out)} >/dev/null`
        : t === "native"
          ? `tar --sparse --format=gnu -C ${q(`${homeM}/snapshots`)} -cf - m | zstd -3 -T1 -q > ${q(out)}`
          : `${snapbundle(t)} --home ${q(homeM)} -q save m --sparse ${q(out)}`),
    load: (t) =>
      `rm -rf ${q(dest)}; mkdir ${q(dest)}; ` +
      (t === "msb"
        ? `MSB_HOME=${q(dest)} ${q(MSB)} snapshot load ${q(ref)} >/dev/null`
        : t === "native"
          ? `zstd -dc -q ${q(native)} | tar -x --sparse -C ${q(dest)}`
          : `${snapbundle(t)} --home ${q(dest)} -q load ${q(ref)}`),
  };
  const cells = new Map<string, Cell>();
  try {
    for (const op of ops) {
      for (let round = 0; round < runs; round++) {
        for (const t of tools) {
          const r = await timed(dir, scripts[op](t), msbEnv);
          const key = `${op}:${t}`;
          const cell = cells.get(key) ?? { ms: [], rss: [] };
          cell.ms.push(r.ms);
          cell.rss.push(r.rss);
          cells.set(key, cell);
          if (op === "load" && round === 0 && t !== "native") await checkLoaded(dest, t);
          if (op === "save") sizes.set(t, statSync(out).size);
          if (op.startsWith("save-")) sizes.set(`${t} ${op}`, statSync(out).size);
          if (jsonOut) appendFileSync(jsonOut, `${JSON.stringify({ case: c.key, op, tool: t, round, ms: r.ms, rss: r.rss })}\n`);
          log(`${c.key} ${op} ${t} #${round + 1}: ${(r.ms / 1000).toFixed(2)} s, ${r.rss === null ? "-" : fmtBytes(r.rss)}`);
        }
      }
    }
  } finally {
    if (!has("keep")) rmSync(dir, { recursive: true, force: true });
  }
  return cells;
}

/** The loaded snapshot's upper is verified against its recorded integrity by snapbundle on Node (holes read, not trusted). */
async function checkLoaded(dest: string, t: Tool): Promise<void> {
  const snaps = `${dest}/snapshots`;
  const dirs = readdirSync(snaps).filter((d) => !d.startsWith("."));
  if (dirs.length !== 1) throw new Error(`bench: ${t} load left ${dirs.length} snapshots in ${snaps}`);
  await mustRun(runtimeExecutable("node"), [CLI_MAIN, "-q", "verify", `${snaps}/${dirs[0]}`]);
}

function fmtCell(cell: Cell | undefined): string {
  if (!cell) return "–";
  const rss = cell.rss.filter((x): x is number => x !== null);
  return `${(median(cell.ms) / 1000).toFixed(2)} s, ${rss.length ? `${Math.round(Math.max(...rss) / M)} MiB` : "-"}`;
}

function ratio(a: Cell | undefined, b: Cell | undefined): string {
  return a && b ? `${(median(a.ms) / median(b.ms)).toFixed(2)}×` : "–";
}

async function main(): Promise<number> {
  const work = opt("work") ?? mkdtempSync(`${tmpdir()}/snapbundle-versus-`);
  mkdirSync(work, { recursive: true });
  const problem = await msbProblem();
  if (problem) log(`msb skipped: ${problem}`);
  const tools: Tool[] = [...(problem ? [] : (["msb"] as Tool[])), ...runtimes, "native"];
  const before = loadavg()[0]!;
  const t0 = performance.now();
  const results: [Case, Map<string, Cell>][] = [];
  try {
    for (const c of cases) results.push([c, await benchCase(c, work, tools)]);
  } finally {
    if (!has("keep") && !opt("work")) rmSync(work, { recursive: true, force: true });
  }
  const head = `| case | op | ${tools.join(" | ")} | ${runtimes.map((r) => `${r}/msb`).join(" | ")} | ${runtimes.map((r) => `${r}/native`).join(" | ")} |`;
  const sep = `|---|---|${tools.map(() => "---:").join("|")}|${runtimes.map(() => "---:").join("|")}|${runtimes.map(() => "---:").join("|")}|`;
  const lines: string[] = [];
  for (const [c, cells] of results) {
    for (const op of ops) {
      const label = `${fmtBytes(c.apparent)}/${fmtBytes(c.data)}`;
      lines.push(
        `| ${label} | ${op} | ${tools.map((t) => fmtCell(cells.get(`${op}:${t}`))).join(" | ")} | ${runtimes.map((r) => ratio(cells.get(`${op}:${r}`), cells.get(`${op}:msb`))).join(" | ")} | ${runtimes.map((r) => ratio(cells.get(`${op}:${r}`), cells.get(`${op}:native`))).join(" | ")} |`,
      );
    }
  }
  const scale: string[] = [];
  const big = results.find(([c]) => c.key === "16g")?.[1];
  const small = results.find(([c]) => c.key === "1g")?.[1];
  if (big && small) {
    for (const r of runtimes) {
      scale.push(`${r}: ${ops.map((op) => `${op} ${ratio(big.get(`${op}:${r}`), small.get(`${op}:${r}`))}`).join(", ")}`);
    }
  }
  process.stdout.write(
    `\n### ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC — medians of ${runs}, peak RSS the largest of the runs — ${((performance.now() - t0) / 1000).toFixed(0)} s, load average ${before.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after\n\n` +
      `${head}\n${sep}\n${lines.join("\n")}\n` +
      `\narchive size: ${results.map(([c]) => `${c.key}: ${[...(archiveSizes.get(c.key) ?? [])].map(([t, n]) => `${t} ${(n / M).toFixed(1)} MiB`).join(", ")}`).join("; ")}\n` +
      (scale.length ? `\n16 GiB apparent over 1 GiB apparent (same 64 MiB of data): ${scale.join("; ")}\n` : "") +
      (problem ? `\nmsb skipped: ${problem}\n` : ""),
  );
  return 0;
}

process.exitCode = await main();
