/**
 * Looking inside and checking a bundle without a home (issue 14):
 * `inspect BUNDLE`, `verify BUNDLE` (also `-`), and the library's
 * `inspectBundle` / `verifyBundle`. Bundles come from our save, from GNU tar
 * + the zstd CLI, and hand-corrupted; `verify` must agree with a load into an
 * empty home every time.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inspectBundle, verifyBundle } from "../src/archive/inspect.js";
import { ImageCacheError, SnapshotIntegrityError } from "../src/errors.js";
import { nodeFs } from "../src/fs/node.js";
import { cacheEntries, type CacheEntry, imageFixture, snapEntries, snapFixture, tarOf, zstdCli } from "./helpers/archive-bundle.js";
import { createSnapshot, errorLine, expectRun, scratchDir, stdoutJson } from "./helpers/cli-assert.js";
import { noise } from "./helpers/bytes.js";
import { runCli, RUNTIME, writeSparseFile } from "./helpers/cli-run.js";

/** A home with base ← child (base with a label and integrity), and the chain saved as a bundle. */
async function chain(prefix: string) {
  const s = scratchDir(prefix);
  const base = await createSnapshot(s.home, "base", s.upper, ["--label", "team=infra"]);
  const child = await createSnapshot(s.home, "child", s.upper, ["--parent", "base"]);
  const bundle = join(s.root, "chain.tar.zst");
  expectRun(await runCli(["--home", s.home, "save", "child", bundle, "--with-parents"]), "save", 0);
  return { ...s, base, child, bundle };
}

