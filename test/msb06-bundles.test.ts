/**
 * microsandbox 0.6 bundles (issue 12, docs/format.md §9): save in upstream's
 * member order with archive.json last and member hashes, checked with GNU tar
 * and the reference member hash; load of bundles crafted by hand from the
 * spec (0.6.7–0.6.8 without member hashes, 0.6.9+ with them); every
 * inventory violation refused with the home unchanged; mixed homes.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { readSmallFile } from "../src/io.js";
import { fingerprint, writeBytes } from "./helpers/archive-fs.js";
import { fileEntry, tarOf } from "./helpers/archive-bundle.js";
import { BACKENDS, IMAGE, makeHome, noise, writeSparse } from "./helpers/homes.js";
import { craftBundle06, crafted06, referenceMemberHash, write06 } from "./helpers/msb06-reference.js";

const enc = (s: string) => new TextEncoder().encode(s);
const MEMBER = "msb-archive-member-blake3-v1";

/** Data extents of `bytes` at 4 KiB granularity, merged: what a zero-block scan finds. */
function referenceExtents(bytes: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at < bytes.length; at += 4096) {
    const end = Math.min(bytes.length, at + 4096);
    if (!bytes.subarray(at, end).some((b) => b !== 0)) continue;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === at) last[1] += end - at;
    else out.push([at, end - at]);
  }
  return out;
}

