/** Rules of the store's snapshot lookup (src/store.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgument } from "../src/errors.js";
import type { SnapshotInfo } from "../src/store.js";
import { BACKENDS, makeHome } from "./helpers/homes.js";

const info = (digest: string, name: string, home: string) => ({ digest, name, path: `${home}/snapshots/${name}` }) as unknown as SnapshotInfo;

describe("digest prefix lookup", () => {
  test("rule: a digest prefix that matches two different snapshots is refused as ambiguous", async () => {
    const { home, store, cleanup } = await makeHome(BACKENDS[0]!);
    try {
      // two digests sharing 13 hex characters cannot be made by hashing; list them directly
      const a = "sha256:0123456789abc" + "0".repeat(51);
      const b = "sha256:0123456789abc" + "1".repeat(51);
      // findByDigest reads the listing through the store's private listWith (list() and the read-only lookups share it)
      const listing = (snapshots: SnapshotInfo[]) => {
        (store as unknown as { listWith: unknown }).listWith = async () => ({ snapshots, problems: [] });
      };
      listing([info(a, "a", home), info(b, "b", home)]);
      for (const prefix of ["0123456789ab", "sha256:0123456789abc"]) {
        await assert.rejects(
          store.findByDigest(prefix),
          (e: unknown) => e instanceof InvalidArgument && e.code === "invalid-argument" && /is ambiguous/.test(e.message) && e.message.includes(a) && e.message.includes(b),
          prefix,
        );
      }
      // a longer prefix that tells them apart resolves; the same digest in two places is not ambiguous
      assert.equal((await store.findByDigest("0123456789abc0"))?.digest, a);
      listing([info(a, "a", home), { ...info(a, "a2", home), path: "/elsewhere/a2" }]);
      assert.equal((await store.findByDigest("0123456789ab"))?.name, "a");
    } finally {
      cleanup();
    }
  });
});
