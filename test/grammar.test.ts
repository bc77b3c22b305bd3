/**
 * Unit tests of the entry grammar (`src/archive/grammar.ts`): the stateful
 * checker fed entries and "end of archive", one group per rule.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ArchiveError, InvalidSnapshot, type SnapbundleError } from "../src/errors.js";
import { BundleGrammar, DEFAULT_MAX_APPARENT_BYTES, type EntryFacts, type Msb06FilePlace, type SnapshotFilePlace } from "../src/archive/grammar.js";
import { parseManifest } from "../src/manifest.js";

const P = "sha256-0123456789abcdef";

function manifestOf(file = "upper.ext4", size = 8192): ReturnType<typeof parseManifest> {
  return parseManifest(
    JSON.stringify({
      schema: 1, format: "raw", fstype: "ext4",
      image: { ref: "alpine:3", manifest_digest: "sha256:" + "a".repeat(64) },
      parent: null, created_at: "2026-05-01T12:00:00Z", labels: {},
      upper: { file, size_bytes: size, integrity: null }, source_sandbox: null,
    }),
  );
}

let offset = 0;
function file(path: string, size = 0, kind = "file", typeflag = "0"): EntryFacts {
  offset += 512;
  return { path, size, kind, typeflag, headerOffset: offset };
}
const dir = (path: string) => file(path, 0, "directory", "5");

/** Feed entries; manifests get `m` (or the default). */
function run(entries: EntryFacts[], m = manifestOf(), options: { maxApparentBytes?: number } = {}) {
  const g = new BundleGrammar({ label: "t.tar", ...options });
  for (const e of entries) {
    const act = g.admit(e);
    if (act.do === "manifest") g.manifest(act.place as SnapshotFilePlace, m);
  }
  return g.end();
}

/** The stable `code` of each error class a grammar raises (errors carry a machine-readable code). */
const CODES = new Map<Function, string>([[ArchiveError, "archive"], [InvalidSnapshot, "invalid-snapshot"]]);

function refused(entries: EntryFacts[], needles: (string | RegExp)[], cls: new (...a: never[]) => Error = ArchiveError, m = manifestOf(), options = {}): void {
  assert.throws(
    () => run(entries, m, options),
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
      assert.equal((e as SnapbundleError).code, CODES.get(cls), `the code of ${cls.name}`);
      assert.ok((e as Error).message.startsWith("t.tar: "), `the archive label leads: ${(e as Error).message}`);
      for (const n of needles) {
        if (typeof n === "string") assert.ok((e as Error).message.includes(n), `${JSON.stringify((e as Error).message)} should name ${JSON.stringify(n)}`);
        else assert.match((e as Error).message, n);
      }
      return true;
    },
  );
}

describe("grammar: member order", () => {
  test("manifest first, upper first, directory anywhere or missing: all accepted alike", () => {
    const orders = [
      [file(`${P}/manifest.json`, 100), file(`${P}/upper.ext4`, 8192)],
      [file(`${P}/upper.ext4`, 8192), file(`${P}/manifest.json`, 100)],
      [dir(`${P}/`), file(`${P}/upper.ext4`, 8192), file(`${P}/manifest.json`, 100)],
      [file(`${P}/upper.ext4`, 8192), dir(`${P}/`), file(`${P}/manifest.json`, 100)],
      [file(`${P}/upper.ext4`, 8192), file(`${P}/manifest.json`, 100), dir(`${P}/`)],
    ];
    for (const entries of orders) {
      const c = run(entries);
      assert.deepEqual(c.snapshots.map((s) => s.prefix), [P]);
      assert.equal(c.apparentBytes, 8292);
    }
  });
  test("snapshots are reported in the order of their manifests", () => {
    const c = run([file("b/upper.ext4", 8192), file("a/manifest.json", 1), file("a/upper.ext4", 8192), file("b/manifest.json", 1)]);
    assert.deepEqual(c.snapshots.map((s) => s.prefix), ["a", "b"]);
  });
});

