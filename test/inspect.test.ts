/**
 * The rules of looking inside a bundle and checking it without a home,
 * owned by `src/archive/inspect.ts` (`inspectBundle`, `verifyBundle`): what
 * the report holds, how an upper streaming past is hashed, and which load
 * rules verify applies, in the load's order, naming what is at fault.
 * Bundles are hand-crafted tar bytes; digests come from node:crypto and b3sum.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { inspectBundle, verifyBundle } from "../src/archive/inspect.js";
import { ArchiveError, ImageCacheError, InvalidManifest, SnapshotIntegrityError } from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { memFs } from "../src/fs/memfs.js";
import { SnapshotStore } from "../src/store.js";
import { Volume } from "memfs";
import { cacheEntries, fileEntry, imageFixture, type SnapFixture, snapFixture, type SnapSpec, sparseDigest, sha256Hex, tarOf, zstdCli } from "./helpers/archive-bundle.js";
import { writeBytes } from "./helpers/archive-fs.js";
import { errorRule } from "./helpers/error-rules.js";
import { BACKENDS, noise } from "./helpers/homes.js";
import { craftBundle06, crafted06, descriptorText, fileState, referenceMerkleRoot, sha256Of } from "./helpers/msb06-reference.js";
import { concatBytes, craftData, craftHeader } from "./helpers/tar-craft.js";
import { bytesStream } from "./helpers/tar-tools.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = (s: string) => new TextEncoder().encode(s);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const integrityRule = (message: string) => errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(`^${esc(message)}$`));
const MiB = 1 << 20;
/** A filesystem for stream sources: nothing is read from it or written to it. */
const mem = memFs(new Volume());

type Algorithm = "sha256" | "msb-sparse-sha256-v1" | "msb-file-merkle-blake3-v1";
/** Each algorithm verify knows, computed independently of src/. */
const DIGESTS: Record<Algorithm, (bytes: Uint8Array) => Promise<string>> = {
  "sha256": async (b) => `sha256:${sha256Hex(b)}`,
  "msb-sparse-sha256-v1": async (b) => sparseDigest(b),
  "msb-file-merkle-blake3-v1": (b) => referenceMerkleRoot(b),
};

/** A snapshot fixture whose manifest records `integrity` instead (null: none). */
function snapWith(spec: SnapSpec, integrity: { algorithm: string; digest: string } | null): SnapFixture {
  const f = snapFixture(spec);
  const text = new TextDecoder().decode(f.manifest).replace(/"integrity":(null|\{[^}]*\})/, `"integrity":${integrity === null ? "null" : JSON.stringify(integrity)}`);
  const hex = sha256Hex(text);
  return { ...f, prefix: `sha256-${hex.slice(0, 16)}`, digest: `sha256:${hex}`, manifest: enc(text) };
}

/** An old-GNU sparse entry (typeflag S) of `logical`, storing only the `map` segments. */
function sparseEntry(name: string, logical: Uint8Array, map: [number, number][]): Uint8Array {
  const stored = concatBytes(...map.map(([o, n]) => logical.subarray(o, o + n)));
  return concatBytes(craftHeader({ name, typeflag: "S", size: stored.length, mtime: 1714560000, sparse: { map, realSize: logical.length } }), craftData(stored));
}

/** The report of one snapshot of the `manifest.json` layout, as the spec defines its fields. */
function reportOf(f: SnapFixture, integrity: { status: string; algorithm: string | null; recorded: string | null; computed: string | null }) {
  const m = JSON.parse(new TextDecoder().decode(f.manifest));
  return {
    digest: f.digest,
    name: f.prefix,
    state_kind: "file",
    parent: m.parent,
    image_ref: m.image.ref,
    image_manifest_digest: m.image.manifest_digest,
    size_bytes: m.upper.size_bytes,
    labels: m.labels,
    integrity,
  };
}

/** Write `bytes` as a bundle file on a backend. */
async function bundleAt(fs: FileSystem, path: string, bytes: Uint8Array): Promise<string> {
  await writeBytes(fs, path, bytes);
  return path;
}

