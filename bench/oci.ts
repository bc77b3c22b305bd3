/**
 * Push and pull through a registry against save and load through a file,
 * for issue 22's targets: a 2 GiB-apparent / 256 MiB-data snapshot (mixed
 * text and random data), a CNCF distribution registry on loopback with
 * filesystem storage. Each step is one CLI run under `/usr/bin/time`
 * (wall seconds, peak RSS); then `skopeo copy` between an OCI layout and the
 * registry, for scale. Node only (the runtimes' figures differ little for
 * I/O-bound steps). Prints a table; needs docker-registry, skopeo, GNU time.
 *
 * @example
 * ```sh
 * npm run build && node dist/bench/oci.js [--apparent 2G --data 256M]
 * ```
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "../test/helpers/registry.js";
import { CLI_MAIN, fmtBytes, parseBytes } from "./common.js";
import { writeUpper } from "./synth.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const apparent = parseBytes(arg("apparent", "2G"));
const data = parseBytes(arg("data", "256M"));

const root = mkdtempSync(join(tmpdir(), "snapbundle-bench-oci-"));
/** Wall seconds and peak RSS (bytes) of one command. */
function timed(label: string, command: string, args: string[], env: Record<string, string> = {}): { label: string; s: number; rss: number } {
  const out = join(root, "time.txt");
  execFileSync("/usr/bin/time", ["-f", "%e %M", "-o", out, command, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
  const [s, kb] = readFileSync(out, "utf8").trim().split(/\s+/).slice(-2).map(Number);
  return { label, s: s!, rss: kb! * 1024 };
}
const sb = (home: string, ...args: string[]) => ["--no-warnings", CLI_MAIN, "--home", home, "--quiet", ...args];

const reg = await Registry.start();
try {
  const src = join(root, "src");
  mkdirSync(src);
  const upper = join(root, "upper.ext4");
  writeUpper(upper, { apparent, data, kind: "mixed", extents: 64 });
  execFileSync("node", sb(src, "create", "big", "--upper", upper, "--image", "python:3.12", "--image-digest", `sha256:${"a".repeat(64)}`, "--integrity"), { stdio: "inherit" });
  rmSync(upper);
  const rows = [];
  const file = join(root, "big.tar.zst");
  execFileSync("node", sb(src, "save", "big", file + ".warm")); // warms the page cache for every timed step alike
  rmSync(file + ".warm");
  rows.push(timed("save to a file", "node", sb(src, "save", "big", file)));
  rows.push(timed("load from the file", "node", sb(join(root, "h-load"), "load", file)));
  const bundleBytes = statSync(file).size;
  const ref = `${reg.host}/bench/big:v1`;
  rows.push(timed("push to the registry", "node", sb(src, "push", "big", ref, "--plain-http")));
  rows.push(timed("pull from the registry", "node", sb(join(root, "h-pull"), "pull", ref, "--plain-http")));
  rows.push(timed("re-push (unchanged)", "node", sb(src, "push", "big", ref, "--plain-http")));
  // skopeo, for scale: the same artifact between an OCI layout and the registry
  const layout = join(root, "layout");
  execFileSync("skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${layout}:v1`], { stdio: "ignore" });
  // into a second, empty registry: nothing there to skip or mount
  const reg2 = await Registry.start();
  try {
    rows.push(timed("skopeo copy layout -> registry", "skopeo", ["--insecure-policy", "copy", "--dest-tls-verify=false", `oci:${layout}:v1`, `docker://${reg2.host}/bench/skopeo:v1`]));
    rows.push(timed("skopeo copy registry -> layout", "skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", `docker://${reg2.host}/bench/skopeo:v1`, `oci:${join(root, "layout2")}:v1`]));
  } finally {
    await reg2.stop();
  }
  console.log(`snapshot: ${fmtBytes(apparent)} apparent, ${fmtBytes(data)} data; bundle ${fmtBytes(bundleBytes)}`);
  for (const r of rows) console.log(`${r.label.padEnd(32)} ${r.s.toFixed(2).padStart(7)} s  peak RSS ${fmtBytes(r.rss).padStart(10)}`);
  const [save, load, push, pull] = rows;
  console.log(`push+pull / save+load: ${((push!.s + pull!.s) / (save!.s + load!.s)).toFixed(2)}x; pull RSS / load RSS: ${(pull!.rss / load!.rss).toFixed(2)}x`);
} finally {
  await reg.stop();
  rmSync(root, { recursive: true, force: true });
}
