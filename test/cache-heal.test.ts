/**
 * A cache that heals (issue 23): one bad bundle must not poison the image
 * cache. A cache file already in the home that is corrupt (an EROFS file
 * that is not a valid image, metadata that does not hash to what it
 * records) is replaced by a load that carries a valid one, which says so;
 * a failed load puts it back; a valid file with the same bytes is kept;
 * `verify --cache` reports corrupt files and changes nothing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type LoadNotice } from "../src/archive/load.js";
import { scanCache } from "../src/archive/image-cache.js";
import { ImageCacheError } from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { HomeLayout } from "../src/layout.js";
import { SnapshotStore } from "../src/store.js";
import { fingerprint, writeBytes } from "./helpers/archive-fs.js";
import { imageFixture, type ImageFixture } from "./helpers/archive-bundle.js";
import { expectRun, stdoutJson } from "./helpers/cli-assert.js";
import { runCli } from "./helpers/cli-run.js";
import { imageBundle, minimalErofs } from "./helpers/erofs.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { BACKENDS, makeHome, noise } from "./helpers/homes.js";

const T = { timeout: 60_000 };

async function readAll(fs: FileSystem, path: string): Promise<Uint8Array> {
  const info = await fs.lstat(path);
  const h = await fs.open(path, "r");
  try {
    const out = new Uint8Array(info.size);
    for (let got = 0; got < out.length; ) got += await h.read(out.subarray(got), got);
    return out;
  } finally {
    await h.close();
  }
}

/** The poisons: what a bad bundle (or a crash, or a disk) may have left under a cache file's name. */
const POISONS: readonly { what: string; index: number; bytes: (i: ImageFixture) => Uint8Array; problem: RegExp }[] = [
  { what: "fsmeta of 8192 zero bytes", index: 1, bytes: () => new Uint8Array(8192), problem: /not a valid EROFS image: no EROFS superblock magic at byte 1024/ },
  { what: "layer of 4096 random bytes", index: 3, bytes: () => noise(4096, 42), problem: /not a valid EROFS image: no EROFS superblock magic at byte 1024/ },
  { what: "layer cut short (4095 bytes)", index: 4, bytes: (i) => i.files[4]!.bytes.subarray(0, 4095), problem: /not materialized/ },
  { what: "metadata whose raw manifest does not hash to its digest", index: 0, bytes: (i) => new TextEncoder().encode(new TextDecoder().decode(i.files[0]!.bytes).replace("schemaVersion", "schemaversion")), problem: /raw manifest digest mismatch/ },
  { what: "metadata that is not JSON", index: 0, bytes: () => new Uint8Array(100), problem: /is not valid UTF-8 JSON/ },
];

