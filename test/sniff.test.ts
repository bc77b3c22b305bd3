/** What a bundle input is, from its first bytes (empty, a foreign format, zstd or plain tar, a tar start or not): the rules of src/archive/sniff.ts. */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { checkTarStart, classifyBundleStart, foreignFormat, openBundle, openBundleStream } from "../src/archive/sniff.js";
import { ArchiveError, CompressionError } from "../src/errors.js";
import { zstdCli } from "./helpers/archive-bundle.js";
import { errorRule } from "./helpers/error-rules.js";
import { foreignFiles, type ForeignFile } from "./helpers/foreign-files.js";
import { noise } from "./helpers/homes.js";
import { probedSource, readBytes } from "./helpers/stream-probe.js";
import { concatBytes, craftData, craftHeader, END } from "./helpers/tar-craft.js";
import { removeDir, tempDir } from "./helpers/tar-tools.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const READS = "snapbundle reads \\.tar and \\.tar\\.zst$";
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const refused = (pattern: string) => errorRule(ArchiveError, "archive", new RegExp(pattern));

/** Streams that a regression could leave waiting forever: fail instead of hanging. */
const BOUNDED = { timeout: 10_000 };

/** Tars of one small file, written by GNU tar in each of its formats, and by bsdtar. */
const tars = new Map<string, Uint8Array>();
let foreign: ForeignFile[] = [];
let dir = "";

before(() => {
  dir = tempDir("sniff");
  writeFileSync(join(dir, "notes.txt"), noise(3000, 7));
  for (const [name, cmd, args] of [
    ["gnu", "tar", ["--format=gnu", "-cf"]],
    ["posix", "tar", ["--format=posix", "-cf"]],
    ["ustar", "tar", ["--format=ustar", "-cf"]],
    ["v7", "tar", ["--format=v7", "-cf"]],
    ["bsdtar", "bsdtar", ["-cf"]],
  ] as const) {
    execFileSync(cmd, [...args, `${name}.tar`, "notes.txt"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    tars.set(name, new Uint8Array(readFileSync(join(dir, `${name}.tar`))));
  }
  foreign = foreignFiles(noise(3000, 9));
});

after(() => removeDir(dir));

describe("sniff: foreign formats", () => {
  test("rule: a file of another format, as its own tool writes it, is refused by the name of that format", () => {
    assert.equal(foreign.length, 7);
    for (const f of foreign) {
      assert.equal(foreignFormat(f.bytes), f.format, f.tool);
      assert.throws(() => classifyBundleStart(f.bytes, "in/x.bin"), refused(`^in/x\\.bin is ${f.format}; ${READS}`), f.tool);
    }
  });

  test("rule: a magic is recognised whole, from offset 0: exactly the magic is enough, one byte short or off is not", () => {
    for (const f of foreign) {
      const magicLength = { "a gzip file": 2, "an xz file": 6, "a bzip2 file": 3, "an lz4 file": 4, "a zip file": 4, "a 7-Zip file": 6 }[f.format]!;
      const magic = f.bytes.slice(0, magicLength);
      assert.equal(foreignFormat(magic), f.format, `${f.tool}: its bare magic`);
      assert.equal(foreignFormat(magic.subarray(0, magicLength - 1)), null, `${f.tool}: its magic but the last byte`);
      for (const at of [0, magicLength - 1]) {
        const off = magic.slice();
        off[at] = off[at]! ^ 0x01;
        assert.equal(foreignFormat(off), null, `${f.tool}: its magic with byte ${at} changed`);
      }
      assert.equal(foreignFormat(concatBytes(new Uint8Array([0]), f.bytes)), null, `${f.tool}: its magic at offset 1`);
    }
  });

  test("rule: zstd is not foreign; an input of fewer bytes than any magic is not refused as a format", () => {
    assert.equal(foreignFormat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])), null);
    assert.equal(foreignFormat(new Uint8Array([0x1f])), null);
    assert.equal(classifyBundleStart(new Uint8Array([0x1f]), "x"), "none");
  });

  test("rule: the file name plays no part: a gzip file named .tar.zst is refused as gzip, a tar named .gz is read", T, async () => {
    const gz = foreign.find((f) => f.format === "a gzip file")!;
    await assert.rejects(openBundle(probedSource(gz.bytes, 4096).stream, "a.tar.zst"), refused(`^a\\.tar\\.zst is a gzip file; ${READS}`));
    const opened = await openBundle(probedSource(tars.get("gnu")!, 4096).stream, "a.tar.gz");
    assert.equal(opened.compression, "none");
    await opened.tar.cancel();
  });
});

