/**
 * Rules of the strict ustar/GNU header parser (src/tar/header.ts): numeric
 * fields (octal and GNU base-256), checksums, magic/version, string fields
 * and PAX record framing — through the reader (hand-crafted bytes) and the
 * module's own functions where the writer relies on them.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ArchiveError } from "../src/errors.js";
import {
  computeChecksums,
  encodeNumeric,
  headerFormat,
  parseNumeric,
  parsePaxRecords,
  verifyChecksum,
  writeChecksum,
} from "../src/tar/header.js";
import { bytesStream, readAll, writeTarBytes } from "./helpers/tar-tools.js";
import { base256, base256Negative, concatBytes, craftData, craftHeader, craftPax, END, paxRecord } from "./helpers/tar-craft.js";
import { throwsRule } from "./helpers/archive-rules.js";

const enc = new TextEncoder();
const MAX = 2n ** 53n - 1n;

/** The reader rejects `bytes` with an ArchiveError (code "archive") whose message matches `pattern`. */
async function refused(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  await assert.rejects(readAll(bytesStream(bytes)), (e: unknown) => {
    assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${String(e)}`);
    assert.equal(e.code, "archive");
    assert.match(e.message, pattern);
    return true;
  });
}

/** A fail callback as the reader passes one: throws an ArchiveError naming the rule. */
const fail = (rule: string): never => {
  throw new ArchiveError(`field: ${rule}`);
};

/** One entry with the header `h`, no data, and the end marker. */
const one = (h: Parameters<typeof craftHeader>[0]) => concatBytes(craftHeader(h), END);

/** Raw bytes of a field value (latin1, so any byte can be written). */
const raw = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("numeric fields: GNU base-256", () => {
  test("rule: a positive base-256 value up to 2^53-1 is read exactly; 2^53 is refused", async () => {
    const [e] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.set(base256(MAX), 136) })));
    assert.equal(e!.mtime, Number(MAX));
    const [s] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.set(base256(MAX - 255n), 136) })));
    assert.equal(s!.mtime, Number(MAX - 255n));
    await refused(one({ name: "t", edit: (b) => b.set(base256(MAX + 1n), 136) }), /"t".*mtime field: base-256 number exceeds 2\^53-1/);
    await refused(one({ name: "t", edit: (b) => b.set(base256(2n ** 70n), 136) }), /"t".*mtime field: base-256 number exceeds 2\^53-1/);
  });

  test("rule: a negative base-256 mtime is its two's-complement value", async () => {
    for (const v of [-1n, -2n, -256n, -4096n, -1700000000n, -(2n ** 40n) - 12345n, -MAX]) {
      const [e] = await readAll(bytesStream(one({ name: "old", edit: (b) => b.set(base256Negative(v), 136) })));
      assert.equal(e!.mtime, Number(v), `mtime ${v}`);
    }
  });

  test("rule: a negative base-256 value whose magnitude passes 2^53 is refused as out of range", async () => {
    await refused(one({ name: "t", edit: (b) => b.set(base256Negative(-(2n ** 60n)), 136) }), /"t".*mtime field: base-256 number is out of range/);
    await refused(one({ name: "t", edit: (b) => b.set(base256Negative(-(2n ** 54n)), 136) }), /"t".*mtime field: base-256 number is out of range/);
    // -2^53 itself: its magnitude is past 2^53-1, and it is not a safe integer.
    await refused(one({ name: "t", edit: (b) => b.set(base256Negative(-(2n ** 53n)), 136) }), /"t".*mtime field: base-256 number is out of range/);
  });

  test("rule: a negative base-256 number is refused where it is not allowed (size, mode)", async () => {
    await refused(one({ name: "t", size: base256Negative(-1n) }), /tar header at offset 0: size field: negative base-256 number/);
    await refused(one({ name: "t", edit: (b) => b.set(base256Negative(-5n, 8), 100) }), /"t".*mode field: negative base-256 number/);
  });

  test("rule: base-256 fields of 8 bytes (mode) are read over their whole width", async () => {
    const [e] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.set(base256(0o100755n, 8), 100) })));
    assert.equal(e!.mode, 0o755);
  });
});

describe("numeric fields: octal", () => {
  test("rule: octal digits 0-7 are read; the field may end in NUL, space, or its last byte", async () => {
    const cases: [string, number][] = [
      ["0000644\0", 0o644],
      ["0000644 ", 0o644],
      ["  00644\0", 0o644],
      ["   644 \0", 0o644],
      ["07777777", 0o7777],
      ["0001234\0", 0o1234],
      ["0000567 ", 0o567],
    ];
    for (const [field, mode] of cases) {
      const [e] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.set(raw(field), 100) })));
      assert.equal(e!.mode, mode, JSON.stringify(field));
    }
    // A full 12-byte size field of digits, no terminator.
    const [s] = await readAll(bytesStream(concatBytes(craftHeader({ name: "t", size: raw("000000000012") }), craftData("0123456789"), END)));
    assert.equal(s!.size, 10);
    // An all-NUL field is 0.
    const [z] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.fill(0, 136, 148) })));
    assert.equal(z!.mtime, 0);
  });

  test("rule: a byte that is not an octal digit, NUL or space ends nothing: the field is refused, quoted", async () => {
    await refused(one({ name: "t", edit: (b) => b.set(raw("0000648\0"), 100) }), /"t".*mode field: numeric field holds "0000648\\u0000", not an octal number/);
    await refused(one({ name: "t", edit: (b) => b.set(raw("000064/\0"), 100) }), /"t".*mode field: numeric field holds "000064\/\\u0000", not an octal number/);
    await refused(one({ name: "t", edit: (b) => b.set(raw("00006449"), 100) }), /"t".*mode field: numeric field holds "00006449", not an octal number/);
    await refused(one({ name: "t", edit: (b) => b.set(raw("x000644\0"), 100) }), /"t".*mode field: numeric field holds "x000644\\u0000", not an octal number/);
    await refused(one({ name: "t", edit: (b) => b.set(raw("0000644\x01"), 100) }), /"t".*mode field: numeric field holds "0000644\\u0001", not an octal number/);
    // latin1 in the message: byte 0xe9 shows as "é", not as a UTF-8 decoding.
    await refused(one({ name: "t", edit: (b) => b.set(raw("00006\xe94\0"), 100) }), /"t".*mode field: numeric field holds "00006é4\\u0000", not an octal number/);
  });

  test("rule: a field of spaces only is blank and refused, even when the next field starts with a space", async () => {
    await refused(one({ name: "t", edit: (b) => b.set(raw("        "), 100) }), /"t".*mode field: numeric field is blank/);
    await refused(
      one({ name: "t", edit: (b) => (b.set(raw("        "), 100), b.set(raw(" 000000\0"), 108)) }),
      /"t".*mode field: numeric field is blank/,
    );
    await refused(one({ name: "t", size: raw("            ") }), /tar header at offset 0: size field: numeric field is blank/);
  });

  test("rule: leading spaces then a NUL read as 0", async () => {
    const [e] = await readAll(bytesStream(one({ name: "t", edit: (b) => b.set(raw("   \0\0\0\0\0"), 100) })));
    assert.equal(e!.mode, 0);
  });
});

describe("encodeNumeric (the writer's numbers)", () => {
  test("rule: a value below 8^(length-1) is written as length-1 zero-padded octal digits and a NUL", () => {
    const b = new Uint8Array(12).fill(0xaa);
    encodeNumeric(b, 0, 12, 0o644);
    assert.deepEqual(b, raw("00000000644\0"));
    const top = new Uint8Array(12).fill(0xaa);
    encodeNumeric(top, 0, 12, 8 ** 11 - 1);
    assert.deepEqual(top, raw("77777777777\0"));
    const at = new Uint8Array(20).fill(0xaa);
    encodeNumeric(at, 4, 8, 7);
    assert.deepEqual(at, concatBytes(new Uint8Array(4).fill(0xaa), raw("0000007\0"), new Uint8Array(8).fill(0xaa)));
  });

  test("rule: from 8^(length-1) on, the value is written big-endian base-256 with the high bit set", () => {
    for (const v of [8 ** 11, 9 * 2 ** 30, 2 ** 53 - 1]) {
      const b = new Uint8Array(12).fill(0xaa);
      encodeNumeric(b, 0, 12, v);
      assert.deepEqual(b, base256(BigInt(v)), `value ${v}`);
      assert.equal(parseNumeric(b, 0, 12, fail), v);
    }
    const m = new Uint8Array(8).fill(0xaa);
    encodeNumeric(m, 0, 8, 8 ** 7);
    assert.deepEqual(m, base256(BigInt(8 ** 7), 8));
    // The largest 8-byte base-256 value has 0x3f in its first byte's low bits.
    const big = new Uint8Array(8);
    encodeNumeric(big, 0, 8, 2 ** 53 - 1);
    assert.deepEqual(big, base256(MAX, 8));
  });

  test("rule: a value that does not fit the field, is negative or not a safe integer is a RangeError", () => {
    // 2^62 needs 63 bits; 8 bytes of base-256 hold 62.
    assert.throws(() => encodeNumeric(new Uint8Array(2), 0, 2, 2 ** 14), (e: unknown) => e instanceof RangeError && /2 bytes/.test(e.message) && /16384 does not fit/.test(e.message));
    const ok = new Uint8Array(2);
    encodeNumeric(ok, 0, 2, 2 ** 14 - 1);
    assert.deepEqual(ok, base256(2n ** 14n - 1n, 2));
    for (const v of [-1, 0.5, 2 ** 53, Number.NaN]) {
      assert.throws(() => encodeNumeric(new Uint8Array(12), 0, 12, v), (e: unknown) => e instanceof RangeError && /is not a non-negative safe integer/.test(e.message), `value ${v}`);
    }
  });
});

describe("checksums", () => {
  test("rule: the writer fills the checksum field GNU style: six octal digits, NUL, space", async () => {
    const bytes = await writeTarBytes(async (tar) => {
      await tar.addFile("f", 3, [enc.encode("abc")]);
    });
    const h = bytes.subarray(0, 512);
    const { unsigned } = computeChecksums(h);
    assert.deepEqual(h.subarray(148, 156), raw(unsigned.toString(8).padStart(6, "0") + "\0 "));
    // The sum counts the field as eight spaces: the header's own bytes plus 8 * 0x20.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.equal(unsigned, sum);
  });

  test("rule: writeChecksum overwrites a stale field and the header then verifies", () => {
    const h = craftHeader({ name: "x", checksum: "7777777\0" });
    writeChecksum(h);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.deepEqual(h.subarray(148, 156), raw(sum.toString(8).padStart(6, "0") + "\0 "));
    verifyChecksum(h, fail);
  });

  test("rule: the checksum field counts as spaces, and only its 8 bytes do", () => {
    const h = new Uint8Array(512);
    assert.deepEqual(computeChecksums(h), { unsigned: 256, signed: 256 });
    h.fill(0xff, 148, 156); // the field itself: ignored
    assert.deepEqual(computeChecksums(h), { unsigned: 256, signed: 256 });
    h[147] = 1;
    h[156] = 2;
    assert.deepEqual(computeChecksums(h), { unsigned: 259, signed: 259 });
  });

  test("rule: bytes from 0x80 count as negative in the signed sum (0x80 as -128, 0x7f as 127)", () => {
    const h = new Uint8Array(512);
    h[0] = 0x80;
    h[1] = 0x7f;
    h[2] = 0xff;
    assert.deepEqual(computeChecksums(h), { unsigned: 256 + 0x80 + 0x7f + 0xff, signed: 256 - 128 + 127 - 1 });
  });

  test("rule: a header whose signed sum matches is read (a name with the byte 0x80)", async () => {
    const name = enc.encode("\u0400\u0400x"); // D0 80 D0 80 78
    const [e] = await readAll(bytesStream(concatBytes(craftHeader({ name, checksum: "signed" }), END)));
    assert.equal(e!.path, "\u0400\u0400x");
    await refused(concatBytes(craftHeader({ name, checksum: "bad" }), END), /tar header at offset 0: header checksum mismatch/);
  });

  test("rule: a checksum mismatch names the stored and computed sums in octal", async () => {
    const good = craftHeader({ name: "a" });
    const { unsigned } = computeChecksums(good);
    const stored = (unsigned + 1).toString(8);
    await refused(concatBytes(craftHeader({ name: "a", checksum: "bad" }), END), new RegExp(`header checksum mismatch \\(stored ${stored}, computed ${unsigned.toString(8)}\\)`));
  });

  test("rule: a malformed checksum field is refused naming the checksum field", async () => {
    await refused(concatBytes(craftHeader({ name: "a", checksum: "00012x\0 " }), END), /tar header at offset 0: header checksum field: numeric field holds "00012x\\u0000 ", not an octal number/);
  });
});

describe("magic and version", () => {
  test("rule: each byte of \"ustar\" must match; otherwise the magic is unrecognized", async () => {
    for (let k = 0; k < 5; k++) {
      for (const magic of ["ustar\x0000", "ustar  \0"]) {
        const bad = raw(magic);
        bad[k] = 0x58; // "X"
        await refused(one({ name: "m", edit: (b) => b.set(bad, 257) }), /tar header at offset 0: unrecognized magic/);
      }
    }
  });

  test("rule: POSIX is \"ustar\\0\" (any version), GNU is exactly \"ustar  \\0\", v7 is all NUL", () => {
    const h = (magic: string) => {
      const b = new Uint8Array(512);
      b.set(raw(magic), 257);
      return b;
    };
    assert.equal(headerFormat(h("ustar\x0000")), "ustar");
    assert.equal(headerFormat(h("ustar\0xx")), "ustar");
    assert.equal(headerFormat(h("ustar  \0")), "gnu");
    assert.equal(headerFormat(h("\0\0\0\0\0\0\0\0")), "v7");
    for (const m of ["ustar \0\0", "ustar\x20x\0", "ustar  x", "ustarx \0", "ustar\t \0", "ustar \x20 "]) {
      assert.equal(headerFormat(h(m)), null, JSON.stringify(m));
    }
    for (let k = 0; k < 8; k++) {
      const b = new Uint8Array(512);
      b[257 + k] = 0x20;
      assert.equal(headerFormat(b), null, `v7 magic with a space at ${k}`);
    }
    const nextField = new Uint8Array(512);
    nextField[265] = 0x61; // uname right after the magic/version: not part of the magic
    assert.equal(headerFormat(nextField), "v7");
    nextField[256] = 0x61; // the last linkname byte, right before it
    assert.equal(headerFormat(nextField), "v7");
  });

  test("rule: version bytes after a POSIX magic are not checked; a GNU magic needs both spaces and the NUL", async () => {
    const [e] = await readAll(bytesStream(one({ name: "n", magic: "ustar", prefix: "p", edit: (b) => b.set(raw("zz"), 263) })));
    assert.equal(e!.path, "p/n");
    await refused(one({ name: "n", edit: (b) => b.set(raw("ustar \0\0"), 257) }), /unrecognized magic/);
    await refused(one({ name: "n", edit: (b) => b.set(raw("ustar  x"), 257) }), /unrecognized magic/);
  });
});

describe("string fields", () => {
  test("rule: a name or link name that fills its 100 bytes has no NUL and is read whole", async () => {
    const name = "n".repeat(99) + "e";
    const link = "l".repeat(99) + "k";
    const [e] = await readAll(bytesStream(one({ name, typeflag: "2", linkname: link })));
    assert.equal(e!.path, name);
    assert.equal(e!.linkname, link);
  });

  test("rule: a name ends at its first NUL; bytes after it are ignored", async () => {
    const [e] = await readAll(bytesStream(one({ name: "ab", edit: (b) => b.set(raw("junk"), 3) })));
    assert.equal(e!.path, "ab");
    // A field that starts with NUL is empty: a regular file has no link name, a POSIX header no prefix.
    const [f] = await readAll(bytesStream(one({ name: "plain", magic: "ustar", edit: (b) => (b.set(raw("junk"), 158), b.set(raw("junk"), 346)) })));
    assert.deepEqual([f!.path, f!.linkname], ["plain", ""]);
  });

  test("rule: a byte-order mark is part of the name, kept as is", async () => {
    const [e] = await readAll(bytesStream(one({ name: "\uFEFFbom" })));
    assert.equal(e!.path, "\uFEFFbom");
    const [l] = await readAll(bytesStream(one({ name: "l", typeflag: "2", linkname: "\uFEFFt" })));
    assert.equal(l!.linkname, "\uFEFFt");
  });

  test("rule: an invalid name is quoted lossily, byte-order mark included", async () => {
    const name = concatBytes(enc.encode("\uFEFFa"), new Uint8Array([0xff]));
    await refused(one({ name }), /archive entry "\uFEFFa\uFFFD" \(header at offset 0\): name is not valid UTF-8/);
  });
});

describe("PAX record framing", () => {
  const after = (recs: string | Uint8Array) => concatBytes(craftPax(recs), craftHeader({ name: "f" }), END);
  const records = (s: string) => parsePaxRecords(enc.encode(s), fail).map(([k, v]) => [k, new TextDecoder().decode(v)]);

  test("rule: records are \"<len> key=value\\n\" with len counting the whole record; keys may repeat, in order", () => {
    assert.deepEqual(records("11 path=ab\n7 k=vv\n7 k=ww\n"), [["path", "ab"], ["k", "vv"], ["k", "ww"]]);
    assert.deepEqual(records("5 k=\n"), [["k", ""]]);
    assert.deepEqual(records("8 k=a=b\n"), [["k", "a=b"]]);
    assert.deepEqual(records("8 k=a\nb\n"), [["k", "a\nb"]]);
    assert.deepEqual(records(""), []);
    assert.deepEqual(records("012 path=ab\n"), [["path", "ab"]]);
  });

  test("rule: the shortest record is \"<len> k=\\n\"; anything shorter is refused naming its length", async () => {
    throwsRule(() => records("4 k=\n"), /PAX record at byte 0: length 4 is too short/);
    throwsRule(() => records("11 path=ab\n4 k=\n"), /PAX record at byte 11: length 4 is too short/);
    throwsRule(() => records("3 k\n"), /PAX record at byte 0: length 3 is too short/);
    await refused(after("11 path=ab\n4 k=\n"), /tar header at offset 0: PAX extended header: PAX record at byte 11: length 4 is too short/);
  });

  test("rule: a record that runs past the header's end is refused, naming where it starts", async () => {
    throwsRule(() => records("12 path=ab\n"), /PAX record at byte 0: length 12 runs past the end of the extended header/);
    throwsRule(() => records("11 path=ab\n13 path=abc\n"), /PAX record at byte 11: length 13 runs past the end of the extended header/);
    throwsRule(() => records("11 path=ab\n2"), /PAX record at byte 11: length 2 runs past the end of the extended header/);
    // However many digits: refused as a number, never an overflow to Infinity.
    throwsRule(() => records("11 path=ab\n" + "9".repeat(400) + " k=v\n"), /PAX record at byte 11: length \d+ runs past the end of the extended header/);
    await refused(after("11 path=ab\n12 path=ab\n"), /PAX extended header: PAX record at byte 11: length 12 runs past the end of the extended header/);
  });

  test("rule: the length must be followed by a space", () => {
    throwsRule(() => records("11_path=ab\n"), /PAX record at byte 0: length is not followed by a space/);
    throwsRule(() => records("11 path=ab\n1"), /PAX record at byte 11: length is not followed by a space/);
    throwsRule(() => records("1"), /PAX record at byte 0: length is not followed by a space/);
  });

  test("rule: a record must start with a decimal digit", () => {
    throwsRule(() => records(" 11 path=ab\n"), /PAX record at byte 0: does not start with a decimal length/);
    throwsRule(() => records("11 path=ab\n/2 k=v\n"), /PAX record at byte 11: does not start with a decimal length/);
    throwsRule(() => records("11 path=ab\n:2 k=v\n"), /PAX record at byte 11: does not start with a decimal length/);
  });

  test("rule: a record ends with a newline exactly at its length", () => {
    throwsRule(() => records("11 path=abc"), /PAX record at byte 0: does not end with a newline/);
    throwsRule(() => records("11 path=ab\n7 k=vvv"), /PAX record at byte 11: does not end with a newline/);
  });

  test("rule: the body is key=value with a non-empty key", () => {
    throwsRule(() => records("7 =abc\n"), /PAX record at byte 0: is not "key=value"/);
    throwsRule(() => records("7 kabc\n"), /PAX record at byte 0: is not "key=value"/);
    throwsRule(() => records("11 path=ab\n6 =ab\n"), /PAX record at byte 11: is not "key=value"/);
  });

  test("rule: a key that is not valid UTF-8 is refused", async () => {
    const bytes = concatBytes(enc.encode("7 k"), new Uint8Array([0xff]), enc.encode("=v\n"));
    throwsRule(() => parsePaxRecords(bytes, fail), /PAX record at byte 0: key is not valid UTF-8/);
    await refused(after(bytes), /PAX extended header: PAX record at byte 0: key is not valid UTF-8/);
    assert.deepEqual(records("12 kéy=vé\n"), [["kéy", "vé"]]);
  });

  test("rule: value bytes are returned raw (not decoded), exactly the value", () => {
    const bytes = concatBytes(enc.encode("8 k="), new Uint8Array([0xff, 0xfe, 0x00]), enc.encode("\n"));
    const [[k, v]] = parsePaxRecords(bytes, fail) as [[string, Uint8Array]];
    assert.equal(k, "k");
    assert.deepEqual(v, new Uint8Array([0xff, 0xfe, 0x00]));
  });

  test("rule: lengths of one to four digits frame records (paxRecord's own counting agrees)", () => {
    for (const value of ["", "x", "y".repeat(90), "z".repeat(995)]) {
      assert.deepEqual(records(paxRecord("comment", value)), [["comment", value]]);
    }
  });
});
