/**
 * End-to-end tests of the `snapbundle` command line: the BUILT CLI
 * (`dist/src/cli/main.js`) runs as a subprocess on the same runtime as the
 * test (node, `deno run -A`, or bun). Subprocess stderr is a pipe, never a
 * TTY, so no progress bar may appear: every successful command must leave
 * stderr empty.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noise } from "./helpers/bytes.js";
import { type CliResult, PACKAGE_VERSION, pipeCli, runCli, RUNTIME, writeSparseFile } from "./helpers/cli-run.js";

const IMAGE_REF = "docker.io/library/python:3.12";
const IMAGE_DIGEST = "sha256:" + "a".repeat(64);
const INFO_KEYS = ["created_at", "digest", "form", "format", "fstype", "image_manifest_digest", "image_ref", "labels", "name", "parent", "path", "scope", "size_bytes", "state_kind"];
const UPPER_SIZE = 8 << 20;
/** An `ls --json` entry without the `disk_bytes` only `ls` and `inspect` add: the snapshot as every other command prints it. */
const withoutDiskUse = ({ disk_bytes: _, ...rest }: { disk_bytes: unknown }) => rest;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** A scratch directory with a sparse upper (data at 0 and 256 KiB of noise at 1 MiB). */
function scratch(): { root: string; upper: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "snapbundle-cli-"));
  const upper = join(root, "upper.ext4");
  writeSparseFile(upper, UPPER_SIZE, [[0, "hello"], [1 << 20, noise(256 << 10)]]);
  return { root, upper, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Assert success with empty stderr (no progress output when stderr is not a TTY). */
function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.stderr, "", `${what}: stderr must be empty on success, got ${JSON.stringify(r.stderr)}`);
  assert.equal(r.code, 0, `${what}: exit status`);
  return r;
}

/** Assert success and exactly one JSON document on stdout; return it. */
// deno-lint-ignore no-explicit-any
function json(r: CliResult, what: string): any {
  ok(r, what);
  assert.ok(r.stdout.endsWith("\n"), `${what}: output ends with a newline`);
  const doc = JSON.parse(r.stdout); // throws on two documents or trailing text
  assert.equal(r.stdout, JSON.stringify(doc, null, 2) + "\n", `${what}: exactly one JSON document`);
  return doc;
}

