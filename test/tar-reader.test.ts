/**
 * Rules of the streaming tar reader (src/tar/reader.ts) on hand-crafted
 * archives: entry kinds, the segments() protocol, PAX overrides, old-GNU and
 * PAX sparse entries (0.0, 0.1, 1.0), limits and truncation messages.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ArchiveError } from "../src/errors.js";
import { readTar, type ReadTarOptions, type TarEntry } from "../src/tar/mod.js";
import { bytesStream, readAll } from "./helpers/tar-tools.js";
import { concatBytes, craftData, craftHeader, craftPax, craftSparseExtension, END, paxRecord } from "./helpers/tar-craft.js";
import { rejectsRule } from "./helpers/archive-rules.js";

const enc = new TextEncoder();
const r = paxRecord;

/** The reader rejects `bytes` with an ArchiveError (code "archive") whose message matches `pattern`. */
async function refused(bytes: Uint8Array, pattern: RegExp, options?: ReadTarOptions): Promise<void> {
  await rejectsRule(readAll(bytesStream(bytes), options), pattern);
}

describe("entry kinds", () => {
  test("rule: each typeflag has its kind; unknown flags are \"other\"", async () => {
    const kinds: [string, string][] = [
      ["0", "file"], ["\0", "file"], ["7", "file"], ["5", "directory"], ["2", "symlink"], ["1", "hardlink"],
      ["3", "char"], ["4", "block"], ["6", "fifo"], ["L", "other"], ["K", "other"], ["V", "other"], ["Z", "other"],
    ];
    const bytes = concatBytes(...kinds.map(([t], k) => craftHeader({ name: `e${k}`, typeflag: t })), END);
    const entries = await readAll(bytesStream(bytes));
    assert.deepEqual(entries.map((e) => [e.typeflag, e.kind]), kinds);
    assert.ok(entries.every((e) => !e.sparse && e.sparseMap === null));
  });

  test("rule: non-file kinds carry no data, and the message names the kind and size", async () => {
    for (const [t, kind] of [["5", "directory"], ["1", "hardlink"], ["2", "symlink"], ["3", "char"], ["4", "block"], ["6", "fifo"]]) {
      await refused(concatBytes(craftHeader({ name: "d", typeflag: t, size: 5 }), craftData("hello"), END), new RegExp(`archive entry "d" \\(header at offset 0\\): a ${kind} entry must not carry data, but its size is 5`));
    }
    // "other" entries (GNU long names, volume labels...) may: the caller decides.
    const [l] = await readAll(bytesStream(concatBytes(craftHeader({ name: "././@LongLink", typeflag: "L", size: 5 }), craftData("long\0"), END)));
    assert.deepEqual([l!.kind, l!.size, new TextDecoder().decode(l!.content)], ["other", 5, "long\0"]);
  });

  test("rule: mode is the permission bits only; mtime and link name come from the header", async () => {
    const [e] = await readAll(bytesStream(concatBytes(craftHeader({ name: "l", typeflag: "2", mode: 0o104755, mtime: 1234567, linkname: "target" }), END)));
    assert.deepEqual([e!.mode, e!.mtime, e!.linkname], [0o4755, 1234567, "target"]);
  });
});

