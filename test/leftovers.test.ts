/**
 * What killed, refused and failing commands leave (issue 13): leases and
 * their verdicts, `gc`, the install lock as a lease, read-only commands that
 * write nothing, failed commands that leave no trace, and `save`'s output
 * rules. CLI cases run the built CLI on this test's runtime.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeFs } from "../src/fs/node.js";
import { judgeLease, type LeaseOwner, processProbe } from "../src/lease.js";
import { LockTimeout } from "../src/lock.js";
import { BROKEN_LOCK_PREFIX, findLeftovers } from "../src/staging.js";
import { SnapshotStore } from "../src/store.js";
import { noise } from "./helpers/bytes.js";
import { childEnv, cliInvocation, runCli, writeSparseFile } from "./helpers/cli-run.js";
import { IMAGE } from "./helpers/homes.js";

const MiB = 1 << 20;
const IMAGE_DIGEST = "sha256:" + "a".repeat(64);

function scratch(): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "snapbundle-left-"));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A home with snapshot `a` of `size` bytes holding `data` bytes of noise; and a plain-tar archive of it (unless `archive` is false). */
async function fixture(root: string, size = 16 * MiB, data = 4 * MiB, archive = true): Promise<{ home: string; archive: string; upper: string }> {
  const home = join(root, "home");
  const upper = join(root, "upper.ext4");
  const pieces: [number, Uint8Array][] = [];
  for (let off = 0; off < data; off += 4 * MiB) pieces.push([Math.floor(off / data * size / 4096) * 4096, noise(4 * MiB, off / MiB + 1)]);
  writeSparseFile(upper, size, pieces);
  const c = await runCli(["--home", home, "create", "a", "--upper", upper, "--image", IMAGE.ref, "--image-digest", IMAGE_DIGEST, "--integrity"]);
  assert.equal(c.code, 0, c.stderr);
  const path = join(root, "a.tar");
  if (!archive) return { home, archive: path, upper };
  const s = await runCli(["--home", home, "save", "a", path, "--plain-tar"]);
  assert.equal(s.code, 0, s.stderr);
  return { home, archive: path, upper };
}

function names(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** A pid that is certainly dead: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["--version"], { stdio: "ignore" });
  return r.pid!;
}

/** Write a lease file (as another process would) and staging beside it, with the given owner. */
function plant(dir: string, prefix: string, owner: Partial<LeaseOwner> & { pid: number; token: string }, ageMs = 0): { lease: string; left: string } {
  mkdirSync(dir, { recursive: true });
  const self = processProbe().self;
  const lease = join(dir, `.snapbundle-lease-${owner.pid}-${owner.token}`);
  writeFileSync(lease, JSON.stringify({ version: 1, host: self.host, boot: self.boot, pidns: self.pidns, start: null, ...owner }));
  const left = join(dir, `${prefix}${owner.pid}-${owner.token}`);
  mkdirSync(left);
  writeFileSync(join(left, "data"), noise(64 * 1024));
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    utimesSync(lease, t, t);
    utimesSync(left, t, t);
  }
  return { lease, left };
}

describe("leases: who owns a leftover", () => {
  const self = processProbe().self;
  const owner = (o: Partial<LeaseOwner>): LeaseOwner => ({ token: "t".repeat(12), pid: process.pid, host: self.host, boot: self.boot, pidns: self.pidns, start: null, ...o });

  test("dead pid on this machine: gone at once; live pid: live; pid reused (other start time): gone", { skip: self.pidns === null ? "no /proc" : false }, () => {
    const now = Date.now();
    assert.equal(judgeLease(owner({ pid: deadPid() }), now, { now }).state, "gone");
    assert.equal(judgeLease(owner({ start: processProbe().startTime(process.pid) }), now, { now }).state, "live");
    const reused = judgeLease(owner({ start: "1" }), now, { now });
    assert.equal(reused.state, "gone");
    assert.match(reused.why, /another process/);
  });

  test("another host or pid namespace: kept while its lease is fresh, gone once it stops refreshing, whatever its pid", () => {
    const now = Date.now();
    const foreign = judgeLease(owner({ host: "elsewhere", pid: 1 }), now, { now });
    assert.equal(foreign.state, "elsewhere");
    assert.match(foreign.why, /pid 1 on host elsewhere .*may still be alive/);
    assert.equal(judgeLease(owner({ pidns: "pid:[1]", pid: 1 }), now, { now }).state, "elsewhere");
    assert.equal(judgeLease(owner({ host: "elsewhere", pid: 1 }), now - 60_000, { now }).state, "gone");
    // pid 1 on this machine is alive, yet a lease it stopped refreshing is broken
    assert.equal(judgeLease(owner({ pid: 1 }), now - 60_000, { now }).state, "gone");
  });
});