function gnuTarList(bytes: Uint8Array): string[] {
  const dir = mkdtempSync(join(tmpdir(), "msb06-gnutar-"));
  try {
    writeFileSync(join(dir, "b.tar"), bytes);
    return execFileSync("tar", ["-tf", join(dir, "b.tar")], { encoding: "utf8" }).trim().split("\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function gnuTarExtract(bytes: Uint8Array, member: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "msb06-gnutar-"));
  try {
    writeFileSync(join(dir, "b.tar"), bytes);
    execFileSync("tar", ["-xf", join(dir, "b.tar"), "-C", dir, member]);
    return new Uint8Array(readFileSync(join(dir, member)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const backend of BACKENDS) {
  describe(`0.6 bundles on ${backend.label}`, () => {
    test("save: upstream member order, sparse payload, archive.json last; GNU tar reads it; member hashes equal the reference", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const size = 300_000;
        const pieces: [number, Uint8Array][] = [[4096, noise(5000, 7)], [200_000, enc("hello")]];
        const p = await write06(fs, `${home}/snapshots/p`, { size, pieces, integrity: "msb-file-merkle-blake3-v1" });
        const childPayload = noise(5000, 8);
        const c = await write06(fs, `${home}/snapshots/c`, { size: 5000, pieces: [[0, childPayload]], integrity: null, parent: p.digest });
        const r = await store.save("c", `${root}/b.tar`, { withParents: true, plainTar: true });
        assert.equal(r.snapshots.length, 2);
        const bytes = await readSmallFile(fs, `${root}/b.tar`, 64 << 20);
        const P = p.digest.slice(7);
        const C = c.digest.slice(7);
        assert.deepEqual(gnuTarList(bytes), [`snapshots/${P}/snapshot.json`, `files/${P}/upper.ext4`, `snapshots/${C}/snapshot.json`, `files/${C}/upper.ext4`, "archive.json"]);
        assert.deepEqual(gnuTarExtract(bytes, `files/${P}/upper.ext4`), p.bytes);
        assert.equal(new TextDecoder().decode(gnuTarExtract(bytes, `snapshots/${C}/snapshot.json`)), c.text);
        const inv = JSON.parse(new TextDecoder().decode(gnuTarExtract(bytes, "archive.json")));
        assert.deepEqual(Object.keys(inv), ["schema", "artifact", "head", "suggested_name", "completeness", "with_parents", "with_image", "snapshots", "entries", "protection_requirements", "extensions", "requires"]);
        assert.equal(inv.head, c.digest);
        assert.equal(inv.suggested_name, "c");
        assert.deepEqual(inv.requires, [MEMBER]); // a null integrity: 0.6.7–0.6.8 cannot load it anyway, so member hashes
        assert.deepEqual(inv.entries.map((e: any) => e.path), [`files/${C}/upper.ext4`, `files/${P}/upper.ext4`, `snapshots/${C}/snapshot.json`, `snapshots/${P}/snapshot.json`].sort());
        const byPath = new Map<string, any>(inv.entries.map((e: any) => [e.path, e]));
        // dense child payload: a regular member
        const childEntry = byPath.get(`files/${C}/upper.ext4`);
        assert.equal(childEntry.transport_integrity.digest, await referenceMemberHash({ kind: "file-payload", path: `files/${C}/upper.ext4`, encodedSize: 5000, apparentSize: 5000, ranges: [], stored: childPayload }));
        assert.equal(childEntry.integrity, null);
        // sparse parent payload: the map as written (terminator included) and only the stored bytes
        const ext = referenceExtents(p.bytes);
        const stored = new Uint8Array(ext.reduce((n, [, l]) => n + l, 0));
        let at = 0;
        for (const [o, l] of ext) {
          stored.set(p.bytes.subarray(o, o + l), at);
          at += l;
        }
        const parentEntry = byPath.get(`files/${P}/upper.ext4`);
        assert.equal(parentEntry.encoded_size, stored.length);
        assert.ok(stored.length < size / 10);
        assert.equal(parentEntry.apparent_size, size);
        assert.equal(parentEntry.transport_integrity.digest, await referenceMemberHash({ kind: "file-payload", path: `files/${P}/upper.ext4`, encodedSize: stored.length, apparentSize: size, ranges: [...ext, [size, 0]], stored }));
        assert.equal(parentEntry.integrity.algorithm, "msb-file-merkle-blake3-v1");
        const descEntry = byPath.get(`snapshots/${P}/snapshot.json`);
        assert.deepEqual(descEntry.integrity, { algorithm: "sha256", digest: p.digest });
        assert.equal(descEntry.owner_snapshot, p.digest);
      } finally {
        cleanup();
      }
    });

    test("round trip 0.6 → save → load → verify, zstd; installed under <dest>/<64hex>", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      const cleanups = [cleanup];
      try {
        const p = await write06(fs, `${home}/snapshots/p`, { size: 1 << 20, pieces: [[65536, noise(70_000, 3)]], integrity: "msb-file-merkle-blake3-v1" });
        const c = await write06(fs, `${home}/snapshots/c`, { size: 9000, pieces: [[1, noise(8000, 4)]], integrity: "msb-sparse-sha256-v1", parent: p.digest });
        await store.save("c", `${root}/b.tar.zst`, { withParents: true });
        const o = await makeHome(backend);
        cleanups.push(o.cleanup);
        const { store: other, home: home2 } = o;
        await writeBytes(o.fs, `${home2}/b.tar.zst`, await readSmallFile(fs, `${root}/b.tar.zst`, 64 << 20));
        const head = await other.load(`${home2}/b.tar.zst`);
        assert.equal(head.digest, c.digest);
        assert.equal(head.path, `${home2}/snapshots/${c.digest.slice(7)}`);
        assert.equal(head.form, "snapshot");
        const { snapshots } = await other.list();
        assert.deepEqual(snapshots.map((s) => s.digest).sort(), [p.digest, c.digest].sort());
        for (const s of snapshots) assert.equal((await other.verify(s.digest)).integrity.status, "verified");
        // loading it again: the head is installed already, nothing changes
        const before = await fingerprint(other.fs, `${home2}/snapshots`);
        await assert.rejects(other.load(`${home2}/b.tar.zst`), (e: Error) => e.name === "SnapshotAlreadyInstalled" && /already installed/.test(e.message));
        assert.deepEqual(await fingerprint(other.fs, `${home2}/snapshots`), before);
      } finally {
        for (const c of cleanups) c();
      }
    });

    test("with the image: images/ members with sha256 bindings; loaded into the other home's cache", async () => {
      const { buildImage } = await import("./helpers/image.js");
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      const other = await makeHome(backend);
      try {
        const img = await buildImage(fs, home);
        const s = await write06(fs, `${home}/snapshots/s`, { size: 4096, pieces: [[0, enc("s")]], integrity: "msb-sparse-sha256-v1", image: { ref: img.ref, manifest_digest: img.manifest_digest } });
        const r = await store.save("s", `${root}/s.tar`, { plainTar: true, withImage: true });
        const inv = (r as any).inventory;
        const images = inv.entries.filter((e: any) => e.path.startsWith("images/"));
        assert.equal(images.length, img.files.length);
        for (const e of images) {
          const src = img.files.find((f) => f.endsWith(e.path.split("/").slice(1).join("/")))!;
          const { sha256Of } = await import("./helpers/msb06-reference.js");
          assert.deepEqual(e.integrity, { algorithm: "sha256", digest: sha256Of(await readSmallFile(fs, src, 1 << 20)) });
          assert.equal(e.owner_snapshot, null);
          assert.equal(e.kind, e.path.startsWith("images/manifests/") ? "image-metadata" : "image-object");
        }
        assert.equal(gnuTarList(await readSmallFile(fs, `${root}/s.tar`, 64 << 20)).pop(), "archive.json");
        await writeBytes(other.fs, `${other.home}/s.tar`, await readSmallFile(fs, `${root}/s.tar`, 64 << 20));
        const head = await other.store.load(`${other.home}/s.tar`);
        assert.equal(head.digest, s.digest);
        for (const f of img.files) {
          const there = f.replace(home, other.home);
          assert.deepEqual(await readSmallFile(other.fs, there, 1 << 20), await readSmallFile(fs, f, 1 << 20), there);
        }
      } finally {
        other.cleanup();
        cleanup();
      }
    });

    test("checkpoint state round-trips: a descriptor-only member, member hashes on, verify says unsupported after load", async () => {
      const { writeCheckpoint06 } = await import("./helpers/msb06-reference.js");
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      const other = await makeHome(backend);
      try {
        const ck = await writeCheckpoint06(fs, `${home}/snapshots/ck`);
        const r = (await store.save("ck", `${root}/ck.tar`, { plainTar: true })) as any;
        assert.deepEqual(r.inventory.entries.map((e: any) => e.kind), ["snapshot-descriptor"]);
        assert.deepEqual(r.inventory.requires, [MEMBER]);
        await writeBytes(other.fs, `${other.home}/ck.tar`, await readSmallFile(fs, `${root}/ck.tar`, 1 << 20));
        const head = await other.store.load(`${other.home}/ck.tar`);
        assert.equal(head.digest, ck.digest);
        assert.equal(head.state_kind, "checkpoint");
        assert.equal((await other.store.verify(ck.digest)).integrity.status, "unsupported");
      } finally {
        other.cleanup();
        cleanup();
      }
    });

    test("auto member hashes: sha256/sparse integrity → requires [] (0.6.7–0.6.8 load it); forced either way", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await write06(fs, `${home}/snapshots/a`, { size: 5000, pieces: [[0, noise(5000, 1)]], integrity: "sha256" });
        const auto = await store.save("a", `${root}/a.tar`, { plainTar: true });
        const inv = (auto as any).inventory;
        assert.deepEqual(inv.requires, []);
        assert.ok(inv.entries.every((e: any) => e.transport_integrity === undefined));
        const forced = await store.save("a", `${root}/a.tar`, { plainTar: true, memberHashes: true, overwrite: true });
        assert.deepEqual((forced as any).inventory.requires, [MEMBER]);
        assert.ok((forced as any).inventory.entries.every((e: any) => e.transport_integrity?.algorithm === MEMBER));
        // the output was replaced atomically: no temporary left beside it
        assert.deepEqual((await fs.readdir(root)).filter((n) => n.startsWith(".")), []);
      } finally {
        cleanup();
      }
    });

    test("payload corruption is caught by the member hash even with no recorded integrity (one flipped byte); home unchanged", async () => {
      const { fs, home, store, cleanup } = await makeHome(backend);
      try {
        const s = await crafted06(noise(3000, 2), null);
        const { members } = await craftBundle06([s], { memberHashes: true });
        const payload = members.find((m) => m.path.startsWith("files/"))!;
        payload.data = payload.data.slice();
        payload.data[1234]! ^= 0x01;
        await writeBytes(fs, `${home}/bad.tar`, tarOf(...members.map((m) => fileEntry(m.path, m.data))));
        const before = await fingerprint(fs, home);
        await assert.rejects(store.load(`${home}/bad.tar`), /transport integrity mismatch for "files\//);
        assert.deepEqual(await fingerprint(fs, home), before);
      } finally {
        cleanup();
      }
    });

    test("0.6.7–0.6.8 bundles (no member hashes) and 0.6.9+ bundles load; the head comes from the inventory", async () => {
      const { fs, home, store, cleanup } = await makeHome(backend);
      try {
        const parent = await crafted06(noise(4000, 5), "msb-sparse-sha256-v1");
        const child = await crafted06(noise(4000, 6), "sha256", parent.digest);
        const old = await craftBundle06([parent, child], { memberHashes: false });
        await writeBytes(fs, `${home}/old.tar`, tarOf(...old.members.map((m) => fileEntry(m.path, m.data))));
        const head = await store.load(`${home}/old.tar`);
        assert.equal(head.digest, child.digest);
        const solo = await crafted06(noise(100, 9), "msb-file-merkle-blake3-v1");
        const neu = await craftBundle06([solo], { memberHashes: true });
        await writeBytes(fs, `${home}/new.tar`, tarOf(...neu.members.map((m) => fileEntry(m.path, m.data))));
        assert.equal((await store.load(`${home}/new.tar`)).digest, solo.digest);
        assert.equal((await store.verify(solo.digest)).integrity.algorithm, "msb-file-merkle-blake3-v1");
      } finally {
        cleanup();
      }
    });

    describe("inventory violations are refused with the home unchanged", () => {
      const swap = (a: any[]) => a.reverse();
      const cases: [string, Parameters<typeof craftBundle06>[1], RegExp][] = [
        ["archive.json not canonical (pretty-printed)", { memberHashes: true, inventoryText: (t) => JSON.stringify(JSON.parse(t), null, 1) }, /not canonical/],
        ["archive.json with an unknown field", { memberHashes: true, mutate: (inv) => (inv.extra = 1) }, /archive\.json\.extra is not a known field/],
        ["entries not sorted", { memberHashes: true, mutate: (inv) => swap(inv.entries) }, /entries are not strictly sorted/],
        ["an inventoried member missing", { memberHashes: true, mutate: (_inv, m) => m.splice(m.findIndex((x) => x.path.startsWith("files/")), 1) }, /which is missing from the archive/],
        ["a member not inventoried", { memberHashes: true, mutate: (_inv, m) => m.push({ path: "images/vmdk/x.vmdk", data: enc("x") }) }, /"images\/vmdk\/x\.vmdk" is not listed in archive\.json/],
        ["sizes differ", { memberHashes: true, mutate: (inv) => (inv.entries[0].encoded_size += 1) }, /archive\.json records/],
        ["included:false but present", { memberHashes: false, mutate: (inv) => (inv.entries[0].included = false) }, /included:false/],
        ["head not listed", { memberHashes: true, mutate: (inv) => (inv.head = `sha256:${"0".repeat(64)}`) }, /head .* is not one of its snapshots/],
        ["unknown requires", { memberHashes: true, mutate: (inv) => (inv.requires = ["x-future"]) }, /unsupported: archive requires/],
        ["unknown completeness", { memberHashes: true, mutate: (inv) => (inv.completeness = "partial") }, /unsupported: archive completeness/],
        ["unknown entry kind", { memberHashes: true, mutate: (inv) => (inv.entries[0].kind = "future-kind") }, /unsupported: archive entry kind/],
        ["required member hash missing", { memberHashes: true, mutate: (inv) => delete inv.entries[0].transport_integrity }, /has no transport_integrity, which the inventory requires/],
        ["member hash wrong", { memberHashes: true, mutate: (inv) => (inv.entries[1].transport_integrity.digest = `blake3:${"0".repeat(64)}`) }, /transport integrity mismatch/],
        ["descriptor identity ≠ owner", { memberHashes: true, mutate: (inv) => (inv.entries.find((e: any) => e.kind === "snapshot-descriptor").integrity.digest = `sha256:${"1".repeat(64)}`) }, /hashes to sha256:|equal to its owner_snapshot/],
        ["payload binding disagrees with the descriptor", { memberHashes: true, mutate: (inv) => (inv.entries.find((e: any) => e.kind === "file-payload").integrity = null) }, /binding disagrees with descriptor/],
        ["no archive.json", { memberHashes: true }, /must carry archive\.json/],
        ["a manifest.json-layout member beside 0.6 members", { memberHashes: true, mutate: (_inv, m) => m.unshift({ path: "sha256-0123456789abcdef/notes.txt", data: enc("x") }) }, /one archive holds one layout/],
        ["a payload path without a 64-hex id", { memberHashes: true, mutate: (_inv, m) => m.push({ path: "files/abc/upper.ext4", data: enc("x") }) }, /64 lowercase hex/],
      ];
      for (const [name, opts, re] of cases) {
        test(name, async () => {
          const { fs, home, store, cleanup } = await makeHome(backend);
          try {
            const s = await crafted06(noise(2000, 11), "sha256");
            const { members } = await craftBundle06([s], opts);
            const kept = name === "no archive.json" ? members.filter((m) => m.path !== "archive.json") : members;
            await writeBytes(fs, `${home}/v.tar`, tarOf(...kept.map((m) => fileEntry(m.path, m.data))));
            const before = await fingerprint(fs, home);
            await assert.rejects(store.load(`${home}/v.tar`), re);
            assert.deepEqual(await fingerprint(fs, home), before);
          } finally {
            cleanup();
          }
        });
      }
      test("hostile members of a 0.6 bundle: a symlink payload, an unknown file in snapshots/<id>/, a reserved payload name, an oversized archive.json", async () => {
        const { craftHeader } = await import("./helpers/tar-craft.js");
        const { fs, home, store, cleanup } = await makeHome(backend);
        try {
          const s = await crafted06(noise(2000, 14), "sha256");
          const { members } = await craftBundle06([s], { memberHashes: true });
          const hex = s.digest.slice(7);
          const variants: [string, Uint8Array[], RegExp][] = [
            ["symlink", [craftHeader({ name: `files/${hex}/upper.ext4`, typeflag: "2", linkname: "/etc/passwd", mtime: 1 }), ...members.filter((m) => !m.path.startsWith("files/")).map((m) => fileEntry(m.path, m.data))], /symbolic link/],
            ["unknown descriptor name", [fileEntry(`snapshots/${hex}/notes.txt`, "x"), ...members.map((m) => fileEntry(m.path, m.data))], /holds only snapshot\.json/],
            ["reserved payload name", [fileEntry(`files/${hex}/.manifest.json.legacy`, "x"), ...members.map((m) => fileEntry(m.path, m.data))], /reserved artifact name/],
            ["archive.json over 4 MiB", [...members.filter((m) => m.path !== "archive.json").map((m) => fileEntry(m.path, m.data)), craftHeader({ name: "archive.json", size: (4 << 20) + 1, mtime: 1 })], /archive\.json may be at most 4194304/],
            ["GNU long name", [craftHeader({ name: "././@LongLink", typeflag: "L", size: 10, mtime: 1 }), ...members.map((m) => fileEntry(m.path, m.data))], /long-name/],
          ];
          for (const [what, parts, re] of variants) {
            await writeBytes(fs, `${home}/h.tar`, tarOf(...parts));
            const before = await fingerprint(fs, home);
            await assert.rejects(store.load(`${home}/h.tar`), re, what);
            assert.deepEqual(await fingerprint(fs, home), before, what);
          }
        } finally {
          cleanup();
        }
      });
      test("a descriptor that is not canonical (its file hash is not its identity)", async () => {
        const { fs, home, store, cleanup } = await makeHome(backend);
        try {
          const s = await crafted06(noise(2000, 12), "sha256");
          const pretty = JSON.stringify(JSON.parse(s.text), null, 2);
          const { createHash } = await import("node:crypto");
          const fake = { ...s, text: pretty, digest: `sha256:${createHash("sha256").update(pretty).digest("hex")}` };
          const { members } = await craftBundle06([fake], { memberHashes: true });
          await writeBytes(fs, `${home}/v.tar`, tarOf(...members.map((m) => fileEntry(m.path, m.data))));
          const before = await fingerprint(fs, home);
          await assert.rejects(store.load(`${home}/v.tar`), /not in canonical form/);
          assert.deepEqual(await fingerprint(fs, home), before);
        } finally {
          cleanup();
        }
      });
    });

    test("a mixed home saves each form in its own layout, refuses the other with a reason, and both load side by side", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 50_000, [[7, noise(900, 13)]]);
        const old = await store.create("old", { upper: `${root}/u`, image: IMAGE, integrity: true });
        const neu = await write06(fs, `${home}/snapshots/new`, { size: 4096, pieces: [[0, enc("n")]], integrity: "msb-file-merkle-blake3-v1" });
        await store.save("old", `${root}/old.tar`, { plainTar: true });
        assert.deepEqual(gnuTarList(await readSmallFile(fs, `${root}/old.tar`, 64 << 20)).map((p) => p.split("/")[1]), ["manifest.json", "upper.ext4"]);
        await store.save("new", `${root}/new.tar`, { plainTar: true });
        // the manifest form in the 0.6 layout: translated as microsandbox's migration would (a new identity)
        const kid = await store.create("kid", { upper: `${root}/u`, image: IMAGE, integrity: true, parent: old.digest, layout: undefined, form: "manifest" } as any);
        await assert.rejects(store.save("kid", `${root}/x.tar`, { layout: "snapshot" }), /legacy_parent_missing/);
        const tr = (await store.save("kid", `${root}/tr.tar`, { layout: "snapshot", withParents: true, plainTar: true })) as any;
        const m = JSON.parse(new TextDecoder().decode(await readSmallFile(fs, `${home}/snapshots/old/manifest.json`, 1 << 20)));
        const { descriptorText, fileState, sha256Of } = await import("./helpers/msb06-reference.js");
        const oldText = descriptorText({ created_at: m.created_at, state: fileState(m.upper.size_bytes, JSON.stringify(m.upper.integrity)) });
        const oldNew = sha256Of(enc(oldText));
        assert.ok(tr.inventory.snapshots.some((x: any) => x.snapshot_id === oldNew));
        const kidText = new TextDecoder().decode(gnuTarExtract(await readSmallFile(fs, `${root}/tr.tar`, 64 << 20), `snapshots/${tr.inventory.head.slice(7)}/snapshot.json`));
        assert.equal(JSON.parse(kidText).parent, oldNew);
        assert.notEqual(tr.inventory.head, kid.digest);
        assert.deepEqual(tr.inventory.requires, []); // sparse-sha256 integrity throughout: 0.6.7–0.6.8 load it too
        await store.remove("kid");
        await assert.rejects(store.save("new", `${root}/x.tar`, { layout: "manifest" }), /snapshot\.json artifact.*cannot carry it/);
        const other = await makeHome(backend);
        try {
          const dest = `${other.home}/in`;
          await other.fs.mkdir(dest, { recursive: true });
          for (const n of ["old.tar", "new.tar"]) await writeBytes(other.fs, `${dest}/${n}`, await readSmallFile(fs, `${root}/${n}`, 64 << 20));
          await other.store.load(`${dest}/old.tar`);
          await other.store.load(`${dest}/new.tar`);
          const { snapshots } = await other.store.list();
          assert.deepEqual(snapshots.map((s) => [s.digest, s.form]).sort(), [[old.digest, "manifest"], [neu.digest, "snapshot"]].sort());
          for (const s of snapshots) assert.equal((await other.store.verify(s.digest)).integrity.status, "verified");
        } finally {
          other.cleanup();
        }
      } finally {
        cleanup();
      }
    });
  });
}


