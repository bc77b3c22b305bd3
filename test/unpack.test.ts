/** The unpack step's rules (src/archive/unpack.ts): staging keeps holes, is durable and created new, the input is read to its end, a failing unpack releases its source, small entries gather with holes as zeros. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CompressionError, FsError, SnapbundleError } from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { HomeLayout } from "../src/layout.js";
import { loadArchive } from "../src/archive/load.js";
import { collectEntry, discardSink, stagingSink, unpackArchive } from "../src/archive/unpack.js";
import { readTar } from "../src/tar/mod.js";
import { dirEntry, fileEntry, snapEntries, snapFixture, tarOf, zstdCli } from "./helpers/archive-bundle.js";
import { fingerprint, writeBytes } from "./helpers/archive-fs.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { BACKENDS, noise, tree } from "./helpers/homes.js";
import { RecordingFs } from "./helpers/recording-fs.js";
import { concatBytes, craftData, craftHeader, END } from "./helpers/tar-craft.js";
import { bytesStream } from "./helpers/tar-tools.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const KiB = 1024;

/** 1 MiB upper: 4 KiB of data, 10 bytes at 512 KiB, zeros to the end (a trailing hole). */
const HOLEY = snapFixture({ size: 1024 * KiB, pieces: [[0, noise(4096, 21)], [512 * KiB, noise(10, 22)]] });

async function fresh(backend: (typeof BACKENDS)[number]) {
  const made = await backend.make();
  const layout = new HomeLayout(`${made.root}/home`);
  return { ...made, layout };
}

/** Files created new (`wx`, how staging writes) and not closed before the next use of their path. */
function stagedUnclosed(faulty: FaultyFs): string[] {
  const pending = new Set<string>();
  let staged = 0;
  for (const op of faulty.ops) {
    if (op.kind === "open" && op.mode === "wx") {
      pending.add(op.path);
      staged++;
    } else if (op.kind === "close") pending.delete(op.path);
  }
  assert.ok(staged > 0, "files were staged");
  return [...pending];
}

async function put(fs: FileSystem, path: string, bytes: Uint8Array): Promise<string> {
  await writeBytes(fs, path, bytes);
  return path;
}