describe("sniff: empty inputs and compression", () => {
  test("rule: an empty input is refused as empty, naming the input", T, async () => {
    assert.throws(() => classifyBundleStart(new Uint8Array(0), "stdin"), refused("^stdin: empty input, no archive$"));
    await assert.rejects(openBundle(probedSource(new Uint8Array(0), 512).stream, "/tmp/e.tar"), refused("^/tmp/e\\.tar: empty input, no archive$"));
  });

  test("rule: a zstd frame or a skippable frame first means zstd; anything else is taken as plain tar", () => {
    const zst = zstdCli(tars.get("gnu")!);
    assert.equal(classifyBundleStart(zst, "a"), "zstd");
    for (const low of [0x50, 0x5f]) assert.equal(classifyBundleStart(new Uint8Array([low, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]), "a"), "zstd");
    assert.equal(classifyBundleStart(tars.get("gnu")!, "a"), "none");
    assert.equal(classifyBundleStart(zst.subarray(0, 3), "a"), "none", "three bytes of the magic are no zstd frame");
  });
});

describe("sniff: the start of the tar", () => {
  test("rule: the first header's dialect is reported, as GNU tar and bsdtar write it", () => {
    const expected: Record<string, string> = { gnu: "gnu", posix: "ustar", ustar: "ustar", v7: "v7", bsdtar: "ustar" };
    for (const [name, bytes] of tars) assert.equal(checkTarStart(bytes, name, "none"), expected[name], name);
    assert.equal(checkTarStart(tars.get("gnu")!.subarray(0, 512), "one block", "none"), "gnu", "exactly one header block is enough");
  });

  test("rule: an archive that starts with its end-of-archive block is a tar with no first header", () => {
    assert.equal(checkTarStart(END, "empty.tar", "none"), null);
    assert.equal(checkTarStart(END.subarray(0, 512), "empty.tar", "zstd"), null);
  });

  test("rule: fewer bytes than one header are no tar, and the message says how many", () => {
    const text = new TextEncoder().encode("hello\n");
    assert.throws(
      () => checkTarStart(text, "notes.txt", "none"),
      refused(`^notes\\.txt is not a tar archive \\(6 bytes, shorter than one 512-byte tar header\\); ${READS}`),
    );
    assert.throws(
      () => checkTarStart(tars.get("gnu")!.subarray(0, 511), "a.tar", "none"),
      refused(`^a\\.tar is not a tar archive \\(511 bytes, shorter than one 512-byte tar header\\); ${READS}`),
    );
    assert.throws(() => checkTarStart(new Uint8Array(0), "a.tar", "none"), refused(`^a\\.tar is not a tar archive \\(it is empty\\); ${READS}`));
  });

  test("rule: a first block whose checksum is wrong is no tar header, and the message gives the checksum rule", () => {
    const bad = concatBytes(craftHeader({ name: "f", size: 1, checksum: "bad" }), craftData("x"), END);
    assert.throws(
      () => checkTarStart(bad, "b.tar", "none"),
      refused(`^b\\.tar is not a tar archive \\(its first 512 bytes are no tar header: header checksum mismatch \\(stored [0-7]+, computed [0-7]+\\)\\); ${READS}`),
    );
    const text = new TextEncoder().encode("just some text\n".repeat(40));
    assert.throws(() => checkTarStart(text, "t.txt", "none"), refused(`^t\\.txt is not a tar archive \\(its first 512 bytes are no tar header: `));
  });

  test("rule: a foreign file where a tar should start is named as that format", () => {
    const xz = foreign.find((f) => f.format === "an xz file")!;
    assert.ok(xz.bytes.length >= 512);
    assert.throws(() => checkTarStart(xz.bytes, "x.tar", "none"), refused(`^x\\.tar is not a tar archive \\(it is an xz file\\); ${READS}`));
  });

  test("rule: what a zstd input holds is judged as tar only, and the message says it was zstd-compressed", () => {
    const gz = foreign.find((f) => f.format === "a gzip file")!;
    assert.throws(
      () => checkTarStart(gz.bytes, "g.tar.zst", "zstd"),
      refused(`^g\\.tar\\.zst is zstd-compressed, but what it holds is not a tar archive \\(its first 512 bytes are no tar header: `),
    );
    assert.throws(
      () => checkTarStart(new Uint8Array(0), "g.tar.zst", "zstd"),
      refused(`^g\\.tar\\.zst is zstd-compressed, but what it holds is not a tar archive \\(it is empty\\); ${READS}`),
    );
  });
});

