/**
 * Loading hostile bundles: one test per rule of docs/format.md §8.3 and §10, on memfs and
 * node:fs. Every archive is crafted byte by byte (tar-craft), optionally
 * compressed with the zstd CLI. Each failing load must raise the typed error,
 * name the entry or path at fault, and leave the home exactly as it was: same
 * trees under snapshots/ and cache/, same bytes, no staging directories.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ArchiveError,
  CompressionError,
  ImageCacheError,
  InvalidArgument,
  InvalidManifest,
  InvalidSnapshot,
  SnapbundleError,
  SnapshotAlreadyExists,
  SnapshotIntegrityError,
} from "../src/errors.js";
import type { FileSystem } from "../src/fs/types.js";
import { SnapshotStore } from "../src/store.js";
import {
  cacheEntries,
  dirEntry,
  fileEntry,
  type ImageFixture,
  imageFixture,
  type SnapFixture,
  snapEntries,
  snapFixture,
  sparseDigest,
  tarOf,
  zstdCli,
} from "./helpers/archive-bundle.js";
import { fingerprint, spyFs, writeBytes } from "./helpers/archive-fs.js";
import { type Backend, BACKENDS, makeHome, noise, tree, writeSparse } from "./helpers/homes.js";
import { minimalErofs } from "./helpers/erofs.js";
import { buildImage } from "./helpers/image.js";
import { base256, concatBytes, craftData, craftHeader, craftPax, END, paxRecord } from "./helpers/tar-craft.js";
import { skippableFrame, zstdCli as zstdPipe } from "./helpers/wasm-util.js";

const MiB = 1024 * 1024;

const enc = new TextEncoder();

interface Home {
  fs: FileSystem;
  root: string;
  home: string;
  store: SnapshotStore;
  cleanup: () => void;
}

/** A home holding one snapshot ("keep") already, so "unchanged" means something. */
async function hostileHome(backend: Backend): Promise<Home> {
  const h = await makeHome(backend);
  await writeSparse(h.fs, `${h.root}/keep-upper`, 64 << 10, [[4096, noise(5000, 99)]]);
  await h.store.create("keep", { upper: `${h.root}/keep-upper`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true });
  return h;
}

async function leftovers(h: Home): Promise<string[]> {
  const a = (await tree(h.fs, `${h.home}/snapshots`)).filter((p) => p.includes(".msb-snapshot-import-"));
  const b = (await tree(h.fs, `${h.home}/cache`)).filter((p) => p.includes("snapshot-import-"));
  return [...a, ...b];
}

type ErrorClass = new (...args: never[]) => SnapbundleError;

/**
 * Load `archive` (bytes, written outside the home) and expect `cls` with a
 * message containing every `needle`; then the home must be unchanged.
 */
