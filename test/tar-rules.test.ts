/** Rules of the tar codec's sparse map (src/tar/sparse.ts). */
import { concatBytes } from "./helpers/bytes.js";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ArchiveError } from "../src/errors.js";
import {
  blockAlignMap,
  checkSegmentAlignment,
  readDescriptors,
  readSparseMap10,
  validateSparseMap,
  writeDescriptors,
  type SparseSegment,
} from "../src/tar/sparse.js";
import { base256 } from "./helpers/tar-craft.js";
import { rejectsRule, throwsRule } from "./helpers/archive-rules.js";

const thrower = (rule: string): never => {
  throw new Error(rule);
};

/** A fail callback as the reader passes one: throws an ArchiveError naming the rule. */
const fail = (rule: string): never => {
  throw new ArchiveError(`archive entry "s" (header at offset 0): ${rule}`);
};

const seg = (offset: number, length: number): SparseSegment => ({ offset, length });

describe("sparse map", () => {
  test("rule: a segment may end exactly at the real size, not one byte past it", () => {
    // ends at the real size: accepted
    assert.deepEqual(validateSparseMap([{ offset: 0, length: 512 }, { offset: 3584, length: 512 }], 4096, 1024, thrower), [
      { offset: 0, length: 512 },
      { offset: 3584, length: 512 },
    ]);
    // a zero-length terminator at the real size: accepted
    assert.deepEqual(validateSparseMap([{ offset: 0, length: 512 }, { offset: 4096, length: 0 }], 4096, 512, thrower), [{ offset: 0, length: 512 }]);
    // one byte past: refused, naming the rule
    assert.throws(() => validateSparseMap([{ offset: 3585, length: 512 }], 4096, 512, thrower), /segment 0 \(offset 3585, length 512\) extends beyond the logical size 4096/);
    assert.throws(() => validateSparseMap([{ offset: 4097, length: 0 }], 4096, 0, thrower), /extends beyond the logical size 4096/);
  });
});

describe("sparse map rules (validateSparseMap)", () => {
  test("rule: offsets and lengths are non-negative safe integers, each checked", () => {
    for (const [o, l] of [[-1, 0], [0, -1], [0.5, 0], [0, 0.5], [2 ** 53, 0], [0, 2 ** 53], [Number.NaN, 0], [0, Number.NaN]] as [number, number][]) {
      throwsRule(
        () => validateSparseMap([seg(0, 0), seg(o, l)], 2 ** 60, 0, fail),
        new RegExp(`"s".*sparse map segment 1 \\(offset ${o}, length ${l}\\) is not a pair of non-negative integers`),
      );
    }
  });

  test("rule: segments may touch but not overlap or go backwards", () => {
    assert.deepEqual(validateSparseMap([seg(0, 512), seg(512, 512)], 1024, 1024, fail), [seg(0, 512), seg(512, 512)]);
    throwsRule(() => validateSparseMap([seg(0, 512), seg(511, 1)], 1024, 513, fail), /sparse map segment 1 \(offset 511, length 1\) overlaps or precedes the previous segment ending at 512/);
    // A zero-length descriptor moves the end too.
    throwsRule(() => validateSparseMap([seg(100, 0), seg(50, 1)], 1024, 1, fail), /segment 1 \(offset 50, length 1\) overlaps or precedes the previous segment ending at 100/);
    assert.deepEqual(validateSparseMap([seg(100, 0), seg(100, 1)], 1024, 1, fail), [seg(100, 1)]);
  });

  test("rule: the lengths sum to the stored size exactly; zero-length segments are dropped from the result", () => {
    assert.deepEqual(validateSparseMap([], 0, 0, fail), []);
    assert.deepEqual(validateSparseMap([seg(0, 0), seg(10, 5), seg(20, 0), seg(30, 5)], 100, 10, fail), [seg(10, 5), seg(30, 5)]);
    throwsRule(() => validateSparseMap([seg(0, 5), seg(10, 5)], 100, 11, fail), /"s".*sparse map covers 10 bytes but the entry stores 11/);
    throwsRule(() => validateSparseMap([seg(0, 5), seg(10, 5)], 100, 9, fail), /sparse map covers 10 bytes but the entry stores 9/);
    throwsRule(() => validateSparseMap([], 100, 1, fail), /sparse map covers 0 bytes but the entry stores 1/);
  });

  test("rule: the result is a copy, not the caller's segments", () => {
    const input = [seg(0, 5)];
    const out = validateSparseMap(input, 10, 5, fail);
    out[0]!.length = 99;
    assert.deepEqual(input, [seg(0, 5)]);
  });
});