describe("sniff: opening a bundle", () => {
  for (const zstd of [false, true]) {
    test(`rule: the opened ${zstd ? "zstd" : "plain"} bundle gives every tar byte, the peeked head included, whatever the chunking`, BOUNDED, async () => {
      for (const name of ["gnu", "posix"]) {
        const tar = tars.get(name)!;
        const input = zstd ? zstdCli(tar) : tar;
        for (const chunk of [100, 511, 512, 1 << 16]) {
          const opened = await openBundle(probedSource(input, chunk).stream, `${name}.tar`);
          assert.equal(opened.compression, zstd ? "zstd" : "none");
          assert.equal(opened.firstFormat, name === "gnu" ? "gnu" : "ustar");
          assert.deepEqual(await readBytes(opened.tar), tar, `${name}, chunks of ${chunk}`);
        }
        assert.deepEqual(await readBytes(await openBundleStream(probedSource(input, 700).stream, name)), tar);
      }
    });
  }

  test("rule: a refused input is cancelled with the refusal, so its file is closed", BOUNDED, async () => {
    const gz = foreign.find((f) => f.format === "a gzip file")!;
    const cases: [string, Uint8Array, string][] = [
      ["gzip", gz.bytes, `^in is a gzip file; ${READS}`],
      ["text", new TextEncoder().encode("not a tar at all\n".repeat(64)), "^in is not a tar archive \\(its first 512 bytes"],
      // larger than what the decoder takes ahead, so the source is still open when the refusal comes
      ["zstd noise", zstdCli(noise(1 << 20, 5)), "^in is zstd-compressed, but what it holds is not a tar archive"],
    ];
    for (const [what, bytes, pattern] of cases) {
      const source = probedSource(bytes, 256);
      let thrown: unknown;
      await assert.rejects(openBundle(source.stream, "in"), (e) => {
        thrown = e;
        return refused(pattern)(e);
      });
      // through the decoder the cancel reaches the source a few turns later
      for (let i = 0; i < 50 && source.cancels.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
      assert.equal(source.cancels.length, 1, `${what}: the source is cancelled once`);
      assert.equal(source.cancels[0], thrown, `${what}: with the refusal as its reason`);
    }
  });

  test("rule: a source whose cancel fails still gives the refusal, not the cancel's error", BOUNDED, async () => {
    const text = new TextEncoder().encode("not a tar at all\n".repeat(64));
    for (const bytes of [foreign.find((f) => f.format === "a gzip file")!.bytes, text]) {
      let at = 0;
      const source = new ReadableStream<Uint8Array>({
        pull(c) {
          if (at >= bytes.length) c.close();
          else c.enqueue(bytes.slice(at, (at += 300)));
        },
        cancel() {
          throw new Error("cancel failed");
        },
      });
      await assert.rejects(openBundle(source, "in"), refused("^in is (a gzip file|not a tar archive)"));
    }
  });

  test("rule: the zstd window limit applies when opening, and the refusal names the input", BOUNDED, async () => {
    // in small chunks: zstd decodes a frame it holds whole in one pass, without a window
    const zst = zstdCli(tars.get("gnu")!);
    await assert.rejects(
      openBundle(probedSource(zst, 512).stream, "w.tar.zst", { maxWindowBytes: 1024 }),
      refused('^"w\\.tar\\.zst": the zstd frame at byte 0 needs a .* window, more than the 1 KiB allowed'),
    );
    await assert.rejects(
      openBundleStream(probedSource(zst, 512).stream, "w.tar.zst", { maxWindowBytes: 1024 }),
      refused('^"w\\.tar\\.zst": the zstd frame at byte 0 needs'),
    );
    const opened = await openBundle(probedSource(zst, 512).stream, "w.tar.zst", { maxWindowBytes: 1 << 20 });
    assert.equal(opened.firstFormat, "gnu");
    await opened.tar.cancel();
  });

  test("rule: a zstd input cut inside its first frame is a compression error naming the input", BOUNDED, async () => {
    const zst = zstdCli(noise(4096, 3));
    await assert.rejects(
      openBundle(probedSource(zst.subarray(0, 200), 64).stream, "cut.tar.zst"),
      errorRule(CompressionError, "compression", new RegExp(`^"${esc("cut.tar.zst")}": truncated zstd stream`)),
    );
  });
});
