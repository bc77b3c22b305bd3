/**
 * Rules of src/snapshot.ts called directly: openSnapshot's refusals and size
 * limits, the manifest view of a descriptor, verify's algorithm and match
 * rules and what it reads, snapshot names, and createSnapshot's refusals,
 * its clean-up after a failure and its install (replace, collision, undo).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidArgument,
  InvalidManifest,
  InvalidSnapshot,
  SnapshotAlreadyExists,
  SnapshotIntegrityError,
  SnapshotNotFound,
} from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { MAX_DESCRIPTOR_BYTES, type SnapshotDescriptor } from "../src/descriptor.js";
import { MAX_MANIFEST_BYTES } from "../src/manifest.js";
import {
  checkIntegrityAlgorithm,
  checkIntegrityMatch,
  createSnapshot,
  manifestView,
  openSnapshot,
  rfc3339Now,
  validateSnapshotName,
  verifySnapshot,
} from "../src/snapshot.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { type Backend, BACKENDS, IMAGE, tree, writeSparse } from "./helpers/homes.js";

const T = { timeout: 30_000 };
const text = async (fs: FileSystem, path: string) => new TextDecoder().decode(await readSmallFile(fs, path, 2 << 20));
const write = async (fs: FileSystem, path: string, s: string) => {
  const h = await fs.open(path, "w");
  try {
    await h.write(new TextEncoder().encode(s), 0);
  } finally {
    await h.close();
  }
};
const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
/** Run `body` in a fresh directory on `backend`, removed afterwards. */
const inRoot = (backend: Backend, body: (t: { fs: FileSystem; root: string }) => Promise<void>) => async () => {
  const { fs, root, cleanup } = await backend.make();
  try {
    await body({ fs, root });
  } finally {
    cleanup();
  }
};
const SHA = (c: string) => "sha256:" + c.repeat(64);

function descriptor(state: SnapshotDescriptor["state"]): SnapshotDescriptor {
  return {
    schema: 1,
    artifact: "snapshot",
    scope: state.kind === "file" ? "disk" : "resumable",
    created_at: "2026-05-01T12:00:00Z",
    parent: null,
    image: IMAGE,
    source_sandbox: "sb",
    state,
    labels: { a: "1" },
    extensions: {},
    requires: [],
  };
}

describe("manifestView", () => {
  test("rule: a checkpoint shows as a raw upper with no fstype, no file, size 0 and no integrity", () => {
    const m = manifestView(descriptor({ kind: "checkpoint", checkpoint_id: "ck-1", manifest: SHA("c") }));
    assert.equal(m.format, "raw");
    assert.equal(m.fstype, "");
    assert.deepEqual(m.upper, { file: "", size_bytes: 0, integrity: null });
    assert.deepEqual(m.labels, { a: "1" });
  });

  test("rule: a file state shows its own format, fstype and upper; a Merkle root shows as the digest", () => {
    const m = manifestView(
      descriptor({
        kind: "file",
        format: "qcow2",
        fstype: "xfs",
        upper: { file: "disk.img", size_bytes: 4096, integrity: { algorithm: "msb-file-merkle-blake3-v1", root: "r".repeat(64), logical_size: 4096, leaf_size: 65536 } },
      }),
    );
    assert.equal(m.format, "qcow2");
    assert.equal(m.fstype, "xfs");
    assert.deepEqual(m.upper, { file: "disk.img", size_bytes: 4096, integrity: { algorithm: "msb-file-merkle-blake3-v1", digest: "r".repeat(64) } });
  });
});

describe("verify's algorithm and match rules", () => {
  test("rule: an unknown algorithm is refused naming the upper and the known ones", () => {
    assert.throws(
      () => checkIntegrityAlgorithm("/h/a/upper.ext4", "md5"),
      errorRule(SnapshotIntegrityError, "snapshot-integrity", /^\/h\/a\/upper\.ext4: integrity algorithm "md5" is not supported \(known: sha256, msb-sparse-sha256-v1, msb-file-merkle-blake3-v1\)$/),
    );
    for (const ok of ["sha256", "msb-sparse-sha256-v1", "msb-file-merkle-blake3-v1"]) checkIntegrityAlgorithm("/u", ok);
  });

  test("rule: a mismatch names the descriptor file of the artifact's form and both values", () => {
    const rec = { algorithm: "sha256", digest: SHA("a") };
    assert.throws(
      () => checkIntegrityMatch("/h/a/upper.ext4", "manifest", rec, SHA("b")),
      errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(`^/h/a/upper\\.ext4: upper does not match its recorded integrity \\(sha256\\): manifest\\.json records ${SHA("a")}, upper hashes to ${SHA("b")}$`)),
    );
    assert.throws(() => checkIntegrityMatch("/u", "snapshot", rec, null), errorRule(SnapshotIntegrityError, "snapshot-integrity", /: snapshot\.json records sha256:a+, upper hashes to null$/));
    checkIntegrityMatch("/u", "snapshot", rec, SHA("a"));
  });
});

