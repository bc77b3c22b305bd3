/**
 * Test helpers for the tar codec: Web Streams over files and byte arrays,
 * running GNU tar / bsdtar, sparse files, logical-content hashing.
 * @module
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as nodePath from "node:path";
import { concat } from "./bytes.js";

/** Old names of {@link noise} and {@link concat} (test/helpers/bytes.ts), kept for suites written before they moved. */
export { concat, noise as pseudoRandom } from "./bytes.js";

import { readTar, TarWriter, type TarEntry, type ReadTarOptions } from "../../src/tar/mod.js";

/** A fresh temporary directory. */
export function tempDir(tag = "tar"): string {
  return fs.mkdtempSync(nodePath.join(os.tmpdir(), `snapbundle-${tag}-`));
}

/** Remove a directory tree. */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Run a command; resolves its stdout. Throws with stderr on failure. */
export function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr ?? ""} ${err.message}`);
  }
}

/** A stream of `bytes` cut into chunks of the given sizes (cycled), default one chunk. */
export function bytesStream(bytes: Uint8Array, chunkSizes: number[] = [bytes.length || 1]): ReadableStream<Uint8Array> {
  let at = 0;
  let k = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      const n = Math.max(1, chunkSizes[k++ % chunkSizes.length]!);
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

/** A stream of a file's bytes in chunks of `chunkSize`. */
export function fileStream(path: string, chunkSize = 256 * 1024): ReadableStream<Uint8Array> {
  let handle: fsp.FileHandle | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      handle ??= await fsp.open(path, "r");
      const buf = new Uint8Array(chunkSize);
      const { bytesRead } = await handle.read(buf, 0, chunkSize, null);
      if (bytesRead === 0) {
        await handle.close();
        handle = null;
        controller.close();
        return;
      }
      controller.enqueue(bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead));
    },
    async cancel() {
      await handle?.close();
      handle = null;
    },
  });
}

/** A writer whose chunks are collected; `bytes()` concatenates them. */
export function memorySink(): { writer: WritableStreamDefaultWriter<Uint8Array>; chunks: Uint8Array[]; bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  const ws = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(chunk);
    },
  });
  return {
    writer: ws.getWriter(),
    chunks,
    bytes() {
      return concat(chunks);
    },
  };
}

/** A writer appending to a file; `close()` closes writer and file. */
export function fileSink(path: string): { writer: WritableStreamDefaultWriter<Uint8Array>; close(): Promise<void> } {
  const fd = fs.openSync(path, "w");
  const ws = new WritableStream<Uint8Array>({
    write(chunk) {
      let at = 0;
      while (at < chunk.length) at += fs.writeSync(fd, chunk, at, chunk.length - at);
    },
    close() {
      fs.closeSync(fd);
    },
  });
  const writer = ws.getWriter();
  return { writer, close: () => writer.close() };
}

/** Hex SHA-256. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Hex SHA-256 of a file (read in chunks; holes read as zeros). */
export function sha256File(path: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(path, "r");
  const buf = new Uint8Array(1 << 20);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

const ZEROS = new Uint8Array(1 << 20);

/** Hex SHA-256 of an entry's logical content (holes as zeros), checking segment order and bounds. */
export async function logicalSha256(entry: TarEntry): Promise<string> {
  const h = createHash("sha256");
  let pos = 0;
  const zeros = (n: number) => {
    while (n > 0) {
      const k = Math.min(n, ZEROS.length);
      h.update(ZEROS.subarray(0, k));
      n -= k;
    }
  };
  for await (const { offset, data } of entry.segments()) {
    if (offset < pos) throw new Error(`segment at ${offset} goes backwards (at ${pos})`);
    zeros(offset - pos);
    h.update(data);
    pos = offset + data.length;
  }
  if (pos > entry.size) throw new Error(`segments run to ${pos}, past the size ${entry.size}`);
  zeros(entry.size - pos);
  return h.digest("hex");
}

/** An entry's fields plus its logical content (small archives only). */
export interface ReadEntry {
  path: string;
  typeflag: string;
  kind: string;
  sparse: boolean;
  size: number;
  storedSize: number;
  sparseMap: { offset: number; length: number }[] | null;
  linkname: string;
  mode: number;
  mtime: number;
  headerOffset: number;
  content: Uint8Array;
}

/** Read every entry of a stream with its logical content. */
export async function readAll(stream: ReadableStream<Uint8Array>, options?: ReadTarOptions): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  for await (const e of readTar(stream, options)) {
    const content = new Uint8Array(e.size);
    for await (const { offset, data } of e.segments()) content.set(data, offset);
    out.push({
      path: e.path,
      typeflag: e.typeflag,
      kind: e.kind,
      sparse: e.sparse,
      size: e.size,
      storedSize: e.storedSize,
      sparseMap: e.sparseMap ? e.sparseMap.map((s) => ({ ...s })) : null,
      linkname: e.linkname,
      mode: e.mode,
      mtime: e.mtime,
      headerOffset: e.headerOffset,
      content,
    });
  }
  return out;
}

/** Create a sparse file of `size` bytes with `writes` at their offsets (the rest are holes). */
export function makeSparseFile(path: string, size: number, writes: { offset: number; data: Uint8Array }[]): void {
  const fd = fs.openSync(path, "w");
  try {
    fs.ftruncateSync(fd, size);
    for (const w of writes) fs.writeSync(fd, w.data, 0, w.data.length, w.offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** Allocated 512-byte blocks of a file (`stat -c %b`). */
export function allocatedBlocks(path: string): number {
  return Number(run("stat", ["-c", "%b", path]).trim());
}

/** Write entries with {@link TarWriter} into a file. */
export async function writeTarFile(path: string, build: (tar: TarWriter) => Promise<void>): Promise<void> {
  const sink = fileSink(path);
  const tar = new TarWriter(sink.writer);
  await build(tar);
  await tar.finish();
  await sink.close();
}

/** Write entries with {@link TarWriter} into memory. */
export async function writeTarBytes(build: (tar: TarWriter) => Promise<void>, chunkSize?: number): Promise<Uint8Array> {
  const sink = memorySink();
  const tar = new TarWriter(sink.writer, chunkSize === undefined ? {} : { chunkSize });
  await build(tar);
  await tar.finish();
  await sink.writer.close();
  return sink.bytes();
}

/** The data bytes of a sparse map taken from a logical buffer, concatenated. */
export function sparseData(logical: Uint8Array, map: { offset: number; length: number }[]): Uint8Array {
  return concat(map.map((s) => logical.subarray(s.offset, s.offset + s.length)));
}