describe("a killed command's leftovers are reclaimed by the next command that writes", () => {
  test("SIGKILLed load: ls warns in one line, gc --dry-run lists, the next load reclaims at once", async () => {
    const { root, cleanup } = scratch();
    try {
      const { archive } = await fixture(root);
      const home = join(root, "target");
      const inv = cliInvocation();
      const child = spawn(inv.command, [...inv.args, "--home", home, "load", "-"], { env: childEnv(), stdio: ["pipe", "ignore", "ignore"] });
      child.stdin!.on("error", () => {});
      const bytes = readFileSync(archive);
      child.stdin!.write(bytes.subarray(0, bytes.length >> 1));
      const closed = new Promise((r) => child.on("close", r));
      const snaps = join(home, "snapshots");
      const staged = () => names(snaps).some((n) => n.startsWith(".msb-snapshot-import-") && names(join(snaps, n)).length > 0);
      for (let i = 0; i < 12000 && !staged(); i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(staged(), "the load never staged");
      child.kill("SIGKILL");
      await closed;
      const left = [...names(snaps).filter((n) => n.startsWith(".")), ...names(join(home, "cache", "tmp"))];
      assert.ok(left.some((n) => n.startsWith(".msb-snapshot-import-")) && left.some((n) => n.startsWith(".snapbundle-lease-")), left.join(", "));

      const ls = await runCli(["--home", home, "ls"]);
      assert.equal(ls.code, 0);
      assert.match(ls.stderr, /^warning: 2 leftovers of interrupted operations hold [\d.]+ (B|KiB|MiB); run 'snapbundle gc' to reclaim them\n$/);
      const dry = await runCli(["--home", home, "gc", "--dry-run"]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would remove .*\.msb-snapshot-import-\d+-[a-z0-9]{12} .*is gone/);
      assert.match(dry.stdout, /2 leftovers to reclaim/);
      assert.ok(names(snaps).some((n) => n.startsWith(".msb-snapshot-import-")), "a dry run removes nothing");

      const load = await runCli(["--home", home, "load", archive]);
      assert.equal(load.code, 0, load.stderr);
      assert.deepEqual(names(snaps).filter((n) => n.startsWith(".") && n !== ".snapbundle-index.json"), [], "staging and lease reclaimed");
      assert.deepEqual(names(join(home, "cache", "tmp")), []);
      const quiet = await runCli(["--home", home, "ls"]);
      assert.equal(quiet.stderr, "");
    } finally {
      cleanup();
    }
  });

  test("SIGKILLed save: gc DIR removes the partial archive and prints what it freed; the next save there reclaims one too", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home } = await fixture(root, 256 * MiB, 32 * MiB, false); // only the home: this test saves it itself
      const outDir = join(root, "out");
      mkdirSync(outDir);
      const killSave = async () => {
        const inv = cliInvocation();
        const child = spawn(inv.command, [...inv.args, "--home", home, "save", "a", join(outDir, "a.tar.zst")], { env: childEnv(), stdio: "ignore" });
        const closed = new Promise((r) => child.on("close", r));
        let ended = false;
        void closed.then(() => (ended = true));
        const partial = () => names(outDir).some((n) => n.includes(".partial-") && statSync(join(outDir, n)).size > 0);
        while (!ended && !partial()) await new Promise((r) => setTimeout(r, 5));
        assert.ok(!ended, "the save ended before it could be killed");
        child.kill("SIGKILL");
        await closed;
        assert.ok(names(outDir).some((n) => n.includes(".partial-")));
      };
      await killSave();
      const gc = await runCli(["--home", home, "gc", outDir]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.match(gc.stdout, /removed .*\/\.a\.tar\.zst\.partial-\d+-[a-z0-9]{12} \([\d.]+ [KM]iB\)/);
      assert.match(gc.stdout, /freed [\d.]+ [KM]iB in 1 leftover\n$/);
      assert.deepEqual(names(outDir), []);

      await killSave();
      const again = await runCli(["--home", home, "save", "a", join(outDir, "b.tar"), "--plain-tar"]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(names(outDir), ["b.tar"], "the killed save's partial and lease are gone");
    } finally {
      cleanup();
    }
  });

  test("a leftover of another host is kept, and says so, until its lease goes unrefreshed", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home, archive } = await fixture(root);
      const snaps = join(home, "snapshots");
      const fresh = plant(snaps, ".msb-snapshot-import-", { pid: 1, token: "abcdefghijkl", host: "other-host" });
      const stale = plant(snaps, ".msb-snapshot-import-", { pid: 1, token: "mnopqrstuvwx", host: "other-host" }, 120_000);
      const gc = await runCli(["--home", home, "gc"]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.match(gc.stdout, /kept .*abcdefghijkl: pid 1 on host other-host \(another host or pid namespace\) may still be alive there/);
      assert.match(gc.stdout, /removed .*mnopqrstuvwx .*stopped refreshing its lease/);
      assert.ok(existsSync(fresh.left) && existsSync(fresh.lease));
      assert.ok(!existsSync(stale.left) && !existsSync(stale.lease));
      // a load keeps it too
      assert.equal((await runCli(["--home", home, "load", archive, "--name", "b"])).code, 0);
      assert.ok(existsSync(fresh.left));
    } finally {
      cleanup();
    }
  });

  test("staging of a dead pid on this machine is reclaimed by the next load without waiting an hour", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home, archive } = await fixture(root);
      const dead = plant(join(home, "snapshots"), ".msb-snapshot-import-", { pid: deadPid(), token: "deadbeef0123" });
      const cache = plant(join(home, "cache", "tmp"), "snapshot-import-", { pid: deadPid(), token: "deadbeef4567" });
      await new SnapshotStore(nodeFs(), home).load(archive, { name: "b" });
      for (const p of [dead.left, dead.lease, cache.left, cache.lease]) assert.equal(existsSync(p), false, p);
    } finally {
      cleanup();
    }
  });
});

