/**
 * Unit tests of the entry grammar (`src/archive/grammar.ts`): the stateful
 * checker fed entries and "end of archive", one group per rule.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ArchiveError, InvalidSnapshot } from "../src/errors.js";
import { BundleGrammar, DEFAULT_MAX_APPARENT_BYTES, type EntryFacts, type SnapshotFilePlace } from "../src/archive/grammar.js";
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

function refused(entries: EntryFacts[], needles: (string | RegExp)[], cls: new (...a: never[]) => Error = ArchiveError, m = manifestOf(), options = {}): void {
  assert.throws(
    () => run(entries, m, options),
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
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
