/**
 * The image cache rules of docs/format.md §8.2 and §10 step 7, owned by `src/archive/image-cache.ts`:
 * reading and shaping image metadata, its match with the snapshot, the files
 * an image needs and their state, what a carried cache may hold (load,
 * verify BUNDLE), and save's pre-check of the home's cache.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type CachedImageMetadata,
  type CarriedCache,
  cacheFileProblem,
  checkCarriedCache,
  expectedCacheFiles,
  MAX_METADATA_BYTES,
  parseImageMetadata,
  readImageMetadataFile,
  requiredCacheFiles,
  validateCachedMetadata,
} from "../src/archive/image-cache.js";
import { EROFS_RULE } from "../src/archive/erofs.js";
import { ImageCacheError } from "../src/errors.js";
import type { FileInfo } from "../src/fs/types.js";
import { HomeLayout } from "../src/layout.js";
import { type Manifest, parseManifest } from "../src/manifest.js";
import { snapFixture } from "./helpers/archive-bundle.js";
import { errorRule, fsErrorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { BACKENDS, writeSparse } from "./helpers/homes.js";
import { minimalErofs } from "./helpers/erofs.js";
import { buildImage } from "./helpers/image.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = (s: string) => new TextEncoder().encode(s);
const sha = (s: string) => "sha256:" + createHash("sha256").update(s).digest("hex");
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const cacheRule = (message: string | RegExp) => errorRule(ImageCacheError, "image-cache", typeof message === "string" ? new RegExp(`^${esc(message)}$`) : message);

/** `cache/manifests/<key>.json` of `python:3.12` (`docker.io/library/python:3.12`), the key docs/format.md §2 gives. */
const PY_KEY = "9f39de2cc07aeb65b0c8d87b811d86acce5f86cd7b201b9e906d875b03aa70ff";
const PY_REF = "python:3.12";

/** Self-consistent metadata as microsandbox caches it: raw JSON hashing to its digests, opaque extras. */
function metadataDoc(layers = 2, salt = "") {
  const raw_manifest_json = JSON.stringify({ schemaVersion: 2, salt });
  const raw_config_json = JSON.stringify({ architecture: "amd64", salt });
  return {
    manifest_digest: sha(raw_manifest_json),
    config_digest: sha(raw_config_json),
    raw_manifest_json,
    raw_config_json,
    config: { opaque: true },
    layers: Array.from({ length: layers }, (_, i) => ({ digest: sha(`layer-${i}`), media_type: "application/vnd.oci.image.layer.v1.tar+gzip", size_bytes: 100 + i, diff_id: sha(`diff-${i}`) })),
  };
}

/** A snapshot manifest whose image is `ref` at `manifest_digest`. */
function manifestOf(manifest_digest: string, ref = PY_REF): Manifest {
  return parseManifest(snapFixture({ image: { ref, manifest_digest } }).manifest);
}

const file = (size: number): FileInfo => ({ kind: "file", size, mtimeMs: 0, allocatedBytes: null });
const dir: FileInfo = { kind: "directory", size: 0, mtimeMs: 0, allocatedBytes: null };
const safe = (digest: string) => digest.replace(":", "_");

