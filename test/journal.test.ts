/** Rules of the promotion journal and its recovery: src/archive/journal.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import {
  clearPromoteJournal,
  pendingPromotionTargets,
  PROMOTE_JOURNAL,
  recoverInterruptedPromotion,
  writePromoteJournal,
} from "../src/archive/journal.js";
import { SnapbundleError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { HomeLayout } from "../src/layout.js";
import { join } from "../src/path.js";
import { BACKENDS, IMAGE, makeHome, writeSparse } from "./helpers/homes.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { indexOfOp, RecordingFs } from "./helpers/recording-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";

describe("promotion journal recovery", () => {
  test("rule: recovery never removes a target whose digest is not the one the dead load installed", async () => {
    const { fs, root, home, store, cleanup } = await makeHome(BACKENDS[0]!);
    try {
      await writeSparse(fs, `${root}/u`, 8192, [[0, "hello"]]);
      const mine = await store.create("mine", { upper: `${root}/u`, image: IMAGE, createdAt: "2026-05-01T12:00:00Z" });
      const theirs = await store.create("theirs", { upper: `${root}/u`, image: IMAGE, createdAt: "2026-05-02T12:00:00Z" });
      assert.notEqual(mine.digest, theirs.digest);
      const layout = new HomeLayout(home);
      await fs.mkdir(layout.cacheTmpDir, { recursive: true });
      // the dead load recorded `theirs` at a path that now holds another snapshot (`mine`): keep it
      await writePromoteJournal(fs, layout, [
        { to: mine.path, digest: theirs.digest },
        { to: theirs.path, digest: theirs.digest },
      ]);
      const removed = await recoverInterruptedPromotion(fs, layout);
      assert.deepEqual(removed, [theirs.path], "only the target holding the recorded digest is removed");
      assert.equal((await fs.lstat(mine.path)).kind, "directory");
      assert.equal((await store.resolve("mine")).digest, mine.digest);
      await assert.rejects(fs.lstat(theirs.path), (e: unknown) => (e as { errno?: string }).errno === "ENOENT");
      // the journal is gone: a second recovery does nothing
      assert.deepEqual(await recoverInterruptedPromotion(fs, layout), []);
    } finally {
      cleanup();
    }
  });
});

const raw = async (fs: FileSystem, layout: HomeLayout, text: string) => {
  await fs.mkdir(layout.cacheTmpDir, { recursive: true });
  const h = await fs.open(join(layout.cacheTmpDir, PROMOTE_JOURNAL), "w");
  try {
    await h.write(new TextEncoder().encode(text), 0);
  } finally {
    await h.close();
  }
};

describe("promotion journal", () => {
  const layout = new HomeLayout("/h");

  test("rule: listings hide every target of an uncommitted promotion, and nothing without a journal", async () => {
    const fs = memFs(new Volume());
    await fs.mkdir(layout.cacheTmpDir, { recursive: true });
    assert.deepEqual([...(await pendingPromotionTargets(fs, layout))], []);
    await writePromoteJournal(fs, layout, [
      { to: "/h/snapshots/a", digest: "sha256:" + "a".repeat(64) },
      { to: "/h/snapshots//b/", digest: "sha256:" + "b".repeat(64) },
    ]);
    assert.deepEqual([...(await pendingPromotionTargets(fs, layout))], ["/h/snapshots/a", "/h/snapshots/b"]);
  });

  test("rule: committing removes the journal and then fsyncs its directory: after a power cut it cannot come back and undo a finished load", async () => {
    const rec = new RecordingFs(memFs(new Volume()));
    await rec.mkdir(layout.cacheTmpDir, { recursive: true });
    await writePromoteJournal(rec, layout, [{ to: "/h/snapshots/a", digest: "sha256:" + "a".repeat(64) }]);
    rec.reset();
    await clearPromoteJournal(rec, layout);
    const removed = indexOfOp(rec.log, (o) => o.op === "remove" && o.path === join(layout.cacheTmpDir, PROMOTE_JOURNAL));
    assert.ok(removed >= 0, JSON.stringify(rec.log));
    assert.ok(indexOfOp(rec.log, (o) => o.op === "fsyncDir" && o.path === layout.cacheTmpDir, removed) > removed, `the removal is made durable: ${JSON.stringify(rec.log)}`);
  });

  test("rule: committing removes the journal, and committing again finds none and succeeds", async () => {
    const fs = memFs(new Volume());
    await fs.mkdir(layout.cacheTmpDir, { recursive: true });
    await writePromoteJournal(fs, layout, [{ to: "/h/snapshots/a", digest: "sha256:" + "a".repeat(64) }]);
    assert.deepEqual(await fs.readdir(layout.cacheTmpDir), [PROMOTE_JOURNAL]);
    await clearPromoteJournal(fs, layout);
    assert.deepEqual(await fs.readdir(layout.cacheTmpDir), []);
    await clearPromoteJournal(fs, layout);
    assert.deepEqual([...(await pendingPromotionTargets(fs, layout))], []);
  });

  test("rule: a journal that is not valid JSON is an invalid-journal error naming it, for listings and for recovery", async () => {
    const fs = memFs(new Volume());
    await raw(fs, layout, '{"version":1,"targets":[');
    for (const run of [() => pendingPromotionTargets(fs, layout), () => recoverInterruptedPromotion(fs, layout)]) {
      await assert.rejects(run(), (e: unknown) => {
        errorRule(SnapbundleError, "invalid-journal", /^promotion journal \/h\/cache\/tmp\/promote\.json is not valid JSON; remove it by hand after checking \/h\/snapshots$/)(e);
        assert.ok((e as Error).cause instanceof Error, "the parse error is the cause");
        return true;
      });
    }
    // nothing was guessed: the journal is still there
    assert.deepEqual(await fs.readdir(layout.cacheTmpDir), [PROMOTE_JOURNAL]);
  });

  test("rule: a journal that does not list targets as {to, digest} is an invalid-journal error naming it", async () => {
    const d = JSON.stringify("sha256:" + "a".repeat(64));
    const bad = [
      "null",
      "3",
      "[]",
      '{"version":1}',
      '{"version":1,"targets":{}}',
      '{"version":1,"targets":[null]}',
      '{"version":1,"targets":[{"to":"/h/snapshots/a"}]}',
      `{"version":1,"targets":[{"digest":${d}}]}`,
      `{"version":1,"targets":[{"to":"/h/snapshots/a","digest":${d}},{"to":1,"digest":${d}}]}`,
      `{"version":1,"targets":[{"to":"/h/snapshots/a","digest":${d}},{"to":"/h/snapshots/b","digest":null}]}`,
    ];
    for (const text of bad) {
      const fs = memFs(new Volume());
      await raw(fs, layout, text);
      for (const run of [() => pendingPromotionTargets(fs, layout), () => recoverInterruptedPromotion(fs, layout)]) {
        await assert.rejects(
          run(),
          errorRule(SnapbundleError, "invalid-journal", /^promotion journal \/h\/cache\/tmp\/promote\.json does not list targets as \{to, digest\}$/),
          text,
        );
      }
    }
  });

  test("rule: a journal that cannot be read is the filesystem's error, not a damaged journal", async () => {
    const fs = new FaultyFs(memFs(new Volume()));
    await fs.mkdir(layout.cacheTmpDir, { recursive: true });
    await writePromoteJournal(fs, layout, [{ to: "/h/snapshots/a", digest: "sha256:" + "a".repeat(64) }]);
    for (const kind of ["open", "read"] as const) {
      fs.arm({ at: 1, kind, errno: "EIO" });
      await assert.rejects(pendingPromotionTargets(fs, layout), fsErrorRule("EIO", kind === "open" ? "open" : "read"));
    }
  });
});

describe("promotion journal recovery: what is left", () => {
  const setup = async () => {
    const { fs, root, home, store, cleanup } = await makeHome(BACKENDS[0]!);
    await writeSparse(fs, `${root}/u`, 8192, [[0, "hello"]]);
    const dead = await store.create("dead", { upper: `${root}/u`, image: IMAGE, createdAt: "2026-05-01T12:00:00Z" });
    const layout = new HomeLayout(home);
    await fs.mkdir(layout.cacheTmpDir, { recursive: true });
    return { fs, layout, dead, cleanup };
  };

  test("rule: a target the dead load never promoted is skipped, and a removed target leaves nothing behind", async () => {
    const { fs, layout, dead, cleanup } = await setup();
    try {
      const never = join(layout.snapshotsDir, "never-promoted");
      await writePromoteJournal(fs, layout, [
        { to: never, digest: dead.digest },
        { to: dead.path, digest: dead.digest },
      ]);
      assert.deepEqual(await recoverInterruptedPromotion(fs, layout), [dead.path]);
      assert.deepEqual(await fs.readdir(layout.snapshotsDir), [], "no trash directory is left");
      assert.deepEqual(await fs.readdir(layout.cacheTmpDir), [], "the journal is removed");
    } finally {
      cleanup();
    }
  });

  test("rule: a removed target that cannot be deleted is left under a dot-name, and the recovery still commits", async () => {
    const { fs: inner, layout, dead, cleanup } = await setup();
    try {
      const fs = new FaultyFs(inner);
      await writePromoteJournal(fs, layout, [{ to: dead.path, digest: dead.digest }]);
      fs.arm({ at: 1, kind: "remove", match: (op) => op.path.startsWith(`${layout.snapshotsDir}/`), errno: "EIO" });
      assert.deepEqual(await recoverInterruptedPromotion(fs, layout), [dead.path]);
      assert.equal(fs.fired.length, 1, "the deletion failed");
      const left = await inner.readdir(layout.snapshotsDir);
      assert.equal(left.length, 1);
      assert.match(left[0]!, /^\.msb-removing-/, "a dot-name, which listings skip and a later sweep removes");
      assert.deepEqual(await inner.readdir(layout.cacheTmpDir), [], "the journal is removed");
    } finally {
      cleanup();
    }
  });
});