for (const b of BACKENDS) {
  describe(`a cache that heals (${b.label})`, () => {
    for (const layout of ["manifest", "snapshot"] as const) {
      test(`rule: a poisoned cache file is reported by verify --cache, then replaced by the load of a valid ${layout}-layout bundle, which says so`, T, async () => {
        const { fs, root, home, cleanup } = await makeHome(b);
        try {
          const image = await imageFixture();
          const bundle = `${root}/ok.tar`;
          await writeBytes(fs, bundle, await imageBundle(layout, image, image.files));
          const cacheDir = new HomeLayout(home);
          for (const p of POISONS) {
            await fs.remove(`${home}`, { recursive: true, force: true });
            const target = `${home}/${image.files[p.index]!.archivePath}`;
            await fs.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
            await writeBytes(fs, target, p.bytes(image));
            const scan = await scanCache(fs, cacheDir);
            assert.equal(scan.checked, 1, p.what);
            assert.deepEqual(scan.corrupt.map((c) => c.path), [target], p.what);
            assert.match(scan.corrupt[0]!.problem, p.problem, p.what);
            assert.deepEqual(await readAll(fs, target), p.bytes(image), `${p.what}: verify --cache changes nothing`);

            const notices: LoadNotice[] = [];
            await new SnapshotStore(fs, home).load(bundle, { onNotice: (n) => notices.push(n) });
            assert.deepEqual(await readAll(fs, target), image.files[p.index]!.bytes, `${p.what}: healed`);
            assert.equal(notices.length, 1, p.what);
            assert.equal(notices[0]!.code, "cache-healed");
            assert.equal(notices[0]!.path, target);
            assert.match(notices[0]!.message, new RegExp(`^replaced the corrupt image cache file ${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(`), p.what);
            assert.match(notices[0]!.message, p.problem, p.what);
            const after = await scanCache(fs, cacheDir);
            assert.deepEqual(after, { checked: image.files.length, corrupt: [] }, `${p.what}: nothing corrupt is left`);
            assert.deepEqual((await fs.readdir(`${home}/cache/tmp`)).filter((n) => !n.startsWith(".")), [], `${p.what}: the corrupt file went with the staging`);
          }
        } finally {
          cleanup();
        }
      });
    }

    test("rule: a load that fails after healing puts the corrupt file back: the cache is as it was", T, async () => {
      const { fs: inner, root, home, cleanup } = await makeHome(b);
      try {
        const image = await imageFixture();
        const bundle = `${root}/ok.tar`;
        await writeBytes(inner, bundle, await imageBundle("manifest", image, image.files));
        const fsmeta = `${home}/${image.files[1]!.archivePath}`;
        await inner.mkdir(`${home}/cache/fsmeta`, { recursive: true });
        await writeBytes(inner, fsmeta, new Uint8Array(8192));
        await inner.mkdir(`${home}/snapshots`, { recursive: true });
        const before = await fingerprint(inner, home);
        const fs = new FaultyFs(inner);
        // the promotion of the snapshot, after the cache install replaced the fsmeta
        fs.arm({ at: 1, kind: "rename", match: (op) => op.path.includes("/snapshots/.msb-snapshot-import-") });
        const notices: LoadNotice[] = [];
        await assert.rejects(new SnapshotStore(fs, home).load(bundle, { onNotice: (n) => notices.push(n) }), (e: Error) => !e.message.includes("could not undo"));
        assert.equal(fs.fired.length, 1, "the fault fired");
        assert.ok(fs.ops.some((op) => op.kind === "rename" && op.path === fsmeta), "the fsmeta had been set aside before the failure");
        assert.deepEqual(notices, [], "a failed load tells of no healing");
        assert.deepEqual(await fingerprint(inner, home), before, "the home, corrupt file included, is as it was");
      } finally {
        cleanup();
      }
    });

    test("rule: a valid cache file with the bundle's bytes is kept; a valid one with other bytes is refused, not replaced", T, async () => {
      const { fs, root, home, cleanup } = await makeHome(b);
      try {
        const image = await imageFixture();
        const bundle = `${root}/ok.tar`;
        await writeBytes(fs, bundle, await imageBundle("manifest", image, image.files));
        const fsmeta = `${home}/${image.files[1]!.archivePath}`;
        await fs.mkdir(`${home}/cache/fsmeta`, { recursive: true });
        await writeBytes(fs, fsmeta, image.files[1]!.bytes);
        const notices: LoadNotice[] = [];
        await new SnapshotStore(fs, home).load(bundle, { onNotice: (n) => notices.push(n) });
        assert.deepEqual(notices, []);
        const other = `${root}/other-home`;
        await fs.mkdir(`${other}/cache/fsmeta`, { recursive: true });
        const valid = minimalErofs(image.files[1]!.bytes.length, 12345);
        await writeBytes(fs, `${other}/${image.files[1]!.archivePath}`, valid);
        await assert.rejects(new SnapshotStore(fs, other).load(bundle), (e: Error) => e instanceof ImageCacheError && e.message.endsWith("already exists with different content"));
        assert.deepEqual(await readAll(fs, `${other}/${image.files[1]!.archivePath}`), valid);
      } finally {
        cleanup();
      }
    });
  });
}

describe("CLI: a cache that heals", () => {
  test("rule: verify --cache lists corrupt files (exit 1, --json error), load replaces them with one warning line (--json: notices), then verify --cache passes", T, async () => {
    const { fs, root, home, cleanup } = await makeHome(BACKENDS.find((x) => x.label === "node:fs")!);
    try {
      const image = await imageFixture();
      const bundle = join(root, "ok.tar");
      writeFileSync(bundle, await imageBundle("snapshot", image, image.files));
      const layer = `${home}/${image.files[3]!.archivePath}`;
      await fs.mkdir(`${home}/cache/layers`, { recursive: true });
      await writeBytes(fs, layer, noise(4096, 42));
      const bad = expectRun(await runCli(["--home", home, "verify", "--cache"]), "verify --cache", 1);
      assert.match(bad.stdout, new RegExp(`^corrupt ${layer}: not a valid EROFS image: no EROFS superblock magic at byte 1024 \\(found 0x[0-9a-f]{8}\\) \\(an EROFS cache file needs`));
      assert.match(bad.stderr, /^error: 1 of 1 image cache file in .* corrupt: /);
      const badJson = stdoutJson(expectRun(await runCli(["--home", home, "--json", "verify", "--cache"]), "verify --cache --json", 1), "verify --cache --json");
      assert.equal(badJson.error.code, "image-cache");
      assert.ok(badJson.error.message.includes(layer), badJson.error.message);
      expectRun(await runCli(["--home", home, "verify", "--cache", "x"]), "verify --cache x", 2);

      const loaded = expectRun(await runCli(["--home", home, "load", bundle]), "load", 0, { quietStderr: false });
      const warnings = loaded.stderr.split("\n").filter((l) => l.startsWith("warning: "));
      assert.equal(warnings.length, 1, loaded.stderr);
      assert.match(warnings[0]!, new RegExp(`^warning: replaced the corrupt image cache file ${layer} \\(not a valid EROFS image: `));

      await writeBytes(fs, layer, new Uint8Array(4096));
      const doc = stdoutJson(expectRun(await runCli(["--home", home, "--json", "load", bundle, "--name", "second"]), "load --json", 0), "load --json");
      assert.deepEqual(doc.notices.map((n: LoadNotice) => [n.code, n.path]), [["cache-healed", layer]]);
      const ok = stdoutJson(expectRun(await runCli(["--home", home, "--json", "verify", "--cache"]), "verify --cache", 0), "verify --cache");
      assert.deepEqual(ok, { cache: `${home}/cache`, checked: image.files.length, corrupt: [] });
    } finally {
      cleanup();
    }
  });
});
