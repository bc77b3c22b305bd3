/**
 * Rules of leases (src/lease.ts): who holds one, how a lease file looks and
 * is refreshed, and the verdicts on its owner — including the start time
 * read from a real `/proc/<pid>/stat` of a process whose command name holds
 * spaces and parentheses.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import "../src/mod.js"; // the entry point tells the core about this process (pid, /proc, host name)
import { memFs } from "../src/fs/memfs.js";
import { HEARTBEAT_MS, judgeLease, Lease, LEASE_PREFIX, LEASE_TTL_MS, type LeaseOwner, type ProcessProbe, parseLeaseOwner, readLease } from "../src/lease.js";
import { fakeProbe } from "./helpers/probe.js";

const T = { timeout: 60_000 };

/** Field 22 (starttime) of /proc/<pid>/stat, parsed here on its own: the fields after the last ")" start at field 3. */
function procStartTime(pid: number | "self"): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 1).trim().split(/\s+/);
  return fields[22 - 3]!;
}

function memRoot(): ReturnType<typeof memFs> {
  const vol = new Volume();
  vol.mkdirSync("/d", { recursive: true });
  return memFs(vol);
}

const hasProc = (() => {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

describe("a lease's owner, from this process", () => {
  test("rule: a lease's start time is field 22 of /proc/<pid>/stat, counted after the command in parentheses (which may hold spaces and \")\")", { ...T, skip: hasProc ? false : "no /proc" }, async () => {
    const me = new Lease(memRoot()).owner;
    assert.equal(me.pid, process.pid);
    assert.notEqual(me.pidns, null, "the entry point registered the process information");
    assert.equal(me.start, procStartTime("self"), "this process's own start time");
    // a live process whose command name is "x) y (z": a parser that splits the whole line, or cuts at the first ")", reads another field
    const dir = mkdtempSync(join(tmpdir(), "snapbundle-lease-"));
    const odd = join(dir, "x) y (z");
    symlinkSync("/bin/sleep", odd);
    const child = spawn(odd, ["30"], { stdio: "ignore" });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      const pid = child.pid!;
      assert.match(readFileSync(`/proc/${pid}/stat`, "utf8"), /^\d+ \(x\) y \(z\) /, "the command name holds spaces and parentheses");
      const start = procStartTime(pid);
      const now = Date.now();
      const owner: LeaseOwner = { ...me, token: "t".repeat(12), pid, start };
      assert.equal(judgeLease(owner, now, { now }).state, "live", "its true start time: the process is its owner");
      const reused = judgeLease({ ...owner, start: String(Number(start) + 1) }, now, { now });
      assert.equal(reused.state, "gone", "another start time: the pid was reused");
      assert.match(reused.why, /another process/);
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("lease files", () => {
  test("rule: cover writes .snapbundle-lease-<pid>-<token> beside what it covers, naming the owner; release removes it", T, async () => {
    const fs = memRoot();
    const lease = new Lease(fs, fakeProbe());
    assert.match(lease.owner.token, /^[a-z0-9]{12}$/);
    assert.equal(lease.name(".msb-create-"), `.msb-create-4242-${lease.owner.token}`);
    await lease.cover("/d");
    assert.deepEqual(await fs.readdir("/d"), [`${LEASE_PREFIX}4242-${lease.owner.token}`]);
    const read = await readLease(fs, lease.fileIn("/d"));
    assert.deepEqual(read?.owner, { token: lease.owner.token, pid: 4242, host: "h", boot: "b", pidns: "pid:[1]", start: "77" });
    await lease.release();
    assert.deepEqual(await fs.readdir("/d"), []);
  });

  test("rule: a refresh rewrites every lease file, so its mtime is the owner's heartbeat", T, async () => {
    const vol = new Volume();
    vol.mkdirSync("/d");
    const fs = memFs(vol);
    const lease = new Lease(fs, fakeProbe());
    await lease.cover("/d");
    try {
      const old = new Date(Date.now() - 10 * HEARTBEAT_MS);
      vol.utimesSync(lease.fileIn("/d"), old, old);
      assert.ok((await readLease(fs, lease.fileIn("/d")))!.heartbeatMs < Date.now() - 5 * HEARTBEAT_MS);
      await lease.refresh();
      assert.ok((await readLease(fs, lease.fileIn("/d")))!.heartbeatMs > Date.now() - HEARTBEAT_MS);
    } finally {
      await lease.release();
    }
  });

  test("rule: claim creates a lock file exclusively: a second claim fails with EEXIST and leaves the first holder's file", T, async () => {
    const fs = memRoot();
    const a = new Lease(fs, fakeProbe());
    const b = new Lease(fs, fakeProbe());
    await a.claim("/d/lock");
    try {
      await assert.rejects(b.claim("/d/lock"), (e: { errno?: string }) => e.errno === "EEXIST");
      assert.equal((await readLease(fs, "/d/lock"))?.owner?.token, a.owner.token);
    } finally {
      await a.release();
      await b.release();
    }
  });

  test("rule: text that is not a lease (not JSON, no token or pid) has no owner", () => {
    assert.equal(parseLeaseOwner("garbage"), null);
    assert.equal(parseLeaseOwner(`{"pid":1}`), null);
    assert.equal(parseLeaseOwner(`{"token":"x","pid":"1"}`), null);
    assert.deepEqual(parseLeaseOwner(`{"token":"x","pid":1}`), { token: "x", pid: 1, host: null, boot: null, pidns: null, start: null });
  });
});

describe("verdicts", () => {
  const probe = fakeProbe();
  const owner = (o: Partial<LeaseOwner> = {}): LeaseOwner => ({ token: "t".repeat(12), pid: 4242, host: "h", boot: "b", pidns: "pid:[1]", start: "77", ...o });
  const now = 1_000_000_000;

  test("rule: a heartbeat older than the TTL is gone, even for a live pid on this machine", () => {
    assert.equal(judgeLease(owner(), now - LEASE_TTL_MS + 1000, { now, probe }).state, "live");
    const v = judgeLease(owner(), now - LEASE_TTL_MS - 1000, { now, probe });
    assert.equal(v.state, "gone");
    assert.match(v.why, /stopped refreshing its lease 31s ago/);
  });

  test("rule: on this machine, a dead pid is gone at once; another boot, host or pid namespace is elsewhere while fresh", () => {
    assert.equal(judgeLease(owner({ pid: 99 }), now, { now, probe }).state, "gone");
    for (const other of [{ boot: "b2" }, { host: "h2" }, { pidns: "pid:[2]" }]) {
      assert.equal(judgeLease(owner({ pid: 99, ...other }), now, { now, probe }).state, "elsewhere", JSON.stringify(other));
    }
  });

  test("rule: a lease with no start time is judged by its pid alone; a probe that cannot tell keeps it live", () => {
    assert.equal(judgeLease(owner({ start: null }), now, { now, probe }).state, "live");
    const blind: ProcessProbe = { ...probe, isAlive: () => null, startTime: () => null };
    assert.equal(judgeLease(owner({ pid: 99 }), now, { now, probe: blind }).state, "live");
  });
});
