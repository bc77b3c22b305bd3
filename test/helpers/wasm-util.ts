/**
 * Helpers for test/wasm.test.ts: deterministic test data, Web Stream plumbing,
 * and running the zstd / sha256sum command-line tools.
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { concat, Rng } from "./bytes.js";

/** Formerly defined here; now in test/helpers/bytes.ts. */
export { concat, randomBytes, Rng } from "./bytes.js";
import "./node-host.js";

const WORDS = (() => {
  const rng = new Rng(42);
  const words: Uint8Array[] = [];
  const alphabet = "etaoinshrdlucmfwypvbgkqjxz";
  for (let i = 0; i < 600; i++) {
    const len = 2 + rng.int(9);
    let w = "";
    for (let k = 0; k < len; k++) w += alphabet[Math.min(rng.int(26), rng.int(26))];
    words.push(new TextEncoder().encode(w + (rng.int(12) === 0 ? ",\n" : " ")));
  }
  return words;
})();

/**
 * Mixed data like a disk image: segments of text-like words (compressible),
 * random bytes (incompressible) and runs of one byte (zeros mostly).
 */
export function* mixedChunks(total: number, chunkSize: number, seed = 7): Generator<Uint8Array> {
  const rng = new Rng(seed);
  let made = 0;
  while (made < total) {
    const chunk = new Uint8Array(Math.min(chunkSize, total - made));
    let p = 0;
    while (p < chunk.length) {
      const seg = Math.min(chunk.length - p, 4096 + rng.int(96 * 1024));
      const kind = rng.int(8);
      if (kind < 4) {
        const end = p + seg;
        while (p < end) {
          const w = WORDS[rng.int(WORDS.length)]!;
          const n = Math.min(w.length, end - p);
          chunk.set(n === w.length ? w : w.subarray(0, n), p);
          p += n;
        }
      } else if (kind < 6) {
        rng.fill(chunk.subarray(p, p + seg));
        p += seg;
      } else {
        chunk.fill(kind === 6 ? 0 : rng.int(256), p, p + seg);
        p += seg;
      }
    }
    made += chunk.length;
    yield chunk;
  }
}

/** `n` bytes of {@link mixedChunks} data in one buffer. */
export function mixedBytes(n: number, seed = 7): Uint8Array {
  return concat([...mixedChunks(n, 1 << 20, seed)]);
}

/** Text-like bytes only (every zstd block is a compressed block). */
export function textBytes(n: number, seed = 3): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(n);
  let p = 0;
  while (p < n) {
    const w = WORDS[rng.int(WORDS.length)]!;
    const k = Math.min(w.length, n - p);
    out.set(w.subarray(0, k), p);
    p += k;
  }
  return out;
}

/** A ReadableStream over `data` cut into `chunkSize` pieces (or over an iterable of chunks). */
export function streamOf(data: Uint8Array | Iterable<Uint8Array>, chunkSize = 1 << 20): ReadableStream<Uint8Array> {
  const it: Iterator<Uint8Array> =
    data instanceof Uint8Array
      ? (function* () {
          for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
        })()
      : data[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const r = it.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
  });
}

/** Read a stream to the end into one buffer. */
export async function collect(rs: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = rs.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return concat(parts);
}

/** Run `data` through a transform stream and collect the output. */
export function pipe(
  data: Uint8Array | Iterable<Uint8Array>,
  t: TransformStream<Uint8Array, Uint8Array>,
  chunkSize?: number,
): Promise<Uint8Array> {
  return collect(streamOf(data, chunkSize).pipeThrough(t));
}

/** Equal byte arrays (assert.deepStrictEqual is slow on large buffers). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A fresh temporary directory; call the returned function to remove it. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "snapbundle-wasm-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Run a command; return its stdout; throw with stderr when it fails. `input`
 * goes through a temporary file redirected to stdin: Deno's spawnSync
 * deadlocks when both stdin and stdout exceed a pipe buffer.
 */
export function run(cmd: string, args: string[], input?: Uint8Array): Uint8Array {
  let r: ReturnType<typeof spawnSync>;
  if (input === undefined) {
    r = spawnSync(cmd, args, { maxBuffer: 1 << 30 });
  } else {
    const t = tempDir();
    try {
      const f = join(t.dir, "stdin");
      writeFileSync(f, input);
      r = spawnSync("sh", ["-c", '"$0" "$@" < "$SNAPBUNDLE_STDIN"', cmd, ...args], {
        maxBuffer: 1 << 30,
        env: { ...process.env, SNAPBUNDLE_STDIN: f },
      });
    } finally {
      t.remove();
    }
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${String(r.stderr)}`);
  const out = r.stdout as Uint8Array;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Number of zstd frames in `data`, as `zstd -lv` counts them. microsandbox's
 * loader (async-compression's `ZstdDecoder`, `multiple_members` off) reads
 * only the first frame, so what we write must be exactly one.
 */
export function zstdFrameCount(data: Uint8Array): number {
  const t = tempDir();
  try {
    const f = join(t.dir, "in.zst");
    writeFileSync(f, data);
    const out = new TextDecoder().decode(run("zstd", ["-lv", f]));
    const m = /# Zstandard Frames: (\d+)/.exec(out);
    if (!m) throw new Error(`zstd -lv printed no frame count: ${out}`);
    return Number(m[1]);
  } finally {
    t.remove();
  }
}

/** Compress with the zstd CLI (file input, so the content size is known unless `pipe`). */
export function zstdCli(data: Uint8Array, args: string[], opts: { pipe?: boolean } = {}): Uint8Array {
  if (opts.pipe) return run("zstd", ["-q", "-c", ...args], data);
  const t = tempDir();
  try {
    const f = join(t.dir, "in");
    writeFileSync(f, data);
    return run("zstd", ["-q", "-c", ...args, f]);
  } finally {
    t.remove();
  }
}

/** Decompress with the zstd CLI. */
export function unzstdCli(data: Uint8Array): Uint8Array {
  return run("zstd", ["-q", "-d", "-c"], data);
}

/** SHA-256 of `data` by `sha256sum`. */
export function sha256sum(data: Uint8Array): string {
  const t = tempDir();
  try {
    const f = join(t.dir, "data");
    writeFileSync(f, data);
    return new TextDecoder().decode(run("sha256sum", [f])).split(" ")[0]!;
  } finally {
    t.remove();
  }
}

/** Read a file (for symmetry with writeFileSync in tests). */
export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** An empty skippable frame with the given payload. */
export function skippableFrame(payload: Uint8Array, nibble = 0): Uint8Array {
  const h = new Uint8Array(8);
  const v = new DataView(h.buffer);
  v.setUint32(0, 0x184d2a50 + nibble, true);
  v.setUint32(4, payload.length, true);
  return concat([h, payload]);
}

/** Resident set size now, in bytes. */
export function rss(): number {
  return process.memoryUsage().rss;
}

/**
 * A full synchronous garbage collection, where the runtime offers one: Bun's
 * `Bun.gc(true)`; on Node and Deno the V8 `gc` function, exposed at run time.
 * Memory tests call it so that RSS shows what is retained rather than how
 * lazily a collector frees garbage (Bun, and V8 under `deno test`, let
 * hundreds of MiB of dead buffers pile up).
 */
export const collectGarbage: () => void = (() => {
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  try {
    setFlagsFromString("--expose-gc");
    const gc: unknown = runInNewContext("gc");
    if (typeof gc === "function") return gc as () => void;
  } catch {
    // no way to collect: RSS will include garbage
  }
  return () => {};
})();
