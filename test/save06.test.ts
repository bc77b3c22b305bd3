/** Save in the microsandbox 0.6 layout (docs/format.md §9): refusals, what archive.json and the tar headers record, progress, abort, and which versions can load the result; the rules of src/archive/save06.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { utimesSync } from "node:fs";
import { Volume } from "memfs";
import { loadableBy067, saveArchive06 } from "../src/archive/save06.js";
import { InvalidArgument, InvalidManifest, OperationAborted, OutputRefused, SnapshotIntegrityError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { HomeLayout } from "../src/layout.js";
import { openSnapshot } from "../src/snapshot.js";
import { SnapshotStore } from "../src/store.js";
import { walkHeaders } from "./helpers/archive-headers.js";
import { writeBytes } from "./helpers/archive-fs.js";
import { errorRule } from "./helpers/error-rules.js";
import { type Backend, BACKENDS, IMAGE, makeHome, noise, writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { descriptorText, fileState, integrityText, referenceMemberHash, sha256Of, write06, writeCheckpoint06 } from "./helpers/msb06-reference.js";
import { concat } from "./helpers/bytes.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = (s: string) => new TextEncoder().encode(s);
const MEMBER = "msb-archive-member-blake3-v1";
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The data of a regular member of a plain tar, found with the independent header walker. */
function memberData(tar: Uint8Array, name: string): Uint8Array {
  const h = walkHeaders(tar).find((x) => x.name === name);
  assert.ok(h, `no member ${name}`);
  assert.equal(h.typeflag, "0", `${name} is not a regular member`);
  return tar.subarray(h.offset + 512, h.offset + 512 + h.size);
}

/** archive.json of a plain-tar bundle, parsed. */
function inventoryOf(tar: Uint8Array): any {
  return JSON.parse(new TextDecoder().decode(memberData(tar, "archive.json")));
}

/** A 0.6 artifact whose payload file is named `file` (write06 always writes upper.ext4). */
async function write06Named(fs: FileSystem, dir: string, file: string, payload: Uint8Array): Promise<{ digest: string }> {
  await fs.mkdir(dir, { recursive: true });
  await writeBytes(fs, `${dir}/${file}`, payload);
  const text = descriptorText({ state: fileState(payload.length, await integrityText("sha256", payload), file) });
  await writeBytes(fs, `${dir}/snapshot.json`, enc(text));
  return { digest: sha256Of(enc(text)) };
}

/** The head's digest once `tar` is loaded into a fresh home on `backend`. */
async function loadedHead(backend: Backend, tar: Uint8Array): Promise<string> {
  const { fs, root, store, cleanup } = await makeHome(backend);
  try {
    await writeBytes(fs, `${root}/in.tar`, tar);
    return (await store.load(`${root}/in.tar`)).digest;
  } finally {
    cleanup();
  }
}

async function exists(fs: FileSystem, path: string): Promise<boolean> {
  return fs.lstat(path).then(
    () => true,
    () => false,
  );
}

