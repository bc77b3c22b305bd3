/**
 * The npm tarball (issue 14): `npm pack`, then check what it carries and use
 * it the way an installer would — extracted into a fresh project's
 * node_modules (the registry is not reachable here, so its dependencies are
 * linked from this repository's node_modules), imported by name and its CLI
 * run, on the runtime running this test.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { childEnv, PACKAGE_VERSION, RUNTIME } from "./helpers/cli-run.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
let work = "";
let pkgDir = "";
let files: string[] = [];

function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? listFiles(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]
  );
}

/** How to run a script file on this runtime. */
function runtimeArgs(script: string): [string, string[]] {
  if (RUNTIME === "deno") return [process.execPath, ["run", "-A", "--no-lock", script]];
  return [process.execPath, [script]];
}

describe(`the npm package on ${RUNTIME}`, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), "snapbundle-pack-"));
    // --ignore-scripts: dist/ is already built; packing must not rebuild it under a test
    const out = execFileSync("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", work], { cwd: repo, encoding: "utf8", env: childEnv() });
    const tgz = join(work, out.trim().split("\n").pop()!);
    const project = join(work, "project");
    pkgDir = join(project, "node_modules", "snapbundle");
    mkdirSync(pkgDir, { recursive: true });
    execFileSync("tar", ["-xzf", tgz, "-C", pkgDir, "--strip-components=1"]);
    files = listFiles(pkgDir);
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) symlinkSync(join(repo, "node_modules", dep), join(project, "node_modules", dep));
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", type: "module", dependencies: { snapbundle: PACKAGE_VERSION } }));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test("carries LICENSE (the Apache-2.0 text package.json names), the README, and no source maps", () => {
    assert.ok(files.includes("LICENSE"), "LICENSE is shipped");
    const license = readFileSync(join(pkgDir, "LICENSE"), "utf8");
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
    assert.equal(JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).license, "Apache-2.0");
    assert.ok(files.includes("README.md"));
    const maps = files.filter((f) => f.endsWith(".map"));
    assert.deepEqual(maps, [], "no source maps (their sources are not shipped)");
    for (const f of files.filter((f) => f.endsWith(".js"))) {
      assert.doesNotMatch(readFileSync(join(pkgDir, f), "utf8"), /sourceMappingURL/, `${f} points at no map`);
    }
    assert.ok(!files.some((f) => f.startsWith("dist/test/") || f.startsWith("dist/bench/")), "no tests or benchmarks");
  });

  test("ships the user's docs (formats, compatibility, security, testing) and no lab notes", () => {
    for (const doc of ["format", "compatibility", "security", "testing"]) assert.ok(files.includes(`docs/${doc}.md`), `docs/${doc}.md is shipped`);
    assert.ok(!files.includes("docs/benchmarks-log.md"), "the dated benchmark log stays in the repository");
    assert.ok(!files.includes("BENCHMARKS.md"));
    assert.deepEqual(files.filter((f) => f.endsWith(".md") && f !== "README.md" && !f.startsWith("docs/")), [], "no other notes");
  });

  test("every relative link in the shipped README and docs resolves inside the package", () => {
    const docs = ["README.md", ...files.filter((f) => f.startsWith("docs/") && f.endsWith(".md"))];
    for (const doc of docs) {
      const text = readFileSync(join(pkgDir, doc), "utf8");
      const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:|^#/.test(l));
      for (const link of links) {
        assert.ok(existsSync(join(pkgDir, dirname(doc), link.split("#")[0]!)), `${doc} links ${link}, which the package does not carry`);
      }
    }
  });

  /** npm and sh do what these check, the same whichever runtime runs this suite: checked once, on Node. */
  const NPM_ONLY = { skip: RUNTIME === "node" ? false : "npm and sh do this whatever runs the suite: checked on Node" };

  test("installing it runs no script: no install hooks, and npm does not run prepare for a tarball", NPM_ONLY, () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    for (const hook of ["preinstall", "install", "postinstall"]) assert.equal(pkg.scripts?.[hook], undefined, `no ${hook} script`);
    // Install a copy of the tarball with its own scripts but no dependencies (the registry is
    // offline): if npm ran `prepare`, its build would fail here (the package has no sources).
    const probe = join(work, "probe");
    const probePkg = join(work, "probe-pkg");
    mkdirSync(probe);
    execFileSync("cp", ["-r", pkgDir, probePkg]);
    const marker = join(work, "prepare-ran");
    writeFileSync(join(probePkg, "package.json"), JSON.stringify({ ...pkg, dependencies: {}, peerDependencies: {}, scripts: { ...pkg.scripts, prepare: `touch '${marker}' && ${pkg.scripts?.prepare ?? "true"}` } }));
    execFileSync("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", probe], { cwd: probePkg, env: childEnv() });
    writeFileSync(join(probe, "package.json"), JSON.stringify({ name: "probe", version: "1.0.0" }));
    const tgz = readdirSync(probe).find((f) => f.endsWith(".tgz"))!;
    const r = spawnSync("npm", ["install", "--offline", "--no-audit", "--no-fund", `./${tgz}`], { cwd: probe, encoding: "utf8", env: childEnv() });
    assert.equal(r.status, 0, `npm install of the tarball: ${r.stderr}`);
    assert.equal(existsSync(marker), false, "prepare did not run");
    assert.ok(existsSync(join(probe, "node_modules", "snapbundle", "dist", "src", "mod.js")));
  });

  test("npm test's scripts: only *.test.js files are test files, and Deno writes no colour codes into a redirect", NPM_ONLY, () => {
    const scripts = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).scripts as Record<string, string>;
    for (const name of ["test:node", "test:deno", "test:bun"]) {
      assert.match(scripts[name]!, / dist\/test\/\*\.test\.js(;|$)/, `${name} names the test files, not the helper modules beside them`);
    }
    // run test:deno's own command line on one small test file, its stdout a pipe
    const dir = mkdtempSync(join(repo, "dist", ".colour-"));
    try {
      writeFileSync(join(dir, "one.test.js"), `import { test } from "node:test";\ntest("passes", () => {});\n`);
      const command = scripts["test:deno"]!.replace("dist/test/*.test.js", `'${join(dir, "one.test.js")}'`);
      const env = childEnv({ NO_COLOR: undefined, PATH: `${join(repo, "node_modules", ".bin")}:${process.env.PATH}` });
      const r = spawnSync("sh", ["-c", command], { cwd: repo, encoding: "utf8", env });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /passes/);
      assert.doesNotMatch(r.stdout + r.stderr, /\x1b\[/, "no ANSI escape codes when redirected");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("snapbundle/core alone reads no file: zstd needs a host that reads .wasm, and the error says how", () => {
    const project = dirname(dirname(pkgDir));
    const script = join(project, "core-only.mjs");
    writeFileSync(
      script,
      `import { SnapshotStore, memFs, installHost, WasmUnavailable } from "snapbundle/core";\n` +
        `import { Volume } from "${join(repo, "node_modules", "memfs", "lib", "index.js")}";\n` +
        `const vol = new Volume(); vol.mkdirSync("/s", { recursive: true }); vol.writeFileSync("/s/u", "hi");\n` +
        `const store = new SnapshotStore(memFs(vol), "/home");\n` +
        `await store.create("t", { upper: "/s/u", image: { ref: "alpine", manifest_digest: "sha256:" + "b".repeat(64) } });\n` +
        `try { await store.save("t", "/t.tar.zst"); console.log("saved without a reader"); }\n` +
        `catch (e) { console.log(JSON.stringify({ typed: e instanceof WasmUnavailable, code: e.code, message: e.message })); }\n` +
        `const { readFile } = await import("node:fs/promises");\n` +
        `installHost({ name: "test", pid: 1, readWasm: async (url) => new Uint8Array(await readFile(url)) });\n` +
        `console.log((await store.save("t", "/t.tar.zst")).snapshots.length);\n`,
    );
    const [cmd, args] = runtimeArgs(script);
    const [first, second] = execFileSync(cmd, args, { cwd: project, encoding: "utf8", env: childEnv() }).trim().split("\n");
    const failed = JSON.parse(first!);
    assert.equal(failed.typed, true, first);
    assert.equal(failed.code, "wasm-unavailable");
    assert.match(failed.message, /zstd\.wasm: no reader of snapbundle's \.wasm files is registered/);
    assert.match(failed.message, /Import "snapbundle"/);
    assert.match(failed.message, /installHost\(\{ name, pid, readWasm/);
    assert.equal(second, "1", "with a reader registered the same save succeeds");
  });

  test("imported by name (a save and load round trip through zstd.wasm and its Worker) and its CLI run from node_modules", () => {
    const project = dirname(dirname(pkgDir));
    const script = join(project, "use.mjs");
    writeFileSync(
      script,
      `import { SnapshotStore, memFs, imageReferenceProblem } from "snapbundle";\n` +
        `import { Volume } from "${join(repo, "node_modules", "memfs", "lib", "index.js")}";\n` +
        `const vol = new Volume(); vol.mkdirSync("/s", { recursive: true }); vol.writeFileSync("/s/u", "hi");\n` +
        `const store = new SnapshotStore(memFs(vol), "/home");\n` +
        `const snap = await store.create("t", { upper: "/s/u", image: { ref: "alpine", manifest_digest: "sha256:" + "b".repeat(64) } });\n` +
        `await store.save("t", "/t.tar.zst");\n` + // zstd.wasm and the compression Worker, from the installed package
        `const other = new SnapshotStore(memFs(vol), "/other");\n` +
        `const head = await other.load("/t.tar.zst");\n` +
        `console.log(snap.digest.length, imageReferenceProblem("alpine:3"), head.digest === snap.digest);\n`,
    );
    const [cmd, args] = runtimeArgs(script);
    assert.equal(execFileSync(cmd, args, { cwd: project, encoding: "utf8", env: childEnv() }), "71 null true\n");
    const [cliCmd, cliArgs] = runtimeArgs(join(pkgDir, "dist", "src", "cli", "main.js"));
    assert.equal(execFileSync(cliCmd, [...cliArgs, "-V"], { cwd: project, encoding: "utf8", env: childEnv() }), `${PACKAGE_VERSION}\n`);
    const help = execFileSync(cliCmd, [...cliArgs, "help"], { cwd: project, encoding: "utf8", env: childEnv() });
    assert.match(help, /^usage: snapbundle /m);
  });
});
