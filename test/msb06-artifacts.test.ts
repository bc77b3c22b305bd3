/**
 * microsandbox 0.6 artifacts (issue 12, docs/format.md §4): the strict
 * `snapshot.json` reader and its identity, BLAKE3 and the Merkle integrity
 * (cross-checked against b3sum and a simple reference), and a home holding
 * both artifact forms side by side.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { blake3Hex } from "../wasm/mod.js";
import {
  canonicalDescriptorText,
  descriptorDigest,
  normalizeRfc3339,
  parseDescriptor,
} from "../src/descriptor.js";
import { InvalidManifest, SnapshotIntegrityError } from "../src/errors.js";
import { serdeNumberText } from "../src/json.js";
import { MerkleBuilder, merkleRootOfFile } from "../src/merkle.js";
import { openSnapshot, verifySnapshot } from "../src/snapshot.js";
import { readSmallFile } from "../src/io.js";
import { BACKENDS, IMAGE, makeHome, noise, tree, writeSparse } from "./helpers/homes.js";
import {
  b3sumHex,
  descriptorText,
  fileState,
  referenceMerkleRoot,
  sha256Of,
  wasmBlake3,
  write06,
  writeCheckpoint06,
} from "./helpers/msb06-reference.js";

const GOLDEN_TEXT =
  '{"schema":1,"artifact":"snapshot","scope":"disk","created_at":"2026-05-01T12:00:00Z","parent":null,"image":{"ref":"docker.io/library/python:3.12","manifest_digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"source_sandbox":"build-1","state":{"kind":"file","format":"raw","fstype":"ext4","upper":{"file":"upper.ext4","size_bytes":4294967296,"integrity":{"algorithm":"msb-sparse-sha256-v1","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}},"labels":{"owner":"alice","stage":"post-pip-install"},"extensions":{},"requires":[]}';
const GOLDEN_DIGEST = "sha256:5b9ca7611f40ec61fea70c1b1ac9881ed63a16091922682028222cdaef997572";
const EMPTY_ROOT = "blake3:1f44fec2aa3a7a1725f0f626b0599c99526f5a1e7f2817cd50b695597bce05fa";
const HELLO_ROOT = "blake3:733a84a145df6c2139c33096e7584c1d8f42b0b981ec7e847b1bf6db73bec941";
const enc = (s: string) => new TextEncoder().encode(s);

describe("snapshot.json: golden identity (docs/format.md §4)", () => {
  test("the docs/format.md §3 inputs give the golden canonical bytes and digest", async () => {
    const d = parseDescriptor(GOLDEN_TEXT);
    assert.equal(canonicalDescriptorText(d), GOLDEN_TEXT);
    assert.equal(await descriptorDigest(d), GOLDEN_DIGEST);
    assert.equal(sha256Of(enc(GOLDEN_TEXT)), GOLDEN_DIGEST); // node:crypto agrees on the bytes
  });
  test("reordered keys, pretty printing and a +01:00 timestamp keep the identity", async () => {
    const o = JSON.parse(GOLDEN_TEXT);
    const reordered = { requires: [], extensions: {}, labels: { stage: o.labels.stage, owner: o.labels.owner }, state: { upper: o.state.upper, fstype: "ext4", format: "raw", kind: "file" }, ...o };
    reordered.created_at = "2026-05-01T13:00:00+01:00";
    const text = JSON.stringify(reordered, null, 2);
    assert.notEqual(text, GOLDEN_TEXT);
    assert.equal(await descriptorDigest(parseDescriptor(text)), GOLDEN_DIGEST);
    for (const t of ["2026-05-01T12:00:00.000Z", "2026-05-01t07:00:00-05:00", "2026-05-02T00:00:00+12:00", "2026-05-01T12:00:00.000000000z"]) {
      assert.equal(await descriptorDigest(parseDescriptor(JSON.stringify({ ...o, created_at: t }))), GOLDEN_DIGEST, t);
    }
  });
  test("created_at normalisation: UTC, Z, trailing fractional zeros dropped, day/month/year rollover", () => {
    assert.equal(normalizeRfc3339("2026-05-01T13:00:00.500+01:00"), "2026-05-01T12:00:00.5Z");
    assert.equal(normalizeRfc3339("2026-01-01T00:30:00+01:00"), "2025-12-31T23:30:00Z");
    assert.equal(normalizeRfc3339("2024-02-28T23:00:00-01:00"), "2024-02-29T00:00:00Z");
    assert.equal(normalizeRfc3339("2026-05-01T12:00:00.123456789123Z"), "2026-05-01T12:00:00.123456789Z");
    for (const bad of ["2026-05-01", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-05-01T12:00:60Z", "2026-05-01T12:00:00", "0000-01-01T00:00:00+00:01", " 2026-05-01T12:00:00Z"]) {
      assert.equal(normalizeRfc3339(bad), null, bad);
    }
  });
  test("extensions values are key-sorted recursively; numbers as serde_json writes them", async () => {
    const o = JSON.parse(GOLDEN_TEXT);
    const text = JSON.stringify(o).replace('"extensions":{}', '"extensions":{"z.k":{"b":1,"a":[{"d":1e2,"c":2}]},"a.k":1.50}').replace('"requires":[]', '"requires":["a.k"]');
    const d = parseDescriptor(text);
    assert.match(canonicalDescriptorText(d), /"extensions":\{"a\.k":1\.5,"z\.k":\{"a":\[\{"c":2,"d":100\.0\}\],"b":1\}\},"requires":\["a\.k"\]\}$/);
    const digest = await descriptorDigest(d);
    assert.notEqual(digest, GOLDEN_DIGEST);
    // the same extension written in another key order is the same snapshot
    const other = text.replace('{"b":1,"a":[{"d":1e2,"c":2}]}', '{"a":[{"c":2,"d":100.0}],"b":1}');
    assert.equal(await descriptorDigest(parseDescriptor(other)), digest);
  });
  test("serde_json number text", () => {
    const cases: [string, string][] = [
      ["1", "1"], ["-3", "-3"], ["1.0", "1.0"], ["1.50", "1.5"], ["1e2", "100.0"], ["-0", "-0.0"], ["0.0", "0.0"],
      ["18446744073709551615", "18446744073709551615"], ["18446744073709551616", "1.8446744073709552e19"],
      ["1e16", "1e16"], ["1e15", "1000000000000000.0"], ["0.0001", "0.0001"], ["0.00001", "0.00001"], ["1.5e-7", "1.5e-7"], ["123.456e5", "12345600.0"],
    ];
    for (const [raw, want] of cases) assert.equal(serdeNumberText(raw), want, raw);
    assert.equal(serdeNumberText("1e999"), null);
  });
  test("an unknown requires key parses (it blocks boot, which snapbundle never does)", () => {
    const o = JSON.parse(GOLDEN_TEXT);
    const d = parseDescriptor(JSON.stringify({ ...o, extensions: { "x.future": true }, requires: ["x.future"] }));
    assert.deepEqual(d.requires, ["x.future"]);
  });
});

describe("snapshot.json: refused, naming the field and rule", () => {
  const base = () => JSON.parse(GOLDEN_TEXT);
  const merkle = (o: any, patch: object) => {
    o.state.upper.integrity = { algorithm: "msb-file-merkle-blake3-v1", root: `blake3:${"1".repeat(64)}`, logical_size: o.state.upper.size_bytes, leaf_size: 65536, ...patch };
    return o;
  };
  const cases: [string, (o: any) => unknown, RegExp][] = [
    ["unknown top-level field", (o) => ({ ...o, extra: 1 }), /"extra" is not a known field/],
    ["unknown field in state.upper", (o) => ((o.state.upper.x = 1), o), /"state.upper.x" is not a known field/],
    ["unknown field in integrity", (o) => ((o.state.upper.integrity.x = 1), o), /"state.upper.integrity.x" is not a known field/],
    ["missing integrity key", (o) => (delete o.state.upper.integrity, o), /"state.upper.integrity" is missing/],
    ["missing parent key", (o) => (delete o.parent, o), /"parent" is missing/],
    ["missing requires", (o) => (delete o.requires, o), /"requires" is missing/],
    ["schema 42", (o) => ({ ...o, schema: 42 }), /"schema" must be 1/],
    ["artifact", (o) => ({ ...o, artifact: "snapshot-archive" }), /"artifact" must be "snapshot"/],
    ["file state with resumable scope", (o) => ({ ...o, scope: "resumable" }), /"scope" must be "disk" for file state/],
    ["upper.file ../outside.ext4", (o) => ((o.state.upper.file = "../outside.ext4"), o), /"state.upper.file" must be one normal path component/],
    ["upper.file reserved snapshot.json", (o) => ((o.state.upper.file = "snapshot.json"), o), /"state.upper.file"/],
    ["upper.file reserved .manifest.json.legacy", (o) => ((o.state.upper.file = ".manifest.json.legacy"), o), /"state.upper.file"/],
    ["upper.file reserved .snapshot-migration.lock", (o) => ((o.state.upper.file = ".snapshot-migration.lock"), o), /"state.upper.file"/],
    ["unsafe integer size", (o) => ((o.state.upper.size_bytes = 2 ** 53), o), /2\^53-1/],
    ["uppercase digest", (o) => ({ ...o, image: { ...o.image, manifest_digest: `sha256:${"A".repeat(64)}` } }), /"image.manifest_digest" must be "sha256:" followed by 64 lowercase hex/],
    ["short parent digest", (o) => ({ ...o, parent: "sha256:abc" }), /"parent" must be "sha256:"/],
    ["non-sha256 integrity digest", (o) => ((o.state.upper.integrity.digest = `blake3:${"b".repeat(64)}`), o), /"state.upper.integrity.digest"/],
    ["unknown integrity algorithm", (o) => ((o.state.upper.integrity.algorithm = "md5"), o), /"state.upper.integrity.algorithm" must be/],
    ["merkle logical_size ≠ size_bytes", (o) => merkle(o, { logical_size: 1 }), /logical_size" must equal state.upper.size_bytes/],
    ["merkle leaf_size 4096", (o) => merkle(o, { leaf_size: 4096 }), /leaf_size" must be 65536/],
    ["merkle root uppercase", (o) => merkle(o, { root: `blake3:${"A".repeat(64)}` }), /root" must be "blake3:"/],
    ["requires unsorted", (o) => ({ ...o, extensions: { a: 1, b: 2 }, requires: ["b", "a"] }), /"requires" must be sorted/],
    ["requires duplicate", (o) => ({ ...o, extensions: { a: 1 }, requires: ["a", "a"] }), /"requires" must be sorted and without duplicates/],
    ["requires key not in extensions", (o) => ({ ...o, requires: ["a"] }), /"requires\[0\]" names "a", which is not a key of extensions/],
    ["created_at not RFC 3339", (o) => ({ ...o, created_at: "yesterday" }), /"created_at" must be an RFC 3339 timestamp/],
    ["empty fstype", (o) => ((o.state.fstype = ""), o), /"state.fstype" must not be empty/],
    ["empty image ref", (o) => ({ ...o, image: { ...o.image, ref: "" } }), /"image.ref" must not be empty/],
    ["state kind", (o) => ((o.state.kind = "dir"), o), /"state.kind" must be "file" or "checkpoint"/],
    ["size_bytes -0", (o) => JSON.stringify(o).replace("4294967296", "-0"), /"state.upper.size_bytes" must be a non-negative integer/],
  ];
  for (const [name, mutate, re] of cases) {
    test(name, () => {
      const v = mutate(base());
      const text = typeof v === "string" ? v : JSON.stringify(v);
      assert.throws(() => parseDescriptor(text, "/h/snapshots/x/snapshot.json"), (e) => e instanceof InvalidManifest && re.test(e.message) && e.message.includes("/h/snapshots/x/snapshot.json"));
    });
  }
  for (const [where, text] of [
    ["top level", GOLDEN_TEXT.replace('"schema":1,', '"schema":1,"schema":1,')],
    ["labels", GOLDEN_TEXT.replace('"owner":"alice"', '"owner":"alice","owner":"bob"')],
    ["state.upper", GOLDEN_TEXT.replace('"file":"upper.ext4"', '"file":"upper.ext4","file":"upper.ext4"')],
    ["deep in extensions", GOLDEN_TEXT.replace('"extensions":{}', '"extensions":{"k":{"a":[{"x":1,"x":2}]}}')],
  ] as const) {
    test(`duplicate key at ${where}`, () => {
      assert.throws(() => parseDescriptor(text), (e) => e instanceof InvalidManifest && /duplicate key/.test(e.message));
    });
  }
});

describe("BLAKE3 through wasm/ against b3sum", () => {
  test("raw BLAKE3 of several inputs equals b3sum", async () => {
    for (const data of [new Uint8Array(), enc("abc"), noise(1024 * 1024 + 7, 3), new Uint8Array(65537)]) {
      assert.equal(await blake3Hex(data), b3sumHex(data));
    }
  });
  test("the reference Merkle root computed with b3sum equals the one with wasm/'s BLAKE3 and ours", async () => {
    const bytes = new Uint8Array(3 * 65536 + 5);
    bytes.set(noise(100, 9), 70_000);
    bytes.set(enc("tail"), bytes.length - 4);
    const viaB3sum = await referenceMerkleRoot(bytes); // b3sum is the reference's default
    assert.equal(await referenceMerkleRoot(bytes, wasmBlake3), viaB3sum);
    const m = new MerkleBuilder(bytes.length);
    await m.addChunk(bytes, null);
    assert.equal(await m.finish(), viaB3sum);
  });
});

describe("msb-file-merkle-blake3-v1", () => {
  test("upstream goldens: empty and hello", async () => {
    const empty = new MerkleBuilder(0);
    assert.equal(await empty.finish(), EMPTY_ROOT);
    const hello = new MerkleBuilder(5);
    await hello.addChunk(enc("hello"), null);
    assert.equal(await hello.finish(), HELLO_ROOT);
    assert.equal(await referenceMerkleRoot(new Uint8Array()), EMPTY_ROOT);
    assert.equal(await referenceMerkleRoot(enc("hello")), HELLO_ROOT);
  });
  test("holes hash like zeros; zero shortcuts match the plain tree (padding, odd leaf counts)", async () => {
    for (const size of [65536, 65537, 5 * 65536 + 1, 9 * 65536, 17 * 65536 - 3]) {
      const bytes = new Uint8Array(size);
      const at = size > 2 * 65536 + 311 ? 2 * 65536 + 11 : size - 300;
      bytes.set(noise(300, size), at);
      const want = await referenceMerkleRoot(bytes);
      const dense = new MerkleBuilder(size);
      await dense.addChunk(bytes, null);
      assert.equal(await dense.finish(), want, `dense ${size}`);
      if (at < 2 * 65536) continue;
      const zeros = new MerkleBuilder(size);
      await zeros.addChunk(bytes.subarray(0, 2 * 65536), []); // two all-zero leaves, declared as holes
      await zeros.addChunk(bytes.subarray(2 * 65536), null);
      assert.equal(await zeros.finish(), want, `holes ${size}`);
    }
    const allZero = new MerkleBuilder(64 * 65536);
    await allZero.addZeros(64 * 65536);
    assert.equal(await allZero.finish(), await referenceMerkleRoot(new Uint8Array(64 * 65536)));
  });
  test("a change in one byte changes the root", async () => {
    const a = new Uint8Array(200_000);
    const b = a.slice();
    b[150_000] = 1;
    assert.notEqual(await referenceMerkleRoot(a), await referenceMerkleRoot(b));
    const m = new MerkleBuilder(b.length);
    await m.addChunk(b, null);
    assert.equal(await m.finish(), await referenceMerkleRoot(b));
  });
  for (const backend of BACKENDS) {
    test(`merkleRootOfFile over a sparse file equals the reference (${backend.label})`, async () => {
      const { fs, root, cleanup } = await makeHome(backend);
      try {
        const size = 6 * 1024 * 1024 + 123; // more than one read chunk, a partial last leaf
        const pieces: [number, Uint8Array][] = [[5000, noise(9000, 1)], [4 * 1024 * 1024 - 10, noise(20, 2)], [size - 7, enc("the end")]];
        await writeSparse(fs, `${root}/u`, size, pieces);
        const bytes = new Uint8Array(size);
        for (const [o, d] of pieces) bytes.set(d, o);
        assert.equal(await merkleRootOfFile(fs, `${root}/u`, size), await referenceMerkleRoot(bytes));
        await writeSparse(fs, `${root}/e`, 0, []);
        assert.equal(await merkleRootOfFile(fs, `${root}/e`, 0), EMPTY_ROOT);
      } finally {
        cleanup();
      }
    });
  }
});

for (const backend of BACKENDS) {
  describe(`a microsandbox 0.6 home on ${backend.label}`, () => {
    test("a 0.6 home lists, inspects and verifies every integrity algorithm; checkpoint is unsupported, not an error", async () => {
      const { fs, home, store, cleanup } = await makeHome(backend);
      try {
        const snaps = `${home}/snapshots`;
        const pieces: [number, Uint8Array][] = [[4096, noise(5000, 4)], [300_000, enc("hello")]];
        const made: Record<string, { digest: string }> = {};
        for (const alg of ["sha256", "msb-sparse-sha256-v1", "msb-file-merkle-blake3-v1", null] as const) {
          made[alg ?? "none"] = await write06(fs, `${snaps}/${alg ?? "none"}`, { size: 400_000, pieces, integrity: alg });
        }
        // a 0.6 load names its directory by the 64-hex digest; a migrated artifact keeps its legacy bytes
        const hexDir = await write06(fs, `${snaps}/tmp-hex`, { size: 70_000, pieces: [[0, enc("x")]], integrity: "msb-file-merkle-blake3-v1", labels: { k: "v" } });
        await fs.rename(`${snaps}/tmp-hex`, `${snaps}/${hexDir.digest.slice(7)}`);
        await fs.open(`${snaps}/${hexDir.digest.slice(7)}/.manifest.json.legacy`, "w").then((h) => h.close());
        await fs.open(`${snaps}/${hexDir.digest.slice(7)}/.snapshot-migration.lock`, "w").then((h) => h.close());
        await fs.mkdir(`${snaps}/.other.staging`);
        await write06(fs, `${snaps}/.other.staging`, { size: 10, integrity: null });
        const ck = await writeCheckpoint06(fs, `${snaps}/ckpt`);

        const { snapshots, problems } = await store.list();
        assert.deepEqual(problems, []);
        assert.deepEqual(snapshots.map((s) => s.name), ["ckpt", "msb-file-merkle-blake3-v1", "msb-sparse-sha256-v1", "none", "sha256", hexDir.digest.slice(7)].sort());
        assert.ok(snapshots.every((s) => s.form === "snapshot"));
        const ckInfo = snapshots.find((s) => s.name === "ckpt")!;
        assert.equal(ckInfo.digest, ck.digest);
        assert.equal(ckInfo.state_kind, "checkpoint");
        assert.equal(ckInfo.scope, "resumable");
        for (const [name, m] of Object.entries(made)) assert.equal(snapshots.find((s) => s.name === name)!.digest, m.digest, name);

        for (const alg of ["sha256", "msb-sparse-sha256-v1", "msb-file-merkle-blake3-v1"]) {
          const v = await store.verify(alg);
          assert.equal(v.integrity.status, "verified", alg);
          assert.equal(v.integrity.algorithm, alg);
        }
        assert.equal((await store.verify("none")).integrity.status, "not-recorded");
        assert.equal((await store.verify("ckpt")).integrity.status, "unsupported");
        assert.equal((await store.verify(hexDir.digest)).integrity.status, "verified"); // by digest
        assert.equal((await store.resolve(hexDir.digest.slice(7))).descriptor!.labels.k, "v"); // by 64-hex name

        // a same-size edit passes open and fails verify, for every algorithm
        for (const alg of ["sha256", "msb-sparse-sha256-v1", "msb-file-merkle-blake3-v1"]) {
          const h = await fs.open(`${snaps}/${alg}/upper.ext4`, "r+");
          await h.write(enc("X"), 300_001);
          await h.close();
          const snap = await openSnapshot(fs, `${snaps}/${alg}`);
          await assert.rejects(verifySnapshot(fs, snap), (e) => e instanceof SnapshotIntegrityError && /snapshot\.json records/.test(e.message), alg);
        }
        // null integrity: not recorded, even after tampering
        const h = await fs.open(`${snaps}/none/upper.ext4`, "r+");
        await h.write(enc("X"), 1);
        await h.close();
        assert.equal((await store.verify("none")).integrity.status, "not-recorded");
      } finally {
        cleanup();
      }
    });

    test("open refuses a tampered size or a missing payload (metadata only)", async () => {
      const { fs, home, store, cleanup } = await makeHome(backend);
      try {
        await write06(fs, `${home}/snapshots/a`, { size: 8192, integrity: null });
        const h = await fs.open(`${home}/snapshots/a/upper.ext4`, "r+");
        await h.setLength(4096);
        await h.close();
        await assert.rejects(store.resolve("a"), /the upper is 4096 bytes but the snapshot\.json records size_bytes 8192/);
        await fs.remove(`${home}/snapshots/a/upper.ext4`);
        await assert.rejects(store.resolve("a"), /does not exist/);
        const { problems } = await store.list();
        assert.equal(problems.length, 1);
      } finally {
        cleanup();
      }
    });

    test("a mixed home: manifest.json and snapshot.json side by side; ls, inspect, verify, rm, reindex", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        await writeSparse(fs, `${root}/u`, 100_000, [[10, noise(50, 5)]]);
        const old = await store.create("old", { upper: `${root}/u`, image: IMAGE, integrity: true });
        assert.equal(old.form, "manifest"); // an empty home keeps today's form
        assert.equal(await store.homeForm(), "manifest");
        const neu = await write06(fs, `${home}/snapshots/new`, { size: 20_000, pieces: [[0, enc("n")]], integrity: "msb-sparse-sha256-v1" });
        assert.equal(await store.homeForm(), "snapshot");
        // create follows the home: snapshot.json with Merkle integrity for --integrity
        const made = await store.create("made", { upper: `${root}/u`, image: IMAGE, integrity: true, labels: { b: "2", a: "1" }, createdAt: "2026-05-01T13:00:00+01:00" });
        assert.equal(made.form, "snapshot");
        const bytes = await readSmallFile(fs, `${home}/snapshots/made/snapshot.json`, 1 << 20);
        const text = new TextDecoder().decode(bytes);
        assert.equal(sha256Of(bytes), made.digest); // written exactly canonical: file hash = identity
        const upperBytes = new Uint8Array(100_000);
        upperBytes.set(noise(50, 5), 10);
        assert.equal(
          text,
          descriptorText({
            created_at: "2026-05-01T12:00:00Z",
            labels: { a: "1", b: "2" },
            state: fileState(100_000, `{"algorithm":"msb-file-merkle-blake3-v1","root":"${await referenceMerkleRoot(upperBytes)}","logical_size":100000,"leaf_size":65536}`),
          }),
        );
        assert.equal((await tree(fs, `${home}/snapshots/made`)).join(","), "snapshot.json,upper.ext4");
        // an explicit form overrides the home's
        const forced = await store.create("forced", { upper: `${root}/u`, image: IMAGE, form: "manifest" });
        assert.equal(forced.form, "manifest");
        assert.equal((await tree(fs, `${home}/snapshots/forced`)).join(","), "manifest.json,upper.ext4");
        await assert.rejects(store.create("a:b", { upper: `${root}/u`, image: IMAGE }), /microsandbox 0\.6 refuses/);

        const { snapshots } = await store.list();
        assert.deepEqual(snapshots.map((s) => [s.name, s.form]), [["forced", "manifest"], ["made", "snapshot"], ["new", "snapshot"], ["old", "manifest"]]);
        for (const n of ["old", "new", "made"]) assert.equal((await store.verify(n)).integrity.status, "verified", n);
        assert.equal((await store.verify("forced")).integrity.status, "not-recorded");
        assert.equal((await store.resolve("new")).digest, neu.digest);

        // a snapshot.json beside a manifest.json: the descriptor wins (as microsandbox reads it), nothing is rewritten
        const oldManifest = await readSmallFile(fs, `${home}/snapshots/old/manifest.json`, 1 << 20);
        await store.reindex();
        assert.deepEqual(await readSmallFile(fs, `${home}/snapshots/old/manifest.json`, 1 << 20), oldManifest);

        await store.remove("new");
        await store.remove(old.digest);
        assert.deepEqual((await store.list()).snapshots.map((s) => s.name), ["forced", "made"]);
        const r = await store.reindex();
        assert.deepEqual(r.snapshots.map((s) => s.form), ["manifest", "snapshot"]);
      } finally {
        cleanup();
      }
    });

    test("rm refuses a snapshot.json parent with children; create with a 0.6 parent digest", async () => {
      const { fs, root, home, store, cleanup } = await makeHome(backend);
      try {
        const p = await write06(fs, `${home}/snapshots/p`, { size: 4096, integrity: null });
        await writeSparse(fs, `${root}/u`, 4096, [[0, "c"]]);
        const c = await store.create("c", { upper: `${root}/u`, image: IMAGE, parent: p.digest });
        assert.equal(c.parent, p.digest);
        assert.equal(c.form, "snapshot");
        await assert.rejects(store.remove("p"), /is the parent of/);
        await assert.rejects(store.create("d", { upper: `${root}/u`, image: IMAGE, parent: "sha256:abc" }), /64 lowercase hex/);
      } finally {
        cleanup();
      }
    });
  });
}
