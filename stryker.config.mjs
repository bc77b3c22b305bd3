// Mutation testing (opt-in, not in CI): `npm run mutate`.
//
// Stryker instruments the TypeScript sources once (mutation switching, type
// checks off in mutated files), builds the sandbox with our own tsc build, and
// runs the compiled node:test files through its TAP runner, one process per
// test file. Coverage is recorded per test file in the dry run, so each mutant
// runs only the files that reach it, and stops at the first failing file.
// Results are kept in reports/mutation/incremental.json: a re-run re-tests only
// the mutants whose code or covering tests changed.
//
// The test files are the in-process suites that own the rules of the mutated
// modules. Suites that only drive the CLI in child processes, kill processes,
// or race them (cli*, crash, signals, concurrency, leftovers, readme, package)
// are left out: the runner cannot see their coverage, and they take minutes.
//
// Narrow a run with --mutate, and its test files with SNAPBUNDLE_MUTATE_TESTS:
//   SNAPBUNDLE_MUTATE_TESTS="json manifest" npm run mutate -- --mutate src/json.ts
import { mkdirSync } from "node:fs";

// The tests' scratch files go under Stryker's temp directory (ignored by git
// and by the sandbox copy; Stryker cleans it after a successful run), not the
// system /tmp: a test killed on a timeout (a mutant that loops, or writes a
// disk image densely) cannot clean up, and such leftovers in /tmp once grew to
// tens of GB and filled the disk mid-run.
const scratch = new URL("./.stryker-tmp/scratch/", import.meta.url).pathname;
mkdirSync(scratch, { recursive: true });
process.env.TMPDIR = scratch;

const tests = (process.env.SNAPBUNDLE_MUTATE_TESTS ??
  [
    // fast rule suites first: a mutant stops at the first suite that kills it
    "json", "manifest", "grammar", "inventory", "tar-header", "tar-pax", "tar-reader", "tar-writer", "tar-source", "tar-rules", "tar",
    "sniff", "member-hash", "streams", "image-cache", "inspect", "unpack", "load06", "save06", "load",
    "snapshot", "store", "store-rules", "undo", "promote", "journal", "cache-install", "durability", "msb06-artifacts", "roundtrip", "save",
    "load-hostile", "snapshot-store", "msb06-bundles", "bundle-inspect06", "fuzz", "zstd-cli", "interop", "faults",
  ].join(" "))
  .split(/\s+/).filter(Boolean).map((t) => `dist/test/${t}.test.js`);

const wasm = new URL("./dist/wasm/zstd.wasm", import.meta.url).pathname;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "tap",
  tap: { testFiles: tests, nodeArgs: ["-r", "{{hookFile}}", "--test-reporter=tap"], forceBail: true },
  coverageAnalysis: "perTest",
  // The sandbox has no node_modules of its own to build zstd.wasm with, so it
  // takes the one this checkout's `npm run build` made (cached, identical inputs).
  buildCommand: `node scripts/mutate-build.mjs ${wasm}`,
  mutate: ["src/archive/**/*.ts", "src/tar/**/*.ts", "src/manifest.ts", "src/json.ts", "src/snapshot.ts", "src/store.ts"],
  ignorePatterns: ["dist", ".plant", "reports", ".stryker-tmp", "bench/out"],
  incremental: true,
  incrementalFile: "reports/mutation/incremental.json",
  concurrency: 2,
  timeoutMS: 10000,
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
};
