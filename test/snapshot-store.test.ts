import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  InvalidArgument,
  InvalidSnapshot,
  SnapshotAlreadyExists,
  SnapshotIntegrityError,
  SnapshotInUse,
  SnapshotNotFound,
} from "../src/errors.js";
import { canonicalManifestText, parseManifest } from "../src/manifest.js";
import { digestProblem } from "../src/reference.js";
import { openSnapshot, verifySnapshot } from "../src/snapshot.js";
import { readSmallFile, writeAtomically } from "../src/io.js";
import { BACKENDS, IMAGE, makeHome, noise, writeSparse } from "./helpers/homes.js";

const SPARSE_VECTOR = "sha256:a3157ae46e0fbbd80e1518e90831fe4e95af30db7069ada93853d1615fe51b87";

for (const backend of BACKENDS) {
  describe(`snapshots on ${backend.label}`, () => {
    test("sparse vector of docs/format.md §5: 4096 bytes starting with hello", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "hello"]]);
        const info = await store.create("v", { upper: `${root}/u`, image: IMAGE, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
        const snap = await store.resolve("v");
        assert.deepEqual(snap.manifest.upper.integrity, { algorithm: "msb-sparse-sha256-v1", digest: SPARSE_VECTOR });
        assert.equal(info.digest, snap.digest);
        const v = await store.verify("v");
        assert.equal(v.integrity.status, "verified");
        assert.equal(v.integrity.digest, SPARSE_VECTOR);
      } finally {
        cleanup();
      }
    });

    test("create writes a canonical manifest and a complete artifact; labels, parent, source", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 1 << 20, [[0, noise(5000)], [700_000, "tail"]]);
        const parent = "sha256:" + "c".repeat(64);
        const info = await store.create("child", {
          upper: `${root}/u`,
          image: IMAGE,
          parent,
          labels: { b: "2", a: "1" },
          sourceSandbox: "sb-1",
          createdAt: "2026-05-01T12:00:00Z",
        });
        assert.equal(info.path, `${home}/snapshots/child`);
        assert.equal(info.parent, parent);
        assert.deepEqual(info.labels, { a: "1", b: "2" });
        const text = new TextDecoder().decode(await readSmallFile(fs, `${info.path}/manifest.json`, 1 << 20));
        assert.equal(text, canonicalManifestText(parseManifest(text)));
        assert.ok(text.includes('"labels":{"a":"1","b":"2"}'));
        assert.ok(text.includes('"integrity":null'));
        // upper content is the logical content of the source
        const src = await readSmallFile(fs, `${root}/u`, 2 << 20);
        const dst = await readSmallFile(fs, `${info.path}/upper.ext4`, 2 << 20);
        assert.deepEqual(dst, src);
        // no staging left behind
        const names = await fs.readdir(`${home}/snapshots`);
        assert.deepEqual(names.filter((n) => n.startsWith(".msb-")), []);
        const v = await store.verify("child");
        assert.equal(v.integrity.status, "not-recorded");
      } finally {
        cleanup();
      }
    });

    test("create refuses bad names, existing targets, missing uppers; force replaces", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 8192, [[0, "x"]]);
        for (const bad of ["", ".hidden", "a/b"]) {
          await assert.rejects(store.create(bad, { upper: `${root}/u`, image: IMAGE }), InvalidArgument);
        }
        await assert.rejects(store.create("m", { upper: `${root}/missing`, image: IMAGE }), (e) => e instanceof InvalidArgument && e.message.includes(`${root}/missing`));
        await assert.rejects(store.create("p", { upper: `${root}/u`, image: IMAGE, parent: "nodigest" }), InvalidArgument);
        const first = await store.create("a", { upper: `${root}/u`, image: IMAGE, labels: { n: "1" } });
        await assert.rejects(store.create("a", { upper: `${root}/u`, image: IMAGE }), (e) => e instanceof SnapshotAlreadyExists && e.message.includes("/snapshots/a"));
        const second = await store.create("a", { upper: `${root}/u`, image: IMAGE, labels: { n: "2" }, force: true });
        assert.notEqual(first.digest, second.digest);
        assert.deepEqual((await store.resolve("a")).manifest.labels, { n: "2" });
        assert.deepEqual((await fs.readdir(`${root}/home/snapshots`)).filter((n) => n.startsWith(".msb")), []);
      } finally {
        cleanup();
      }
    });

    test("create refuses an image digest the CLI's --image-digest refuses, naming image.manifest_digest and the same reason", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 8192, [[0, "x"]]);
        const hex = "0123456789abcdef".repeat(4);
        for (const bad of ["sha256:xyz", `sha256:${hex.toUpperCase()}`, `sha256:${hex.slice(1)}`, `sha512:${hex}${hex}`, `md5:${hex.slice(0, 32)}`, hex, ""]) {
          for (const form of ["manifest", "snapshot"] as const) {
            await assert.rejects(
              store.create("d", { upper: `${root}/u`, image: { ref: IMAGE.ref, manifest_digest: bad }, form }),
              (e) => e instanceof InvalidArgument && e.message === `image.manifest_digest ${JSON.stringify(bad)} ${digestProblem(bad)}`,
              `${form}: ${bad}`,
            );
          }
        }
        assert.equal(await fs.lstat(`${home}/snapshots/d`).then(() => true, () => false), false, "nothing created");
        assert.equal((await store.create("d", { upper: `${root}/u`, image: { ref: IMAGE.ref, manifest_digest: `sha256:${hex}` } })).image_manifest_digest, `sha256:${hex}`);
      } finally {
        cleanup();
      }
    });

    test("open: cheap checks name the file and rule", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 8192, [[0, "x"]]);
        const info = await store.create("a", { upper: `${root}/u`, image: IMAGE, integrity: true });
        // size mismatch
        const h = await fs.open(`${info.path}/upper.ext4`, "r+");
        await h.setLength(4096);
        await h.close();
        await assert.rejects(openSnapshot(fs, info.path), (e) => e instanceof InvalidSnapshot && e.message.includes("upper.ext4") && /4096 bytes.*8192/.test(e.message));
        // upper is a symlink
        await fs.remove(`${info.path}/upper.ext4`);
        await fs.symlink(`${root}/u`, `${info.path}/upper.ext4`);
        await assert.rejects(openSnapshot(fs, info.path), (e) => e instanceof InvalidSnapshot && /regular file, not a symlink/.test(e.message));
        // upper missing
        await fs.remove(`${info.path}/upper.ext4`);
        await assert.rejects(openSnapshot(fs, info.path), (e) => e instanceof InvalidSnapshot && /does not exist/.test(e.message));
        // not found
        await assert.rejects(store.resolve("nope"), SnapshotNotFound);
        await assert.rejects(openSnapshot(fs, `${root}/nowhere`), SnapshotNotFound);
      } finally {
        cleanup();
      }
    });

    test("verify: sha256 and sparse algorithms; mismatch names both digests; unknown algorithm", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 3 * 4096 + 17, [[4096, noise(100)]]);
        const info = await store.create("a", { upper: `${root}/u`, image: IMAGE, integrity: true });
        const snap = await openSnapshot(fs, info.path);
        // flip a byte in the upper: verify must fail naming both digests
        const h = await fs.open(snap.upperPath!, "r+");
        await h.write(new Uint8Array([0x42]), 9000);
        await h.close();
        await assert.rejects(verifySnapshot(fs, snap), (e) => e instanceof SnapshotIntegrityError && e.message.includes(snap.manifest.upper.integrity!.digest) && /upper hashes to sha256:[0-9a-f]{64}/.test(e.message));
        // rewrite the manifest with plain sha256 of the new content, and with an unknown algorithm
        const bytes = await readSmallFile(fs, snap.upperPath!, 1 << 20);
        const { sha256Hex } = await import("../wasm/mod.js");
        const m = { ...snap.manifest, upper: { ...snap.manifest.upper, integrity: { algorithm: "sha256", digest: `sha256:${await sha256Hex(bytes)}` } } };
        await writeAtomically(fs, `${info.path}/manifest.json`, new TextEncoder().encode(canonicalManifestText(m)));
        assert.equal((await verifySnapshot(fs, await openSnapshot(fs, info.path))).status, "verified");
        const m2 = { ...m, upper: { ...m.upper, integrity: { algorithm: "md5", digest: "md5:00" } } };
        await writeAtomically(fs, `${info.path}/manifest.json`, new TextEncoder().encode(canonicalManifestText(m2)));
        await assert.rejects(verifySnapshot(fs, await openSnapshot(fs, info.path)), (e) => e instanceof SnapshotIntegrityError && /"md5" is not supported/.test(e.message));
      } finally {
        cleanup();
      }
    });
  });

  describe(`store on ${backend.label}`, () => {
    test("list skips dot directories and non-artifacts, reports malformed artifacts", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        await store.create("good", { upper: `${root}/u`, image: IMAGE });
        await fs.mkdir(`${home}/snapshots/.msb-snapshot-import-zzz/sha256-x`, { recursive: true });
        await fs.mkdir(`${home}/snapshots/empty-dir`);
        await writeSparse(fs, `${home}/snapshots/a-file`, 10, []);
        await fs.mkdir(`${home}/snapshots/broken`);
        await writeSparse(fs, `${home}/snapshots/broken/manifest.json`, 0, [[0, "{not json"]]);
        const { snapshots, problems } = await store.list();
        assert.deepEqual(snapshots.map((s) => s.name), ["good"]);
        assert.equal(problems.length, 1);
        assert.equal(problems[0]!.path, `${home}/snapshots/broken`);
        assert.match(problems[0]!.message, /not valid JSON/);
      } finally {
        cleanup();
      }
    });

    test("resolve by name, digest, digest prefix, relative path and ~", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        const a = await store.create("a", { upper: `${root}/u`, image: IMAGE });
        assert.equal((await store.resolve("a")).digest, a.digest);
        assert.equal((await store.resolve(a.digest)).path, a.path);
        assert.equal((await store.resolve(a.digest.slice(0, 7 + 16))).path, a.path);
        assert.equal((await store.resolve(a.digest.slice(7, 7 + 16))).path, a.path);
        assert.equal((await store.resolve("./home/snapshots/a")).path, a.path);
        assert.equal((await store.resolve("~/home/snapshots/a")).path, a.path);
        await assert.rejects(store.resolve("sha256:" + "0".repeat(64)), SnapshotNotFound);
      } finally {
        cleanup();
      }
    });

    test("remove is refused while children exist, unless forced", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        const base = await store.create("base", { upper: `${root}/u`, image: IMAGE });
        await store.create("kid", { upper: `${root}/u`, image: IMAGE, parent: base.digest });
        await assert.rejects(store.remove("base"), (e) => e instanceof SnapshotInUse && e.message.includes(`${home}/snapshots/kid`));
        assert.deepEqual((await store.list()).snapshots.map((s) => s.name), ["base", "kid"]);
        await store.remove("kid");
        await store.remove("base");
        assert.deepEqual((await store.list()).snapshots, []);
        const again = await store.create("base", { upper: `${root}/u`, image: IMAGE });
        await store.create("kid", { upper: `${root}/u`, image: IMAGE, parent: again.digest });
        await store.remove("base", { force: true });
        assert.deepEqual((await store.list()).snapshots.map((s) => s.name), ["kid"]);
        assert.deepEqual((await fs.readdir(`${home}/snapshots`)).filter((n) => n.startsWith(".msb")), []);
      } finally {
        cleanup();
      }
    });

    test("the index is a cache: deleted, corrupt or stale, answers stay right", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        const a = await store.create("a", { upper: `${root}/u`, image: IMAGE });
        const expected = (await store.list()).snapshots;
        const indexPath = `${home}/snapshots/.snapbundle-index.json`;
        assert.ok((await fs.lstat(indexPath)).kind === "file");
        await fs.remove(indexPath);
        assert.deepEqual((await store.list()).snapshots, expected);
        await writeSparse(fs, indexPath, 0, [[0, "garbage{"]]);
        assert.deepEqual((await store.list()).snapshots, expected);
        // stale: a snapshot replaced behind the index's back by a different one of the same name
        const stale = new TextDecoder().decode(await readSmallFile(fs, indexPath, 1 << 20));
        await fs.remove(`${home}/snapshots/a`, { recursive: true });
        const b = await store.create("a", { upper: `${root}/u`, image: IMAGE, labels: { v: "2" } });
        await writeAtomically(fs, indexPath, new TextEncoder().encode(stale));
        assert.notEqual(a.digest, b.digest);
        assert.equal((await store.resolve(b.digest)).path, b.path);
        await assert.rejects(store.resolve(a.digest), SnapshotNotFound);
        // a child created behind the index's back still blocks rm
        await writeAtomically(fs, indexPath, new TextEncoder().encode(stale));
        await fs.mkdir(`${home}/snapshots/kid`);
        const kid = parseManifest(new TextDecoder().decode(await readSmallFile(fs, `${b.path}/manifest.json`, 1 << 20)));
        await writeSparse(fs, `${home}/snapshots/kid/upper.ext4`, 4096, [[0, "x"]]);
        await writeAtomically(fs, `${home}/snapshots/kid/manifest.json`, new TextEncoder().encode(canonicalManifestText({ ...kid, parent: b.digest })));
        await assert.rejects(store.remove("a"), SnapshotInUse);
        // an upper truncated behind the index's back is reported, not listed
        const h = await fs.open(`${home}/snapshots/kid/upper.ext4`, "r+");
        await h.setLength(100);
        await h.close();
        const { snapshots, problems } = await store.list();
        assert.deepEqual(snapshots.map((s) => s.name), ["a"]);
        assert.equal(problems[0]?.path, `${home}/snapshots/kid`);
      } finally {
        cleanup();
      }
    });

    test("reindex DIR adds a root whose snapshots resolve by digest", async () => {
      const { fs, root, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
        await fs.mkdir(`${root}/elsewhere`);
        const x = await store.create("x", { upper: `${root}/u`, image: IMAGE, destDir: `${root}/elsewhere` });
        assert.equal(x.path, `${root}/elsewhere/x`);
        await fs.remove(`${root}/home/snapshots/.snapbundle-index.json`);
        await assert.rejects(store.resolve(x.digest), SnapshotNotFound);
        const { snapshots } = await store.reindex(`${root}/elsewhere`);
        assert.deepEqual(snapshots.map((s) => s.path), [x.path]);
        assert.equal((await store.resolve(x.digest)).path, x.path);
      } finally {
        cleanup();
      }
    });
  });
}