for (const backend of BACKENDS) {
  describe(`unpack on ${backend.label}`, () => {
    test("rule: a staged upper is its entry's bytes, zero runs left as holes, as long as the entry", T, async () => {
      const r = await fresh(backend);
      try {
        // directory entries too: they make the directories files go into
        const bundle = tarOf(dirEntry(`${HOLEY.prefix}/`), ...snapEntries(HOLEY), dirEntry("cache/"));
        const faulty = new FaultyFs(r.fs);
        const head = await loadArchive(faulty, r.layout, await put(r.fs, `${r.root}/a.tar`, bundle));
        assert.deepEqual(stagedUnclosed(faulty), [], "every staged file opened is closed");
        const info = await r.fs.stat(`${head.path}/upper.ext4`);
        assert.equal(info.size, 1024 * KiB);
        assert.deepEqual(await readSmallFile(r.fs, `${head.path}/upper.ext4`, 2 << 20), HOLEY.upper);
        if (info.allocatedBytes !== null) assert.ok(info.allocatedBytes <= 64 * KiB, `the holes stayed holes: ${info.allocatedBytes} bytes allocated`);
        // the same bytes arriving in small pieces: data runs land at their offsets in the entry
        const again = await loadArchive(r.fs, r.layout, bytesStream(bundle, [65_536, 3000, 100_000]), { name: "again" });
        assert.deepEqual(await readSmallFile(r.fs, `${again.path}/upper.ext4`, 2 << 20), HOLEY.upper);
      } finally {
        r.cleanup();
      }
    });

    test("rule: every staged file is fsynced before its snapshot is promoted", T, async () => {
      const r = await fresh(backend);
      try {
        const rec = new RecordingFs(r.fs);
        const path = await put(r.fs, `${r.root}/a.tar`, tarOf(...snapEntries(HOLEY)));
        const head = await loadArchive(rec, r.layout, path);
        const promote = rec.log.findIndex((o) => o.op === "rename" && o.to === head.path);
        assert.ok(promote > 0);
        const staged = rec.log[promote]!.path;
        for (const f of ["manifest.json", "upper.ext4"]) {
          const synced = rec.log.findIndex((o) => o.op === "fsync" && o.path === `${staged}/${f}`);
          assert.ok(synced >= 0 && synced < promote, `${f} fsynced before the promotion`);
        }
      } finally {
        r.cleanup();
      }
    });

    test("rule: a failure writing a staged file fails the load, naming the bundle and the entry, and leaves nothing", T, async () => {
      for (const kind of ["write", "setLength", "sync"] as const) {
        const r = await fresh(backend);
        try {
          const faulty = new FaultyFs(r.fs);
          const path = await put(r.fs, `${r.root}/a.tar`, tarOf(...snapEntries(HOLEY)));
          faulty.arm({ at: 1, kind, match: (op) => op.path.endsWith(`/${HOLEY.prefix}/upper.ext4`), errno: kind === "sync" ? "EIO" : "ENOSPC" });
          await assert.rejects(loadArchive(faulty, r.layout, path), (e: unknown) => {
            fsErrorRule(kind === "sync" ? "EIO" : "ENOSPC", kind)(e);
            // the staged copy is gone when the user reads this: the path is the bundle's, the message names the entry
            assert.equal((e as FsError).path, path);
            assert.match((e as FsError).message, new RegExp(`${HOLEY.prefix}/upper\\.ext4: .* \\(in the temporary copy unpacked into .*, now removed\\)$`));
            return true;
          });
          assert.equal(faulty.fired.length, 1, kind);
          assert.deepEqual(stagedUnclosed(faulty), [], `${kind}: the staged file is closed too`);
          assert.deepEqual(await r.fs.readdir(r.root), ["a.tar"], `${kind}: nothing is left`);
        } finally {
          r.cleanup();
        }
      }
    });

    test("rule: a 0.6 bundle's inventory is kept in memory, never staged", T, async () => {
      const r = await fresh(backend);
      try {
        const stage = { snapshots: `${r.root}/s`, cache: `${r.root}/c` };
        await r.fs.mkdir(stage.snapshots);
        await stagingSink(r.fs, stage).file({ area: "msb06", role: "inventory", path: "archive.json", hex: null, kind: null, file: "archive.json" }, new TextEncoder().encode("{}"));
        assert.deepEqual(await tree(r.fs, r.root), ["s/"]);
      } finally {
        r.cleanup();
      }
    });

    test("rule: staged files are created new, never over an existing file", T, async () => {
      const r = await fresh(backend);
      try {
        const stage = { snapshots: `${r.root}/s`, cache: `${r.root}/c` };
        const sink = stagingSink(r.fs, stage);
        await sink.directory({ area: "cache", kind: null, file: null });
        await sink.directory({ area: "snapshot", prefix: "sha256-0123456789abcdef", file: null });
        await sink.directory({ area: "cache", kind: "fsmeta", file: null });
        assert.deepEqual(await tree(r.fs, r.root), ["c/", "c/fsmeta/", "s/", "s/sha256-0123456789abcdef/"], "a directory entry makes its directory");
        const place = { area: "snapshot", prefix: "sha256-0123456789abcdef", file: "manifest.json" } as const;
        await sink.file(place, new TextEncoder().encode("{}"));
        await assert.rejects(sink.file(place, new TextEncoder().encode("[]")), fsErrorRule("EEXIST", "open"));
        await sink.file({ area: "cache", kind: "layers", file: "x.erofs" }, new Uint8Array([1, 2, 3]));
        assert.deepEqual(await tree(r.fs, r.root), ["c/", "c/fsmeta/", "c/layers/", "c/layers/x.erofs", "s/", "s/sha256-0123456789abcdef/", "s/sha256-0123456789abcdef/manifest.json"]);
        assert.equal(new TextDecoder().decode(await readSmallFile(r.fs, `${r.root}/s/sha256-0123456789abcdef/manifest.json`, 10)), "{}");
      } finally {
        r.cleanup();
      }
    });
  });
}

