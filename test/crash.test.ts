/**
 * Killed processes (node:fs only): the built CLI, on the same runtime as the
 * test, runs `load` and `save` of a large sparse snapshot (1 GiB apparent,
 * 64 MiB of random data) and is SIGKILLed at a sweep of moments — after
 * delays spread over a measured run, and as soon as a staging directory, a
 * cache file or a partial output appears. Then, from this process:
 *
 * - list shows the snapshots there before (a load killed after promoting may
 *   have installed its snapshots — then each is whole), and each verifies;
 * - no file in cache/{manifests,layers,fsmeta,vmdk} is partial: each is one
 *   a complete load installs, byte for byte;
 * - save's `out` holds the old archive or a complete new one; only a
 *   `.out.partial-*` temporary may remain beside it;
 * - leftovers are dot-directories in snapshots/, entries of cache/tmp/, or
 *   the targets of an uncommitted promotion named in its journal; list
 *   ignores them all;
 * - a later `load` of the same archive succeeds (or, if the killed one had
 *   finished, says the snapshot already exists).
 *
 * Also: sweepStaleStaging (src/staging.ts) on both backends.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pendingPromotionTargets } from "../src/archive/journal.js";
import { sweepStaleStaging, stagingPid } from "../src/staging.js";
import { nodeFs } from "../src/fs/node.js";
import { HomeLayout } from "../src/layout.js";
import { SnapshotStore } from "../src/store.js";
import { childEnv, cliInvocation, runCli, RUNTIME } from "./helpers/cli-run.js";
import { BACKENDS, makeHome, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";

const GiB = 1 << 30;
/** Kills at delays spread over a measured run: a full sweep in heavy runs, a few otherwise (the kills at named moments always run). */
const TIMED_KILLS = process.env.SNAPBUNDLE_HEAVY === "1" ? 8 : 3;
const MiB = 1 << 20;

interface Big {
  root: string;
  /** The source home (a small parent with integrity, the big head, an image cache). */
  home: string;
  archive: string;
  /** Digests of the chain, parent first. */
  chain: string[];
  /** cache-relative path → sha256 of each cache file a complete load installs. */
  cache: Map<string, string>;
}

let big: Big | null = null;

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Write `size` bytes apparent with `dataBytes` of random data in 4 MiB pieces spread over the file. */
function writeBigSparse(path: string, size: number, dataBytes: number): void {
  const fd = openSync(path, "w");
  try {
    const pieces = dataBytes / (4 * MiB);
    const stride = Math.floor(size / pieces / 4096) * 4096;
    for (let i = 0; i < pieces; i++) writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, i * stride);
    ftruncateSync(fd, size); // holes after the last piece
  } finally {
    closeSync(fd);
  }
}

async function getBig(): Promise<Big> {
  if (big) return big;
  const root = mkdtempSync(join(tmpdir(), "snapbundle-crash-"));
  const home = join(root, "src-home");
  mkdirSync(home, { recursive: true });
  const fs = nodeFs();
  const store = new SnapshotStore(fs, home);
  const img = await buildImage(fs, home, "python:3.12", 2, "crash");
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  await writeSparse(fs, join(root, "u-small"), MiB, [[0, randomBytes(100_000)]]);
  writeBigSparse(join(root, "u-big"), GiB, 64 * MiB);
  const p = await store.create("parent", { upper: join(root, "u-small"), image, integrity: true });
  const h = await store.create("big", { upper: join(root, "u-big"), image, parent: p.digest });
  const archive = join(root, "big.tar.zst");
  await store.save("big", archive, { withParents: true, withImage: true });
  const cache = new Map<string, string>();
  for (const f of img.files) cache.set(f.slice(home.length + 1), sha(readFileSync(f)));
  big = { root, home, archive, chain: [p.digest, h.digest], cache };
  // removed when the process exits, whichever tests ran and in whatever order
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  return big;
}

function spawnCli(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> } {
  const inv = cliInvocation();
  const child = spawn(inv.command, [...inv.args, ...args], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout = (stdout + String(c)).slice(-4096))); // the last lines are enough
  child.stderr!.on("data", (c) => (stderr += String(c)));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Kill with SIGKILL when `trigger` resolves (or never, if the process ends first). */
