/**
 * Fault injection: every filesystem call that create, save, load, rm and
 * list make is, in turn, made to fail (FaultyFs, one-shot), and after each
 * failure the home must be exactly as before — or, where the operation
 * resolved, exactly as after a clean run:
 *
 * - the operation rejected with a typed error (a SnapbundleError; FsError counts);
 * - the whole tree (home, sources, outputs) matches the state before, byte for
 *   byte, except where the injected failure hit a removal: then only a
 *   dot/tmp leftover below the path whose removal failed may remain;
 * - `store.list()` shows exactly the snapshots that existed before and each
 *   verifies; the index, if present, parses;
 * - an existing archive at save's output is untouched.
 *
 * memfs sweeps every fault point in heavy runs (SNAPBUNDLE_HEAVY=1, which CI
 * runs on Node); by default it takes a sample of 60 points per operation on
 * Node and 30 on Deno and Bun, which run the same platform-neutral core (the
 * full sweep took 55 s of the default run once the writes of round 3 grew the
 * operations). node:fs takes a sample of each operation's on every runtime.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Volume } from "memfs";
import { SnapbundleError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { SnapshotStore } from "../src/store.js";
import { FaultyFs, type FiredFault, type FsOp } from "./helpers/faulty-fs.js";
import { type Backend, BACKENDS, makeHome, noise, walkTree, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { RUNTIME } from "./helpers/cli-run.js";
import { concat } from "./helpers/bytes.js";

/** Sweep every memfs fault point in heavy runs; otherwise a sample, larger on Node. */
const FULL_MEMFS_SWEEP = process.env.SNAPBUNDLE_HEAVY === "1";
const MEMFS_SAMPLE = RUNTIME === "node" ? 60 : 30;

const INDEX = ".snapbundle-index.json";

interface Home {
  fs: FileSystem;
  root: string;
  home: string;
  store: SnapshotStore;
  cleanup: () => void;
}

/** What a scenario's run may do. */
type Outcome =
  /** Succeeds, or fails leaving everything as before. */
  | "atomic"
  /** Must be refused (rejects), leaving everything as before. */
  | "refused";

interface Scenario {
  readonly name: string;
  /** Also sample it on node:fs (every scenario sweeps memfs fully). */
  readonly onDisk?: boolean;
  readonly outcome: Outcome;
  /** Build the starting state with the plain (unwrapped) store. */
  setup(h: Home): Promise<void>;
  run(store: SnapshotStore, h: Home): Promise<unknown>;
  /** Paths (relative to root) whose content may differ run to run after success (e.g. an archive with mtimes): checked by `checkOutput` instead. */
  readonly volatile?: readonly string[];
  /** Extra check of the final state; `resolved` says whether the run resolved. */
  checkOutput?(h: Home, resolved: boolean, fired: FiredFault | undefined): Promise<string[]>;
  /** Only ops matching this are fault points (default: all); a fresh matcher per run (it may keep state). */
  readonly faultMatch?: () => (op: FsOp) => boolean;
  /** Check the value a resolved run returned. */
  checkResult?(result: unknown, before: string[]): string[];
  /** The fault stays: every later matching call fails too (a disk that fills up and stays full). */
  readonly sticky?: boolean;
  /** The run must resolve whatever fails (faults only in a cache). */
  readonly mustResolve?: boolean;
}

/** Every path below `dir` with kind, size and SHA-256, except `skip` (relative paths). */
async function fingerprint(fs: FileSystem, dir: string, skip: (rel: string) => boolean): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await walkTree(fs, dir, async (r, path, info) => {
    if (info.kind === "file") out.set(r, `${info.size} ${createHash("sha256").update(await readSmallFile(fs, path, 256 << 20)).digest("hex")}`);
    else out.set(r, info.kind);
  }, skip);
  return out;
}

/** Differences between two fingerprints, as "+path", "-path", "~path". */
function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of b) if (!a.has(k)) out.push(`+${k}`);
  else if (a.get(k) !== v) out.push(`~${k}`);
  for (const k of a.keys()) if (!b.has(k)) out.push(`-${k}`);
  const set = new Set(out);
  return out.filter((d) => {
    const parent = d.slice(1).split("/").slice(0, -1).join("/");
    return parent === "" || !set.has(`${d[0]}${parent}`);
  });
}

