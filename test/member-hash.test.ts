/** The `msb-archive-member-blake3-v1` member hash (docs/format.md §9), member kinds, sparse descriptors and hashing while bytes stream: the rules of src/archive/member-hash.ts. */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { classifyEntry, type EntryPlace } from "../src/archive/grammar.js";
import { hashedChunks, hashingEntry, MEMBER_BLAKE3, MemberHasher, sparseDescriptors } from "../src/archive/member-hash.js";
import { type MemberKind, memberKindOf } from "../src/archive/msb06-paths.js";
import { discardSink, unpackArchive } from "../src/archive/unpack.js";
import { readTar, type TarEntry } from "../src/tar/mod.js";
import { noise } from "./helpers/homes.js";
import { referenceMemberHash } from "./helpers/msb06-reference.js";
import { concatBytes, craftData, craftHeader, END } from "./helpers/tar-craft.js";
import { bytesStream, makeSparseFile, removeDir, tempDir } from "./helpers/tar-tools.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

/** Member facts, as the reference takes them. */
interface Facts {
  kind: string;
  path: string;
  encodedSize: number;
  apparentSize: number;
  ranges: [number, number][];
}

/** The digest of `stored` fed to a {@link MemberHasher} in chunks of `chunk` bytes. */
async function streamed(facts: Facts, stored: Uint8Array, chunk: number): Promise<string> {
  const h = await MemberHasher.create(facts);
  for (let at = 0; at < stored.length; at += chunk) h.update(stored.subarray(at, at + chunk));
  return h.digest();
}

/** Entries and generators that a regression could leave waiting forever: fail instead of hanging. */
const BOUNDED = { timeout: 10_000 };

/** A hasher that keeps a copy of every byte it is given. */
function recorder(): { update(d: Uint8Array): void; bytes(): Uint8Array } {
  const seen: Uint8Array[] = [];
  return { update: (d) => void seen.push(d.slice()), bytes: () => concatBytes(...seen) };
}

describe("member hash", () => {
  test("rule: the member hash is BLAKE3 over the prefix of docs/format.md §9.3 (kind, path, sizes, descriptors) and the stored bytes", T, async () => {
    assert.equal(MEMBER_BLAKE3, "msb-archive-member-blake3-v1");
    const members: (Facts & { stored: Uint8Array })[] = [
      { kind: "file-payload", path: `files/${"a".repeat(64)}/upper.ext4`, encodedSize: 3000, apparentSize: 3000, ranges: [], stored: noise(3000, 1) },
      { kind: "image-object", path: "images/layers/sha256_ab.erofs", encodedSize: 1536, apparentSize: 1 << 20, ranges: [[0, 1024], [8192, 512], [1 << 20, 0]], stored: noise(1536, 2) },
      // UTF-8 lengths, not UTF-16 ones: the path is 19 code units but 29 bytes
      { kind: "image-metadata", path: "images/manifests/ünïcödé-数据.json", encodedSize: 5, apparentSize: 5, ranges: [], stored: new TextEncoder().encode("{}\n\n\n") },
      // sizes beyond 32 bits are full little-endian u64s
      { kind: "file-payload", path: "files/b/upper.ext4", encodedSize: 0, apparentSize: 5 * 2 ** 32 + 7, ranges: [[5 * 2 ** 32 + 7, 0]], stored: new Uint8Array(0) },
    ];
    const digests = new Set<string>();
    for (const m of members) {
      const expected = await referenceMemberHash(m);
      assert.match(expected, /^blake3:[0-9a-f]{64}$/);
      assert.equal(await streamed(m, m.stored, 1 << 20), expected, m.path);
      assert.equal(await streamed(m, m.stored, 7), expected, `${m.path}, in 7-byte pieces`);
      digests.add(expected);
    }
    assert.equal(digests.size, members.length);
  });

  test("rule: every fact is bound: changing the kind, path, either size or one descriptor changes the hash", T, async () => {
    const base: Facts = { kind: "file-payload", path: "files/c/upper.ext4", encodedSize: 512, apparentSize: 4096, ranges: [[0, 512], [4096, 0]] };
    const stored = noise(512, 3);
    const variants: Facts[] = [
      base,
      { ...base, kind: "image-object" },
      { ...base, path: "files/d/upper.ext4" },
      { ...base, encodedSize: 513 },
      { ...base, apparentSize: 4097 },
      { ...base, ranges: [[0, 512], [4097, 0]] },
      { ...base, ranges: [[0, 512]] },
      { ...base, ranges: [] },
    ];
    const digests = await Promise.all(variants.map((v) => streamed(v, stored, 512)));
    assert.equal(new Set(digests).size, variants.length);
    assert.equal(digests[0], await referenceMemberHash({ ...base, stored }));
  });
});

