/** Rules of the tar codec's sparse map (src/tar/sparse.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { validateSparseMap } from "../src/tar/sparse.js";

const thrower = (rule: string): never => {
  throw new Error(rule);
};

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