describe("segment alignment (checkSegmentAlignment)", () => {
  test("rule: every data segment's bytes start on a 512-byte boundary of the stored data", () => {
    checkSegmentAlignment([seg(0, 512), seg(4096, 1024), seg(8192, 7)], fail);
    checkSegmentAlignment([seg(0, 7)], fail);
    checkSegmentAlignment([], fail);
    throwsRule(
      () => checkSegmentAlignment([seg(0, 512), seg(1024, 513), seg(4096, 1)], fail),
      /"s".*sparse map segment 2 \(offset 4096, length 1\) starts at stored byte 1025, not on a 512-byte boundary/,
    );
    throwsRule(() => checkSegmentAlignment([seg(0, 1), seg(600, 511)], fail), /segment 1 \(offset 600, length 511\) starts at stored byte 1, not on a 512-byte boundary/);
  });

  test("rule: a zero-length descriptor carries no data, so it may follow an unaligned segment", () => {
    checkSegmentAlignment([seg(0, 10), seg(4096, 0)], fail);
    checkSegmentAlignment([seg(0, 10), seg(2048, 0), seg(4096, 0)], fail);
  });
});

describe("block alignment (blockAlignMap)", () => {
  test("rule: segments widen to 512-byte boundaries, capped at the real size", () => {
    assert.deepEqual(blockAlignMap([seg(10, 5)], 2000), [seg(0, 512)]);
    assert.deepEqual(blockAlignMap([seg(512, 512)], 2000), [seg(512, 512)]);
    assert.deepEqual(blockAlignMap([seg(1030, 10)], 1100), [seg(1024, 76)]);
    assert.deepEqual(blockAlignMap([seg(1024, 76)], 1100), [seg(1024, 76)]);
    assert.deepEqual(blockAlignMap([seg(513, 511)], 4096), [seg(512, 512)]);
  });

  test("rule: widened segments that overlap or touch merge; ones a block apart do not", () => {
    assert.deepEqual(blockAlignMap([seg(10, 5), seg(600, 5)], 2000), [seg(0, 1024)]);
    assert.deepEqual(blockAlignMap([seg(0, 512), seg(512, 10)], 2000), [seg(0, 1024)]);
    assert.deepEqual(blockAlignMap([seg(0, 10), seg(1024, 10)], 2000), [seg(0, 512), seg(1024, 512)]);
    // A merge keeps the further end (a short segment inside the previous block changes nothing).
    assert.deepEqual(blockAlignMap([seg(0, 1000), seg(1001, 2)], 4096), [seg(0, 1024)]);
  });

  test("rule: zero-length segments are dropped", () => {
    assert.deepEqual(blockAlignMap([seg(0, 0), seg(1024, 1), seg(3000, 0)], 4096), [seg(1024, 512)]);
    assert.deepEqual(blockAlignMap([seg(4096, 0)], 4096), []);
  });
});