describe("grammar: membership", () => {
  test("upper before its manifest with the wrong name: refused when the manifest comes, naming the upper", () => {
    refused([file(`${P}/notes.txt`, 8192), file(`${P}/manifest.json`, 1)], [`"${P}/notes.txt"`, "not part of the snapshot", "upper.ext4"]);
  });
  test("upper before its manifest with the wrong size: refused when the manifest comes", () => {
    refused([file(`${P}/upper.ext4`, 4096), file(`${P}/manifest.json`, 1)], [`"${P}/upper.ext4"`, "declares 4096 bytes", "size_bytes 8192"]);
  });
  test("upper after its manifest with the wrong size: refused on admission, before its data", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    const act = g.admit(file(`${P}/manifest.json`, 1));
    g.manifest(act.place as SnapshotFilePlace, manifestOf());
    assert.throws(() => g.admit(file(`${P}/upper.ext4`, 2 ** 40)), /declares 1099511627776 bytes but its manifest records size_bytes 8192/);
  });
  test("an extra file after the manifest and upper", () => {
    refused([file(`${P}/manifest.json`, 1), file(`${P}/upper.ext4`, 8192), file(`${P}/notes.txt`, 2)], [`"${P}/notes.txt"`, "not part of the snapshot"]);
  });
  test("two non-manifest files before the manifest: the second is refused at once", () => {
    refused([file(`${P}/upper.ext4`, 8192), file(`${P}/other`, 1)], [`"${P}/other"`, "one upper"]);
  });
  test("a file whose snapshot never gets a manifest", () => {
    refused([file(`a/manifest.json`, 1), file(`a/upper.ext4`, 8192), file(`b/upper.ext4`, 8192)], [`"b/upper.ext4"`, "no b/manifest.json"]);
  });
  test("a directory entry without a manifest", () => {
    refused([dir("x/"), file(`${P}/manifest.json`, 1), file(`${P}/upper.ext4`, 8192)], ['"x/"', "no manifest.json"]);
  });
  test("no manifest at all", () => {
    refused([], ["no snapshot manifest"]);
    refused([dir("x/")], ["no snapshot manifest"]);
    refused([file("cache/vmdk/a.vmdk", 5)], ["no snapshot manifest"]);
  });
  test("a manifest whose upper never comes: InvalidSnapshot naming the upper", () => {
    refused([file(`${P}/manifest.json`, 1)], [`${P}/upper.ext4`, "does not exist"], InvalidSnapshot);
  });
});

describe("grammar: duplicates", () => {
  test("the same path twice, or a directory and a file of one name", () => {
    refused([file(`${P}/manifest.json`, 1), file(`${P}/manifest.json`, 1)], [`"${P}/manifest.json"`, "appears twice"]);
    refused([dir("cache/"), dir("cache")], ['"cache"', "appears twice"]);
  });
  test("rule: the duplicate rule compares paths byte for byte: snapshots Py/ and py/ are two (legal on Linux), and both load", () => {
    const entries = ["Py", "py", "PY"].flatMap((p) => [dir(`${p}/`), file(`${p}/manifest.json`, 1), file(`${p}/upper.ext4`, 8192)]);
    assert.deepEqual(run(entries).snapshots.map((s) => s.prefix), ["Py", "py", "PY"]);
    refused([...entries, file("py/upper.ext4", 8192)], ['"py/upper.ext4"', "appears twice"]);
  });
});

describe("grammar: types and paths", () => {
  test("links, devices and FIFOs are refused naming the entry", () => {
    for (const [kind, tf, word] of [["symlink", "2", "symbolic link"], ["hardlink", "1", "hard link"], ["char", "3", "character device"], ["fifo", "6", "FIFO"], ["other", "L", "GNU long-name"]] as const) {
      refused([file(`${P}/upper.ext4`, 0, kind, tf)], [`"${P}/upper.ext4"`, word, "only regular files and directories"]);
    }
  });
  test("paths: absolute, .., ., empty components, backslash, hidden prefix, depth", () => {
    for (const [p, rule] of [
      ["/etc/passwd", "absolute"], ["a/../b", '".."'], ["./a/b", '"."'], ["a//b", "empty path components"],
      ["a\\b/c", "backslashes"], [".hidden/manifest.json", 'must not start with "."'], ["a/b/c", "exactly two components"],
      ["cache/bin/x", "unknown cache kind"], ["cache/layers/x.txt", "must end in .erofs"], ["a/b/", "one component"],
    ]) {
      refused([p!.endsWith("/") ? dir(p!) : file(p!, 1)], [JSON.stringify(p), rule!]);
    }
  });
});