for (const backend of BACKENDS) {
  describe(`save in the 0.6 layout on ${backend.label}`, () => {
    test("rule: a snapshot.json that is not byte-for-byte canonical is refused, naming the file and its identity; nothing is written", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const a = await write06(fs, `${home}/snapshots/a`, { size: 4096, pieces: [[0, noise(100, 1)]], integrity: "sha256" });
        await fs.remove(`${home}/snapshots/a/snapshot.json`);
        await writeBytes(fs, `${home}/snapshots/a/snapshot.json`, enc(JSON.stringify(JSON.parse(a.text), null, 2)));
        await assert.rejects(
          store.save("a", `${root}/a.tar`, { plainTar: true }),
          errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^${esc(`${home}/snapshots/a/snapshot.json is not in canonical form (its file hash differs from its identity ${a.digest}); microsandbox 0.6 would refuse it`)}`)),
        );
        assert.equal(await exists(fs, `${root}/a.tar`), false);
      } finally {
        cleanup();
      }
    });

    test("rule: an upper file name over 29 bytes is refused (files/<64hex>/<name> would need a GNU long name); 29 bytes saves and loads", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const name29 = `${"u".repeat(24)}.ext4`;
        const name30 = `${"v".repeat(25)}.ext4`;
        const ok = await write06Named(fs, `${home}/snapshots/ok`, name29, noise(1000, 2));
        await write06Named(fs, `${home}/snapshots/long`, name30, noise(1000, 3));
        await assert.rejects(
          store.save("long", `${root}/long.tar`, { plainTar: true }),
          errorRule(InvalidArgument, "invalid-argument", new RegExp(`^${esc(`${home}/snapshots/long: upper file name "${name30}" is over 29 bytes`)}.*GNU long-name entry`)),
        );
        assert.equal(await exists(fs, `${root}/long.tar`), false);
        await store.save("ok", `${root}/ok.tar`, { plainTar: true });
        const tar = await readSmallFile(fs, `${root}/ok.tar`, 1 << 20);
        const path = `files/${ok.digest.slice(7)}/${name29}`;
        assert.equal(path.length, 100);
        assert.ok(walkHeaders(tar).some((h) => h.name === path));
        assert.equal(await loadedHead(backend, tar), ok.digest);
      } finally {
        cleanup();
      }
    });

    test("rule: a zstd level out of range is refused before any payload is read or output written", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await write06(fs, `${home}/snapshots/a`, { size: 4096, pieces: [[0, noise(100, 1)]], integrity: "sha256" });
        for (const level of [0, 20]) {
          const events: unknown[] = [];
          await assert.rejects(
            store.save("a", `${root}/a.tar.zst`, { level, onProgress: (p) => events.push(p) }),
            errorRule(InvalidArgument, "invalid-argument", new RegExp(`^zstd level ${level}: must be an integer from 1 to 19`)),
          );
          assert.deepEqual(events, [], `level ${level}: nothing was read`);
          assert.deepEqual(await fs.readdir(root), ["home"]);
        }
      } finally {
        cleanup();
      }
    });

    test("rule: an existing output is refused unless overwrite, and left as it was; overwrite replaces it", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await write06(fs, `${home}/snapshots/a`, { size: 4096, pieces: [[0, noise(100, 1)]], integrity: "sha256" });
        await writeBytes(fs, `${root}/a.tar`, enc("keep me"));
        await assert.rejects(store.save("a", `${root}/a.tar`, { plainTar: true }), errorRule(OutputRefused, "output-refused", new RegExp(`^${esc(`${root}/a.tar already exists`)}`)));
        assert.deepEqual(await readSmallFile(fs, `${root}/a.tar`, 1 << 20), enc("keep me"));
        const r: any = await store.save("a", `${root}/a.tar`, { plainTar: true, overwrite: true });
        const tar = await readSmallFile(fs, `${root}/a.tar`, 1 << 20);
        assert.equal(r.tarBytes, tar.length);
        assert.equal(walkHeaders(tar).pop()!.name, "archive.json");
      } finally {
        cleanup();
      }
    });

    test("rule: a stream output receives the bundle (no path checks); tarBytes counts what it got", T, async () => {
      const { fs, home, store, cleanup } = await makeHome(backend);
      try {
        const a = await write06(fs, `${home}/snapshots/a`, { size: 4096, pieces: [[0, noise(100, 1)]], integrity: "sha256" });
        const chunks: Uint8Array[] = [];
        const r: any = await store.save("a", new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c.slice()) }), { plainTar: true });
        const tar = concat(chunks);
        assert.equal(r.tarBytes, tar.length);
        const hex = a.digest.slice(7);
        assert.deepEqual(walkHeaders(tar).map((h) => h.name), [`snapshots/${hex}/snapshot.json`, `files/${hex}/upper.ext4`, "archive.json"]);
        assert.deepEqual(inventoryOf(tar), JSON.parse(JSON.stringify(r.inventory)));
      } finally {
        cleanup();
      }
    });

    test("rule: archive.json records each member's owner, kind, sizes and integrity, the snapshots sorted by id, the head and its directory name", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const pBytes = new Uint8Array(300_000);
        pBytes.set(noise(5000, 7), 4096);
        const p = await write06(fs, `${home}/snapshots/parent`, { size: 300_000, pieces: [[4096, noise(5000, 7)]], integrity: "msb-sparse-sha256-v1" });
        const c = await write06(fs, `${home}/snapshots/child`, { size: 5000, pieces: [[0, noise(5000, 9)]], integrity: "sha256", parent: p.digest });
        assert.ok(c.digest < p.digest, "the child sorts first: id order is not chain order");
        const r: any = await store.save("child", `${root}/b.tar`, { withParents: true, plainTar: true });
        assert.deepEqual(r.snapshots.map((s: any) => s.digest), [p.digest, c.digest]);
        assert.deepEqual(r.cacheFiles, []);
        const tar = await readSmallFile(fs, `${root}/b.tar`, 64 << 20);
        assert.equal(r.tarBytes, tar.length);
        const inv = inventoryOf(tar);
        assert.deepEqual(inv, JSON.parse(JSON.stringify(r.inventory)));
        const [P, C] = [p.digest.slice(7), c.digest.slice(7)];
        // upstream's member order: each snapshot oldest first, descriptor then payload (dense: a regular member); archive.json last
        assert.deepEqual(
          walkHeaders(tar).map((h) => [h.name, h.typeflag]),
          [[`snapshots/${P}/snapshot.json`, "0"], [`files/${P}/upper.ext4`, "S"], [`snapshots/${C}/snapshot.json`, "0"], [`files/${C}/upper.ext4`, "0"], ["archive.json", "0"]],
        );
        const desc = (s: { digest: string; text: string }) => ({
          path: `snapshots/${s.digest.slice(7)}/snapshot.json`,
          owner_snapshot: s.digest,
          kind: "snapshot-descriptor",
          included: true,
          encoded_size: enc(s.text).length,
          apparent_size: enc(s.text).length,
          integrity: { algorithm: "sha256", digest: s.digest },
        });
        const expected = [
          desc(p),
          desc(c),
          { path: `files/${P}/upper.ext4`, owner_snapshot: p.digest, kind: "file-payload", included: true, encoded_size: 8192, apparent_size: 300_000, integrity: JSON.parse(await integrityText("msb-sparse-sha256-v1", pBytes)) },
          { path: `files/${C}/upper.ext4`, owner_snapshot: c.digest, kind: "file-payload", included: true, encoded_size: 5000, apparent_size: 5000, integrity: JSON.parse(await integrityText("sha256", noise(5000, 9))) },
        ].sort((a, b) => (a.path < b.path ? -1 : 1));
        assert.deepEqual(inv, {
          schema: 1,
          artifact: "snapshot-archive",
          head: c.digest,
          suggested_name: "child",
          completeness: "boot-complete",
          with_parents: true,
          with_image: false,
          snapshots: [p.digest, c.digest].sort().map((d) => ({ snapshot_id: d, descriptor: `snapshots/${d.slice(7)}/snapshot.json` })),
          entries: expected,
          protection_requirements: [],
          extensions: {},
          requires: [],
        });
        // the head alone: with_parents false; the payload is an old-GNU sparse member holding only its data
        const solo: any = await store.save("parent", `${root}/p.tar`, { plainTar: true });
        assert.equal(solo.inventory.with_parents, false);
        assert.equal(solo.inventory.suggested_name, "parent");
        const hdr = walkHeaders(await readSmallFile(fs, `${root}/p.tar`, 64 << 20)).find((h) => h.name === `files/${P}/upper.ext4`)!;
        assert.deepEqual([hdr.typeflag, hdr.size, hdr.realSize], ["S", 8192, 300_000]);
      } finally {
        cleanup();
      }
    });

    test("rule: an empty payload is a regular member of 0 bytes, and the bundle loads", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const e = await write06(fs, `${home}/snapshots/e`, { size: 0, integrity: "sha256" });
        const r: any = await store.save("e", `${root}/e.tar`, { plainTar: true, memberHashes: true });
        const path = `files/${e.digest.slice(7)}/upper.ext4`;
        const tar = await readSmallFile(fs, `${root}/e.tar`, 1 << 20);
        const hdr = walkHeaders(tar).find((h) => h.name === path)!;
        assert.deepEqual([hdr.typeflag, hdr.size], ["0", 0]);
        const entry = r.inventory.entries.find((x: any) => x.path === path)!;
        assert.deepEqual([entry.encoded_size, entry.apparent_size], [0, 0]);
        assert.equal(entry.transport_integrity?.digest, await referenceMemberHash({ kind: "file-payload", path, encodedSize: 0, apparentSize: 0, ranges: [], stored: new Uint8Array(0) }));
        assert.equal(await loadedHead(backend, tar), e.digest);
      } finally {
        cleanup();
      }
    });

    test("rule: with the image, images/ members are sha256-bound with no owner, with_image is true, and cacheFiles names the files", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const img = await buildImage(fs, home);
        const s = await write06(fs, `${home}/snapshots/s`, { size: 4096, pieces: [[0, enc("s")]], integrity: "sha256", image: { ref: img.ref, manifest_digest: img.manifest_digest } });
        const r: any = await store.save("s", `${root}/s.tar`, { plainTar: true, withImage: true, memberHashes: true });
        assert.equal(r.inventory.with_image, true);
        assert.deepEqual([...r.cacheFiles].sort(), [...img.files].sort());
        const tar = await readSmallFile(fs, `${root}/s.tar`, 64 << 20);
        const names = walkHeaders(tar).map((h) => h.name);
        assert.deepEqual(names.slice(0, 2), [`snapshots/${s.digest.slice(7)}/snapshot.json`, `files/${s.digest.slice(7)}/upper.ext4`]);
        assert.equal(names.pop(), "archive.json");
        const images = r.inventory.entries.filter((e: any) => e.path.startsWith("images/"));
        assert.equal(images.length, img.files.length);
        for (const f of img.files) {
          const path = f.replace(`${home}/cache/`, "images/");
          const bytes = await readSmallFile(fs, f, 1 << 20);
          const e = images.find((x: any) => x.path === path);
          assert.ok(e, path);
          assert.deepEqual(memberData(tar, path), bytes);
          const kind = path.startsWith("images/manifests/") ? "image-metadata" : "image-object";
          assert.deepEqual(e, {
            path,
            owner_snapshot: null,
            kind,
            included: true,
            encoded_size: bytes.length,
            apparent_size: bytes.length,
            integrity: { algorithm: "sha256", digest: sha256Of(bytes) },
            transport_integrity: { algorithm: MEMBER, digest: await referenceMemberHash({ kind, path, encodedSize: bytes.length, apparentSize: bytes.length, ranges: [], stored: bytes }) },
          });
        }
        const without: any = await store.save("s", `${root}/n.tar`, { plainTar: true });
        assert.equal(without.inventory.with_image, false);
        assert.deepEqual(without.cacheFiles, []);
      } finally {
        cleanup();
      }
    });

    test("rule: progress counts every payload byte while verifying and every stored byte while writing, against fixed totals", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const p = await write06(fs, `${home}/snapshots/p`, { size: 200_000, pieces: [[70_000, noise(9000, 3)]], integrity: "msb-file-merkle-blake3-v1" });
        await write06(fs, `${home}/snapshots/c`, { size: 6000, pieces: [[0, noise(6000, 4)]], integrity: "sha256", parent: p.digest });
        for (const verify of [true, false]) {
          const events: { phase: string; bytes: number; total: number }[] = [];
          const r: any = await store.save("c", `${root}/b${verify}.tar`, { withParents: true, plainTar: true, verify, onProgress: (e) => events.push(e) });
          const v = events.filter((e) => e.phase === "verify");
          const w = events.filter((e) => e.phase === "write");
          assert.deepEqual(events, [...v, ...w], "verify comes first");
          assert.ok(v.every((e) => e.total === 206_000), `verify total (verify: ${verify})`);
          assert.equal(v[v.length - 1]!.bytes, 206_000);
          const stored = r.inventory.entries.filter((e: any) => e.kind === "file-payload").reduce((n: number, e: any) => n + e.encoded_size, 0);
          assert.ok(stored < 206_000);
          assert.ok(w.every((e) => e.total === stored), `write total (verify: ${verify})`);
          assert.equal(w[w.length - 1]!.bytes, stored);
          for (const list of [v, w]) for (let i = 1; i < list.length; i++) assert.ok(list[i]!.bytes >= list[i - 1]!.bytes, "never goes back");
        }
      } finally {
        cleanup();
      }
    });

    test("rule: checkpoint state saves as its descriptor alone, with or without verify (there is no payload to check or scan)", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const ck = await writeCheckpoint06(fs, `${home}/snapshots/ck`);
        for (const verify of [true, false]) {
          const r: any = await store.save("ck", `${root}/ck-${verify}.tar`, { plainTar: true, verify });
          const tar = await readSmallFile(fs, `${root}/ck-${verify}.tar`, 1 << 20);
          assert.deepEqual(walkHeaders(tar).map((h) => h.name), [`snapshots/${ck.digest.slice(7)}/snapshot.json`, "archive.json"]);
          assert.deepEqual(memberData(tar, `snapshots/${ck.digest.slice(7)}/snapshot.json`), enc(ck.text));
          assert.deepEqual(r.inventory.entries.map((e: any) => e.kind), ["snapshot-descriptor"]);
        }
      } finally {
        cleanup();
      }
    });

    test("rule: verify:false skips the recorded integrity (a payload that no longer matches is saved as it is); the default refuses it", T, async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const a = await write06(fs, `${home}/snapshots/a`, { size: 100_000, pieces: [[50_000, noise(3000, 5)]], integrity: "msb-sparse-sha256-v1" });
        const h = await fs.open(`${home}/snapshots/a/upper.ext4`, "r+");
        try {
          await h.write(enc("X"), 50_001);
        } finally {
          await h.close();
        }
        await assert.rejects(store.save("a", `${root}/a.tar`, { plainTar: true }), errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(esc(`${home}/snapshots/a`))));
        assert.equal(await exists(fs, `${root}/a.tar`), false);
        await store.save("a", `${root}/a.tar`, { plainTar: true, verify: false });
        const tar = await readSmallFile(fs, `${root}/a.tar`, 1 << 20);
        const hdr = walkHeaders(tar).find((x) => x.name === `files/${a.digest.slice(7)}/upper.ext4`)!;
        assert.deepEqual([hdr.typeflag, hdr.realSize], ["S", 100_000]);
        assert.ok(hdr.size < 100_000, "still only the data extents");
      } finally {
        cleanup();
      }
    });

    for (const [phase, verify] of [["verify", true], ["verify", false], ["write", true]] as const) {
      test(`rule: an abort during the ${phase} phase (verify: ${verify}) rejects with OperationAborted and leaves no output`, { timeout: 30_000 }, async () => {
        const { fs, root, home, store, cleanup } = await makeHome(backend);
        try {
          await write06(fs, `${home}/snapshots/a`, { size: 3 << 20, pieces: [[0, noise(3 << 20, 6)]], integrity: "sha256" });
          const ctl = new AbortController();
          let after = 0;
          await assert.rejects(
            store.save("a", `${root}/a.tar`, {
              plainTar: true,
              verify,
              signal: ctl.signal,
              onProgress: (e) => {
                if (ctl.signal.aborted) after++;
                else if (e.phase === phase) ctl.abort();
              },
            }),
            errorRule(OperationAborted, "aborted", /./),
          );
          assert.equal(after, 0, "no progress once aborted");
          assert.deepEqual(await fs.readdir(root), ["home"]);
        } finally {
          cleanup();
        }
      });
    }
  });
}

describe("suggested_name: the head's directory name when microsandbox would accept it", () => {
  const memHome = async (dir: string) => {
    const vol = new Volume();
    const fs = memFs(vol);
    await fs.mkdir("/out", { recursive: true });
    const a = await write06(fs, dir, { size: 512, pieces: [[0, noise(512, 1)]], integrity: "sha256" });
    return { fs, a, snap: await openSnapshot(fs, dir) };
  };
  const cases: [string, string, string | null][] = [
    ["a plain name", "/h/snapshots/alpha", "alpha"],
    ["255 bytes", `/h/snapshots/${"n".repeat(255)}`, "n".repeat(255)],
    ["over 255 bytes of UTF-8 (128 × é)", `/h/snapshots/${"é".repeat(128)}`, null],
    ["a backslash", "/h/snapshots/a\\b", null],
    ["no name at all (the root directory)", "/", null],
  ];
  for (const [what, dir, want] of cases) {
    test(`rule: suggested_name for ${what}`, T, async () => {
      const { fs, a, snap } = await memHome(dir);
      const r = await saveArchive06(fs, new HomeLayout("/h"), [snap], "/out/x.tar", { plainTar: true });
      assert.equal(r.inventory.suggested_name, want);
      assert.equal(inventoryOf(await readSmallFile(fs, "/out/x.tar", 1 << 20)).suggested_name, want);
      assert.equal(r.inventory.head, a.digest);
    });
  }
});

// memfs only: which versions can load a bundle does not depend on the filesystem (the suites above run both)
describe("which microsandbox versions can load the result: member hashes (memfs)", () => {
  test("rule: auto records member hashes only when 0.6.7–0.6.8 could not load the set anyway; forced either way", T, async () => {
    const { fs, root, home, store, cleanup } = await makeHome(BACKENDS[0]!);
    try {
      const algs = ["sha256", "msb-sparse-sha256-v1", null, "msb-file-merkle-blake3-v1"] as const;
      for (const alg of algs) await write06(fs, `${home}/snapshots/${alg ?? "none"}`, { size: 3000, pieces: [[0, noise(3000, 9)]], integrity: alg });
      await writeCheckpoint06(fs, `${home}/snapshots/ck`);
      const old = new Set(["sha256", "msb-sparse-sha256-v1"]);
      for (const name of ["sha256", "msb-sparse-sha256-v1", "none", "msb-file-merkle-blake3-v1", "ck"]) {
        const snap = await openSnapshot(fs, `${home}/snapshots/${name}`);
        assert.equal(loadableBy067([snap]), old.has(name), name);
        for (const memberHashes of ["auto", true, false] as const) {
          const r: any = await store.save(name, `${root}/${name}-${memberHashes}.tar`, { plainTar: true, memberHashes });
          const want = memberHashes === "auto" ? !old.has(name) : memberHashes;
          const inv = r.inventory;
          assert.deepEqual(inv.requires, want ? [MEMBER] : [], `${name} ${memberHashes}`);
          for (const e of inv.entries) assert.equal(e.transport_integrity?.algorithm, want ? MEMBER : undefined, `${name} ${memberHashes} ${e.path}`);
        }
      }
      // a chain is loadable by 0.6.7–0.6.8 only when every snapshot is
      const a = await openSnapshot(fs, `${home}/snapshots/sha256`);
      const n = await openSnapshot(fs, `${home}/snapshots/none`);
      assert.equal(loadableBy067([a, a]), true);
      assert.equal(loadableBy067([a, n]), false);
      assert.equal(loadableBy067([n, a]), false);
    } finally {
      cleanup();
    }
  });
});

describe("tar headers of a 0.6 bundle (node:fs, real mtimes)", () => {
  test("rule: members carry their source file's mtime (descriptors, regular and sparse payloads, image files); archive.json is mode 0644 stamped with the save time", T, async () => {
    const { fs, root, home, store, cleanup } = await makeHome(BACKENDS[1]!);
    try {
      const a = await write06(fs, `${home}/snapshots/a`, { size: 4096, pieces: [[0, noise(4096, 1)]], integrity: "sha256" });
      const img = await buildImage(fs, home);
      const b = await write06(fs, `${home}/snapshots/b`, { size: 100_000, pieces: [[50_000, noise(100, 2)]], integrity: "sha256", parent: a.digest, image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      const times: [string, number][] = [
        [`snapshots/${a.digest.slice(7)}/snapshot.json`, 1_000_000_000],
        [`files/${a.digest.slice(7)}/upper.ext4`, 1_100_000_000],
        [`snapshots/${b.digest.slice(7)}/snapshot.json`, 1_200_000_000],
        [`files/${b.digest.slice(7)}/upper.ext4`, 1_300_000_000],
        ...img.files.map((f, i): [string, number] => [f.replace(`${home}/cache/`, "images/"), 1_400_000_000 + i]),
      ];
      const sources = [`${home}/snapshots/a/snapshot.json`, `${home}/snapshots/a/upper.ext4`, `${home}/snapshots/b/snapshot.json`, `${home}/snapshots/b/upper.ext4`, ...img.files];
      // fractional seconds are cut, not rounded
      sources.forEach((f, i) => utimesSync(f, times[i]![1], times[i]![1] + 0.75));
      const before = Math.floor(Date.now() / 1000);
      await store.save("b", `${root}/b.tar`, { plainTar: true, withParents: true, withImage: true });
      const after = Math.ceil(Date.now() / 1000);
      const { readAll, bytesStream } = await import("./helpers/tar-tools.js");
      const entries = await readAll(bytesStream(await readSmallFile(fs, `${root}/b.tar`, 1 << 20)));
      const by = new Map(entries.map((e) => [e.path, e]));
      assert.equal(by.get(times[3]![0])!.sparse, true);
      for (const [path, mtime] of times) assert.equal(by.get(path)!.mtime, mtime, path);
      const inv = by.get("archive.json")!;
      assert.equal(inv.mode, 0o644);
      assert.ok(inv.mtime >= before && inv.mtime <= after, `archive.json mtime ${inv.mtime} within [${before}, ${after}]`);
    } finally {
      cleanup();
    }
  });

  test("rule: a manifest.json snapshot translated to the 0.6 layout takes manifest.json's mtime; its parent must come along", T, async () => {
    const { fs, root, home, store, cleanup } = await makeHome(BACKENDS[1]!);
    try {
      await writeSparse(fs, `${root}/u`, 8192, [[0, noise(100, 2)]]);
      const p = await store.create("p", { upper: `${root}/u`, image: IMAGE, integrity: true });
      const c = await store.create("c", { upper: `${root}/u`, image: IMAGE, integrity: true, parent: p.digest });
      utimesSync(`${home}/snapshots/c/manifest.json`, 1_200_000_000, 1_200_000_000);
      await assert.rejects(
        store.save("c", `${root}/x.tar`, { layout: "snapshot" }),
        errorRule(InvalidArgument, "invalid-argument", new RegExp(`^${esc(`${home}/snapshots/c: its parent ${p.digest} must be in the same bundle`)}.*legacy_parent_missing`)),
      );
      const r: any = await store.save("c", `${root}/c.tar`, { layout: "snapshot", withParents: true, plainTar: true });
      const head = r.snapshots[1]!;
      assert.notEqual(head.digest, c.digest);
      assert.equal(r.inventory.head, head.digest);
      const { readAll, bytesStream } = await import("./helpers/tar-tools.js");
      const entries = await readAll(bytesStream(await readSmallFile(fs, `${root}/c.tar`, 1 << 20)));
      const d = entries.find((e) => e.path === `snapshots/${head.digest.slice(7)}/snapshot.json`)!;
      assert.equal(d.mtime, 1_200_000_000);
      assert.equal(sha256Of(d.content), head.digest);
      assert.equal(JSON.parse(new TextDecoder().decode(d.content)).parent, r.snapshots[0]!.digest);
    } finally {
      cleanup();
    }
  });
});
