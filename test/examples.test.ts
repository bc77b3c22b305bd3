/**
 * Every `@example` block in src/ and wasm/ type-checks against the code it
 * documents (scripts/check-examples.mjs: each block compiled as a module
 * importing what it uses; unknown names other than the context an example is
 * written in are errors). The checker runs the TypeScript compiler, the same
 * on every runtime, so it runs once, on Node.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const onNode = (globalThis as { Deno?: unknown }).Deno === undefined && typeof process.versions.bun !== "string";

test("rule: every @example in src/ and wasm/ type-checks against the code it documents", { timeout: 300_000, skip: onNode ? false : "the TypeScript compiler is the same everywhere: checked on Node" }, async () => {
  const checker = (await import(pathToFileURL(join(repo, "scripts", "check-examples.mjs")).href)) as {
    checkExamples(root: string): { examples: number; errors: string[] };
  };
  const { examples, errors } = checker.checkExamples(repo);
  assert.ok(examples >= 200, `found only ${examples} @example blocks: the extractor lost some`);
  assert.deepEqual(errors, [], `${errors.length} @example blocks do not type-check:\n${errors.join("\n")}`);
});

test("rule: the checker catches an example that calls a function that does not exist, or calls one wrongly", { timeout: 300_000, skip: onNode ? false : "checked on Node" }, async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync, symlinkSync } = await import("node:fs");
  const checker = (await import(pathToFileURL(join(repo, "scripts", "check-examples.mjs")).href)) as {
    checkExamples(root: string): { examples: number; errors: string[] };
  };
  const root = mkdtempSync(join(repo, "dist", ".examples-probe-"));
  try {
    mkdirSync(join(root, "src"));
    mkdirSync(join(root, "wasm"));
    copyFileSync(join(repo, "tsconfig.json"), join(root, "tsconfig.json"));
    symlinkSync(join(repo, "node_modules"), join(root, "node_modules"));
    writeFileSync(
      join(root, "src", "mod.ts"),
      [
        "/**",
        " * @example",
        " * ```ts",
        " * double(2); // 4",
        " * ```",
        " */",
        "export function double(n: number): number {",
        "  return 2 * n;",
        "}",
        "/**",
        " * @example",
        " * ```ts",
        " * triple(2);",
        " * double(\"2\");",
        " * ```",
        " */",
        "export const one = 1;",
        "",
      ].join("\n"),
    );
    const { examples, errors } = checker.checkExamples(root);
    assert.equal(examples, 2);
    assert.equal(errors.length, 2, errors.join("\n"));
    assert.match(errors[0]!, /^src\/mod\.ts:13 \(@example\): Cannot find name 'triple'/);
    assert.match(errors[1]!, /^src\/mod\.ts:14 \(@example\): Argument of type 'string'/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
