/** Rules of the load's cache install (step 5, src/archive/cache-install.ts) and the cache-file state rule (src/archive/image-cache.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { installStagedCache } from "../src/archive/cache-install.js";
import { cacheFileProblem } from "../src/archive/image-cache.js";
import { UndoLog } from "../src/archive/undo.js";
import { memFs } from "../src/fs/memfs.js";
import { HomeLayout } from "../src/layout.js";
import type { Manifest } from "../src/manifest.js";
import { buildImage } from "./helpers/image.js";
import { RecordingFs } from "./helpers/recording-fs.js";

describe("cache install", () => {
  test("rule: cache files are installed by rename with the image metadata last", async () => {
    const rec = new RecordingFs(memFs(new Volume()));
    // build the image in a staging home; install into a fresh one
    const img = await buildImage(rec, "/stage", "python:3.12", 3);
    await rec.mkdir("/home/cache", { recursive: true });
    const manifest = { image: { ref: img.ref, manifest_digest: img.manifest_digest } } as unknown as Manifest;
    rec.reset();
    await installStagedCache(rec, new HomeLayout("/home"), "/stage/cache", manifest, "a.tar.zst", new UndoLog());
    const renames = rec.log.filter((o) => o.op === "rename");
    assert.equal(renames.length, img.files.length, "every cache file installed");
    assert.ok(renames.length >= 4);
    assert.equal(renames.at(-1)!.path, img.metadataPath, "the metadata is the last rename");
    assert.equal(renames.at(-1)!.to, img.metadataPath.replace("/stage/", "/home/"));
    assert.ok(renames.slice(0, -1).every((r) => r.path !== img.metadataPath));
  });

  test("rule: a zero-length EROFS image (layer or fsmeta) is not materialized", () => {
    const f = (kind: "layers" | "fsmeta" | "vmdk" | "manifests") => ({ path: "/c/x", archivePath: "cache/x", kind });
    const file = (size: number) => ({ kind: "file" as const, size, mtimeMs: 0, allocatedBytes: null });
    for (const kind of ["layers", "fsmeta"] as const) {
      assert.match(cacheFileProblem(f(kind), file(0)) ?? "", /not materialized/, `${kind} of 0 bytes`);
      assert.match(cacheFileProblem(f(kind), file(4095)) ?? "", /not materialized/, `${kind} of 4095 bytes`);
      assert.equal(cacheFileProblem(f(kind), file(4096)), null);
      assert.equal(cacheFileProblem(f(kind), file(8192)), null);
    }
    // VMDK descriptor and metadata are not EROFS: any size
    assert.equal(cacheFileProblem(f("vmdk"), file(0)), null);
    assert.equal(cacheFileProblem(f("manifests"), file(17)), null);
  });
});