describe("CLI on a 0.6 home", () => {
  test("ls shows the form, verify says unsupported for a checkpoint, save --layout / --member-hashes, load installs under archive.json's suggested name", async () => {
    const { runCli } = await import("./helpers/cli-run.js");
    const { nodeFs } = await import("../src/fs/node.js");
    const { writeCheckpoint06 } = await import("./helpers/msb06-reference.js");
    const root = mkdtempSync(join(tmpdir(), "msb06-cli-"));
    try {
      const fs = nodeFs();
      const home = join(root, "home");
      const a = await write06(fs, `${home}/snapshots/a`, { size: 8192, pieces: [[0, noise(100, 1)]], integrity: "msb-file-merkle-blake3-v1" });
      await writeCheckpoint06(fs, `${home}/snapshots/ck`);
      const ls = await runCli(["--home", home, "ls"]);
      assert.equal(ls.code, 0, ls.stderr);
      const lines = ls.stdout.trimEnd().split("\n");
      assert.match(lines[0]!, /^NAME\s+FORM\s+DIGEST/);
      assert.match(lines[1]!, /^a\s+snapshot\s+[0-9a-f]{12}\s+8\.0 KiB/);
      assert.match(lines[2]!, /^ck\s+snapshot \(checkpoint\)\s+[0-9a-f]{12}\s+-/);
      const v = await runCli(["--home", home, "verify", "ck"]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /unsupported: checkpoint state has no payload/);
      const va = await runCli(["--home", home, "verify", "a"]);
      assert.match(va.stdout, /upper matches msb-file-merkle-blake3-v1 blake3:[0-9a-f]{64}/);
      const bad = await runCli(["--home", home, "save", "a", join(root, "x.tar"), "--layout", "manifest"]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /cannot carry it/);
      const bad2 = await runCli(["--home", home, "save", "a", join(root, "x.tar"), "--member-hashes", "maybe"]);
      assert.notEqual(bad2.code, 0);
      const saved = await runCli(["--home", home, "save", "a", join(root, "a.tar"), "--plain-tar", "--member-hashes", "no"]);
      assert.equal(saved.code, 0, saved.stderr);
      const inv = JSON.parse(execFileSync("tar", ["-xOf", join(root, "a.tar"), "archive.json"], { encoding: "utf8" }));
      assert.deepEqual(inv.requires, []);
      const home2 = join(root, "home2");
      const loaded = await runCli(["--home", home2, "--json", "load", join(root, "a.tar")]);
      assert.equal(loaded.code, 0, loaded.stderr);
      const info = JSON.parse(loaded.stdout);
      assert.equal(info.digest, a.digest);
      // the CLI names it after archive.json's suggested_name when that is free (msb 0.6.18 uses the id: docs/msb-differences.md)
      assert.equal(info.path, join(home2, "snapshots", inv.suggested_name ?? a.digest.slice(7)));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