describe("snapshot names", () => {
  test("rule: a name is non-empty, has no / or NUL and does not start with a dot", () => {
    for (const bad of ["", ".a", "a/b", "a\0b"]) {
      assert.throws(() => validateSnapshotName(bad), errorRule(InvalidArgument, "invalid-argument", new RegExp(`^snapshot name ${escape(JSON.stringify(bad))} is not allowed: a name must be non-empty, contain no "/" and not start with "\\."$`)));
    }
  });

  test("rule: only a snapshot.json name also refuses \\, : and a leading ~ (a trailing ~ is fine)", () => {
    for (const name of ["a:b", "a\\b", "~a"]) {
      validateSnapshotName(name);
      validateSnapshotName(name, "manifest");
      assert.throws(() => validateSnapshotName(name, "snapshot"), errorRule(InvalidArgument, "invalid-argument", /is not allowed for a snapshot\.json artifact: microsandbox 0\.6 refuses/));
    }
    validateSnapshotName("a~", "snapshot");
  });

  test("rule: created_at defaults to RFC 3339 UTC with second precision", () => {
    assert.match(rfc3339Now(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

for (const backend of BACKENDS) {
  describe(`openSnapshot and verifySnapshot on ${backend.label}`, () => {
    test("rule: open refuses a missing directory, a non-directory and a directory with no descriptor, naming it", T, inRoot(backend, async ({ fs, root }) => {
      await assert.rejects(openSnapshot(fs, `${root}/none`), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^snapshot directory ${root}/none does not exist$`)));
      await write(fs, `${root}/f`, "x");
      await assert.rejects(openSnapshot(fs, `${root}/f`), errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^${root}/f is not a snapshot directory \\(it is a file\\)$`)));
      await fs.mkdir(`${root}/empty`);
      await assert.rejects(
        openSnapshot(fs, `${root}/empty`),
        errorRule(SnapshotNotFound, "snapshot-not-found", new RegExp(`^${root}/empty is not a snapshot: it has neither snapshot\\.json nor manifest\\.json$`)),
      );
    }));

    test("rule: a snapshot.json or manifest.json that is not a regular file is an invalid manifest naming it", T, inRoot(backend, async ({ fs, root }) => {
      await fs.mkdir(`${root}/d`);
      await fs.mkdir(`${root}/d/snapshot.json`);
      await write(fs, `${root}/d/manifest.json`, "{}");
      await assert.rejects(openSnapshot(fs, `${root}/d`), errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^${root}/d/snapshot\\.json: must be a regular file \\(it is a directory\\)$`)));
      await fs.mkdir(`${root}/m`);
      await fs.mkdir(`${root}/m/manifest.json`);
      await assert.rejects(openSnapshot(fs, `${root}/m`), errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^${root}/m/manifest\\.json: must be a regular file \\(it is a directory\\)$`)));
    }));

    test("rule: a descriptor of exactly the limit opens; one byte more is an invalid manifest naming size and limit", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      for (const form of ["manifest", "snapshot"] as const) {
        const file = form === "manifest" ? "manifest.json" : "snapshot.json";
        const limit = form === "manifest" ? MAX_MANIFEST_BYTES : MAX_DESCRIPTOR_BYTES;
        const dir = `${root}/${form}`;
        const made = await createSnapshot(fs, dir, { upper: `${root}/u`, image: IMAGE, form, createdAt: "2026-05-01T12:00:00Z" });
        const body = await text(fs, `${dir}/${file}`);
        await write(fs, `${dir}/${file}`, body + " ".repeat(limit - body.length));
        assert.equal((await openSnapshot(fs, dir)).digest, made.digest);
        await write(fs, `${dir}/${file}`, body + " ".repeat(limit + 1 - body.length));
        const what = form === "manifest" ? "manifest" : "descriptor";
        await assert.rejects(openSnapshot(fs, dir), errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^${dir}/${file}: ${what} is ${limit + 1} bytes; the limit is ${limit}$`)));
      }
    }));

    test("rule: an upper named by a manifest.json that is missing is an invalid snapshot naming the upper and the manifest", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE });
      await fs.remove(`${root}/s/upper.ext4`);
      await assert.rejects(openSnapshot(fs, `${root}/s`), errorRule(InvalidSnapshot, "invalid-snapshot", new RegExp(`^${root}/s/upper\\.ext4: the upper named by the manifest does not exist$`)));
    }));

    test("rule: verify of an unrecorded integrity reads nothing unless extents are asked for, then returns them", T, inRoot(backend, async ({ fs, root }) => {
      await writeSparse(fs, `${root}/u`, 3 * 65536, [[65536, "x"]]);
      await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE });
      const snap = await openSnapshot(fs, `${root}/s`);
      const withExtents = await verifySnapshot(fs, snap, { extents: true });
      assert.equal(withExtents.status, "not-recorded");
      assert.equal(withExtents.algorithm, null);
      assert.ok(Array.isArray(withExtents.extents), "extents were asked for");
      assert.ok(withExtents.extents.length > 0);
      // no extents asked: the upper is never read (it may even be gone)
      await fs.remove(`${root}/s/upper.ext4`);
      let progress = 0;
      assert.deepEqual(await verifySnapshot(fs, snap, { onProgress: (n) => (progress += n) }), { status: "not-recorded", algorithm: null, digest: null, extents: null });
      assert.equal(progress, 0);
    }));

    test("rule: verify returns extents only when asked", T, inRoot(backend, async ({ fs, root }) => {
      await writeSparse(fs, `${root}/u`, 65536, [[0, "x"]]);
      await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, integrity: true });
      const snap = await openSnapshot(fs, `${root}/s`);
      const plain = await verifySnapshot(fs, snap);
      assert.equal(plain.status, "verified");
      assert.equal(plain.extents, null);
      const asked = await verifySnapshot(fs, snap, { extents: true });
      assert.equal(asked.status, "verified");
      assert.ok(Array.isArray(asked.extents) && asked.extents.length > 0);
    }));
  });

  describe(`createSnapshot on ${backend.label}`, () => {
    test("rule: create refuses a snapshot.json name microsandbox 0.6 refuses, and a parent that is not sha256 in a snapshot.json", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      await assert.rejects(createSnapshot(fs, `${root}/a:b`, { upper: `${root}/u`, image: IMAGE, form: "snapshot" }), errorRule(InvalidArgument, "invalid-argument", /^snapshot name "a:b" is not allowed for a snapshot\.json artifact/));
      const parent = "sha512:abcd";
      await assert.rejects(
        createSnapshot(fs, `${root}/p`, { upper: `${root}/u`, image: IMAGE, form: "snapshot", parent }),
        errorRule(InvalidArgument, "invalid-argument", /^parent "sha512:abcd" must be "sha256:" followed by 64 lowercase hex digits in a snapshot\.json$/),
      );
      assert.deepEqual(await tree(fs, root), ["u"]);
      // a manifest.json takes any algo:hex parent, and a name with ":"
      const m = await createSnapshot(fs, `${root}/a:b`, { upper: `${root}/u`, image: IMAGE, parent });
      assert.equal(m.manifest.parent, parent);
      await assert.rejects(createSnapshot(fs, `${root}/q`, { upper: `${root}/u`, image: IMAGE, parent: "nodigest" }), errorRule(InvalidArgument, "invalid-argument", /^parent "nodigest" must be a digest of the form algo:hex$/));
    }));

    test("rule: create refuses an existing target without force (saying so), and an upper that is not a regular file", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE });
      const before = await tree(fs, root);
      await assert.rejects(createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE }), errorRule(SnapshotAlreadyExists, "snapshot-already-exists", new RegExp(`^snapshot ${root}/s already exists \\(use force to replace it\\)$`)));
      await fs.mkdir(`${root}/dirupper`);
      await assert.rejects(createSnapshot(fs, `${root}/t`, { upper: `${root}/dirupper`, image: IMAGE }), errorRule(InvalidArgument, "invalid-argument", new RegExp(`^upper file ${root}/dirupper must be a regular file, not a directory$`)));
      assert.deepEqual(await tree(fs, root), [...before, "dirupper/"].sort());
    }));

    test("rule: create writes each form's descriptor, with integrity by default in a manifest.json, and returns the installed upper path", T, inRoot(backend, async ({ fs, root }) => {
      await writeSparse(fs, `${root}/u`, 65536, [[0, "hello"]]);
      const m = await createSnapshot(fs, `${root}/m`, { upper: `${root}/u`, image: IMAGE, integrity: true });
      assert.equal(m.form, "manifest");
      assert.equal(m.upperPath, `${root}/m/upper.ext4`);
      assert.equal(m.path, `${root}/m`);
      assert.equal(m.manifest.upper.integrity?.algorithm, "msb-sparse-sha256-v1");
      const s = await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, integrity: true, form: "snapshot" });
      assert.equal(s.form, "snapshot");
      assert.equal(s.upperPath, `${root}/s/upper.ext4`);
      const doc = JSON.parse(await text(fs, `${root}/s/snapshot.json`));
      assert.equal(doc.artifact, "snapshot");
      assert.equal(doc.state.upper.integrity.algorithm, "msb-file-merkle-blake3-v1");
      assert.equal((await verifySnapshot(fs, await openSnapshot(fs, `${root}/s`))).status, "verified");
    }));

    test("rule: createdAt must be RFC 3339 in both forms, refused before anything is made; a valid one is written as given", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      for (const form of ["manifest", "snapshot"] as const) {
        for (const createdAt of ["yesterday", "2026-05-01", "2026-05-01T12:00:60Z", ""]) {
          await assert.rejects(
            createSnapshot(fs, `${root}/${form}`, { upper: `${root}/u`, image: IMAGE, form, createdAt }),
            errorRule(InvalidArgument, "invalid-argument", new RegExp(`^createdAt ${JSON.stringify(createdAt)} must be an RFC 3339 timestamp, such as 2026-05-01T12:00:00Z$`)),
          );
        }
      }
      assert.deepEqual(await tree(fs, root), ["u"]);
      // a manifest.json keeps the text as given (microsandbox 0.5 keeps it as written)
      const m = await createSnapshot(fs, `${root}/m`, { upper: `${root}/u`, image: IMAGE, createdAt: "2026-05-01T13:00:00+01:00" });
      assert.equal(m.manifest.created_at, "2026-05-01T13:00:00+01:00");
    }));

    test("rule: a draft that does not validate is refused naming the descriptor for the target", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      await assert.rejects(createSnapshot(fs, `${root}/m`, { upper: `${root}/u`, image: IMAGE, fstype: "" }), errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^manifest for ${root}/m: `)));
      await assert.rejects(
        createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, fstype: "", form: "snapshot" }),
        errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^snapshot\\.json for ${root}/s: `)),
      );
      assert.deepEqual(await tree(fs, root), ["u"]);
    }));

    test("rule: a failed create removes its stage and the directories it made, and no directory that was there", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "data");
      await assert.rejects(createSnapshot(fs, `${root}/a/b/s`, { upper: `${root}/u`, image: IMAGE, fstype: "" }), errorRule(InvalidManifest, "invalid-manifest", /^manifest for /));
      assert.deepEqual(await tree(fs, root), ["u"]);
      // an existing empty parent (and its parent) stay
      await fs.mkdir(`${root}/home/snapshots`, { recursive: true });
      await assert.rejects(createSnapshot(fs, `${root}/home/snapshots/s`, { upper: `${root}/u`, image: IMAGE, fstype: "" }), errorRule(InvalidManifest, "invalid-manifest", /^manifest for /));
      assert.deepEqual(await tree(fs, root), ["home/", "home/snapshots/", "u"]);
    }));

    test("rule: a made directory that gained an entry meanwhile, or cannot be listed, is left in place", T, inRoot(backend, async ({ fs: inner, root }) => {
      await write(inner, `${root}/u`, "data");
      // another process puts a file in the directory create made, then the manifest write fails
      const fs = new FaultyFs(inner, {
        before: async (op) => {
          if (op.kind === "rename" && op.to?.endsWith("/manifest.json")) await write(inner, `${root}/a/other`, "x");
        },
      });
      fs.arm({ at: 1, kind: "rename", match: (op) => op.to?.endsWith("/manifest.json") === true, errno: "EIO" });
      await assert.rejects(createSnapshot(fs, `${root}/a/b/s`, { upper: `${root}/u`, image: IMAGE }), fsErrorRule("EIO", "rename"));
      assert.deepEqual(await tree(inner, root), ["a/", "a/other", "u"]);
      // a made directory that cannot be listed is not removed blindly
      const fs2 = new FaultyFs(inner);
      fs2.arm({ at: 1, kind: "readdir", match: (op) => op.path === `${root}/c/d`, errno: "EIO" });
      await assert.rejects(createSnapshot(fs2, `${root}/c/d/s`, { upper: `${root}/u`, image: IMAGE, fstype: "" }), errorRule(InvalidManifest, "invalid-manifest", /^manifest for /));
      assert.equal(fs2.fired.length, 1);
      assert.deepEqual(await tree(inner, `${root}/c`), ["d/"]);
    }));

    test("rule: force replaces an existing snapshot and creates a missing one", T, inRoot(backend, async ({ fs, root }) => {
      await write(fs, `${root}/u`, "one");
      const a = await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, force: true });
      await write(fs, `${root}/u`, "two!");
      const b = await createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, force: true });
      assert.notEqual(a.digest, b.digest);
      assert.equal((await openSnapshot(fs, `${root}/s`)).digest, b.digest);
      assert.equal(await text(fs, `${root}/s/upper.ext4`), "two!");
      assert.deepEqual(await tree(fs, root), ["s/", "s/manifest.json", "s/upper.ext4", "u"]);
    }));

    test("rule: without force, a snapshot made meanwhile under the name is not replaced: SnapshotAlreadyExists with the rename's cause", T, inRoot(backend, async ({ fs: inner, root }) => {
      await write(inner, `${root}/u`, "data");
      const fs = new FaultyFs(inner, {
        before: async (op) => {
          // after create looked (nothing there), before it installs: as the staged manifest lands
          if (op.kind === "rename" && op.to?.endsWith("/manifest.json")) {
            await inner.mkdir(`${root}/s`);
            await write(inner, `${root}/s/theirs`, "x");
          }
        },
      });
      await assert.rejects(createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE }), (e: unknown) => {
        errorRule(SnapshotAlreadyExists, "snapshot-already-exists", new RegExp(`^snapshot ${root}/s already exists$`))(e);
        assert.ok((e as Error).cause !== undefined, "the rename's error is the cause");
        return true;
      });
      assert.deepEqual(await tree(inner, root), ["s/", "s/theirs", "u"]);
    }));

    test("rule: a failed rename into place or fsync of the parent puts the replaced snapshot back and passes the error on", T, inRoot(backend, async ({ fs: inner, root }) => {
      await write(inner, `${root}/u`, "old");
      const old = await createSnapshot(inner, `${root}/s`, { upper: `${root}/u`, image: IMAGE });
      const before = await tree(inner, root);
      await write(inner, `${root}/u`, "new!");
      const fs = new FaultyFs(inner);
      fs.arm({ at: 1, kind: "rename", match: (op) => op.to === `${root}/s`, errno: "EIO" });
      await assert.rejects(createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, force: true }), fsErrorRule("EIO", "rename"));
      assert.equal(fs.fired.length, 1);
      assert.deepEqual(await tree(inner, root), before);
      assert.equal((await openSnapshot(inner, `${root}/s`)).digest, old.digest);
      fs.arm({ at: 1, kind: "syncDir", match: (op) => op.path === root, errno: "EIO" });
      await assert.rejects(createSnapshot(fs, `${root}/s`, { upper: `${root}/u`, image: IMAGE, force: true }), fsErrorRule("EIO", "syncDir"));
      assert.equal(fs.fired.length, 1);
      // the fsync that failed is the one after the new snapshot was renamed into place
      assert.ok(fs.ops.some((op) => op.kind === "rename" && op.to === `${root}/s` && op.seq < fs.fired[0]!.seq));
      assert.deepEqual(await tree(inner, root), before);
      assert.equal((await openSnapshot(inner, `${root}/s`)).digest, old.digest);
      assert.equal(await text(inner, `${root}/s/upper.ext4`), "old");
    }));
  });
}
