import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readSmallFile } from "../src/io.js";
import { fileReadable } from "../src/archive/streams.js";
import { BACKENDS, IMAGE, makeHome, noise, tree, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";

async function same(fsA: any, a: string, fsB: any, b: string) {
  assert.deepEqual(await readSmallFile(fsB, b, 64 << 20), await readSmallFile(fsA, a, 64 << 20), `${b} differs from ${a}`);
}

for (const backend of BACKENDS) {
  describe(`save/load round trips on ${backend.label}`, () => {
    for (const plainTar of [false, true]) {
      for (const viaStream of [false, true]) {
        test(`chain of three with parents, ${plainTar ? "plain tar" : "zstd"}, ${viaStream ? "streams" : "paths"}`, async () => {
          const src = await makeHome(backend);
          const dst = await makeHome(backend);
          try {
            const { fs, root, store } = src;
            await writeSparse(fs, `${root}/u1`, 1 << 20, [[0, noise(10_000, 1)]]);
            await writeSparse(fs, `${root}/u2`, 2 << 20, [[4096, noise(5_000, 2)], [(2 << 20) - 10, "end"]]);
            await writeSparse(fs, `${root}/u3`, 300_000, [[0, noise(300_000, 3)]]); // dense
            const a = await store.create("a", { upper: `${root}/u1`, image: IMAGE, integrity: true });
            const b = await store.create("b", { upper: `${root}/u2`, image: IMAGE, parent: a.digest, integrity: true });
            const c = await store.create("c", { upper: `${root}/u3`, image: IMAGE, parent: b.digest, labels: { k: "v" } });
            let head;
            if (viaStream) {
              const chunks: Uint8Array[] = [];
              const sink = new WritableStream<Uint8Array>({ write: (ch) => void chunks.push(ch.slice()) });
              const r = await store.save("c", sink, { withParents: true, plainTar });
              assert.deepEqual(r.snapshots.map((s) => s.digest), [a.digest, b.digest, c.digest]);
              const source = new ReadableStream<Uint8Array>({
                pull(ctl) {
                  const next = chunks.shift();
                  if (next) ctl.enqueue(next);
                  else ctl.close();
                },
              });
              head = await dst.store.load(source);
            } else {
              await fs.mkdir(`${root}/out`); // save never creates the output's directory
              await store.save("c", `${root}/out/c.bundle`, { withParents: true, plainTar });
              const bytes = await readSmallFile(fs, `${root}/out/c.bundle`, 64 << 20);
              assert.equal(bytes[0] === 0x28 && bytes[1] === 0xb5 && bytes[2] === 0x2f && bytes[3] === 0xfd, !plainTar);
              assert.deepEqual((await fs.readdir(`${root}/out`)).sort(), ["c.bundle"]);
              // load reads the archive from the source backend's disk: copy it over when homes differ
              await writeSparse(dst.fs, `${dst.root}/c.bundle`, 0, [[0, bytes]]);
              head = await dst.store.load(`${dst.root}/c.bundle`);
            }
            assert.equal(head.digest, c.digest);
            assert.deepEqual(head.labels, { k: "v" });
            const listed = (await dst.store.list()).snapshots;
            assert.deepEqual(listed.map((s) => s.digest).sort(), [a.digest, b.digest, c.digest].sort());
            for (const s of listed) {
              assert.equal((await dst.store.verify(s.path)).integrity.status, s.digest === c.digest ? "not-recorded" : "verified");
              const orig = [a, b, c].find((x) => x.digest === s.digest)!;
              await same(fs, `${orig.path}/upper.ext4`, dst.fs, `${s.path}/upper.ext4`);
              await same(fs, `${orig.path}/manifest.json`, dst.fs, `${s.path}/manifest.json`);
            }
            // head keeps its archive directory name; staging is gone
            assert.equal(head.name, `sha256-${c.digest.slice(7, 23)}`);
            assert.deepEqual((await dst.fs.readdir(`${dst.home}/snapshots`)).filter((n) => n.startsWith(".msb")), []);
            assert.deepEqual(await dst.fs.readdir(`${dst.home}/cache/tmp`), []);
          } finally {
            src.cleanup();
            dst.cleanup();
          }
        });
      }
    }

    test("with the image cache, and --name for the head", async () => {
      const src = await makeHome(backend);
      const dst = await makeHome(backend);
      try {
        const { fs, root, home, store } = src;
        const img = await buildImage(fs, home);
        await writeSparse(fs, `${root}/u`, 1 << 20, [[0, noise(9000)]]);
        const s = await store.create("s", { upper: `${root}/u`, image: { ref: img.ref, manifest_digest: img.manifest_digest }, integrity: true });
        const r = await store.save("s", `${root}/s.tar.zst`, { withImage: true });
        assert.deepEqual(r.cacheFiles, img.files);
        await writeSparse(dst.fs, `${dst.root}/s.tar.zst`, 0, [[0, await readSmallFile(fs, `${root}/s.tar.zst`, 64 << 20)]]);
        const head = await dst.store.load(`${dst.root}/s.tar.zst`, { name: "mine" });
        assert.equal(head.name, "mine");
        assert.equal(head.digest, s.digest);
        for (const f of img.files) await same(fs, f, dst.fs, f.replace(home, dst.home));
        // loading a second copy under another name: same cache content is accepted
        const again = await dst.store.load(`${dst.root}/s.tar.zst`, { name: "mine2" });
        assert.equal(again.digest, s.digest);
        assert.deepEqual(await dst.fs.readdir(`${dst.home}/cache/tmp`), []);
      } finally {
        src.cleanup();
        dst.cleanup();
      }
    });

    test("save refuses a missing parent and a missing image cache, leaving no output", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        await store.create("orphan", { upper: `${root}/u`, image: IMAGE, parent: "sha256:" + "d".repeat(64) });
        await assert.rejects(store.save("orphan", `${root}/o.tar.zst`, { withParents: true }), (e: Error) => e.name === "SnapshotNotFound" && /ship it alongside/.test(e.message));
        await assert.rejects(store.save("orphan", `${root}/o.tar.zst`, { withImage: true }), (e: Error) => e.name === "ImageCacheError" && e.message.includes(`${home}/cache/manifests/`));
        assert.deepEqual((await fs.readdir(root)).filter((n) => n.includes("o.tar")), []);
        // an existing output survives a failed save untouched
        await writeSparse(fs, `${root}/o.tar.zst`, 0, [[0, "precious"]]);
        await assert.rejects(store.save("orphan", `${root}/o.tar.zst`, { withImage: true, overwrite: true }), (e: Error) => e.name === "ImageCacheError" && (e as { code?: string }).code === "image-cache" && e.message.includes(`${home}/cache/manifests/`));
        assert.equal(new TextDecoder().decode(await readSmallFile(fs, `${root}/o.tar.zst`, 100)), "precious");
        assert.deepEqual(await tree(fs, root).then((t) => t.filter((p) => p.includes("partial"))), []);
      } finally {
        cleanup();
      }
    });
  });
}