describe(`inspect and verify a bundle on ${RUNTIME}`, () => {
  test("inspect BUNDLE lists the snapshots in order, the head, compression and tar formats; needs no home", async () => {
    const { root, base, child, bundle, cleanup } = await chain("snapbundle-bundle-");
    try {
      const noHome = join(root, "no-home");
      const doc = stdoutJson(expectRun(await runCli(["--home", noHome, "--json", "inspect", "--verify", bundle]), "inspect --json", 0), "inspect --json"); // --verify: the CLI's plain inspect hashes nothing
      assert.deepEqual(doc.snapshots.map((s: { digest: string }) => s.digest), [base.digest, child.digest]);
      assert.equal(doc.head, child.digest);
      assert.equal(doc.compression, "zstd");
      assert.ok(doc.tar_formats.includes("gnu"), doc.tar_formats);
      assert.deepEqual(doc.cache_files, []);
      const [b, c] = doc.snapshots;
      assert.deepEqual(b.labels, { "team": "infra" });
      assert.equal(b.parent, null);
      assert.equal(c.parent, base.digest);
      assert.equal(b.size_bytes, 4 << 20);
      assert.equal(b.image_ref, base.image_ref);
      assert.equal(b.integrity.status, "verified");
      assert.equal(b.integrity.recorded, b.integrity.computed);
      const text = expectRun(await runCli(["--home", noHome, "inspect", bundle]), "inspect", 0).stdout;
      assert.match(text, new RegExp(`^head: +${child.digest}$`, "m"));
      assert.match(text, /^compression: +zstd$/m);
      assert.match(text, /^labels: +team=infra$/m);
      assert.equal(existsSync(noHome), false, "no home was created");

      const stdin = stdoutJson(expectRun(await runCli(["--json", "inspect", "--verify", "-"], { input: readFileSync(bundle) }), "inspect -", 0), "inspect -");
      assert.deepEqual(stdin, doc, "stdin reports the same");
    } finally {
      cleanup();
    }
  });

  test("verify BUNDLE accepts what a load accepts: our save, plain tar, and GNU tar | zstd", async () => {
    const { root, home, bundle, cleanup } = await chain("snapbundle-bundle-");
    try {
      assert.match(expectRun(await runCli(["verify", bundle]), "verify", 0).stdout, /^verified .*: 2 snapshots, head sha256:[0-9a-f]{64}; a load into an empty home would succeed\n$/);
      expectRun(await runCli(["verify", "-"], { input: readFileSync(bundle) }), "verify -", 0);
      const plain = join(root, "base.tar");
      expectRun(await runCli(["--home", home, "save", "base", plain, "--plain-tar"]), "save --plain-tar", 0);
      assert.equal(stdoutJson(expectRun(await runCli(["--json", "verify", plain]), "verify plain", 0), "verify plain").compression, "none");

      // GNU tar writes the snapshot directory itself (directory order, the upper maybe first) and zstd compresses it
      const gnu = join(root, "gnu.tar.zst");
      const snapshots = join(home, "snapshots");
      execFileSync("bash", ["-c", `tar --sparse --format=gnu -C '${snapshots}' -cf - base | zstd -q -3 -o '${gnu}'`]);
      const doc = stdoutJson(expectRun(await runCli(["--json", "verify", gnu]), "verify GNU tar", 0), "verify GNU tar");
      assert.equal(doc.snapshots[0].integrity.status, "verified");
      expectRun(await runCli(["--home", join(root, "empty-home"), "load", gnu]), "load of the same bundle", 0);
    } finally {
      cleanup();
    }
  });

  test("a corrupted upper: inspect reports the mismatch, verify fails naming both digests, and so does a load", async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-bundle-");
    try {
      const base = await createSnapshot(home, "base", upper);
      writeSparseFile(join(base.path, "upper.ext4"), 4 << 20, [[0, "jello"], [1 << 20, noise(64 << 10)]]);
      const bad = join(root, "bad.tar.zst");
      expectRun(await runCli(["--home", home, "save", "base", bad, "--no-verify"]), "save --no-verify", 0);
      // the CLI's inspect is a quick listing (nothing hashed); the library's inspectBundle hashes and reports the mismatch
      assert.equal(stdoutJson(expectRun(await runCli(["--json", "inspect", bad]), "inspect bad", 0), "inspect bad").snapshots[0].integrity.status, "not-checked");
      const doc = await inspectBundle(nodeFs(), bad);
      assert.equal(doc.snapshots[0]!.integrity.status, "mismatch");
      const line = errorLine(await runCli(["verify", bad]), "verify bad", 1);
      assert.ok(line.includes(doc.snapshots[0]!.integrity.recorded!) && line.includes(doc.snapshots[0]!.integrity.computed!), line);
      const failed = await runCli(["--json", "verify", bad]);
      assert.equal(stdoutJson(failed, "verify --json bad").error.code, "snapshot-integrity");
      assert.equal(stdoutJson(failed, "verify --json bad").error.path, bad);
      errorLine(await runCli(["--home", join(root, "empty-home"), "load", bad]), "load bad", 1);

      await assert.rejects(verifyBundle(nodeFs(), bad), SnapshotIntegrityError);
      assert.equal((await inspectBundle(nodeFs(), bad)).snapshots[0]!.integrity.status, "mismatch");
    } finally {
      cleanup();
    }
  });

  test("hostile and foreign inputs fail verify with the load's own message", async () => {
    const { root, cleanup } = scratchDir("snapbundle-bundle-");
    try {
      // a symlink entry, written by GNU tar
      execFileSync("bash", ["-c", `cd '${root}' && mkdir -p evil && ln -s /etc/passwd evil/manifest.json && tar --format=gnu -cf evil.tar evil`]);
      const tarPath = join(root, "evil.tar");
      const verify = errorLine(await runCli(["verify", tarPath]), "verify evil", 1);
      const load = errorLine(await runCli(["--home", join(root, "home"), "load", tarPath]), "load evil", 1);
      assert.equal(verify, load, "the same check, the same message");
      assert.match(verify, /symbolic link/);
      execFileSync("gzip", ["-k", tarPath]);
      assert.match(errorLine(await runCli(["verify", `${tarPath}.gz`]), "verify gzip", 1), /is a gzip file; snapbundle reads \.tar and \.tar\.zst$/);
    } finally {
      cleanup();
    }
  });

  test("verify BUNDLE runs the load's image-cache rule for the head's image: the same code and message as load", async () => {
    const { root, cleanup } = scratchDir("snapbundle-bundle-");
    try {
      const image = await imageFixture("", 2);
      const other = await imageFixture("other", 2, "alpine:3");
      const snap = snapFixture({ image: { ref: image.ref, manifest_digest: image.manifest_digest } });
      const [meta, ...rest] = image.files as [CacheEntry, ...CacheEntry[]];
      const bundleOf = (name: string, files: readonly CacheEntry[]) => {
        const path = join(root, `${name}.tar.zst`);
        writeFileSync(path, zstdCli(tarOf(...snapEntries(snap), ...cacheEntries(files))));
        return path;
      };

      const good = bundleOf("good", image.files);
      const doc = stdoutJson(expectRun(await runCli(["--json", "verify", good]), "verify with the image cache", 0), "verify with the image cache");
      assert.deepEqual(doc.cache_files, image.files.map((f) => f.archivePath));
      expectRun(await runCli(["--home", join(root, "home-good"), "load", good]), "load with the image cache", 0);

      const cases: { name: string; files: CacheEntry[]; needles: string[] }[] = [
        // the head image's metadata file holds another image's metadata
        { name: "another-image", files: [{ archivePath: meta.archivePath, bytes: other.files[0]!.bytes }, ...rest], needles: [meta.archivePath, `is for ${other.manifest_digest}`, image.manifest_digest] },
        { name: "extra-layer", files: [...image.files, { archivePath: `cache/layers/sha256_${"f".repeat(64)}.erofs`, bytes: new Uint8Array(4096) }], needles: [`cache/layers/sha256_${"f".repeat(64)}.erofs`, "unexpected"] },
        // a second image's metadata beside the head's: refused by name, whichever comes first
        { name: "second-metadata", files: [other.files[0]!, ...image.files], needles: [other.files[0]!.archivePath, "unexpected"] },
        { name: "no-metadata", files: rest, needles: ["no metadata", meta.archivePath.slice("cache/".length)] },
      ];
      for (const c of cases) {
        const bundle = bundleOf(c.name, c.files);
        const verify = errorLine(await runCli(["verify", bundle]), `verify ${c.name}`, 1);
        const load = errorLine(await runCli(["--home", join(root, `home-${c.name}`), "load", bundle]), `load ${c.name}`, 1);
        assert.equal(verify, load, `${c.name}: the same rule, the same message`);
        for (const n of c.needles) assert.ok(verify.includes(n), `${c.name}: ${JSON.stringify(verify)} should name ${JSON.stringify(n)}`);
        const failed = stdoutJson(await runCli(["--json", "verify", bundle]), `verify --json ${c.name}`);
        assert.equal(failed.error.code, "image-cache", c.name);
        assert.equal(failed.error.path, bundle, c.name);
        assert.equal(stdoutJson(await runCli(["--json", "--home", join(root, `home-${c.name}`), "load", bundle]), `load --json ${c.name}`).error.code, "image-cache", c.name);
        await assert.rejects(verifyBundle(nodeFs(), bundle), (e: Error) => e instanceof ImageCacheError && `error: ${e.message}` === verify, c.name);
        // inspect reports, and does not judge
        assert.equal((await inspectBundle(nodeFs(), bundle)).cache_files.length, c.files.length, c.name);
      }
    } finally {
      cleanup();
    }
  });

  test("the library takes a ReadableStream too", async () => {
    const { bundle, child, cleanup } = await chain("snapbundle-bundle-");
    try {
      const bytes = readFileSync(bundle);
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 1000) c.enqueue(new Uint8Array(bytes.subarray(i, i + 1000)));
          c.close();
        },
      });
      const seen: number[] = [];
      const report = await verifyBundle(nodeFs(), stream, { label: "upload", onProgress: (n) => seen.push(n) });
      assert.equal(report.head, child.digest);
      assert.equal(seen[seen.length - 1], bytes.length, "progress counts every byte");
    } finally {
      cleanup();
    }
  });
});
