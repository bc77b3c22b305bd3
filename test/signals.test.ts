/**
 * Interrupted commands (issue 13): real SIGINT, SIGTERM and SIGHUP sent to a
 * real CLI process — the runtime the test runs on (node, `deno run -A`, bun)
 * — during save and during load, once progress has started. Each must exit
 * 130 / 143 / 129 with `error: interrupted` and leave nothing behind: no
 * partial archive, no staging, no lease file, no home it created.
 *
 * Plus the library side: `create`, `save`, `load` and `verify` take an
 * `AbortSignal` and reject with `OperationAborted` (code "aborted"), undoing
 * their work, on memfs and node:fs.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OperationAborted } from "../src/errors.js";
import { SnapshotStore } from "../src/store.js";
import { noise } from "./helpers/bytes.js";
import { childEnv, cliInvocation, runCli, writeSparseFile } from "./helpers/cli-run.js";
import { BACKENDS, IMAGE, makeHome, tree as homeTree, writeSparse } from "./helpers/homes.js";
import { readSmallFile } from "../src/io.js";

const MiB = 1 << 20;
const IMAGE_DIGEST = "sha256:" + "a".repeat(64);

/** Every entry below `dir`, relative, sorted (dot-names included). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      out.push(rel + n);
      if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
    }
  };
  walk(dir, "");
  return out;
}

interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; signal: string | null; stderr: string; stdout: Uint8Array }>;
}

function start(args: readonly string[], stdio: { stdin?: "pipe" | "ignore"; stdout?: "pipe" | "ignore" | number; readStdout?: boolean } = {}): Running {
  const inv = cliInvocation();
  const child = spawn(inv.command, [...inv.args, ...args], { env: childEnv(), stdio: [stdio.stdin ?? "ignore", stdio.stdout ?? "pipe", "pipe"] });
  let stderr = "";
  const out: Uint8Array[] = [];
  child.stderr!.on("data", (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
  if (stdio.readStdout !== false) child.stdout?.on("data", (c: Uint8Array) => out.push(new Uint8Array(c)));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: Uint8Array }>((resolve, reject) => {
    child.on("error", reject);
    child.on(stdio.readStdout === false ? "exit" : "close", (code, signal) => resolve({ code, signal, stderr, stdout: Buffer.concat(out) }));
  });
  return { child, done };
}

/** Poll `cond` every 5 ms until it holds; false if `running` ended first or time ran out. */
async function until(cond: () => boolean, running: Running, ms = 120_000): Promise<boolean> {
  let ended = false;
  void running.done.then(() => (ended = true));
  const deadline = Date.now() + ms;
  while (!ended && Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

/** A home with snapshot `a` (integrity recorded) of `size` bytes holding `data` bytes of noise. */
async function sourceHome(root: string, size: number, data: number): Promise<string> {
  const home = join(root, "src-home");
  const upper = join(root, "upper.ext4");
  const pieces: [number, Uint8Array][] = [];
  for (let off = 0; off < data; off += 4 * MiB) pieces.push([Math.floor(off / data * size / 4096) * 4096, noise(4 * MiB, off / MiB + 1)]);
  writeSparseFile(upper, size, pieces);
  const r = await runCli(["--home", home, "create", "a", "--upper", upper, "--image", IMAGE.ref, "--image-digest", IMAGE_DIGEST, "--integrity"]);
  assert.equal(r.code, 0, r.stderr);
  return home;
}

/**
 * Save `a` of `src` as a plain tar, start `args` (a `load -`) and feed it the
 * first half of the archive, then nothing: the load waits on stdin with its
 * staging made.
 */
async function throttledLoad(root: string, src: string, args: readonly string[]): Promise<Running> {
  const archive = join(root, "a.tar");
  assert.equal((await runCli(["--home", src, "save", "a", archive, "--plain-tar"])).code, 0);
  const bytes = readFileSync(archive);
  const run = start(args, { stdin: "pipe" });
  run.child.stdin!.on("error", () => {});
  run.child.stdin!.write(bytes.subarray(0, bytes.length >> 1));
  return run;
}

function assertInterrupted(r: { code: number | null; stderr: string }, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: exit status (stderr: ${r.stderr})`);
  assert.equal(r.stderr.trim().split("\n").at(-1), "error: interrupted", `${what}: message`);
  assert.doesNotMatch(r.stderr, /internal|\n\s+at /, `${what}: no internal error or stack`);
}

describe("signals during save and load (the CLI on this runtime)", () => {
  test("SIGINT during save to a file, once the partial archive is being written: exit 130, no partial, no lease, the old output intact", { timeout: 300_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
    try {
      const home = await sourceHome(root, 256 * MiB, 32 * MiB);
      const outDir = join(root, "out");
      spawnSync("mkdir", [outDir]);
      const out = join(outDir, "a.tar.zst");
      writeFileSync(out, "the previous archive");
      const before = tree(home);
      const run = start(["--home", home, "save", "a", out, "--force"]);
      const writing = await until(() => readdirSync(outDir).some((n) => n.includes(".partial-") && statSync(join(outDir, n)).size > 0), run);
      assert.ok(writing, "the save ended before its partial archive had data");
      process.kill(run.child.pid!, "SIGINT"); // not child.kill: Deno's child_process then reports the exit as the signal, not the status
      const r = await run.done;
      assertInterrupted(r, 130, "save");
      assert.deepEqual(readdirSync(outDir), ["a.tar.zst"], "only the old output is left beside it");
      assert.equal(readFileSync(out, "utf8"), "the previous archive");
      assert.deepEqual(tree(home), before, "the home is untouched");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("SIGTERM during save to a pipe nobody reads (blocked on the write): exit 143", { timeout: 300_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
    try {
      const home = await sourceHome(root, 64 * MiB, 8 * MiB);
      // stdout is a pipe the test never reads: the save blocks once it is full
      const before = tree(home);
      const run = start(["--home", home, "save", "a", "-"], { stdout: "pipe", readStdout: false });
      // progress: the archive's first bytes arrive; then the test stops reading and the pipe fills
      let flowing = false;
      run.child.stdout!.once("data", () => {
        flowing = true;
        run.child.stdout!.pause();
      });
      const stuck = await until(() => flowing, run, 60_000);
      assert.ok(stuck, "the save ended before it could be interrupted");
      process.kill(run.child.pid!, "SIGTERM"); // not child.kill: Deno's child_process then reports the exit as the signal, not the status
      const r = await run.done;
      assertInterrupted(r, 143, "save -");
      assert.deepEqual(tree(home), before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    test(`${signal} during load from a throttled stdin, once staging has data: exit ${code}, no home left behind`, { timeout: 300_000 }, async () => {
      const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
      try {
        const src = await sourceHome(root, 16 * MiB, 4 * MiB);
        const home = join(root, "new-home"); // does not exist: a failed load must not leave it
        const run = await throttledLoad(root, src, ["--home", home, "load", "-"]);
        const staged = await until(() => tree(home).some((p) => /\.msb-snapshot-import-.*\/sha256-[0-9a-f]+\/upper/.test(p)), run, 60_000);
        assert.ok(staged, "the load never staged data");
        process.kill(run.child.pid!, signal); // not child.kill: Deno's child_process then reports the exit as the signal, not the status
        const r = await run.done;
        run.child.stdin!.destroy();
        assertInterrupted(r, code, `load (${signal})`);
        assert.equal(existsSync(home), false, `the home the load created is gone: ${tree(home).join(", ")}`);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  test("SIGINT during load into an existing home: the home ends as it began, and a later load succeeds", { timeout: 300_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
    try {
      const src = await sourceHome(root, 16 * MiB, 4 * MiB);
      const archive = join(root, "a.tar");
      const run = await throttledLoad(root, src, ["--home", src, "load", "-", "--name", "b"]);
      const before = tree(src).filter((p) => !/(^|\/)\.(msb-snapshot-import|snapbundle-lease)-|^cache/.test(p));
      assert.ok(await until(() => tree(src).some((p) => p.includes(".msb-snapshot-import-") && p.endsWith("/upper.ext4")), run, 60_000));
      process.kill(run.child.pid!, "SIGINT"); // not child.kill: Deno's child_process then reports the exit as the signal, not the status
      const r = await run.done;
      run.child.stdin!.destroy();
      assertInterrupted(r, 130, "load");
      assert.deepEqual(tree(src), before);
      const again = await runCli(["--home", src, "load", archive, "--name", "b"]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a terminal's cursor is shown again after an interrupted save (progress bar under a pty)", async (t) => {
    if (spawnSync("script", ["--version"]).status !== 0) return t.skip("no util-linux script(1) for a pty");
    const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
    try {
      const home = await sourceHome(root, 1 << 30, 64 * MiB);
      const inv = cliInvocation();
      const log = join(root, "tty.log");
      const cmd = [inv.command, ...inv.args, "--home", home, "save", "a", join(root, "x.tar.zst")].map((a) => `'${a}'`).join(" ");
      const child = spawn("script", ["-qefc", cmd, log], { env: childEnv(), stdio: ["pipe", "ignore", "ignore"] });
      const done = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
      let ended = false;
      void done.then(() => (ended = true));
      // the bar is drawn (cursor hidden) once the save is under way
      while (!ended && !(existsSync(log) && readFileSync(log, "latin1").includes("\x1b[?25l"))) await new Promise((r) => setTimeout(r, 10));
      assert.ok(!ended, "the save ended before its progress bar was drawn");
      child.stdin!.write("\x03"); // Ctrl-C at the terminal: SIGINT to the foreground process
      const code = await done;
      const text = readFileSync(log, "latin1");
      assert.equal(code, 130, text);
      assert.ok(text.lastIndexOf("\x1b[?25h") > text.lastIndexOf("\x1b[?25l"), "the cursor is shown after it was hidden");
      assert.match(text, /error: interrupted/);
      assert.deepEqual(readdirSync(root).filter((n) => n.includes("partial") || n.startsWith(".snapbundle-lease")), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("write failures on stdout are errors on every runtime", () => {
  for (const args of [["ls"], ["--json", "ls"], ["--help"], ["inspect", "a"]]) {
    test(`snapbundle ${args.join(" ")} > /dev/full: exit 1, one error line naming ENOSPC`, { timeout: 300_000 }, async () => {
      const root = mkdtempSync(join(tmpdir(), "snapbundle-sig-"));
      try {
        const home = await sourceHome(root, MiB, 0);
        const full = openSync("/dev/full", "w");
        const run = start(["--home", home, ...args], { stdout: full });
        closeSync(full);
        const r = await run.done;
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stderr, "error: writing to stdout: no space left on device (ENOSPC)\n");
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe("a closed pipe on stdout ends the command quietly on every runtime", () => {
  test("rule: a reader that left early (EPIPE) is no error: exit 141 (128 + SIGPIPE, as tar and cat report it), nothing on stderr", async () => {
    const run = start(["--help"], { stdout: "pipe", readStdout: false });
    run.child.stdout!.destroy(); // the reading end is closed long before the runtime has started
    const r = await run.done;
    assert.equal(r.code, 141, r.stderr);
    assert.equal(r.stderr, "");
  });
});

for (const backend of BACKENDS) {
  describe(`AbortSignal in the library (${backend.label})`, () => {
    /** A signal that fires after `n` progress reports. */
    const abortAfter = (n: number) => {
      const ac = new AbortController();
      let seen = 0;
      return { signal: ac.signal, onProgress: () => void (++seen === n && ac.abort("test")) };
    };

    test("create, verify, save and load reject with OperationAborted mid-stream and leave nothing", { timeout: 300_000 }, async () => {
      const h = await makeHome(backend);
      try {
        const { fs, root, home } = h;
        await writeSparse(fs, `${root}/u`, 8 * MiB, [[0, noise(3 * MiB)], [5 * MiB, noise(2 * MiB, 3)]]);
        const fresh = new SnapshotStore(fs, `${root}/new-home`);
        const c = abortAfter(1);
        const err = await fresh.create("x", { upper: `${root}/u`, image: IMAGE, integrity: true, ...c }).then(() => null, (e) => e);
        assert.ok(err instanceof OperationAborted, String(err));
        assert.equal(err.code, "aborted");
        assert.equal(await fs.lstat(`${root}/new-home`).then(() => true, () => false), false, "create left no home");

        const store = h.store;
        await store.create("a", { upper: `${root}/u`, image: IMAGE, integrity: true });
        const homeBefore = await homeTree(fs, home);
        assert.ok((await store.verify("a", abortAfter(1)).catch((e) => e)) instanceof OperationAborted);

        await fs.mkdir(`${root}/out`);
        await writeSparse(fs, `${root}/out/a.tar.zst`, 0, [[0, "old"]]);
        const s = abortAfter(2);
        assert.ok((await store.save("a", `${root}/out/a.tar.zst`, { overwrite: true, onProgress: s.onProgress, signal: s.signal }).catch((e) => e)) instanceof OperationAborted);
        assert.deepEqual(await fs.readdir(`${root}/out`), ["a.tar.zst"], "no partial, no lease file");
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/out/a.tar.zst`, 64)), "old");

        await store.save("a", `${root}/a.tar`, { plainTar: true });
        const other = new SnapshotStore(fs, `${root}/home2`);
        const l = abortAfter(2);
        assert.ok((await other.load(`${root}/a.tar`, l).catch((e) => e)) instanceof OperationAborted);
        assert.equal(await fs.lstat(`${root}/home2`).then(() => true, () => false), false, "load left no home");
        // an already-aborted signal: nothing starts
        const ac = new AbortController();
        ac.abort();
        assert.ok((await store.load(`${root}/a.tar`, { name: "b", signal: ac.signal }).catch((e) => e)) instanceof OperationAborted);
        assert.deepEqual(await homeTree(fs, home), homeBefore, "the home is as before");
      } finally {
        h.cleanup();
      }
    });

    test("an abort while a load waits on a stalled stream is honoured at once", { timeout: 300_000 }, async () => {
      const h = await makeHome(backend);
      try {
        const ac = new AbortController();
        const stalled = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new Uint8Array(512)); }, pull() { return new Promise(() => {}); } });
        const loading = h.store.load(stalled, { signal: ac.signal });
        await new Promise((r) => setTimeout(r, 100));
        ac.abort("SIGINT");
        const e = await loading.catch((x) => x);
        assert.ok(e instanceof OperationAborted, String(e));
        assert.equal(e.reason, "SIGINT");
      } finally {
        h.cleanup();
      }
    });
  });
}
