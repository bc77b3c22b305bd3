/** Rules of the store's snapshot lookup by digest prefix (src/store.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgument } from "../src/errors.js";
import { readSmallFile, writeAtomically } from "../src/io.js";
import { HomeLayout } from "../src/layout.js";
import { BACKENDS, IMAGE, makeHome, writeSparse } from "./helpers/homes.js";
import { errorRule } from "./helpers/error-rules.js";

describe("digest prefix lookup", () => {
  test("rule: a digest prefix that matches two different snapshots is refused as ambiguous", { timeout: 60_000 }, async () => {
    for (const b of BACKENDS) {
      const { fs, root, home, store, cleanup } = await makeHome(b);
      try {
        await writeSparse(fs, `${root}/u1`, 4096, [[0, "one"]]);
        await writeSparse(fs, `${root}/u2`, 4096, [[0, "two"]]);
        const one = await store.create("a", { upper: `${root}/u1`, image: IMAGE });
        const two = await store.create("b", { upper: `${root}/u2`, image: IMAGE });
        await store.list(); // writes the index, the cache the lookup reads
        // Two digests sharing 13 hex characters cannot be made by hashing. The
        // index is a cache whose entries are trusted while their stamps match,
        // so the two entries are given such digests in the file itself.
        const a = "sha256:0123456789abc" + "0".repeat(51);
        const bb = "sha256:0123456789abc" + "1".repeat(51);
        const indexPath = new HomeLayout(home).indexPath;
        const index = JSON.parse(new TextDecoder().decode(await readSmallFile(fs, indexPath, 1 << 20)));
        index.entries[one.path].info.digest = a;
        index.entries[two.path].info.digest = bb;
        await writeAtomically(fs, indexPath, new TextEncoder().encode(JSON.stringify(index)));
        assert.deepEqual((await store.list()).snapshots.map((s) => s.digest), [a, bb], `${b.label}: the edited cache is what the store reads`);
        for (const prefix of ["0123456789ab", "sha256:0123456789abc"]) {
          await assert.rejects(store.findByDigest(prefix), errorRule(InvalidArgument, "invalid-argument", /is ambiguous/), `${b.label} ${prefix}`);
          await assert.rejects(store.findByDigest(prefix), (e: unknown) => e instanceof Error && e.message.includes(a) && e.message.includes(bb) && e.message.includes(one.path) && e.message.includes(two.path));
        }
        // a longer prefix that tells them apart resolves
        assert.equal((await store.findByDigest("0123456789abc0"))?.path, one.path, b.label);
        assert.equal((await store.findByDigest("0123456789abc1"))?.path, two.path, b.label);
        // the same digest in two places is not ambiguous without `unique`
        index.entries[two.path].info.digest = a;
        await writeAtomically(fs, indexPath, new TextEncoder().encode(JSON.stringify(index)));
        assert.equal((await store.findByDigest("0123456789ab"))?.path, one.path, b.label);
        await assert.rejects(store.findByDigest("0123456789ab", { unique: true }), errorRule(InvalidArgument, "invalid-argument", /is ambiguous/), b.label);
      } finally {
        cleanup();
      }
    }
  });
});