/** The member kind of `path` as a load sees it: from where the grammar places it; null when it is no 0.6 member (or refused). */
function kindOf(path: string): MemberKind | null {
  let place: EntryPlace;
  try {
    place = classifyEntry(path, "file");
  } catch {
    return null;
  }
  return place.area === "msb06" && place.role !== "directory" ? memberKindOf(place) : null;
}

describe("member kinds", () => {
  test("rule: a member's kind comes from where the grammar placed it (snapshots/, files/, images/manifests or other images/), three levels deep only", () => {
    const cases: [string, MemberKind | null][] = [
      [`snapshots/${"a".repeat(64)}/snapshot.json`, "snapshot-descriptor"],
      [`files/${"a".repeat(64)}/upper.ext4`, "file-payload"],
      ["images/manifests/abc.json", "image-metadata"],
      ["images/layers/sha256_ab.erofs", "image-object"],
      ["images/fsmeta/x.erofs", "image-object"],
      ["images/vmdk/x.vmdk", "image-object"],
      ["archive.json", null],
      ["files/a", null],
      ["files/a/b/c", null],
      ["images/manifests", null],
      ["cache/layers/x.erofs", null],
      ["other/a/b", null],
    ];
    for (const [path, kind] of cases) assert.equal(kindOf(path), kind, path);
  });
});

describe("the member hash of a payload ending in a hole", () => {
  test("rule: a load hashes a GNU sparse payload that ends in a hole with its (realsize, 0) descriptor: the reference hash of what GNU tar wrote", T, async () => {
    const dir = tempDir("member-hole");
    try {
      const path = `files/${"c".repeat(64)}/upper.ext4`;
      mkdirSync(join(dir, `files/${"c".repeat(64)}`), { recursive: true });
      // data at 4 KiB, then 200 KB of hole to the end
      makeSparseFile(join(dir, path), 212_992, [{ offset: 4096, data: noise(5000, 9) }]);
      execFileSync("tar", ["--format=gnu", "-S", "-cf", "s.tar", path], { cwd: dir });
      const bytes = new Uint8Array(readFileSync(join(dir, "s.tar")));
      // the facts as GNU tar's old-GNU header records them, read by hand
      const h = bytes.subarray(0, 512);
      assert.equal(String.fromCharCode(h[156]!), "S");
      const field = (o: number) => parseInt(new TextDecoder().decode(h.subarray(o, o + 11)), 8);
      const ranges: [number, number][] = [];
      for (let k = 0; k < 4 && h[386 + 24 * k] !== 0; k++) ranges.push([field(386 + 24 * k), field(398 + 24 * k)]);
      const realSize = field(483);
      assert.equal(realSize, 212_992);
      assert.deepEqual(ranges.at(-1), [212_992, 0], "GNU tar ends the map with the (realsize, 0) terminator");
      const encodedSize = field(124);
      const stored = bytes.subarray(512, 512 + encodedSize);
      const expected = await referenceMemberHash({ kind: "file-payload", path, encodedSize, apparentSize: realSize, ranges, stored });
      const without = await referenceMemberHash({ kind: "file-payload", path, encodedSize, apparentSize: realSize, ranges: ranges.slice(0, -1), stored });
      assert.notEqual(without, expected, "the terminator is part of the hash");
      // what a load observes for the member (the unpack step hashes it as it streams)
      let observed: string | null = null;
      try {
        const contents = await unpackArchive(bytesStream(concatBytes(bytes.subarray(0, 512 + Math.ceil(encodedSize / 512) * 512), craftHeader({ name: "archive.json", size: 2 }), craftData(new TextEncoder().encode("{}")), END)), discardSink, { label: "s.tar" });
        observed = contents.msb06?.observed.get(path)?.memberHash ?? null;
      } catch (e) {
        observed = (e as Error).message;
      }
      assert.equal(observed, expected);
    } finally {
      removeDir(dir);
    }
  });
});