describe("segments()", () => {
  const two = () => concatBytes(craftHeader({ name: "a", size: 700 }), craftData(new Uint8Array(700).fill(7)), craftHeader({ name: "b", size: 3 }), craftData("xyz"), END);

  test("rule: segments() may be called once per entry", async () => {
    for await (const e of readTar(bytesStream(two()))) {
      e.segments();
      assert.throws(() => e.segments(), (x: unknown) => x instanceof ArchiveError && x.code === "archive" && new RegExp(`archive entry "${e.path}": segments\\(\\) may be called only once`).test(x.message));
    }
  });

  test("rule: after the reader moves on, an entry's data is gone", async () => {
    const seen: TarEntry[] = [];
    for await (const e of readTar(bytesStream(two()))) seen.push(e);
    assert.throws(() => seen[0]!.segments(), (x: unknown) => x instanceof ArchiveError && x.code === "archive" && /archive entry "a": data is gone, the reader has moved past it/.test(x.message));
    // A generator taken before moving on fails on its next read.
    const gens: AsyncGenerator<unknown>[] = [];
    for await (const e of readTar(bytesStream(two(), [100]))) {
      const g = e.segments();
      if (e.path === "a") await g.next(); // read one piece, then leave the rest
      gens.push(g);
    }
    // Partly read, or taken and never read: either way an error, never a silently short file.
    await rejectsRule(gens[0]!.next(), /archive entry "a": data is gone, the reader has moved past it/);
    await rejectsRule(gens[1]!.next(), /archive entry "b": data is gone, the reader has moved past it/);
  });

  test("rule: an entry left by breaking out of the loop has no data to give", async () => {
    let left: TarEntry | undefined;
    for await (const e of readTar(bytesStream(two()))) {
      left = e;
      break; // abandon the reader on the first entry, its data unread
    }
    assert.equal(left?.path, "a");
    assert.throws(() => left!.segments(), (x: unknown) => x instanceof ArchiveError && x.code === "archive" && /archive entry "a": data is gone, the reader has moved past it/.test(x.message));
  });

  test("rule: data pieces come in order with their logical offsets", async () => {
    const data = Uint8Array.from({ length: 1500 }, (_, i) => i % 251);
    const bytes = concatBytes(craftHeader({ name: "f", size: 1500 }), craftData(data), END);
    for await (const e of readTar(bytesStream(bytes, [300]))) {
      let at = 0;
      for await (const { offset, data: d } of e.segments()) {
        assert.equal(offset, at);
        assert.deepEqual(d, data.subarray(at, at + d.length));
        at += d.length;
      }
      assert.equal(at, 1500);
    }
  });

  test("rule: truncation inside data names the entry, its header and the bytes missing", async () => {
    const bytes = concatBytes(craftHeader({ name: "f", size: 1500 }), craftData(new Uint8Array(1500)), END);
    await refused(bytes.subarray(0, 512 + 1000), /^archive truncated: input ends inside the data of entry "f" \(header at offset 0\): 500 of 1500 bytes missing$/);
    // Skipped (unread) data is checked the same way.
    await assert.rejects(
      (async () => {
        for await (const e of readTar(bytesStream(bytes.subarray(0, 512 + 1000)))) void e;
      })(),
      (e: unknown) => e instanceof ArchiveError && e.code === "archive" && /inside the data of entry "f" \(header at offset 0\): 500 of 1500 bytes missing/.test(e.message),
    );
  });
});

describe("PAX overrides", () => {
  test("rule: the entry's header offset is its PAX header's; the PAX header applies to one entry", async () => {
    const bytes = concatBytes(craftPax(r("path", "long/name") + r("linkpath", "t2")), craftHeader({ name: "short", typeflag: "2", linkname: "t1" }), craftHeader({ name: "n", typeflag: "2", linkname: "t3" }), END);
    const entries = await readAll(bytesStream(bytes));
    assert.deepEqual(entries.map((e) => [e.path, e.linkname, e.headerOffset]), [["long/name", "t2", 0], ["n", "t3", 1536]]);
  });

  test("rule: a PAX header of exactly maxPaxBytes is accepted, one byte more is refused", async () => {
    const rec = r("comment", "c".repeat(80));
    const n = enc.encode(rec).length;
    const bytes = concatBytes(craftPax(rec), craftHeader({ name: "f" }), END);
    assert.equal((await readAll(bytesStream(bytes), { maxPaxBytes: n }))[0]!.path, "f");
    await refused(bytes, new RegExp(`tar header at offset 0: PAX extended header of ${n} bytes exceeds the limit of ${n - 1}`), { maxPaxBytes: n - 1 });
    const g = concatBytes(craftHeader({ name: "g", typeflag: "g", size: n }), craftData(rec), craftHeader({ name: "f" }), END);
    await refused(g, new RegExp(`PAX global header of ${n} bytes exceeds the limit of ${n - 1}`), { maxPaxBytes: n - 1 });
  });

  test("rule: truncation inside a PAX header or its padding names it", async () => {
    const bytes = concatBytes(craftPax(r("path", "x")), craftHeader({ name: "f" }), END);
    await refused(bytes.subarray(0, 512 + 3), /^archive truncated: input ends inside the PAX extended header at offset 0$/);
    await refused(bytes.subarray(0, 512 + 100), /^archive truncated: input ends inside the padding of the PAX extended header at offset 0$/);
    await refused(bytes.subarray(0, 1024), /^archive truncated: input ends after the PAX extended header at offset 0$/);
    const g = concatBytes(craftHeader({ name: "g", typeflag: "g", size: 9 }), craftData("9 a=bcd\n"), END);
    await refused(g.subarray(0, 512 + 4), /input ends inside the PAX global header at offset 0$/);
  });

  test("rule: a global header may not follow a PAX extended header", async () => {
    const bytes = concatBytes(craftPax(r("path", "x")), craftHeader({ name: "g", typeflag: "g", size: 0 }), craftHeader({ name: "f" }), END);
    await refused(bytes, /tar header at offset 1024: a PAX global header follows the PAX extended header at offset 0/);
  });
});

