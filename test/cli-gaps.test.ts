/**
 * Rules from issue 24's gaps: what a daily user of tar, zstd and msb expects
 * of the CLI (early refusals, output formats named by the file name, msb's
 * aliases, disk use, completions). Each runs the built CLI as a subprocess on
 * the runtime the suite runs on.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RUNTIME, runCli } from "./helpers/cli-run.js";
import { cliWords, drawnLines as frames, underTerminal } from "./helpers/terminal.js";
import { progressLine } from "../src/cli/progress.js";
import { humanBytes } from "../src/cli/format.js";
import { COMMANDS, GLOBAL_OPTIONS } from "../src/cli/args.js";
import { createSnapshot, errorLine, expectRun, scratchDir, stdoutJson } from "./helpers/cli-assert.js";

const T = { timeout: 60_000 };

/** The real microsandbox CLI (msb 0.6.18, a devDependency): the witness for what mirroring it means. */
const MSB = fileURLToPath(new URL("../../node_modules/@superradcompany/microsandbox-linux-x64-gnu/bin/msb", import.meta.url));

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
        // a second home loads it once: the snapshot now lies at its own place there (the archive's
        // directory name; a 0.6 bundle is loaded by msb itself, which keeps that name, where our load
        // would take its suggested_name, and a reload is then decided only at the end)
        const home = join(s.root, "home2");
        if (layout === "snapshot") assert.equal((await msb(home, ["snapshot", "load", bundle])).code, 0, "msb loads it");
        else expectRun(await runCli(["--home", home, "load", bundle]), "first load", 0);
        const [first] = stdoutJson(expectRun(await runCli(["--home", home, "--json", "ls"]), "ls", 0), "ls");
        // cut the archive in the middle of the upper's data: a full read fails ("truncated")
        truncateSync(bundle, 64 << 10);
        const broken = await runCli(["--home", home, "load", bundle, "--dest", join(s.root, "elsewhere")]);
        assert.match(errorLine(broken, "load into a fresh --dest reads on and meets the corruption", 1), /truncat|end/i);

        // (a home msb has used gets a note that msb's own index is left to msb: not an error)
        const again = expectRun(await runCli(["--home", home, "--json", "load", bundle]), "load of an installed bundle", 0, { quietStderr: false });
        assert.match(again.stderr, /^(note: [^\n]*msb[^\n]*\n)?$/);
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
        await createSnapshot(home, "x", s.upper, ["--layout", "snapshot", "--label", "who=x"]); // not p's twin (same bytes, same second: same digest)
      }
      assert.equal((await msb(homes.msb, ["snapshot", "reindex"])).code, 0, "msb indexes the artifacts");
      const theirs = await msb(homes.msb, ["snapshot", "remove", "x", "nosuch", "p"]);
      const ours = await runCli(["--home", homes.ours, "rm", "x", "nosuch", "p"]);
      assert.equal(ours.code, 1, ours.stderr);
      assert.equal(ours.code, theirs.code, "the exit status msb gives");
      assert.deepEqual(readdirSync(join(homes.ours, "snapshots")).filter((n) => !n.startsWith(".")).sort(), readdirSync(join(homes.msb, "snapshots")).filter((n) => !n.startsWith(".")).sort(), `ours: ${ours.stdout}${ours.stderr}; msb: ${theirs.stdout}${theirs.stderr}`);
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
      assert.equal(dirname(ours.path), join(s.root, "dest"));
      assert.equal(readdirSync(join(s.root, "msb-dest")).filter((n) => !n.startsWith(".")).length, 1, "msb's load put it in its DEST");
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

  test(`rule: under a terminal, save - | load - on ${RUNTIME}: load says it waits for its input, then counts its steps; the last frame is no "installing 0 B"`, T, async () => {
    const s = scratchDir("snapbundle-gaps-pty-");
    try {
      await createSnapshot(s.home, "v", s.upper);
      const cli = cliWords();
      const piped = underTerminal(`${cli} --home '${s.home}' save v - | ${cli} --home '${join(s.root, "other")}' load -`, 100);
      assert.equal(piped.status, 0, piped.output);
      const seen = frames(piped.output);
      assert.equal(seen[0], "waiting for input on stdin", `the first frame: ${JSON.stringify(seen)}`);
      assert.ok(!seen.some((l) => /^(\[1\/3\] )?unpacking 0 B\b/.test(l)), `no "unpacking 0 B": ${JSON.stringify(seen)}`);
      for (const step of ["[1/3] unpacking", "[2/3] verifying", "[3/3] installing"]) assert.ok(seen.some((l) => l.startsWith(step)), `${step}: ${JSON.stringify(seen)}`);
      assert.ok(!seen.some((l) => /installing.*0 B/.test(l)), `installing counts no bytes: ${JSON.stringify(seen)}`);
      assert.equal(seen[seen.length - 2], "[3/3] installing", `the last frame before the summary: ${JSON.stringify(seen)}`);
      assert.match(seen[seen.length - 1]!, /^loaded /);
    } finally {
      s.cleanup();
    }
  });

  test(`rule: load - < FILE shows the file's total, and TERM=dumb gets plain lines without escape codes (${RUNTIME})`, T, async () => {
    const s = scratchDir("snapbundle-gaps-dumb-");
    try {
      await createSnapshot(s.home, "v", s.upper);
      const bundle = join(s.root, "v.tar.zst");
      expectRun(await runCli(["--home", s.home, "save", "v", bundle]), "save", 0);
      const size = readFileSync(bundle).length;
      // `deno run` itself clears its own (module loading) progress line on a terminal, whatever TERM says: -q silences Deno's, not ours
      const words = RUNTIME === "deno" ? cliWords().replace(`'run'`, `'run' '-q'`) : cliWords();
      const r = underTerminal(`${words} --home '${join(s.root, "other")}' load - < '${bundle}'`, 100, { TERM: "dumb" });
      assert.equal(r.status, 0, r.output);
      assert.doesNotMatch(r.output, /\x1b/, `no escape code under TERM=dumb: ${JSON.stringify(r.output)}`);
      const lines = r.output.split("\r\n").filter(Boolean); // the terminal turns each newline into CR LF
      assert.ok(lines.every((l) => !l.includes("\r")), `no carriage return redraws: ${JSON.stringify(r.output)}`);
      assert.match(lines[0]!, new RegExp(`^\\[1/3\\] unpacking .*\\| 0 B / ${humanBytes(size).replace(".", "\\.")}\\b`), `the total of stdin's file: ${JSON.stringify(lines)}`);
      assert.ok(lines.some((l) => l.startsWith("[2/3] verifying")) && lines.some((l) => l === "[3/3] installing"), JSON.stringify(lines));
    } finally {
      s.cleanup();
    }
  });

  test("rule: a progress line with a total shows the time left once a second has passed", () => {
    assert.match(progressLine("[2/3] verifying", 2 ** 30, 4 * 2 ** 30, 10_000, 120), /\| 1\.0 GiB \/ 4\.0 GiB \| [0-9.]+ MiB\/s \| ETA 0:30$/);
    assert.doesNotMatch(progressLine("[2/3] verifying", 2 ** 30, 4 * 2 ** 30, 500, 120), /ETA/, "no guess from under a second");
    assert.equal(progressLine("[3/3] installing", 0, null, 5000, 120), "[3/3] installing");
  });

  test("rule: inspect BUNDLE is a quick listing that hashes nothing; --verify hashes; a corrupt bundle lists what was read, then the error", T, async () => {
    const s = scratchDir("snapbundle-gaps-inspect-");
    try {
      await createSnapshot(s.home, "v", s.upper);
      const bundle = join(s.root, "v.tar");
      expectRun(await runCli(["--home", s.home, "save", "v", bundle]), "save", 0);
      // flip upper bytes but no header: only hashing the data can see it (the noise lies at 1 MiB of the upper)
      const bytes = readFileSync(bundle);
      const data = bytes.indexOf("/upper.ext4\0") - "sha256-".length - 16 + 512; // the upper's header (short name: no extension headers), then its data
      assert.equal(bytes[data - 512], "s".charCodeAt(0));
      bytes[data + (1 << 20) + 100] = bytes[data + (1 << 20) + 100]! ^ 0xff;
      writeFileSync(bundle, bytes);
      const quick = stdoutJson(expectRun(await runCli(["--json", "inspect", bundle]), "inspect (quick)", 0), "inspect");
      assert.equal(quick.snapshots[0].integrity.status, "not-checked", "the quick listing hashed nothing");
      assert.equal(quick.snapshots[0].integrity.computed, null);
      assert.match(expectRun(await runCli(["inspect", bundle]), "inspect text", 0).stdout, /^integrity: +msb-sparse-sha256-v1 sha256:[0-9a-f]{64} \(not checked; use --verify\)$/m);
      assert.match(errorLine(await runCli(["inspect", "--verify", bundle]), "inspect --verify", 1), /does not match its recorded integrity/);

      // a truncated bundle: the members before the cut are listed, then the error
      truncateSync(bundle, data + (2 << 20));
      const cut = await runCli(["inspect", bundle]);
      assert.match(errorLine({ ...cut, stdout: "" }, "inspect truncated", 1), /truncated/);
      assert.match(cut.stdout, /^read before the error \(2 members\):\n  sha256-[0-9a-f]{16}\/manifest\.json \([0-9.]+ (B|KiB)\)\n  sha256-[0-9a-f]{16}\/upper\.ext4 \(4\.0 MiB\)\n$/);
    } finally {
      s.cleanup();
    }
  });

  test("rule: ls and inspect show disk use (allocated bytes, as find's %b counts them) beside the apparent size, in JSON as disk_bytes", T, async () => {
    const s = scratchDir("snapbundle-gaps-du-");
    try {
      const v = await createSnapshot(s.home, "v", s.upper);
      const blocks = await new Promise<string>((resolve, reject) =>
        execFile("find", [v.path, "-maxdepth", "1", "-type", "f", "-printf", "%b\\n"], (e, out) => (e ? reject(e) : resolve(String(out))))
      );
      const allocated = blocks.split("\n").filter(Boolean).reduce((n, b) => n + Number(b) * 512, 0);
      assert.ok(allocated > 0 && allocated < v.size_bytes / 4, `a sparse upper: ${allocated} allocated of ${v.size_bytes}`);
      const [listed] = stdoutJson(expectRun(await runCli(["--home", s.home, "--json", "ls"]), "ls --json", 0), "ls");
      assert.equal(listed.disk_bytes, allocated);
      assert.equal(listed.size_bytes, 4 << 20);
      assert.equal(stdoutJson(expectRun(await runCli(["--home", s.home, "--json", "inspect", "v"]), "inspect --json", 0), "inspect").disk_bytes, allocated);
      const table = expectRun(await runCli(["--home", s.home, "ls"]), "ls", 0).stdout.split("\n");
      assert.match(table[0]!, /\bSIZE +DISK\b/);
      assert.match(table[1]!, new RegExp(`\\b4\\.0 MiB +${humanBytes(allocated).replace(".", "\\.")}\\b`));
      assert.match(expectRun(await runCli(["--home", s.home, "inspect", "v"]), "inspect", 0).stdout, new RegExp(`^disk use: +.* \\(${allocated} bytes allocated\\)$`, "m"));
    } finally {
      s.cleanup();
    }
  });

  test("rule: a 0.6 bundle's suggested_name is shown by inspect and names the loaded head where free (msb 0.6.18 keeps the 64-hex name)", T, async () => {
    const s = scratchDir("snapbundle-gaps-suggested-");
    try {
      const v = await createSnapshot(s.home, "mysnap", s.upper, ["--layout", "snapshot"]);
      const bundle = join(s.root, "m.tar.zst");
      expectRun(await runCli(["--home", s.home, "save", "mysnap", bundle]), "save", 0);
      assert.equal(stdoutJson(expectRun(await runCli(["--json", "inspect", bundle]), "inspect --json", 0), "inspect").suggested_name, "mysnap");
      assert.match(expectRun(await runCli(["inspect", bundle]), "inspect", 0).stdout, /^suggested name: +mysnap$/m);
      // the witness: msb's own load ignores it
      const msbHome = join(s.root, "msb-home");
      assert.equal((await msb(msbHome, ["snapshot", "load", bundle])).code, 0);
      assert.deepEqual(readdirSync(join(msbHome, "snapshots")).filter((n) => !n.startsWith(".")), [v.digest.slice(7)]);
      // ours: the suggested name where it is free
      const home = join(s.root, "home2");
      const loaded = stdoutJson(expectRun(await runCli(["--home", home, "--json", "load", bundle]), "load", 0), "load");
      assert.equal(loaded.path, join(home, "snapshots", "mysnap"));
      assert.equal(stdoutJson(expectRun(await runCli(["--home", home, "--json", "load", bundle]), "load again", 0), "again").already_installed, true, "not a second copy");
      // taken: the 64-hex name, as msb
      const taken = join(s.root, "home3");
      await createSnapshot(taken, "mysnap", s.upper, ["--label", "other=1"]);
      assert.equal(stdoutJson(expectRun(await runCli(["--home", taken, "--json", "load", bundle]), "load taken", 0), "taken").path, join(taken, "snapshots", v.digest.slice(7)));
    } finally {
      s.cleanup();
    }
  });

  test("rule: bash completion, run by bash, offers every command and alias --help lists and each command's own options and choices", T, async () => {
    const help = expectRun(await runCli(["--help"]), "--help", 0).stdout;
    const listed = [...help.matchAll(/^ {2}([a-z]+) {2,}.*?((?: \[alias: [a-z]+\])*)$/gm)].flatMap((m) => [m[1]!, ...[...m[2]!.matchAll(/alias: ([a-z]+)/g)].map((a) => a[1]!)]);
    assert.ok(listed.includes("list") && listed.includes("completions"), listed.join(" "));
    const script = expectRun(await runCli(["completions", "bash"]), "completions bash", 0).stdout;
    /** What bash's completion offers for the words typed so far (the last one being completed). */
    const complete = (words: string[]) => {
      const line = ["snapbundle", ...words];
      const r = spawnSync("bash", ["-c", `${script}\nCOMP_WORDS=(${line.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${line.length - 1}; _snapbundle; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8", cwd: "/" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split("\n").filter(Boolean).sort();
    };
    assert.deepEqual(complete([""]).filter((w) => !w.startsWith("-")), [...listed].sort(), "the commands --help lists");
    assert.deepEqual(complete(["--json", "sa"]), ["save"]);
    assert.deepEqual(complete(["save", "x", "--layout", ""]), ["manifest", "snapshot"]);
    assert.deepEqual(complete(["--format", ""]), ["json"]);
    assert.deepEqual(complete(["remove", "-"]).filter((w) => !(w.replace(/^-+/, "") in GLOBAL_OPTIONS) && w !== "-q" && w !== "-h" && w !== "-V"), ["--force", "-f"]);
    for (const c of COMMANDS) {
      const offered = complete([c.name, "--"]);
      for (const o of Object.keys(c.options)) assert.ok(offered.includes(`--${o}`), `${c.name} --${o}: ${offered.join(" ")}`);
    }
    for (const shell of ["zsh", "fish"]) {
      const text = expectRun(await runCli(["completions", shell]), `completions ${shell}`, 0).stdout;
      for (const c of COMMANDS) for (const o of Object.keys(c.options)) assert.ok(text.includes(shell === "fish" ? `-l ${o}` : `--${o}[`), `${shell}: ${c.name} --${o}`);
      for (const name of listed) assert.ok(new RegExp(`\\b${name}\\b`).test(text), `${shell}: ${name}`);
    }
    assert.match(errorLine(await runCli(["completions", "tcsh"]), "completions tcsh", 2), /is not a shell/);
  });

  test("rule: --help lists the exit statuses of interruption (130, 143, 129) and SNAPBUNDLE_DEBUG; the man page comes from the same table", T, async () => {
    const help = expectRun(await runCli(["--help"]), "--help", 0).stdout;
    for (const code of ["130", "143", "129"]) assert.match(help, new RegExp(`\\b${code}\\b`));
    assert.match(help, /SNAPBUNDLE_DEBUG +1: after an "error: …" line, print the error's stack trace/);
    const man = expectRun(await runCli(["man"]), "man", 0).stdout;
    assert.match(man, /^\.TH SNAPBUNDLE 1 /);
    for (const c of COMMANDS) assert.match(man, new RegExp(`^\\.SS ${c.name}\\b`, "m"), c.name);
    assert.match(man, /SNAPBUNDLE_DEBUG/);
    // man(1) itself renders it without a warning
    const rendered = spawnSync("sh", ["-c", "man -l - 2>&1 >/dev/null"], { input: man, encoding: "utf8", env: { ...process.env, MANWIDTH: "80" } });
    assert.equal(rendered.stdout, "", "no man warnings");
  });

  // the script and the deno it runs are the same whichever runtime runs this suite: checked once, on Node
  test("rule: npm run examples sets NO_COLOR when its output is not a terminal, so deno writes no colour codes into a file", { timeout: 120_000, skip: RUNTIME === "node" ? false : "the npm script runs deno whatever runs this suite: checked on Node" }, () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const script: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts.examples;
    const guard = script.slice(0, script.indexOf("node examples/"));
    const denoTest = script.split(" && ").find((p) => p.startsWith("deno test"))!;
    const env: Record<string, string> = { ...(process.env as Record<string, string>), PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}`, DENO_NO_UPDATE_CHECK: "1" };
    delete env.NO_COLOR; // as a user's shell has it
    delete env.FORCE_COLOR;
    const r = spawnSync("sh", ["-c", `${guard}${denoTest}`], { cwd: root, encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /\x1b\[/, `no colour codes: ${JSON.stringify((r.stdout + r.stderr).slice(0, 200))}`);
  });
});