describe("inspect: the report of a manifest.json bundle", () => {
  // An upper of 1 MiB + 200000 bytes: a hole of more than 1 MiB, 3000 bytes of data, a trailing hole
  const upperSpec: SnapSpec = { size: MiB + 200_000, pieces: [[0, "hello"], [MiB + 1000, noise(3000, 5)]] };
  const map: [number, number][] = [[0, 512], [MiB + 512, 3584]]; // segments a whole number of blocks, as GNU tar writes them

  test("rule: an upper's holes hash as zeros, however long, with the algorithm its manifest records (on both backends)", { timeout: 60_000 }, async () => {
    for (const [i, algorithm] of (Object.keys(DIGESTS) as Algorithm[]).entries()) {
      const b = BACKENDS[i % BACKENDS.length]!;
      const { fs, root, cleanup } = await b.make();
      try {
        const logical = snapFixture(upperSpec).upper;
        const digest = await DIGESTS[algorithm](logical);
        const f = snapWith(upperSpec, { algorithm, digest });
        // the manifest in a POSIX ustar header, the upper an old-GNU sparse entry
        const path = await bundleAt(fs, `${root}/${algorithm}.tar`, tarOf(fileEntry(`${f.prefix}/manifest.json`, f.manifest, { magic: "ustar" }), sparseEntry(`${f.prefix}/upper.ext4`, logical, map)));
        const report = await verifyBundle(fs, path);
        assert.deepEqual(report, {
          layout: "manifest",
          snapshots: [reportOf(f, { status: "verified", algorithm, recorded: digest, computed: digest })],
          head: f.digest,
          suggested_name: null,
          cache_files: [],
          compression: "none",
          tar_formats: ["gnu-sparse", "ustar"],
        }, `${algorithm} on ${b.label}`);
      } finally {
        cleanup();
      }
    }
  });

  test("rule: an upper that streams before its manifest (GNU tar's directory order) is hashed with every algorithm verify knows, and its manifest picks one", { timeout: 60_000 }, async () => {
    const snaps: { f: SnapFixture; algorithm: Algorithm; digest: string }[] = [];
    for (const [i, algorithm] of (Object.keys(DIGESTS) as Algorithm[]).entries()) {
      const spec: SnapSpec = { size: 3 * 65536 + 17, pieces: [[1, noise(9000, 10 + i)], [3 * 65536, "tail"]] };
      const digest = await DIGESTS[algorithm](snapFixture(spec).upper);
      snaps.push({ f: snapWith(spec, { algorithm, digest }), algorithm, digest });
    }
    const tar = zstdCli(tarOf(...snaps.flatMap(({ f }) => [fileEntry(`${f.prefix}/upper.ext4`, f.upper), fileEntry(`${f.prefix}/manifest.json`, f.manifest)])));
    const report = await verifyBundle(mem, bytesStream(tar, [7000]));
    assert.equal(report.compression, "zstd");
    assert.deepEqual(report.tar_formats, ["gnu"]);
    assert.deepEqual(report.snapshots.map((s) => s.integrity), snaps.map(({ algorithm, digest }) => ({ status: "verified", algorithm, recorded: digest, computed: digest })));
  });

  test("rule: the snapshots in archive order with their manifests' fields; the head is the last one no other names as parent; statuses verified, mismatch and not-recorded", T, async () => {
    const other = { ref: "docker.io/library/alpine:3.20", manifest_digest: `sha256:${"b".repeat(64)}` };
    const a = snapFixture({ labels: { team: "infra", tier: "db" } });
    const b = snapFixture({ parent: a.digest, integrity: false, size: 4096, pieces: [[0, "b"]] });
    const wrong = `sha256:${"0".repeat(64)}`;
    const c = snapFixture({ image: other, integrityDigest: wrong, size: 8192, pieces: [[100, "c"]] });
    const tar = tarOf(...[c, b, a].flatMap((f) => [fileEntry(`${f.prefix}/manifest.json`, f.manifest), fileEntry(`${f.prefix}/upper.ext4`, f.upper)]));
    const { fs, root, cleanup } = await BACKENDS[0]!.make();
    const path = await bundleAt(fs, `${root}/chain.tar`, tar);
    try {
      const report = await inspectBundle(fs, path);
      assert.deepEqual(report, {
        layout: "manifest",
        snapshots: [
          reportOf(c, { status: "mismatch", algorithm: "msb-sparse-sha256-v1", recorded: wrong, computed: sparseDigest(c.upper) }),
          reportOf(b, { status: "not-recorded", algorithm: null, recorded: null, computed: null }),
          reportOf(a, { status: "verified", algorithm: "msb-sparse-sha256-v1", recorded: sparseDigest(a.upper), computed: sparseDigest(a.upper) }),
        ],
        head: b.digest,
        suggested_name: null,
        cache_files: [],
        compression: "none",
        tar_formats: ["gnu"],
      });
      await assert.rejects(
        verifyBundle(fs, path),
        integrityRule(`${path}: ${c.prefix}: upper does not match its recorded integrity (msb-sparse-sha256-v1): manifest.json records ${wrong}, upper hashes to ${sparseDigest(c.upper)}`),
      );
    } finally {
      cleanup();
    }
  });

  test("rule: an integrity algorithm verify does not know is reported with nothing computed, and verify refuses it naming the snapshot", T, async () => {
    const recorded = { algorithm: "md5", digest: `md5:${"1".repeat(32)}` };
    const after = snapWith({}, recorded);
    const before = snapWith({ size: 4096, pieces: [[0, "x"]] }, recorded);
    // one manifest first, the other after its upper (hashed with every known algorithm, none of them md5)
    const tar = tarOf(fileEntry(`${after.prefix}/manifest.json`, after.manifest), fileEntry(`${after.prefix}/upper.ext4`, after.upper), fileEntry(`${before.prefix}/upper.ext4`, before.upper), fileEntry(`${before.prefix}/manifest.json`, before.manifest));
    const report = await inspectBundle(mem, bytesStream(tar));
    assert.deepEqual(report.snapshots.map((s) => s.integrity), [after, before].map(() => ({ status: "mismatch", algorithm: "md5", recorded: recorded.digest, computed: null })));
    await assert.rejects(
      verifyBundle(mem, bytesStream(tar), { label: "upload" }),
      integrityRule(`upload: ${after.prefix}: integrity algorithm "md5" is not supported (known: sha256, msb-sparse-sha256-v1, msb-file-merkle-blake3-v1)`),
    );
  });

  test("rule: a bundle that ends inside an upper's data is refused as truncated, whether or not its manifest came first", T, async () => {
    const f = snapFixture();
    const manifest = fileEntry(`${f.prefix}/manifest.json`, f.manifest);
    const upper = fileEntry(`${f.prefix}/upper.ext4`, f.upper);
    const truncated = (at: number, label = "archive stream") => errorRule(ArchiveError, "archive", new RegExp(`^${label}: archive truncated: input ends inside the data of entry "${f.prefix}/upper\\.ext4" \\(header at offset ${at}\\): 7288 of 12288 bytes missing$`));
    await assert.rejects(inspectBundle(mem, bytesStream(concatBytes(manifest, upper).subarray(0, manifest.length + 512 + 5000))), truncated(manifest.length));
    await assert.rejects(verifyBundle(mem, bytesStream(upper.subarray(0, 512 + 5000)), { label: "upload" }), truncated(0, "upload"));
  });

  test("rule: messages name the bundle: its path, the label given for a stream, else \"archive stream\"; progress counts every byte read", async () => {
    const wrong = `sha256:${"0".repeat(64)}`;
    const f = snapFixture({ integrityDigest: wrong });
    const tar = zstdCli(tarOf(fileEntry(`${f.prefix}/manifest.json`, f.manifest), fileEntry(`${f.prefix}/upper.ext4`, f.upper)));
    const rule = `${f.prefix}: upper does not match its recorded integrity (msb-sparse-sha256-v1): manifest.json records ${wrong}, upper hashes to ${sparseDigest(f.upper)}`;
    await assert.rejects(verifyBundle(mem, bytesStream(tar)), integrityRule(`archive stream: ${rule}`));
    const seen: number[] = [];
    await assert.rejects(verifyBundle(mem, bytesStream(tar, [1000]), { label: "upload", onProgress: (n) => seen.push(n) }), integrityRule(`upload: ${rule}`));
    assert.equal(seen.at(-1), tar.length, "every byte counted");
    assert.deepEqual(seen, [...seen].sort((x, y) => x - y), "a running total");
    assert.ok(seen.length > 1, "reported as it goes");
    const { fs, root, cleanup } = await BACKENDS[1]!.make();
    try {
      const path = await bundleAt(fs, `${root}/b.tar.zst`, tar);
      await assert.rejects(verifyBundle(fs, path, { label: "ignored" }), integrityRule(`${path}: ${rule}`), "a path names itself");
    } finally {
      cleanup();
    }
  });
});