/** Assert failure with exit 1 and exactly one `error:` line, no stack trace; return the line. */
function fails(r: CliResult, what: string): string {
  assert.equal(r.code, 1, `${what}: exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `${what}: exactly one stderr line, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^error: /, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error: .*\n|file:\/\//, `${what}: no stack trace`);
  assert.equal(r.stdout, "", `${what}: nothing on stdout`);
  return lines[0]!;
}

/** Assert bad usage: exit 2, an error line, the usage line and the help hint. */
function usage(r: CliResult, what: string, command: string | null): string {
  assert.equal(r.code, 2, `${what}: exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 3, `${what}: error, usage and hint lines, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^error: /, what);
  assert.match(lines[1]!, command ? new RegExp(`^usage: snapbundle ${command}( |$)`) : /^usage: snapbundle /, what);
  assert.equal(lines[2], command ? `try 'snapbundle ${command} --help'` : "try 'snapbundle --help'", what);
  assert.equal(r.stdout, "", `${what}: nothing on stdout`);
  return lines[0]!;
}

/** `create` a snapshot with integrity; returns its JSON. */
async function create(home: string, name: string, upper: string, extra: string[] = []) {
  return json(
    await runCli(["--home", home, "--json", "create", name, "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--integrity", ...extra]),
    `create ${name}`,
  );
}

describe(`snapbundle CLI on ${RUNTIME}`, () => {
  test("--help and --version, global and per command, exit 0", async () => {
    const help = ok(await runCli(["--help"]), "--help");
    assert.match(help.stdout, /^snapbundle — /);
    assert.match(help.stdout, /usage: snapbundle \[--home DIR\] \[--json\] <command>/);
    for (const c of ["create", "ls", "inspect", "verify", "rm", "reindex", "save", "load"]) assert.match(help.stdout, new RegExp(`^  ${c} `, "m"));
    assert.equal(ok(await runCli(["-h"]), "-h").stdout, help.stdout);

    assert.equal(ok(await runCli(["--version"]), "--version").stdout, `${PACKAGE_VERSION}\n`);
    assert.equal(ok(await runCli(["ls", "--version"]), "ls --version").stdout, `${PACKAGE_VERSION}\n`);

    for (const c of ["create", "ls", "inspect", "verify", "rm", "reindex", "save", "load"]) {
      const r = ok(await runCli([c, "--help"]), `${c} --help`);
      assert.match(r.stdout, new RegExp(`^usage: snapbundle ${c}\\b`), `${c} --help starts with its usage`);
      assert.match(r.stdout, /--home DIR/, `${c} --help lists the global options`);
    }
    const save = ok(await runCli(["--json", "save", "--help"]), "save --help");
    assert.match(save.stdout, /usage: snapbundle save <name\|path> <out\|->/);
    assert.match(save.stdout, /stdout carries the archive and nothing\s+else/);
    assert.match(ok(await runCli(["create", "-h"]), "create -h").stdout, /--image-digest DIGEST/);
  });

  test("bad usage exits 2 with the usage line and a hint", async () => {
    assert.match(usage(await runCli(["frob"]), "unknown command", null), /unknown command 'frob'/);
    assert.match(usage(await runCli(["--bogus", "ls"]), "unknown global option", "ls"), /unknown option '--bogus'/);
    assert.match(usage(await runCli(["save", "x"]), "missing argument", "save"), /missing argument <out\|->/);
    assert.match(usage(await runCli(["save", "x", "y", "--bogus"]), "unknown flag", "save"), /unknown option '--bogus'/);
    assert.match(usage(await runCli(["ls", "extra"]), "extra argument", "ls"), /unexpected argument 'extra'/);
    assert.match(usage(await runCli(["load", "a", "--name"]), "missing option value", "load"), /--name/);
    assert.match(usage(await runCli(["rm", "x", "--force=yes"]), "value for a boolean", "rm"), /--force/);
    assert.match(usage(await runCli(["--force", "rm", "x"]), "command option before the command", "rm"), /must come after/);
    assert.match(usage(await runCli(["create", "n", "--image", "i", "--image-digest", IMAGE_DIGEST]), "missing --upper", "create"), /--upper/);
    const label = ["create", "n", "--upper", "u", "--image", "i", "--image-digest", IMAGE_DIGEST, "--label"];
    assert.match(usage(await runCli([...label, "novalue"]), "bad --label", "create"), /bad --label "novalue"/);
    assert.match(usage(await runCli([...label, "=v"]), "empty label key", "create"), /bad --label "=v"/);
    assert.match(usage(await runCli([...label, "k=1", "--label", "k=2"]), "repeated label key", "create"), /given twice/);
  });

  test("create, ls (table and --json), inspect; --home, $MSB_HOME and ~/.microsandbox", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const home = join(root, "home");
      const created = ok(
        await runCli(["--home", home, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--integrity", "--label", "owner=alice", "--label", "note=a=b", "--source-sandbox", "sb-1"]),
        "create base",
      );
      assert.match(created.stdout, new RegExp(`^created base sha256:[0-9a-f]{64} at ${home}/snapshots/base\\n$`));
      const base = json(await runCli(["--home", home, "--json", "inspect", "base"]), "inspect --json");
      assert.deepEqual(Object.keys(base).sort(), [...INFO_KEYS, "disk_bytes"].sort()); // inspect adds the disk use (issue 24 gap 6)
      assert.equal(base.name, "base");
      assert.equal(base.path, join(home, "snapshots", "base"));
      assert.equal(base.size_bytes, UPPER_SIZE);
      assert.equal(base.image_ref, IMAGE_REF);
      assert.deepEqual(base.labels, { note: "a=b", owner: "alice" });
      assert.equal(base.parent, null);

      // Global options after the command; a relative --upper resolved against the cwd.
      const child = json(
        await runCli(["create", "child", "--upper", "upper.ext4", "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--parent", base.digest, "--json", "--home", home], { cwd: root }),
        "create child --json",
      );
      assert.deepEqual(Object.keys(child).sort(), INFO_KEYS);
      assert.equal(child.parent, base.digest);

      const table = ok(await runCli(["--home", home, "ls"]), "ls").stdout.trimEnd().split("\n");
      assert.equal(table.length, 3);
      assert.match(table[0]!, /^NAME\s+FORM\s+DIGEST\s+SIZE\s+DISK\s+CREATED\s+PARENT\s+LABELS$/);
      assert.match(table[1]!, new RegExp(`^base\\s+manifest\\s+${base.digest.slice(7, 19)}\\s+8\\.0 MiB\\s+[0-9.]+ (?:B|KiB|MiB)\\s+${base.created_at}\\s+-\\s+note=a=b, owner=alice$`));
      assert.match(table[2]!, new RegExp(`^child\\s+manifest\\s+${child.digest.slice(7, 19)}\\s+8\\.0 MiB\\s+[0-9.]+ (?:B|KiB|MiB)\\s+\\S+\\s+${base.digest.slice(7, 19)}\\s+-$`));

      const list = json(await runCli(["ls", "--json", "--home", home]), "ls --json");
      assert.deepEqual(list.map(withoutDiskUse), [withoutDiskUse(base), child]);
      assert.deepEqual(json(await runCli(["--json", "ls"], { env: { MSB_HOME: home } }), "ls with $MSB_HOME"), list);
      assert.deepEqual(json(await runCli(["--json", "ls"], { env: { MSB_HOME: "home" }, cwd: root }), "relative $MSB_HOME"), list);
      // --home wins over $MSB_HOME
      assert.deepEqual(json(await runCli(["--json", "--home", home, "ls"], { env: { MSB_HOME: join(root, "elsewhere") } }), "--home over $MSB_HOME"), list);
      // default: ~/.microsandbox
      const fakeHome = join(root, "user");
      mkdirSync(fakeHome);
      assert.deepEqual(json(await runCli(["--json", "ls"], { env: { HOME: fakeHome } }), "ls in ~/.microsandbox"), []);
      assert.equal(ok(await runCli(["ls"], { env: { HOME: fakeHome } }), "ls in ~/.microsandbox").stdout, `no snapshots: the home ${join(fakeHome, ".microsandbox")} does not exist (choose another with --home or MSB_HOME)\n`, "the default home is ~/.microsandbox, and a missing one is said so");
      assert.equal(existsSync(join(fakeHome, ".microsandbox")), false, "ls, a read-only command, created nothing");
      assert.match(ok(await runCli(["ls"], { env: { HOME: fakeHome } }), "empty ls").stdout, /^no snapshots: the home /);

      const text = ok(await runCli(["--home", home, "inspect", "child"]), "inspect").stdout;
      assert.match(text, /^name:\s+child$/m);
      assert.match(text, new RegExp(`^digest:\\s+${child.digest}$`, "m"));
      assert.match(text, new RegExp(`^parent:\\s+${base.digest}$`, "m"));
      assert.match(text, /^size:\s+8\.0 MiB \(8388608 bytes\)$/m);
      assert.match(text, /^integrity:\s+not recorded$/m);
      const baseText = ok(await runCli(["--home", home, "inspect", base.digest]), "inspect by digest").stdout;
      assert.match(baseText, /^labels:\s+note=a=b, owner=alice$/m);
      assert.match(baseText, /^source sandbox:\s+sb-1$/m);
      assert.match(baseText, /^children:\s+1$/m);
      assert.match(baseText, /^integrity:\s+msb-sparse-sha256-v1 sha256:[0-9a-f]{64} \(not checked/m);
      // a unique 12-digit prefix and a path work as references too
      assert.deepEqual(json(await runCli(["--home", home, "--json", "inspect", base.digest.slice(7, 19)]), "inspect by prefix"), base);
      assert.deepEqual(json(await runCli(["--home", home, "--json", "inspect", "./home/snapshots/base"], { cwd: root }), "inspect by path"), base);

      // --dest-dir creates elsewhere and indexes that directory
      const outside = json(
        await runCli(["--home", home, "--json", "create", "outside", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--dest-dir", "extra"], { cwd: root }),
        "create --dest-dir",
      );
      assert.equal(outside.path, join(root, "extra", "outside"));
      assert.deepEqual(json(await runCli(["--home", home, "--json", "ls"]), "ls with --dest-dir").map((s: { name: string }) => s.name), ["base", "child", "outside"]);

      fails(await runCli(["--home", home, "inspect", "nope"]), "inspect a missing snapshot");
      assert.match(fails(await runCli(["--home", home, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]), "create twice"), /already exists/);
      ok(await runCli(["--home", home, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--force"]), "create --force");
      assert.match(usage(await runCli(["--home", home, "create", ".hidden", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]), "bad name", "create"), /not allowed/);
      assert.match(fails(await runCli(["--home", home, "create", "x", "--upper", join(root, "absent"), "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]), "missing upper"), /absent/);
    } finally {
      cleanup();
    }
  });

  test("verify and inspect --verify; a corrupted upper fails with both digests", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const home = join(root, "home");
      const base = await create(home, "base", upper);
      const recorded = JSON.parse(readFileSync(join(base.path, "manifest.json"), "utf8")).upper.integrity.digest as string;

      assert.match(ok(await runCli(["--home", home, "verify", "base"]), "verify").stdout, new RegExp(`^verified base ${base.digest}: upper matches msb-sparse-sha256-v1 ${recorded}\\n$`));
      const v = json(await runCli(["--home", home, "--json", "verify", "base"]), "verify --json");
      assert.deepEqual(v, { ...base, integrity: { status: "verified", algorithm: "msb-sparse-sha256-v1", digest: recorded } });
      assert.deepEqual(json(await runCli(["--home", home, "--json", "inspect", "--verify", "base"]), "inspect --verify --json"), v);
      assert.match(ok(await runCli(["--home", home, "inspect", "base", "--verify"]), "inspect --verify").stdout, new RegExp(`^integrity:\\s+verified \\(msb-sparse-sha256-v1 ${recorded}\\)$`, "m"));

      // no integrity recorded: nothing to check, exit 0
      await runCli(["--home", home, "create", "plain", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]);
      assert.deepEqual(json(await runCli(["--home", home, "--json", "verify", "plain"]), "verify plain").integrity, { status: "not-recorded", algorithm: null, digest: null });
      assert.match(ok(await runCli(["--home", home, "verify", "plain"]), "verify plain text").stdout, /no integrity recorded/);

      // flip a byte of the installed upper (same size): verify must fail
      const installed = join(base.path, "upper.ext4");
      writeSparseFile(installed, UPPER_SIZE, [[0, "jello"], [1 << 20, noise(256 << 10)]]);
      const line = fails(await runCli(["--home", home, "verify", "base"]), "verify corrupted");
      assert.ok(line.includes(installed), `names the upper: ${line}`);
      assert.ok(line.includes(recorded), `names the recorded digest: ${line}`);
      const digests = line.match(/sha256:[0-9a-f]{64}/g) ?? [];
      assert.equal(new Set(digests).size, 2, `names both digests: ${line}`);
      const failed = await runCli(["--home", home, "--json", "verify", "base"]);
      fails({ ...failed, stdout: "" }, "verify --json corrupted");
      assert.equal(JSON.parse(failed.stdout).error.code, "snapshot-integrity", "verify --json corrupted: the error as JSON on stdout");
      fails(await runCli(["--home", home, "inspect", "base", "--verify"]), "inspect --verify corrupted");
      // plain inspect does not read the upper
      ok(await runCli(["--home", home, "inspect", "base"]), "inspect corrupted without --verify");
    } finally {
      cleanup();
    }
  });

  test("rm is refused for a parent, forced with --force", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const home = join(root, "home");
      const base = await create(home, "base", upper);
      const child = await create(home, "child", upper, ["--parent", base.digest]);
      const refused = fails(await runCli(["--home", home, "rm", "base"]), "rm a parent");
      assert.ok(refused.includes(child.path), `names the child: ${refused}`);
      assert.equal(json(await runCli(["--home", home, "--json", "ls"]), "ls after refusal").length, 2);
      assert.match(ok(await runCli(["--home", home, "rm", "base", "--force"]), "rm --force").stdout, new RegExp(`^removed base ${base.digest} from ${base.path}\\n$`));
      assert.ok(!existsSync(base.path));
      assert.deepEqual(json(await runCli(["--home", home, "--json", "rm", child.digest]), "rm --json by digest"), child);
      assert.deepEqual(json(await runCli(["--home", home, "--json", "ls"]), "ls after rm"), []);
      fails(await runCli(["--home", home, "rm", "base"]), "rm a missing snapshot");
    } finally {
      cleanup();
    }
  });

  test("reindex DIR adds a root; malformed artifacts are warnings", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const homeA = join(root, "a");
      const homeB = join(root, "b");
      const snap = await create(homeA, "snap", upper);
      // a relative DIR resolves against the working directory
      const indexed = json(await runCli(["--home", homeB, "--json", "reindex", "a/snapshots"], { cwd: root }), "reindex DIR --json");
      assert.deepEqual(indexed, [snap]);
      assert.deepEqual(json(await runCli(["--home", homeB, "--json", "ls"]), "ls after reindex").map(withoutDiskUse), [snap]);
      assert.match(ok(await runCli(["--home", homeB, "reindex"]), "reindex").stdout, /^indexed 1 snapshot\n/);
      assert.deepEqual(withoutDiskUse(json(await runCli(["--home", homeB, "--json", "inspect", snap.digest]), "resolve by digest in the new root")), snap);

      // a directory with a broken manifest: ls still succeeds, with a warning line
      mkdirSync(join(homeA, "snapshots", "broken"));
      writeFileSync(join(homeA, "snapshots", "broken", "manifest.json"), "{}");
      const r = await runCli(["--home", homeB, "--json", "ls"]);
      assert.equal(r.code, 0);
      assert.deepEqual(JSON.parse(r.stdout).map(withoutDiskUse), [snap]);
      const warnings = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0]!, /^warning: .*broken/);
      const t = await runCli(["--home", homeB, "ls"]);
      assert.equal(t.code, 0);
      assert.match(t.stderr, /^warning: .*broken/);
      assert.match(t.stdout, /^NAME/);
    } finally {
      cleanup();
    }
  });

  test("save to a file, load into a second home, verify; --name; already exists; --with-parents; --plain-tar", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const homeA = join(root, "a");
      const homeB = join(root, "b");
      const base = await create(homeA, "base", upper, ["--label", "k=v"]);
      const out = join(root, "base.tar.zst");
      const saved = json(await runCli(["--home", homeA, "--json", "save", "base", out]), "save --json");
      assert.deepEqual(saved, { path: out, snapshots: [base.digest], cache_files: [], bytes: statSync(out).size, verified: true });
      assert.deepEqual([...readFileSync(out).subarray(0, 4)], ZSTD_MAGIC);
      assert.ok(saved.bytes < UPPER_SIZE / 4, `sparse and compressed: ${saved.bytes} bytes`);
      assert.match(ok(await runCli(["--home", homeA, "save", "base", "again.tar.zst"], { cwd: root }), "save").stdout, new RegExp(`^saved 1 snapshot to ${root}/again\\.tar\\.zst \\(\\d`));

      const head = json(await runCli(["--home", homeB, "--json", "load", out]), "load --json");
      assert.equal(head.digest, base.digest);
      assert.deepEqual(head.labels, { k: "v" });
      assert.equal(head.path, join(homeB, "snapshots", head.name));
      assert.equal(json(await runCli(["--home", homeB, "--json", "verify", head.name]), "verify loaded").integrity.status, "verified");
      assert.equal(readFileSync(join(head.path, "upper.ext4")).compare(readFileSync(upper)), 0, "the upper arrives intact");

      assert.match(ok(await runCli(["--home", homeB, "load", out]), "load again").stdout, /^already installed: .*nothing loaded/);
      const named = ok(await runCli(["--home", homeB, "load", "base.tar.zst", "--name", "copy"], { cwd: root }), "load --name");
      assert.match(named.stdout, new RegExp(`^loaded copy ${base.digest} into ${homeB}/snapshots/copy\\n$`));
      assert.match(usage(await runCli(["--home", homeB, "load", out, "--name", "../evil"]), "load --name with a slash", "load"), /not allowed/);
      const dest = json(await runCli(["--home", homeB, "--json", "load", out, "--dest", join(root, "elsewhere"), "--name", "third"]), "load --dest");
      assert.equal(dest.path.startsWith(join(root, "elsewhere") + "/"), true);
      assert.equal(json(await runCli(["--home", homeB, "--json", "ls"]), "ls after loads").length, 3);

      // --with-parents ships the chain, oldest first
      const child = await create(homeA, "child", upper, ["--parent", base.digest]);
      const chain = join(root, "chain.tar");
      const savedChain = json(await runCli(["--home", homeA, "--json", "save", "child", chain, "--with-parents", "--plain-tar", "--dense"]), "save --with-parents --plain-tar");
      assert.deepEqual(savedChain.snapshots, [base.digest, child.digest]);
      assert.equal(new TextDecoder().decode(readFileSync(chain).subarray(257, 262)), "ustar", "a plain tar");
      const homeC = join(root, "c");
      const chainHead = json(await runCli(["--home", homeC, "--json", "load", chain]), "load chain");
      assert.equal(chainHead.digest, child.digest);
      assert.deepEqual(json(await runCli(["--home", homeC, "--json", "ls"]), "ls chain").map((s: { digest: string }) => s.digest).sort(), [base.digest, child.digest].sort());
      // without the parent in the home, --with-parents fails and names it
      const homeD = join(root, "d");
      // (create --parent needs an existing parent: make one, then force it away)
      const gone = await create(homeD, "gone", upper);
      const orphan = await create(homeD, "orphan", upper, ["--parent", "gone"]);
      ok(await runCli(["--home", homeD, "rm", "gone", "--force"]), "rm the parent");
      const missing = fails(await runCli(["--home", homeD, "save", "orphan", join(root, "orphan.tar.zst"), "--with-parents"]), "save with a missing parent");
      assert.ok(missing.includes(gone.digest) && missing.includes(orphan.path), missing);
      assert.equal(existsSync(join(root, "orphan.tar.zst")), false, "no archive from a failed save");
      assert.equal(readdirSync(root).some((n) => n.includes(".partial")), false, "no partial archives left behind");
    } finally {
      cleanup();
    }
  });

  test("the pipe: save x - | load - into another home", async () => {
    const { root, upper, cleanup } = scratch();
    try {
      const homeA = join(root, "a");
      const homeB = join(root, "b");
      const base = await create(homeA, "base", upper);
      const [save, load] = await pipeCli(["--home", homeA, "save", "base", "-"], ["--home", homeB, "--json", "load", "-"]);
      ok(save, "save -");
      const head = json(load, "load -");
      assert.equal(head.digest, base.digest);
      assert.equal(json(await runCli(["--home", homeB, "--json", "verify", head.name]), "verify piped").integrity.status, "verified");

      // `save … -` with --json: stdout carries the archive and nothing else
      const raw = await runCli(["--home", homeA, "--json", "save", "base", "-", "--with-parents"]);
      ok(raw, "save - --json");
      assert.deepEqual([...raw.stdoutBytes.subarray(0, 4)], ZSTD_MAGIC);
      assert.equal(raw.stdoutBytes.length, statSync(json(await runCli(["--home", homeA, "--json", "save", "base", join(root, "f.tar.zst")]), "save file").path).size);
      const homeC = join(root, "c");
      const viaInput = json(await runCli(["--home", homeC, "--json", "load", "-", "--name", "from-stdin"], { input: raw.stdoutBytes }), "load - from bytes");
      assert.equal(viaInput.name, "from-stdin");
      assert.equal(viaInput.digest, base.digest);
    } finally {
      cleanup();
    }
  });

  test("load of garbage fails with one error line, no stack trace, nothing left behind", async () => {
    const { root, cleanup } = scratch();
    try {
      const home = join(root, "home");
      const garbage = join(root, "garbage.tar.zst");
      writeFileSync(garbage, noise(64 << 10, 99));
      const line = fails(await runCli(["--home", home, "load", garbage]), "load garbage");
      assert.ok(line.includes(garbage), `names the archive: ${line}`);
      fails(await runCli(["--home", home, "load", "-"], { input: noise(64 << 10, 5) }), "load garbage from stdin");
      // a truncated zstd archive
      fails(await runCli(["--home", home, "load", "-"], { input: new Uint8Array([...ZSTD_MAGIC, 1, 2, 3]) }), "load truncated zstd");
      fails(await runCli(["--home", home, "load", join(root, "absent.tar.zst")]), "load a missing file");
      const left = existsSync(join(home, "snapshots")) ? readdirSync(join(home, "snapshots")).filter((n) => n !== ".snapbundle-index.json") : [];
      assert.deepEqual(left, [], "no staging directories or snapshots left");
      assert.deepEqual(json(await runCli(["--home", home, "--json", "ls"]), "ls after failed loads"), []);
    } finally {
      cleanup();
    }
  });
});