describe("the install lock is a lease", () => {
  test("a lock whose holder stopped refreshing is broken even if its pid (1) is alive; waiting on a live one is bounded and says whom it waits for", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home, archive } = await fixture(root);
      const tmp = join(home, "cache", "tmp");
      mkdirSync(tmp, { recursive: true });
      const lock = join(tmp, "install.lock");
      const old = new Date(Date.now() - 120_000);
      const plantLock = (content: string, stale: boolean) => {
        writeFileSync(lock, content);
        if (stale) utimesSync(lock, old, old);
      };
      // pid 1 of this machine, alive, but its lease unrefreshed: no deadlock in a container
      plantLock(JSON.stringify({ version: 1, token: "lockholder01", pid: 1, ...processProbe().self, start: processProbe().startTime(1) }), true);
      const r = await runCli(["--home", home, "load", archive, "--name", "b"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(existsSync(lock), false);
      // an old version's lock, holding only "1": broken too once it is old
      plantLock("1\n", true);
      assert.equal((await runCli(["--home", home, "load", archive, "--name", "c"])).code, 0);

      // a live holder on another host: waited for, named, and given up on
      plantLock(JSON.stringify({ version: 1, token: "lockholder02", pid: 4242, host: "builder-7", boot: "x", pidns: "pid:[1]", start: null }), false);
      const waits: string[] = [];
      const e = await new SnapshotStore(nodeFs(), home).load(archive, { name: "d", lockTimeoutMs: 300, onLockWait: (w) => waits.push(w) }).catch((x) => x);
      assert.ok(e instanceof LockTimeout, String(e));
      assert.match(e.message, /install lock .*install\.lock, held by pid 4242 on host builder-7/);
      assert.equal(waits.length, 1);
      assert.match(waits[0]!, /held by pid 4242 on host builder-7 \(another host or pid namespace\)/);
      assert.deepEqual(names(join(home, "snapshots")).filter((n) => n !== ".snapbundle-index.json"), ["a", "b", "c"], "the refused load left nothing");
      assert.deepEqual(names(tmp), ["install.lock"]);
    } finally {
      cleanup();
    }
  });
});

