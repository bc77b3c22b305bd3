/**
 * One library operation in a fresh process, so its peak RSS is its own:
 * `create`, `save`, `load` or `verify` through {@link SnapshotStore}. Prints
 * one JSON line: the operation's wall time (in-process, after start-up), the
 * peak RSS before and after it, and what it produced. Started by `run.ts`.
 *
 * @example
 * ```sh
 * node dist/bench/op.js save --home /tmp/h --name x --out /tmp/x.tar.zst
 * node dist/bench/op.js load --home /tmp/h2 --src /tmp/x.tar.zst
 * node dist/bench/op.js create --home /tmp/h --name x --upper /tmp/u.img --integrity
 * ```
 * @module
 */

import { nodeFs, SnapshotStore } from "../src/mod.js";
import { peakRssBytes, RUNTIME } from "./common.js";

/** What an op child prints. */
export interface OpResult {
  readonly op: string;
  readonly runtime: string;
  /** Wall time of the operation itself. */
  readonly ms: number;
  /** Peak RSS after start-up and module loading, before the op. */
  readonly startRss: number;
  /** Peak RSS of the whole process at the end. */
  readonly peakRss: number;
  readonly detail?: unknown;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function need(args: string[], name: string): string {
  const v = flag(args, name);
  if (v === undefined) throw new Error(`op: missing --${name}`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const op = argv[0];
  const store = new SnapshotStore(nodeFs(), need(argv, "home"));
  const startRss = peakRssBytes();
  const t0 = performance.now();
  let detail: unknown;
  switch (op) {
    case "create":
      detail = await store.create(need(argv, "name"), {
        upper: need(argv, "upper"),
        image: { ref: "bench:latest", manifest_digest: `sha256:${"0".repeat(64)}` },
        integrity: argv.includes("--integrity"),
        createdAt: "2026-01-01T00:00:00Z",
      });
      break;
    case "save":
      detail = (await store.save(need(argv, "name"), need(argv, "out"), { plainTar: argv.includes("--plain-tar") })).tarBytes;
      break;
    case "load":
      detail = await store.load(need(argv, "src"));
      break;
    case "verify":
      detail = (await store.verify(need(argv, "name"))).integrity;
      break;
    default:
      throw new Error(`op: unknown operation ${JSON.stringify(op)} (create, save, load, verify)`);
  }
  const ms = performance.now() - t0;
  const result: OpResult = { op: op!, runtime: RUNTIME, ms, startRss, peakRss: peakRssBytes(), detail };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main(process.argv.slice(2));
