// Deno: the same flow with Deno's own file APIs for the upper; snapbundle's
// nodeFs() runs on Deno's node:fs. Run: deno run -A examples/deno.ts
import { nodeFs, SnapshotStore } from "snapbundle";

const dir = await Deno.makeTempDir({ prefix: "snapbundle-example-" });
try {
  // 1. A 256 MiB upper holding a few bytes of data.
  const upper = `${dir}/upper.ext4`;
  const file = await Deno.open(upper, { write: true, create: true });
  await file.seek(1 << 20, Deno.SeekMode.Start);
  await file.write(new TextEncoder().encode("hello from the upper"));
  await file.truncate(256 << 20);
  file.close();

  // 2–4. Create, save, load elsewhere, verify.
  const fs = nodeFs();
  const here = new SnapshotStore(fs, `${dir}/home-a`);
  const image = { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) };
  const snap = await here.create("demo", { upper, image, integrity: true, labels: { example: "deno" } });
  await here.save("demo", `${dir}/demo.tar.zst`);
  const there = new SnapshotStore(fs, `${dir}/home-b`);
  const head = await there.load(`${dir}/demo.tar.zst`, { name: "demo" });
  const { integrity } = await there.verify("demo");

  console.log(`created ${snap.digest}`);
  console.log(`bundle  ${(await Deno.stat(`${dir}/demo.tar.zst`)).size} bytes for a ${snap.size_bytes}-byte upper`);
  console.log(`loaded  ${head.path}: ${integrity.status} (${integrity.algorithm})`);
  if (head.digest !== snap.digest || integrity.status !== "verified") throw new Error("round trip failed");
} finally {
  await Deno.remove(dir, { recursive: true });
}
