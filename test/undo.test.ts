/** Rules of the load's undo log and the undo of a mkdir: src/archive/undo.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { removeDirIfEmpty, UndoLog } from "../src/archive/undo.js";
import { memFs } from "../src/fs/memfs.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { fsErrorRule } from "./helpers/error-rules.js";

describe("undo log", () => {
  test("rule: rollback undoes every step, newest first, and resolves no failures when all succeed", async () => {
    const undo = new UndoLog();
    const ran: string[] = [];
    for (const s of ["mkdir", "rename a", "rename b"]) undo.push(`undo ${s}`, async () => void ran.push(s));
    assert.deepEqual(await undo.rollback(), []);
    assert.deepEqual(ran, ["rename b", "rename a", "mkdir"]);
    // the steps are consumed: a second rollback runs nothing
    assert.deepEqual(await undo.rollback(), []);
    assert.deepEqual(ran, ["rename b", "rename a", "mkdir"]);
  });

  test("rule: an empty undo log rolls back to no failures", async () => {
    assert.deepEqual(await new UndoLog().rollback(), []);
  });

  test("rule: a step that cannot be undone is reported by its label and the older steps still run", async () => {
    const undo = new UndoLog();
    const ran: string[] = [];
    undo.push("remove directory /h/cache/layers", async () => void ran.push("rmdir"));
    undo.push("move /h/snapshots/a back to staging", async () => {
      throw new Error("EIO");
    });
    undo.push("remove /h/cache/x", async () => void ran.push("rm"));
    undo.push("remove /h/cache/y", () => Promise.reject(new Error("EACCES")));
    assert.deepEqual(await undo.rollback(), ["remove /h/cache/y", "move /h/snapshots/a back to staging"]);
    assert.deepEqual(ran, ["rm", "rmdir"]);
  });

  test("rule: commit forgets every step, so a later rollback undoes nothing", async () => {
    const undo = new UndoLog();
    let ran = 0;
    undo.push("a", async () => void ran++);
    undo.push("b", async () => void ran++);
    undo.commit();
    assert.deepEqual(await undo.rollback(), []);
    assert.equal(ran, 0);
    // a step pushed after the commit is a new transaction's, and is undone
    undo.push("c", async () => void ran++);
    assert.deepEqual(await undo.rollback(), []);
    assert.equal(ran, 1);
  });
});

describe("undo of a mkdir", () => {
  const setup = async () => {
    const fs = memFs(new Volume());
    await fs.mkdir("/h/cache/layers", { recursive: true });
    return fs;
  };

  test("rule: an empty directory is removed", async () => {
    const fs = await setup();
    await removeDirIfEmpty(fs, "/h/cache/layers");
    assert.deepEqual(await fs.readdir("/h/cache"), []);
  });

  test("rule: a directory that holds something is left alone", async () => {
    const fs = await setup();
    await fs.mkdir("/h/cache/layers/sub");
    await removeDirIfEmpty(fs, "/h/cache/layers");
    assert.deepEqual(await fs.readdir("/h/cache/layers"), ["sub"]);
  });

  test("rule: a directory that is gone already is fine", async () => {
    const fs = await setup();
    await removeDirIfEmpty(fs, "/h/cache/fsmeta");
    assert.deepEqual(await fs.readdir("/h/cache"), ["layers"]);
  });

  test("rule: a directory removed by someone else between the listing and the removal is fine", async () => {
    const inner = await setup();
    const fs = new FaultyFs(inner, {
      before: async (op) => {
        if (op.kind === "remove" && op.path === "/h/cache/layers") await inner.remove("/h/cache/layers", { recursive: true });
      },
    });
    await removeDirIfEmpty(fs, "/h/cache/layers");
    assert.deepEqual(await inner.readdir("/h/cache"), []);
  });

  test("rule: a directory that cannot be listed is an error, and is not removed", async () => {
    const fs = new FaultyFs(await setup());
    fs.arm({ at: 1, kind: "readdir", errno: "EIO" });
    await assert.rejects(removeDirIfEmpty(fs, "/h/cache/layers"), fsErrorRule("EIO", "readdir"));
    assert.deepEqual(await fs.readdir("/h/cache"), ["layers"]);
  });
});
