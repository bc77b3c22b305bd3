/**
 * The rule for a child without its parent (issue 23): a bundle saved without
 * `--with-parents` whose parent the target home lacks. msb 0.6.18 installs a
 * 0.6 (snapshot-layout) child as it is, saying nothing, and refuses a
 * manifest-layout one (`legacy_parent_missing`: it must translate the child
 * forward, which needs the parent); snapbundle installs both (it translates
 * nothing) and says in one line that the parent is missing and what to load;
 * `verify BUNDLE` says the same. With the parent in the home, nothing is said.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadNotice } from "../src/archive/load.js";
import { nodeFs } from "../src/fs/node.js";
import { SnapshotStore } from "../src/store.js";
import { expectRun, stdoutJson } from "./helpers/cli-assert.js";
import { runCli } from "./helpers/cli-run.js";
import { IMAGE } from "./helpers/homes.js";

const T = { timeout: 60_000 };
const MSB = join(process.cwd(), "node_modules", "@superradcompany", "microsandbox-linux-x64-gnu", "bin", "msb");

for (const layout of ["snapshot", "manifest"] as const) {
  describe(`a ${layout}-layout child saved without its parent`, () => {
    test("rule: load installs it and says, once, that its parent is missing and what to load; verify BUNDLE says the same; with the parent there, nothing is said", T, async () => {
      const root = mkdtempSync(join(tmpdir(), "snapbundle-orphan-"));
      try {
        const fs = nodeFs();
        const src = new SnapshotStore(fs, join(root, "src"));
        writeFileSync(join(root, "u"), new Uint8Array(8192).fill(1));
        const p = await src.create("p", { upper: join(root, "u"), image: IMAGE, form: layout });
        const c = await src.create("c", { upper: join(root, "u"), image: IMAGE, parent: p.digest, form: layout });
        const child = join(root, "c.tar");
        const parent = join(root, "p.tar");
        await src.save("c", child, { plainTar: true, layout });
        await src.save("p", parent, { plainTar: true, layout });

        // the library: one notice, naming the child, its parent, and what to load
        const notices: LoadNotice[] = [];
        const loaded = await new SnapshotStore(fs, join(root, "a")).load(child, { onNotice: (n) => notices.push(n) });
        assert.equal(loaded.digest, c.digest);
        assert.deepEqual(notices.map((n) => [n.code, n.path]), [["parent-missing", loaded.path]]);
        assert.ok(notices[0]!.message.includes(p.digest) && notices[0]!.message.includes("--with-parents"), notices[0]!.message);

        // parent first: nothing to say
        const b = new SnapshotStore(fs, join(root, "b"));
        await b.load(parent);
        const none: LoadNotice[] = [];
        await b.load(child, { onNotice: (n) => none.push(n) });
        assert.deepEqual(none, []);

        // the CLI: one warning line; --json notices; verify BUNDLE the same
        const cli = expectRun(await runCli(["--home", join(root, "c"), "load", child]), "load", 0, { quietStderr: false });
        const lines = cli.stderr.split("\n").filter((l) => l !== "");
        assert.equal(lines.length, 1, cli.stderr);
        assert.match(lines[0]!, new RegExp(`^warning: snapshot .* \\(${c.digest}\\) needs its parent ${p.digest}, which is not in this home: load a bundle that carries the parent`));
        const verify = expectRun(await runCli(["verify", child]), "verify BUNDLE", 0, { quietStderr: false });
        assert.match(verify.stderr, new RegExp(`^warning: snapshot .* \\(${c.digest}\\) needs its parent ${p.digest}, which the bundle does not carry: load a bundle that carries the parent .*\\n$`));
        const doc = stdoutJson(expectRun(await runCli(["--json", "verify", child]), "verify --json", 0), "verify --json");
        assert.deepEqual(doc.notices.map((n: LoadNotice) => n.code), ["parent-missing"]);
        expectRun(await runCli(["verify", parent]), "verify of the parent's bundle: nothing to say", 0);

        // the witness: what msb 0.6.18 does with the same bundle in an empty home
        if (!existsSync(MSB)) {
          console.log(`msb is not installed (${MSB}): the witness part is skipped`);
          return;
        }
        const msbHome = join(root, "msb");
        execFileSync("mkdir", ["-p", msbHome]);
        const r = spawnSync(MSB, ["snapshot", "load", child], { env: { ...process.env, MSB_HOME: msbHome }, encoding: "utf8" });
        if (layout === "snapshot") assert.equal(r.status, 0, `msb loads a 0.6 orphan: ${r.stderr}`);
        else {
          assert.notEqual(r.status, 0, "msb refuses a manifest-layout orphan");
          assert.match(r.stderr, /legacy_parent_missing/);
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
}
