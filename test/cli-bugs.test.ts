/**
 * The sharp edges a newcomer hit in a day of use (issue 24, its bugs and
 * gaps 8–9), each as a rule, against the BUILT CLI on the runtime running
 * the test (node, `deno run -A`, bun): real symlinks, real FIFOs, real
 * signals, real pipes and real `kill -9` leftovers.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import "./helpers/node-host.js"; // installs the host: /proc is the source of this process's identity
import { processProbe } from "../src/lease.js";
import { createSnapshot, errorLine, expectRun, IMAGE_DIGEST, IMAGE_REF, scratchDir, stdoutJson } from "./helpers/cli-assert.js";
import { noise } from "./helpers/bytes.js";
import { childEnv, cliInvocation, runCli, RUNTIME, writeSparseFile } from "./helpers/cli-run.js";

const T = { timeout: 60_000 };
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

interface Started {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Start the CLI; stdout is read unless `stdout` says otherwise. */
function start(args: readonly string[], stdout: "pipe" | "ignore" | number = "pipe", read = true): Started {
  const inv = cliInvocation();
  const child = spawn(inv.command, [...inv.args, ...args], { env: childEnv(), stdio: ["ignore", stdout, "pipe"] });
  let out = "";
  let err = "";
  if (read) child.stdout?.on("data", (c: Uint8Array) => (out += new TextDecoder().decode(c)));
  child.stderr!.on("data", (c: Uint8Array) => (err += new TextDecoder().decode(c)));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: out, stderr: err }));
  });
  return { child, done };
}