describe("old-GNU descriptors (readDescriptors, writeDescriptors)", () => {
  test("rule: descriptors are offset[12] + numbytes[12], 24 bytes apart, in octal or base-256", () => {
    const block = new Uint8Array(512);
    const map = [seg(0, 512), seg(1 << 20, 4096), seg(9 * 2 ** 30, 7), seg(2 ** 40, 0)];
    writeDescriptors(block, 386, map);
    assert.deepEqual(block.subarray(386, 398), Uint8Array.from("00000000000\0", (c) => c.charCodeAt(0)));
    assert.deepEqual(block.subarray(398, 410), Uint8Array.from("00000001000\0", (c) => c.charCodeAt(0)));
    assert.deepEqual(block.subarray(386 + 48, 386 + 60), base256(9n * 2n ** 30n));
    const out: SparseSegment[] = [];
    assert.equal(readDescriptors(block, 386, 4, out, fail), true);
    assert.deepEqual(out, map);
  });

  test("rule: a descriptor whose numbytes starts with NUL ends the map", () => {
    const block = new Uint8Array(512);
    writeDescriptors(block, 0, [seg(0, 512), seg(1024, 512)]);
    const out: SparseSegment[] = [];
    assert.equal(readDescriptors(block, 0, 21, out, fail), false);
    assert.deepEqual(out, [seg(0, 512), seg(1024, 512)]);
    // Only the numbytes field's first byte decides: an offset of NULs with numbytes present is offset 0.
    const b2 = new Uint8Array(512);
    b2.set(Uint8Array.from("00000000012\0", (c) => c.charCodeAt(0)), 12);
    const out2: SparseSegment[] = [];
    assert.equal(readDescriptors(b2, 0, 1, out2, fail), true);
    assert.deepEqual(out2, [seg(0, 10)]);
  });

  test("rule: a malformed descriptor is refused naming its index and field", () => {
    const block = new Uint8Array(512);
    writeDescriptors(block, 0, [seg(0, 512), seg(1024, 512)]);
    block[24 + 3] = 0x39; // "9" in the second offset
    const out: SparseSegment[] = [seg(0, 1), seg(2, 1), seg(4, 1)];
    throwsRule(() => readDescriptors(block, 0, 2, out, fail), /sparse descriptor 4 offset: numeric field holds "00090002000\\u0000", not an octal number/);
    const b2 = new Uint8Array(512);
    writeDescriptors(b2, 0, [seg(0, 512)]);
    b2[12 + 5] = 0x38; // "8" in the first numbytes
    throwsRule(() => readDescriptors(b2, 0, 1, [], fail), /sparse descriptor 0 length: numeric field holds "00000801000\\u0000", not an octal number/);
  });
});