async function runAndKill(args: string[], trigger: (child: ChildProcess) => Promise<void>): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const { child, done } = spawnCli(args);
  let finished = false;
  const end = done.then((r) => {
    finished = true;
    return r;
  });
  await Promise.race([trigger(child), end]);
  const killed = !finished && child.kill("SIGKILL");
  const r = await end;
  return { killed: killed && r.signal === "SIGKILL", code: r.code, stderr: r.stderr };
}

/** Run the CLI to completion, or SIGKILL it after `ms` and report that (a later load must never wait forever, e.g. on a lock a killed process left). */
async function runWithin(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const { child, done } = spawnCli(args);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, ms);
  const r = await done;
  clearTimeout(timer);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, timedOut };
}

/** Resolve once `probe` returns true (polling every 2 ms), or after `timeoutMs`. */
async function when(probe: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (probe()) return;
    await sleep(2);
  }
}

function names(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The invariants after a killed load into `home` (which held `before`). */
async function checkHomeAfterKill(home: string, before: string[], b: Big, what: string): Promise<{ installed: boolean; pending: number }> {
  const store = new SnapshotStore(nodeFs(), home);
  const { snapshots, problems } = await store.list();
  assert.deepEqual(problems, [], `${what}: list reports problems`);
  const digests = snapshots.map((s) => s.digest);
  const extra = digests.filter((d) => !before.includes(d));
  // either nothing new, or the whole chain (a kill after the promotion finished)
  const installed = extra.length > 0;
  assert.ok(extra.length === 0 || JSON.stringify([...extra].sort()) === JSON.stringify([...b.chain].sort()), `${what}: list shows part of the archive: ${extra.join(", ")}`);
  for (const s of snapshots) await store.verify(s.path);
  // no partial cache file: every cache file is one a complete load installs
  for (const kind of ["manifests", "layers", "fsmeta", "vmdk"]) {
    for (const n of names(join(home, "cache", kind))) {
      const rel = `cache/${kind}/${n}`;
      const want = b.cache.get(rel);
      assert.ok(want !== undefined, `${what}: unexpected cache file ${rel}`);
      assert.equal(sha(readFileSync(join(home, rel))), want, `${what}: cache file ${rel} is partial or different`);
    }
  }
  // leftovers only where listings never look: dot-directories, and the
  // targets of an uncommitted promotion (which the next load removes)
  const pending = await pendingPromotionTargets(nodeFs(), new HomeLayout(home));
  for (const n of names(join(home, "snapshots"))) {
    if (n.startsWith(".")) continue;
    const journaled = pending.has(join(home, "snapshots", n));
    assert.ok(snapshots.some((s) => s.name === n) || journaled, `${what}: ${n} in snapshots/ is neither listed, nor a dot-directory, nor in the promotion journal`);
  }
  return { installed, pending: pending.size };
}

// Heavy enough to take a moment, small enough for ~20 s per runtime.
describe(`killed processes (node:fs, CLI on ${RUNTIME})`, () => {
  test("load killed at a sweep of moments leaves the home whole, and a later load succeeds", { timeout: 600_000 }, async () => {
    const b = await getBig();
    // how long a full load takes here
    const t0 = Date.now();
    const scratch = join(b.root, "scratch-home");
    const full = await runCli(["--home", scratch, "load", b.archive]);
    assert.equal(full.code, 0, full.stderr);
    const duration = Date.now() - t0;
    rmSync(scratch, { recursive: true, force: true });

    const triggers: { label: string; trigger: (home: string) => (c: ChildProcess) => Promise<void> }[] = [];
    // delays spread over the run, in steps of at least 50 ms
    const steps = Math.min(TIMED_KILLS, Math.max(2, Math.floor(duration / 50)));
    for (let i = 1; i <= steps; i++) {
      const ms = Math.round((duration * 1.1 * i) / (steps + 1));
      triggers.push({ label: `after ${ms} ms`, trigger: () => () => sleep(ms) });
    }
    triggers.push({ label: "when the snapshot staging appears", trigger: (home) => () => when(() => names(join(home, "snapshots")).some((n) => n.startsWith(".msb-snapshot-import-")), duration * 3) });
    triggers.push({ label: "when the first staged upper appears", trigger: (home) => () => when(() => names(join(home, "snapshots")).filter((n) => n.startsWith(".msb-snapshot-import-")).some((s) => names(join(home, "snapshots", s)).some((d) => names(join(home, "snapshots", s, d)).includes("upper.ext4"))), duration * 3) });
    triggers.push({ label: "when the cache install begins", trigger: (home) => () => when(() => ["layers", "fsmeta", "vmdk", "manifests"].some((k) => names(join(home, "cache", k)).length > 0), duration * 3) });
    triggers.push({ label: "when the first snapshot is promoted", trigger: (home) => () => when(() => names(join(home, "snapshots")).some((n) => n.startsWith("sha256-")), duration * 3) });

    const outcomes: string[] = [];
    let killedCount = 0;
    for (const [i, t] of triggers.entries()) {
      const home = join(b.root, `home-${i}`);
      const fs = nodeFs();
      const store = new SnapshotStore(fs, home);
      await writeSparse(fs, join(b.root, "u-keep"), 64 << 10, [[0, "keep"]]);
      mkdirSync(home, { recursive: true });
      const keep = await store.create("keep", { upper: join(b.root, "u-keep"), image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true });
      const r = await runAndKill(["--home", home, "load", b.archive], t.trigger(home));
      if (r.killed) killedCount++;
      else assert.equal(r.code, 0, `${t.label}: the load was not killed and failed: ${r.stderr}`);
      const { installed } = await checkHomeAfterKill(home, [keep.digest], b, `load killed ${t.label}`);
      // a later load: succeeds, or (if the killed one had finished) says it is already installed
      const again = await runWithin(["--home", home, "load", b.archive], Math.max(30_000, duration * 20));
      assert.ok(!again.timedOut, `${t.label}: the later load did not finish (waiting on something the killed process left?)`);
      if (installed) {
        // the head is installed: the later load installs nothing and says so (exit 0)
        assert.equal(again.code, 0, `${t.label}: loading again over an installed chain failed: ${again.stderr}`);
        assert.match(again.stdout, /already installed/);
      } else {
        assert.equal(again.code, 0, `${t.label}: the later load failed: ${again.stderr}`);
      }
      const after = await checkHomeAfterKill(home, [keep.digest], b, `load again after a kill ${t.label}`);
      assert.ok(after.installed, `${t.label}: the later load did not install the chain`);
      assert.equal(after.pending, 0, `${t.label}: the later load left a promotion journal`);
      outcomes.push(`${t.label}: ${r.killed ? "killed" : "finished"}${installed ? " after promoting" : ""}`);
      rmSync(home, { recursive: true, force: true });
    }
    if (process.env.SNAPBUNDLE_CRASH_VERBOSE === "1") console.log(`load takes ${duration} ms on ${RUNTIME}; ${outcomes.join("; ")}`);
    assert.ok(killedCount > 0, `no run was killed before it finished: ${outcomes.join("; ")}`);
  });

  test("save killed at a sweep of moments leaves the old archive (or a complete new one) and the home untouched", { timeout: 600_000 }, async () => {
    const b = await getBig();
    const out = join(b.root, "out.tar.zst");
    const old = new TextEncoder().encode("the previous archive, which a killed save must not harm\n");
    const t0 = Date.now();
    const full = await runCli(["--home", b.home, "save", "big", join(b.root, "full.tar.zst"), "--with-parents", "--with-image"]);
    assert.equal(full.code, 0, full.stderr);
    const duration = Date.now() - t0;
    const completeSha = sha(readFileSync(join(b.root, "full.tar.zst")));
    rmSync(join(b.root, "full.tar.zst"));

    const triggers: { label: string; trigger: () => Promise<void> }[] = [];
    const steps = Math.min(TIMED_KILLS, Math.max(2, Math.floor(duration / 50)));
    for (let i = 1; i <= steps; i++) {
      const ms = Math.round((duration * 1.1 * i) / (steps + 1));
      triggers.push({ label: `after ${ms} ms`, trigger: () => sleep(ms) });
    }
    triggers.push({ label: "when the partial output appears", trigger: () => when(() => names(b.root).some((n) => n.startsWith(".out.tar.zst.partial-")), duration * 3) });

    const homeBefore = await new SnapshotStore(nodeFs(), b.home).list();
    let killedCount = 0;
    for (const t of triggers) {
      writeFileSync(out, old);
      const r = await runAndKill(["--home", b.home, "save", "big", out, "--with-parents", "--with-image", "--force"], t.trigger);
      if (r.killed) killedCount++;
      else assert.equal(r.code, 0, `${t.label}: the save was not killed and failed: ${r.stderr}`);
      const now = readFileSync(out);
      const isOld = now.length === old.length && sha(now) === sha(old);
      // the archive embeds the uppers' mtimes, which do not change: a complete save is byte-identical
      assert.ok(isOld || sha(now) === completeSha, `save killed ${t.label}: the output is neither the old archive nor a complete new one (${now.length} bytes)`);
      if (!r.killed) assert.ok(!isOld, `${t.label}: a finished save left the old archive`);
      for (const n of names(b.root)) {
        // what a SIGKILLed save leaves (the next save there reclaims it: test/leftovers.test.ts)
        if (n.startsWith(".out.tar.zst.partial-") || n.startsWith(".snapbundle-lease-")) rmSync(join(b.root, n));
        else assert.ok(!n.startsWith(".") && !n.includes("partial"), `save killed ${t.label}: unexpected ${n} beside the output`);
      }
      const after = await new SnapshotStore(nodeFs(), b.home).list();
      assert.deepEqual(after.snapshots.map((s) => s.digest), homeBefore.snapshots.map((s) => s.digest), `save killed ${t.label}: the home's snapshots changed`);
    }
    if (process.env.SNAPBUNDLE_CRASH_VERBOSE === "1") console.log(`save takes ${duration} ms on ${RUNTIME}; ${killedCount} of ${triggers.length} killed`);
    assert.ok(killedCount > 0, "no save was killed before it finished");
    // a later save over the old archive succeeds
    writeFileSync(out, old);
    const again = await runCli(["--home", b.home, "save", "big", out, "--with-parents", "--with-image", "--force"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(sha(readFileSync(out)), completeSha);
  });
});

/** A pid that is certainly not running: a child that has exited (reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, RUNTIME === "deno" ? ["eval", ""] : ["-e", ""], { stdio: "ignore" });
  const pid = child.pid!;
  await new Promise((r) => child.on("close", r));
  return pid;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

for (const backend of BACKENDS) {
  describe(`sweepStaleStaging on ${backend.label}`, () => {
    test("sweeps abandoned leftovers only: dead pid and old enough; keeps live, young and foreign ones; list never shows them", { timeout: 600_000 }, async () => {
      const h = await makeHome(backend);
      try {
        const { fs, root, home, store } = h;
        const layout = new HomeLayout(home);
        await writeSparse(fs, `${root}/u`, 8192, [[0, "real"]]);
        const real = await store.create("real", { upper: `${root}/u`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) } });
        const dead = 999_999_001; // the policy below says which pids live
        const live = 4242;
        const alive = (pid: number) => pid === live;
        const snaps = layout.snapshotsDir;
        const made = {
          deadImport: `${snaps}/.msb-snapshot-import-${dead}-abcDEF`,
          deadCreate: `${snaps}/.msb-create-${dead}-a1b2c3`,
          deadRemoving: `${snaps}/.msb-removing-${dead}-Zz9Yy8`,
          deadReplaced: `${snaps}/.msb-replaced-${dead}-qwerty`,
          liveImport: `${snaps}/.msb-snapshot-import-${live}-abcdef`,
          noPid: `${snaps}/.msb-snapshot-import-XyZ123`,
          foreignDot: `${snaps}/.not-ours-${dead}-abcdef`,
          deadCache: `${layout.cacheTmpDir}/snapshot-import-${dead}-ghiJKL`,
          liveCache: `${layout.cacheTmpDir}/snapshot-import-${live}-ghijkl`,
        };
        for (const d of Object.values(made)) {
          await fs.mkdir(d, { recursive: true });
          // a complete-looking artifact inside: still never listed
          await writeSparse(fs, `${d}/manifest.json`, 0, [[0, "{}"]]);
        }
        const fileLeftover = `${snaps}/.msb-snapshot-import-${dead}-file00`;
        await writeSparse(fs, fileLeftover, 0, [[0, "not a directory"]]);
        const listed = async () => (await store.list()).snapshots.map((s) => s.digest);
        assert.deepEqual(await listed(), [real.digest]);

        // young: nothing is swept, dead or not
        assert.deepEqual(await sweepStaleStaging(fs, layout, snaps, { now: Date.now(), isProcessAlive: alive }), []);
        // two hours on: dead-pid leftovers go; the live one, the pid-less one (< 24 h) and foreign names stay
        const removed = await sweepStaleStaging(fs, layout, snaps, { now: Date.now() + 2 * 3600_000, isProcessAlive: alive });
        assert.deepEqual(removed.sort(), [made.deadImport, made.deadCreate, made.deadRemoving, made.deadReplaced, made.deadCache].sort());
        const rest = async () => [...(await fs.readdir(snaps)), ...(await fs.readdir(layout.cacheTmpDir))].sort();
        assert.deepEqual(await rest(), [".msb-snapshot-import-4242-abcdef", ".msb-snapshot-import-XyZ123", `.msb-snapshot-import-${dead}-file00`, `.not-ours-${dead}-abcdef`, ".snapbundle-index.json", "real", "snapshot-import-4242-ghijkl"].sort());
        // a custom, shorter stale age
        assert.deepEqual(await sweepStaleStaging(fs, layout, snaps, { now: Date.now() + 2 * 3600_000, isProcessAlive: () => true, staleAfterMs: 1 }), []);
        // without a process check only the 24 h rule applies: the pid-less and the "live" ones go after a day
        assert.deepEqual(await sweepStaleStaging(fs, layout, snaps, { now: Date.now() + 2 * 3600_000 }), []);
        const dayLater = await sweepStaleStaging(fs, layout, snaps, { now: Date.now() + 25 * 3600_000 });
        assert.deepEqual(dayLater.sort(), [made.liveImport, made.noPid, made.liveCache].sort());
        assert.deepEqual(await listed(), [real.digest]);
        // the real snapshot and the foreign entries survive every sweep
        assert.ok((await fs.lstat(`${snaps}/real/manifest.json`)).kind === "file");
        assert.ok((await fs.lstat(made.foreignDot)).kind === "directory");
        assert.ok((await fs.lstat(fileLeftover)).kind === "file");
        assert.equal(stagingPid(".msb-snapshot-import-123-abcdef"), 123);
        assert.equal(stagingPid(".msb-snapshot-import-abcdef"), null);
      } finally {
        h.cleanup();
      }
    });
  });
}

describe("sweeping with real processes (node:fs)", () => {
  test("a leftover of a dead process is swept, one of a live process is kept", { timeout: 600_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-sweep-"));
    try {
      const home = join(root, "home");
      const layout = new HomeLayout(home);
      const dead = await deadPid();
      assert.equal(isAlive(dead), false);
      const deadDir = join(layout.snapshotsDir, `.msb-snapshot-import-${dead}-aaaaaa`);
      const liveDir = join(layout.snapshotsDir, `.msb-snapshot-import-${process.pid}-bbbbbb`);
      mkdirSync(deadDir, { recursive: true });
      mkdirSync(liveDir, { recursive: true });
      const removed = await sweepStaleStaging(nodeFs(), layout, layout.snapshotsDir, { now: Date.now() + 2 * 3600_000, isProcessAlive: isAlive });
      assert.deepEqual(removed, [deadDir]);
      assert.ok(existsSync(liveDir));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  // ────────────────────────────────────────────────────────────────────────
  // A load killed mid-way leaves pid-stamped staging; a later store.load()
  // sweeps it once it is old enough and its process is gone. Uses the shared
  // archive without removing it (the exit handler does), so order is free.
  // ────────────────────────────────────────────────────────────────────────
  test("a later store.load() sweeps the pid-stamped staging a killed load left behind", { timeout: 600_000 }, async () => {
    const b = await getBig();
    const home = join(b.root, "sweep-home");
    try {
      const r = await runAndKill(["--home", home, "load", b.archive], () =>
        when(() => names(join(home, "snapshots")).filter((n) => n.startsWith(".msb-snapshot-import-")).some((s) => names(join(home, "snapshots", s)).length > 0), 60_000));
      assert.ok(r.killed, "the load finished before it could be killed");
      const leftovers = [
        ...names(join(home, "snapshots")).filter((n) => n.startsWith(".msb-snapshot-import-")).map((n) => join(home, "snapshots", n)),
        ...names(join(home, "cache", "tmp")).map((n) => join(home, "cache", "tmp", n)),
      ];
      assert.ok(leftovers.length >= 1, "the killed load left no staging");
      // pid-stamped staging names, so a sweep can tell whose they are
      for (const l of leftovers) assert.notEqual(stagingPid(l.slice(l.lastIndexOf("/") + 1)), null, `${l} carries no pid`);
      // age them past every threshold (the pid is dead: the child was killed)
      const old = new Date(Date.now() - 2 * 24 * 3600_000);
      for (const l of leftovers) utimesSync(l, old, old);
      const store = new SnapshotStore(nodeFs(), home);
      await store.load(b.archive);
      const still = leftovers.filter((l) => existsSync(l));
      assert.deepEqual(still, [], "store.load() did not sweep the abandoned staging");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
