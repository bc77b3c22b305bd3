// Node: make a sparse upper, create a snapshot, save it, load it into a
// second home, verify it. Run: node examples/node.mjs
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeFs, SnapshotStore } from "snapbundle";

const dir = mkdtempSync(join(tmpdir(), "snapbundle-example-"));
try {
  // 1. A 256 MiB upper holding a few bytes of data: the rest is a hole.
  const upper = join(dir, "upper.ext4");
  const fd = openSync(upper, "w");
  writeSync(fd, "hello from the upper", 1 << 20);
  ftruncateSync(fd, 256 << 20);
  closeSync(fd);

  // 2. Create a snapshot in one home, recording its sparse integrity digest.
  const fs = nodeFs();
  const here = new SnapshotStore(fs, join(dir, "home-a"));
  const image = { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) };
  const snap = await here.create("demo", { upper, image, integrity: true, labels: { example: "node" } });

  // 3. Save it as a .tar.zst bundle (holes are not stored).
  const bundle = join(dir, "demo.tar.zst");
  await here.save("demo", bundle);

  // 4. Load it into another home under the same name, and verify every byte.
  const there = new SnapshotStore(fs, join(dir, "home-b"));
  const head = await there.load(bundle, { name: "demo" });
  const { integrity } = await there.verify("demo");

  console.log(`created ${snap.digest}`);
  console.log(`bundle  ${statSync(bundle).size} bytes for a ${snap.size_bytes}-byte upper`);
  console.log(`loaded  ${head.path}: ${integrity.status} (${integrity.algorithm})`);
  if (head.digest !== snap.digest || integrity.status !== "verified") throw new Error("round trip failed");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
