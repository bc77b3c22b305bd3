/** Rules of the load's cache install (step 5, src/archive/cache-install.ts) and the cache-file state rule (src/archive/image-cache.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { installStagedCache } from "../src/archive/cache-install.js";
import { cacheFileProblem } from "../src/archive/image-cache.js";
import { UndoLog } from "../src/archive/undo.js";
import { ArchiveError, ImageCacheError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { HomeLayout } from "../src/layout.js";
import type { Manifest } from "../src/manifest.js";
import { buildImage } from "./helpers/image.js";
import { RecordingFs } from "./helpers/recording-fs.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { tree } from "./helpers/homes.js";

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

describe("cache install: what is already there, and undo", () => {
  const layout = new HomeLayout("/home");
  const home = (p: string) => p.replace("/stage/", "/home/");
  const manifestOf = (img: { ref: string; manifest_digest: string }) => ({ image: { ref: img.ref, manifest_digest: img.manifest_digest } }) as unknown as Manifest;
  const bytes = async (fs: FileSystem, p: string) => readSmallFile(fs, p, 1 << 20);
  const put = async (fs: FileSystem, p: string, data: Uint8Array) => {
    const h = await fs.open(p, "w");
    try {
      await h.write(data, 0);
    } finally {
      await h.close();
    }
  };
  /** A staged image in /stage/cache and an empty /home/cache. */
  const setup = async () => {
    const mem = memFs(new Volume());
    const img = await buildImage(mem, "/stage", "python:3.12", 2);
    await mem.mkdir("/home/cache", { recursive: true });
    return { mem, img };
  };

  test("rule: a cache file already installed with identical content is kept as it is, and never removed on undo", async () => {
    const { mem, img } = await setup();
    const layer = img.files.at(-1)!;
    await mem.mkdir(home(layer.slice(0, layer.lastIndexOf("/"))), { recursive: true });
    const content = await bytes(mem, layer);
    await put(mem, home(layer), content);
    const rec = new RecordingFs(mem);
    const undo = new UndoLog();
    await installStagedCache(rec, layout, "/stage/cache", manifestOf(img), "a.tar.zst", undo);
    const renamed = rec.log.filter((o) => o.op === "rename").map((o) => o.path);
    assert.deepEqual(renamed.sort(), img.files.filter((f) => f !== layer).sort(), "every other file installed, the identical one not");
    assert.deepEqual(await bytes(mem, layer), content, "the staged copy is left where it was");
    assert.deepEqual(await undo.rollback(), []);
    assert.deepEqual(await tree(mem, "/home/cache"), ["layers/", `layers/${layer.split("/").at(-1)}`], "undo removes only what the install put there");
    assert.deepEqual(await bytes(mem, home(layer)), content);
  });

  test("rule: a cache target that is not a regular file is an ImageCacheError, and nothing is installed", async () => {
    const { mem, img } = await setup();
    const vmdk = img.files[2]!;
    await mem.mkdir(home(vmdk), { recursive: true });
    await assert.rejects(
      installStagedCache(mem, layout, "/stage/cache", manifestOf(img), "a.tar.zst", new UndoLog()),
      errorRule(ImageCacheError, "image-cache", new RegExp(`^cache target ${home(vmdk)} exists and is a directory, not a regular file$`)),
    );
    assert.deepEqual(await tree(mem, "/home/cache"), ["vmdk/", `vmdk/${vmdk.split("/").at(-1)}/`]);
  });

  test("rule: a cache target with other content, of another size or of the same size, is an ImageCacheError, and nothing is installed", async () => {
    for (const differ of ["size", "content"] as const) {
      const { mem, img } = await setup();
      const fsmeta = img.files[1]!;
      const content = await bytes(mem, fsmeta);
      const other = differ === "size" ? content.subarray(0, content.length - 4096) : content.slice();
      if (differ === "content") other[100] = other[100]! ^ 0xff;
      await mem.mkdir(home(fsmeta.slice(0, fsmeta.lastIndexOf("/"))), { recursive: true });
      await put(mem, home(fsmeta), other);
      await assert.rejects(
        installStagedCache(mem, layout, "/stage/cache", manifestOf(img), "a.tar.zst", new UndoLog()),
        errorRule(ImageCacheError, "image-cache", new RegExp(`^cache target ${home(fsmeta)} already exists with different content$`)),
        differ,
      );
      assert.deepEqual(await tree(mem, "/home/cache"), ["fsmeta/", `fsmeta/${fsmeta.split("/").at(-1)}`], differ);
      assert.deepEqual(await bytes(mem, home(fsmeta)), other, differ);
    }
  });

  test("rule: undoing the cache install removes every file it installed and every directory it made, even when a file is gone already", async () => {
    const { mem, img } = await setup();
    const undo = new UndoLog();
    await installStagedCache(mem, layout, "/stage/cache", manifestOf(img), "a.tar.zst", undo);
    assert.equal((await tree(mem, "/home/cache")).filter((p) => !p.endsWith("/")).length, img.files.length);
    await mem.remove(home(img.files[2]!)); // someone removed the VMDK descriptor meanwhile
    assert.deepEqual(await undo.rollback(), []);
    assert.deepEqual(await tree(mem, "/home/cache"), []);
  });

  test("rule: an undo step of the cache install that fails is named: the file or the directory it could not remove", async () => {
    const { mem, img } = await setup();
    const fs = new FaultyFs(mem);
    const undo = new UndoLog();
    await installStagedCache(fs, layout, "/stage/cache", manifestOf(img), "a.tar.zst", undo);
    const meta = home(img.metadataPath);
    fs.arm({ at: 1, sticky: true, errno: "EIO", match: (op) => (op.kind === "remove" && op.path === meta) || (op.kind === "readdir" && op.path === "/home/cache/fsmeta") });
    assert.deepEqual(await undo.rollback(), [`remove ${meta}`, "remove directory /home/cache/fsmeta"]);
    assert.deepEqual(await tree(mem, "/home/cache"), ["fsmeta/", "manifests/", `manifests/${meta.split("/").at(-1)}`]);
  });

  test("rule: a cache directory made meanwhile by another load is not ours to remove on undo", async () => {
    const { mem, img } = await setup();
    const fs = new FaultyFs(mem, {
      before: async (op) => {
        if (op.kind === "mkdir" && op.path === "/home/cache/layers") await mem.mkdir("/home/cache/layers");
      },
    });
    const undo = new UndoLog();
    await installStagedCache(fs, layout, "/stage/cache", manifestOf(img), "a.tar.zst", undo);
    assert.deepEqual(await undo.rollback(), []);
    assert.deepEqual(await tree(mem, "/home/cache"), ["layers/"]);
  });

  test("rule: a cache directory that cannot be made fails the install with the filesystem's error", async () => {
    const { mem, img } = await setup();
    const fs = new FaultyFs(mem);
    fs.arm({ at: 1, kind: "mkdir", errno: "ENOSPC" });
    await assert.rejects(installStagedCache(fs, layout, "/stage/cache", manifestOf(img), "a.tar.zst", new UndoLog()), fsErrorRule("ENOSPC", "mkdir"));
    assert.deepEqual(await tree(mem, "/home/cache"), []);
  });

  test("rule: a staged cache entry that is neither a directory nor a regular file is an ArchiveError", async () => {
    const { mem, img } = await setup();
    await mem.symlink(img.files[1]!, "/stage/cache/layers/link");
    await assert.rejects(
      installStagedCache(mem, layout, "/stage/cache", manifestOf(img), "a.tar.zst", new UndoLog()),
      errorRule(ArchiveError, "archive", /^staged cache entry \/stage\/cache\/layers\/link is a symlink$/),
    );
    assert.deepEqual(await tree(mem, "/home/cache"), []);
  });
});
