/**
 * The README is the front door: run its quick start and its runnable code
 * blocks, on the runtime running this test, so what it shows keeps working.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const readme = readFileSync(join(repo, "README.md"), "utf8");

/** The fenced block that follows each `<!-- marker -->`. */
function blocks(marker: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<!-- ${marker} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``, "g");
  for (let m = re.exec(readme); m; m = re.exec(readme)) out.push(m[1]!);
  return out;
}

/** How to run a script with the runtime running this test. */
function runtimeCommand(script: string): string[] {
  const g = globalThis as { Deno?: unknown; process: NodeJS.Process };
  if (g.Deno !== undefined) return [process.execPath, "run", "-A", "--no-lock", script];
  return [process.execPath, script];
}

describe("README", () => {
  test("the quick start runs as written (with this runtime's CLI for npx snapbundle)", () => {
    const [quick] = blocks("quickstart");
    assert.ok(quick && quick.includes("npx snapbundle create"), "quick start block not found");
    const cli = runtimeCommand(join(repo, "dist/src/cli/main.js")).map((a) => `'${a}'`).join(" ");
    const script = `set -euo pipefail\nsnapbundle() { ${cli} "$@"; }\n${quick.replace(/npx snapbundle/g, "snapbundle")}\nrm -rf "$work"\n`;
    const r = spawnSync("bash", ["-c", script], { cwd: repo, encoding: "utf8", env: { ...process.env, MSB_HOME: "" } });
    assert.equal(r.status, 0, `quick start failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /verified/);
    const inspect = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf("\n{")));
    assert.equal(inspect.name, "demo");
    assert.deepEqual(inspect.labels, { owner: "alice" });
    assert.equal(inspect.size_bytes, 256 << 20);
  });

  test("the runnable code blocks run and print what their comments say", () => {
    const snippets = blocks("runnable");
    assert.equal(snippets.length, 2);
    const dir = mkdtempSync(join(repo, "dist", ".readme-"));
    // the snippets' temporary directories go to a private TMPDIR, so that other runs cannot blur the count
    const privateTmp = mkdtempSync(join(tmpdir(), "snapbundle-readme-tmp-"));
    try {
      snippets.forEach((code, i) => {
        const file = join(dir, `snippet-${i}.mjs`);
        writeFileSync(file, code);
        const [cmd, ...args] = runtimeCommand(file);
        const out = execFileSync(cmd!, args, { cwd: repo, encoding: "utf8", env: { ...process.env, TMPDIR: privateTmp } });
        if (i === 0) {
          assert.match(out, /^true verified$/m);
          assert.match(out, /^true snapshot .*\/base already exists$/m);
        } else {
          assert.match(out, /^sha256-[0-9a-f]{16}$/m);
        }
      });
      assert.deepEqual(readdirSync(privateTmp), [], "the snippets clean up their temporary directories");
    } finally {
      rmSync(privateTmp, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // npx is npm's (it installs the repository into its cache, running `prepare`, a full build): the same on every runtime, so it runs once, on Node.
  test("npx snapbundle --help works in the repository", { skip: (globalThis as { Deno?: unknown }).Deno !== undefined || typeof process.versions.bun === "string" ? "npm's npx: checked on Node" : false }, () => {
    const out = execFileSync("npx", ["--no-install", "snapbundle", "--help"], { cwd: repo, encoding: "utf8" });
    assert.match(out, /usage: snapbundle/);
  });
});