describe("image metadata: read, shape, match", () => {
  for (const b of BACKENDS) {
    test(`rule: image metadata is read only from a regular file of at most ${MAX_METADATA_BYTES} bytes, each refusal naming the path (${b.label})`, T, async () => {
      const { fs, root, cleanup } = await b.make();
      try {
        const p = `${root}/m.json`;
        await assert.rejects(readImageMetadataFile(fs, p), cacheRule(`image metadata ${p} is missing`));
        await fs.mkdir(p);
        await assert.rejects(readImageMetadataFile(fs, p), cacheRule(`image metadata ${p} must be a regular file, not a directory`));
        const doc = metadataDoc();
        await writeSparse(fs, `${root}/real.json`, 0, [[0, JSON.stringify(doc)]]);
        await fs.symlink(`${root}/real.json`, `${root}/link.json`);
        await assert.rejects(readImageMetadataFile(fs, `${root}/link.json`), cacheRule(`image metadata ${root}/link.json must be a regular file, not a symlink`));
        const { config: _, ...checked } = doc;
        assert.deepEqual(await readImageMetadataFile(fs, `${root}/real.json`), { ...checked, layers: doc.layers.map((l) => ({ digest: l.digest, diff_id: l.diff_id })) });
        await writeSparse(fs, `${root}/huge.json`, MAX_METADATA_BYTES + 1, [[0, "{"]]);
        await assert.rejects(readImageMetadataFile(fs, `${root}/huge.json`), cacheRule(`image metadata ${root}/huge.json is larger than ${MAX_METADATA_BYTES} bytes`));
        await writeSparse(fs, `${root}/bad.json`, 0, [[0, "{"]]);
        await assert.rejects(readImageMetadataFile(fs, `${root}/bad.json`), cacheRule(new RegExp(`^image metadata ${esc(root)}/bad\\.json is not valid UTF-8 JSON: `)));
      } finally {
        cleanup();
      }
    });
  }

  test("rule: a read error of the metadata is the filesystem's own, not an ImageCacheError", T, async () => {
    const { fs: inner, root, cleanup } = await BACKENDS[0]!.make();
    try {
      await writeSparse(inner, `${root}/m.json`, 0, [[0, JSON.stringify(metadataDoc())]]);
      const fs = new FaultyFs(inner);
      fs.arm({ at: 1, kind: "read", errno: "EIO" });
      await assert.rejects(readImageMetadataFile(fs, `${root}/m.json`), fsErrorRule("EIO", "read"));
    } finally {
      cleanup();
    }
  });

  test("rule: metadata is strict UTF-8 JSON whose four digest and raw fields are strings and whose layers each have a string digest and diff_id; extras are dropped", () => {
    const what = "a.tar: image metadata cache/manifests/k.json";
    const doc = metadataDoc(2);
    const parse = (v: unknown) => parseImageMetadata(enc(JSON.stringify(v)), what);
    assert.deepEqual(parse(doc), {
      manifest_digest: doc.manifest_digest,
      config_digest: doc.config_digest,
      raw_manifest_json: doc.raw_manifest_json,
      raw_config_json: doc.raw_config_json,
      layers: doc.layers.map((l) => ({ digest: l.digest, diff_id: l.diff_id })),
    });
    assert.throws(() => parseImageMetadata(new Uint8Array([0x7b, 0xff, 0x7d]), what), cacheRule(new RegExp(`^${esc(what)} is not valid UTF-8 JSON: `)));
    assert.throws(() => parseImageMetadata(enc('{"a":1,"a":2}'), what), cacheRule(new RegExp(`^${esc(what)} is not valid UTF-8 JSON: .*duplicate key "a"`)));
    assert.throws(() => parse(null), cacheRule(`${what}: field "manifest_digest" must be a string`));
    for (const k of ["manifest_digest", "config_digest", "raw_manifest_json", "raw_config_json"] as const) {
      assert.throws(() => parse({ ...doc, [k]: undefined }), cacheRule(`${what}: field "${k}" must be a string`), `${k} missing`);
      assert.throws(() => parse({ ...doc, [k]: 7 }), cacheRule(`${what}: field "${k}" must be a string`), `${k} a number`);
    }
    assert.throws(() => parse({ ...doc, layers: undefined }), cacheRule(`${what}: field "layers" must be an array`));
    assert.throws(() => parse({ ...doc, layers: { 0: doc.layers[0] } }), cacheRule(`${what}: field "layers" must be an array`));
    assert.throws(() => parse({ ...doc, layers: [doc.layers[0], null] }), cacheRule(`${what}: layers[1] must have string "digest" and "diff_id"`));
    assert.throws(() => parse({ ...doc, layers: [{ ...doc.layers[0], digest: 1 }] }), cacheRule(`${what}: layers[0] must have string "digest" and "diff_id"`));
    assert.throws(() => parse({ ...doc, layers: [doc.layers[0], { digest: doc.layers[1]!.digest }] }), cacheRule(`${what}: layers[1] must have string "digest" and "diff_id"`));
    assert.deepEqual(parse({ ...doc, layers: [] }).layers, [], "an image without layers");
  });

  test("rule: metadata matches the snapshot: its image's manifest digest, sha256 of the raw manifest and config, digest-form layers", T, async () => {
    const where = "a.tar: cache/manifests/k.json";
    const doc = metadataDoc(2);
    const meta = (over: Partial<CachedImageMetadata> = {}): CachedImageMetadata => ({ ...doc, ...over });
    await validateCachedMetadata(meta(), manifestOf(doc.manifest_digest), where);
    const other = sha("another image");
    await assert.rejects(validateCachedMetadata(meta(), manifestOf(other), where), cacheRule(`${where}: image metadata is for ${doc.manifest_digest}, but the snapshot's image is ${other}`));
    const sha512 = `sha512:${"1".repeat(128)}`;
    await assert.rejects(validateCachedMetadata(meta({ manifest_digest: sha512 }), manifestOf(sha512), where), cacheRule(`${where}: raw manifest digest must use sha256 (got ${sha512})`));
    const wrong = sha("not the raw manifest");
    await assert.rejects(
      validateCachedMetadata(meta({ manifest_digest: wrong }), manifestOf(wrong), where),
      cacheRule(`${where}: raw manifest digest mismatch: metadata records ${wrong}, content hashes to ${doc.manifest_digest}`),
    );
    await assert.rejects(validateCachedMetadata(meta({ config_digest: sha512 }), manifestOf(doc.manifest_digest), where), cacheRule(`${where}: image config digest must use sha256 (got ${sha512})`));
    await assert.rejects(
      validateCachedMetadata(meta({ config_digest: wrong }), manifestOf(doc.manifest_digest), where),
      cacheRule(`${where}: image config digest mismatch: metadata records ${wrong}, content hashes to ${doc.config_digest}`),
    );
    const layers = (l1: { digest: string; diff_id: string }) => meta({ layers: [doc.layers[0]!, l1] });
    await assert.rejects(validateCachedMetadata(layers({ digest: "nodigest", diff_id: doc.layers[1]!.diff_id }), manifestOf(doc.manifest_digest), where), cacheRule(`${where}: layers[1].digest "nodigest" is not a digest`));
    await assert.rejects(validateCachedMetadata(layers({ digest: doc.layers[1]!.digest, diff_id: "sha256:" }), manifestOf(doc.manifest_digest), where), cacheRule(`${where}: layers[1].diff_id "sha256:" is not a digest`));
  });
});