describe("PAX sparse 1.0 map (readSparseMap10)", () => {
  const enc = new TextEncoder();
  /** The map text padded to blocks, read one block per call; ends with `end` (0 = clean end of input). */
  const blocks = (text: string | Uint8Array, end = 0) => {
    const bytes = typeof text === "string" ? enc.encode(text) : text;
    const all = new Uint8Array(Math.ceil(bytes.length / 512) * 512 || 512);
    all.set(bytes);
    let at = 0;
    let reads = 0;
    const readBlock = async (): Promise<Uint8Array | number> => {
      reads++;
      if (at >= all.length) return end;
      const b = all.slice(at, at + 512);
      at += 512;
      return b;
    };
    return { readBlock, reads: () => reads };
  };
  const truncated = () => new ArchiveError("archive truncated: input ends inside the sparse map of entry \"s\"");
  /** A 60-segment map of 767 bytes: it spans two blocks. */
  const sixty = `60\n${Array.from({ length: 60 }, (_, k) => `${k * 1048576}\n512\n`).join("")}`;
  const read = (text: string | Uint8Array, available = 1 << 20, max = 10, end = 0) => readSparseMap10(blocks(text, end).readBlock, available, max, fail, truncated);

  test("rule: the count, then count offset/numbytes pairs, each a decimal ended by a newline", async () => {
    assert.deepEqual(await read("2\n0\n512\n4096\n10\n"), { map: [seg(0, 512), seg(4096, 10)], bytes: 512 });
    assert.deepEqual(await read("0\n"), { map: [], bytes: 512 });
    assert.deepEqual(await read("1\n9007199254740991\n0\n"), { map: [seg(2 ** 53 - 1, 0)], bytes: 512 });
    assert.deepEqual(await read("01\n0000000000000007\n3\n"), { map: [seg(7, 3)], bytes: 512 });
  });

  test("rule: a map may span blocks; it takes whole blocks and stops reading when complete", async () => {
    const text = sixty;
    assert.ok(text.length > 512 && text.length <= 1024);
    const src = blocks(concatBytes(enc.encode(text), new Uint8Array(1024)));
    const got = await readSparseMap10(src.readBlock, 1 << 20, 100, fail, truncated);
    assert.equal(got.map.length, 60);
    assert.deepEqual(got.map[59], seg(59 * 1048576, 512));
    assert.equal(got.bytes, 1024);
    assert.equal(src.reads(), 2);
  });

  test("rule: the count is bounded by the segment limit before anything else", async () => {
    assert.equal((await read("3\n0\n1\n512\n1\n1024\n1\n", 1 << 20, 3)).map.length, 3);
    await rejectsRule(read("4\n", 1 << 20, 3), /"s".*PAX sparse 1\.0 map declares 4 segments; the limit is 3/);
  });

  test("rule: the map may not run past the entry's stored bytes", async () => {
    assert.equal((await read("1\n0\n0\n", 512)).bytes, 512);
    await rejectsRule(read("1\n0\n0\n", 511), /PAX sparse 1\.0 map runs past the entry's 511 stored bytes/);
    const long = `60\n${Array.from({ length: 60 }, (_, k) => `${k * 1048576}\n512\n`).join("")}`;
    assert.ok(long.length > 512);
    await rejectsRule(read(long, 512, 100), /PAX sparse 1\.0 map runs past the entry's 512 stored bytes/);
    assert.equal((await read(long, 1024, 100)).bytes, 1024);
  });

  test("rule: input ending inside the map is truncation", async () => {
    const head = sixty.slice(0, 512); // whole block, map unfinished, then the input ends
    for (const end of [0, 100]) {
      await assert.rejects(read(head, 4096, 100, end), (e: unknown) => {
        assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${String(e)}`);
        assert.equal(e.code, "archive");
        assert.match(e.message, /^archive truncated: input ends inside the sparse map of entry "s"$/);
        return true;
      });
    }
  });

  test("rule: only digits and newlines; an empty line or any other byte is refused naming its position", async () => {
    await rejectsRule(read("1\n0\n\n"), /PAX sparse 1\.0 map: byte 4 is "\\n", expected a decimal number ended by a newline/);
    await rejectsRule(read("1\n0 \n5\n"), /PAX sparse 1\.0 map: byte 3 is " ", expected a decimal number ended by a newline/);
    await rejectsRule(read("1\n/\n"), /byte 2 is "\/", expected a decimal number/);
    await rejectsRule(read("1\n:\n"), /byte 2 is ":", expected a decimal number/);
    // The padding after an unfinished map is NULs: refused at the first one.
    await rejectsRule(read("2\n0\n5\n"), /byte 6 is "\\u0000", expected a decimal number/);
    // In a later block, positions count from the map's start.
    const bad = sixty.slice(0, 600) + "x" + sixty.slice(601);
    await rejectsRule(read(bad, 1 << 20, 100), /PAX sparse 1\.0 map: byte 600 is "x", expected a decimal number/);
  });

  test("rule: a number has at most 16 digits and is at most 2^53-1", async () => {
    await rejectsRule(read("1\n" + "1".repeat(17) + "\n0\n"), /PAX sparse 1\.0 map: number 0 has more than 16 digits/);
    await rejectsRule(read("2\n0\n512\n4096\n" + "0".repeat(17) + "\n"), /PAX sparse 1\.0 map: number 3 has more than 16 digits/);
    await rejectsRule(read("1\n0\n" + "0".repeat(17) + "\n"), /PAX sparse 1\.0 map: number 1 has more than 16 digits/);
    await rejectsRule(read("1\n9007199254740992\n0\n"), /PAX sparse 1\.0 map: 9007199254740992 exceeds 2\^53-1/);
  });
});
