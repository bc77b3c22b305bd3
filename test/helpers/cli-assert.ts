/**
 * Assertions on one CLI run (see `cli-run.ts`), and a scratch home with a
 * snapshot in it, for the CLI test files.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noise } from "./bytes.js";
import { type CliResult, runCli, writeSparseFile } from "./cli-run.js";

export const IMAGE_REF = "docker.io/library/python:3.12";
export const IMAGE_DIGEST = "sha256:" + "a".repeat(64);

/** What a run must have done: its exit status, and whether stderr may carry text. */
export function expectRun(r: CliResult, what: string, code: number, options: { quietStderr?: boolean } = {}): CliResult {
  assert.equal(r.code, code, `${what}: exit status (stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)})`);
  if (options.quietStderr ?? code === 0) assert.equal(r.stderr, "", `${what}: stderr must be empty`);
  assert.doesNotMatch(r.stderr, /\n\s+at |file:\/\//, `${what}: no stack trace`);
  return r;
}

/** The `error: …` line of a failed run (exit 1, or 2 for bad usage with its usage and hint lines). */
export function errorLine(r: CliResult, what: string, code: 1 | 2): string {
  expectRun(r, what, code, { quietStderr: false });
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, code === 2 ? 3 : 1, `${what}: stderr lines ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^error: /, what);
  if (code === 2) assert.match(lines[1]!, /^usage: snapbundle /, what);
  return lines[0]!;
}

/** The single JSON document on stdout. */
// deno-lint-ignore no-explicit-any
export function stdoutJson(r: CliResult, what: string): any {
  assert.ok(r.stdout.endsWith("}\n") || r.stdout.endsWith("]\n"), `${what}: one JSON document, got ${JSON.stringify(r.stdout)}`);
  const doc = JSON.parse(r.stdout);
  assert.equal(r.stdout, JSON.stringify(doc, null, 2) + "\n", `${what}: exactly one JSON document`);
  return doc;
}

/** A scratch directory with a sparse 4 MiB upper; `cleanup` removes it. */
export function scratchDir(prefix: string): { root: string; home: string; upper: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const upper = join(root, "upper.ext4");
  writeSparseFile(upper, 4 << 20, [[0, "hello"], [1 << 20, noise(64 << 10)]]);
  return { root, home: join(root, "home"), upper, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** `create NAME` in `home` with integrity (and `extra` options); resolves its JSON. */
// deno-lint-ignore no-explicit-any
export async function createSnapshot(home: string, name: string, upper: string, extra: readonly string[] = []): Promise<any> {
  const r = await runCli(["--home", home, "--json", "create", name, "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--integrity", ...extra]);
  return stdoutJson(expectRun(r, `create ${name}`, 0), `create ${name}`);
}