describe("the files an image needs, and their state", () => {
  test("rule: an image needs its metadata, fsmeta, VMDK, then each distinct layer, under the cache directory given, named by their archive path", T, async () => {
    const doc = metadataDoc(2);
    const meta: CachedImageMetadata = { ...doc, layers: [...doc.layers, doc.layers[0]!] }; // a layer listed twice is one file
    const stage = "/h/cache/tmp/snapshot-import-1";
    const files = await expectedCacheFiles(new HomeLayout("/h"), manifestOf(doc.manifest_digest), meta, stage);
    const rel = [
      [`manifests/${PY_KEY}.json`, "manifests"],
      [`fsmeta/${safe(doc.manifest_digest)}.erofs`, "fsmeta"],
      [`vmdk/${safe(doc.manifest_digest)}.vmdk`, "vmdk"],
      [`layers/${safe(doc.layers[0]!.diff_id)}.erofs`, "layers"],
      [`layers/${safe(doc.layers[1]!.diff_id)}.erofs`, "layers"],
    ];
    assert.deepEqual(files, rel.map(([r, kind]) => ({ path: `${stage}/${r}`, archivePath: `cache/${r}`, kind })));
  });

  test("rule: a cache file must exist and be a regular file; an EROFS image (layer, fsmeta) must be materialized, a VMDK or metadata of any size is fine", () => {
    const f = (kind: "layers" | "fsmeta" | "vmdk" | "manifests") => ({ path: "/c/x", archivePath: "cache/x", kind });
    for (const kind of ["layers", "fsmeta", "vmdk", "manifests"] as const) {
      assert.equal(cacheFileProblem(f(kind), null), "missing", kind);
      assert.equal(cacheFileProblem(f(kind), dir), "a directory, not a regular file", kind);
      assert.equal(cacheFileProblem(f(kind), { ...file(0), kind: "symlink" }), "a symlink, not a regular file", kind);
    }
    const notMaterialized = "not materialized (an EROFS image must be a non-empty multiple of 4096 bytes)";
    assert.equal(cacheFileProblem(f("layers"), file(4097)), notMaterialized);
    assert.equal(cacheFileProblem(f("fsmeta"), file(0)), notMaterialized);
    assert.equal(cacheFileProblem(f("vmdk"), file(1)), null);
    assert.equal(cacheFileProblem(f("manifests"), file(0)), null);
  });
});

