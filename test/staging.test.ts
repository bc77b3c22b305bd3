/**
 * Rules of staging names and of judging leftovers (src/staging.ts): what a
 * sweep removes and what it keeps, by lease, by age, and for names of older
 * versions.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { memFs } from "../src/fs/memfs.js";
import { Lease, LEASE_TTL_MS } from "../src/lease.js";
import { CACHE_STAGE_PREFIX, findLeftovers, partialName, SNAPSHOT_STAGE_PREFIX, stagingPid, STALE_AFTER_MS, sweepLeftovers } from "../src/staging.js";
import { fakeProbe } from "./helpers/probe.js";

const T = { timeout: 60_000 };

function volume(): { vol: InstanceType<typeof Volume>; fs: ReturnType<typeof memFs> } {
  const vol = new Volume();
  vol.mkdirSync("/s", { recursive: true });
  return { vol, fs: memFs(vol) };
}

function age(vol: InstanceType<typeof Volume>, path: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  vol.utimesSync(path, t, t);
}

describe("leftovers with a lease", () => {
  test("rule: a live owner's staging older than the lease TTL is kept while its lease is fresh (the staging's own age does not count)", T, async () => {
    const { vol, fs } = volume();
    const probe = fakeProbe();
    const lease = new Lease(fs, probe);
    await lease.cover("/s");
    try {
      const stage = `/s/${lease.name(SNAPSHOT_STAGE_PREFIX)}`;
      vol.mkdirSync(stage);
      vol.writeFileSync(`${stage}/upper.ext4`, "data");
      age(vol, stage, 10 * LEASE_TTL_MS); // a long load: its staging was made minutes ago; its lease was refreshed just now
      const found = await findLeftovers(fs, ["/s"], { now: Date.now(), probe });
      const staging = found.find((l) => l.path === stage);
      assert.equal(staging?.verdict.state, "live", staging?.verdict.why);
      const r = await sweepLeftovers(fs, ["/s"], { now: Date.now(), probe });
      assert.deepEqual(r.removed, []);
      assert.ok(vol.existsSync(`${stage}/upper.ext4`), "the running operation's staging is still there");
      // once the lease, too, goes unrefreshed past the TTL, the same staging is reclaimed
      age(vol, lease.fileIn("/s"), 2 * LEASE_TTL_MS);
      const swept = await sweepLeftovers(fs, ["/s"], { now: Date.now(), probe });
      assert.deepEqual(swept.removed.map((l) => l.kind).sort(), ["lease", "staging"]);
      assert.deepEqual(vol.readdirSync("/s"), []);
    } finally {
      await lease.release();
    }
  });

  test("rule: the staging of an owner that is gone is reclaimed at once, however young; its lease file goes last", T, async () => {
    const { vol, fs } = volume();
    const lease = new Lease(fs, fakeProbe(4242));
    await lease.cover("/s");
    const stage = `/s/${lease.name(SNAPSHOT_STAGE_PREFIX)}`;
    vol.mkdirSync(stage);
    const probe = fakeProbe(5555); // the same machine, where pid 4242 is no longer alive
    const r = await sweepLeftovers(fs, ["/s"], { now: Date.now(), probe });
    assert.deepEqual(r.removed.map((l) => l.path), [stage, lease.fileIn("/s")]);
    assert.match(r.removed[0]!.verdict.why, /pid 4242 on host h is gone/);
    await lease.release();
  });

  test("rule: a tokened staging without a lease file is live while just made and gone once untouched past the TTL", T, async () => {
    const { vol, fs } = volume();
    const stage = `/s/${SNAPSHOT_STAGE_PREFIX}4242-abcdefghijkl`;
    vol.mkdirSync(stage);
    const probe = fakeProbe();
    assert.equal((await findLeftovers(fs, ["/s"], { now: Date.now(), probe }))[0]?.verdict.state, "live");
    age(vol, stage, 2 * LEASE_TTL_MS);
    const [l] = await findLeftovers(fs, ["/s"], { now: Date.now(), probe });
    assert.equal(l?.verdict.state, "gone");
    assert.match(l!.verdict.why, /no lease, untouched/);
  });

  test("rule: only staging names are leftovers: snapshots, other dot-files and a file with a staging name are not", T, async () => {
    const { vol, fs } = volume();
    vol.mkdirSync("/s/snap");
    vol.mkdirSync("/s/.hidden");
    vol.writeFileSync(`/s/${SNAPSHOT_STAGE_PREFIX}1-abcdefghijkl`, "a file, not a staging directory");
    vol.mkdirSync(`/s/${CACHE_STAGE_PREFIX}1-abcdefghijkl`);
    const found = await findLeftovers(fs, ["/s", "/missing"], { now: Date.now(), probe: fakeProbe() });
    assert.deepEqual(found.map((l) => l.path), [`/s/${CACHE_STAGE_PREFIX}1-abcdefghijkl`]);
  });
});

describe("names of older versions (no lease)", () => {
  test("rule: a staging named …-<pid>-XXXXXX is reclaimed only when its pid is dead and it is over an hour old", T, async () => {
    const { vol, fs } = volume();
    const stage = `/s/${SNAPSHOT_STAGE_PREFIX}123-abcDEF`;
    vol.mkdirSync(stage);
    const policy = (alive: boolean) => ({ now: Date.now(), probe: fakeProbe(), isProcessAlive: () => alive });
    age(vol, stage, STALE_AFTER_MS - 60_000);
    assert.equal((await findLeftovers(fs, ["/s"], policy(false)))[0]?.verdict.state, "live", "under an hour old");
    age(vol, stage, STALE_AFTER_MS + 60_000);
    assert.equal((await findLeftovers(fs, ["/s"], policy(true)))[0]?.verdict.state, "live", "its pid is alive");
    assert.equal((await findLeftovers(fs, ["/s"], policy(false)))[0]?.verdict.state, "gone");
  });

  test("rule: stagingPid reads the pid of both name forms; partialName is .<name>.partial-<pid>-<token>", () => {
    assert.equal(stagingPid(".msb-snapshot-import-123-abcdefghijkl"), 123);
    assert.equal(stagingPid(".msb-snapshot-import-77-AbCdEf"), 77);
    assert.equal(stagingPid(".msb-snapshot-import-x"), null);
    const lease = new Lease(memFs(new Volume()), fakeProbe());
    assert.equal(partialName("out.tar.zst", lease), `.out.tar.zst.partial-4242-${lease.owner.token}`);
  });
});