describe("real disk only", () => {
  const disk = BACKENDS.find((b) => b.label === "node:fs")!;
  test("create keeps holes: 256 MiB upper with 8 KiB of data allocates little", async () => {
    const { fs, root, store, cleanup } = await makeHome(disk);
    try {
      await writeSparse(fs, `${root}/u`, 256 << 20, [[0, noise(4096)], [(256 << 20) - 4096, noise(4096, 7)]]);
      const info = await store.create("big", { upper: `${root}/u`, image: IMAGE, integrity: true });
      const st = await fs.lstat(`${info.path}/upper.ext4`);
      assert.equal(st.size, 256 << 20);
      assert.ok(st.allocatedBytes !== null && st.allocatedBytes < 1 << 20, `allocated ${st.allocatedBytes}`);
      assert.equal((await store.verify("big")).integrity.status, "verified");
    } finally {
      cleanup();
    }
  });
  test("sha256 integrity equals sha256sum of the upper", async () => {
    const { fs, root, store, cleanup } = await makeHome(disk);
    try {
      await writeSparse(fs, `${root}/u`, 3 << 20, [[12345, noise(200_000)]]);
      const info = await store.create("s", { upper: `${root}/u`, image: IMAGE });
      const snap = await openSnapshot(fs, info.path);
      const expected = execFileSync("sha256sum", [snap.upperPath!]).toString().split(" ")[0];
      const m = { ...snap.manifest, upper: { ...snap.manifest.upper, integrity: { algorithm: "sha256", digest: `sha256:${expected}` } } };
      await writeAtomically(fs, `${info.path}/manifest.json`, new TextEncoder().encode(canonicalManifestText(m)));
      assert.equal((await store.verify(info.path)).integrity.status, "verified");
    } finally {
      cleanup();
    }
  });
  test("a symlinked snapshot directory is not followed by open", async () => {
    const { fs, root, home, store, cleanup } = await makeHome(disk);
    try {
      await writeSparse(fs, `${root}/u`, 4096, [[0, "x"]]);
      const a = await store.create("a", { upper: `${root}/u`, image: IMAGE });
      await fs.symlink(a.path, `${home}/snapshots/link`);
      await assert.rejects(store.resolve("link"), SnapshotNotFound);
      assert.deepEqual((await store.list()).snapshots.map((s) => s.name), ["a"]);
    } finally {
      cleanup();
    }
  });
});