describe("grammar: sizes", () => {
  test("a manifest over 1 MiB and image metadata over 64 MiB are refused on admission", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    assert.throws(() => g.admit(file(`${P}/manifest.json`, (1 << 20) + 1)), /a manifest may be at most 1048576/);
    assert.throws(() => g.admit(file("cache/manifests/k.json", (64 << 20) + 1)), /image metadata may be at most 67108864/);
  });
  test("the apparent-size cap counts every file, in any order, and names the option", () => {
    const entries = [file(`${P}/upper.ext4`, 8192), file(`${P}/manifest.json`, 100), file("cache/vmdk/a.vmdk", 200)];
    assert.equal(run(entries, manifestOf(), { maxApparentBytes: 8492 }).apparentBytes, 8492);
    refused(entries, ['"cache/vmdk/a.vmdk"', "over the cap of 8491", "--max-apparent-size"], ArchiveError, manifestOf(), { maxApparentBytes: 8491 });
    refused([file(`${P}/upper.ext4`, 2 ** 40)], [`"${P}/upper.ext4"`, "1099511627776", `cap of ${DEFAULT_MAX_APPARENT_BYTES}`]);
  });
});

describe("unpack step with a sink that writes nothing (verify without installing)", () => {
  test("discardSink: the grammar still sees every entry, in any order, and refuses what it refuses", async () => {
    const { unpackArchive, discardSink } = await import("../src/archive/unpack.js");
    const { snapFixture, snapEntries, tarOf, fileEntry } = await import("./helpers/archive-bundle.js");
    const S = snapFixture();
    const [m, u] = snapEntries(S);
    const stream = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
    const seen: string[] = [];
    const counting = { directory: async () => {}, file: async (place: { file: string }) => void seen.push(place.file) };
    const c = await unpackArchive(stream(tarOf(u!, m!)), counting, { label: "t.tar" });
    assert.deepEqual(c.snapshots.map((s) => [s.prefix, s.manifest.upper.size_bytes]), [[S.prefix, 12288]]);
    assert.deepEqual(seen, ["upper.ext4", "manifest.json"]);
    assert.equal((await unpackArchive(stream(tarOf(m!, u!)), discardSink, { label: "t.tar" })).apparentBytes, 12288 + S.manifest.length);
    await assert.rejects(unpackArchive(stream(tarOf(m!, u!, fileEntry(`${S.prefix}/x`, "1"))), discardSink, { label: "t.tar" }), /t\.tar: archive entry ".*\/x" is not part of the snapshot/);
  });
});

describe("load --max-apparent-size: the byte sizes it takes", () => {
  test("plain counts and K/M/G/T suffixes (powers of 1024, optional iB/B), others refused naming the flag", async () => {
    const { parseByteSize } = await import("../src/cli/args.js");
    assert.equal(parseByteSize("4096", "--max-apparent-size"), 4096);
    assert.equal(parseByteSize("512M", "--max-apparent-size"), 512 * 2 ** 20);
    assert.equal(parseByteSize("256G", "--max-apparent-size"), DEFAULT_MAX_APPARENT_BYTES);
    assert.equal(parseByteSize("1TiB", "--max-apparent-size"), 2 ** 40);
    assert.equal(parseByteSize("2kb", "--max-apparent-size"), 2048);
    for (const bad of ["", "-1", "1.5G", "12Q", "G", "99999999999P"]) {
      assert.throws(() => parseByteSize(bad, "--max-apparent-size"), (e: Error) => e.name === "UsageError" && e.message.includes("--max-apparent-size"), bad);
    }
  });
});

/** `fn` throws `cls` with its code, the archive label first, and a message matching every regex (the rule and the entry). */
function throwsRule(fn: () => unknown, patterns: RegExp[], cls: new (...a: never[]) => Error = ArchiveError): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.equal((e as SnapbundleError).code, CODES.get(cls), `the code of ${cls.name}`);
    assert.match((e as Error).message, /^t\.tar: /);
    for (const p of patterns) assert.match((e as Error).message, p);
    return true;
  });
}