describe("old-GNU sparse entries", () => {
  const sparse = (map: [number, number][], realSize: number, stored: number, extra: Uint8Array[] = [], isExtended = false) =>
    concatBytes(craftHeader({ name: "s", typeflag: "S", size: stored, sparse: { map, realSize, isExtended } }), ...extra, craftData(new Uint8Array(stored)), END);

  test("rule: the segment bound counts descriptors across extension blocks: exactly the limit is accepted", async () => {
    const first: [number, number][] = [[0, 512], [1024, 512], [2048, 512], [3072, 512]];
    const ext = (n: number): [number, number][] => Array.from({ length: n }, (_, i) => [4096 + i * 1024, 512]);
    // 4 in the header + 21 in one extension = 25.
    const full = sparse(first, 40000, 25 * 512, [craftSparseExtension(ext(21), false)], true);
    assert.equal((await readAll(bytesStream(full), { maxSparseSegments: 25 }))[0]!.sparseMap!.length, 25);
    await refused(full, /archive entry "s" \(header at offset 0\): sparse map has more than 24 segments/, { maxSparseSegments: 24 });
    // 4 + 3: over a limit of 6 once the extension is read.
    const seven = sparse(first, 40000, 7 * 512, [craftSparseExtension(ext(3), false)], true);
    assert.equal((await readAll(bytesStream(seven), { maxSparseSegments: 7 }))[0]!.sparseMap!.length, 7);
    await refused(seven, /sparse map has more than 6 segments/, { maxSparseSegments: 6 });
    // 4 in the header already reach a limit of 4: no extension block is read.
    await refused(seven, /sparse map has more than 4 segments/, { maxSparseSegments: 4 });
  });

  test("rule: the real size comes from the realsize field; storedSize is the data", async () => {
    const [e] = await readAll(bytesStream(sparse([[0, 512], [4096, 10]], 5000, 522)));
    assert.deepEqual([e!.size, e!.storedSize, e!.sparse, e!.sparseMap], [5000, 522, true, [{ offset: 0, length: 512 }, { offset: 4096, length: 10 }]]);
    await refused(
      concatBytes(craftHeader({ name: "s", typeflag: "S", sparse: { map: [], realSize: 0 }, edit: (b) => b.set(enc.encode("0000000x000\0"), 483) }), END),
      /archive entry "s" \(header at offset 0\): sparse realsize field: numeric field holds/,
    );
  });

  test("rule: a header holding exactly the segment limit and marked extended is refused before the extension is read", async () => {
    // The input ends right after the header: reading on would be a truncation instead.
    const header = craftHeader({ name: "s", typeflag: "S", size: 40, sparse: { map: [[0, 10], [20, 10], [40, 10], [60, 10]], realSize: 100, isExtended: true } });
    await refused(header, /^archive entry "s" \(header at offset 0\): sparse map has more than 4 segments$/, { maxSparseSegments: 4 });
    await refused(header, /^archive truncated: input ends inside the sparse extension header at offset 512 of entry "s"$/, { maxSparseSegments: 5 });
  });

  test("rule: a truncated extension block names its offset and entry", async () => {
    const header = craftHeader({ name: "s", typeflag: "S", size: 40, sparse: { map: [[0, 10], [20, 10], [40, 10], [60, 10]], realSize: 100, isExtended: true } });
    await refused(concatBytes(header, new Uint8Array(100)), /^archive truncated: input ends inside the sparse extension header at offset 512 of entry "s"$/);
  });
});

