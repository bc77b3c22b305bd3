/**
 * Rules of the install lock (src/lock.ts): a lease on
 * `<home>/cache/tmp/install.lock` — waited for while its holder lives,
 * broken once its holder is provably gone, released whatever the body does.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { OperationAborted } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { HomeLayout } from "../src/layout.js";
import { Lease, LEASE_TTL_MS, readLease } from "../src/lease.js";
import { INSTALL_LOCK, LockTimeout, withInstallLock } from "../src/lock.js";
import { fakeProbe } from "./helpers/probe.js";

const T = { timeout: 60_000 };
const layout = new HomeLayout("/h");
const LOCK = `/h/cache/tmp/${INSTALL_LOCK}`;

function home(): { vol: InstanceType<typeof Volume>; fs: ReturnType<typeof memFs> } {
  const vol = new Volume();
  vol.mkdirSync("/h/cache/tmp", { recursive: true });
  return { vol, fs: memFs(vol) };
}

describe("the install lock", () => {
  test("rule: a live holder is waited for, named once, and the wait is bounded: LockTimeout names the lock and its holder", T, async () => {
    const { fs } = home();
    const probe = fakeProbe(4242);
    const holder = new Lease(fs, probe);
    await holder.claim(LOCK);
    try {
      const told: string[] = [];
      let ran = false;
      const started = Date.now();
      await assert.rejects(
        withInstallLock(fs, layout, { now: Date.now(), probe }, async () => void (ran = true), { timeoutMs: 300, onWait: (w) => told.push(w) }),
        (e: unknown) => e instanceof LockTimeout && e.code === "lock-timeout" && e.message.includes(LOCK) && /held by pid 4242 on host h/.test(e.message),
      );
      assert.ok(Date.now() - started >= 300, "it waited");
      assert.equal(ran, false);
      assert.deepEqual(told, [`the install lock ${LOCK} is held by pid 4242 on host h`]);
      assert.equal((await fs.readdir("/h/cache/tmp")).length, 1, "the holder's lock is untouched");
    } finally {
      await holder.release();
    }
  });

  test("rule: a lock whose holder stopped refreshing it is broken, even though its pid is alive", T, async () => {
    const { vol, fs } = home();
    const probe = fakeProbe(4242);
    const holder = new Lease(fs, probe);
    await holder.claim(LOCK);
    const old = new Date(Date.now() - 2 * LEASE_TTL_MS);
    vol.utimesSync(LOCK, old, old);
    const result = await withInstallLock(fs, layout, { now: Date.now(), probe }, async () => {
      const lease = JSON.parse(vol.readFileSync(LOCK, "utf8") as string);
      assert.notEqual(lease.token, holder.owner.token, "the lock is now ours");
      return "ran";
    }, { timeoutMs: 5_000 });
    assert.equal(result, "ran");
    assert.deepEqual(vol.readdirSync("/h/cache/tmp"), [], "released after the body, and nothing of the broken lock is left");
    await holder.release();
  });

  test("rule: a lock whose holder's pid is dead on this machine is broken at once, however fresh", T, async () => {
    const { vol, fs } = home();
    const holder = new Lease(fs, fakeProbe(999));
    await holder.claim(LOCK);
    const waited: string[] = [];
    await withInstallLock(fs, layout, { now: Date.now(), probe: fakeProbe(4242) }, async () => {}, { timeoutMs: 5_000, onWait: (w) => waited.push(w) });
    assert.deepEqual(waited, [], "nothing to wait for");
    assert.deepEqual(vol.readdirSync("/h/cache/tmp"), []);
    await holder.release();
  });

  test("rule: the lock is released when the body fails, and the failure is the caller's", T, async () => {
    const { vol, fs } = home();
    await assert.rejects(withInstallLock(fs, layout, { now: Date.now(), probe: fakeProbe() }, async () => {
      assert.ok(vol.existsSync(LOCK), "held while the body runs");
      throw new Error("body failed");
    }), /body failed/);
    assert.deepEqual(vol.readdirSync("/h/cache/tmp"), []);
  });

  test("rule: an abort while waiting rejects with OperationAborted and leaves the holder's lock", T, async () => {
    const { fs } = home();
    const probe = fakeProbe(4242);
    const holder = new Lease(fs, probe);
    await holder.claim(LOCK);
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(withInstallLock(fs, layout, { now: Date.now(), probe }, async () => {}, { timeoutMs: 30_000, signal: ac.signal }), OperationAborted);
      assert.equal((await readLease(fs, LOCK))?.owner?.token, holder.owner.token);
    } finally {
      await holder.release();
    }
  });
});