/** A carried cache (as a pass over an archive records it) of a consistent image under `root`, and the calls to read its metadata. */
function carried(root = "cache", layers = 2) {
  const doc = metadataDoc(layers);
  const bytes = enc(JSON.stringify(doc));
  const metaPath = `${root}/manifests/${PY_KEY}.json`;
  const files = new Map<string, FileInfo>([
    [metaPath, file(bytes.length)],
    [`${root}/fsmeta/${safe(doc.manifest_digest)}.erofs`, file(8192)],
    [`${root}/vmdk/${safe(doc.manifest_digest)}.vmdk`, file(40)],
    ...doc.layers.map((l) => [`${root}/layers/${safe(l.diff_id)}.erofs`, file(4096)] as [string, FileInfo]),
  ]);
  const reads: string[] = [];
  let metadata: Uint8Array = bytes;
  /** What the EROFS check found per file, as a pass records it: valid unless set. */
  const imageProblems = new Map<string, string>();
  const cache: CarriedCache = {
    root,
    files,
    readMetadata: async (p) => {
      reads.push(p);
      return metadata;
    },
    imageProblem: async (p) => imageProblems.get(p) ?? null,
  };
  return { doc, metaPath, files, reads, cache, imageProblems, manifest: manifestOf(doc.manifest_digest), setMetadata: (b: Uint8Array) => (metadata = b) };
}