describe("sparse descriptors", () => {
  test("rule: the descriptors are the data map, then (realsize, 0) only when the file ends in a hole", () => {
    assert.deepEqual(sparseDescriptors([{ offset: 0, length: 512 }], 4096), [[0, 512], [4096, 0]]);
    assert.deepEqual(sparseDescriptors([{ offset: 0, length: 512 }, { offset: 8192, length: 3 }], 8195), [[0, 512], [8192, 3]]);
    assert.deepEqual(sparseDescriptors([{ offset: 4096, length: 100 }], 4097), [[4096, 100]], "data past the size: no terminator");
    assert.deepEqual(sparseDescriptors([], 100_000), [[100_000, 0]], "all hole");
    assert.deepEqual(sparseDescriptors([], 0), []);
  });

  test("rule: zero-length runs of the map are not descriptors", () => {
    assert.deepEqual(sparseDescriptors([{ offset: 0, length: 0 }, { offset: 1024, length: 512 }, { offset: 2048, length: 0 }], 2048), [[1024, 512], [2048, 0]]);
    assert.deepEqual(sparseDescriptors([{ offset: 1024, length: 512 }, { offset: 1536, length: 0 }], 1536), [[1024, 512]]);
  });

  test("rule: for a file ending in a hole, the descriptors are those GNU tar writes in its old-GNU sparse header", T, async () => {
    const dir = tempDir("member-hash");
    try {
      makeSparseFile(join(dir, "s1"), 20_000, [{ offset: 4096, data: noise(3, 1) }]);
      makeSparseFile(join(dir, "s2"), 100_000, []);
      makeSparseFile(join(dir, "s3"), 300_000, [{ offset: 0, data: noise(700, 2) }, { offset: 65_536, data: noise(10, 3) }]);
      execFileSync("tar", ["--format=gnu", "-S", "-cf", "s.tar", "s1", "s2", "s3"], { cwd: dir });
      const bytes = new Uint8Array(readFileSync(join(dir, "s.tar")));
      const seen: string[] = [];
      for await (const e of readTar(bytesStream(bytes))) {
        assert.equal(e.typeflag, "S", e.path);
        const h = bytes.subarray(e.headerOffset, e.headerOffset + 512);
        const field = (o: number) => parseInt(new TextDecoder().decode(h.subarray(o, o + 11)), 8);
        const written: [number, number][] = [];
        for (let k = 0; k < 4 && h[386 + 24 * k] !== 0; k++) written.push([field(386 + 24 * k), field(398 + 24 * k)]);
        assert.deepEqual(sparseDescriptors(e.sparseMap ?? [], e.size), written, e.path);
        seen.push(e.path);
      }
      assert.deepEqual(seen, ["s1", "s2", "s3"]);
    } finally {
      removeDir(dir);
    }
  });
});