describe("grammar: types and paths, rule by rule", () => {
  test("rule: every kind but file and directory is refused, named by the word for its kind or its typeflag", () => {
    for (const [kind, tf, word] of [
      ["block", "4", /is a block device;/], ["other", "K", /is a GNU long-link record;/], ["other", "g", /is a global PAX header;/], ["other", "7", /is type "7";/],
      ["symlink", "L", /is a symbolic link;/], // the reader's kind wins over the raw typeflag
    ] as const) {
      throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file(`${P}/upper.ext4`, 0, kind, tf)), [
        new RegExp(`^t\\.tar: archive entry "${P}/upper\\.ext4" at byte \\d+ `), word, /only regular files and directories may be loaded$/,
      ]);
    }
  });
  test("rule: the refusal of a kind names the entry's header offset", () => {
    const e = { path: "a/x", kind: "symlink", typeflag: "2", size: 0, headerOffset: 1536 };
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(e), [/"a\/x" at byte 1536 is a symbolic link/]);
  });
  test("rule: a path is not empty, has no NUL, and only a directory may end in '/'", () => {
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("", 1)), [/archive entry "": the path is empty$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("a/up\0per", 1)), [/archive entry "a\/up\\u0000per": NUL in a path is not allowed$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file(`${P}/upper.ext4/`, 1)), [new RegExp(`"${P}/upper\\.ext4/": a file path must not end in '/'$`)]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir("a//")), [/"a\/\/": empty path components are not allowed$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir("/")), [/"\/": absolute paths are not allowed$/]);
  });
  test("rule: a snapshot file is <dir>/<file>, a snapshot directory <dir>/ — and what is accepted is placed so", () => {
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("upper.ext4", 1)), [/"upper\.ext4": unsupported snapshot path \(a snapshot file must be <dir>\/<file>, exactly two components\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir("a/b")), [/"a\/b": unsupported snapshot path \(a snapshot directory must be <dir>\/, one component\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir(".a/")), [/"\.a\/": a snapshot directory name must not start with "\."$/]);
    const g = new BundleGrammar({ label: "t.tar" });
    assert.deepEqual(g.admit(dir(`${P}/`)), { do: "directory", place: { area: "snapshot", prefix: P, file: null } });
    assert.deepEqual(g.admit(dir("a.b")), { do: "directory", place: { area: "snapshot", prefix: "a.b", file: null } });
    assert.deepEqual(g.admit(file(`${P}/manifest.json`, 10)), { do: "manifest", place: { area: "snapshot", prefix: P, file: "manifest.json" }, maxBytes: 1 << 20 });
    assert.deepEqual(g.admit(file(`${P}/upper.ext4`, 8192)), { do: "file", place: { area: "snapshot", prefix: P, file: "upper.ext4" } });
  });
  test("rule: cache entries are cache/, cache/<kind>/ and cache/<kind>/<file><ext> for the four kinds only", () => {
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir("cache/bin/")), [/"cache\/bin\/": unsupported cache path \(unknown cache kind "bin"; known: manifests, layers, fsmeta, vmdk\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir("cache/layers/x/")), [/"cache\/layers\/x\/": unsupported cache path \(cache directories are cache\/ and cache\/<kind>\/ only\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("cache/layers", 1)), [/"cache\/layers": unsupported cache path \(a cache file must be cache\/<kind>\/<file>\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("cache/vmdk/a/b.vmdk", 1)), [/"cache\/vmdk\/a\/b\.vmdk": unsupported cache path \(a cache file must be/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("cache/manifests/k.erofs", 1)), [/"cache\/manifests\/k\.erofs": unsupported cache path \(files in cache\/manifests\/ must end in \.json\)$/]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("cache/toString/x", 1)), [/unknown cache kind "toString"/]);
    const g = new BundleGrammar({ label: "t.tar" });
    assert.deepEqual(g.admit(dir("cache/")), { do: "directory", place: { area: "cache", kind: null, file: null } });
    assert.deepEqual(g.admit(dir("cache/fsmeta/")), { do: "directory", place: { area: "cache", kind: "fsmeta", file: null } });
    assert.deepEqual(g.admit(file("cache/fsmeta/f.erofs", 3)), { do: "file", place: { area: "cache", kind: "fsmeta", file: "f.erofs" } });
    assert.deepEqual(g.admit(file("cache/manifests/k.json", 3)), { do: "file", place: { area: "cache", kind: "manifests", file: "k.json" } });
    // only a snapshot's manifest.json is read as a manifest: image metadata of that name is streamed
    assert.deepEqual(g.admit(file("cache/manifests/manifest.json", 3)), { do: "file", place: { area: "cache", kind: "manifests", file: "manifest.json" } });
  });
  test("rule: cache files are reported in archive order, and only files", () => {
    const entries = [dir("cache/"), file("cache/vmdk/b.vmdk", 1), dir("cache/layers/"), file("cache/layers/a.erofs", 2), file(`${P}/manifest.json`, 1), file(`${P}/upper.ext4`, 8192)];
    assert.deepEqual(run(entries).cacheFiles, [{ area: "cache", kind: "vmdk", file: "b.vmdk" }, { area: "cache", kind: "layers", file: "a.erofs" }]);
  });
});

