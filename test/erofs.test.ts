/**
 * The EROFS rule of the image cache (issue 23, docs/format.md §9.6 step 9,
 * microsandbox's `is_valid_erofs_artifact`): real images made by
 * `mkfs.erofs` pass, whatever options it offers; hostile ones, crafted byte
 * by byte, fail with the rule they break; in a `--with-image` bundle of
 * either layout, with every hash recomputed so only this rule can refuse it,
 * 4096 random bytes or 8192 zero bytes as an fsmeta or layer file are
 * refused by load and by `verify BUNDLE`, naming the file and the rule.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EROFS_RULE, ErofsCheck, ErofsStreamCheck } from "../src/archive/erofs.js";
import { erofsFileProblem } from "../src/archive/image-cache.js";
import { verifyBundle } from "../src/archive/inspect.js";
import { ImageCacheError } from "../src/errors.js";
import { nodeFs } from "../src/fs/node.js";
import { SnapshotStore } from "../src/store.js";
import { fingerprint } from "./helpers/archive-fs.js";
import { imageFixture, snapEntries, snapFixture, tarOf } from "./helpers/archive-bundle.js";
import { imageBundle, minimalErofs } from "./helpers/erofs.js";
import { noise } from "./helpers/homes.js";

const T = { timeout: 60_000 };
const fs = nodeFs();

function scratch(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "snapbundle-erofs-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The verdict of both forms of the check: positioned reads of a file, and one streamed pass in `chunk`-byte pieces. */
async function verdicts(dir: string, bytes: Uint8Array): Promise<(string | null)[]> {
  const chunks = [bytes.length <= 16384 ? 1 : 3, 7, 4096, 1 << 20];
  const path = join(dir, `probe-${Math.random().toString(36).slice(2)}.erofs`);
  writeFileSync(path, bytes);
  const out = [await erofsFileProblem(fs, path, bytes.length)];
  for (const n of chunks) {
    const s = new ErofsStreamCheck(bytes.length);
    for (let at = 0; at < bytes.length; at += n) s.feed(bytes.subarray(at, at + n));
    out.push(s.finish());
  }
  rmSync(path);
  return out;
}

/** mkfs.erofs's option sets (erofs-utils 1.5 has no block size option: 4096 always). */
const MKFS_OPTIONS: readonly string[][] = [[], ["-zlz4"], ["-zlz4hc"], ["-Eforce-inode-compact"], ["-Eforce-inode-extended"], ["--chunksize=4096"], ["-Enoinline_data"], ["-Enosbcrc"], ["-x-1"], ["-T0", "--all-root"]];

function mkfs(dir: string, tree: string, options: readonly string[], name: string): Uint8Array {
  const out = join(dir, `${name}.img`);
  execFileSync("mkfs.erofs", ["--quiet", ...options, out, tree], { stdio: ["ignore", "ignore", "pipe"] });
  return new Uint8Array(readFileSync(out));
}

/** A small tree: files, a symlink, a subdirectory with a long name list (several directory blocks), an empty directory. */
function smallTree(dir: string): string {
  const t = join(dir, "tree");
  mkdirSync(join(t, "sub", "deeper"), { recursive: true });
  mkdirSync(join(t, "empty"));
  writeFileSync(join(t, "hello.txt"), "hello\n");
  writeFileSync(join(t, "big.bin"), noise(20_000, 3));
  symlinkSync("hello.txt", join(t, "link"));
  for (let i = 0; i < 150; i++) writeFileSync(join(t, "sub", `file-with-a-long-name-${String(i).padStart(4, "0")}`), String(i));
  return t;
}

/** A real mkfs.erofs image of the small tree, for the hostile edits below. */
function realImage(dir: string): Uint8Array {
  return mkfs(dir, smallTree(dir), [], "base");
}

const le16 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint16(at, v, true);
const le32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const rootInodeAt = (b: Uint8Array) => {
  const v = new DataView(b.buffer, b.byteOffset);
  return v.getUint32(1024 + 40, true) * 4096 + v.getUint16(1024 + 14, true) * 32;
};

