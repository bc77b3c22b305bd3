/**
 * What the CLI prints (issue 14): `--json` failures as JSON, usage and help,
 * `-V`, `--quiet`, labels in `ls`, `save --no-verify`, and progress lines
 * that name their phase, fit the terminal and never share a line between two
 * processes of a pipeline (run under a pseudo-terminal with `script`).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { progressLine } from "../src/cli/progress.js";
import { createSnapshot, errorLine, expectRun, IMAGE_DIGEST, IMAGE_REF, scratchDir, stdoutJson } from "./helpers/cli-assert.js";
import { noiseBytes, PACKAGE_VERSION, runCli, RUNTIME, writeSparseFile } from "./helpers/cli-run.js";
import { cliWords, drawnLines, hasScript, underTerminal } from "./helpers/terminal.js";


describe(`CLI output on ${RUNTIME}`, () => {
  test("--json failures: {error:{code,message,path}} on stdout, the same exit status, the error line kept on stderr", async () => {
    const { root, home, cleanup } = scratchDir("snapbundle-output-");
    try {
      const missing = await runCli(["--home", home, "--json", "inspect", "nope"]);
      assert.match(errorLine({ ...missing, stdout: "" }, "inspect nope", 1), /^error: no snapshot named "nope"/);
      const doc = stdoutJson(missing, "inspect nope");
      assert.deepEqual(Object.keys(doc), ["error"]);
      assert.deepEqual(Object.keys(doc.error), ["code", "message", "path"]);
      assert.equal(doc.error.code, "snapshot-not-found");
      assert.equal(`error: ${doc.error.message}`, missing.stderr.trim());

      const usage = await runCli(["--json", "save", "x"]);
      assert.equal(usage.code, 2);
      assert.deepEqual(stdoutJson(usage, "save x").error, { code: "usage", message: "missing argument <out|->", path: null });
      assert.match(usage.stderr, /^error: missing argument <out\|->\nusage: snapbundle save /);

      const archive = join(root, "empty.tar.zst");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(archive, "");
      const load = await runCli(["--home", home, "--json", "load", archive]);
      assert.equal(load.code, 1);
      assert.deepEqual(stdoutJson(load, "load empty").error, { code: "archive", message: `${archive}: empty input, no archive`, path: archive });
    } finally {
      cleanup();
    }
  });

  test("no arguments and 'help [command]' print the usage; -V prints the version", async () => {
    const bare = expectRun(await runCli([]), "snapbundle", 0);
    assert.match(bare.stdout, /^snapbundle — /);
    assert.match(bare.stdout, /^usage: snapbundle /m);
    assert.match(bare.stdout, /^  help +show the usage/m);
    assert.equal(expectRun(await runCli(["help"]), "help", 0).stdout, bare.stdout);
    assert.equal(expectRun(await runCli(["help", "save"]), "help save", 0).stdout, expectRun(await runCli(["save", "--help"]), "save --help", 0).stdout);
    assert.match(errorLine(await runCli(["help", "frob"]), "help frob", 2), /"frob" is not a command/);
    assert.equal(expectRun(await runCli(["-V"]), "-V", 0).stdout, `${PACKAGE_VERSION}\n`);
    assert.equal(expectRun(await runCli(["ls", "-V"]), "ls -V", 0).stdout, `${PACKAGE_VERSION}\n`);
  });

  test("--quiet drops the summary sentences; ls shows labels; --no-progress is accepted", async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-output-");
    try {
      const created = expectRun(
        await runCli(["--home", home, "-q", "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--label", "team=infra", "--label", "tier=gold"]),
        "create -q",
        0,
      );
      assert.equal(created.stdout, "");
      const ls = expectRun(await runCli(["--home", home, "--no-progress", "ls"]), "ls", 0).stdout.split("\n");
      assert.match(ls[0]!, /\sLABELS$/);
      assert.match(ls[1]!, /^base\s.*\steam=infra, tier=gold$/);
      assert.equal(expectRun(await runCli(["--home", home, "--quiet", "save", "base", join(root, "b.tar.zst")]), "save --quiet", 0).stdout, "");
      assert.equal(existsSync(join(root, "b.tar.zst")), true);
    } finally {
      cleanup();
    }
  });

  test("save --no-verify skips the verify pass and says so; the default still verifies", async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-output-");
    try {
      const base = await createSnapshot(home, "base", upper);
      // corrupt the installed upper (same size): only a verifying save notices
      writeSparseFile(join(base.path, "upper.ext4"), 4 << 20, [[0, "jello"], [1 << 20, noiseBytes(64 << 10)]]);
      assert.match(errorLine(await runCli(["--home", home, "save", "base", join(root, "a.tar.zst")]), "save (verifying)", 1), /does not match its recorded integrity/);
      assert.equal(existsSync(join(root, "a.tar.zst")), false);
      const skipped = expectRun(await runCli(["--home", home, "save", "base", join(root, "b.tar.zst"), "--no-verify"]), "save --no-verify", 0);
      assert.match(skipped.stdout, /^saved 1 snapshot to .*; not verified \(--no-verify\)\n$/);
      const json = stdoutJson(await runCli(["--home", home, "--json", "save", "base", join(root, "c.tar.zst"), "--no-verify"]), "save --json --no-verify");
      assert.equal(json.verified, false);
    } finally {
      cleanup();
    }
  });

  test("a progress line names its phase and fits any width (the last column stays free)", () => {
    for (let cols = 8; cols <= 200; cols++) {
      for (const [bytes, total] of [[0, 100], [3 << 30, 4 << 30], [5 << 20, null]] as const) {
        const line = progressLine("verifying", bytes, total, 1500, cols);
        assert.ok(line.length <= cols - 1, `${cols} columns: ${JSON.stringify(line)}`);
        if (cols > 12) assert.ok(line.startsWith("verifying"), line);
      }
    }
    assert.match(progressLine("unpacking", 50, 100, 1000, 80), /^unpacking \[█+░+\]  50% \| 50 B \/ 100 B \| 50 B\/s \| ETA 0:01$/);
  });

  test("under a terminal: load shows unpacking, verifying and installing, in 60 columns; in save - | load - only load draws", { skip: !hasScript && "no script(1) for a pseudo-terminal" }, async () => {
    const { root, home, upper, cleanup } = scratchDir("snapbundle-output-");
    try {
      await createSnapshot(home, "base", upper);
      const bundle = join(root, "base.tar.zst");
      expectRun(await runCli(["--home", home, "save", "base", bundle]), "save", 0);
      const cli = cliWords();
      const load = underTerminal(`${cli} --home '${join(root, "other")}' load '${bundle}'`, 60);
      assert.equal(load.status, 0, load.output);
      const lines = drawnLines(load.output);
      for (const phase of ["unpacking", "verifying", "installing"]) assert.ok(lines.some((l) => new RegExp(`^\\[\\d/3\\] ${phase}`).test(l)), `${phase} is shown: ${JSON.stringify(lines)}`);
      for (const l of lines.filter((l) => !l.startsWith("loaded "))) assert.ok(l.length <= 59, `fits 60 columns: ${JSON.stringify(l)}`);

      const piped = underTerminal(`${cli} --home '${home}' save base - --no-verify | ${cli} --home '${join(root, "third")}' load -`, 60);
      assert.equal(piped.status, 0, piped.output);
      const pipedLines = drawnLines(piped.output);
      assert.ok(pipedLines.some((l) => l.startsWith("[1/3] unpacking")), `load draws: ${JSON.stringify(pipedLines)}`);
      assert.ok(!pipedLines.some((l) => /^(reading|writing)\b/.test(l)), `save, writing into a pipe, does not draw: ${JSON.stringify(pipedLines)}`);

      const quiet = underTerminal(`${cli} --home '${join(root, "fourth")}' --no-progress load '${bundle}'`, 60);
      assert.equal(quiet.status, 0, quiet.output);
      assert.deepEqual(drawnLines(quiet.output).map((l) => l.split(" ")[0]), ["loaded"], "--no-progress: only the summary");
    } finally {
      cleanup();
    }
  });
});
