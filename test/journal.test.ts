/** Rules of the promotion journal and its recovery: src/archive/journal.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { pendingPromotionTargets, PROMOTE_JOURNAL, recoverInterruptedPromotion, writePromoteJournal } from "../src/archive/journal.js";
import { SnapbundleError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { HomeLayout } from "../src/layout.js";
import { join } from "../src/path.js";
import { BACKENDS, IMAGE, makeHome, writeSparse } from "./helpers/homes.js";
import { errorRule } from "./helpers/error-rules.js";

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
});