describe("the EROFS check", () => {
  test("rule: every image mkfs.erofs makes, of a small tree and of an empty one, with each of its options, is valid (file and stream agree)", T, async () => {
    const { dir, cleanup } = scratch();
    try {
      const tree = smallTree(dir);
      const empty = join(dir, "empty-tree");
      mkdirSync(empty);
      for (const options of MKFS_OPTIONS) {
        for (const [what, t] of [["small tree", tree], ["empty tree", empty]] as const) {
          const img = mkfs(dir, t, options, "img");
          assert.equal(img.length % 4096, 0);
          assert.deepEqual(await verdicts(dir, img), [null, null, null, null, null], `mkfs.erofs ${options.join(" ")} of the ${what}`);
        }
      }
    } finally {
      cleanup();
    }
  });

  test("rule: the minimal images the fixtures carry are valid EROFS: fsck.erofs accepts them, and so does the check", T, async () => {
    const { dir, cleanup } = scratch();
    try {
      for (const size of [4096, 8192, 12288]) {
        const img = minimalErofs(size, size);
        const path = join(dir, `min-${size}.img`);
        writeFileSync(path, img);
        execFileSync("fsck.erofs", [path], { stdio: ["ignore", "ignore", "pipe"] });
        assert.deepEqual(await verdicts(dir, img), [null, null, null, null, null], `${size} bytes`);
      }
      // fsck.erofs is a real judge: it refuses the harness's cases too
      writeFileSync(join(dir, "zeros.img"), new Uint8Array(8192));
      assert.throws(() => execFileSync("fsck.erofs", [join(dir, "zeros.img")], { stdio: "ignore" }));
    } finally {
      cleanup();
    }
  });

  test("attack: 4096 random bytes, 8192 zero bytes, a wrong size: refused, naming what is wrong", T, async () => {
    const { dir, cleanup } = scratch();
    try {
      const random = noise(4096, 99);
      const magic = new DataView(random.buffer).getUint32(1024, true).toString(16).padStart(8, "0");
      const all = (p: string) => [p, p, p, p, p];
      assert.deepEqual(await verdicts(dir, random), all(`no EROFS superblock magic at byte 1024 (found 0x${magic})`));
      assert.deepEqual(await verdicts(dir, new Uint8Array(8192)), all("no EROFS superblock magic at byte 1024 (found 0x00000000)"));
      assert.equal(new ErofsCheck(0).problem, "not a non-empty multiple of 4096 bytes (0 bytes)");
      assert.equal(new ErofsCheck(4097).problem, "not a non-empty multiple of 4096 bytes (4097 bytes)");
    } finally {
      cleanup();
    }
  });

  test("attack: a real image edited byte by byte: other block size, root inode past the end, root not a directory, hostile root xattrs", T, async () => {
    const { dir, cleanup } = scratch();
    try {
      const base = realImage(dir);
      const edit = (f: (b: Uint8Array) => void) => {
        const b = base.slice();
        f(b);
        return b;
      };
      const all = (p: string) => [p, p, p, p, p];
      assert.deepEqual(await verdicts(dir, edit((b) => (b[1024 + 12] = 9))), all("block size 2^9 bytes; microsandbox reads 4096-byte blocks only"));
      const pastEnd = edit((b) => le32(b, 1024 + 40, base.length / 4096));
      assert.deepEqual(await verdicts(dir, pastEnd), all(`the root inode (nid ${new DataView(base.buffer).getUint16(1024 + 14, true)}, meta_blkaddr ${base.length / 4096}) at byte ${rootInodeAt(pastEnd)} lies past the end of the ${base.length}-byte image`));
      const at = rootInodeAt(base);
      assert.deepEqual(await verdicts(dir, edit((b) => le16(b, at + 4, 0o100644))), all(`the root inode at byte ${at} is not a directory (mode 0o100644)`));
      // an inline xattr on the root, in the body after a compact inode: icount 3 = 12-byte header + 8 bytes
      const withXattr = (index: number, nameLen: number, valueLen: number) =>
        edit((b) => {
          le16(b, at, new DataView(b.buffer).getUint16(at, true) & ~1); // compact: the body starts 32 bytes in
          le16(b, at + 2, 3);
          b.fill(0, at + 32, at + 32 + 20);
          b.set([nameLen, index, valueLen & 0xff, valueLen >> 8], at + 32 + 12);
        });
      assert.deepEqual(await verdicts(dir, withXattr(2, 1, 0)), all("the root inode has an xattr with name index 2 (microsandbox reads user, trusted and security only)"));
      assert.deepEqual(await verdicts(dir, withXattr(1, 200, 0)), all("a root inode xattr entry runs past its xattr body"));
      const user = withXattr(1, 1, 3);
      user.set([0x61, 0x62, 0x63, 0x64], at + 32 + 16); // user.a = "bcd": 4 + 1 + 3 = 8 bytes, the body exactly
      assert.deepEqual(await verdicts(dir, user), [null, null, null, null, null], "a root with one user. xattr is fine");
      // shared xattr ids that do not fit the body
      assert.deepEqual(await verdicts(dir, edit((b) => { le16(b, at + 2, 1); b[at + 32 + 4] = 1; le16(b, at, new DataView(b.buffer).getUint16(at, true) & ~1); })), all("the root inode's xattrs name 1 shared xattrs, more than their 12-byte body holds"));
    } finally {
      cleanup();
    }
  });

  test("rule: the check reads only what it needs: a superblock, a root inode and its xattrs, however large the image", T, () => {
    const check = new ErofsCheck(1 << 30);
    const asked: number[] = [];
    const img = minimalErofs(8192);
    for (let r = check.need; r !== null; r = check.need) {
      asked.push(r.length);
      check.supply(img.subarray(r.offset, r.offset + r.length));
    }
    assert.deepEqual(asked, [128, 64]);
    assert.equal(check.problem, null);
  });

  test("rule: a streamed image with holes (a sparse archive member) reads the holes as zeros", T, () => {
    const img = minimalErofs(3 * 4096, 4);
    img.fill(0, 4096); // the noise after the first block, now zeros: a sparse member would carry it as a hole
    const s = new ErofsStreamCheck(img.length);
    s.feed(img.subarray(0, 1000)); // a data run, then a hole up to 1024, then the rest of the first block
    s.feed(img.subarray(1024, 4096), 1024);
    assert.equal(s.finish(), null);
    const t = new ErofsStreamCheck(img.length);
    t.feed(img.subarray(0, 1000));
    assert.equal(t.finish(), "no EROFS superblock magic at byte 1024 (found 0x00000000)", "a hole where the superblock is");
  });
});

