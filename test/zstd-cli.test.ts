/**
 * The CLI's zstd options: `save --level N` (checked with `zstd -lv`) and
 * `load --max-window SIZE` against archives the zstd CLI wrote with long
 * windows.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { noise } from "./helpers/bytes.js";
import { type CliResult, RUNTIME, runCli, writeSparseFile } from "./helpers/cli-run.js";

const IMAGE_REF = "docker.io/library/python:3.12";
const IMAGE_DIGEST = "sha256:" + "b".repeat(64);

function succeeded(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit status (stderr: ${r.stderr})`);
  return r;
}

/** Run the zstd CLI with a file as stdin (so the frame states the whole window) into `out`. */
function zstdPipe(input: string, out: string, args: string[]): void {
  execFileSync("sh", ["-c", 'zstd -q -c "$@" < "$SB_IN" > "$SB_OUT"', "zstd", ...args], {
    env: { ...process.env, SB_IN: input, SB_OUT: out },
  });
}

/** A scratch directory with a home `a` holding snapshot `base`; removed afterwards. */
async function withSnapshot(fn: (root: string, homeA: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "snapbundle-zstd-cli-"));
  try {
    const upper = join(root, "upper.ext4");
    writeSparseFile(upper, 4 << 20, [[0, "hello"], [1 << 20, noise(128 << 10)]]);
    const homeA = join(root, "a");
    succeeded(await runCli(["--home", homeA, "create", "base", "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST]), "create");
    await fn(root, homeA);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe(`zstd options of the CLI on ${RUNTIME}`, () => {
  test("save --level 19 writes one frame with Check: XXH64; levels outside 1..19 are usage errors", () => withSnapshot(async (root, homeA) => {
    const out = join(root, "l19.tar.zst");
    succeeded(await runCli(["--home", homeA, "save", "base", out, "--level", "19"]), "save --level 19");
    const listed = execFileSync("zstd", ["-lv", out]).toString();
    assert.match(listed, /# Zstandard Frames: 1\n/);
    assert.match(listed, /Check: XXH64/);
    for (const bad of ["0", "20", "x", "-3"]) {
      const r = await runCli(["--home", homeA, "save", "base", join(root, "bad.tar.zst"), `--level=${bad}`]);
      assert.equal(r.code, 2, `--level ${bad}: exit status (stderr: ${r.stderr})`);
      assert.match(r.stderr, /--level .*: must be a whole number from 1 to 19/);
    }
  }));

  test("load --max-window: a zstd --long=30 archive needs 1G, a --long=31 archive 2G; above 2G is a usage error", () => withSnapshot(async (root, homeA) => {
    const plain = join(root, "plain.tar");
    succeeded(await runCli(["--home", homeA, "save", "base", plain, "--plain-tar"]), "save --plain-tar");
    const long30 = join(root, "long30.tar.zst");
    const long31 = join(root, "long31.tar.zst");
    zstdPipe(plain, long30, ["-1", "--long=30"]);
    zstdPipe(plain, long31, ["-1", "--long=31"]);
    assert.match(execFileSync("zstd", ["-lv", long30]).toString(), /Window Size: 1(\.0+)? GiB/);

    const homeB = join(root, "b");
    const refused = await runCli(["--home", homeB, "load", long30]);
    assert.equal(refused.code, 1, `stderr: ${refused.stderr}`);
    assert.match(refused.stderr, /zstd frame at byte 0 needs a 1 GiB window, more than the 128 MiB allowed; raise maxWindowBytes \(snapbundle load --max-window\) to at least 1 GiB/);
    succeeded(await runCli(["--home", homeB, "load", long30, "--max-window", "1G"]), "load --max-window 1G");

    const homeC = join(root, "c");
    const r31 = await runCli(["--home", homeC, "load", long31, "--max-window", "1024M"]);
    assert.equal(r31.code, 1, `stderr: ${r31.stderr}`);
    assert.match(r31.stderr, /needs a 2 GiB window, more than the 1 GiB allowed; raise maxWindowBytes \(snapbundle load --max-window\) to at least 2 GiB/);
    const r3g = await runCli(["--home", homeC, "load", long31, "--max-window", "3G"]);
    assert.equal(r3g.code, 2, `stderr: ${r3g.stderr}`);
    assert.match(r3g.stderr, /--max-window 3G: must be a size from 1K to 2G/);
    succeeded(await runCli(["--home", homeC, "load", long31, "--max-window", "2G", "--name", "long31"]), "load --max-window 2G");
    succeeded(await runCli(["--home", homeC, "verify", "long31"]), "verify the snapshot loaded through a 2 GiB window");
  }));
});