describe("hashing while bytes stream", () => {
  test("rule: each chunk is hashed before it is passed on, so a consumer may reuse its buffer", BOUNDED, async () => {
    const data = noise(4000, 4);
    const buf = new Uint8Array(1000);
    function* reused(): Generator<Uint8Array> {
      for (let at = 0; at < data.length; at += 1000) {
        buf.set(data.subarray(at, at + 1000));
        yield buf;
      }
    }
    const a = recorder();
    const b = recorder();
    let passed = 0;
    for await (const chunk of hashedChunks(reused(), a, b)) {
      assert.equal(chunk, buf);
      passed += chunk.length;
      chunk.fill(0xee); // the consumer scribbles over the buffer once it is done with it
    }
    assert.equal(passed, data.length);
    assert.deepEqual(a.bytes(), data);
    assert.deepEqual(b.bytes(), data);
  });

  test("rule: chunks from an async source are hashed in order", BOUNDED, async () => {
    const data = noise(3000, 5);
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < data.length; at += 512) yield data.slice(at, at + 512);
    }
    const h = recorder();
    const out: Uint8Array[] = [];
    for await (const c of hashedChunks(source(), h)) out.push(c);
    assert.deepEqual(concatBytes(...out), data);
    assert.deepEqual(h.bytes(), data);
  });
});

describe("hashing a tar entry", () => {
  const data = noise(3000, 6);
  const sparseData = noise(1024, 7);
  const archive = concatBytes(
    craftHeader({ name: "files/x/upper.ext4", size: data.length }),
    craftData(data),
    craftHeader({ name: "files/y/upper.ext4", typeflag: "S", size: 1024, sparse: { map: [[0, 512], [8192, 512], [65_536, 0]], realSize: 65_536 } }),
    craftData(sparseData),
    END,
  );

  /** Run `body` on each entry of the archive, with a recording hasher over a hashing view of it. */
  async function eachEntry(body: (view: { entry: TarEntry; drain(): Promise<void> }, original: TarEntry) => Promise<void>): Promise<Uint8Array[]> {
    const hashed: Uint8Array[] = [];
    for await (const entry of readTar(bytesStream(archive, [700]))) {
      const h = recorder();
      await body(hashingEntry(entry, h), entry);
      hashed.push(h.bytes());
    }
    return hashed;
  }

  test("rule: the view gives the entry's segments and facts, and hashes every stored byte that passes", BOUNDED, async () => {
    const logicals: Uint8Array[] = [];
    const hashed = await eachEntry(async (view, original) => {
      assert.deepEqual([view.entry.path, view.entry.size, view.entry.sparse], [original.path, original.size, original.sparse]);
      const logical = new Uint8Array(view.entry.size);
      for await (const s of view.entry.segments()) logical.set(s.data, s.offset);
      logicals.push(logical);
      await view.drain();
    });
    assert.deepEqual(hashed, [data, sparseData]);
    const sparseLogical = new Uint8Array(65_536);
    sparseLogical.set(sparseData.subarray(0, 512), 0);
    sparseLogical.set(sparseData.subarray(512), 8192);
    assert.deepEqual(logicals, [data, sparseLogical]);
  });

  test("rule: drain reads and hashes what the consumer left, or the whole entry if it read none", BOUNDED, async () => {
    const partly = await eachEntry(async (view) => {
      const it = view.entry.segments();
      await it.next();
      await view.drain();
    });
    assert.deepEqual(partly, [data, sparseData]);
    const unread = await eachEntry((view) => view.drain());
    assert.deepEqual(unread, [data, sparseData]);
  });

  test("rule: the view's segments may be taken once: a second call is refused", BOUNDED, async () => {
    await eachEntry(async (view) => {
      view.entry.segments();
      assert.throws(() => view.entry.segments(), (e) => e instanceof Error && e.message === "hashingEntry: segments() may be called once");
      await view.drain();
    });
  });

  test("rule: the member hash of a streamed sparse entry is the hash of docs/format.md §9.3 of its stored bytes and its descriptors", BOUNDED, async () => {
    for await (const entry of readTar(bytesStream(archive))) {
      const facts: Facts = {
        kind: kindOf(entry.path)!,
        path: entry.path,
        encodedSize: entry.storedSize,
        apparentSize: entry.size,
        ranges: entry.sparse ? sparseDescriptors(entry.sparseMap ?? [], entry.size) : [],
      };
      const member = await MemberHasher.create(facts);
      const view = hashingEntry(entry, member);
      await view.drain();
      const stored = entry.sparse ? sparseData : data;
      assert.equal(member.digest(), await referenceMemberHash({ ...facts, stored }), entry.path);
    }
  });
});