async function rejects(
  h: Home,
  archive: Uint8Array,
  cls: ErrorClass,
  needles: (string | RegExp)[],
  options: { store?: SnapshotStore; name?: string; dest?: string; keepTrees?: boolean; maxWindowBytes?: number } = {},
): Promise<SnapbundleError> {
  const snapsBefore = await tree(h.fs, `${h.home}/snapshots`);
  const cacheBefore = await tree(h.fs, `${h.home}/cache`);
  const printBefore = await fingerprint(h.fs, h.home);
  const path = `${h.root}/in-${Math.random().toString(36).slice(2)}.bundle`;
  await writeBytes(h.fs, path, archive);
  let caught: unknown = null;
  try {
    await (options.store ?? h.store).load(path, { name: options.name, dest: options.dest, maxWindowBytes: options.maxWindowBytes });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== null, "the load should have failed");
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${(caught as Error).name}: ${(caught as Error).message}`);
  const err = caught as SnapbundleError;
  for (const n of needles) {
    if (typeof n === "string") assert.ok(err.message.includes(n), `message ${JSON.stringify(err.message)} should name ${JSON.stringify(n)}`);
    else assert.match(err.message, n);
  }
  assert.ok(!err.message.includes("could not undo"), err.message);
  if (options.keepTrees !== false) {
    assert.deepEqual(await tree(h.fs, `${h.home}/snapshots`), snapsBefore, "snapshots/ changed");
    assert.deepEqual(await tree(h.fs, `${h.home}/cache`), cacheBefore, "cache/ changed");
    assert.deepEqual(await fingerprint(h.fs, h.home), printBefore, "the home's contents changed");
  }
  assert.deepEqual(await leftovers(h), [], "staging directories were left behind");
  return err;
}

/** Load that must succeed; resolves the head. */
async function loads(h: Home, archive: Uint8Array, options: { name?: string; dest?: string; maxWindowBytes?: number } = {}) {
  const path = `${h.root}/ok-${Math.random().toString(36).slice(2)}.bundle`;
  await writeBytes(h.fs, path, archive);
  const head = await h.store.load(path, options);
  assert.deepEqual(await leftovers(h), []);
  return head;
}

/** Run one case of a matrix, naming it in a failure. */
async function t_rejects(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (e instanceof Error) e.message = `${what}: ${e.message}`;
    throw e;
  }
}

async function readAll(fs: FileSystem, path: string): Promise<Uint8Array> {
  const info = await fs.stat(path);
  const out = new Uint8Array(info.size);
  const fh = await fs.open(path, "r");
  try {
    let at = 0;
    while (at < out.length) {
      const n = await fh.read(out.subarray(at), at);
      if (n === 0) break;
      at += n;
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** Offset of the entry after a snapshot's manifest entry in a tar that starts with it. */
function afterManifest(s: SnapFixture): number {
  return 512 + craftData(s.manifest).length;
}

/** Build a zstd frame header needing a `windowLog`-sized window, followed by one raw empty last block. */
function bigWindowFrame(windowLog: number): Uint8Array {
  // FHD 0: no single segment, no checksum, no dictionary, no content size; Window_Descriptor: exponent << 3.
  return new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3, 0x01, 0x00, 0x00]);
}

/** Index of the first block header of the (single) zstd frame at the start of `z`. */
function firstBlockAt(z: Uint8Array): number {
  const fhd = z[4]!;
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dict = [0, 1, 2, 4][fhd & 3]!;
  const fcs = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  return 5 + (single ? 0 : 1) + dict + fcs;
}

let image: Promise<ImageFixture> | null = null;
let otherImage: Promise<ImageFixture> | null = null;
const img = () => (image ??= imageFixture("", 2));
const otherImg = () => (otherImage ??= imageFixture("other", 2));

/** The snapshot fixture that goes with the image fixture. */
async function imagedSnap(spec: Parameters<typeof snapFixture>[0] = {}) {
  const i = await img();
  return { i, s: snapFixture({ ...spec, image: { ref: i.ref, manifest_digest: i.manifest_digest } }) };
}

function metaWith(i: ImageFixture, edit: (m: Record<string, unknown>) => void): Uint8Array {
  const m = JSON.parse(new TextDecoder().decode(i.files[0]!.bytes)) as Record<string, unknown>;
  edit(m);
  return enc.encode(JSON.stringify(m));
}

for (const backend of BACKENDS) {
  describe(`load refuses hostile archives on ${backend.label}`, () => {
    const S = snapFixture();

    const withHome = (name: string, body: (h: Home) => Promise<void>) =>
      test(name, async () => {
        const h = await hostileHome(backend);
        try {
          await body(h);
        } finally {
          h.cleanup();
        }
      });

    withHome("fixtures are sound: the crafted bundle loads (plain and zstd), digest computed independently", async (h) => {
      const { i, s } = await imagedSnap();
      const tar = tarOf(...snapEntries(s), ...cacheEntries(i.files));
      const head = await loads(h, tar);
      assert.equal(head.digest, s.digest);
      assert.equal(head.name, s.prefix);
      assert.equal((await h.store.verify(s.prefix)).integrity.status, "verified");
      for (const f of i.files) assert.deepEqual(await readAll(h.fs, `${h.home}/${f.archivePath}`), f.bytes);
      const again = await loads(h, zstdCli(tar), { name: "copy" });
      assert.equal(again.digest, s.digest);
    });

    // ---- entry paths ----------------------------------------------------------------

    withHome("absolute path", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry("/etc/evil", "x")), ArchiveError, ['"/etc/evil"', "absolute"]);
    });

    withHome('".." component', async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry(`${S.prefix}/../../evil`, "x")), ArchiveError, [`"${S.prefix}/../../evil"`, '".."']);
      // <prefix>/.. has the two components of a snapshot file and a prefix not starting with ".":
      // refused by the ".." rule itself (exactly its message), before any later rule could see it
      const e = await rejects(h, tarOf(...snapEntries(S), fileEntry(`${S.prefix}/..`, "x")), ArchiveError, []);
      assert.equal(e.code, "archive");
      assert.ok(e.message.endsWith(`.bundle: archive entry ${JSON.stringify(`${S.prefix}/..`)}: path component ".." is not allowed`), e.message);
    });

    withHome('"." component', async (h) => {
      await rejects(h, tarOf(fileEntry(`${S.prefix}/./manifest.json`, S.manifest)), ArchiveError, [`"${S.prefix}/./manifest.json"`, '"."']);
    });

    for (const [flag, words] of [
      ["2", "symbolic link"],
      ["1", "hard link"],
      ["3", "character device"],
      ["4", "block device"],
      ["6", "FIFO"],
    ] as const) {
      withHome(`${words} entry`, async (h) => {
        const name = `${S.prefix}/upper.ext4`;
        const link = flag === "1" ? `${S.prefix}/manifest.json` : flag === "2" ? "/etc/passwd" : "";
        const bad = craftHeader({ name, typeflag: flag, linkname: link, mtime: 1714560000 });
        const e = await rejects(h, tarOf(snapEntries(S)[0]!, bad), ArchiveError, [`"${name}"`, words]);
        // the type rule itself refused it (the later upper-size rule would also refuse a 0-byte upper)
        assert.equal(e.code, "archive");
        assert.match(e.message, new RegExp(`^\\S+\\.bundle: archive entry ${JSON.stringify(name)} at byte \\d+ is an? ${words}; only regular files and directories may be loaded$`));
      });
    }

    withHome("snapshot file at depth 1 (manifest.json at the top)", async (h) => {
      await rejects(h, tarOf(fileEntry("manifest.json", S.manifest), fileEntry("upper.ext4", S.upper)), ArchiveError, ['"manifest.json"', "two components"]);
    });

    withHome("snapshot file at depth 3", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry(`${S.prefix}/sub/manifest.json`, S.manifest)), ArchiveError, [`"${S.prefix}/sub/manifest.json"`, "two components"]);
    });

    withHome("snapshot directory name starting with a dot", async (h) => {
      await rejects(h, tarOf(fileEntry(".hidden/manifest.json", S.manifest)), ArchiveError, ['".hidden/manifest.json"', 'must not start with "."']);
    });

    withHome("unknown cache kind", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry("cache/blobs/x.json", "{}")), ArchiveError, ['"cache/blobs/x.json"', 'unknown cache kind "blobs"']);
    });

    withHome("wrong cache extension", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry("cache/layers/sha256_ab.tar", new Uint8Array(4096))), ArchiveError, ['"cache/layers/sha256_ab.tar"', "must end in .erofs"]);
    });

    withHome("cache directory deeper than cache/<kind>/", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), dirEntry("cache/layers/sub/")), ArchiveError, ['"cache/layers/sub/"', "cache/ and cache/<kind>/ only"]);
    });

    withHome("non-UTF-8 name", async (h) => {
      const name = concatBytes(enc.encode(`${S.prefix}/`), new Uint8Array([0xff, 0xfe]), enc.encode(".bin"));
      await rejects(h, tarOf(...snapEntries(S), fileEntry(name, "x")), ArchiveError, [`${S.prefix}/`, "not valid UTF-8"]);
    });

    withHome("bad header checksum", async (h) => {
      const at = afterManifest(S);
      const bad = concatBytes(craftHeader({ name: `${S.prefix}/upper.ext4`, size: S.upper.length, checksum: "bad" }), craftData(S.upper));
      await rejects(h, tarOf(snapEntries(S)[0]!, bad), ArchiveError, [`offset ${at}`, "checksum"]);
    });

    // ---- truncation -------------------------------------------------------------------

    const full = tarOf(...snapEntries(S));
    const upperAt = afterManifest(S);
    const cuts: [string, number, string[]][] = [
      ["mid-header", upperAt + 100, [`inside the header at offset ${upperAt}`]],
      ["mid-data", upperAt + 512 + 5000, [`inside the data of entry "${S.prefix}/upper.ext4"`]],
      ["mid-padding", 512 + S.manifest.length + 7, [`inside the padding of entry "${S.prefix}/manifest.json"`]],
      ["after one zero block", full.length - 512, ["after one zero block"]],
      ["no end blocks", full.length - 1024, ["without the end-of-archive marker"]],
    ];
    for (const [what, at, needles] of cuts) {
      withHome(`truncated ${what}: plain tar`, async (h) => {
        await rejects(h, full.subarray(0, at), ArchiveError, ["truncated", ...needles]);
      });
      withHome(`truncated ${what}: tar inside a complete zstd frame`, async (h) => {
        await rejects(h, zstdCli(full.subarray(0, at)), ArchiveError, ["truncated", ...needles]);
      });
    }

    withHome("truncated zstd frame (cut in the middle and just before its end)", async (h) => {
      const z = zstdCli(full);
      for (const at of [Math.floor(z.length / 2), z.length - 3]) {
        await rejects(h, z.subarray(0, at), CompressionError, ["truncated", `input ended at byte ${at}`, ".bundle"]);
      }
    });

    withHome("corrupt zstd stream: reserved block type, garbage after the magic", async (h) => {
      const z = zstdCli(full).slice();
      z[firstBlockAt(z)]! |= 0x06; // Block_Type 3 (reserved)
      await rejects(h, z, CompressionError, [".bundle"]);
      const garbage = concatBytes(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]), noise(3000, 5));
      await rejects(h, garbage, CompressionError, [".bundle"]);
    });

    withHome("zstd frame needing more than the 128 MiB default window: an ArchiveError naming offset, window and option", async (h) => {
      const e = await rejects(h, concatBytes(bigWindowFrame(28), zstdCli(full)), ArchiveError, ["zstd frame at byte 0", "256 MiB window", "128 MiB allowed", "maxWindowBytes", "--max-window"]);
      assert.ok(!(e instanceof CompressionError));
      await rejects(h, bigWindowFrame(41), ArchiveError, ["needs a 2 TiB window", "more than any zstd decodes (2 GiB", "not written by zstd"]);
      // a 1 MiB limit refuses what zstd -3 writes for 3 MiB of data from a pipe (a 2 MiB window)
      const piped = zstdPipe(full, ["-3", "--long=21"], { pipe: true });
      await rejects(h, concatBytes(zstdCli(full.subarray(0, 0)), piped), ArchiveError, [`zstd frame at byte ${zstdCli(full.subarray(0, 0)).length}`, "2 MiB window", "1 MiB allowed"], { maxWindowBytes: MiB });
      // still alive, and the decoder still works
      const head = await loads(h, zstdCli(full));
      assert.equal(head.digest, S.digest);
    });

    withHome("zstd --ultra -22 --long=27 (a 128 MiB window) loads", async (h) => {
      const z = zstdPipe(full, ["--ultra", "-22", "--long=27"], { pipe: true });
      assert.equal((await loads(h, z)).digest, S.digest);
    });

    withHome("zstd -19 loads", async (h) => {
      assert.equal((await loads(h, zstdCli(full, ["-19"]))).digest, S.digest);
    });

    withHome("several zstd frames in a row (cat a.zst b.zst) load", async (h) => {
      const cut = 1536;
      const z = concatBytes(zstdCli(full.subarray(0, cut)), zstdCli(full.subarray(cut, cut + 5000)), zstdCli(full.subarray(cut + 5000)));
      assert.equal((await loads(h, z)).digest, S.digest);
    });

    withHome("a leading skippable frame (and one between frames) loads", async (h) => {
      const z = concatBytes(skippableFrame(noise(100, 4)), zstdCli(full.subarray(0, 4096)), skippableFrame(new Uint8Array(9), 7), zstdCli(full.subarray(4096)));
      assert.equal((await loads(h, z)).digest, S.digest);
    });

    withHome("zstd --long=30 (a 1 GiB window) is refused by default and loads with maxWindowBytes 1 GiB", async (h) => {
      const z = zstdPipe(full, ["-1", "--long=30"], { pipe: true });
      await rejects(h, z, ArchiveError, ["zstd frame at byte 0", "1 GiB window", "128 MiB allowed", "maxWindowBytes", "--max-window"]);
      assert.equal((await loads(h, z, { maxWindowBytes: 1024 * MiB })).digest, S.digest);
    });

    withHome("zstd --long=31 (a 2 GiB window) is refused at 1 GiB and loads with maxWindowBytes 2 GiB", async (h) => {
      const z = zstdPipe(full, ["-1", "--long=31"], { pipe: true });
      await rejects(h, z, ArchiveError, ["zstd frame at byte 0", "2 GiB window", "1 GiB allowed", "at least 2 GiB", "--max-window"], { maxWindowBytes: 1024 * MiB });
      assert.equal((await loads(h, z, { maxWindowBytes: 2048 * MiB })).digest, S.digest);
    });

    withHome("a flipped bit in a checksummed frame of a bundle without recorded integrity is refused", async (h) => {
      const R = snapFixture({ size: 1 << 20, pieces: [[0, noise(256 << 10, 8)]], integrity: false });
      const z = zstdCli(tarOf(...snapEntries(R)), ["-3"]); // random data: stored (raw) blocks
      const bad = z.slice();
      bad[z.length >> 1]! ^= 0x20;
      await rejects(h, bad, CompressionError, ["checksum mismatch", `the frame at bytes 0..${z.length}`, ".bundle"]);
    });

    // ---- entry kinds the loader does not interpret --------------------------------------

    withHome("the same path twice", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry(`${S.prefix}/manifest.json`, S.manifest)), ArchiveError, [`"${S.prefix}/manifest.json"`, "appears twice"]);
    });

    withHome("GNU long-name (L) entry", async (h) => {
      const long = `${S.prefix}/${"x".repeat(150)}`;
      const L = concatBytes(craftHeader({ name: "././@LongLink", typeflag: "L", size: long.length + 1 }), craftData(long + "\0"));
      await rejects(h, tarOf(...snapEntries(S), L, fileEntry(long.slice(0, 100), "x")), ArchiveError, ["GNU long-name record"]);
    });

    withHome("PAX global header: only ignorable records are accepted; one that changes entries is refused saying so", async (h) => {
      const global = (recs: string) => concatBytes(craftHeader({ name: "pax_global_header", typeflag: "g", size: enc.encode(recs).length, magic: "ustar" }), craftData(recs));
      await rejects(h, tarOf(global(paxRecord("path", "evil")), ...snapEntries(S)), ArchiveError, ["global PAX header", '"path"', "would apply to every entry"]);
      await rejects(h, tarOf(global(paxRecord("comment", "x") + paxRecord("size", "1")), ...snapEntries(S)), ArchiveError, ["global PAX header", '"size"']);
      const head = await loads(h, tarOf(global(paxRecord("comment", "hello") + paxRecord("mtime", "1700000000.25")), ...snapEntries(S)));
      assert.equal(head.digest, S.digest);
    });

    // ---- snapshot rules ---------------------------------------------------------------------

    withHome("an upper that fails its recorded integrity", async (h) => {
      const liar = snapFixture({ integrityDigest: sparseDigest(new Uint8Array(12288)) });
      await rejects(h, tarOf(...snapEntries(liar)), SnapshotIntegrityError, [`${liar.prefix}/upper.ext4`, "recorded integrity"]);
    });

    withHome("an upper whose declared size differs from the manifest: refused before a byte is written", async (h) => {
      for (const declared of [2n ** 40n, 4096n]) {
        const spy = spyFs(h.fs);
        const store = new SnapshotStore(spy, h.home);
        const hdr = craftHeader({ name: `${S.prefix}/upper.ext4`, size: base256(declared) });
        // a tiny archive: the 1 TiB upper's data is simply not there
        const archive = declared === 4096n ? tarOf(snapEntries(S)[0]!, hdr, craftData(S.upper.subarray(0, 4096))) : concatBytes(snapEntries(S)[0]!, hdr, new Uint8Array(512));
        await rejects(h, archive, ArchiveError, [`"${S.prefix}/upper.ext4"`, `declares ${declared} bytes`, "size_bytes 12288"], { store });
        assert.deepEqual(spy.opens.filter((o) => o.endsWith("/upper.ext4") && !o.startsWith("r ")), [], "no upper may be opened for writing");
      }
    });

    withHome("a manifest that does not validate (unknown field)", async (h) => {
      const bad = enc.encode(new TextDecoder().decode(S.manifest).replace('"source_sandbox":null}', '"source_sandbox":null,"extra":1}'));
      await rejects(h, tarOf(fileEntry(`${S.prefix}/manifest.json`, bad), snapEntries(S)[1]!), InvalidManifest, [`${S.prefix}/manifest.json`, '"extra"']);
    });

    withHome("a manifest naming a reserved upper (manifest.json) is refused at parse time", async (h) => {
      const X = snapFixture({ upperFile: "manifest.json" });
      await rejects(h, tarOf(fileEntry(`${X.prefix}/manifest.json`, X.manifest)), InvalidManifest, [`${X.prefix}/manifest.json`, '"upper.file"', "reserved name"]);
    });

    withHome("a manifest whose upper never comes", async (h) => {
      await rejects(h, tarOf(snapEntries(S)[0]!), InvalidSnapshot, [`${S.prefix}/upper.ext4`, "does not exist"]);
    });

    withHome("a manifest declaring more than 1 MiB", async (h) => {
      const hdr = craftHeader({ name: `${S.prefix}/manifest.json`, size: 2 << 20 });
      await rejects(h, concatBytes(hdr, S.manifest), ArchiveError, [`"${S.prefix}/manifest.json"`, "at most 1048576"]);
    });

    withHome("image metadata declaring more than 64 MiB", async (h) => {
      const { i, s } = await imagedSnap();
      const hdr = craftHeader({ name: i.files[0]!.archivePath, size: (64 << 20) + 1 });
      await rejects(h, concatBytes(...snapEntries(s), hdr, new Uint8Array(512)), ArchiveError, [`"${i.files[0]!.archivePath}"`, "image metadata may be at most 67108864"]);
    });

    // ---- PAX sparse maps (GNU.sparse 0.0, 0.1, 1.0) -------------------------------------------

    /** S's upper as a PAX sparse entry: `records` in its `x` header, `data` (map area for 1.0, then segment data) after it. */
    const paxSparseUpper = (records: string, data: Uint8Array) => concatBytes(craftPax(records), craftHeader({ name: `${S.prefix}/upper.ext4`, size: data.length }), craftData(data));
    const segData = concatBytes(S.upper.subarray(0, 512), S.upper.subarray(8192, 11192));
    const map10 = (text: string) => {
      const m = new Uint8Array(Math.ceil(enc.encode(text).length / 512) * 512);
      m.set(enc.encode(text));
      return m;
    };
    const v00 = (pairs: [string, string][], extra = paxRecord("GNU.sparse.size", "12288")) =>
      extra + paxRecord("GNU.sparse.numblocks", String(pairs.length)) + pairs.map(([o, n]) => paxRecord("GNU.sparse.offset", o) + paxRecord("GNU.sparse.numbytes", n)).join("");
    const v01 = (map: string, extra = paxRecord("GNU.sparse.size", "12288")) => extra + paxRecord("GNU.sparse.numblocks", String(map === "" ? 0 : Math.floor(map.split(",").length / 2))) + paxRecord("GNU.sparse.map", map);
    const v10 = (extra = paxRecord("GNU.sparse.realsize", "12288")) =>
      paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") + paxRecord("GNU.sparse.name", `${S.prefix}/upper.ext4`) + extra;

    withHome("PAX sparse 0.0, 0.1 and 1.0 uppers load with their holes", async (h) => {
      const forms = [
        paxSparseUpper(v00([["0", "512"], ["8192", "3000"]]), segData),
        paxSparseUpper(v01("0,512,8192,3000"), segData),
        paxSparseUpper(v10(), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData)),
      ];
      for (const [i, upper] of forms.entries()) {
        const head = await loads(h, tarOf(snapEntries(S)[0]!, upper), { name: `pax-sparse-${i}` });
        assert.equal(head.digest, S.digest);
        assert.deepEqual(await readAll(h.fs, `${h.home}/snapshots/pax-sparse-${i}/upper.ext4`), S.upper);
      }
    });

    withHome("hostile PAX sparse maps are refused, the home unchanged", async (h) => {
      const m = snapEntries(S)[0]!;
      const cases: [string, Uint8Array, (string | RegExp)[]][] = [
        ["0.1 overlap", paxSparseUpper(v01("0,1024,512,2488"), segData), ["overlaps"]],
        ["0.1 unsorted", paxSparseUpper(v01("8192,3000,0,512"), segData), ["overlaps or precedes"]],
        ["0.1 past the real size", paxSparseUpper(v01("0,512,11776,3000"), segData), ["beyond the logical size 12288"]],
        ["0.1 covers fewer bytes than stored", paxSparseUpper(v01("0,512,8192,2000"), segData), ["covers 2512 bytes but the entry stores 3512"]],
        ["0.1 unaligned segment data", paxSparseUpper(v01("0,500,8192,3012"), segData), ["not on a 512-byte boundary"]],
        ["0.1 odd count of numbers", paxSparseUpper(v01("0,512,8192"), segData), ["offset,numbytes pairs"]],
        ["0.1 negative number", paxSparseUpper(v01("0,-512"), segData), ["is not a decimal integer"]],
        ["0.1 hex number", paxSparseUpper(v01("0x0,512"), segData), ["is not a decimal integer"]],
        ["0.1 exponent", paxSparseUpper(v01("1e3,512"), segData), ["is not a decimal integer"]],
        ["0.1 beyond 2^53", paxSparseUpper(v01("0,512,9007199254740993,3000"), segData), ["up to 2^53-1"]],
        ["0.1 missing real size", paxSparseUpper(v01("0,512,8192,3000", ""), segData), ["without its real size"]],
        ["0.1 numblocks disagrees", paxSparseUpper(paxRecord("GNU.sparse.size", "12288") + paxRecord("GNU.sparse.numblocks", "3") + paxRecord("GNU.sparse.map", "0,512,8192,3000"), segData), ["numblocks is 3"]],
        ["0.0 huge numblocks", paxSparseUpper(paxRecord("GNU.sparse.size", "12288") + paxRecord("GNU.sparse.numblocks", "999999999999"), segData), ["exceeds the limit of 1000000"]],
        ["0.0 offset without numbytes", paxSparseUpper(paxRecord("GNU.sparse.size", "12288") + paxRecord("GNU.sparse.offset", "0"), segData), ["not followed by GNU.sparse.numbytes"]],
        ["0.0 overlap", paxSparseUpper(v00([["0", "3000"], ["512", "512"]]), segData), ["overlaps"]],
        ["0.0 missing real size", paxSparseUpper(v00([["0", "512"], ["8192", "3000"]], ""), segData), ["without its real size"]],
        ["1.0 huge count", paxSparseUpper(v10(), concatBytes(map10("99999999999\n"), segData)), ["declares 99999999999 segments; the limit is 1000000"]],
        ["1.0 count beyond the map", paxSparseUpper(v10(), enc.encode("900000\n10\n" + "1\n".repeat(507))), ["map runs past the entry's 1024 stored bytes"]],
        ["1.0 map in padding", paxSparseUpper(v10(), concatBytes(map10("900000\n0\n512\n"), segData)), ["expected a decimal number ended by a newline"]],
        ["1.0 bad number", paxSparseUpper(v10(), concatBytes(map10("2\n0\n5x2\n8192\n3000\n"), segData)), ["expected a decimal number"]],
        ["1.0 too many digits", paxSparseUpper(v10(), concatBytes(map10("1\n00000000000000000000000\n512\n"), segData)), ["more than 16 digits"]],
        ["1.0 past the real size", paxSparseUpper(v10(), concatBytes(map10("2\n0\n512\n11776\n3000\n"), segData)), ["beyond the logical size"]],
        ["1.0 unsorted", paxSparseUpper(v10(), concatBytes(map10("2\n8192\n3000\n0\n512\n"), segData)), ["overlaps or precedes"]],
        ["1.0 missing real size", paxSparseUpper(v10(""), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData)), ["without its real size (GNU.sparse.realsize)"]],
        ["1.0 unknown version", paxSparseUpper(v10().replace("minor=0", "minor=7"), concatBytes(map10("2\n0\n512\n8192\n3000\n"), segData)), [/sparse format 1\.7|PAX record/]],
      ];
      for (const [what, upper, needles] of cases) {
        await t_rejects(what, () => rejects(h, tarOf(m, upper), ArchiveError, needles));
      }
    });

    withHome("an upper before its manifest loads (GNU tar and bsdtar write directory order)", async (h) => {
      const [m, u] = snapEntries(S);
      const head = await loads(h, tarOf(u!, m!));
      assert.equal(head.digest, S.digest);
    });

    withHome("an upper before its manifest with a size the manifest contradicts: refused before promotion", async (h) => {
      const [m] = snapEntries(S);
      const short = fileEntry(`${S.prefix}/upper.ext4`, S.upper.subarray(0, 4096));
      await rejects(h, tarOf(short, m!), ArchiveError, [`"${S.prefix}/upper.ext4"`, "declares 4096 bytes", "size_bytes 12288"]);
      const other = fileEntry(`${S.prefix}/upper.raw`, S.upper);
      await rejects(h, tarOf(other, m!), ArchiveError, [`"${S.prefix}/upper.raw"`, "not part of the snapshot"]);
    });

    withHome("apparent-size cap: a tiny archive declaring a huge upper before its manifest is refused before its data", async (h) => {
      const hdr = craftHeader({ name: `${S.prefix}/upper.ext4`, size: base256(2n ** 40n) });
      await rejects(h, concatBytes(hdr, new Uint8Array(512)), ArchiveError, [`"${S.prefix}/upper.ext4"`, "over the cap", "--max-apparent-size"]);
      // a cap below the archive's uppers refuses a valid archive, naming the option
      const store = new SnapshotStore(h.fs, h.home);
      const path = `${h.root}/capped.bundle`;
      await writeBytes(h.fs, path, tarOf(...snapEntries(S)));
      await assert.rejects(store.load(path, { maxApparentBytes: 12287 }), (e: Error) => e instanceof ArchiveError && /over the cap of 12287/.test(e.message));
      assert.equal((await store.load(path, { maxApparentBytes: 12288 + S.manifest.length })).digest, S.digest);
    });

    withHome("an extra file in a snapshot directory", async (h) => {
      await rejects(h, tarOf(...snapEntries(S), fileEntry(`${S.prefix}/notes.txt`, "hi")), ArchiveError, [`"${S.prefix}/notes.txt"`, "not part of the snapshot"]);
    });

    withHome("no manifest at all: empty archive, a lone directory entry, cache files only", async (h) => {
      const i = await img();
      for (const archive of [END, tarOf(dirEntry("x/")), tarOf(dirEntry("cache/"), ...cacheEntries(i.files))]) {
        await rejects(h, archive, ArchiveError, ["no snapshot manifest"]);
      }
    });

    withHome("a snapshot directory entry without a manifest beside a valid snapshot is refused", async (h) => {
      await rejects(h, tarOf(dirEntry("x/"), ...snapEntries(S)), ArchiveError, ['"x/"', "no manifest.json"]);
      await rejects(h, tarOf(...snapEntries(S), dirEntry("x/")), ArchiveError, ['"x/"', "no manifest.json"]);
      // a directory entry for the snapshot itself is fine (GNU tar with directory arguments writes one)
      const head = await loads(h, tarOf(dirEntry(`${S.prefix}/`), ...snapEntries(S)));
      assert.equal(head.digest, S.digest);
      assert.deepEqual((await h.fs.readdir(`${h.home}/snapshots`)).filter((n) => n === "x"), []);
    });

    withHome("a target that already exists: SnapshotAlreadyExists, the existing one untouched", async (h) => {
      await writeSparse(h.fs, `${h.root}/other-upper`, 8192, [[0, "other"]]);
      await h.store.create(S.prefix, { upper: `${h.root}/other-upper`, image: { ref: "alpine:3", manifest_digest: "sha256:" + "e".repeat(64) } });
      await rejects(h, tarOf(...snapEntries(S)), SnapshotAlreadyExists, [`${h.home}/snapshots/${S.prefix}`, "already exists"]);
      // the same archive under another name goes in
      const head = await loads(h, tarOf(...snapEntries(S)), { name: "other" });
      assert.equal(head.digest, S.digest);
    });

    withHome("a symlink at the promote target pointing outside the home is never followed", async (h) => {
      const outside = `${h.root}/outside`;
      await h.fs.mkdir(outside);
      await writeBytes(h.fs, `${outside}/precious`, enc.encode("precious"));
      const link = `${h.home}/snapshots/${S.prefix}`;
      await h.fs.symlink(outside, link);
      const before = await fingerprint(h.fs, outside);
      await rejects(h, tarOf(...snapEntries(S)), SnapshotAlreadyExists, [link, "already exists"]);
      assert.deepEqual(await fingerprint(h.fs, outside), before);
      assert.equal((await h.fs.lstat(link)).kind, "symlink");
    });

    withHome("--name invalid", async (h) => {
      for (const name of [".x", "a/b", ""]) {
        await rejects(h, tarOf(...snapEntries(S)), InvalidArgument, [JSON.stringify(name), "not allowed"], { name });
      }
    });

    withHome("a chain whose second target exists: nothing installed, nothing promoted", async (h) => {
      const i = await img();
      const image = { ref: i.ref, manifest_digest: i.manifest_digest };
      const P = snapFixture({ image, pieces: [[0, "parent"]] });
      const H = snapFixture({ image, parent: P.digest, pieces: [[100, "head"]] });
      await writeSparse(h.fs, `${h.root}/u`, 4096, [[0, "in the way"]]);
      await h.store.create(H.prefix, { upper: `${h.root}/u`, image });
      await rejects(h, tarOf(...snapEntries(P), ...snapEntries(H), ...cacheEntries(i.files)), SnapshotAlreadyExists, [`${h.home}/snapshots/${H.prefix}`]);
    });

    withHome("a chain whose later promote fails mid-way: the undo log takes everything back", async (h) => {
      const i = await img();
      const image = { ref: i.ref, manifest_digest: i.manifest_digest };
      const P = snapFixture({ image, pieces: [[0, "parent"]] });
      const H = snapFixture({ image, parent: P.digest, pieces: [[100, "head"]] });
      const snaps = `${h.home}/snapshots`;
      let raced = false;
      const spy = spyFs(h.fs, {
        async afterRename(_from, to) {
          if (to === `${snaps}/${P.prefix}` && !raced) {
            raced = true; // someone else creates the head's target between steps 4 and 6
            await h.fs.mkdir(`${snaps}/${H.prefix}`);
            await writeBytes(h.fs, `${snaps}/${H.prefix}/blocker`, enc.encode("mine"));
          }
        },
      });
      const store = new SnapshotStore(spy, h.home);
      const snapsBefore = await tree(h.fs, snaps);
      const cacheBefore = await tree(h.fs, `${h.home}/cache`);
      await rejects(h, tarOf(...snapEntries(P), ...snapEntries(H), ...cacheEntries(i.files)), SnapshotAlreadyExists, [`${snaps}/${H.prefix}`], { store, keepTrees: false });
      assert.ok(raced, "the promote of the parent should have happened");
      assert.deepEqual(await tree(h.fs, snaps), [...snapsBefore, `${H.prefix}/`, `${H.prefix}/blocker`].sort());
      assert.deepEqual(await tree(h.fs, `${h.home}/cache`), cacheBefore, "cache/ changed");
      assert.equal(new TextDecoder().decode(await readAll(h.fs, `${snaps}/${H.prefix}/blocker`)), "mine");
    });

    // ---- image cache rules --------------------------------------------------------------------

    withHome("cache metadata missing", async (h) => {
      const { i, s } = await imagedSnap();
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(i.files.slice(1))), ImageCacheError, ["no metadata", i.files[0]!.archivePath.slice("cache/".length)]);
    });

    withHome("metadata of another image", async (h) => {
      const { i, s } = await imagedSnap();
      const o = await otherImg();
      const files = [{ archivePath: i.files[0]!.archivePath, bytes: o.files[0]!.bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, [i.files[0]!.archivePath, `is for ${o.manifest_digest}`, i.manifest_digest]);
    });

    withHome("metadata made of a million empty arrays is refused by the value bound, not parsed into memory", async (h) => {
      const { i, s } = await imagedSnap();
      const bytes = enc.encode('{"config":[' + "[],".repeat(1_000_000) + "[]]}");
      const files = [{ archivePath: i.files[0]!.archivePath, bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, ["image metadata", "more than 1000000 values"]);
    });

    withHome("metadata with a duplicate key is refused (strict JSON, as serde_json)", async (h) => {
      const { i, s } = await imagedSnap();
      const text = new TextDecoder().decode(i.files[0]!.bytes);
      const bytes = enc.encode(text.replace(/^\{/, '{"manifest_digest":"sha256:' + "0".repeat(64) + '",'));
      const files = [{ archivePath: i.files[0]!.archivePath, bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, ["image metadata", 'duplicate key "manifest_digest"']);
    });

    withHome("metadata whose raw_manifest_json does not hash to manifest_digest", async (h) => {
      const { i, s } = await imagedSnap();
      const bytes = metaWith(i, (m) => void (m.raw_manifest_json = String(m.raw_manifest_json) + " "));
      const files = [{ archivePath: i.files[0]!.archivePath, bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, [i.files[0]!.archivePath, "raw manifest digest mismatch"]);
    });

    withHome("metadata whose raw_config_json does not hash to config_digest", async (h) => {
      const { i, s } = await imagedSnap();
      const bytes = metaWith(i, (m) => void (m.raw_config_json = "{}"));
      const files = [{ archivePath: i.files[0]!.archivePath, bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, [i.files[0]!.archivePath, "image config digest mismatch"]);
    });

    withHome("a layer whose diff_id is not a digest", async (h) => {
      const { i, s } = await imagedSnap();
      const bytes = metaWith(i, (m) => void ((m.layers as Record<string, unknown>[])[1]!.diff_id = "nodigest"));
      const files = [{ archivePath: i.files[0]!.archivePath, bytes }, ...i.files.slice(1)];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, ["layers[1].diff_id", '"nodigest"']);
    });

    withHome("a layer file missing", async (h) => {
      const { i, s } = await imagedSnap();
      const layer = i.files.at(-1)!;
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(i.files.slice(0, -1))), ImageCacheError, [layer.archivePath, "missing from the archive"]);
    });

    withHome("an EROFS not materialized (size not a multiple of 4096)", async (h) => {
      const { i, s } = await imagedSnap();
      const layer = i.files.at(-1)!;
      const files = [...i.files.slice(0, -1), { archivePath: layer.archivePath, bytes: layer.bytes.subarray(0, 5000) }];
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(files)), ImageCacheError, [layer.archivePath, "not materialized"]);
    });

    withHome("save applies load's image-cache rules: it refuses a cache load would refuse, writing nothing", async (h) => {
      const img = await buildImage(h.fs, h.home, "save-rules:1");
      await writeSparse(h.fs, `${h.root}/u`, 8192, [[0, "x"]]);
      await h.store.create("imaged", { upper: `${h.root}/u`, image: { ref: img.ref, manifest_digest: img.manifest_digest } });
      const out = `${h.root}/imaged.tar`;
      // a layer that is not materialized
      const layer = img.files.at(-1)!;
      const original = await readAll(h.fs, layer);
      await writeBytes(h.fs, layer, original.subarray(0, 5000));
      await assert.rejects(h.store.save("imaged", out, { withImage: true, plainTar: true }), (e: Error) => e instanceof ImageCacheError && e.message.includes(layer) && e.message.includes("not materialized"));
      await writeBytes(h.fs, layer, original);
      // metadata whose raw manifest does not hash to its digest
      const meta = JSON.parse(new TextDecoder().decode(await readAll(h.fs, img.metadataPath))) as Record<string, unknown>;
      await writeBytes(h.fs, img.metadataPath, enc.encode(JSON.stringify({ ...meta, raw_manifest_json: String(meta.raw_manifest_json) + " " })));
      await assert.rejects(h.store.save("imaged", out, { withImage: true, plainTar: true }), (e: Error) => e instanceof ImageCacheError && e.message.includes("raw manifest digest mismatch"));
      assert.equal(await h.fs.lstat(out).then(() => true, () => false), false, "no output");
    });

    withHome("an unexpected extra cache file", async (h) => {
      const { i, s } = await imagedSnap();
      const extra = { archivePath: `cache/layers/sha256_${"f".repeat(64)}.erofs`, bytes: new Uint8Array(4096) };
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries([...i.files, extra])), ImageCacheError, [extra.archivePath, "unexpected"]);
    });

    withHome("an existing cache file with other content (a valid image: not corrupt, so not replaced): nothing installed, nothing promoted", async (h) => {
      const { i, s } = await imagedSnap();
      const fsmeta = i.files[1]!;
      await h.fs.mkdir(`${h.home}/cache/fsmeta`, { recursive: true });
      await writeBytes(h.fs, `${h.home}/${fsmeta.archivePath}`, minimalErofs(fsmeta.bytes.length, 999));
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(i.files)), ImageCacheError, [`${h.home}/${fsmeta.archivePath}`, "different content"]);
    });

    withHome("an existing cache target that is a symlink: refused, not followed", async (h) => {
      const { i, s } = await imagedSnap();
      const vmdk = i.files[2]!;
      await h.fs.mkdir(`${h.home}/cache/vmdk`, { recursive: true });
      await writeBytes(h.fs, `${h.root}/elsewhere.vmdk`, vmdk.bytes);
      await h.fs.symlink(`${h.root}/elsewhere.vmdk`, `${h.home}/${vmdk.archivePath}`);
      await rejects(h, tarOf(...snapEntries(s), ...cacheEntries(i.files)), ImageCacheError, [`${h.home}/${vmdk.archivePath}`, "not a regular file"]);
    });

    withHome("an existing cache file with the same content is accepted", async (h) => {
      const { i, s } = await imagedSnap();
      const fsmeta = i.files[1]!;
      await h.fs.mkdir(`${h.home}/cache/fsmeta`, { recursive: true });
      await writeBytes(h.fs, `${h.home}/${fsmeta.archivePath}`, fsmeta.bytes);
      const head = await loads(h, zstdCli(tarOf(...snapEntries(s), ...cacheEntries(i.files))));
      assert.equal(head.digest, s.digest);
      for (const f of i.files) assert.deepEqual(await readAll(h.fs, `${h.home}/${f.archivePath}`), f.bytes);
    });

    // ---- destinations ----------------------------------------------------------------------------

    withHome("a load into a dest directory other than snapshots/ works and list shows it", async (h) => {
      const dest = `${h.root}/elsewhere/snaps`;
      const before = await tree(h.fs, `${h.home}/snapshots`);
      const head = await loads(h, tarOf(...snapEntries(S)), { dest });
      assert.equal(head.path, `${dest}/${S.prefix}`);
      assert.equal(head.digest, S.digest);
      const listed = (await h.store.list()).snapshots.find((x) => x.digest === S.digest);
      assert.equal(listed?.path, `${dest}/${S.prefix}`);
      assert.deepEqual((await tree(h.fs, `${h.home}/snapshots`)).filter((p) => p !== ".snapbundle-index.json"), before.filter((p) => p !== ".snapbundle-index.json"));
      assert.deepEqual(await tree(h.fs, dest), [`${S.prefix}/`, `${S.prefix}/manifest.json`, `${S.prefix}/upper.ext4`]);
      // a failing load into dest leaves dest as it was
      await rejects(h, tarOf(...snapEntries(S)), SnapshotAlreadyExists, [`${dest}/${S.prefix}`], { dest });
      assert.deepEqual(await tree(h.fs, dest), [`${S.prefix}/`, `${S.prefix}/manifest.json`, `${S.prefix}/upper.ext4`]);
    });
  });
}