describe("the image cache a bundle carries", () => {
  const layout = new HomeLayout("/h");
  const L = "a.tar.zst";

  test("rule: nothing carried is nothing to install; a complete cache resolves the expected files, metadata first, reading the metadata once", T, async () => {
    const c = carried();
    assert.deepEqual(await checkCarriedCache(layout, c.manifest, { ...c.cache, files: new Map() }, L), []);
    assert.deepEqual(c.reads, [], "nothing carried, nothing read");
    const expected = await checkCarriedCache(layout, c.manifest, c.cache, L);
    assert.deepEqual(expected.map((f) => f.path), [...c.files.keys()]);
    assert.equal(expected[0]!.archivePath, `cache/manifests/${PY_KEY}.json`);
    assert.deepEqual(c.reads, [c.metaPath]);
  });

  test("rule: a staging directory's cache is named by archive paths in messages", T, async () => {
    const stage = "/h/cache/tmp/snapshot-import-7";
    const c = carried(stage);
    const expected = await checkCarriedCache(layout, c.manifest, c.cache, L);
    assert.deepEqual(expected.map((f) => [f.path, f.archivePath]), [...c.files.keys()].map((p) => [p, `cache${p.slice(stage.length)}`]));
    const layer = [...c.files.keys()].at(-1)!;
    c.files.delete(layer);
    await assert.rejects(checkCarriedCache(layout, c.manifest, c.cache, L), cacheRule(`${L}: image cache file cache${layer.slice(stage.length)} is missing from the archive`));
  });

  test("rule: every carried layer and fsmeta file must pass the EROFS check; the error names the file and the rule (a VMDK is not an EROFS image)", T, async () => {
    for (const kind of ["fsmeta", "layers"]) {
      const c = carried();
      const path = [...c.files.keys()].find((p) => p.startsWith(`cache/${kind}/`))!;
      c.imageProblems.set(path, "no EROFS superblock magic at byte 1024 (found 0x00000000)");
      await assert.rejects(
        checkCarriedCache(layout, c.manifest, c.cache, L),
        cacheRule(`${L}: image cache file ${path} is not a valid EROFS image: no EROFS superblock magic at byte 1024 (found 0x00000000) (${EROFS_RULE})`),
        kind,
      );
    }
    const c = carried();
    for (const p of c.files.keys()) if (!p.endsWith(".erofs")) c.imageProblems.set(p, "never asked");
    await checkCarriedCache(layout, c.manifest, c.cache, L);
  });

  test("rule: carried cache files need the head image's metadata, and it must be the only metadata; names are checked before it is read", T, async () => {
    const c = carried();
    c.files.delete(c.metaPath);
    await assert.rejects(
      checkCarriedCache(layout, c.manifest, c.cache, L),
      cacheRule(`${L}: the archive carries image cache files but no metadata for the snapshot's image ${PY_REF} (expected manifests/${PY_KEY}.json)`),
    );
    const d = carried();
    d.files.set("cache/manifests/zz.json", file(10));
    d.files.set("cache/manifests/aa.json", file(10));
    await assert.rejects(checkCarriedCache(layout, d.manifest, d.cache, L), cacheRule(`${L}: the archive carries an unexpected image cache file cache/manifests/aa.json`), "the first in name order, whatever the archive order");
    assert.deepEqual(d.reads, [], "refused by name, unread");
  });

  test("rule: the carried metadata is a regular file of at most 64 MiB, checked before it is read", T, async () => {
    const what = `${L}: image metadata cache/manifests/${PY_KEY}.json`;
    const c = carried();
    c.files.set(c.metaPath, dir);
    await assert.rejects(checkCarriedCache(layout, c.manifest, c.cache, L), cacheRule(`${what} must be a regular file, not a directory`));
    c.files.set(c.metaPath, file(MAX_METADATA_BYTES + 1));
    await assert.rejects(checkCarriedCache(layout, c.manifest, c.cache, L), cacheRule(`${what} is larger than ${MAX_METADATA_BYTES} bytes`));
    assert.deepEqual(c.reads, []);
    c.files.set(c.metaPath, file(MAX_METADATA_BYTES)); // the recorded size, not the bytes read, is the limit
    await checkCarriedCache(layout, c.manifest, c.cache, L);
    c.setMetadata(enc("{"));
    await assert.rejects(checkCarriedCache(layout, c.manifest, c.cache, L), cacheRule(new RegExp(`^${esc(what)} is not valid UTF-8 JSON: `)));
  });

  test("rule: the carried metadata must match the head snapshot, named by its archive path", T, async () => {
    const c = carried();
    const other = sha("another image");
    await assert.rejects(
      checkCarriedCache(layout, manifestOf(other), c.cache, L),
      cacheRule(`${L}: cache/manifests/${PY_KEY}.json: image metadata is for ${c.doc.manifest_digest}, but the snapshot's image is ${other}`),
    );
  });

  test("rule: every file the image needs is carried and in a good state, and nothing else is", T, async () => {
    const paths = [...carried().files.keys()];
    const [, fsmeta, vmdk, layer0] = paths as [string, string, string, string];
    const cases: [string, (f: Map<string, FileInfo>) => void, string][] = [
      ["a layer missing", (f) => f.delete(layer0), `${L}: image cache file ${layer0} is missing from the archive`],
      ["the VMDK a directory", (f) => f.set(vmdk, dir), `${L}: image cache file ${vmdk} is a directory, not a regular file`],
      ["fsmeta not materialized", (f) => f.set(fsmeta, file(100)), `${L}: image cache file ${fsmeta} is not materialized (an EROFS image must be a non-empty multiple of 4096 bytes)`],
      [
        "two extra files",
        (f) => {
          f.set("cache/layers/sha256_extra.erofs", file(4096));
          f.set("cache/fsmeta/sha256_extra.erofs", file(4096));
        },
        `${L}: the archive carries an unexpected image cache file cache/fsmeta/sha256_extra.erofs`,
      ],
    ];
    for (const [name, edit, message] of cases) {
      const c = carried();
      edit(c.files);
      await assert.rejects(checkCarriedCache(layout, c.manifest, c.cache, L), cacheRule(message), name);
    }
  });
});

