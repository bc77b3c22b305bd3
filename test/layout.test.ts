/** Rules of the home layout (src/layout.ts): image reference normalization and cache keys, safe digests, archive prefixes, materialized EROFS files. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { FileInfo } from "../src/fs/types.js";
import { archivePrefix, digestSafe, HomeLayout, imageCacheKey, isErofsMaterialized, normalizeImageRef } from "../src/layout.js";

const T = { timeout: 60_000 };

describe("home layout", () => {
  test("rule: an image reference is normalized to REGISTRY/REPOSITORY[:TAG][@DIGEST]: docker.io, library/, latest", () => {
    assert.equal(normalizeImageRef("python:3.12"), "docker.io/library/python:3.12");
    assert.equal(normalizeImageRef("alpine"), "docker.io/library/alpine:latest");
    assert.equal(normalizeImageRef("index.docker.io/library/alpine:3"), "docker.io/library/alpine:3");
    assert.equal(normalizeImageRef("user/app"), "docker.io/user/app:latest");
    assert.equal(normalizeImageRef("ghcr.io/o/app@sha256:" + "a".repeat(64)), "ghcr.io/o/app@sha256:" + "a".repeat(64));
    assert.equal(normalizeImageRef("localhost:5000/app"), "localhost:5000/app:latest");
  });

  test("rule: the cache key is the hex SHA-256 of the normalized reference (docs/format.md §2 vector)", T, async () => {
    assert.equal(await imageCacheKey("python:3.12"), "9f39de2cc07aeb65b0c8d87b811d86acce5f86cd7b201b9e906d875b03aa70ff");
    assert.equal(await imageCacheKey("alpine"), createHash("sha256").update("docker.io/library/alpine:latest").digest("hex"));
  });

  test("rule: a safe digest is algo_hex with every byte outside [A-Za-z0-9+.=_-] replaced by _", () => {
    assert.equal(digestSafe("sha256:abc"), "sha256_abc");
    assert.equal(digestSafe("x/y:z w"), "x_y_z_w");
    assert.equal(digestSafe("a+b.c=d-e_f"), "a+b.c=d-e_f");
  });

  test("rule: a bundle's snapshot directory is sha256-<first 16 hex of the digest>", () => {
    assert.equal(archivePrefix("sha256:0123456789abcdef" + "f".repeat(48)), "sha256-0123456789abcdef");
  });

  test("rule: an EROFS file is materialized when it is a regular file of a non-zero multiple of 4096 bytes", () => {
    const file = (size: number, kind: FileInfo["kind"] = "file") => ({ kind, size, mtimeMs: 0, allocatedBytes: null }) as FileInfo;
    assert.equal(isErofsMaterialized(file(8192)), true);
    assert.equal(isErofsMaterialized(file(0)), false);
    assert.equal(isErofsMaterialized(file(4097)), false);
    assert.equal(isErofsMaterialized(file(8192, "symlink")), false);
    assert.equal(isErofsMaterialized(null), false);
  });

  test("rule: the cache paths of an image live under <home>/cache/<kind>/ with the kind's extension", T, async () => {
    const l = new HomeLayout("/h");
    assert.equal(l.snapshotsDir, "/h/snapshots");
    assert.equal(l.cacheTmpDir, "/h/cache/tmp");
    assert.equal(await l.metadataPath("python:3.12"), "/h/cache/manifests/9f39de2cc07aeb65b0c8d87b811d86acce5f86cd7b201b9e906d875b03aa70ff.json");
    assert.equal(l.layerPath("sha256:ab"), "/h/cache/layers/sha256_ab.erofs");
    assert.equal(l.fsmetaPath("sha256:ab"), "/h/cache/fsmeta/sha256_ab.erofs");
    assert.equal(l.vmdkPath("sha256:ab", "/stage"), "/stage/vmdk/sha256_ab.vmdk");
  });
});