describe("grammar: document sizes, at the bound", () => {
  test("rule: a manifest of exactly 1 MiB and image metadata of exactly 64 MiB are accepted; an upper or a layer has no such bound", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    assert.equal(g.admit(file(`${P}/manifest.json`, 1 << 20)).do, "manifest");
    assert.equal(g.admit(file("cache/manifests/k.json", 64 << 20)).do, "file");
    assert.equal(g.admit(file("cache/layers/l.erofs", (64 << 20) + 1)).do, "file");
    assert.equal(g.admit(file("x/upper.ext4", (1 << 20) + 1)).do, "file");
  });
  test("rule: the size refusal names the entry and the declared size", () => {
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file(`${P}/manifest.json`, (1 << 20) + 1)), [
      new RegExp(`^t\\.tar: archive entry "${P}/manifest\\.json" declares 1048577 bytes; a manifest may be at most 1048576$`),
    ]);
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("cache/manifests/k.json", (64 << 20) + 1)), [
      /^t\.tar: archive entry "cache\/manifests\/k\.json" declares 67108865 bytes; image metadata may be at most 67108864$/,
    ]);
  });
});

describe("grammar: the apparent-size cap and the checker's life", () => {
  test("rule: the cap is inclusive, counts directories as nothing, and apparentBytes follows each admitted file", () => {
    const g = new BundleGrammar({ label: "t.tar", maxApparentBytes: 10 });
    assert.equal(g.maxApparentBytes, 10);
    g.admit(dir("cache/"));
    g.admit(file("cache/vmdk/a.vmdk", 4));
    assert.equal(g.apparentBytes, 4);
    g.admit(file("cache/vmdk/b.vmdk", 6));
    assert.equal(g.apparentBytes, 10);
    throwsRule(() => g.admit(file("cache/vmdk/c.vmdk", 1)), [
      /^t\.tar: archive entry "cache\/vmdk\/c\.vmdk" declares 1 bytes, bringing the archive's files to 11 apparent bytes, over the cap of 10 \(raise it with the maxApparentBytes option or load --max-apparent-size\)$/,
    ]);
  });
  test("rule: the cap defaults to 256 GiB, may be 0, and must be a non-negative number", () => {
    assert.equal(new BundleGrammar({ label: "t.tar" }).maxApparentBytes, 256 * 2 ** 30);
    const zero = new BundleGrammar({ label: "t.tar", maxApparentBytes: 0 });
    assert.equal(zero.admit(file("cache/vmdk/e.vmdk", 0)).do, "file");
    throwsRule(() => zero.admit(file("cache/vmdk/f.vmdk", 1)), [/"cache\/vmdk\/f\.vmdk" declares 1 bytes.*over the cap of 0 /]);
    for (const bad of [-1, Number.NaN]) {
      assert.throws(() => new BundleGrammar({ label: "t.tar", maxApparentBytes: bad }), (e: unknown) => {
        assert.ok(e instanceof RangeError);
        assert.match((e as Error).message, new RegExp(`^maxApparentBytes must be a non-negative number \\(got ${bad}\\)$`));
        return true;
      });
    }
  });
  test("rule: nothing is admitted after end()", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    g.admit(file(`${P}/upper.ext4`, 8192));
    g.manifest(g.admit(file(`${P}/manifest.json`, 1)).place as SnapshotFilePlace, manifestOf());
    g.end();
    assert.throws(() => g.admit(file("cache/vmdk/a.vmdk", 1)), (e: unknown) => e instanceof Error && !(e instanceof ArchiveError) && /^BundleGrammar\.admit after end\(\)$/.test(e.message));
  });
  test("rule: an entry error leads with the label, names the path as JSON and states the rule", () => {
    const e = new BundleGrammar({ label: "my \"bundle\"" }).entryError('a"b', "breaks the rule");
    assert.ok(e instanceof ArchiveError);
    assert.equal(e.code, "archive");
    assert.equal(e.message, 'my "bundle": archive entry "a\\"b" breaks the rule');
  });
});

