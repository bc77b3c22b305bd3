/**
 * Bundles made and read by tools nobody here wrote. A snapshot chain built
 * with our library is laid out by hand in the original layout
 * (`sha256-<16 hex>/…`, `cache/…`), archived with GNU tar, bsdtar and tar-js,
 * and loaded; what we write is listed and extracted by GNU tar. node:fs only
 * (the external tools see the real disk).
 *
 * Issue 11's producer matrix: GNU tar in each format, with and without
 * --sparse and each --sparse-version, sorted and in an explicit
 * upper-before-manifest order, piped or `--zstd`; bsdtar default and ustar;
 * Python's tarfile GNU and PAX; the npm `tar` package; tar-js — each archive
 * built in the test run loads and verifies, holes kept. And what `save`
 * writes (dense by default, `sparse: true`) is extracted byte for byte by
 * GNU tar, bsdtar and Python's tarfile, holes kept where the format has
 * them; the dense bundle also by npm `tar`.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import { createRequire } from "node:module";
import { archivePrefix } from "../src/layout.js";
import { hasZstdMagic, zstdCli } from "./helpers/archive-bundle.js";
import { walkHeaders } from "./helpers/archive-headers.js";
import { BACKENDS, makeHome, noise, tree, writeSparse } from "./helpers/homes.js";
import { buildImage, type BuiltImage } from "./helpers/image.js";
import { newTarJs } from "./helpers/tar-js.js";
import { allocatedBlocks, run, sha256File } from "./helpers/tar-tools.js";
import type { SnapshotInfo } from "../src/store.js";
import { HEAVY } from "./helpers/heavy.js";

const NODE = BACKENDS.find((b) => b.label === "node:fs")!;
const MiB = 1 << 20;

/** The head's upper: 6 MiB apparent, four data pieces, holes between and after. */
const HEAD_SIZE = 6 * MiB;
const HEAD_PIECES: [number, Uint8Array][] = [
  [0, noise(20_000, 1)],
  [MiB + 100, new TextEncoder().encode("hello from the sandbox ".repeat(200))],
  [3 * MiB, noise(70_000, 2)],
  [HEAD_SIZE - 5000 - 4096, noise(5000, 3)],
];
const HEAD_DATA = HEAD_PIECES.reduce((n, [, d]) => n + d.length, 0);
/** Allowed allocation beyond the data: block rounding of each piece, and filesystem metadata. */
const SLACK = 256 * 1024;

type Home = Awaited<ReturnType<typeof makeHome>>;

interface Source {
  home: Home;
  img: BuiltImage;
  parent: SnapshotInfo;
  head: SnapshotInfo;
  /** The original layout, laid out by hand. */
  layout: string;
  /** Every file of the layout, relative, in the order of docs/format.md §8.1 (each manifest before its upper). */
  files: string[];
}

