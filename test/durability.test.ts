/**
 * The order of durable operations (write, fsync, rename, fsync dir) for
 * create, save and load, seen through a recording filesystem: nothing is
 * published by a rename before its data is on disk, and every rename is made
 * durable by an fsync of its directory.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { memFs } from "../src/fs/memfs.js";
import { SnapshotStore } from "../src/store.js";
import { writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { durabilityProblems, indexOfOp, RecordingFs } from "./helpers/recording-fs.js";

async function twoHomes() {
  const rec = new RecordingFs(memFs(new Volume()));
  for (const d of ["/a", "/b", "/out"]) await rec.mkdir(d, { recursive: true });
  const img = await buildImage(rec, "/a", "python:3.12", 2);
  await writeSparse(rec, "/u", 64 << 10, [[0, "hello"], [40_000, "world"]]);
  const a = new SnapshotStore(rec, "/a", { cwd: "/", userHome: "/" });
  const b = new SnapshotStore(rec, "/b", { cwd: "/", userHome: "/" });
  return { rec, img, a, b, image: { ref: img.ref, manifest_digest: img.manifest_digest } };
}

describe("durable operation order", () => {
  test("create: upper and manifest written and fsynced before the renames that publish them; each rename's directory fsynced", async () => {
    const { rec, a, image } = await twoHomes();
    rec.reset();
    const info = await a.create("v", { upper: "/u", image, integrity: true });
    const log = rec.log;
    const publish = indexOfOp(log, (o) => o.op === "rename" && o.to === info.path);
    assert.ok(publish > 0, "the snapshot directory is renamed into place");
    const manifestRename = indexOfOp(log, (o) => o.op === "rename" && o.to!.endsWith("/manifest.json"));
    assert.ok(manifestRename >= 0 && manifestRename < publish, "manifest.json is in place before the directory is published");
    const manifestTmp = log[manifestRename]!.path;
    const w = indexOfOp(log, (o) => o.op === "write" && o.path === manifestTmp);
    const s = indexOfOp(log, (o) => o.op === "fsync" && o.path === manifestTmp);
    assert.ok(w >= 0 && w < s && s < manifestRename, "manifest written, then fsynced, then renamed");
    const upperSync = indexOfOp(log, (o) => o.op === "fsync" && o.path.endsWith("/upper.ext4"));
    assert.ok(upperSync >= 0 && upperSync < publish, "upper fsynced before publishing");
    assert.ok(indexOfOp(log, (o) => o.op === "fsyncDir" && o.path === "/a/snapshots", publish) > publish, "snapshots dir fsynced after the rename");
    assert.deepEqual(durabilityProblems(log), []);
  });

  test("save: the archive is written to a partial file, fsynced, renamed into place, and its directory fsynced", async () => {
    const { rec, a, image } = await twoHomes();
    await a.create("v", { upper: "/u", image });
    rec.reset();
    await a.save("v", "/out/v.tar.zst", { withImage: true });
    const log = rec.log;
    const rename = indexOfOp(log, (o) => o.op === "rename" && o.to === "/out/v.tar.zst");
    assert.ok(rename >= 0, "the archive is published by a rename");
    const partial = log[rename]!.path;
    assert.notEqual(partial, "/out/v.tar.zst");
    assert.ok(indexOfOp(log, (o) => o.op === "write" && o.path === "/out/v.tar.zst") < 0, "never written in place");
    const s = indexOfOp(log, (o) => o.op === "fsync" && o.path === partial);
    assert.ok(indexOfOp(log, (o) => o.op === "write" && o.path === partial) < s && s < rename);
    assert.ok(indexOfOp(log, (o) => o.op === "fsyncDir" && o.path === "/out", rename) > rename);
    assert.deepEqual(durabilityProblems(log), []);
  });

  test("load: staged files fsynced, staged directories fsynced before promotion, cache metadata last, every rename's directory fsynced", async () => {
    const { rec, img, a, b, image } = await twoHomes();
    await a.create("v", { upper: "/u", image });
    await a.save("v", "/out/v.tar.zst", { withImage: true });
    rec.reset();
    const head = await b.load("/out/v.tar.zst");
    const log = rec.log;
    const promote = indexOfOp(log, (o) => o.op === "rename" && o.to === head.path);
    assert.ok(promote >= 0, "the snapshot is promoted by a rename");
    const journal = indexOfOp(log, (o) => o.op === "rename" && o.to!.endsWith("/promote.json"));
    assert.ok(journal >= 0 && journal < promote, "the journal is in place before the promotion");
    const cleared = indexOfOp(log, (o) => o.op === "remove" && o.path.endsWith("/promote.json"), promote);
    assert.ok(cleared > promote, "the journal is removed after the promotion (the commit point)");
    assert.ok(indexOfOp(log, (o) => o.op === "fsyncDir" && o.path === "/b/cache/tmp", cleared) > cleared, "and its removal fsynced: a journal back from a power cut would undo the load");
    const cacheRenames = log.filter((o) => o.op === "rename" && o.to!.startsWith("/b/cache/") && !o.to!.startsWith("/b/cache/tmp/"));
    assert.equal(cacheRenames.length, img.files.length);
    assert.equal(cacheRenames.at(-1)!.to, img.metadataPath.replace("/a/", "/b/"), "metadata installed last");
    assert.deepEqual(durabilityProblems(log), []);
  });
});
