// A hermetic test on in-memory volumes: no disk, no temp files. Copy it into
// your own suite. Run: node --test examples/memfs.test.mjs (also deno test -A, bun test)
import { test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { memFs, SnapshotStore, SnapshotAlreadyExists } from "snapbundle";

test("a snapshot survives save → load between two in-memory homes", async () => {
  const vol = new Volume();
  vol.mkdirSync("/work", { recursive: true });
  const fd = vol.openSync("/work/upper.ext4", "w");
  vol.writeSync(fd, new TextEncoder().encode("hello"), 0, 5, 4096);
  vol.ftruncateSync(fd, 1 << 20);
  vol.closeSync(fd);

  const here = new SnapshotStore(memFs(vol), "/home-a");
  const image = { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) };
  const snap = await here.create("demo", { upper: "/work/upper.ext4", image, integrity: true });

  // Save into memory through a Web WritableStream…
  const chunks = [];
  await here.save("demo", new WritableStream({ write: (c) => void chunks.push(c.slice()) }));
  // …and load from a Web ReadableStream into a home on another volume.
  const there = new SnapshotStore(memFs(new Volume()), "/home-b");
  const bundle = () => new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(x); c.close(); } });
  const head = await there.load(bundle(), { name: "demo" });

  assert.equal(head.digest, snap.digest);
  assert.equal((await there.verify("demo")).integrity.status, "verified");
  await assert.rejects(there.load(bundle(), { name: "demo" }), SnapshotAlreadyExists);
});