describe("the leftover names are one list", () => {
  test("rule: an install lock set aside to be broken (install.lock.broken-*, a breaker killed mid-break) is a leftover: kept while fresh, gone once an hour untouched", async () => {
    const { root, cleanup } = scratch();
    try {
      const tmp = join(root, "cache", "tmp");
      mkdirSync(tmp, { recursive: true });
      const aside = join(tmp, `${BROKEN_LOCK_PREFIX}mf3k2a9x1b2c`);
      writeFileSync(aside, JSON.stringify({ version: 1, token: "lockholder09", pid: 1 }));
      writeFileSync(join(tmp, "install.lockx"), "not ours");
      const now = Date.now();
      const found = await findLeftovers(nodeFs(), [tmp], { now });
      assert.deepEqual(found.map((l) => [l.path, l.kind, l.verdict.state]), [[aside, "partial", "live"]]);
      const later = await findLeftovers(nodeFs(), [tmp], { now: now + 61 * 60_000 });
      assert.deepEqual(later.map((l) => [l.path, l.verdict.state]), [[aside, "gone"]]);
    } finally {
      cleanup();
    }
  });
});

describe("read-only commands write nothing; failed commands leave no trace", () => {
  test("ls, inspect, verify and --help on a home that does not exist create nothing", async () => {
    const { root, cleanup } = scratch();
    try {
      const home = join(root, "typo-home");
      assert.equal((await runCli(["--home", home, "ls"])).code, 0);
      assert.equal((await runCli(["--home", home, "--json", "ls"])).code, 0);
      assert.equal((await runCli(["--home", home, "inspect", "foo"])).code, 1);
      assert.equal((await runCli(["--home", home, "verify", "sha256:" + "0".repeat(64)])).code, 1);
      assert.equal((await runCli(["--home", home, "--help"])).code, 0);
      assert.equal((await runCli(["--home", home, "gc", "--dry-run"])).code, 0);
      assert.deepEqual(names(root), []);
    } finally {
      cleanup();
    }
  });

  test("a failed load or create into a new home leaves no home", async () => {
    const { root, cleanup } = scratch();
    try {
      const home = join(root, "new-home");
      const bad = await runCli(["--home", home, "load", "-"], { input: "this is not an archive" });
      assert.equal(bad.code, 1, bad.stderr);
      const noUpper = await runCli(["--home", home, "create", "x", "--upper", join(root, "missing"), "--image", IMAGE.ref, "--image-digest", IMAGE_DIGEST]);
      assert.equal(noUpper.code, 1);
      writeFileSync(join(root, "u"), "x");
      // a malformed digest is a usage error (exit 2), refused before the home is looked at
      const badParent = await runCli(["--home", home, "create", "x", "--upper", join(root, "u"), "--image", IMAGE.ref, "--image-digest", "nope"]);
      assert.equal(badParent.code, 2);
      assert.deepEqual(names(root), ["u"]);
    } finally {
      cleanup();
    }
  });

  test("a failed load --dest or create --dest-dir does not add its root to the index", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home } = await fixture(root, 16 * MiB, 4 * MiB, false);
      const index = join(home, "snapshots", ".snapbundle-index.json");
      await runCli(["--home", home, "ls"]);
      const before = readFileSync(index, "utf8");
      const garbage = join(root, "garbage.tar");
      writeFileSync(garbage, new Uint8Array(4096).fill(7));
      const r = await runCli(["--home", home, "load", garbage, "--dest", join(root, "dest")]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(readFileSync(index, "utf8"), before, "the index is unchanged");
      assert.equal(existsSync(join(root, "dest")), false);
      // nor does a failed create --dest-dir
      const c = await runCli(["--home", home, "create", "x", "--upper", join(root, "missing"), "--image", IMAGE.ref, "--image-digest", IMAGE_DIGEST, "--dest-dir", join(root, "dest2")]);
      assert.equal(c.code, 1);
      assert.equal(readFileSync(index, "utf8"), before, "the index is unchanged after create");
    } finally {
      cleanup();
    }
  });
});