describe("PAX sparse entries", () => {
  /** A PAX sparse entry: the records, then a regular header of `stored` bytes with `data`. */
  const paxSparse = (records: string, data: Uint8Array, name = "upper") =>
    concatBytes(craftPax(records), craftHeader({ name, size: data.length }), craftData(data), END);
  const segData = new Uint8Array(512 + 3000).fill(9);
  const map10 = (text: string) => craftData(text);
  const v10 = (extra = r("GNU.sparse.realsize", "12288")) => r("GNU.sparse.major", "1") + r("GNU.sparse.minor", "0") + r("GNU.sparse.name", "disk.img") + extra;

  test("rule: 0.0, 0.1 and 1.0 maps read to the same entry; GNU.sparse.name wins over the header name and PAX path", async () => {
    const forms = [
      paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.numblocks", "2") + r("GNU.sparse.offset", "0") + r("GNU.sparse.numbytes", "512") + r("GNU.sparse.offset", "8192") + r("GNU.sparse.numbytes", "3000"), segData),
      paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.map", "0,512,8192,3000"), segData),
      paxSparse(r("path", "ignored") + v10(), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData), "GNUSparseFile.0/disk.img"),
    ];
    const want = [{ offset: 0, length: 512 }, { offset: 8192, length: 3000 }];
    for (const [i, bytes] of forms.entries()) {
      const [e] = await readAll(bytesStream(bytes));
      assert.deepEqual([e!.size, e!.storedSize, e!.sparse, e!.sparseMap, e!.kind], [12288, 3512, true, want, "file"], `form ${i}`);
      if (i === 2) assert.equal(e!.path, "disk.img");
    }
  });

  test("rule: only sparse format 1.0 is accepted when a version is given", async () => {
    for (const [major, minor, shown] of [["1", "1", "1.1"], ["2", "0", "2.0"], ["0", "1", "0.1"]] as const) {
      const recs = r("GNU.sparse.major", major) + r("GNU.sparse.minor", minor) + r("GNU.sparse.realsize", "12288");
      await refused(paxSparse(recs, concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData)), new RegExp(`archive entry "upper" \\(header at offset 0\\): PAX sparse format ${shown.replace(".", "\\.")} is not one this reader knows \\(0\\.0, 0\\.1, 1\\.0\\)`));
    }
    await refused(paxSparse(r("GNU.sparse.major", "1") + r("GNU.sparse.realsize", "12288"), segData), /PAX sparse format 1\.\? is not one this reader knows/);
    await refused(paxSparse(r("GNU.sparse.minor", "0") + r("GNU.sparse.realsize", "12288"), segData), /PAX sparse format \?\.0 is not one this reader knows/);
  });

  test("rule: the real size record is required, named for the format", async () => {
    await refused(paxSparse(v10(""), concatBytes(map10("1\n0\n512\n"), segData.subarray(0, 512))), /PAX sparse entry without its real size \(GNU\.sparse\.realsize\)/);
    await refused(paxSparse(r("GNU.sparse.map", "0,512"), segData.subarray(0, 512)), /PAX sparse entry without its real size \(GNU\.sparse\.size\)/);
  });

  test("rule: a 1.0 entry carries no 0.x map records", async () => {
    await refused(paxSparse(v10() + r("GNU.sparse.map", "0,512"), concatBytes(map10("1\n0\n512\n"), segData.subarray(0, 512))), /PAX sparse 1\.0 entry also carries a 0\.x map record/);
    await refused(paxSparse(v10() + r("GNU.sparse.offset", "0") + r("GNU.sparse.numbytes", "512"), concatBytes(map10("1\n0\n512\n"), segData.subarray(0, 512))), /PAX sparse 1\.0 entry also carries a 0\.x map record/);
  });

  test("rule: a 0.x entry has one map form, numblocks agreeing with it, and some map", async () => {
    await refused(
      paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.offset", "0") + r("GNU.sparse.numbytes", "512") + r("GNU.sparse.map", "0,512"), segData.subarray(0, 512)),
      /PAX sparse entry carries both GNU\.sparse\.offset\/numbytes \(0\.0\) and GNU\.sparse\.map \(0\.1\)/,
    );
    await refused(paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.numblocks", "1") + r("GNU.sparse.map", "0,512,8192,3000"), segData), /PAX GNU\.sparse\.numblocks is 1 but the map lists 2 segments/);
    await refused(paxSparse(r("GNU.sparse.size", "12288"), new Uint8Array(0)), /PAX sparse 0\.x entry without a map \(GNU\.sparse\.numblocks, GNU\.sparse\.map or offset\/numbytes\)/);
    // numblocks 0 with no map: an all-hole file.
    const [e] = await readAll(bytesStream(paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.numblocks", "0"), new Uint8Array(0))));
    assert.deepEqual([e!.size, e!.storedSize, e!.sparseMap], [12288, 0, []]);
  });

  test("rule: the map must fit the stored data; 1.0 stored size excludes the map blocks", async () => {
    await refused(paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.map", "0,512,8192,2000"), segData), /archive entry "upper" \(header at offset 0\): sparse map covers 2512 bytes but the entry stores 3512/);
    await refused(paxSparse(r("GNU.sparse.size", "12288") + r("GNU.sparse.map", "0,500,8192,3012"), segData), /segment 1 \(offset 8192, length 3012\) starts at stored byte 500, not on a 512-byte boundary/);
    await refused(paxSparse(v10(), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData.subarray(0, 3000))), /sparse map covers 3512 bytes but the entry stores 3000/);
  });

  test("rule: GNU.sparse records apply only to a regular file, never to an old-GNU sparse entry", async () => {
    const recs = r("GNU.sparse.size", "100") + r("GNU.sparse.map", "");
    await refused(concatBytes(craftPax(recs), craftHeader({ name: "d", typeflag: "5" }), END), /archive entry "d" \(header at offset 0\): GNU\.sparse records on a directory entry/);
    await refused(concatBytes(craftPax(recs), craftHeader({ name: "s", typeflag: "S", sparse: { map: [], realSize: 100 } }), END), /GNU\.sparse records on a old-GNU sparse entry/);
  });

  test("rule: truncation inside a 1.0 map names the entry and its header", async () => {
    const bytes = paxSparse(v10(), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData));
    await refused(bytes.subarray(0, 1024 + 512), /^archive truncated: input ends inside the sparse map of entry "disk\.img" \(header at offset 0\)$/);
  });

  test("rule: the segment limit applies to PAX sparse maps too", async () => {
    const bytes = paxSparse(v10(), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData));
    assert.equal((await readAll(bytesStream(bytes), { maxSparseSegments: 2 }))[0]!.sparseMap!.length, 2);
    await refused(bytes, /PAX sparse 1\.0 map declares 2 segments; the limit is 1/, { maxSparseSegments: 1 });
  });
});

