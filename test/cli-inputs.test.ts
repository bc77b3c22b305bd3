/**
 * Strict inputs on the command line (issue 14): digests, OCI image
 * references, `--parent`, snapshot names, checks before the home is touched,
 * non-archives named by their magic, ambiguous digests and duplicate loads.
 * The BUILT CLI runs under the runtime running the test.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { digestProblem, imageReferenceProblem } from "../src/reference.js";
import { createSnapshot, errorLine, expectRun, IMAGE_DIGEST, IMAGE_REF, scratchDir, stdoutJson } from "./helpers/cli-assert.js";
import { runCli, RUNTIME } from "./helpers/cli-run.js";

const HEX64 = "0123456789abcdef".repeat(4);

describe(`strict CLI inputs on ${RUNTIME}`, () => {
  test("digests: sha256: and exactly 64 lowercase hex digits, as microsandbox 0.6 requires", () => {
    assert.equal(digestProblem(`sha256:${HEX64}`), null);
    for (const bad of ["sha256:xyz", `sha256:${HEX64.toUpperCase()}`, `sha256:${HEX64.slice(1)}`, `sha256:${HEX64}0`, `sha512:${HEX64}${HEX64}`, HEX64, "sha256:", ""]) {
      assert.notEqual(digestProblem(bad), null, `refused: ${bad}`);
    }
    assert.match(digestProblem(`sha256:${HEX64.slice(1)}`)!, /has 63 hex digits/);
    assert.match(digestProblem(`sha256:${HEX64.toUpperCase()}`)!, /upper-case/);
    assert.match(digestProblem(`sha512:${HEX64}`)!, /algorithm "sha512"/);
  });

  test("image references follow the OCI reference grammar (distribution/reference)", () => {
    const good = [
      "python", "python:3.12", "library/python:3.12-slim", "docker.io/library/python:3.12", "ghcr.io/org/app:v1.2.3",
      "localhost:5000/a/b:tag", "registry.example.com:443/team/app", `alpine@sha256:${HEX64}`, `ghcr.io/org/app:v1@sha256:${HEX64}`,
      "[::1]:5000/app:1", "a__b/c--d/e.f_g", "Registry.Example.COM/app", "app:Tag_1.0-RC",
    ];
    for (const ref of good) assert.equal(imageReferenceProblem(ref), null, `accepted: ${ref}`);
    const bad = ["", "Bad Image!", "Python:3.12", "python:", ":3.12", "python:3.12:4", "a//b", "a/", "/a", "-a", "a-", "a___b", "app:-tag",
      `app@sha256:${HEX64.slice(0, 31)}`, `app:${"t".repeat(129)}`, `${"a".repeat(256)}`];
    for (const ref of bad) assert.notEqual(imageReferenceProblem(ref), null, `refused: ${ref}`);
    assert.match(imageReferenceProblem("Python:3.12")!, /lowercase/);
  });

  test("usage errors exit 2, name the flag by its real name, and come before any look at the home", async () => {
    const { root, upper, cleanup } = scratchDir("snapbundle-inputs-");
    try {
      const home = join(root, "never-made");
      const base = ["--home", home, "create", "x", "--upper", upper];
      const cases: [string[], RegExp][] = [
        [[...base, "--image", IMAGE_REF, "--image-digest", "sha256:xyz"], /^error: --image-digest "sha256:xyz" holds characters that are not hex digits/],
        [[...base, "--image", IMAGE_REF, "--image-digest", `sha256:${HEX64.slice(1)}`], /^error: --image-digest .* has 63 hex digits/],
        [[...base, "--image", IMAGE_REF, "--image-digest", `sha256:${HEX64.toUpperCase()}`], /^error: --image-digest .* upper-case/],
        [[...base, "--image", IMAGE_REF, "--image-digest", `sha512:${HEX64}`], /^error: --image-digest .* algorithm "sha512"/],
        [[...base, "--image", "Bad Image!", "--image-digest", IMAGE_DIGEST], /^error: --image "Bad Image!" is not a valid OCI image reference/],
        [[...base, "--image", IMAGE_REF], /^error: missing required option --image-digest$/],
        [["--home", home, "create", ".hidden", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST], /^error: <name> "\.hidden" is not allowed/],
        [[...base, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--parent", ""], /^error: --parent "" must not be empty/],
        [["--home", home, "load", "x.tar.zst", "--name", "a/b"], /^error: --name "a\/b" is not allowed/],
        [["--home", "", "ls"], /^error: --home "" must not be empty/],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(args);
        assert.match(errorLine(r, args.join(" "), 2), message);
      }
      assert.equal(existsSync(home), false, "no usage error may create or read the home");
    } finally {
      cleanup();
    }
  });

  test("a bad digest is reported before 'already exists', which names --force", async () => {
    const { home, upper, cleanup } = scratchDir("snapbundle-inputs-");
    try {
      await createSnapshot(home, "base", upper);
      const bad = await runCli(["--home", home, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", "sha256:xyz"]);
      assert.match(errorLine(bad, "bad digest over an existing name", 2), /--image-digest/);
      const exists = await runCli(["--home", home, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]);
      assert.match(errorLine(exists, "existing name", 1), /already exists \(use --force /);
    } finally {
      cleanup();
    }
  });

  test("rule: --parent takes a name, a digest or a path of an existing snapshot; a missing one is a usage error (exit 2) naming it", async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-inputs-");
    try {
      const base = await createSnapshot(home, "base", upper);
      for (const [i, parent] of [["1", "base"], ["2", base.digest], ["3", base.digest.slice(7, 7 + 12)], ["4", base.path]] as const) {
        const child = await createSnapshot(home, `child${i}`, upper, ["--parent", parent]);
        assert.equal(child.parent, base.digest, `--parent ${parent} records the parent's digest`);
      }
      const missing = `sha256:${HEX64}`;
      for (const parent of ["nope", missing, join(root, "absent")]) {
        const r = await runCli(["--home", home, "create", "orphan", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--parent", parent]);
        const line = errorLine(r, `--parent ${parent}`, 2);
        assert.ok(line.startsWith(`error: --parent ${JSON.stringify(parent)}: `), line);
      }
      assert.equal(existsSync(join(home, "snapshots", "orphan")), false);
    } finally {
      cleanup();
    }
  });

  test("non-archives are named by their magic: gzip, xz, bzip2, zip, lz4, text, empty; nothing is left behind", async () => {
    const { root, home, cleanup } = scratchDir("snapbundle-inputs-");
    try {
      const text = join(root, "notes.txt");
      writeFileSync(text, "these are notes, not an archive\n".repeat(40));
      const made: [string, RegExp][] = [];
      for (const [tool, args, ext, name] of [
        ["gzip", ["-kf"], ".gz", "a gzip file"],
        ["xz", ["-kf"], ".xz", "an xz file"],
        ["bzip2", ["-kf"], ".bz2", "a bzip2 file"],
        ["lz4", ["-qf"], ".lz4", "an lz4 file"],
      ] as const) {
        execFileSync(tool, tool === "lz4" ? [...args, text, text + ext] : [...args, text]);
        made.push([text + ext, new RegExp(`is ${name}; snapbundle reads \\.tar and \\.tar\\.zst$`)]);
      }
      execFileSync("python3", ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').write(sys.argv[2], 'notes.txt')", text + ".zip", text]);
      made.push([text + ".zip", /is a zip file; snapbundle reads \.tar and \.tar\.zst$/]);
      made.push([text, /is not a tar archive \(its first 512 bytes are no tar header: .*\); snapbundle reads \.tar and \.tar\.zst$/]);
      const empty = join(root, "empty.tar.zst");
      writeFileSync(empty, "");
      made.push([empty, /: empty input, no archive$/]);
      execFileSync("zstd", ["-qf", text, "-o", text + ".zst"]);
      made.push([text + ".zst", /is zstd-compressed, but what it holds is not a tar archive/]);
      for (const [file, message] of made) {
        const line = errorLine(await runCli(["--home", home, "load", file]), `load ${file}`, 1);
        assert.ok(line.includes(file), `names the file: ${line}`);
        assert.match(line, message);
      }
      const stdin = errorLine(await runCli(["--home", home, "load", "-"], { input: readFileSync(text + ".gz") }), "load - of gzip", 1);
      assert.equal(stdin, "error: stdin is a gzip file; snapbundle reads .tar and .tar.zst");
      assert.equal(errorLine(await runCli(["--home", home, "load", "-"], { input: "" }), "load - of nothing", 1), "error: stdin: empty input, no archive");
      assert.equal(existsSync(join(home, "snapshots")), false, "a refused load leaves no snapshots directory behind");
    } finally {
      cleanup();
    }
  });

  test("a digest installed twice: load says 'already installed' unless --name; rm by digest lists both copies", async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-inputs-");
    try {
      const base = await createSnapshot(home, "base", upper, ["--label", "team=infra"]);
      const bundle = join(root, "base.tar.zst");
      expectRun(await runCli(["--home", home, "save", "base", bundle]), "save", 0);
      const other = join(root, "other");
      expectRun(await runCli(["--home", other, "load", bundle]), "first load", 0);
      const again = expectRun(await runCli(["--home", other, "load", bundle]), "second load", 0);
      assert.match(again.stdout, /^already installed: sha256-[0-9a-f]{16} sha256:[0-9a-f]{64} at .*; nothing loaded \(use --name NAME for a second copy\)\n$/);
      const againJson = stdoutJson(expectRun(await runCli(["--home", other, "--json", "load", bundle]), "second load --json", 0), "second load --json");
      assert.equal(againJson.already_installed, true);
      assert.equal(againJson.digest, base.digest);
      assert.equal(stdoutJson(await runCli(["--home", other, "--json", "ls"]), "ls").length, 1, "nothing installed twice");

      expectRun(await runCli(["--home", other, "load", bundle, "--name", "copy"]), "load --name copy", 0);
      const listed = stdoutJson(await runCli(["--home", other, "--json", "ls"]), "ls");
      assert.deepEqual(listed.map((s: { digest: string }) => s.digest), [base.digest, base.digest], "--name asks for a second copy");
      for (const ref of [base.digest, base.digest.slice(7, 7 + 16)]) {
        const line = errorLine(await runCli(["--home", other, "rm", ref]), `rm ${ref}`, 1);
        for (const s of listed) assert.ok(line.includes(s.path), `lists ${s.path}: ${line}`);
      }
      assert.equal(stdoutJson(await runCli(["--home", other, "--json", "ls"]), "ls").length, 2, "rm removed nothing");
      expectRun(await runCli(["--home", other, "rm", "copy"]), "rm by name", 0);
    } finally {
      cleanup();
    }
  });
});
