/** Rules of the promotion journal's recovery: src/archive/journal.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { recoverInterruptedPromotion, writePromoteJournal } from "../src/archive/journal.js";
import { HomeLayout } from "../src/layout.js";
import { BACKENDS, IMAGE, makeHome, writeSparse } from "./helpers/homes.js";

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