describe("unpack input", () => {
  test("rule: bytes after the end-of-archive marker are ignored, but a zstd stream is read to its end", T, async () => {
    const tar = tarOf(...snapEntries(HOLEY));
    const plain = await unpackArchive(bytesStream(concatBytes(tar, new TextEncoder().encode("trailing garbage"))), discardSink, { label: "t.tar" });
    assert.deepEqual(plain.snapshots.map((s) => s.prefix), [HOLEY.prefix]);
    // a second zstd frame, cut short, after the frame holding the whole tar
    const cut = zstdCli(new Uint8Array(10 * KiB).fill(7));
    const z = concatBytes(zstdCli(tar), cut.subarray(0, cut.length - 6));
    await assert.rejects(unpackArchive(bytesStream(z, [4096]), discardSink, { label: "t.tar.zst" }), errorRule(CompressionError, "compression", /^"t\.tar\.zst": truncated zstd stream: .*inside the frame that starts at byte/));
    const whole = await unpackArchive(bytesStream(concatBytes(zstdCli(tar), cut), [4096]), discardSink, { label: "t.tar.zst" });
    assert.deepEqual(whole.snapshots.map((s) => s.prefix), [HOLEY.prefix]);
  });

  test("rule: a failing unpack cancels its source with the error", T, async () => {
    let reason: unknown = null;
    const bad = tarOf(fileEntry("../escape", "x"), new Uint8Array(64 * KiB));
    let at = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bad.length) return c.close();
        c.enqueue(bad.slice(at, at + 1024));
        at += 1024;
      },
      cancel(e) {
        reason = e;
      },
    });
    await assert.rejects(unpackArchive(source, discardSink, { label: "s.tar" }), (e: unknown) => e instanceof SnapbundleError && e.code === "archive" && /^s\.tar: .*\.\.\/escape/.test(e.message));
    assert.ok(reason instanceof SnapbundleError && reason.code === "archive", `the source was cancelled with the error, got ${String(reason)}`);
    assert.ok(at < bad.length, "the rest of the source was not read");
  });

  test("rule: a gathered entry has its holes as zeros", T, async () => {
    // an old-GNU sparse entry: 100 bytes at 4096 of a 6000-byte file
    const data = noise(100, 5);
    const bytes = concatBytes(
      craftHeader({ name: "meta", typeflag: "S", size: data.length, sparse: { map: [[4096, 100]], realSize: 6000 } }),
      craftData(data),
      END,
    );
    const seen: Uint8Array[] = [];
    for await (const entry of readTar(bytesStream(bytes), { label: "m.tar" })) seen.push(await collectEntry(entry));
    const want = new Uint8Array(6000);
    want.set(data, 4096);
    assert.deepEqual(seen, [want]);
  });
});

describe("unpack failures leave the home as it was", () => {
  test("rule: a bad later entry discards what was staged before it", T, async () => {
    const r = await fresh(BACKENDS[0]!);
    try {
      await r.fs.mkdir(`${r.layout.home}/snapshots`, { recursive: true });
      const before = await fingerprint(r.fs, r.layout.home);
      const path = await put(r.fs, `${r.root}/a.tar`, tarOf(...snapEntries(HOLEY), fileEntry("notes.txt", "x")));
      await assert.rejects(loadArchive(r.fs, r.layout, path), (e: unknown) => e instanceof SnapbundleError && e.code === "archive" && e.message.includes("notes.txt"));
      assert.deepEqual(await fingerprint(r.fs, r.layout.home), before);
    } finally {
      r.cleanup();
    }
  });
});
