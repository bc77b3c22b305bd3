/**
 * Runs the built CLI in this process and, when it exits, writes the
 * process's peak RSS (bytes) to the file named by `SNAPBUNDLE_BENCH_RSS_FILE`.
 * The CLI sees exactly the arguments after this script's name, as if it had
 * been started directly; the wrapper adds one import and an exit hook.
 *
 * @example
 * ```sh
 * SNAPBUNDLE_BENCH_RSS_FILE=/tmp/rss node dist/bench/cli-rss.js --home /tmp/h save x /tmp/x.tar.zst
 * ```
 * @module
 */

import { writeFileSync } from "node:fs";
import { CLI_MAIN, peakRssBytes } from "./common.js";

const rssFile = process.env.SNAPBUNDLE_BENCH_RSS_FILE;
if (rssFile) {
  process.on("exit", () => {
    writeFileSync(rssFile, String(peakRssBytes()));
  });
}
// argv[1] becomes the CLI's own path; the CLI reads argv.slice(2).
process.argv.splice(1, 1, CLI_MAIN);
await import(CLI_MAIN);
