// Bun: the same flow. Bun.write cannot leave holes, so the upper is made
// with node:fs (which Bun implements natively). Run: bun examples/bun.ts
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { nodeFs, SnapshotStore } from "snapbundle";

const dir = mkdtempSync(`${tmpdir()}/snapbundle-example-`);
try {
  const upper = `${dir}/upper.ext4`;
  const fd = openSync(upper, "w");
  writeSync(fd, "hello from the upper", 1 << 20);
  ftruncateSync(fd, 256 << 20);
  closeSync(fd);

  const fs = nodeFs();
  const here = new SnapshotStore(fs, `${dir}/home-a`);
  const image = { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) };
  const snap = await here.create("demo", { upper, image, integrity: true, labels: { example: "bun" } });
  await here.save("demo", `${dir}/demo.tar.zst`);
  const there = new SnapshotStore(fs, `${dir}/home-b`);
  const head = await there.load(`${dir}/demo.tar.zst`, { name: "demo" });
  const { integrity } = await there.verify("demo");

  console.log(`created ${snap.digest}`);
  console.log(`bundle  ${Bun.file(`${dir}/demo.tar.zst`).size} bytes for a ${snap.size_bytes}-byte upper`);
  console.log(`loaded  ${head.path}: ${integrity.status} (${integrity.algorithm})`);
  if (head.digest !== snap.digest || integrity.status !== "verified") throw new Error("round trip failed");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
