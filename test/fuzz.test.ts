/**
 * Fuzzing the loader (fast-check; engine in bench/fuzz-long.ts): mutated
 * bundles — plain and zstd, tar headers, sizes, frame headers — are loaded
 * into a fresh memfs home. Every case ends in success or a typed error, never
 * an untyped exception, a hang or a runaway allocation, and a failed load
 * leaves the volume exactly as it was (writing files only in staging).
 *
 * Three parts: the seeds load; the regression corpus in test/fixtures/fuzz/
 * (inputs that found bugs, and a few per outcome) replays with its recorded
 * outcome; a short random run (SNAPBUNDLE_FUZZ_RUNS cases, default 500, seed
 * SNAPBUNDLE_FUZZ_SEED, default fixed). The long run is `npm run fuzz:long`.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { buildSeeds, fuzzLoader, materialize, mutate, runCase, zstd } from "../bench/fuzz-long.js";

const CORPUS = new URL("../../test/fixtures/fuzz/", import.meta.url);

interface CorpusEntry {
  /** The outcome the input must keep producing: "ok" or an error class name. */
  outcome: string;
  /** Why it is in the corpus. */
  why: string;
  /** A phrase the error message must contain (optional). */
  message?: string;
}

describe("fuzzing the loader", () => {
  test("every seed loads", async () => {
    const seeds = await buildSeeds();
    assert.ok(seeds.length >= 6);
    for (const s of seeds) {
      const r = await runCase(s.bytes);
      assert.equal(r.violation, null, `${s.name}: ${r.violation}`);
      assert.equal(r.outcome, "ok", `${s.name}: ${r.message}`);
      assert.ok(s.headers.length >= 3, `${s.name}: headers found`);
    }
  });

  test("the regression corpus replays with its recorded outcomes", async () => {
    const files = readdirSync(CORPUS).filter((n) => n.endsWith(".bin")).sort();
    assert.ok(files.length >= 10, `the corpus holds only ${files.length} inputs`);
    const wrong: string[] = [];
    for (const f of files) {
      const meta = JSON.parse(readFileSync(new URL(f.replace(/\.bin$/, ".json"), CORPUS), "utf8")) as CorpusEntry;
      const r = await runCase(new Uint8Array(readFileSync(new URL(f, CORPUS))));
      if (r.violation) wrong.push(`${f}: ${r.violation}`);
      else if (r.outcome !== meta.outcome) wrong.push(`${f}: expected ${meta.outcome}, got ${r.outcome}: ${r.message}`);
      else if (meta.message && !r.message.includes(meta.message)) wrong.push(`${f}: message ${JSON.stringify(r.message)} lacks ${JSON.stringify(meta.message)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("targeted extremes: zstd window descriptors and lying sizes", async () => {
    const seeds = await buildSeeds();
    const z = seeds.find((s) => s.zstd)!;
    // windows of 2^28 (256 MiB, over the 128 MiB default) .. 2^41 bytes: refused before any block is decoded
    for (let windowLog = 28; windowLog <= 41; windowLog++) {
      const wd = (windowLog - 10) << 3;
      const bytes = mutate(z.bytes, z.headers, [{ kind: "zstdHeader", part: "fhd", value: 0 }, { kind: "zstdHeader", part: "wd", value: 0 }]);
      bytes[5] = wd;
      const r = await runCase(bytes);
      assert.equal(r.violation, null, r.violation ?? "");
      assert.equal(r.outcome, "ArchiveError", `window 2^${windowLog}: ${r.message}`);
      assert.match(r.message, /window/, `window 2^${windowLog}`);
    }
    // every header's size field set to base-256 2^62-1, and to lies of ±1 block, checksum fixed
    const t = seeds.find((s) => !s.zstd)!;
    for (let h = 0; h < t.headers.length; h++) {
      for (const m of [
        { kind: "field" as const, header: h, field: "size" as const, value: 5, fixChecksum: true },
        { kind: "sizeLie" as const, header: h, delta: 512, fixChecksum: true },
        { kind: "sizeLie" as const, header: h, delta: -512, fixChecksum: true },
        { kind: "field" as const, header: h, field: "realsize" as const, value: 5, fixChecksum: true },
      ]) {
        for (const compressed of [false, true]) {
          const tar = mutate(t.tar, t.headers, [m]);
          const r = await runCase(compressed ? await zstd(tar) : tar);
          assert.equal(r.violation, null, `header ${h} ${JSON.stringify(m)}: ${r.violation}`);
        }
      }
    }
    // a mutated tar through zstd and as plain tar end the same way
    const input = { seed: seeds.indexOf(t), layer: "tar" as const, muts: [{ kind: "truncate" as const, at: 3000 }] };
    const plain = await runCase(await materialize(seeds, input));
    const viaZstd = await runCase(await zstd(await materialize(seeds, input)));
    assert.equal(plain.outcome, "ArchiveError");
    assert.equal(viaZstd.outcome, "ArchiveError");
  });

  test("a short random run: success or a typed error, the volume untouched on failure, bounded memory, no hang", async () => {
    const runs = Number(process.env.SNAPBUNDLE_FUZZ_RUNS ?? 500);
    const seed = Number(process.env.SNAPBUNDLE_FUZZ_SEED ?? 20260501);
    const summary = await fuzzLoader({ runs, seed, timeoutMs: 20_000, maxRssGrowthMiB: 1024 });
    if (process.env.SNAPBUNDLE_FUZZ_VERBOSE === "1") console.log(JSON.stringify(summary));
    assert.equal(summary.cases, runs);
    // the mutations reach deep enough to produce more than one kind of outcome
    assert.ok(Object.keys(summary.outcomes).length >= 3, JSON.stringify(summary.outcomes));
  });
});
