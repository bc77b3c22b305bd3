// Mutation testing (opt-in, not in CI): `npm run mutate`.
// Stryker instruments the TypeScript sources once (mutation switching, with
// type checks disabled in mutated files), builds the sandbox with our own tsc
// build, then runs the compiled node:test files once per mutant with the
// `command` runner. Narrow a run with `--mutate` and the test files with
// SNAPBUNDLE_MUTATE_TESTS, e.g.
//   SNAPBUNDLE_MUTATE_TESTS="dist/test/json.test.js" npm run mutate -- --mutate src/json.ts
const tests = process.env.SNAPBUNDLE_MUTATE_TESTS ??
  [
    "json", "manifest", "promote", "journal", "cache-install", "store-rules", "tar-rules", "durability",
    "grammar", "load-hostile", "roundtrip", "snapshot-store", "tar", "crash", "faults",
  ].map((t) => `dist/test/${t}.test.js`).join(" ");

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "command",
  commandRunner: { command: `node --test --test-concurrency=1 ${tests}` },
  buildCommand: "npx tsc -p tsconfig.json",
  mutate: ["src/archive/**/*.ts", "src/tar/**/*.ts", "src/manifest.ts", "src/json.ts", "src/snapshot.ts", "src/store.ts"],
  ignorePatterns: ["dist", ".plant", "reports", ".stryker-tmp", "bench/out"],
  coverageAnalysis: "off",
  concurrency: 1,
  timeoutMS: 120000,
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
};
