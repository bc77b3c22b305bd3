/**
 * `npm run bench:profile`: where snapbundle's time goes, component by
 * component, on the runtime this runs on — reading holes through the
 * `FileSystem` adapter, the zero-scan (`dataRuns`), SHA-256 (hash-wasm),
 * zstd compress and decompress (our zstd.wasm, through the Web Streams of
 * `wasm/zstd.ts`), tar framing (writer and reader), and the native `zstd`
 * CLI on the same bytes for reference. Each figure is MB/s over the bytes
 * the component touches (10^6 bytes per MB), best of `--runs` (default 3).
 *
 * @example
 * ```sh
 * node dist/bench/profile.js
 * deno run -A dist/bench/profile.js --mib 128
 * bun dist/bench/profile.js --runtimes node,deno,bun
 * ```
 * @module
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createSha256, zstdCompressStream, zstdDecompressStream } from "../wasm/mod.js";
import { nodeFs } from "../src/mod.js"; // installs the Node/Deno/Bun host: the .wasm reader and Workers
import { CHUNK_BYTES, readChunks } from "../src/io.js";
import { dataRuns } from "../src/sparse.js";
import { readTar, TarWriter } from "../src/tar/mod.js";
import { BENCH_DIST, mustRun, RUNTIME, type Runtime, runtimeCommand } from "./common.js";
import { writeUpper } from "./synth.js";

const argv = process.argv.slice(2);
const opt = (n: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const MIB = Number(opt("mib") ?? 64);
const RUNS = Number(opt("runs") ?? 3);
const BYTES = MIB << 20;

async function best(fn: () => Promise<void> | void): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

function line(what: string, bytes: number, ms: number): void {
  process.stdout.write(`| ${what} | ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s | ${ms.toFixed(0)} ms |\n`);
}

/** Chunks of `data`, `size` each. */
function* pieces(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function pump(input: Iterable<Uint8Array>, t: TransformStream<Uint8Array, Uint8Array>, keep = false): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const reading = (async () => {
    const r = t.readable.getReader();
    for (;;) {
      const x = await r.read();
      if (x.done) return;
      if (keep) out.push(x.value);
    }
  })();
  const w = t.writable.getWriter();
  for (const c of input) await w.write(c);
  await w.close();
  await reading;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function main(): Promise<void> {
  const rts = opt("runtimes");
  if (rts) {
    const rest = argv.filter((a, i) => a !== "--runtimes" && argv[i - 1] !== "--runtimes");
    for (const rt of rts.split(",") as Runtime[]) {
      const { command, args } = runtimeCommand(rt, `${BENCH_DIST}/profile.js`, rest);
      process.stdout.write((await mustRun(command, args)).stdout);
    }
    return;
  }
  const work = mkdtempSync(`${tmpdir()}/snapbundle-profile-`);
  try {
    process.stdout.write(`\n#### ${RUNTIME} — components over ${MIB} MiB, best of ${RUNS}\n\n| component | throughput | time |\n|---|---:|---:|\n`);
    const fs = nodeFs();
    // the data: text-like and random, written as dense files
    const textPath = `${work}/text.img`;
    const randPath = `${work}/rand.img`;
    const holePath = `${work}/hole.img`;
    writeUpper(textPath, { apparent: BYTES, data: BYTES, kind: "text", extents: 1 });
    writeUpper(randPath, { apparent: BYTES, data: BYTES, kind: "random", extents: 1 });
    writeUpper(holePath, { apparent: 4 * BYTES, data: 4096, kind: "random", extents: 1 });
    const readAll = async (p: string, size: number, chunkBytes = CHUNK_BYTES) => {
      const h = await fs.open(p, "r");
      const parts: Uint8Array[] = [];
      for await (const c of readChunks(h, size, p, { chunkBytes })) parts.push(c.data);
      await h.close();
      return concat(parts);
    };
    const text = await readAll(textPath, BYTES);
    const rand = await readAll(randPath, BYTES);

    for (const cb of [1 << 20, CHUNK_BYTES, 16 << 20]) {
      line(`read holes via FileSystem (readChunks, ${cb >> 20} MiB chunks)`, 4 * BYTES, await best(async () => {
        const h = await fs.open(holePath, "r");
        for await (const _ of readChunks(h, 4 * BYTES, holePath, { chunkBytes: cb })) void _;
        await h.close();
      }));
    }
    line("read data via FileSystem (readChunks, 4 MiB)", BYTES, await best(async () => {
      const h = await fs.open(randPath, "r");
      for await (const _ of readChunks(h, BYTES, randPath)) void _;
      await h.close();
    }));
    const zeros = new Uint8Array(CHUNK_BYTES);
    line("zero-scan in JS (dataRuns) over zero chunks", BYTES, await best(() => {
      for (let o = 0; o < BYTES; o += zeros.length) dataRuns(zeros, o);
    }));
    line("zero-scan dataRuns over data chunks", BYTES, await best(() => {
      for (const [i, c] of [...pieces(text, CHUNK_BYTES)].entries()) dataRuns(c, i * CHUNK_BYTES);
    }));
    line("sha256 (hash-wasm), 4 MiB updates", BYTES, await best(async () => {
      const h = await createSha256();
      for (const c of pieces(text, CHUNK_BYTES)) h.update(c);
      h.digestHex();
    }));
    const { createHash } = await import("node:crypto");
    line("sha256 (node:crypto, for reference), 4 MiB updates", BYTES, await best(() => {
      const h = createHash("sha256");
      for (const c of pieces(text, CHUNK_BYTES)) h.update(c);
      h.digest("hex");
    }));
    line("sha256 (hash-wasm) of zero chunks (holes)", BYTES, await best(async () => {
      const h = await createSha256();
      for (let o = 0; o < BYTES; o += zeros.length) h.update(zeros);
      h.digestHex();
    }));
    let textZ: Uint8Array = new Uint8Array();
    let randZ: Uint8Array = new Uint8Array();
    line("zstd -3 compress, text (zstdCompressStream)", BYTES, await best(async () => {
      textZ = concat(await pump(pieces(text, CHUNK_BYTES), zstdCompressStream({ level: 3 }), true));
    }));
    line("zstd -3 compress, random", BYTES, await best(async () => {
      randZ = concat(await pump(pieces(rand, CHUNK_BYTES), zstdCompressStream({ level: 3 }), true));
    }));
    line("zstd -3 compress, zeros", BYTES, await best(async () => {
      await pump(pieces(new Uint8Array(BYTES), CHUNK_BYTES), zstdCompressStream({ level: 3 }));
    }));
    line(`zstd decompress, text (ratio ${(BYTES / textZ.length).toFixed(2)})`, BYTES, await best(async () => {
      await pump(pieces(textZ, CHUNK_BYTES), zstdDecompressStream());
    }));
    line("zstd decompress, random", BYTES, await best(async () => {
      await pump(pieces(randZ, CHUNK_BYTES), zstdDecompressStream());
    }));
    writeFileSync(`${work}/text.zst`, textZ);
    line("native zstd -3 -T1 compress, text (CLI, incl. start)", BYTES, await best(async () => {
      await mustRun("zstd", ["-3", "-T1", "-q", "-f", "-o", "/dev/null", textPath]);
    }));
    line("native zstd -d, text (CLI, incl. start)", BYTES, await best(async () => {
      await mustRun("zstd", ["-d", "-q", "-f", "-o", "/dev/null", `${work}/text.zst`]);
    }));
    const tarOf = async (keep: boolean): Promise<Uint8Array[]> => {
      const t = new TransformStream<Uint8Array, Uint8Array>();
      const parts: Uint8Array[] = [];
      const reading = (async () => {
        const r = t.readable.getReader();
        for (;;) {
          const x = await r.read();
          if (x.done) return;
          if (keep) parts.push(x.value);
        }
      })();
      const w = t.writable.getWriter();
      const tar = new TarWriter(w);
      await tar.addFile("a/upper.ext4", BYTES, pieces(text, CHUNK_BYTES));
      await tar.finish();
      await w.close();
      await reading;
      return parts;
    };
    line("tar framing: TarWriter, 4 MiB data chunks (output read, not kept)", BYTES, await best(() => tarOf(false).then(() => {})));
    const tarBytes = concat(await tarOf(true));
    line("tar framing: readTar + segments, 4 MiB input chunks", BYTES, await best(async () => {
      const src = new ReadableStream<Uint8Array>({
        start(c) {
          for (const p of pieces(tarBytes, CHUNK_BYTES)) c.enqueue(p);
          c.close();
        },
      });
      for await (const e of readTar(src)) for await (const _ of e.segments()) void _;
    }));
    const out = `${work}/out.img`;
    line("write data via FileSystem (4 MiB writes)", BYTES, await best(async () => {
      rmSync(out, { force: true });
      const h = await fs.open(out, "wx");
      let o = 0;
      for (const c of pieces(rand, CHUNK_BYTES)) {
        await h.write(c, o);
        o += c.length;
      }
      await h.close();
    }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