/** The snapshots a fresh store lists (name, digest, path), the problems, and verification failures. */
async function listed(h: Home, verify = true): Promise<{ snapshots: string[]; problems: string[]; unverified: string[] }> {
  // a view that never writes the index, so looking does not change the state looked at
  const ro = new FaultyFs(h.fs);
  ro.arm({ at: 1, sticky: true, match: (op) => op.path.includes(`${INDEX}.tmp-`) });
  const store = new SnapshotStore(ro, h.home, { cwd: h.root, userHome: h.root });
  const { snapshots, problems } = await store.list();
  const unverified: string[] = [];
  for (const s of verify ? snapshots : []) {
    try {
      await store.verify(s.path);
    } catch (e) {
      unverified.push(`${s.path}: ${(e as Error).message}`);
    }
  }
  return { snapshots: snapshots.map((s) => `${s.name}@${s.digest.slice(7, 15)} ${s.digest} ${s.path.replace(h.root, "<root>")}`), problems: problems.map((p) => `${p.path}: ${p.message}`), unverified };
}

/** The index, if present, must be whole JSON. */
async function indexProblem(h: Home): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = await readSmallFile(h.fs, `${h.home}/snapshots/${INDEX}`, 64 << 20);
  } catch {
    return null;
  }
  try {
    JSON.parse(new TextDecoder().decode(bytes));
    return null;
  } catch {
    return `the index ${INDEX} is not whole JSON`;
  }
}

// ---------------------------------------------------------------- fixtures

let bundles: { zstd: Uint8Array; plain: Uint8Array; image: { ref: string; manifest_digest: string } } | null = null;

/** Archives of a three-snapshot chain with its image (zstd) and without (plain), built once on memfs. */
async function sourceBundles() {
  if (bundles) return bundles;
  const vol = new Volume();
  vol.mkdirSync("/src/home", { recursive: true });
  const fs = memFs(vol);
  const store = new SnapshotStore(fs, "/src/home");
  const img = await buildImage(fs, "/src/home", "python:3.12", 2, "fault");
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  await chain(fs, "/src", store, image, "src");
  const collect = async (options: object) => {
    const chunks: Uint8Array[] = [];
    await store.save("c", new WritableStream({ write: (c) => void chunks.push(c.slice()) }), options);
    return concat(chunks);
  };
  bundles = { zstd: await collect({ withParents: true, withImage: true }), plain: await collect({ withParents: true, plainTar: true }), image };
  return bundles;
}