/** Poll until one of `pid`'s threads is blocked opening a FIFO (`wait_for_partner`), or `ms` pass. */
async function blockedOnFifo(pid: number, ms = 30_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        if (readFileSync(`/proc/${pid}/task/${t}/wchan`, "utf8").includes("wait_for_partner")) return true;
      }
    } catch {
      return false;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** A pid that no process has (one that just exited). */
function deadPid(): number {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  return Number(r.stdout.trim());
}

/** What a `kill -9`'d load leaves in `dir`: its staging directory (with data) and its lease file, owned by a dead pid of this machine. */
function killedLoadLeftovers(dir: string): string[] {
  const pid = deadPid();
  const token = "k9k9k9k9k9k9";
  const self = processProbe().self;
  const stage = join(dir, `.msb-snapshot-import-${pid}-${token}`);
  mkdirSync(join(stage, "sha256-0123456789abcdef"), { recursive: true });
  writeFileSync(join(stage, "sha256-0123456789abcdef", "upper.ext4"), noise(64 << 10));
  const lease = join(dir, `.snapbundle-lease-${pid}-${token}`);
  writeFileSync(lease, JSON.stringify({ version: 1, token, pid, ...self, start: "1" }) + "\n");
  return [stage, lease];
}

/** Snapshot `a` with 4 MiB of noise (more than a pipe holds), and `save a -` started into a pipe the test reads as it likes. */
async function savingToPipe(home: string, root: string): Promise<Started> {
  const big = join(root, "big.ext4");
  writeSparseFile(big, 8 << 20, [[0, noise(4 << 20)]]);
  await createSnapshot(home, "a", big);
  return start(["--home", home, "save", "a", "-"], "pipe", false);
}

describe(`issue 24 bugs on ${RUNTIME}`, () => {
  test("rule: save follows a symlinked output and replaces the file it names; the link stays (bug 1)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      const real = join(root, "real.tar.zst");
      writeFileSync(real, "old archive");
      const link = join(root, "link.tar.zst");
      symlinkSync("real.tar.zst", link);
      expectRun(await runCli(["--home", home, "save", "a", link, "--force"]), "save to a link", 0);
      assert.ok(lstatSync(link).isSymbolicLink(), "the link is still a link");
      assert.equal(readlinkSync(link), "real.tar.zst");
      assert.deepEqual([...readFileSync(real).subarray(0, 4)], ZSTD_MAGIC, "the file the link names holds the archive");
      assert.deepEqual(readdirSync(root).sort(), ["home", "link.tar.zst", "real.tar.zst", "upper.ext4"], "nothing else beside it");
    } finally {
      cleanup();
    }
  });

  test("rule: save to /dev/stdout redirected to a file writes the file through stdout and leaves /dev/stdout alone (bug 1)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      const file = join(root, "out.tar.zst");
      const fd = openSync(file, "w");
      const run = start(["--home", home, "save", "a", "/dev/stdout", "--force"], fd, false);
      closeSync(fd);
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(lstatSync("/dev/stdout").isSymbolicLink(), "/dev/stdout is still a link");
      const bytes = readFileSync(file);
      assert.deepEqual([...bytes.subarray(0, 4)], ZSTD_MAGIC, "the redirected file holds the archive, and nothing else");
      const check = expectRun(await runCli(["--json", "verify", file]), "verify the archive written through /dev/stdout", 0);
      assert.equal(stdoutJson(check, "verify").head.startsWith("sha256:"), true);
    } finally {
      cleanup();
    }
  });

  test("rule: save to /dev/null or a FIFO reports the bytes it wrote (bug 7)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      const file = join(root, "a.tar.zst");
      const toFile = stdoutJson(expectRun(await runCli(["--home", home, "--json", "save", "a", file]), "save to a file", 0), "save");
      assert.equal(toFile.bytes, readFileSync(file).length);
      const toNull = stdoutJson(expectRun(await runCli(["--home", home, "--json", "save", "a", "/dev/null"]), "save to /dev/null", 0), "save");
      assert.equal(toNull.bytes, toFile.bytes, "the same archive, the same bytes");
      const text = expectRun(await runCli(["--home", home, "save", "a", "/dev/null"]), "save to /dev/null", 0).stdout;
      assert.match(text, new RegExp(`to /dev/null \\(${(toFile.bytes / 1024).toFixed(1).replace(".", "\\.")} KiB\\)`));
      const fifo = join(root, "fifo");
      assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
      const reader = spawn("cat", [fifo], { stdio: ["ignore", "pipe", "ignore"] });
      let got = 0;
      reader.stdout.on("data", (c: Uint8Array) => (got += c.length));
      const readerDone = new Promise((r) => reader.on("close", r));
      const toFifo = stdoutJson(expectRun(await runCli(["--home", home, "--json", "save", "a", fifo]), "save to a FIFO", 0), "save");
      await readerDone;
      assert.equal(toFifo.bytes, toFile.bytes);
      assert.equal(got, toFile.bytes, "what the reader got");
    } finally {
      cleanup();
    }
  });

  for (const [what, signal, code] of [["save into a FIFO nobody reads", "SIGTERM", 143], ["load from a FIFO nobody writes", "SIGINT", 130]] as const) {
    test(`rule: ${what} stops at the first ${signal} (exit ${code}), with the --json error document (bugs 2, 3)`, T, async () => {
      const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
      try {
        await createSnapshot(home, "a", upper);
        const fifo = join(root, "fifo");
        assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
        const run = start(what.startsWith("save") ? ["--home", home, "--json", "save", "a", fifo] : ["--home", home, "--json", "load", fifo]);
        assert.ok(await blockedOnFifo(run.child.pid!), "the command blocks opening the FIFO");
        const sent = Date.now();
        process.kill(run.child.pid!, signal);
        const killer = setTimeout(() => run.child.kill("SIGKILL"), 10_000);
        const r = await run.done;
        clearTimeout(killer);
        assert.equal(r.code, code, `exit status (stderr ${JSON.stringify(r.stderr)})`);
        assert.ok(Date.now() - sent < 5_000, "exits at once");
        assert.equal(r.stderr, "error: interrupted\n");
        assert.deepEqual(JSON.parse(r.stdout), { error: { code: "aborted", message: `interrupted (${signal})`, path: null } });
        assert.deepEqual(readdirSync(root).sort(), ["fifo", "home", "upper.ext4"], "nothing left beside the FIFO");
      } finally {
        cleanup();
      }
    });
  }

  test("rule: --json names the upper of an integrity mismatch, and a save without recorded integrity is not called verified (bug 3)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      const r = await runCli(["--home", home, "--json", "create", "plain", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]);
      expectRun(r, "create without integrity", 0);
      const saved = stdoutJson(expectRun(await runCli(["--home", home, "--json", "save", "plain", join(root, "p.tar.zst")]), "save", 0), "save");
      assert.equal(saved.verified, false, "nothing was verified");
      assert.match(expectRun(await runCli(["--home", home, "save", "plain", join(root, "q.tar.zst")]), "save", 0).stdout, /; not verified: no integrity recorded\n$/);
      const a = await createSnapshot(home, "a", upper);
      const fd = openSync(join(a.path, "upper.ext4"), "r+");
      writeSync(fd, new TextEncoder().encode("J"), 0, 1, 0); // "hello" becomes "Jello"
      closeSync(fd);
      const bad = await runCli(["--home", home, "--json", "verify", "a"]);
      assert.equal(bad.code, 1);
      const doc = JSON.parse(bad.stdout);
      assert.equal(doc.error.code, "snapshot-integrity");
      assert.equal(doc.error.path, join(a.path, "upper.ext4"));
    } finally {
      cleanup();
    }
  });

  test("rule: leftovers of a kill -9'd load are reclaimed by create, rm, save and reindex, as by every command that writes (bug 4)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      await createSnapshot(home, "b", upper);
      const commands = {
        create: ["create", "c", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST],
        rm: ["rm", "b"],
        save: ["save", "a", join(root, "a.tar.zst")],
        reindex: ["reindex"],
      };
      for (const [command, args] of Object.entries(commands)) {
        const left = killedLoadLeftovers(join(home, "snapshots"));
        expectRun(await runCli(["--home", home, ...args]), command, 0);
        for (const p of left) assert.equal(existsSync(p), false, `${command} reclaimed ${p}`);
      }
    } finally {
      cleanup();
    }
  });

  test("rule: a home copied elsewhere does not keep its old path as an extra root (bug 5)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      const a = await createSnapshot(home, "a", upper);
      expectRun(await runCli(["--home", home, "ls"]), "ls writes the index", 0);
      const copy = join(root, "copy");
      cpSync(home, copy, { recursive: true });
      const listed = stdoutJson(expectRun(await runCli(["--home", copy, "--json", "ls"]), "ls the copy", 0), "ls");
      assert.deepEqual(listed.map((s: { path: string }) => s.path), [join(copy, "snapshots", "a")], "listed once, in the copy");
      const found = stdoutJson(expectRun(await runCli(["--home", copy, "--json", "inspect", a.digest]), "inspect by digest", 0), "inspect");
      assert.equal(found.path, join(copy, "snapshots", "a"), "the digest is not ambiguous");
      const index = JSON.parse(readFileSync(join(copy, "snapshots", ".snapbundle-index.json"), "utf8"));
      assert.deepEqual(index.roots, [join(copy, "snapshots")]);
    } finally {
      cleanup();
    }
  });

  test("rule: reindex of a directory that does not exist fails naming it and adds nothing (bug 6)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      const index = join(home, "snapshots", ".snapbundle-index.json");
      expectRun(await runCli(["--home", home, "ls"]), "ls", 0);
      const before = readFileSync(index, "utf8");
      const missing = join(root, "no", "such", "dir");
      const line = errorLine(await runCli(["--home", home, "reindex", missing]), "reindex a missing dir", 1);
      assert.equal(line, `error: cannot index ${missing}: it does not exist; nothing was added to the index`);
      assert.equal(readFileSync(index, "utf8"), before, "the index is unchanged");
    } finally {
      cleanup();
    }
  });

  test("rule: save into a pipe whose reader left early ends quietly with 141, as tar does (bug 9)", T, async () => {
    const { home, root, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      const run = await savingToPipe(home, root);
      run.child.stdout!.once("data", () => run.child.stdout!.destroy()); // `| head -c 1`
      const r = await run.done;
      assert.equal(r.code, 141, r.stderr);
      assert.equal(r.stderr, "");
    } finally {
      cleanup();
    }
  });

  test("rule: rm refuses while a save of the same snapshot runs, naming the save; afterwards it removes it (bug 10)", T, async () => {
    const { home, root, cleanup } = scratchDir("snapbundle-bugs-");
    let saving: Started | null = null;
    try {
      // stdout is a pipe nobody reads: the save blocks once it is full, holding the snapshot
      const run = (saving = await savingToPipe(home, root));
      await new Promise<void>((r) => run.child.stdout!.once("readable", () => r()));
      const refused = errorLine(await runCli(["--home", home, "rm", "a"]), "rm during save", 1);
      assert.match(refused, new RegExp(`^error: snapshot ${join(home, "snapshots", "a")} is being read by a save \\(pid ${run.child.pid}[ )]`));
      assert.ok(existsSync(join(home, "snapshots", "a", "manifest.json")), "still there");
      run.child.stdout!.resume(); // let the save finish
      assert.equal((await run.done).code, 0);
      expectRun(await runCli(["--home", home, "rm", "a"]), "rm after the save", 0);
      assert.equal(existsSync(join(home, "snapshots", "a")), false);
      assert.deepEqual(readdirSync(join(home, "snapshots")).filter((n) => n.startsWith(".snapbundle-lease")), [], "no mark left");
    } finally {
      if (saving !== null && saving.child.exitCode === null) saving.child.kill("SIGKILL"); // a failed assertion must not leave it blocked
      cleanup();
    }
  });

  test("rule: a snapshot loaded with --dest DIR is found by the name ls shows, by rm, inspect and verify (bug 11)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      const bundle = join(root, "a.tar.zst");
      expectRun(await runCli(["--home", home, "save", "a", bundle]), "save", 0);
      const other = join(root, "other-home");
      const dest = join(root, "dest");
      const loaded = stdoutJson(expectRun(await runCli(["--home", other, "--json", "load", bundle, "--dest", dest]), "load --dest", 0), "load");
      const listed = stdoutJson(expectRun(await runCli(["--home", other, "--json", "ls"]), "ls", 0), "ls");
      assert.deepEqual(listed.map((s: { name: string }) => s.name), [loaded.name]);
      assert.equal(stdoutJson(expectRun(await runCli(["--home", other, "--json", "inspect", loaded.name]), "inspect by name", 0), "inspect").path, join(dest, loaded.name));
      expectRun(await runCli(["--home", other, "verify", loaded.name]), "verify by name", 0);
      expectRun(await runCli(["--home", other, "rm", loaded.name]), "rm by name", 0);
      assert.equal(existsSync(join(dest, loaded.name)), false);
    } finally {
      cleanup();
    }
  });

  test("rule: a name wins over a file of that name in the current directory; ./NAME is the file (bug 12)", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bugs-");
    try {
      await createSnapshot(home, "a", upper);
      writeFileSync(join(root, "a"), "not a bundle");
      for (const command of ["inspect", "verify"]) {
        const r = expectRun(await runCli(["--home", home, "--json", command, "a"], { cwd: root }), `${command} a`, 0);
        assert.equal(stdoutJson(r, command).path, join(home, "snapshots", "a"), `${command}: the snapshot named a`);
        const file = await runCli(["--home", home, command, "./a"], { cwd: root });
        assert.match(errorLine(file, `${command} ./a`, 1), /a\b.*(not|archive|zstd|tar)/i, `${command} ./a reads the file`);
      }
      // a file whose name no snapshot has is still a bundle without ./
      expectRun(await runCli(["--home", home, "save", "a", join(root, "b.tar.zst")]), "save", 0);
      expectRun(await runCli(["--home", home, "verify", "b.tar.zst"], { cwd: root }), "verify b.tar.zst", 0);
    } finally {
      cleanup();
    }
  });
});

