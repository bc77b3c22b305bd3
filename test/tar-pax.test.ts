/**
 * Rules of PAX extended headers (src/tar/pax.ts): which records are applied,
 * ignored or refused, the numbers they may hold, and the GNU.sparse records
 * of the PAX sparse formats — through parsePax/checkGlobalPax and the reader.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ArchiveError } from "../src/errors.js";
import { checkGlobalPax, isIgnorablePaxKey, parsePax, parseSparseMapRecord } from "../src/tar/pax.js";
import { bytesStream, readAll } from "./helpers/tar-tools.js";
import { concatBytes, craftData, craftHeader, craftPax, END, paxRecord } from "./helpers/tar-craft.js";
import { throwsRule } from "./helpers/archive-rules.js";

const enc = new TextEncoder();

/** A fail callback as the reader passes one: throws an ArchiveError naming the rule. */
const fail = (rule: string): never => {
  throw new ArchiveError(`tar header at offset 0: ${rule}`);
};

/** The reader rejects `bytes` with an ArchiveError (code "archive") whose message matches `pattern`. */
async function refused(bytes: Uint8Array, pattern: RegExp, options?: Parameters<typeof readAll>[1]): Promise<void> {
  await assert.rejects(readAll(bytesStream(bytes), options), (e: unknown) => {
    assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${String(e)}`);
    assert.equal(e.code, "archive");
    assert.match(e.message, pattern);
    return true;
  });
}

/** parsePax over `records` (strings joined), at offset 1024, with a segment bound of `max`. */
const pax = (records: string[], max = 10) => parsePax(enc.encode(records.join("")), 1024, fail, max);
const r = paxRecord;
/** `s` as a literal inside a RegExp. */
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("applied records", () => {
  test("rule: path, linkpath, size and mtime are applied; the last record of a key wins", () => {
    assert.deepEqual(pax([r("path", "a/b"), r("linkpath", "t"), r("size", "42"), r("mtime", "1700000000.25")]), {
      offset: 1024,
      path: "a/b",
      linkpath: "t",
      size: 42,
      mtime: 1700000000.25,
    });
    assert.deepEqual(pax([r("path", "first"), r("path", "second")]), { offset: 1024, path: "second" });
  });

  test("rule: an empty value removes the keyword, so the header field applies", async () => {
    assert.deepEqual(pax([r("path", "x"), r("path", ""), r("size", ""), r("mtime", ""), r("linkpath", "")]), { offset: 1024, path: "x" });
    const bytes = concatBytes(craftPax(r("path", "") + r("size", "")), craftHeader({ name: "from-header", size: 2 }), craftData("hi"), END);
    const [e] = await readAll(bytesStream(bytes));
    assert.deepEqual([e!.path, e!.size], ["from-header", 2]);
  });

  test("rule: ignorable and unknown records change nothing", () => {
    assert.deepEqual(
      pax([r("atime", "1"), r("ctime", "2"), r("uid", "3"), r("gid", "4"), r("uname", "u"), r("gname", "g"), r("charset", "x"), r("comment", "c"), r("SCHILY.xattr.a", "b"), r("LIBARCHIVE.x", "y"), r("hdrcharset", "ISO-IEC 10646 2000 UTF-8"), r("vendor.unknown", "z")]),
      { offset: 1024 },
    );
  });

  test("rule: sizes are decimal integers of at most 16 digits up to 2^53-1", () => {
    assert.equal(pax([r("size", "0")]).size, 0);
    assert.equal(pax([r("size", "9007199254740991")]).size, 2 ** 53 - 1);
    assert.equal(pax([r("size", "0000000000000007")]).size, 7);
    for (const bad of ["9007199254740992", "00000000000000007", "-1", "+1", "1e3", "1.0", " 1", "1 ", "0x10", "١"]) {
      throwsRule(() => pax([r("size", bad)]), new RegExp(`PAX size ${esc(JSON.stringify(bad))} is not a decimal integer up to 2\\^53-1`));
    }
  });

  test("rule: a refused number is quoted to its first 40 characters", () => {
    const long = "1".repeat(30) + "x".repeat(30);
    throwsRule(() => pax([r("size", long)]), new RegExp(`PAX size "${"1".repeat(30)}${"x".repeat(10)}" is not a decimal integer`));
  });

  test("rule: mtime is a decimal number, optionally negative and fractional, and finite", () => {
    assert.equal(pax([r("mtime", "-1.5")]).mtime, -1.5);
    assert.equal(pax([r("mtime", "0")]).mtime, 0);
    assert.equal(pax([r("mtime", "12.000000001")]).mtime, 12.000000001);
    for (const bad of ["1.", ".5", "1e5", "+1", "--1", "1.2.3", "Infinity", "0x1", " 1", "1 ", "9".repeat(400)]) {
      throwsRule(() => pax([r("mtime", bad)]), /PAX mtime "[^"]*" is not a number/);
    }
  });

  test("rule: a value that is not valid UTF-8 is refused, quoted lossily", async () => {
    const bytes = concatBytes(enc.encode("15 linkpath=a"), new Uint8Array([0xff]), enc.encode("\n"));
    throwsRule(() => parsePax(bytes, 0, fail, 10), /PAX linkpath "a\uFFFD" is not valid UTF-8/);
    await refused(concatBytes(craftPax(bytes), craftHeader({ name: "l", typeflag: "2" }), END), /tar header at offset 0: PAX linkpath "a\uFFFD" is not valid UTF-8/);
  });

  test("rule: hdrcharset other than UTF-8 is refused (names would not be UTF-8); UTF-8 is accepted", () => {
    for (const v of ["BINARY", "ISO-IEC 10646 2000 UTF-8 ", "iso-iec 10646 2000 utf-8"]) {
      throwsRule(() => pax([r("hdrcharset", v)]), new RegExp(`PAX hdrcharset ${JSON.stringify(v)}: names that are not UTF-8 cannot be loaded`));
    }
    assert.deepEqual(pax([r("hdrcharset", "ISO-IEC 10646 2000 UTF-8")]), { offset: 1024 });
  });

  test("rule: record framing errors are reported as the PAX extended header's", () => {
    throwsRule(() => parsePax(enc.encode("x"), 0, fail, 10), /tar header at offset 0: PAX extended header: PAX record at byte 0: does not start with a decimal length/);
  });
});

describe("ignorable keys", () => {
  test("rule: exactly the listed keys and the SCHILY./LIBARCHIVE. families are ignorable", () => {
    for (const k of ["atime", "ctime", "mtime", "uid", "gid", "uname", "gname", "charset", "comment", "SCHILY.xattr.user.a", "SCHILY.", "LIBARCHIVE.creationtime", "LIBARCHIVE."]) {
      assert.equal(isIgnorablePaxKey(k, "v"), true, k);
    }
    for (const k of ["path", "linkpath", "size", "GNU.sparse.map", "SCHILY", "LIBARCHIVE", "schily.x", "xSCHILY.a", "atime2", "Comment", "", "vendor.x"]) {
      assert.equal(isIgnorablePaxKey(k, "v"), false, k);
    }
    assert.equal(isIgnorablePaxKey("hdrcharset", "ISO-IEC 10646 2000 UTF-8"), true);
    assert.equal(isIgnorablePaxKey("hdrcharset", "BINARY"), false);
    assert.equal(isIgnorablePaxKey("comment", ""), true);
  });

  test("rule: a global header with only ignorable records passes; any other record is refused naming it", () => {
    checkGlobalPax(enc.encode(r("comment", "c") + r("atime", "1") + r("hdrcharset", "ISO-IEC 10646 2000 UTF-8") + r("SCHILY.xattr.a", "b")), fail);
    checkGlobalPax(new Uint8Array(0), fail);
    for (const key of ["path", "vendor.unknown", "GNU.sparse.major"]) {
      throwsRule(
        () => checkGlobalPax(enc.encode(r("comment", "ok") + r(key, "1")), fail),
        new RegExp(`a global PAX header carrying record "${key.replace(/\./g, "\\.")}" would apply to every entry after it and is refused`),
      );
    }
  });

  test("rule: in a global header, an ignorable record may hold any bytes; hdrcharset that is not UTF-8 text is refused", () => {
    const comment = concatBytes(enc.encode("13 comment="), new Uint8Array([0xff]), enc.encode("\n"));
    checkGlobalPax(comment, fail);
    const charset = concatBytes(enc.encode("16 hdrcharset="), new Uint8Array([0xff]), enc.encode("\n"));
    throwsRule(() => checkGlobalPax(charset, fail), /a global PAX header carrying record "hdrcharset" would apply/);
  });

  test("rule: record framing errors in a global header are reported as the global header's", async () => {
    throwsRule(() => checkGlobalPax(enc.encode("4 k=\n"), fail), /tar header at offset 0: PAX global header: PAX record at byte 0: length 4 is too short/);
    const rec = "4 k=\n";
    const bytes = concatBytes(craftHeader({ name: "g", typeflag: "g", size: rec.length }), craftData(rec), craftHeader({ name: "f" }), END);
    await refused(bytes, /tar header at offset 0: PAX global header: PAX record at byte 0: length 4 is too short/);
  });
});

describe("GNU.sparse records", () => {
  test("rule: major, minor, name, realsize/size and numblocks are collected as given", () => {
    assert.deepEqual(pax([r("GNU.sparse.major", "1"), r("GNU.sparse.minor", "0"), r("GNU.sparse.name", "disk.img"), r("GNU.sparse.realsize", "4096")]).sparse, {
      major: 1,
      minor: 0,
      name: "disk.img",
      realSize: 4096,
    });
    assert.deepEqual(pax([r("GNU.sparse.size", "8192"), r("GNU.sparse.numblocks", "2")]).sparse, { realSize: 8192, numBlocks: 2 });
    assert.equal(pax([r("path", "p")]).sparse, undefined);
  });

  test("rule: GNU.sparse numbers are decimal integers up to 2^53-1", () => {
    for (const key of ["major", "minor", "realsize", "size", "numblocks", "offset"]) {
      throwsRule(() => pax([r(`GNU.sparse.${key}`, "1x")]), new RegExp(`PAX GNU\\.sparse\\.${key} "1x" is not a decimal integer up to 2\\^53-1`));
      throwsRule(() => pax([r(`GNU.sparse.${key}`, "")]), new RegExp(`PAX GNU\\.sparse\\.${key} "" is not a decimal integer`));
    }
    throwsRule(() => pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.numbytes", "-1")]), /PAX GNU\.sparse\.numbytes "-1" is not a decimal integer/);
  });

  test("rule: an unknown GNU.sparse record is refused, naming it", () => {
    throwsRule(() => pax([r("GNU.sparse.bogus", "1")]), /PAX record "GNU\.sparse\.bogus" is not a GNU sparse record this reader knows/);
    throwsRule(() => pax([r("GNU.sparse.", "1")]), /PAX record "GNU\.sparse\." is not a GNU sparse record this reader knows/);
  });

  test("rule: numblocks may be at most the segment limit", () => {
    assert.equal(pax([r("GNU.sparse.numblocks", "10")], 10).sparse?.numBlocks, 10);
    throwsRule(() => pax([r("GNU.sparse.numblocks", "11")], 10), /PAX GNU\.sparse\.numblocks 11 exceeds the limit of 10 segments/);
  });

  test("rule: 0.0 offset/numbytes records come in pairs, offset first, in order", () => {
    assert.deepEqual(pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.numbytes", "512"), r("GNU.sparse.offset", "4096"), r("GNU.sparse.numbytes", "10")]).sparse, {
      pairs: [{ offset: 0, length: 512 }, { offset: 4096, length: 10 }],
    });
    throwsRule(() => pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.offset", "512")]), /PAX GNU\.sparse\.offset is not followed by GNU\.sparse\.numbytes/);
    // Refused at the second offset, even when a numbytes follows it (the first offset is not dropped).
    throwsRule(() => pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.offset", "512"), r("GNU.sparse.numbytes", "5")]), /PAX GNU\.sparse\.offset is not followed by GNU\.sparse\.numbytes/);
    throwsRule(() => pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.numbytes", "5"), r("GNU.sparse.offset", "512")]), /PAX GNU\.sparse\.offset is not followed by GNU\.sparse\.numbytes/);
    throwsRule(() => pax([r("GNU.sparse.numbytes", "5")]), /PAX GNU\.sparse\.numbytes without a GNU\.sparse\.offset before it/);
    throwsRule(() => pax([r("GNU.sparse.offset", "0"), r("GNU.sparse.numbytes", "5"), r("GNU.sparse.numbytes", "5")]), /PAX GNU\.sparse\.numbytes without a GNU\.sparse\.offset before it/);
  });

  test("rule: 0.0 pairs are bounded by the segment limit", () => {
    const pairs = (n: number) => Array.from({ length: n }, (_, k) => r("GNU.sparse.offset", String(k * 1024)) + r("GNU.sparse.numbytes", "512"));
    assert.equal(pax(pairs(3), 3).sparse?.pairs?.length, 3);
    throwsRule(() => pax(pairs(4), 3), /PAX sparse map has more than 3 segments/);
  });

  test("rule: a 0.1 map is parsed into offset,numbytes pairs", () => {
    assert.deepEqual(pax([r("GNU.sparse.map", "0,512,4096,10")]).sparse, { map: [{ offset: 0, length: 512 }, { offset: 4096, length: 10 }] });
    assert.deepEqual(pax([r("GNU.sparse.map", "")]).sparse, { map: [] });
  });
});

describe("parseSparseMapRecord", () => {
  test("rule: the map holds whole offset,numbytes pairs of decimal numbers", () => {
    assert.deepEqual(parseSparseMapRecord("", 10, fail), []);
    assert.deepEqual(parseSparseMapRecord("7,9", 10, fail), [{ offset: 7, length: 9 }]);
    throwsRule(() => parseSparseMapRecord("0,512,4096", 10, fail), /PAX GNU\.sparse\.map has 3 numbers; it must hold offset,numbytes pairs/);
    throwsRule(() => parseSparseMapRecord("5", 10, fail), /PAX GNU\.sparse\.map has 1 numbers/);
    throwsRule(() => parseSparseMapRecord("0,512,x,1", 10, fail), /PAX GNU\.sparse\.map offset 1 "x" is not a decimal integer/);
    throwsRule(() => parseSparseMapRecord("0,512,8,", 10, fail), /PAX GNU\.sparse\.map numbytes 1 "" is not a decimal integer/);
    throwsRule(() => parseSparseMapRecord("0,-5", 10, fail), /PAX GNU\.sparse\.map numbytes 0 "-5" is not a decimal integer/);
  });

  test("rule: at most maxSegments pairs", () => {
    assert.equal(parseSparseMapRecord("0,1,2,1,4,1", 3, fail).length, 3);
    throwsRule(() => parseSparseMapRecord("0,1,2,1,4,1,6,1", 3, fail), /PAX GNU\.sparse\.map has more than 3 segments/);
  });

  test("rule: through the reader, a 0.1 map over the limit is refused before its numbers are read", async () => {
    const map = Array.from({ length: 6 }, (_, k) => `${k * 1024},512`).join(",");
    const recs = r("GNU.sparse.size", "8192") + r("GNU.sparse.map", map);
    const bytes = concatBytes(craftPax(recs), craftHeader({ name: "s", size: 3072 }), craftData(new Uint8Array(3072)), END);
    await refused(bytes, /tar header at offset 0: PAX GNU\.sparse\.map has more than 5 segments/, { maxSparseSegments: 5 });
    const [e] = await readAll(bytesStream(bytes), { maxSparseSegments: 6 });
    assert.equal(e!.sparseMap!.length, 6);
  });
});