describe("save's pre-check of the home's image cache", () => {
  for (const b of BACKENDS) {
    test(`rule: save ships the head image's metadata, fsmeta, VMDK and layers only when the metadata matches and each is a regular, materialized file (${b.label})`, T, async () => {
      const { fs, root, cleanup } = await b.make();
      try {
        const home = `${root}/h`;
        const layout = new HomeLayout(home);
        const img = await buildImage(fs, home, PY_REF, 2);
        const manifest = manifestOf(img.manifest_digest);
        const files = await requiredCacheFiles(fs, layout, manifest);
        assert.deepEqual(files.map((f) => f.path), img.files);
        assert.deepEqual(files.map((f) => f.archivePath), img.files.map((p) => `cache${p.slice(`${home}/cache`.length)}`));
        assert.deepEqual(files.map((f) => f.kind), ["manifests", "fsmeta", "vmdk", "layers", "layers"]);

        await assert.rejects(requiredCacheFiles(fs, layout, manifestOf(img.manifest_digest, "python:3.13")), cacheRule(new RegExp(`^image metadata for python:3\\.13 is missing from the cache \\(${esc(home)}/cache/manifests/[0-9a-f]{64}\\.json\\)$`)));
        const other = sha("another image");
        await assert.rejects(
          requiredCacheFiles(fs, layout, manifestOf(other)),
          cacheRule(`cached image metadata ${img.metadataPath}: image metadata is for ${img.manifest_digest}, but the snapshot's image is ${other}`),
        );
        const [, fsmeta, vmdk, layer0] = img.files as [string, string, string, string];
        await fs.remove(vmdk);
        await fs.mkdir(vmdk);
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`required image cache artifact ${vmdk} is a directory, not a regular file`));
        await fs.remove(vmdk, { recursive: true });
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`required image cache artifact ${vmdk} is missing`));
        await writeSparse(fs, vmdk, 1, []);
        await writeSparse(fs, fsmeta, 4097, []);
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`required image cache artifact ${fsmeta} is not materialized (an EROFS image must be a non-empty multiple of 4096 bytes)`));
        await writeSparse(fs, fsmeta, 4096, []);
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`required image cache artifact ${fsmeta} is not a valid EROFS image: no EROFS superblock magic at byte 1024 (found 0x00000000) (${EROFS_RULE})`), "4096 zero bytes");
        await writeSparse(fs, fsmeta, 4096, [[0, minimalErofs(4096)]]);
        await fs.remove(layer0);
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`required image cache artifact ${layer0} is missing`));
        await fs.remove(img.metadataPath);
        await fs.mkdir(img.metadataPath);
        await assert.rejects(requiredCacheFiles(fs, layout, manifest), cacheRule(`image metadata ${img.metadataPath} must be a regular file, not a directory`));
      } finally {
        cleanup();
      }
    });
  }
});
