/**
 * Rules of the load's head selection (step 3) and promotion (steps 4 and 6):
 * src/archive/load.ts selectHeadSnapshot and src/archive/promote.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { ArchiveError, SnapshotAlreadyExists, SnapshotAlreadyInstalled } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { selectHeadSnapshot } from "../src/archive/load.js";
import { ensureNotInstalled, ensurePromoteTargetsAvailable, promoteStage, promotionPlan } from "../src/archive/promote.js";
import { UndoLog } from "../src/archive/undo.js";
import type { Snapshot } from "../src/snapshot.js";
import { RecordingFs, undurableRenames } from "./helpers/recording-fs.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";

const digest = (c: string) => "sha256:" + c.repeat(64);
const snap = (d: string, parent: string | null) => ({ digest: d, manifest: { parent }, path: `/stage/${d.slice(7, 23)}` }) as unknown as Snapshot;

describe("head selection (docs/format.md §10 step 5)", () => {
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

describe("promotion plan", () => {
  const named = (d: string, name: string) => ({ digest: d, name, path: `/stage/${name}` }) as unknown as Snapshot;

  test("rule: each imported snapshot goes to <snapshotsDir>/<its name>, the head under the given name", () => {
    const base = named(digest("a"), "base");
    const head = named(digest("b"), "head");
    assert.deepEqual(promotionPlan([base, head], head, "/h/snapshots", "mine"), [
      { from: "/stage/base", to: "/h/snapshots/base", digest: digest("a") },
      { from: "/stage/head", to: "/h/snapshots/mine", digest: digest("b") },
    ]);
  });

  test("rule: without a name the head keeps its own name", () => {
    const base = named(digest("a"), "base");
    const head = named(digest("b"), "head");
    assert.deepEqual(
      promotionPlan([base, head], head, "/h/snapshots", undefined).map((m) => m.to),
      ["/h/snapshots/base", "/h/snapshots/head"],
    );
  });
});

describe("already installed (step 4)", () => {
  const head = snap(digest("c"), null);
  const finds = (at: string | null) => {
    const asked: string[] = [];
    return { asked, find: async (d: string) => (asked.push(d), at) };
  };

  test("rule: a head whose digest is installed already, with no name given, is refused naming where it is", async () => {
    const f = finds("/h/snapshots/old");
    await assert.rejects(ensureNotInstalled(head, undefined, f.find, "a.tar.zst"), (e: unknown) => {
      errorRule(SnapshotAlreadyInstalled, "snapshot-already-installed", /^a\.tar\.zst: snapshot sha256:c{64} is already installed at \/h\/snapshots\/old; nothing was loaded/)(e);
      assert.equal((e as SnapshotAlreadyInstalled).existing, "/h/snapshots/old");
      return true;
    });
    assert.deepEqual(f.asked, [digest("c")]);
  });

  test("rule: a head not installed yet passes", async () => {
    const f = finds(null);
    await ensureNotInstalled(head, undefined, f.find, "a.tar.zst");
    assert.deepEqual(f.asked, [digest("c")]);
  });

  test("rule: a name asks for a second copy: an installed head passes and is not looked up", async () => {
    const f = finds("/h/snapshots/old");
    await ensureNotInstalled(head, "second", f.find, "a.tar.zst");
    assert.deepEqual(f.asked, []);
  });

  test("rule: with no way to look installed snapshots up, nothing is refused", async () => {
    await ensureNotInstalled(head, undefined, undefined, "a.tar.zst");
  });
});

describe("promotion targets (step 4)", () => {
  test("rule: a target that exists already, even as a dangling link, is refused", async () => {
    const fs = memFs(new Volume());
    await fs.mkdir("/h/snapshots/x", { recursive: true });
    await fs.symlink("/nowhere", "/h/snapshots/link");
    for (const to of ["/h/snapshots/x", "/h/snapshots/link"]) {
      await assert.rejects(
        ensurePromoteTargetsAvailable(fs, [{ from: "/s/a", to: "/h/snapshots/free" }, { from: "/s/b", to }]),
        errorRule(SnapshotAlreadyExists, "snapshot-already-exists", new RegExp(`^snapshot ${to} already exists$`)),
      );
    }
  });

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

  test("rule: a target that appeared since step 4 makes the promotion fail with SnapshotAlreadyExists", async () => {
    const fs = memFs(new Volume());
    for (const d of ["/s/a", "/h/snapshots/a/someone-else"]) await fs.mkdir(d, { recursive: true });
    await assert.rejects(
      promoteStage(fs, [{ from: "/s/a", to: "/h/snapshots/a" }], "/h/snapshots", new UndoLog()),
      (e: unknown) => {
        errorRule(SnapshotAlreadyExists, "snapshot-already-exists", /^snapshot \/h\/snapshots\/a already exists$/)(e);
        assert.equal(((e as Error).cause as { errno?: string }).errno, "ENOTEMPTY");
        return true;
      },
    );
    assert.deepEqual(await fs.readdir("/h/snapshots/a"), ["someone-else"]);
  });

  test("rule: a rename that fails for another reason is reported as it is", async () => {
    const fs = new FaultyFs(memFs(new Volume()));
    for (const d of ["/s/a", "/h/snapshots"]) await fs.mkdir(d, { recursive: true });
    fs.arm({ at: 1, kind: "rename", errno: "EIO" });
    await assert.rejects(promoteStage(fs, [{ from: "/s/a", to: "/h/snapshots/a" }], "/h/snapshots", new UndoLog()), fsErrorRule("EIO", "rename"));
  });

  test("rule: undoing a promotion moves each snapshot back to staging, and names a target it cannot move back", async () => {
    const fs = memFs(new Volume());
    for (const d of ["/s/a", "/s/b", "/h/snapshots"]) await fs.mkdir(d, { recursive: true });
    const undo = new UndoLog();
    await promoteStage(fs, [{ from: "/s/a", to: "/h/snapshots/a" }, { from: "/s/b", to: "/h/snapshots/b" }], "/h/snapshots", undo);
    assert.deepEqual((await fs.readdir("/h/snapshots")).sort(), ["a", "b"]);
    // something now sits where b was staged: b cannot go back, a still does
    await fs.open("/s/b", "w").then((h) => h.close());
    assert.deepEqual(await undo.rollback(), ["move /h/snapshots/b back to staging"]);
    assert.deepEqual(await fs.readdir("/h/snapshots"), ["b"]);
    assert.equal((await fs.lstat("/s/a")).kind, "directory");
  });
});