describe("labels and end of archive", () => {
  test("rule: the label prefixes header, entry and truncation messages", async () => {
    await refused(concatBytes(craftHeader({ name: "a", checksum: "bad" }), END), /^x\.tar: tar header at offset 0: header checksum mismatch/, { label: "x.tar" });
    await refused(concatBytes(craftHeader({ name: "d", typeflag: "5", size: 1 }), craftData("x"), END), /^x\.tar: archive entry "d" \(header at offset 0\): a directory entry/, { label: "x.tar" });
    await refused(craftHeader({ name: "a" }), /^x\.tar: archive truncated: input ends at offset 512 without the end-of-archive marker/, { label: "x.tar" });
    await refused(craftHeader({ name: "a" }), /^archive truncated: input ends at offset 512/, { label: "" });
  });

  test("rule: reading stops at the end marker; what follows is not read", async () => {
    const bytes = concatBytes(craftHeader({ name: "a" }), END, new Uint8Array([1, 2, 3]));
    const entries = await readAll(bytesStream(bytes));
    assert.deepEqual(entries.map((e) => e.path), ["a"]);
  });

  test("rule: an end marker cut short names where its second block starts, or that only one block came", async () => {
    const one = concatBytes(craftHeader({ name: "a" }), new Uint8Array(512));
    await refused(concatBytes(one, new Uint8Array(100)), /^archive truncated: input ends inside the second end-of-archive block at offset 1024$/);
    await refused(one, /^archive truncated: input ends after one zero block at offset 512 \(the end-of-archive marker is two\)$/);
  });

  test("rule: a lone zero block names both offsets", async () => {
    await refused(concatBytes(craftHeader({ name: "a" }), new Uint8Array(512), craftHeader({ name: "b" }), END), /^tar header at offset 512: lone zero block followed by a non-zero block at offset 1024$/);
  });

  test("rule: a PAX header followed by the end marker is refused at the PAX header", async () => {
    await refused(concatBytes(craftHeader({ name: "a" }), craftPax(r("path", "x")), END), /^tar header at offset 512: PAX extended header is followed by the end of the archive, not an entry$/);
  });
});
