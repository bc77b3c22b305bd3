/**
 * Rules of the load's head selection (step 3) and promotion (steps 4 and 6):
 * src/archive/load.ts selectHeadSnapshot and src/archive/promote.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { ArchiveError, SnapshotAlreadyExists } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { selectHeadSnapshot } from "../src/archive/load.js";
import { ensurePromoteTargetsAvailable, promoteStage } from "../src/archive/promote.js";
import { UndoLog } from "../src/archive/undo.js";
import type { Snapshot } from "../src/snapshot.js";
import { RecordingFs, undurableRenames } from "./helpers/recording-fs.js";

const digest = (c: string) => "sha256:" + c.repeat(64);
const snap = (d: string, parent: string | null) => ({ digest: d, manifest: { parent }, path: `/stage/${d.slice(7, 23)}` }) as unknown as Snapshot;

describe("head selection (SPEC §4.3)", () => {
  test("rule: with several head candidates, the last one in archive order is the head", () => {
    // a, b, c are independent: each is a candidate; the last wins
    assert.equal(selectHeadSnapshot([snap(digest("a"), null), snap(digest("b"), null), snap(digest("c"), null)], "x"), 2);
    // base <- child, then an unrelated one first: candidates are 0 and 2
    assert.equal(selectHeadSnapshot([snap(digest("d"), null), snap(digest("b"), null), snap(digest("c"), digest("b"))], "x"), 2);
  });

  test("rule: a snapshot another imported snapshot names as parent is never the head, even when last", () => {
    assert.equal(selectHeadSnapshot([snap(digest("c"), digest("b")), snap(digest("a"), null), snap(digest("b"), null)], "x"), 1);
    // a parent outside the archive does not disqualify anyone
    assert.equal(selectHeadSnapshot([snap(digest("a"), digest("f")), snap(digest("b"), digest("e"))], "x"), 1);
  });

  test("rule: an archive where every snapshot is another's parent has no head", () => {
    assert.throws(
      () => selectHeadSnapshot([snap(digest("a"), digest("b")), snap(digest("b"), digest("a"))], "x.tar.zst"),
      (e: unknown) => e instanceof ArchiveError && e.code === "archive" && /no head snapshot/.test(e.message),
    );
  });
});

describe("promotion targets (step 4)", () => {
  test("rule: a load that would create the same target twice is refused", async () => {
    const fs = memFs(new Volume());
    await fs.mkdir("/h/snapshots", { recursive: true });
    await assert.rejects(
      ensurePromoteTargetsAvailable(fs, [{ from: "/s/a", to: "/h/snapshots/x" }, { from: "/s/b", to: "/h/snapshots/x" }]),
      (e: unknown) => e instanceof SnapshotAlreadyExists && e.code === "snapshot-already-exists" && /would be created twice/.test(e.message),
    );
    // distinct targets that do not exist pass
    await ensurePromoteTargetsAvailable(fs, [{ from: "/s/a", to: "/h/snapshots/x" }, { from: "/s/b", to: "/h/snapshots/y" }]);
  });
});

describe("promotion renames (step 6)", () => {
  test("rule: each rename into place is followed by an fsync of the snapshots directory", async () => {
    const rec = new RecordingFs(memFs(new Volume()));
    for (const d of ["/s/a", "/s/b", "/h/snapshots"]) await rec.mkdir(d, { recursive: true });
    rec.reset();
    await promoteStage(rec, [{ from: "/s/a", to: "/h/snapshots/a" }, { from: "/s/b", to: "/h/snapshots/b" }], "/h/snapshots", new UndoLog());
    assert.equal(rec.log.filter((o) => o.op === "rename").length, 2);
    assert.deepEqual(undurableRenames(rec.log), []);
  });
});
