/**
 * Rules from issue 24's gaps: what a daily user of tar, zstd and msb expects
 * of the CLI (early refusals, output formats named by the file name, msb's
 * aliases, disk use, completions). Each runs the built CLI as a subprocess on
 * the runtime the suite runs on.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "./helpers/cli-run.js";
import { createSnapshot, errorLine, expectRun, scratchDir, stdoutJson } from "./helpers/cli-assert.js";

const T = { timeout: 60_000 };

/** The real microsandbox CLI (msb 0.6.18, a devDependency): the witness for what mirroring it means. */
const MSB = fileURLToPath(new URL("../../node_modules/.bin/msb", import.meta.url));

/** Run `msb …` with MSB_HOME=home; resolves its exit status and output. */
function msb(home: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(MSB, [...args], { env: { ...process.env, MSB_HOME: home, NO_COLOR: "1" }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe("CLI gaps (issue 24)", () => {
  for (const layout of ["manifest", "snapshot"] as const) {
    test(`rule: "already installed" and --name EXISTING are decided from the first entries, before a corrupt later payload is read (${layout} layout)`, T, async () => {
      const s = scratchDir("snapbundle-gaps-early-");
      try {
        await createSnapshot(s.home, "v", s.upper, ["--layout", layout]);
        const bundle = join(s.root, "v.tar");
        expectRun(await runCli(["--home", s.home, "save", "v", bundle, "--plain-tar"]), "save", 0);
        // a second home loads it once: the snapshot now lies at its own place there
        const home = join(s.root, "home2");
        const first = stdoutJson(expectRun(await runCli(["--home", home, "--json", "load", bundle]), "first load", 0), "first load");
        // cut the archive in the middle of the upper's data: a full read fails ("truncated")
        truncateSync(bundle, 64 << 10);
        const broken = await runCli(["--home", home, "load", bundle, "--dest", join(s.root, "elsewhere")]);
        assert.match(errorLine(broken, "load into a fresh --dest reads on and meets the corruption", 1), /truncat|end/i);

        const again = expectRun(await runCli(["--home", home, "--json", "load", bundle]), "load of an installed bundle", 0);
        const doc = stdoutJson(again, "already installed");
        assert.equal(doc.already_installed, true);
        assert.equal(doc.path, first.path);

        const named = errorLine(await runCli(["--home", home, "load", bundle, "--name", first.name]), "load --name EXISTING", 1);
        assert.match(named, /already exists/);
        assert.doesNotMatch(named, /truncat/);
      } finally {
        s.cleanup();
      }
    });
  }

  test("rule: a zstd bundle corrupt past its first snapshot's manifest is still refused early as installed", T, async () => {
    const s = scratchDir("snapbundle-gaps-early-zst-");
    try {
      await createSnapshot(s.home, "v", s.upper);
      const bundle = join(s.root, "v.tar.zst");
      expectRun(await runCli(["--home", s.home, "save", "v", bundle]), "save", 0);
      const home = join(s.root, "home2");
      expectRun(await runCli(["--home", home, "load", bundle]), "first load", 0);
      const bytes = readFileSync(bundle);
      for (let i = Math.floor(bytes.length / 2); i < bytes.length - 8; i += 97) bytes[i] = bytes[i]! ^ 0x5a;
      writeFileSync(bundle, bytes);
      const r = expectRun(await runCli(["--home", home, "load", bundle]), "load", 0);
      assert.match(r.stdout, /already installed: sha256-/);
    } finally {
      s.cleanup();
    }
  });

  test("rule: every alias msb's 'snapshot --help' lists is a name of the same snapbundle command", T, async () => {
    const help = await msb("/nonexistent", ["snapshot", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    const aliases = [...help.stdout.matchAll(/^\s+(\w+)\s.*\[alias: (\w+)\]/gm)].map((m) => [m[1]!, m[2]!] as const);
    assert.ok(aliases.length >= 2, `msb lists aliases: ${help.stdout}`);
    for (const [name, alias] of aliases) {
      for (const [a, b] of [[name, alias], [alias, name]] as const) {
        const ours = expectRun(await runCli([a, "--help"]), `${a} --help`, 0);
        const theirs = expectRun(await runCli([b, "--help"]), `${b} --help`, 0);
        assert.equal(ours.stdout, theirs.stdout, `'${a}' and '${b}' are one command`);
      }
    }
  });

  test("rule: ls -q prints the digests msb's 'snapshot list -q' prints, and --format json is --json", T, async () => {
    const s = scratchDir("snapbundle-gaps-lsq-");
    try {
      await createSnapshot(s.home, "a", s.upper, ["--layout", "snapshot"]);
      await createSnapshot(s.home, "b", s.upper, ["--layout", "snapshot", "--label", "k=v"]);
      assert.equal((await msb(s.home, ["snapshot", "reindex"])).code, 0, "msb indexes the artifacts");
      const theirs = await msb(s.home, ["snapshot", "list", "-q"]);
      assert.equal(theirs.code, 0, theirs.stderr);
      const ours = expectRun(await runCli(["--home", s.home, "ls", "-q"]), "ls -q", 0);
      assert.deepEqual(ours.stdout.split("\n").filter(Boolean).sort(), theirs.stdout.split("\n").filter(Boolean).sort());
      assert.match(ours.stdout, /^(sha256:[0-9a-f]{64}\n){2}$/);
      const json = expectRun(await runCli(["--home", s.home, "--json", "list"]), "--json list", 0);
      const format = expectRun(await runCli(["--home", s.home, "list", "--format", "json"]), "list --format json", 0);
      assert.equal(format.stdout, json.stdout);
      assert.match(errorLine(await runCli(["--home", s.home, "ls", "--format", "yaml"]), "--format yaml", 2), /--format "yaml" is not a format/);
    } finally {
      s.cleanup();
    }
  });

  test("rule: rm takes several snapshots and -f, and like msb's remove goes on past one it cannot remove (exit 1)", T, async () => {
    const s = scratchDir("snapbundle-gaps-rm-");
    try {
      const homes = { ours: join(s.root, "ours"), msb: join(s.root, "msb") };
      for (const home of Object.values(homes)) {
        const p = await createSnapshot(home, "p", s.upper, ["--layout", "snapshot"]);
        await createSnapshot(home, "c", s.upper, ["--layout", "snapshot", "--parent", p.digest]);
        await createSnapshot(home, "x", s.upper, ["--layout", "snapshot"]);
      }
      assert.equal((await msb(homes.msb, ["snapshot", "reindex"])).code, 0, "msb indexes the artifacts");
      const theirs = await msb(homes.msb, ["snapshot", "remove", "x", "nosuch", "p"]);
      const ours = await runCli(["--home", homes.ours, "rm", "x", "nosuch", "p"]);
      assert.equal(ours.code, 1, ours.stderr);
      assert.equal(ours.code, theirs.code, "the exit status msb gives");
      assert.deepEqual(readdirSync(join(homes.ours, "snapshots")).filter((n) => !n.startsWith(".")).sort(), readdirSync(join(homes.msb, "snapshots")).filter((n) => !n.startsWith(".")).sort());
      assert.match(ours.stderr, /nosuch/);
      assert.match(ours.stderr, /\bp\b.*parent|parent.*\bp\b|children|child/i, "the refusal of the parent is reported too");
      assert.equal(ours.stderr.split("\n").filter((l) => l.startsWith("error: ")).length, 2, ours.stderr);
      // -f, as msb's: removes the parent and c together
      expectRun(await runCli(["--home", homes.ours, "rm", "-f", "p", "c"]), "rm -f p c", 0);
      assert.deepEqual(readdirSync(join(homes.ours, "snapshots")).filter((n) => !n.startsWith(".")), []);
    } finally {
      s.cleanup();
    }
  });

  test("rule: load ARCHIVE DEST installs into DEST, where msb's 'snapshot load ARCHIVE DEST' does", T, async () => {
    const s = scratchDir("snapbundle-gaps-dest-");
    try {
      await createSnapshot(s.home, "v", s.upper, ["--layout", "snapshot"]);
      const bundle = join(s.root, "v.tar.zst");
      expectRun(await runCli(["--home", s.home, "save", "v", bundle]), "save", 0);
      const theirs = await msb(join(s.root, "msb-home"), ["snapshot", "load", bundle, join(s.root, "msb-dest")]);
      assert.equal(theirs.code, 0, theirs.stderr);
      const ours = stdoutJson(expectRun(await runCli(["--home", join(s.root, "home2"), "--json", "load", bundle, join(s.root, "dest")]), "load A DEST", 0), "load");
      assert.equal(ours.path, join(s.root, "dest", readdirSync(join(s.root, "msb-dest")).filter((n) => !n.startsWith("."))[0]!));
      assert.match(errorLine(await runCli(["--home", join(s.root, "home2"), "load", bundle, join(s.root, "d2"), "--dest", join(s.root, "d3")]), "DEST and --dest", 2), /not both/);
    } finally {
      s.cleanup();
    }
  });

  test("rule: save follows the output's name as tar -a does: .tar plain, .tar.zst/.tzst zstd, a compression we cannot write refused before any work", T, async () => {
    const s = scratchDir("snapbundle-gaps-save-name-");
    try {
      await createSnapshot(s.home, "v", s.upper);
      const magic = (p: string) => {
        const b = readFileSync(p);
        if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
        return new TextDecoder().decode(b.subarray(257, 262)) === "ustar" ? "tar" : "other";
      };
      for (const [name, want] of [["v.tar", "tar"], ["v.tar.zst", "zstd"], ["v.tzst", "zstd"], ["v.bundle", "zstd"]] as const) {
        expectRun(await runCli(["--home", s.home, "save", "v", join(s.root, name)]), `save ${name}`, 0);
        assert.equal(magic(join(s.root, name)), want, name);
      }
      // GNU tar reads the .tar without any decompressor, and the load takes it back
      const listed = await new Promise<string>((resolve, reject) =>
        execFile("tar", ["--no-auto-compress", "-tf", join(s.root, "v.tar")], (e, out) => (e ? reject(e) : resolve(String(out))))
      );
      assert.match(listed, /manifest\.json/);
      for (const name of ["v.tar.gz", "v.tgz", "v.tar.xz", "v.tar.bz2", "v.zip"]) {
        const line = errorLine(await runCli(["--home", s.home, "save", "v", join(s.root, name)]), `save ${name}`, 2);
        assert.match(line, /does not write: name it \.tar\.zst .* or \.tar/, name);
        assert.deepEqual(readdirSync(s.root).filter((n) => n.startsWith(name) || n.includes(".partial")), [], `${name}: nothing written`);
      }
      assert.match(errorLine(await runCli(["--home", s.home, "save", "v", join(s.root, "w.tar.zst"), "--plain-tar"]), "--plain-tar .tar.zst", 2), /--plain-tar writes a plain tar/);
      const piped = expectRun(await runCli(["--home", s.home, "save", "v", "-"]), "save -", 0);
      assert.deepEqual([...piped.stdoutBytes.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], "stdout stays zstd");
    } finally {
      s.cleanup();
    }
  });
});