describe("grammar: end-of-archive rules, each alone", () => {
  test("rule: a snapshot's stray file is named before its bare directory", () => {
    refused([dir("x/"), file("x/upper.ext4", 8192), file(`${P}/manifest.json`, 1), file(`${P}/upper.ext4`, 8192)], [
      /^t\.tar: archive entry "x\/upper\.ext4" is not part of a snapshot: the archive has no x\/manifest\.json$/,
    ]);
    refused([file(`${P}/manifest.json`, 1), file(`${P}/upper.ext4`, 8192), dir("x/")], [
      /^t\.tar: archive entry "x\/" is a snapshot directory with no manifest\.json; every directory in a bundle must hold a snapshot$/,
    ]);
  });
  test("rule: every manifest's upper must come — checked per snapshot, naming the one missing", () => {
    refused([file("a/manifest.json", 1), file("a/upper.ext4", 8192), file("b/manifest.json", 1)], [
      /^t\.tar: snapshot b: its upper b\/upper\.ext4 does not exist in the archive \(its manifest names it\)$/,
    ], InvalidSnapshot);
  });
  test("rule: the contents name the snapshots with their manifests and sum every file", () => {
    const m = manifestOf();
    const c = run([dir(`${P}/`), file(`${P}/manifest.json`, 100), file(`${P}/upper.ext4`, 8192), file("cache/vmdk/a.vmdk", 8)], m);
    assert.deepEqual(c, { msb06: null, snapshots: [{ prefix: P, manifest: m }], cacheFiles: [{ area: "cache", kind: "vmdk", file: "a.vmdk" }], apparentBytes: 8300 });
  });
  test("rule: the upper is matched against its own snapshot's manifest, not another's", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    g.manifest(g.admit(file("a/manifest.json", 1)).place as SnapshotFilePlace, manifestOf("upper.ext4", 8192));
    g.manifest(g.admit(file("b/manifest.json", 1)).place as SnapshotFilePlace, manifestOf("disk.img", 4096));
    assert.equal(g.admit(file("b/disk.img", 4096)).do, "file");
    throwsRule(() => g.admit(file("a/disk.img", 4096)), [/^t\.tar: archive entry "a\/disk\.img" is not part of the snapshot \(its manifest names only manifest\.json and upper\.ext4\)$/]);
  });
});

const HEX = "0123456789abcdef".repeat(4);
const HEX2 = "fedcba9876543210".repeat(4);
const enc = new TextEncoder();

/** Feed 0.6 entries: documents get `docs[path]` (or `{}`), files an observation. */
function run06(entries: EntryFacts[], docs: Record<string, string> = {}) {
  const g = new BundleGrammar({ label: "t.tar" });
  for (const e of entries) {
    const act = g.admit(e);
    if (act.do === "document") g.document(act.place, enc.encode(docs[e.path] ?? "{}"));
    if (act.do === "document" && act.place.role === "descriptor") g.observed(act.place, { encodedSize: e.size, apparentSize: e.size, memberHash: `h:${e.path}`, sha256: null });
    if (act.do === "file") g.observed(act.place as Msb06FilePlace, { encodedSize: e.size, apparentSize: e.size, memberHash: `h:${e.path}`, sha256: null });
  }
  return g.end();
}