/** Snapshots a ← b ← c (a, b with integrity), uppers written under `root`. */
async function chain(fs: FileSystem, root: string, store: SnapshotStore, image: { ref: string; manifest_digest: string }, tag: string) {
  await writeSparse(fs, `${root}/u-a`, 256 << 10, [[0, noise(20_000, 1)], [200_000, `${tag}-a`]]);
  await writeSparse(fs, `${root}/u-b`, 128 << 10, [[8192, noise(9_000, 2)], [(128 << 10) - 4, tag.slice(0, 4)]]);
  await writeSparse(fs, `${root}/u-c`, 64 << 10, [[0, noise(64 << 10, 3)]]);
  const a = await store.create("a", { upper: `${root}/u-a`, image, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  const b = await store.create("b", { upper: `${root}/u-b`, image, parent: a.digest, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  await store.create("c", { upper: `${root}/u-c`, image, parent: b.digest, labels: { k: tag }, createdAt: "2026-05-01T12:00:00Z" });
}

const OLD_ARCHIVE = new TextEncoder().encode("an older archive that must survive a failed save\n");

/** A home with an image cache, chain a ← b ← c, a "keep" snapshot of another image, and an index. */
async function richHome(h: Home): Promise<{ ref: string; manifest_digest: string }> {
  const img = await buildImage(h.fs, h.home, "python:3.12", 2, "home");
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  await chain(h.fs, h.root, h.store, image, "home");
  await writeSparse(h.fs, `${h.root}/u-keep`, 32 << 10, [[4096, noise(5000, 9)]]);
  await h.store.create("keep", { upper: `${h.root}/u-keep`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  await writeSparse(h.fs, `${h.root}/u-new`, 96 << 10, [[4096, noise(30_000, 5)], [90_000, "new"]]);
  // a snapshot in an extra indexed root: only the index remembers that root
  await h.fs.mkdir(`${h.root}/other`);
  await h.store.create("far-keep", { upper: `${h.root}/u-keep`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, destDir: `${h.root}/other`, createdAt: "2026-05-01T12:00:00Z" });
  await h.store.list(); // writes the index
  return image;
}

/** A home for loads: one unrelated snapshot, no image cache (and, with `cache`, one identical layer already cached). */
async function loadHome(h: Home, withArchive: "zstd" | "plain", cache: boolean): Promise<void> {
  const b = await sourceBundles();
  await writeSparse(h.fs, `${h.root}/u-keep`, 32 << 10, [[4096, noise(5000, 9)]]);
  await h.store.create("keep", { upper: `${h.root}/u-keep`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  if (cache) {
    // the same image's cache, built from the same salt: identical files, so the load must accept and keep them
    const img = await buildImage(h.fs, h.home, "python:3.12", 2, "fault");
    assert.equal(img.manifest_digest, b.image.manifest_digest);
    // keep only the layers: the metadata, fsmeta and vmdk are then installed by the load
    for (const f of img.files) if (!f.includes("/cache/layers/")) await h.fs.remove(f);
  }
  const h2 = await h.fs.open(`${h.root}/bundle`, "w");
  await h2.write(withArchive === "zstd" ? b.zstd : b.plain, 0);
  await h2.close();
  await h.store.list();
}

async function loadsInto(bytes: Uint8Array): Promise<string[]> {
  const vol = new Volume();
  vol.mkdirSync("/chk/home", { recursive: true });
  const fs = memFs(vol);
  const w = await fs.open("/chk/a", "w");
  await w.write(bytes, 0);
  await w.close();
  const store = new SnapshotStore(fs, "/chk/home");
  await store.load("/chk/a");
  return (await store.list()).snapshots.map((s) => s.digest).sort();
}

async function chainDigests(h: Home): Promise<string[]> {
  const { snapshots } = await h.store.list();
  return snapshots.filter((s) => ["a", "b", "c"].includes(s.name)).map((s) => s.digest).sort();
}

/** Check an archive at `path`: absent / the old bytes / a complete archive of a, b, c. */
async function outputState(h: Home, path: string): Promise<"absent" | "old" | "complete" | "broken"> {
  let bytes: Uint8Array;
  try {
    bytes = await readSmallFile(h.fs, path, 256 << 20);
  } catch {
    return "absent";
  }
  if (bytes.length === OLD_ARCHIVE.length && bytes.every((b, i) => b === OLD_ARCHIVE[i])) return "old";
  try {
    const got = await loadsInto(bytes);
    return JSON.stringify(got) === JSON.stringify(await chainDigests(h)) ? "complete" : "broken";
  } catch {
    return "broken";
  }
}

/** The calls that write the index: its temporary file, the rename, and the directory sync right after. */
function indexWrites(): (op: FsOp) => boolean {
  let renamed = false;
  return (op) => {
    if (renamed && op.kind === "syncDir") {
      renamed = false;
      return true;
    }
    renamed = op.kind === "rename" && op.path.includes(`${INDEX}.tmp-`);
    return op.path.includes(`${INDEX}.tmp-`);
  };
}

/** Calls that need free space. */
const consumesSpace = () => (op: FsOp) =>
  op.kind === "write" || op.kind === "setLength" || op.kind === "mkdir" || op.kind === "makeTempDir" || (op.kind === "open" && op.mode !== "r" && op.mode !== "r+");

/** The same operations on a disk that fills up at the k-th space-consuming call and stays full (undo needs no space: renames and removals). */
function diskFull(): Scenario[] {
  return [
    {
      name: "create on a disk that fills up",
      outcome: "atomic",
      sticky: true,
      faultMatch: consumesSpace,
      setup: async (h) => void (await richHome(h)),
      run: (store, h) => store.create("d", { upper: `${h.root}/u-new`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true, createdAt: "2026-05-02T00:00:00Z" }),
    },
    {
      name: "save zstd on a disk that fills up, over an existing archive",
      outcome: "atomic",
      sticky: true,
      faultMatch: consumesSpace,
      setup: async (h) => {
        await richHome(h);
        await writeSparse(h.fs, `${h.root}/out.tar.zst`, 0, [[0, OLD_ARCHIVE]]);
      },
      run: (store, h) => store.save("c", `${h.root}/out.tar.zst`, { withParents: true, withImage: true, overwrite: true }),
      volatile: ["out.tar.zst"],
      checkOutput: async (h, resolved) => {
        const st = await outputState(h, `${h.root}/out.tar.zst`);
        return st === (resolved ? "complete" : "old") ? [] : [`save ${resolved ? "resolved" : "rejected"} and the output is ${st}`];
      },
    },
    {
      name: "load zstd with image cache on a disk that fills up",
      outcome: "atomic",
      sticky: true,
      faultMatch: consumesSpace,
      setup: (h) => loadHome(h, "zstd", false),
      run: (store, h) => store.load(`${h.root}/bundle`),
    },
  ];
}

const SCENARIOS: Scenario[] = [
  {
    name: "create",
    outcome: "atomic",
    setup: async (h) => void (await richHome(h)),
    run: async (store, h) => {
      const c = await store.resolve("c");
      return store.create("d", { upper: `${h.root}/u-new`, image: c.manifest.image, parent: c.digest, integrity: true, createdAt: "2026-05-02T00:00:00Z" });
    },
  },
  {
    name: "create --force (replace)",
    onDisk: true,
    outcome: "atomic",
    setup: async (h) => void (await richHome(h)),
    run: (store, h) => store.create("keep", { upper: `${h.root}/u-new`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true, force: true, createdAt: "2026-05-02T00:00:00Z" }),
  },
  {
    name: "create --dest-dir",
    outcome: "atomic",
    setup: async (h) => {
      await richHome(h);
      await h.fs.mkdir(`${h.root}/elsewhere`);
    },
    run: (store, h) => store.create("far", { upper: `${h.root}/u-new`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, destDir: `${h.root}/elsewhere`, createdAt: "2026-05-02T00:00:00Z" }),
  },
  {
    name: "save zstd --with-parents --with-image over an existing archive",
    onDisk: true,
    outcome: "atomic",
    setup: async (h) => {
      await richHome(h);
      await writeSparse(h.fs, `${h.root}/out.tar.zst`, 0, [[0, OLD_ARCHIVE]]);
    },
    run: (store, h) => store.save("c", `${h.root}/out.tar.zst`, { withParents: true, withImage: true, overwrite: true }),
    volatile: ["out.tar.zst"],
    checkOutput: async (h, resolved, fired) => {
      const st = await outputState(h, `${h.root}/out.tar.zst`);
      if (resolved) return st === "complete" ? [] : [`save resolved but the output is ${st}`];
      // the one irreversible step: the directory fsync after the rename over the old archive
      const afterRename = fired?.kind === "syncDir" && fired.path === h.root;
      if (st === "old" || (afterRename && st === "complete")) return [];
      return [`save rejected and the existing output is ${st}`];
    },
  },
  {
    name: "save plain tar --with-parents (no existing output)",
    outcome: "atomic",
    setup: async (h) => {
      await richHome(h);
      await h.fs.mkdir(`${h.root}/out`); // save never creates the output's directory
    },
    run: (store, h) => store.save("c", `${h.root}/out/c.tar`, { withParents: true, plainTar: true }),
    volatile: ["out/c.tar", "out"],
    checkOutput: async (h, resolved, fired) => {
      const st = await outputState(h, `${h.root}/out/c.tar`);
      const names = await h.fs.readdir(`${h.root}/out`).catch(() => []);
      if (names.some((n) => n !== "c.tar")) return [`the output directory holds ${names.join(", ")}`];
      if (resolved) return st === "complete" ? [] : [`save resolved but the output is ${st}`];
      const afterRename = fired?.kind === "syncDir" && fired.path === `${h.root}/out`;
      if (st === "absent" || (afterRename && st === "complete")) return [];
      return [`save rejected and the output is ${st}`];
    },
  },
  ...diskFull(),
  {
    name: "load plain tar with parents (path source)",
    onDisk: true,
    outcome: "atomic",
    setup: (h) => loadHome(h, "plain", false),
    run: (store, h) => store.load(`${h.root}/bundle`),
  },
  {
    name: "load zstd with parents and image cache into a home without cache",
    outcome: "atomic",
    setup: (h) => loadHome(h, "zstd", false),
    run: (store, h) => store.load(`${h.root}/bundle`),
  },
  {
    name: "load zstd with image cache, some layers already cached",
    onDisk: true,
    outcome: "atomic",
    setup: (h) => loadHome(h, "zstd", true),
    run: (store, h) => store.load(`${h.root}/bundle`, { name: "mine" }),
  },
  {
    name: "rm a leaf",
    onDisk: true,
    outcome: "atomic",
    setup: async (h) => void (await richHome(h)),
    run: (store) => store.remove("c"),
  },
  {
    name: "rm --force a parent",
    outcome: "atomic",
    setup: async (h) => void (await richHome(h)),
    run: (store) => store.remove("b", { force: true }),
  },
  {
    name: "rm a parent (refused whatever fails)",
    onDisk: true,
    outcome: "refused",
    setup: async (h) => void (await richHome(h)),
    run: (store) => store.remove("b"),
  },
  {
    name: "list (a transient failure never hides a snapshot)",
    onDisk: true,
    outcome: "atomic",
    setup: async (h) => {
      await richHome(h);
      await h.fs.remove(`${h.home}/snapshots/${INDEX}`); // so list rebuilds and writes it
    },
    run: (store) => store.list(),
    checkResult: (result, before) => {
      const r = result as { snapshots: { path: string }[]; problems: { path: string }[] };
      const seen = new Set([...r.snapshots.map((s) => s.path), ...r.problems.map((p) => p.path)]);
      const rel = (p: string) => p.replace(/^.*?\/(home|other)\//, "<root>/$1/");
      const seenRel = new Set([...seen].map(rel));
      return before.filter((b) => !seenRel.has(rel(b.split(" ")[2]!))).map((b) => `list resolved without ${b.split(" ")[2]} (neither listed nor reported as a problem)`);
    },
  },
  {
    name: "list with index write failures (must resolve)",
    outcome: "atomic",
    mustResolve: true,
    faultMatch: indexWrites,
    setup: async (h) => {
      await richHome(h);
      await h.fs.rename(`${h.root}/other/far-keep`, `${h.root}/other/far-keep-2`); // so list rewrites the index
    },
    run: (store) => store.list(),
  },
  {
    // an extra root is remembered only by the index: failing to record it must refuse the create, cleanly
    name: "create --dest-dir with index write failures (refused cleanly or complete)",
    outcome: "atomic",
    faultMatch: indexWrites,
    setup: async (h) => {
      await richHome(h);
      await h.fs.mkdir(`${h.root}/elsewhere`);
    },
    run: (store, h) => store.create("far", { upper: `${h.root}/u-new`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, destDir: `${h.root}/elsewhere`, createdAt: "2026-05-02T00:00:00Z" }),
  },
];

interface Stats {
  points: number;
  exercised: number;
  rejected: number;
  resolved: number;
  leftovers: number;
  violations: string[];
}

/** Run one trial: fresh home, optional fault, run, check. */
async function trial(
  backend: Backend,
  s: Scenario,
  fault: number | null,
  good: { tree: Map<string, string>; list: string[] } | null,
  stats: Stats | null,
): Promise<{ tree: Map<string, string>; list: string[] }> {
  const h = await makeHome(backend);
  try {
    await s.setup(h);
    const volatile = new Set(s.volatile ?? []);
    const skip = (rel: string) => rel === `home/snapshots/${INDEX}` || volatile.has(rel);
    const before = await fingerprint(h.fs, h.root, skip);
    const beforeList = await listed(h, false);
    const faulty = new FaultyFs(h.fs);
    const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
    if (fault !== null) faulty.arm({ at: fault, match: s.faultMatch?.(), sticky: s.sticky, errno: s.sticky ? "ENOSPC" : undefined });
    else faulty.disarm();
    let error: unknown;
    let resolved = false;
    let result: unknown;
    try {
      result = await s.run(store, h);
      resolved = true;
    } catch (e) {
      error = e;
    }
    faulty.disarm();
    const fired = faulty.fired[0];
    const after = await fingerprint(h.fs, h.root, skip);
    const afterList = await listed(h);
    const where = `fault ${fault ?? "none"}${fired ? ` (${fired.kind} #${fired.kindSeq} ${fired.path} → ${fired.errno})` : ""}`;
    const v: string[] = [];
    if (fault === null) {
      if (!resolved) throw new Error(`${s.name}: the fault-free run failed: ${(error as Error)?.stack ?? error}`);
      if (s.outcome === "refused") throw new Error(`${s.name}: the fault-free run was not refused`);
    }
    if (!resolved && !(error instanceof SnapbundleError)) v.push(`${where}: rejected with an untyped ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
    if (resolved && s.outcome === "refused") v.push(`${where}: was not refused`);
    if (!resolved && s.mustResolve) v.push(`${where}: a cache failure failed the operation: ${(error as Error)?.message}`);
    if (!resolved && s.outcome === "refused" && !(error instanceof SnapbundleError)) v.push(`${where}: refused with ${String(error)}`);
    // The tree: before (failure) or the good after (success), plus leftovers only below a path whose removal failed.
    const base = !resolved || s.outcome === "refused" ? before : good?.tree ?? after;
    const allowedLeftover = (rel: string) => {
      if (!fired || fired.kind !== "remove") return false;
      const abs = `${h.root}/${rel}`;
      return (abs === fired.path || abs.startsWith(`${fired.path}/`)) && /(^|\/)(\.[^/]+|home\/cache\/tmp\/[^/]+)(\/|$)/.test(rel);
    };
    let leftover = false;
    for (const d of diff(base, after)) {
      if (d.startsWith("+") && allowedLeftover(d.slice(1))) {
        leftover = true;
        continue;
      }
      v.push(`${where}: tree differs from the ${base === before ? "state before" : "state of a clean run"}: ${d}`);
    }
    // list: before, or the good after; every listed snapshot verifies; no problems except transient ones during the run
    const expectList = !resolved || s.outcome === "refused" ? beforeList.snapshots : good?.list ?? afterList.snapshots;
    if (JSON.stringify(afterList.snapshots) !== JSON.stringify(expectList)) {
      v.push(`${where}: list shows [${afterList.snapshots.map((x) => x.split(" ")[0]).join(", ")}], expected [${expectList.map((x) => x.split(" ")[0]).join(", ")}]`);
    }
    for (const p of afterList.problems) v.push(`${where}: list reports a problem: ${p}`);
    for (const u of afterList.unverified) v.push(`${where}: a listed snapshot does not verify: ${u}`);
    const idx = await indexProblem(h);
    if (idx) v.push(`${where}: ${idx}`);
    if (s.checkOutput) for (const m of await s.checkOutput(h, resolved, fired)) v.push(`${where}: ${m}`);
    if (resolved && s.checkResult) for (const m of s.checkResult(result, beforeList.snapshots)) v.push(`${where}: ${m}`);
    const grouped = v.length === 0 ? [] : [`${where}: ${resolved ? "resolved" : `rejected (${(error as Error)?.name}: ${(error as Error)?.message})`}; ${v.map((x) => x.slice(where.length + 2)).join(" | ")}`];
    if (stats) {
      if (fired) stats.exercised++;
      if (resolved) stats.resolved++;
      else stats.rejected++;
      if (leftover) stats.leftovers++;
      stats.violations.push(...grouped);
    } else if (v.length > 0) {
      throw new Error(`${s.name}: the clean run is inconsistent:\n${v.join("\n")}`);
    }
    return { tree: after, list: afterList.snapshots };
  } finally {
    h.cleanup();
  }
}

/** Measure the fault points of a scenario (fault-free run through the wrapper). */
async function measure(backend: Backend, s: Scenario): Promise<FsOp[]> {
  const h = await makeHome(backend);
  try {
    await s.setup(h);
    const faulty = new FaultyFs(h.fs);
    const store = new SnapshotStore(faulty, h.home, { cwd: h.root, userHome: h.root });
    const { ops } = await faulty.measure(() => s.run(store, h).catch((e) => {
      if (s.outcome !== "refused") throw e;
    }));
    return s.faultMatch ? ops.filter(s.faultMatch()) : ops;
  } finally {
    h.cleanup();
  }
}

/** A sample of about `cap` points: the directory-level calls that commit or undo (rename, syncDir, remove, makeTempDir) first, then evenly spaced others. */
function sample(ops: FsOp[], cap: number): number[] {
  const key = ["rename", "syncDir", "remove", "makeTempDir"];
  const first = ops.map((op, i) => ({ op, i: i + 1 })).filter((x) => key.includes(x.op.kind)).map((x) => x.i);
  const keyPicks = first.length <= cap / 2 ? first : first.filter((_, k) => k % Math.ceil(first.length / (cap / 2)) === 0);
  const picked = new Set(keyPicks);
  const rest = cap - picked.size;
  for (let k = 0; k < rest; k++) picked.add(1 + Math.floor(((k + 0.5) * ops.length) / rest));
  return [...picked].sort((x, y) => x - y);
}

const SUMMARY: string[] = [];

for (const backend of BACKENDS) {
  describe(`fault injection on ${backend.label}`, () => {
    for (const s of SCENARIOS.filter((x) => backend.label === "memfs" || x.onDisk)) {
      test(`${s.name}: every injected failure leaves the home whole`, async () => {
        const ops = await measure(backend, s);
        assert.ok(ops.length > 0, "the operation made no filesystem calls");
        const good = s.outcome === "refused" ? null : await trial(backend, s, null, null, null);
        const points = backend.label !== "memfs" ? sample(ops, 10) : FULL_MEMFS_SWEEP ? ops.map((_, i) => i + 1) : sample(ops, MEMFS_SAMPLE);
        const stats: Stats = { points: ops.length, exercised: 0, rejected: 0, resolved: 0, leftovers: 0, violations: [] };
        for (const i of points) await trial(backend, s, i, good, stats);
        const line = `${backend.label} | ${s.name}: ${ops.length} calls, ${points.length} fault points run, ${stats.exercised} fired, ${stats.rejected} rejected, ${stats.resolved} resolved, ${stats.leftovers} with a leftover`;
        SUMMARY.push(line);
        if (process.env.SNAPBUNDLE_FAULTS_VERBOSE === "1") console.log(line);
        assert.ok(stats.exercised >= Math.min(points.length, 1), "no fault fired");
        assert.ok(stats.violations.length === 0, `${stats.violations.length} of ${points.length} fault points break an invariant (first 12):\n${stats.violations.slice(0, 12).join("\n")}`);
      });
    }
  });
}

describe("fault injection summary", () => {
  test("every scenario ran", () => {
    if (process.env.SNAPBUNDLE_FAULTS_VERBOSE === "1") console.log(SUMMARY.join("\n"));
    const expected = BACKENDS.flatMap((b) => SCENARIOS.filter((x) => b.label === "memfs" || x.onDisk).map((x) => `${b.label} | ${x.name}:`));
    const missing = expected.filter((prefix) => !SUMMARY.some((line) => line.startsWith(prefix)));
    assert.deepEqual(missing, [], "scenarios that did not finish their sweep");
    assert.equal(SUMMARY.length, expected.length);
  });
});