describe("verify: the load's image-cache rule for the head's image, on what the pass kept", () => {
  test("rule: the cache carried must be the head image's; cache files are reported in archive order", T, async () => {
    const imgA = await imageFixture("a", 1, "python:3.12");
    const imgB = await imageFixture("b", 2, "python:3.13");
    const base = snapFixture({ image: { ref: imgA.ref, manifest_digest: imgA.manifest_digest } });
    const head = snapFixture({ image: { ref: imgB.ref, manifest_digest: imgB.manifest_digest }, parent: base.digest, size: 4096, pieces: [[0, "h"]] });
    const snaps = [base, head].flatMap((f) => [fileEntry(`${f.prefix}/manifest.json`, f.manifest), fileEntry(`${f.prefix}/upper.ext4`, f.upper)]);
    const reversed = [...imgB.files].reverse();
    const ok = await verifyBundle(mem, bytesStream(tarOf(...snaps, ...cacheEntries(reversed))));
    assert.equal(ok.head, head.digest);
    assert.deepEqual(ok.cache_files, reversed.map((c) => c.archivePath), "archive order, not name order");

    const cacheRule = (message: string) => errorRule(ImageCacheError, "image-cache", new RegExp(`^${esc(message)}$`));
    const metaB = imgB.files[0]!.archivePath;
    await assert.rejects(
      verifyBundle(mem, bytesStream(tarOf(...snaps, ...cacheEntries(imgA.files))), { label: "L" }),
      cacheRule(`L: the archive carries image cache files but no metadata for the snapshot's image ${imgB.ref} (expected ${metaB.slice("cache/".length)})`),
    );
    // the size of a streamed cache file is what the rule judges
    const layer = imgB.files.at(-1)!;
    const short = imgB.files.map((c) => (c === layer ? { ...c, bytes: c.bytes.subarray(0, 4000) } : c));
    await assert.rejects(
      verifyBundle(mem, bytesStream(tarOf(...snaps, ...cacheEntries(short))), { label: "L" }),
      cacheRule(`L: image cache file ${layer.archivePath} is not materialized (an EROFS image must be a non-empty multiple of 4096 bytes)`),
    );
    // the metadata bytes read are the ones the archive carried
    const edited = imgB.files.map((c, i) => (i === 0 ? { ...c, bytes: enc(JSON.stringify({ ...imgB.metadata, raw_config_json: "{}" })) } : c));
    await assert.rejects(verifyBundle(mem, bytesStream(tarOf(...snaps, ...cacheEntries(edited))), { label: "L" }), errorRule(ImageCacheError, "image-cache", /^L: cache\/manifests\/[0-9a-f]{64}\.json: image config digest mismatch: /));
  });
});