describe("grammar: the microsandbox 0.6 layout", () => {
  test("rule: 0.6 directories are snapshots/, files/, images/, snapshots|files/<64hex>/ and images/<kind>/ only", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    for (const d of ["snapshots/", "files/", "images/", `snapshots/${HEX}/`, `files/${HEX}/`, "images/layers/", "images/manifests"]) {
      assert.deepEqual(g.admit(dir(d)), { do: "directory", place: { area: "msb06", role: "directory", path: d, file: null } }, d);
    }
    for (const d of [`images/${HEX}/`, "images/bin/", "images/toString/", `files/${HEX.toUpperCase()}/`, "snapshots/abc/", `snapshots/${HEX}/x/`, `files/${HEX}0/`, "images/layers/x/", "files/layers/"]) {
      throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(dir(d)), [
        new RegExp(`^t\\.tar: archive entry ${JSON.stringify(d).replace(/[/.]/g, "\\$&")}: unsupported 0\\.6 bundle path \\(directories are snapshots/, files/, images/, snapshots/<64hex>/, files/<64hex>/ and images/<kind>/ only\\)$`),
      ]);
    }
  });
  test("rule: 0.6 files are placed by role — inventory and descriptor read whole with their bound, payload and image streamed", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    assert.deepEqual(g.admit(file("archive.json", 10)), { do: "document", place: { area: "msb06", role: "inventory", path: "archive.json", hex: null, kind: null, file: "archive.json" }, maxBytes: 4 << 20 });
    assert.deepEqual(g.admit(file(`snapshots/${HEX}/snapshot.json`, 10)), {
      do: "document", place: { area: "msb06", role: "descriptor", path: `snapshots/${HEX}/snapshot.json`, hex: HEX, kind: null, file: "snapshot.json" }, maxBytes: 1 << 20,
    });
    assert.deepEqual(g.admit(file(`files/${HEX}/upper.ext4`, (4 << 20) + 1)), {
      do: "file", place: { area: "msb06", role: "payload", path: `files/${HEX}/upper.ext4`, hex: HEX, kind: null, file: "upper.ext4" },
    });
    assert.deepEqual(g.admit(file("images/layers/l.erofs", (64 << 20) + 1)), {
      do: "file", place: { area: "msb06", role: "image", path: "images/layers/l.erofs", hex: null, kind: "layers", file: "l.erofs" },
    });
    assert.deepEqual(g.admit(file("images/manifests/m.json", 64 << 20)), {
      do: "file", place: { area: "msb06", role: "image", path: "images/manifests/m.json", hex: null, kind: "manifests", file: "m.json" },
    });
    assert.equal(g.apparentBytes, 20 + (4 << 20) + 1 + (64 << 20) + 1 + (64 << 20));
  });
  test("rule: a two-component file under snapshots/, files/ or images/ keeps its manifest.json-layout meaning", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    assert.deepEqual(g.admit(file("files/manifest.json", 1)), { do: "manifest", place: { area: "snapshot", prefix: "files", file: "manifest.json" }, maxBytes: 1 << 20 });
    assert.deepEqual(g.admit(file("x/archive.json", 1)), { do: "file", place: { area: "snapshot", prefix: "x", file: "archive.json" } });
    // archive.json is the inventory only at the top: as a directory name it is a snapshot prefix
    assert.deepEqual(g.admit(file("archive.json/upper.ext4", 1)), { do: "file", place: { area: "snapshot", prefix: "archive.json", file: "upper.ext4" } });
    throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file("snapshots", 1)), [/"snapshots": unsupported snapshot path \(a snapshot file must be <dir>\/<file>/]);
  });
  test("rule: 0.6 document sizes — archive.json at most 4 MiB, snapshot.json at most 1 MiB, image metadata at most 64 MiB", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    assert.equal(g.admit(file("archive.json", 4 << 20)).do, "document");
    assert.equal(g.admit(file(`snapshots/${HEX}/snapshot.json`, 1 << 20)).do, "document");
    for (const [path, size, rule] of [
      ["archive.json", (4 << 20) + 1, "archive\\.json may be at most 4194304"],
      [`snapshots/${HEX}/snapshot.json`, (1 << 20) + 1, "a snapshot\\.json may be at most 1048576"],
      ["images/manifests/m.json", (64 << 20) + 1, "image metadata may be at most 67108864"],
    ] as const) {
      throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file(path, size)), [new RegExp(`^t\\.tar: archive entry "${path.replace(/[/.]/g, "\\$&")}" declares ${size} bytes; ${rule}$`)]);
    }
  });
  test("rule: 0.6 file paths — image kind and extension, 64-hex id, snapshot.json only, no reserved payload name, names up to 255 bytes", () => {
    const bad = (path: string, rule: string) =>
      throwsRule(() => new BundleGrammar({ label: "t.tar" }).admit(file(path, 1)), [new RegExp(`^t\\.tar: archive entry ${JSON.stringify(path).replace(/[/.()]/g, "\\$&")}: unsupported 0\\.6 bundle path \\(${rule}\\)$`)]);
    bad("images/bin/x.erofs", 'unknown image kind "bin"; known: manifests, layers, fsmeta, vmdk');
    bad("images/constructor/x.erofs", 'unknown image kind "constructor"; known: manifests, layers, fsmeta, vmdk');
    bad("images/vmdk/x.erofs", "files in images/vmdk/ must end in \\.vmdk");
    bad(`files/${HEX.slice(1)}/upper.ext4`, "files/<id>/ must name a snapshot by 64 lowercase hex digits");
    bad(`snapshots/x${HEX}/snapshot.json`, "snapshots/<id>/ must name a snapshot by 64 lowercase hex digits");
    bad(`snapshots/${HEX}/manifest.json`, "a snapshot directory holds only snapshot\\.json");
    for (const name of ["manifest.json", "snapshot.json", ".manifest.json.legacy", ".snapshot-migration.lock"]) bad(`files/${HEX}/${name}`, `"${name.replace(/\./g, "\\.")}" cannot name a payload \\(a reserved artifact name\\)`);
    // 255 bytes is the bound, counted in UTF-8 bytes, not characters
    const g = new BundleGrammar({ label: "t.tar" });
    assert.equal(g.admit(file(`files/${HEX}/${"é".repeat(127)}a`, 1)).do, "file");
    assert.equal(g.admit(file(`images/vmdk/${"v".repeat(250)}.vmdk`, 1)).do, "file");
    bad(`files/${HEX}/${"é".repeat(128)}`, "a file name may be at most 255 bytes");
    bad(`images/vmdk/${"v".repeat(251)}.vmdk`, "a file name may be at most 255 bytes");
  });
  test("rule: a 0.6 bundle carries archive.json", () => {
    throwsRule(() => run06([file(`files/${HEX}/upper.ext4`, 5)]), [/^t\.tar: a microsandbox 0\.6 bundle \(snapshots\/, files\/, images\/\) must carry archive\.json; this one has none$/]);
  });
  test("rule: one archive holds one layout — the first manifest.json-layout or cache entry is named", () => {
    for (const [first, second] of [[dir("cache/"), file("x/upper.ext4", 1)], [file("x/upper.ext4", 1), dir("cache/")], [dir("x/"), dir("y/")]] as const) {
      throwsRule(() => run06([file("archive.json", 2), first, second, file(`files/${HEX}/upper.ext4`, 5)]), [
        new RegExp(`^t\\.tar: archive entry ${JSON.stringify(first.path).replace(/[/.]/g, "\\$&")} belongs to the manifest\\.json bundle layout, but this archive is a microsandbox 0\\.6 bundle`),
        /one archive holds one layout$/,
      ]);
    }
  });
  test("rule: a 0.6 bundle resolves its inventory bytes, observed members, descriptors by id in archive order, and apparent bytes", () => {
    const desc2 = "not json";
    const c = run06([
      dir("snapshots/"), file("archive.json", 7), file(`snapshots/${HEX2}/snapshot.json`, 8), file(`files/${HEX2}/upper.ext4`, 100),
      file(`snapshots/${HEX}/snapshot.json`, 9), file("images/vmdk/v.vmdk", 10),
    ], { "archive.json": "INV", [`snapshots/${HEX2}/snapshot.json`]: desc2 });
    assert.equal(new TextDecoder().decode(c.msb06!.inventory), "INV");
    assert.deepEqual([...c.msb06!.observed.keys()], [`snapshots/${HEX2}/snapshot.json`, `files/${HEX2}/upper.ext4`, `snapshots/${HEX}/snapshot.json`, "images/vmdk/v.vmdk"]);
    assert.equal(c.msb06!.observed.get(`files/${HEX2}/upper.ext4`)!.memberHash, `h:files/${HEX2}/upper.ext4`);
    assert.deepEqual([...c.msb06!.descriptors.keys()], [HEX2, HEX]);
    const bad = c.msb06!.descriptors.get(HEX2)!;
    assert.equal(bad.descriptor, null);
    assert.match(bad.error!.message, new RegExp(`^t\\.tar: snapshots/${HEX2}/snapshot\\.json`));
    assert.deepEqual([c.snapshots, c.cacheFiles, c.apparentBytes], [[], [], 7 + 8 + 100 + 9 + 10]);
  });
  test("rule: a 0.6 member not yet observed is left out of the observed members", () => {
    const g = new BundleGrammar({ label: "t.tar" });
    g.document(g.admit(file("archive.json", 2)).place as Msb06FilePlace, enc.encode("{}"));
    const act = g.admit(file(`files/${HEX}/upper.ext4`, 3));
    g.admit(file(`files/${HEX}/disk.img`, 4));
    g.observed(act.place as Msb06FilePlace, { encodedSize: 3, apparentSize: 3, memberHash: "h", sha256: null });
    assert.deepEqual([...g.end().msb06!.observed.keys()], [`files/${HEX}/upper.ext4`]);
  });
  test("rule: a 0.6 path appears once, with or without its trailing '/'", () => {
    refused([dir(`files/${HEX}/`), dir(`files/${HEX}`)], [new RegExp(`^t\\.tar: archive entry "files/${HEX}" appears twice$`)]);
    refused([file("archive.json", 1), file("archive.json", 1)], [/^t\.tar: archive entry "archive\.json" appears twice$/]);
  });
  test("rule: only 0.6 directories and no file is not a 0.6 bundle: it has no snapshot manifest", () => {
    refused([dir("snapshots/"), dir(`files/${HEX}/`)], [/^t\.tar: the archive contains no snapshot manifest$/]);
  });
});
