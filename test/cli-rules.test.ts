/** Rules of the CLI's output (src/cli/run.ts, src/cli/commands.ts). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli as runCliInProcess } from "../src/cli/run.js";
import { nodeFs } from "../src/fs/node.js";
import { runCli } from "./helpers/cli-run.js";
import { writeSparse } from "./helpers/homes.js";
import { buildImage } from "./helpers/image.js";
import { noise } from "./helpers/bytes.js";
import { writeSparseFile } from "./helpers/cli-run.js";

/** Run the CLI in this process with stderr pretending to be a terminal; resolve what was written to the real stderr stream. */
async function stderrDrawnBy(args: string[], stderrIsTTY: boolean): Promise<string> {
  const stderr = process.stderr as unknown as { isTTY?: boolean; write: (...a: unknown[]) => boolean };
  const saved = { isTTY: stderr.isTTY, write: stderr.write };
  let drawn = "";
  stderr.isTTY = true; // so the bar library itself would draw: only our rule keeps it quiet
  stderr.write = (chunk: unknown, ...rest: unknown[]) => {
    drawn += String(chunk);
    const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
    cb?.();
    return true;
  };
  try {
    const out: string[] = [];
    const code = await runCliInProcess(args, { env: {}, cwd: "/", userHome: "/", stderrIsTTY, out: (t) => out.push(t), err: (t) => out.push(t) });
    assert.equal(code, 0, out.join(""));
  } finally {
    stderr.isTTY = saved.isTTY;
    stderr.write = saved.write;
  }
  return drawn;
}

describe("CLI output rules", () => {
  test("rule: no progress is drawn when stderr is not a terminal", { timeout: 120_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-cli-rules-"));
    try {
      const home = join(root, "home");
      writeSparseFile(join(root, "u"), 4 << 20, [[0, noise(1 << 20)]]);
      const args = ["--home", home, "create", "v", "--upper", join(root, "u"), "--image", "docker.io/library/python:3.12", "--image-digest", "sha256:" + "a".repeat(64), "--integrity"];
      assert.equal(await stderrDrawnBy(args, false), "", "create with stderr not a terminal draws nothing");
      assert.equal(await stderrDrawnBy(["--home", home, "verify", "v"], false), "", "verify with stderr not a terminal draws nothing");
      // the same command with stderr a terminal does draw: the check above can see a bar
      assert.match(await stderrDrawnBy(["--home", home, "verify", "v"], true), /verify/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("rule: save --json carries cache_files, the image cache files in the archive", { timeout: 120_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "snapbundle-cli-rules-"));
    try {
      const home = join(root, "home");
      const img = await buildImage(nodeFs(), home, "python:3.12", 2);
      await writeSparse(nodeFs(), join(root, "u"), 1 << 20, [[0, "hello"]]);
      const created = await runCli(["--home", home, "--json", "create", "v", "--upper", join(root, "u"), "--image", img.ref, "--image-digest", img.manifest_digest]);
      assert.equal(created.code, 0, created.stderr);
      const out = join(root, "v.tar.zst");
      const r = await runCli(["--home", home, "--json", "save", "v", out, "--with-image"]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(doc).sort(), ["bytes", "cache_files", "path", "snapshots", "verified"]);
      assert.deepEqual(doc.cache_files, img.files);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