describe("inspect and verify: a microsandbox 0.6 bundle", () => {
  test("rule: verify checks integrity in the inventory's order, naming the payload's archive path, as the load does", T, async () => {
    const one = await crafted06(noise(3000, 21), "sha256");
    const two = await crafted06(noise(3000, 22), "sha256", one.digest);
    const [first, second] = one.digest < two.digest ? [one, two] : [two, one];
    const { members } = await craftBundle06([one, two], { memberHashes: false });
    for (const m of members.filter((x) => x.path.startsWith("files/"))) {
      m.data = m.data.slice();
      m.data[100]! ^= 1;
    }
    // the larger id's members first: archive order is not the inventory's
    const rank = (p: string) => (p === "archive.json" ? 2 : p.includes(second.digest.slice(7)) ? 0 : 1);
    members.sort((x, y) => rank(x.path) - rank(y.path));
    const tar = tarOf(...members.map((m) => fileEntry(m.path, m.data)));
    const report = await inspectBundle(mem, bytesStream(tar));
    assert.deepEqual(report.snapshots.map((s) => s.digest), [second.digest, first.digest], "the report keeps archive order");
    assert.equal(report.head, two.digest, "the head is archive.json's");
    const bad = first.payload!.slice();
    bad[100]! ^= 1;
    const where = `L: files/${first.digest.slice(7)}/upper.ext4`;
    const message = `${where}: upper does not match its recorded integrity (sha256): snapshot.json records ${sha256Of(first.payload!)}, upper hashes to ${sha256Of(bad)}`;
    await assert.rejects(verifyBundle(mem, bytesStream(tar), { label: "L" }), integrityRule(message));
    // a load names the bundle and says its staged copy is gone; the rule and both digests are the same
    const { fs, root, cleanup } = await BACKENDS[0]!.make();
    try {
      const path = await bundleAt(fs, `${root}/b.tar`, tar);
      await assert.rejects(new SnapshotStore(fs, `${root}/home`).load(path), errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(`${esc(message.slice(where.length))} \\(in the temporary copy unpacked into .*, now removed\\)$`)));
    } finally {
      cleanup();
    }
  });

  test("rule: a checkpoint has no payload to check (unsupported) and a snapshot that records no integrity is not checked: verify passes, the head is archive.json's", T, async () => {
    const ckText = descriptorText({ scope: "resumable", state: `{"kind":"checkpoint","checkpoint_id":"ckpt-1","manifest":"sha256:${"c".repeat(64)}"}` });
    const ck = { text: ckText, payload: null, integrity: "null", digest: sha256Of(enc(ckText)) };
    const plain = await crafted06(noise(2000, 32), null);
    for (const [s, integrity] of [
      [ck, { status: "unsupported", algorithm: null, recorded: null, computed: null }],
      [plain, { status: "not-recorded", algorithm: null, recorded: null, computed: null }],
    ] as const) {
      const { members } = await craftBundle06([s], { memberHashes: true });
      const report = await verifyBundle(mem, bytesStream(tarOf(...members.map((m) => fileEntry(m.path, m.data)))));
      assert.equal(report.head, s.digest);
      assert.deepEqual(report.snapshots.map((r) => [r.state_kind, r.integrity]), [[s === ck ? "checkpoint" : "file", integrity]]);
    }
    // and in a manifest.json bundle
    const f = snapFixture({ integrity: false });
    const report = await verifyBundle(mem, bytesStream(tarOf(fileEntry(`${f.prefix}/manifest.json`, f.manifest), fileEntry(`${f.prefix}/upper.ext4`, f.upper))));
    assert.deepEqual(report.snapshots[0]!.integrity, { status: "not-recorded", algorithm: null, recorded: null, computed: null });
  });

  test("rule: a descriptor that does not parse fails inspect and verify with the load's InvalidManifest, naming it", T, async () => {
    const text = descriptorText({ state: fileState(2000, `{"algorithm":"sha256","digest":"sha256:${"0".repeat(64)}"}`) }).replace('"schema":1', '"schema":2');
    const bad = { text, payload: noise(2000, 33), integrity: "null", digest: sha256Of(enc(text)) };
    const tar = tarOf(...(await craftBundle06([bad], { memberHashes: false })).members.map((m) => fileEntry(m.path, m.data)));
    const rule = errorRule(InvalidManifest, "invalid-manifest", new RegExp(`^L: snapshots/${bad.digest.slice(7)}/snapshot\\.json: field "schema" must be 1$`));
    await assert.rejects(inspectBundle(mem, bytesStream(tar), { label: "L" }), rule);
    await assert.rejects(verifyBundle(mem, bytesStream(tar), { label: "L" }), rule);
  });

  test("rule: inspect reads the head from archive.json, and refuses one that does not parse, naming it", T, async () => {
    const s = await crafted06(noise(2000, 31), null);
    const { members } = await craftBundle06([s], { memberHashes: false, inventoryText: (t) => t.replace('"schema":1', '"schema":2') });
    const tar = tarOf(...members.map((m) => fileEntry(m.path, m.data)));
    await assert.rejects(inspectBundle(mem, bytesStream(tar), { label: "L" }), errorRule(ArchiveError, "archive", /^L: archive\.json: archive\.json schema must be 1$/));
  });

  test("rule: a payload its descriptor names but the archive lacks is reported missing; images/ files are reported in archive order", T, async () => {
    const s = await crafted06(noise(2000, 30), "sha256");
    const { members } = await craftBundle06([s], { memberHashes: false, mutate: (_inv, m) => m.splice(m.findIndex((x) => x.path.startsWith("files/")), 1) });
    const images = [`images/vmdk/sha256_${"c".repeat(64)}.vmdk`, `images/layers/sha256_${"d".repeat(64)}.erofs`, `images/manifests/${"e".repeat(64)}.json`];
    const tar = tarOf(...members.map((m) => fileEntry(m.path, m.data)), ...images.map((p) => fileEntry(p, p.endsWith(".json") ? "{}" : "x")));
    const report = await inspectBundle(mem, bytesStream(tar));
    assert.equal(report.layout, "snapshot");
    assert.deepEqual(report.snapshots.map((r) => [r.name, r.integrity]), [[s.digest.slice(7), { status: "missing", algorithm: "sha256", recorded: sha256Of(s.payload!), computed: null }]]);
    assert.deepEqual(report.cache_files, images);
  });
});
