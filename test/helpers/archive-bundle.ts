/**
 * Hand-built bundles for load tests: snapshot fixtures whose manifest,
 * digest and integrity are computed here from docs/format.md §3, §5 (node:crypto, not
 * the library), an image cache taken from {@link buildImage}, tar entries
 * crafted with tar-craft, and zstd through the CLI.
 * @module
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Volume } from "memfs";
import { memFs } from "../../src/fs/memfs.js";
import { readSmallFile } from "../../src/io.js";
import { buildImage } from "./image.js";
import { concatBytes, craftData, craftHeader, END, type CraftHeader } from "./tar-craft.js";
import { noise } from "./homes.js";

const enc = new TextEncoder();

/** A snapshot as an archive carries it. */
export interface SnapFixture {
  /** `sha256-<first 16 hex>`: its directory in the archive. */
  readonly prefix: string;
  readonly digest: string;
  /** Canonical manifest bytes. */
  readonly manifest: Uint8Array;
  /** The upper's logical bytes. */
  readonly upper: Uint8Array;
  readonly upperFile: string;
}

export interface SnapSpec {
  image?: { ref: string; manifest_digest: string };
  parent?: string | null;
  /** Upper size and data pieces (default: 12 KiB, "hello" at 0, noise at 8 KiB). */
  size?: number;
  pieces?: [number, Uint8Array | string][];
  integrity?: boolean;
  /** Recorded integrity digest override (to break it on purpose). */
  integrityDigest?: string;
  /** Recorded size_bytes override. */
  sizeBytes?: number;
  upperFile?: string;
  labels?: Record<string, string>;
}

export const DEFAULT_IMAGE = {
  ref: "docker.io/library/python:3.12",
  manifest_digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

/** Hex SHA-256. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `msb-sparse-sha256-v1` of logical bytes (docs/format.md §6). */
export function sparseDigest(bytes: Uint8Array): string {
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(bytes.length), true);
  return "sha256:" + createHash("sha256").update(enc.encode("msb-sparse-sha256-v1\0")).update(size).update(bytes).digest("hex");
}

/** A snapshot fixture with its canonical manifest, written by hand from docs/format.md §3. */
export function snapFixture(spec: SnapSpec = {}): SnapFixture {
  const size = spec.size ?? 12288;
  const upper = new Uint8Array(size);
  for (const [off, d] of spec.pieces ?? [[0, "hello"], [8192, noise(3000, 7)]]) upper.set(typeof d === "string" ? enc.encode(d) : d, off);
  const image = spec.image ?? DEFAULT_IMAGE;
  const upperFile = spec.upperFile ?? "upper.ext4";
  const integrity = spec.integrity === false ? null : { algorithm: "msb-sparse-sha256-v1", digest: spec.integrityDigest ?? sparseDigest(upper) };
  const labels = Object.keys(spec.labels ?? {}).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(spec.labels![k])}`).join(",");
  const text =
    `{"schema":1,"format":"raw","fstype":"ext4","image":{"ref":${JSON.stringify(image.ref)},"manifest_digest":${JSON.stringify(image.manifest_digest)}},` +
    `"parent":${JSON.stringify(spec.parent ?? null)},"created_at":"2026-05-01T12:00:00Z","labels":{${labels}},` +
    `"upper":{"file":${JSON.stringify(upperFile)},"size_bytes":${spec.sizeBytes ?? size},"integrity":${integrity === null ? "null" : `{"algorithm":"${integrity.algorithm}","digest":"${integrity.digest}"}`}},` +
    `"source_sandbox":null}`;
  const hex = sha256Hex(text);
  return { prefix: `sha256-${hex.slice(0, 16)}`, digest: `sha256:${hex}`, manifest: enc.encode(text), upper, upperFile };
}

/** A cache file as an archive carries it. */
export interface CacheEntry {
  /** e.g. `cache/layers/sha256_….erofs` */
  readonly archivePath: string;
  readonly bytes: Uint8Array;
}

export interface ImageFixture {
  readonly ref: string;
  readonly manifest_digest: string;
  /** Metadata first, then fsmeta, VMDK, layers (save's order). */
  readonly files: CacheEntry[];
  readonly metadata: Record<string, unknown>;
}

/** A consistent image cache (see {@link buildImage}), as archive entries. */
export async function imageFixture(salt = "", layers = 2, ref = "python:3.12"): Promise<ImageFixture> {
  const fs = memFs(new Volume());
  await fs.mkdir("/img", { recursive: true });
  const img = await buildImage(fs, "/img", ref, layers, salt);
  const files: CacheEntry[] = [];
  for (const p of img.files) files.push({ archivePath: "cache" + p.slice("/img/cache".length), bytes: await readSmallFile(fs, p, 64 << 20) });
  return { ref: img.ref, manifest_digest: img.manifest_digest, files, metadata: img.metadata };
}

/** A regular file entry: header plus padded data. */
export function fileEntry(name: string | Uint8Array, data: Uint8Array | string, h: Partial<CraftHeader> = {}): Uint8Array {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return concatBytes(craftHeader({ name, size: bytes.length, mtime: 1714560000, ...h }), craftData(bytes));
}

/** A directory entry. */
export function dirEntry(name: string): Uint8Array {
  return craftHeader({ name, typeflag: "5", mode: 0o755, mtime: 1714560000 });
}

/** A snapshot's entries: manifest first, then the upper. */
export function snapEntries(f: SnapFixture): Uint8Array[] {
  return [fileEntry(`${f.prefix}/manifest.json`, f.manifest), fileEntry(`${f.prefix}/${f.upperFile}`, f.upper)];
}

/** The entries of cache files. */
export function cacheEntries(files: readonly CacheEntry[]): Uint8Array[] {
  return files.map((c) => fileEntry(c.archivePath, c.bytes));
}

/** A whole tar: the parts then the end-of-archive marker. */
export function tarOf(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts, END);
}

/**
 * Compress with the zstd CLI (`zstd -3` unless other arguments are given).
 * Through temporary files, not pipes: Deno's `execFileSync` writes all of
 * `input` before reading the output, which deadlocks once both are large.
 */
export function zstdCli(bytes: Uint8Array, args: string[] = ["-3"]): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "snapbundle-zstd-"));
  try {
    writeFileSync(join(dir, "in"), bytes);
    execFileSync("zstd", [...args, "-q", "-f", join(dir, "in"), "-o", join(dir, "out")], { stdio: ["ignore", "ignore", "pipe"] });
    return new Uint8Array(readFileSync(join(dir, "out")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when bytes start with the zstd frame magic. */
export function hasZstdMagic(b: Uint8Array): boolean {
  return b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd;
}