describe(`issue 24 messages on ${RUNTIME} (gaps 8, 9)`, () => {
  test("rule: load names what is wrong with its source and --dest in words, not a bare errno", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-msg-");
    try {
      await createSnapshot(home, "a", upper);
      const bundle = join(root, "a.tar.zst");
      expectRun(await runCli(["--home", home, "save", "a", bundle]), "save", 0);
      assert.equal(errorLine(await runCli(["--home", home, "load", root]), "load DIR", 1), `error: cannot load ${root}: it is a directory, not a bundle; name the .tar.zst file to load`);
      const missing = join(root, "missing.tar.zst");
      assert.equal(errorLine(await runCli(["--home", home, "load", missing]), "load a missing file", 1), `error: cannot load ${missing}: no such file`);
      const file = join(root, "file");
      writeFileSync(file, "x");
      assert.equal(errorLine(await runCli(["--home", home, "load", bundle, "--dest", file]), "--dest FILE", 1), `error: cannot load into ${file}: it is not a directory (--dest names the directory the snapshots go into)`);
    } finally {
      cleanup();
    }
  });

  test("rule: help of a command that does not exist lists the commands; rm names --force; a short digest prefix says the minimum", T, async () => {
    const { home, upper, cleanup } = scratchDir("snapbundle-msg-");
    try {
      const help = errorLine(await runCli(["help", "nosuch"]), "help nosuch", 2);
      assert.match(help, /^error: command "nosuch" is not a command; the commands are create, ls, /);
      const a = await createSnapshot(home, "a", upper);
      await createSnapshot(home, "b", upper, ["--parent", "a"]);
      assert.match(errorLine(await runCli(["--home", home, "rm", "a"]), "rm a parent", 1), /; remove them first, or use --force to remove it anyway$/);
      const short = a.digest.slice(7, 7 + 8);
      assert.match(errorLine(await runCli(["--home", home, "inspect", short]), "short prefix", 1), /; a digest prefix needs at least 12 hex digits \("[0-9a-f]{8}" has 8\)$/);
    } finally {
      cleanup();
    }
  });

  test("rule: a mismatch found in the unpacked copy names the bundle and the snapshot's entry, not the temporary copy", T, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-msg-");
    try {
      const a = await createSnapshot(home, "a", upper);
      const bundle = join(root, "a.tar");
      expectRun(await runCli(["--home", home, "save", "a", bundle, "--plain-tar"]), "save", 0);
      const bytes = readFileSync(bundle);
      const at = bytes.indexOf(new TextEncoder().encode("hello"));
      assert.ok(at > 0, "the upper's data is in the tar");
      bytes[at] = "J".charCodeAt(0); // the tar stays well-formed; the upper no longer matches
      writeFileSync(bundle, bytes);
      const r = await runCli(["--json", "--home", join(root, "h2"), "load", bundle]);
      assert.equal(r.code, 1, r.stderr);
      const line = r.stderr.trim();
      assert.doesNotMatch(line, /\.msb-snapshot-import-/, "no temporary name");
      assert.match(line, new RegExp(`^error: ${bundle}: sha256-${a.digest.slice(7, 23)}/upper\\.ext4: upper does not match its recorded integrity`));
      assert.equal(JSON.parse(r.stdout).error.path, bundle);
    } finally {
      cleanup();
    }
  });
});