describe("EROFS files in --with-image bundles", () => {
  const CASES: readonly [string, (size: number) => Uint8Array][] = [
    ["4096 random bytes", () => noise(4096, 77)],
    ["8192 zero bytes", () => new Uint8Array(8192)],
  ];

  for (const layout of ["manifest", "snapshot"] as const) {
    test(`rule: a ${layout}-layout bundle whose fsmeta or layer file is not EROFS is refused by load (home unchanged) and by verify BUNDLE, naming the file and the rule`, T, async () => {
      const { dir, cleanup } = scratch();
      try {
        const image = await imageFixture();
        const real = realImage(dir);
        const save = (name: string, bytes: Uint8Array) => {
          const p = join(dir, name);
          writeFileSync(p, bytes);
          return p;
        };
        // controls: the fixture's own images, and a real mkfs.erofs image as the fsmeta: both load
        const withReal = image.files.map((f, i) => (i === 1 ? { ...f, bytes: real } : f));
        for (const [what, files] of [["minimal images", image.files], ["a real fsmeta", withReal]] as const) {
          const bundle = save(`ok-${what}.tar`, await imageBundle(layout, image, files));
          await verifyBundle(fs, bundle);
          await new SnapshotStore(fs, join(dir, `home-ok-${what}`)).load(bundle);
        }
        for (const target of [1, 3]) {
          const kind = target === 1 ? "fsmeta" : "layers";
          assert.ok(image.files[target]!.archivePath.startsWith(`cache/${kind}/`));
          for (const [what, make] of CASES) {
            const files = image.files.map((f, i) => (i === target ? { ...f, bytes: make(f.bytes.length) } : f));
            const bundle = save(`bad-${kind}-${what}.tar`, await imageBundle(layout, image, files));
            const home = join(dir, `home-${kind}-${what}`);
            const store = new SnapshotStore(fs, home);
            await store.load(save("other.tar", tarOf(...snapEntries(snapFixture())))); // a home with something in it
            const before = await fingerprint(fs, home);
            const refused = (e: unknown) => {
              assert.ok(e instanceof ImageCacheError, `${kind}, ${what}: ${(e as Error).name}: ${(e as Error).message}`);
              assert.ok(e.message.includes(`image cache file ${image.files[target]!.archivePath} is not a valid EROFS image: no EROFS superblock magic at byte 1024`), e.message);
              assert.ok(e.message.includes(EROFS_RULE), e.message);
              return true;
            };
            await assert.rejects(store.load(bundle), refused);
            assert.deepEqual(await fingerprint(fs, home), before, `${kind}, ${what}: the home is as it was`);
            await assert.rejects(verifyBundle(fs, bundle), refused);
          }
        }
      } finally {
        cleanup();
      }
    });
  }
});