async function makeSource(): Promise<Source> {
  const home = await makeHome(NODE);
  const { fs, root, store } = home;
  const img = await buildImage(fs, home.home);
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  await writeSparse(fs, `${root}/u-parent`, 300_000, [[0, noise(300_000, 9)]]);
  await writeSparse(fs, `${root}/u-head`, HEAD_SIZE, HEAD_PIECES);
  const parent = await store.create("parent", { upper: `${root}/u-parent`, image, integrity: true });
  const head = await store.create("head", { upper: `${root}/u-head`, image, parent: parent.digest, integrity: true, labels: { stage: "interop" } });
  const layout = `${root}/layout`;
  const files: string[] = [];
  for (const s of [parent, head]) {
    const dir = archivePrefix(s.digest);
    nodeFs.mkdirSync(`${layout}/${dir}`, { recursive: true });
    for (const f of ["manifest.json", "upper.ext4"]) {
      run("cp", ["--sparse=always", `${s.path}/${f}`, `${layout}/${dir}/${f}`]);
      files.push(`${dir}/${f}`);
    }
  }
  for (const p of img.files) {
    const rel = `cache${p.slice(`${home.home}/cache`.length)}`;
    nodeFs.mkdirSync(`${layout}/${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
    nodeFs.copyFileSync(p, `${layout}/${rel}`);
    files.push(rel);
  }
  return { home, img, parent, head, layout, files };
}

/** Load `archive` into a fresh home and check everything against the source. */
async function loadAndCompare(src: Source, archive: string): Promise<void> {
  const dst = await makeHome(NODE);
  try {
    const got = await dst.store.load(archive);
    assert.equal(got.digest, src.head.digest);
    assert.equal(got.name, archivePrefix(src.head.digest));
    assert.deepEqual(got.labels, { stage: "interop" });
    const listed = (await dst.store.list()).snapshots;
    assert.deepEqual(listed.map((s) => s.digest).sort(), [src.parent.digest, src.head.digest].sort());
    for (const s of [src.parent, src.head]) {
      const there = `${dst.home}/snapshots/${archivePrefix(s.digest)}`;
      assert.equal((await dst.store.verify(there)).integrity.status, "verified");
      for (const f of ["manifest.json", "upper.ext4"]) assert.equal(sha256File(`${there}/${f}`), sha256File(`${s.path}/${f}`), `${there}/${f}`);
    }
    const upper = `${dst.home}/snapshots/${archivePrefix(src.head.digest)}/upper.ext4`;
    assert.equal(nodeFs.statSync(upper).size, HEAD_SIZE);
    assert.ok(allocatedBlocks(upper) * 512 <= HEAD_DATA + SLACK, `the loaded upper allocates ${allocatedBlocks(upper) * 512} bytes for ${HEAD_DATA} of data`);
    for (const p of src.img.files) assert.equal(sha256File(p.replace(src.home.home, dst.home)), sha256File(p), p);
    assert.deepEqual(await tree(dst.fs, `${dst.home}/cache/tmp`), []);
    assert.deepEqual((await tree(dst.fs, `${dst.home}/snapshots`)).filter((p) => p.startsWith(".msb")), []);
  } finally {
    dst.cleanup();
  }
}

const sh = (cmd: string) => run("sh", ["-c", cmd]);

/** Cache first, then each snapshot's upper before its manifest, head first: the order a readdir often gives. */
const upperFirst = (src: Source) => {
  const snaps = src.files.filter((f) => !f.startsWith("cache/"));
  const pairs: string[][] = [];
  for (let k = 0; k < snaps.length; k += 2) pairs.push([snaps[k + 1]!, snaps[k]!]);
  return [...src.files.filter((f) => f.startsWith("cache/")), ...pairs.reverse().flat()];
};
/** Top-level directory arguments: directory entries, then readdir order or --sort=name. */
const tops = (src: Source) => [archivePrefix(src.parent.digest), archivePrefix(src.head.digest), "cache"];
/** npm `tar` (CommonJS/ESM dual, untyped here): only what the tests call. */
interface NpmTar {
  c(opts: { file: string; cwd: string; portable?: boolean; sync?: boolean }, files: string[]): void;
  x(opts: { file: string; cwd: string; sync?: boolean }): void;
}
const npmTar = createRequire(import.meta.url)("tar") as NpmTar;

const q = (s: string) => `'${s}'`;

/** A Python tarfile archive of `files` (relative to `cwd`) in `format` ("GNU" or "PAX"). */
function pythonTar(out: string, cwd: string, files: string[], format: "GNU" | "PAX"): void {
  const script = `import sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.${format}_FORMAT) as t:
    for f in sys.argv[3:]:
        t.add(f"{sys.argv[2]}/{f}", arcname=f)`;
  run("python3", ["-c", script, out, cwd, ...files]);
}


function withSource(name: string, body: (src: Source) => Promise<void>) {
  test(name, async () => {
    const src = await makeSource();
    try {
      await body(src);
    } finally {
      src.home.cleanup();
    }
  });
}

describe("loading bundles written by other tools", () => {
  withSource("GNU tar --format=gnu, explicit file list, piped through zstd -3", async (src) => {
    const out = `${src.home.root}/gnu.tar.zst`;
    sh(`tar --format=gnu -cf - -C ${src.layout} ${src.files.join(" ")} | zstd -3 -q -c > ${out}`);
    const headers = walkHeaders(zstdCli(nodeFs.readFileSync(out), ["-d"]));
    assert.deepEqual(headers.map((h) => h.name), src.files);
    await loadAndCompare(src, out);
  });

  withSource("GNU tar --sparse (old-GNU sparse entries), plain tar", async (src) => {
    const out = `${src.home.root}/gnu-sparse.tar`;
    run("tar", ["--format=gnu", "--sparse", "-cf", out, "-C", src.layout, ...src.files]);
    const upper = walkHeaders(nodeFs.readFileSync(out)).find((h) => h.name === `${archivePrefix(src.head.digest)}/upper.ext4`)!;
    assert.equal(upper.typeflag, "S", "GNU tar should store the head's upper sparsely");
    assert.equal(upper.realSize, HEAD_SIZE);
    assert.ok(nodeFs.statSync(out).size < HEAD_SIZE / 4);
    await loadAndCompare(src, out);
  });

  withSource("GNU tar with directory arguments (directory entries, --sort=name), zstd", async (src) => {
    const out = `${src.home.root}/gnu-dirs.tar.zst`;
    const tops = [archivePrefix(src.parent.digest), archivePrefix(src.head.digest), "cache"];
    sh(`tar --format=gnu --sparse --sort=name -cf - -C ${src.layout} ${tops.join(" ")} | zstd -3 -q -c > ${out}`);
    const names = walkHeaders(zstdCli(nodeFs.readFileSync(out), ["-d"])).map((h) => h.name);
    for (const d of [`${tops[0]}/`, `${tops[1]}/`, "cache/", "cache/layers/", "cache/manifests/"]) assert.ok(names.includes(d), `GNU tar should write ${d}`);
    assert.ok(names.indexOf(`${tops[1]}/manifest.json`) < names.indexOf(`${tops[1]}/upper.ext4`));
    await loadAndCompare(src, out);
  });

  withSource("bsdtar --format=gnutar", async (src) => {
    const out = `${src.home.root}/bsd-gnutar.tar`;
    run("bsdtar", ["-cf", out, "--format=gnutar", "-C", src.layout, ...src.files]);
    assert.deepEqual(walkHeaders(nodeFs.readFileSync(out)).map((h) => h.name), src.files);
    await loadAndCompare(src, out);
  });

  withSource("bsdtar default format (restricted pax) with --no-read-sparse, zstd", async (src) => {
    const out = `${src.home.root}/bsd-pax.tar.zst`;
    sh(`bsdtar -cf - --no-read-sparse -C ${src.layout} ${src.files.join(" ")} | zstd -3 -q -c > ${out}`);
    await loadAndCompare(src, out);
  });

  withSource("bsdtar default format reading holes writes PAX sparse (GNU.sparse 1.0): loads with its holes", async (src) => {
    const out = `${src.home.root}/bsd-pax-sparse.tar`;
    run("bsdtar", ["-cf", out, "-C", src.layout, ...src.files]);
    const names = walkHeaders(nodeFs.readFileSync(out)).map((h) => h.name);
    assert.ok(names.some((n) => n.includes("GNUSparseFile")), "bsdtar should store the head's upper as PAX sparse 1.0");
    await loadAndCompare(src, out);
  });

  withSource("tar-js (ustar built in memory), zstd", async (src) => {
    const tj = newTarJs();
    let bytes: Uint8Array = new Uint8Array(0);
    for (const f of src.files) bytes = tj.append(f, new Uint8Array(nodeFs.readFileSync(`${src.layout}/${f}`)), { mode: 0o644, mtime: 1714560000 });
    const out = `${src.home.root}/tarjs.tar.zst`;
    nodeFs.writeFileSync(out, zstdCli(bytes));
    await loadAndCompare(src, out);
  });
});

describe("what we write, as GNU tar sees it", () => {
  /** Names in the order of docs/format.md §8.1: ancestors first, each manifest then upper, then metadata, fsmeta, vmdk, layers. */
  const specOrder = (src: Source) => src.files;

  withSource("sparse: true — entries in the order of docs/format.md §8.1, GNU headers, the holed upper as an S entry; tar -x and tar -x --sparse reproduce every byte", async (src) => {
    const out = `${src.home.root}/ours.tar.zst`;
    await src.home.store.save("head", out, { withParents: true, withImage: true, sparse: true });
    const bytes = new Uint8Array(nodeFs.readFileSync(out));
    assert.ok(hasZstdMagic(bytes));
    const tarPath = `${src.home.root}/ours.tar`;
    run("zstd", ["-d", "-q", "-f", out, "-o", tarPath]);
    assert.deepEqual(run("tar", ["-tf", tarPath]).trim().split("\n"), specOrder(src));
    const verbose = run("tar", ["-tvf", tarPath]).trim().split("\n");
    assert.equal(verbose.length, src.files.length);
    const headUpper = `${archivePrefix(src.head.digest)}/upper.ext4`;
    assert.match(verbose.find((l) => l.endsWith(headUpper))!, new RegExp(`\\s${HEAD_SIZE}\\s`));
    const headers = walkHeaders(new Uint8Array(nodeFs.readFileSync(tarPath)));
    for (const h of headers) {
      assert.equal(h.magic, "ustar  \0", `${h.name}: GNU magic`);
      assert.equal(h.mode & 0o777, 0o644, `${h.name}: mode 0644`);
    }
    assert.equal(headers.find((h) => h.name === headUpper)!.typeflag, "S");
    assert.ok(headers.find((h) => h.name === headUpper)!.size <= HEAD_DATA + 4 * 4096, "only the data is stored");
    assert.equal(headers.find((h) => h.name === `${archivePrefix(src.parent.digest)}/upper.ext4`)!.typeflag, "0", "a dense upper is a regular entry");

    for (const flags of [[], ["--sparse"]]) {
      const x = `${src.home.root}/x${flags.length}`;
      nodeFs.mkdirSync(x);
      run("tar", ["-x", ...flags, "-f", tarPath, "-C", x]);
      for (const s of [src.parent, src.head]) {
        for (const f of ["manifest.json", "upper.ext4"]) {
          assert.equal(sha256File(`${x}/${archivePrefix(s.digest)}/${f}`), sha256File(`${s.path}/${f}`), `${flags.join(" ")} ${f}`);
        }
      }
      const extracted = `${x}/${headUpper}`;
      assert.equal(nodeFs.statSync(extracted).size, HEAD_SIZE);
      assert.ok(allocatedBlocks(extracted) * 512 <= HEAD_DATA + SLACK, `tar -x ${flags.join(" ")} allocated ${allocatedBlocks(extracted) * 512} bytes for ${HEAD_DATA} of data`);
      for (const p of src.img.files) assert.equal(sha256File(`${x}/cache${p.slice(`${src.home.home}/cache`.length)}`), sha256File(p));
    }
  });

  withSource("--plain-tar writes no zstd magic; GNU tar lists it as is", async (src) => {
    const out = `${src.home.root}/ours.tar`;
    await src.home.store.save("head", out, { withParents: true, withImage: true, plainTar: true });
    const bytes = new Uint8Array(nodeFs.readFileSync(out));
    assert.ok(!hasZstdMagic(bytes));
    assert.deepEqual(run("tar", ["-tf", out]).trim().split("\n"), specOrder(src));
    assert.deepEqual(walkHeaders(bytes).map((h) => h.name), specOrder(src));
  });

  withSource("the default writes the holed upper as a regular entry (typeflag 0); dense: true (the old option) too", async (src) => {
    const old = `${src.home.root}/dense-option.tar`;
    await src.home.store.save("head", old, { plainTar: true, dense: true, sparse: true });
    const out = `${src.home.root}/dense.tar`;
    await src.home.store.save("head", out, { plainTar: true });
    assert.deepEqual(nodeFs.readFileSync(old), nodeFs.readFileSync(out));
    const headUpper = `${archivePrefix(src.head.digest)}/upper.ext4`;
    const h = walkHeaders(new Uint8Array(nodeFs.readFileSync(out))).find((e) => e.name === headUpper)!;
    assert.equal(h.typeflag, "0");
    assert.equal(h.size, HEAD_SIZE);
    const x = `${src.home.root}/xd`;
    nodeFs.mkdirSync(x);
    run("tar", ["-xf", out, "-C", x]);
    assert.equal(sha256File(`${x}/${headUpper}`), sha256File(`${src.head.path}/upper.ext4`));
    // it loads back, holes and all
    const dst = await makeHome(NODE);
    try {
      const got = await dst.store.load(out);
      assert.equal(got.digest, src.head.digest);
      assert.equal((await dst.store.verify(got.path)).integrity.status, "verified");
      assert.equal(sha256File(`${got.path}/upper.ext4`), sha256File(`${src.head.path}/upper.ext4`));
      assert.ok(allocatedBlocks(`${got.path}/upper.ext4`) * 512 <= HEAD_DATA + SLACK);
    } finally {
      dst.cleanup();
    }
  });
});

describe("every producer's archive loads and verifies, in any member order", () => {
  let src: Source;
  before(async () => {
    src = await makeSource();
  });
  after(() => src.home.cleanup());

  const gnu: { name: string; flags: string[] }[] = [
    { name: "--format=gnu", flags: ["--format=gnu"] },
    { name: "--format=gnu --sparse (old-GNU S)", flags: ["--format=gnu", "--sparse"] },
    { name: "--format=posix", flags: ["--format=posix"] },
    { name: "--format=posix --sparse (default version)", flags: ["--format=posix", "--sparse"] },
    ...["0.0", "0.1", "1.0"].map((v) => ({ name: `--format=posix --sparse --sparse-version=${v}`, flags: ["--format=posix", "--sparse", `--sparse-version=${v}`] })),
    { name: "--format=ustar", flags: ["--format=ustar"] },
  ];
  for (const { name, flags } of gnu) {
    test(`GNU tar ${name}, upper before manifest (explicit order), piped through zstd`, async () => {
      const out = `${src.home.root}/gnu-${flags.join("").replace(/[^a-z0-9.]/gi, "")}-uf.tar.zst`;
      sh(`tar ${flags.join(" ")} -cf - -C ${q(src.layout)} ${upperFirst(src).join(" ")} | zstd -3 -q -c > ${q(out)}`);
      await loadAndCompare(src, out);
    });
    test(`GNU tar ${name} --sort=name with directory arguments, --zstd`, async () => {
      const out = `${src.home.root}/gnu-${flags.join("").replace(/[^a-z0-9.]/gi, "")}-sorted.tar.zst`;
      run("tar", [...flags, "--sort=name", "--zstd", "-cf", out, "-C", src.layout, ...tops(src)]);
      await loadAndCompare(src, out);
    });
  }

  test("the sparse forms are what the test claims they are", () => {
    const headUpper = `${archivePrefix(src.head.digest)}/upper.ext4`;
    const plain = (tag: string, flags: string[]) => {
      const out = `${src.home.root}/probe-${tag}.tar`;
      run("tar", [...flags, "-cf", out, "-C", src.layout, ...src.files]);
      return walkHeaders(new Uint8Array(nodeFs.readFileSync(out)));
    };
    assert.equal(plain("s", ["--format=gnu", "--sparse"]).find((h) => h.name === headUpper)!.typeflag, "S");
    const v1 = plain("v1", ["--format=posix", "--sparse", "--sparse-version=1.0"]);
    assert.ok(v1.some((h) => h.name.includes("GNUSparseFile")), "1.0 hides the real name in GNU.sparse.name");
  });

  test("bsdtar default format (PAX, sparse 1.0 for the holed uppers), upper before manifest", async () => {
    const out = `${src.home.root}/bsd-default.tar`;
    run("bsdtar", ["-cf", out, "-C", src.layout, ...upperFirst(src)]);
    await loadAndCompare(src, out);
  });

  test("bsdtar default format with directory arguments (readdir order), zstd", async () => {
    const out = `${src.home.root}/bsd-dirs.tar.zst`;
    sh(`bsdtar -cf - -C ${q(src.layout)} ${tops(src).join(" ")} | zstd -3 -q -c > ${q(out)}`);
    await loadAndCompare(src, out);
  });

  test("bsdtar --format=ustar, upper before manifest", async () => {
    const out = `${src.home.root}/bsd-ustar.tar`;
    run("bsdtar", ["--format=ustar", "-cf", out, "-C", src.layout, ...upperFirst(src)]);
    await loadAndCompare(src, out);
  });

  for (const format of ["GNU", "PAX"] as const) {
    test(`Python tarfile ${format}_FORMAT, upper before manifest`, async () => {
      const out = `${src.home.root}/py-${format}.tar`;
      pythonTar(out, src.layout, upperFirst(src), format);
      await loadAndCompare(src, out);
    });
  }

  test("npm tar (portable), upper before manifest, zstd", async () => {
    const plain = `${src.home.root}/npm.tar`;
    npmTar.c({ file: plain, cwd: src.layout, portable: true, sync: true }, upperFirst(src));
    const out = `${plain}.zst`;
    run("zstd", ["-3", "-q", "-f", plain, "-o", out]);
    await loadAndCompare(src, out);
  });

  test("tar-js (ustar built in memory), upper before manifest", async () => {
    const tj = newTarJs();
    let bytes: Uint8Array = new Uint8Array(0);
    for (const f of upperFirst(src)) bytes = tj.append(f, new Uint8Array(nodeFs.readFileSync(`${src.layout}/${f}`)), { mode: 0o644, mtime: 1714560000 });
    const out = `${src.home.root}/tarjs.tar`;
    nodeFs.writeFileSync(out, bytes);
    await loadAndCompare(src, out);
  });
});

describe("what save writes, other tools extract byte for byte", () => {
  let src: Source;
  const saved: Record<"dense" | "sparse", string> = { dense: "", sparse: "" };
  before(async () => {
    src = await makeSource();
    for (const mode of ["dense", "sparse"] as const) {
      saved[mode] = `${src.home.root}/saved-${mode}.tar`;
      await src.home.store.save("head", saved[mode], { withParents: true, withImage: true, plainTar: true, sparse: mode === "sparse" });
    }
  });
  after(() => src.home.cleanup());

  /** Check an extraction in `x`; `holes`: the head's upper must come out sparse. */
  const check = (x: string, holes: boolean, what: string) => {
    for (const s of [src.parent, src.head]) {
      for (const f of ["manifest.json", "upper.ext4"]) {
        assert.equal(sha256File(`${x}/${archivePrefix(s.digest)}/${f}`), sha256File(`${s.path}/${f}`), `${what}: ${f}`);
      }
    }
    for (const p of src.img.files) assert.equal(sha256File(`${x}/cache${p.slice(`${src.home.home}/cache`.length)}`), sha256File(p), `${what}: ${p}`);
    const upper = `${x}/${archivePrefix(src.head.digest)}/upper.ext4`;
    assert.equal(nodeFs.statSync(upper).size, HEAD_SIZE);
    if (holes) assert.ok(allocatedBlocks(upper) * 512 <= HEAD_DATA + SLACK, `${what}: extracted upper allocates ${allocatedBlocks(upper) * 512} bytes`);
  };
  const fresh = (tag: string) => {
    const x = `${src.home.root}/x-${tag}`;
    nodeFs.mkdirSync(x);
    return x;
  };

  test("the default is regular entries; sparse: true writes an S entry for the holed upper", () => {
    const headUpper = `${archivePrefix(src.head.digest)}/upper.ext4`;
    const flag = (mode: "dense" | "sparse") => walkHeaders(new Uint8Array(nodeFs.readFileSync(saved[mode]))).find((h) => h.name === headUpper)!.typeflag;
    assert.equal(flag("dense"), "0");
    assert.equal(flag("sparse"), "S");
  });

  for (const mode of ["dense", "sparse"] as const) {
    test(`${mode}: GNU tar -x --sparse, bsdtar -x and Python tarfile extract every byte${mode === "sparse" ? ", holes kept" : ""}`, () => {
      let x = fresh(`gnu-${mode}`);
      run("tar", ["-x", "--sparse", "-f", saved[mode], "-C", x]);
      check(x, mode === "sparse", `GNU tar (${mode})`);
      x = fresh(`bsd-${mode}`);
      run("bsdtar", ["-x", "-f", saved[mode], "-C", x]);
      check(x, mode === "sparse", `bsdtar (${mode})`);
      x = fresh(`py-${mode}`);
      run("python3", ["-c", "import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t: t.extractall(sys.argv[2])", saved[mode], x]);
      check(x, mode === "sparse", `Python tarfile (${mode})`);
    });
  }

  test("dense: the npm tar package extracts every byte", () => {
    const x = fresh("npm-dense");
    npmTar.x({ file: saved.dense, cwd: x, sync: true });
    check(x, false, "npm tar (dense)");
  });
});

{
  describe("heavy: a 4 GiB-apparent upper holding 16 MiB", () => {
    test("saves to about the data's compressed size and loads back sparse", { skip: HEAVY }, async () => {
      const src = await makeHome(NODE);
      const dst = await makeHome(NODE);
      try {
        const size = 4 * 1024 * MiB;
        const pieces: [number, Uint8Array][] = [];
        for (let i = 0; i < 16; i++) {
          const piece = new Uint8Array(MiB);
          piece.set(noise(MiB / 2, 100 + i));
          piece.set(new TextEncoder().encode(`block ${i} `.repeat(MiB / 2 / 10).slice(0, MiB / 2)), MiB / 2);
          pieces.push([i * 256 * MiB + 8192, piece]);
        }
        await writeSparse(src.fs, `${src.root}/u`, size, pieces);
        nodeFs.writeFileSync(`${src.root}/data`, Buffer.concat(pieces.map(([, d]) => d)));
        run("zstd", ["-3", "-q", "-f", `${src.root}/data`, "-o", `${src.root}/data.zst`]);
        const dataZst = nodeFs.statSync(`${src.root}/data.zst`).size;
        await src.store.create("big", { upper: `${src.root}/u`, image: { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) } });
        const out = `${src.root}/big.tar.zst`;
        await src.store.save("big", out);
        const archive = nodeFs.statSync(out).size;
        assert.ok(archive < 2 * dataZst, `archive ${archive} bytes, zstd -3 of the data alone ${dataZst}`);
        const got = await dst.store.load(out);
        const upper = `${got.path}/upper.ext4`;
        assert.equal(nodeFs.statSync(upper).size, size);
        assert.ok(allocatedBlocks(upper) * 512 <= 16 * MiB + 16 * 8192 + SLACK, `allocated ${allocatedBlocks(upper) * 512}`);
        assert.equal(sha256File(upper), sha256File(`${src.home}/snapshots/big/upper.ext4`));
      } finally {
        src.cleanup();
        dst.cleanup();
      }
    });
  });
}