describe("save's output", () => {
  test("an existing file is refused unless --force; a directory before any work; a missing directory is an error; messages name the user's path", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home } = await fixture(root, 16 * MiB, 4 * MiB, false);
      const out = join(root, "out.tar.zst");
      writeFileSync(out, "keep me");
      const refused = await runCli(["--home", home, "save", "a", out]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stderr, `error: ${out} already exists; use --force to replace it\n`);
      assert.equal(readFileSync(out, "utf8"), "keep me");
      assert.equal((await runCli(["--home", home, "save", "a", out, "--force"])).code, 0);
      assert.notEqual(readFileSync(out, "latin1"), "keep me");

      const dir = join(root, "adir");
      mkdirSync(dir);
      const isDir = await runCli(["--home", home, "save", "a", dir]);
      assert.equal(isDir.code, 1);
      assert.match(isDir.stderr, new RegExp(`^error: ${dir} is a directory; name the archive file to write`));
      assert.doesNotMatch(isDir.stderr, /partial/);
      assert.deepEqual(names(dir), []);

      const missing = await runCli(["--home", home, "save", "a", join(root, "no", "such", "out.tar.zst")]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, `error: cannot write ${join(root, "no", "such", "out.tar.zst")}: its directory ${join(root, "no", "such")} does not exist\n`);
      assert.equal(existsSync(join(root, "no")), false);
    } finally {
      cleanup();
    }
  });

  test("a FIFO is written into as a stream, never renamed over; a device's write error names the device", async () => {
    const { root, cleanup } = scratch();
    try {
      const { home } = await fixture(root, 16 * MiB, 4 * MiB, false);
      const fifo = join(root, "fifo");
      assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
      const reader = spawnSync("bash", ["-c", `cat '${fifo}' > '${join(root, "from-fifo.tar")}' & ${[cliInvocation().command, ...cliInvocation().args].map((a) => `'${a}'`).join(" ")} --home '${home}' save a '${fifo}' --plain-tar; s=$?; wait; exit $s`], { env: childEnv(), encoding: "utf8" });
      assert.equal(reader.status, 0, reader.stderr);
      assert.ok(statSync(fifo).isFIFO(), "still a FIFO");
      assert.deepEqual(names(root).filter((n) => n.startsWith(".")), []);
      // what came through the FIFO is the archive: GNU tar lists it
      const list = spawnSync("tar", ["-tf", join(root, "from-fifo.tar")], { encoding: "utf8" });
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /^sha256-[0-9a-f]{16}\/manifest\.json\n/);

      const full = await runCli(["--home", home, "save", "a", "/dev/full"]);
      assert.equal(full.code, 1);
      assert.match(full.stderr, /^error: writing the archive to \/dev\/full: no space left on device \(ENOSPC\)\n$/);
      assert.ok(statSync("/dev/full").isCharacterDevice());
    } finally {
      cleanup();
    }
  });
});
