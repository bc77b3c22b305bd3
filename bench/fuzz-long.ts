/**
 * Fuzzing the loader: the engine (used by `test/fuzz.test.ts` for a short run
 * and its regression corpus) and, run as a script, the long opt-in run:
 *
 * ```sh
 * npm run fuzz:long                                   # node, 20 000 cases
 * node dist/bench/fuzz-long.js --run --runs 50000 --seed 7
 * deno run -A dist/bench/fuzz-long.js --run           # or bun dist/bench/fuzz-long.js --run
 * node dist/bench/fuzz-long.js --run --collect /tmp/corpus   # keep a few inputs per outcome
 * ```
 *
 * Seeds are small valid bundles (a two-snapshot chain with a tiny image cache;
 * plain tar and zstd; sparse and dense entries) written by snapbundle itself.
 * Mutations: bit flips, truncations, inserted and deleted 512-byte blocks,
 * header fields set to extremes (size, mtime, mode, checksum, typeflag, name
 * bytes, magic, GNU sparse fields, base-256 markers) with the checksum fixed
 * up or not, sizes that lie; for zstd also the compressed bytes, the frame
 * header (descriptor, window descriptor, content size) and block headers, or
 * a mutated tar recompressed.
 *
 * Each input is loaded into a fresh memfs home holding a snapshot and part of
 * an image cache. Every run must end in success or a typed error (a
 * SnapbundleError) — never an untyped exception, a hang (each load has a
 * timeout) or an unbounded allocation (rss is watched) — and a failed load
 * must leave the whole volume exactly as it was, writing files only in its
 * staging directories meanwhile.
 * @module
 */

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import fc from "fast-check";
import { Volume } from "memfs";
import { SnapbundleError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { installHost } from "../src/host.js";
import { nodeHost } from "../src/hosts/node.js";
import type { FileSystem } from "../src/fs/types.js";
import { readSmallFile } from "../src/io.js";
import { SnapshotStore } from "../src/store.js";
import { FaultyFs } from "../test/helpers/faulty-fs.js";
import { concat } from "../test/helpers/bytes.js";
import { noise, writeSparse } from "../test/helpers/homes.js";
import { buildImage } from "../test/helpers/image.js";
import { zstdCompressStream } from "../wasm/mod.js";

installHost(nodeHost()); // the core reads zstd.wasm through the host (it reads no file by itself)

// ---------------------------------------------------------------- seeds

/** A valid bundle to mutate. */
export interface Seed {
  readonly name: string;
  /** The bytes as saved (zstd or plain). */
  readonly bytes: Uint8Array;
  readonly zstd: boolean;
  /** The plain tar (equal to `bytes` for a plain seed). */
  readonly tar: Uint8Array;
  /** Offsets of the tar's header blocks. */
  readonly headers: number[];
}

const HOME = "/h";
const ARCHIVE = "/in/archive";

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
  }
  return concat(chunks);
}

/** zstd-compress bytes in process (level 3, as save writes). */
export async function zstd(bytes: Uint8Array): Promise<Uint8Array> {
  return readAll(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(zstdCompressStream({ level: 3 })));
}

function octalField(b: Uint8Array): number {
  if (b[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = new TextDecoder().decode(b).replace(/[\0 ].*$/s, "").trim();
  return s === "" ? 0 : parseInt(s, 8);
}

/** Header offsets of a well-formed tar (GNU, old-GNU sparse with extension blocks, PAX/long-name entries). */
export function headerOffsets(tar: Uint8Array): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    out.push(off);
    const size = octalField(h.subarray(124, 136));
    let next = off + 512;
    if (h[156] === 0x53 /* S */) {
      for (let ext = h[482]; ext; next += 512) ext = tar[next + 504];
    }
    off = next + Math.ceil(size / 512) * 512;
  }
  return out;
}

let seedsCache: Seed[] | null = null;

/** The seeds, built once per process with snapbundle itself (deterministic bytes). */
export async function buildSeeds(): Promise<Seed[]> {
  if (seedsCache) return seedsCache;
  const vol = new Volume();
  vol.mkdirSync("/s/home", { recursive: true });
  const fs = memFs(vol);
  const store = new SnapshotStore(fs, "/s/home");
  const img = await buildImage(fs, "/s/home", "python:3.12", 1, "fuzz");
  const image = { ref: img.ref, manifest_digest: img.manifest_digest };
  // compressible but not zero: small zstd inputs, dense blocks where wanted
  const text = (n: number, salt: string) => new TextEncoder().encode(`${salt} lorem ipsum dolor sit amet `.repeat(Math.ceil(n / 30)).slice(0, n));
  await writeSparse(fs, "/s/u1", 24 << 10, [[0, "hello"], [12_288, text(2000, "a")]]);
  await writeSparse(fs, "/s/u2", 8 << 10, [[0, text(8 << 10, "b")]]);
  const a = await store.create("a", { upper: "/s/u1", image, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  await store.create("b", { upper: "/s/u2", image, parent: a.digest, integrity: true, createdAt: "2026-05-01T12:00:00Z", labels: { k: "v" } });
  // fixed mtimes: the archive records them, and a seed must be the same bytes in every run and runtime
  const pin = (d: string) => {
    for (const n of vol.readdirSync(d) as string[]) {
      const p = `${d}/${n}`;
      if (vol.statSync(p).isDirectory()) pin(p);
      else vol.utimesSync(p, 1_777_000_000, 1_777_000_000);
    }
  };
  pin("/s/home");
  const save = async (options: object) => {
    const chunks: Uint8Array[] = [];
    await store.save("b", new WritableStream({ write: (c) => void chunks.push(c.slice()) }), options);
    return readAll(new Blob(chunks as Uint8Array<ArrayBuffer>[]).stream());
  };
  const seeds: Seed[] = [];
  for (const [name, options] of [
    ["chain+image", { withParents: true, withImage: true }],
    ["chain dense", { withParents: true, dense: true }],
    ["head+image", { withImage: true }],
  ] as const) {
    const tar = await save({ ...options, plainTar: true });
    seeds.push({ name: `${name} (tar)`, bytes: tar, zstd: false, tar, headers: headerOffsets(tar) });
    const z = await save(options);
    seeds.push({ name: `${name} (zstd)`, bytes: z, zstd: true, tar, headers: headerOffsets(tar) });
  }
  seedsCache = seeds;
  return seeds;
}

// ---------------------------------------------------------------- the home

/** Every directory and file of the starting home, to recreate it fast per case. */
interface Template {
  dirs: string[];
  files: [string, Uint8Array][];
}

let templateCache: Template | null = null;

async function buildTemplate(): Promise<Template> {
  if (templateCache) return templateCache;
  const vol = new Volume();
  vol.mkdirSync(HOME, { recursive: true });
  const fs = memFs(vol);
  const store = new SnapshotStore(fs, HOME);
  await writeSparse(fs, "/keep-upper", 16 << 10, [[4096, noise(3000, 9)]]);
  await store.create("keep", { upper: "/keep-upper", image: { ref: "alpine:3", manifest_digest: "sha256:" + "c".repeat(64) }, integrity: true, createdAt: "2026-05-01T12:00:00Z" });
  // the seeds' image cache, one file of it already installed (identical), so loads meet an existing cache
  const img = await buildImage(fs, HOME, "python:3.12", 1, "fuzz");
  for (const f of img.files) if (!f.includes("/cache/layers/")) await fs.remove(f);
  await fs.remove("/keep-upper");
  const t: Template = { dirs: [], files: [] };
  const walk = async (d: string) => {
    for (const n of (await fs.readdir(d)).sort()) {
      const p = d === "/" ? `/${n}` : `${d}/${n}`;
      const info = await fs.lstat(p);
      if (info.kind === "directory") {
        t.dirs.push(p);
        await walk(p);
      } else if (!n.startsWith(".snapbundle-index")) t.files.push([p, await readSmallFile(fs, p, 1 << 20)]);
    }
  };
  await walk("/");
  templateCache = t;
  return t;
}

function freshVolume(t: Template, archive: Uint8Array): Volume {
  const vol = new Volume();
  for (const d of t.dirs) vol.mkdirSync(d, { recursive: true });
  for (const [p, b] of t.files) vol.writeFileSync(p, b);
  vol.mkdirSync("/in", { recursive: true });
  vol.writeFileSync(ARCHIVE, archive);
  return vol;
}

/** Every path of the volume with kind, size and SHA-256. */
async function fingerprint(fs: FileSystem, skip: (p: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const n of (await fs.readdir(d)).sort()) {
      const p = d === "/" ? `/${n}` : `${d}/${n}`;
      if (skip(p)) continue;
      const info = await fs.lstat(p);
      if (info.kind === "file") out.set(p, `${info.size}:${createHash("sha256").update(await readSmallFile(fs, p, 64 << 20)).digest("hex")}`);
      else out.set(p, info.kind);
      if (info.kind === "directory") await walk(p);
    }
  };
  await walk("/");
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of b) if (!a.has(k)) out.push(`+${k}`);
  else if (a.get(k) !== v) out.push(`~${k}`);
  for (const k of a.keys()) if (!b.has(k)) out.push(`-${k}`);
  return out;
}

// ---------------------------------------------------------------- one case

/** How a case ended. */
export interface CaseResult {
  /** `"ok"` or the error's class name. */
  readonly outcome: string;
  readonly message: string;
  /** What broke an invariant, or null. */
  readonly violation: string | null;
  readonly ms: number;
}

// staging, and the operation's lease file (a few bytes naming its owner, removed when it ends)
const isStaging = (p: string) =>
  p.includes("/.msb-snapshot-import-") || p.startsWith(`${HOME}/cache/tmp/`) || p.includes(".snapbundle-index.json.tmp-") || p.slice(p.lastIndexOf("/") + 1).startsWith(".snapbundle-lease-");

/** Load `bytes` into a fresh home and check the invariants. */
export async function runCase(bytes: Uint8Array, timeoutMs = 20_000): Promise<CaseResult> {
  const t = await buildTemplate();
  const vol = freshVolume(t, bytes);
  const fs = memFs(vol);
  const spy = new FaultyFs(fs);
  const store = new SnapshotStore(spy, HOME);
  const before = await fingerprint(fs);
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`TIMEOUT: the load did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  let error: unknown = null;
  try {
    await Promise.race([store.load(ARCHIVE), timeout]);
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
  }
  const ms = Date.now() - started;
  const outcome = error === null ? "ok" : error instanceof Error ? error.constructor.name : typeof error;
  const message = error === null ? "" : String((error as Error)?.message ?? error);
  const violation = await judge(fs, spy, before, error);
  return { outcome, message, violation, ms };
}

async function judge(fs: FileSystem, spy: FaultyFs, before: Map<string, string>, error: unknown): Promise<string | null> {
  if (error !== null && !(error instanceof SnapbundleError)) {
    return `untyped ${(error as Error)?.constructor?.name ?? typeof error}: ${(error as Error)?.message ?? String(error)}\n${(error as Error)?.stack ?? ""}`;
  }
  // files are written only in staging (or the index's temporary)
  for (const op of spy.ops) {
    if (op.kind === "open" && op.mode !== "r" && !isStaging(op.path)) return `opened ${op.path} for writing (${op.mode}) outside staging`;
  }
  const after = await fingerprint(fs, (p) => p === `${HOME}/snapshots/.snapbundle-index.json`);
  const beforeNoIndex = new Map([...before].filter(([k]) => k !== `${HOME}/snapshots/.snapbundle-index.json`));
  const d = diff(beforeNoIndex, after);
  if (error !== null) {
    return d.length === 0 ? null : `a failed load (${(error as Error).name}: ${(error as Error).message}) changed the volume: ${d.slice(0, 8).join(" ")}`;
  }
  // success: only additions under snapshots/ and cache/, and everything listed verifies
  const bad = d.filter((x) => !x.startsWith("+") || !(x.startsWith(`+${HOME}/snapshots/`) || x.startsWith(`+${HOME}/cache/`)) || isStaging(x.slice(1)));
  if (bad.length > 0) return `a successful load changed more than it added: ${bad.slice(0, 8).join(" ")}`;
  const store = new SnapshotStore(fs, HOME);
  const { snapshots, problems } = await store.list();
  if (problems.length > 0) return `after a successful load list reports problems: ${problems.map((p) => p.message).join("; ")}`;
  for (const s of snapshots) {
    try {
      await store.verify(s.path);
    } catch (e) {
      return `after a successful load ${s.path} does not verify: ${(e as Error).message}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------- mutations

/** One change to an input. */
export type Mutation =
  | { kind: "flip"; pos: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "insertBlock"; block: number; fill: "zero" | "random" | "copy"; from: number; salt: number }
  | { kind: "deleteBlock"; block: number }
  | { kind: "field"; header: number; field: FieldName; value: number; fixChecksum: boolean }
  | { kind: "sizeLie"; header: number; delta: number; fixChecksum: boolean }
  | { kind: "zstdHeader"; part: "fhd" | "wd" | "fcs" | "block"; value: number }
  | { kind: "insertBytes"; pos: number; bytes: Uint8Array }
  | { kind: "entry"; op: "swap" | "dup" | "drop"; a: number; b: number }
  | { kind: "meta"; at: number; type: "x" | "g" | "L" | "K"; record: number; value: number }
  | { kind: "deleteBytes"; pos: number; len: number };

const FIELDS = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8],
  prefix: [345, 155],
  sparse0: [386, 24],
  sparse3: [458, 24],
  isextended: [482, 1],
  realsize: [483, 12],
} as const;
type FieldName = keyof typeof FIELDS;

const enc = new TextEncoder();

/** Extreme values for a field, indexed by `value`. */
function extreme(field: FieldName, len: number, value: number, original: Uint8Array): Uint8Array {
  const b = new Uint8Array(len);
  const octal = (s: string) => {
    const bytes = enc.encode(s);
    b.set(bytes.subarray(0, len));
    return b;
  };
  const base256 = (big: bigint, negative = false) => {
    let x = negative ? (1n << BigInt(8 * len)) + big : big;
    for (let i = len - 1; i >= 0; i--) {
      b[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    if (!negative) b[0]! |= 0x80;
    return b;
  };
  if (field === "name" || field === "linkname" || field === "prefix") {
    const names = [
      "", "../etc/passwd", "/abs/manifest.json", "a/./b", "sha256-0000000000000000/../x", "cache/layers/evil.erofs", "cache/manifests/x.json",
      "cache/tmp/x", "sha256-0000000000000000/", "sha256-0000000000000000/manifest.json", "x/y/z/w", "\xff\xfe", "a".repeat(len), "dir/", ".", "..", "cache/",
    ];
    const n = names[value % names.length]!;
    if (n === "\xff\xfe") return new Uint8Array([0xff, 0xfe, 0x2f, 0x61]);
    return octal(n);
  }
  if (field === "typeflag") return enc.encode("0123456789gxLKSMVDZ\0 "[value % 21]);
  if (field === "magic") return octal(["ustar\x0000", "ustar  \0", "tarus\x0000", "\0\0\0\0\0\0\0\0", "ustar\0"][value % 5]!);
  if (field === "isextended") return new Uint8Array([[0, 1, 0xff][value % 3]!]);
  const numeric = [
    () => octal("7".repeat(len - 1) + "\0"),
    () => octal("0".repeat(len - 1) + "\0"),
    () => b, // all NUL
    () => b.fill(0x20),
    () => b.fill(0xff),
    () => base256((1n << BigInt(Math.min(62, 8 * len - 2))) - 1n), // base-256 huge
    () => base256(BigInt(value % 100_000)), // base-256 small
    () => base256(-1n, true), // base-256 negative
    () => octal("-1\0"),
    () => octal("99999999999".slice(0, len - 1) + "\0"),
    () => {
      const v = octalField(original);
      return octal(Math.max(0, v + ((value >> 4) % 2 === 0 ? 1 : -1)).toString(8).padStart(len - 1, "0") + "\0");
    },
    () => octal(((value >>> 4) % 2 ** 30).toString(8).padStart(len - 1, "0").slice(-(len - 1)) + "\0"),
    () => octal(" 1 2 3"),
    () => octal("0x10"),
  ];
  return numeric[value % numeric.length]!();
}

function fixChecksum(buf: Uint8Array, off: number): void {
  if (off + 512 > buf.length) return;
  const h = buf.subarray(off, off + 512);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of h) sum += x;
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

/** Offsets of a zstd frame's parts: frame header descriptor, window descriptor (or -1), content size, first block header. */
function zstdLayout(b: Uint8Array): { fhd: number; wd: number; fcs: number; fcsLen: number; block: number } {
  const fhd = b[4] ?? 0;
  const single = (fhd >> 5) & 1;
  const didLen = [0, 1, 2, 4][fhd & 3]!;
  const fcsFlag = fhd >> 6;
  const fcsLen = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  const wd = single ? -1 : 5;
  const fcs = 5 + (single ? 0 : 1) + didLen;
  return { fhd: 4, wd, fcs, fcsLen, block: fcs + fcsLen };
}

/** Where the last entry of a well-formed tar ends (the end-of-archive marker starts). */
function endOfEntries(tar: Uint8Array, headers: readonly number[]): number {
  const last = headers[headers.length - 1]!;
  const h = tar.subarray(last, last + 512);
  let next = last + 512;
  if (h[156] === 0x53) for (let ext = h[482]; ext; next += 512) ext = tar[next + 504];
  return next + Math.ceil(octalField(h.subarray(124, 136)) / 512) * 512;
}

/** A PAX record `"<len> key=value\n"` with the right length. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = enc.encode(body).length;
  let len = n + 1;
  while (String(len).length + n !== len) len++;
  return `${len}${body}`;
}

/** The data of a PAX or long-name header: sane, hostile and malformed records. */
function metaBody(type: "x" | "g" | "L" | "K", record: number, value: number): Uint8Array {
  if (type === "L" || type === "K") {
    const names = ["sha256-0000000000000000/manifest.json", "../../evil", "/etc/passwd", "a".repeat(300), "cache/layers/x.erofs", "x\0y", "sha256-0000000000000000/" + "b".repeat(200), ""];
    return enc.encode(names[record % names.length]! + (value % 2 ? "\0" : ""));
  }
  const n = String(value);
  const records = [
    paxRecord("path", "../escape"),
    paxRecord("path", "/abs/file"),
    paxRecord("path", "sha256-0000000000000000/upper.ext4"),
    paxRecord("path", "cache/layers/evil.erofs"),
    paxRecord("size", n),
    paxRecord("size", "-1"),
    paxRecord("size", "99999999999999999999999"),
    paxRecord("size", "1e3"),
    paxRecord("linkpath", "/etc/shadow"),
    paxRecord("mtime", "1e400"),
    paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") + paxRecord("GNU.sparse.realsize", n) + paxRecord("GNU.sparse.name", "a/upper.ext4"),
    paxRecord("GNU.sparse.size", n) + paxRecord("GNU.sparse.numblocks", String(value % 5)) + paxRecord("GNU.sparse.offset", "0") + paxRecord("GNU.sparse.numbytes", n),
    paxRecord("GNU.sparse.map", `0,${n},${n},1`),
    paxRecord("hdrcharset", "BINARY") + paxRecord("path", "caf\u00e9"),
    paxRecord("comment", "x".repeat(value % 5000)),
    "99999 path=x\n",
    "0 x=\n",
    "12 path=abc",
    `${n} size=1\n`,
    "5 a=\n",
  ];
  return enc.encode(records[record % records.length]!);
}

export function mutate(input: Uint8Array, headers: readonly number[], muts: readonly Mutation[]): Uint8Array {
  let buf: Uint8Array = input.slice();
  for (const m of muts) {
    if (buf.length === 0) break;
    switch (m.kind) {
      case "flip":
        buf[m.pos % buf.length]! ^= 1 << m.bit;
        break;
      case "truncate":
        buf = buf.slice(0, m.at % buf.length);
        break;
      case "insertBlock": {
        const blocks = Math.floor(buf.length / 512);
        const at = (m.block % (blocks + 1)) * 512;
        let block: Uint8Array = new Uint8Array(512);
        if (m.fill === "random") block = noise(512, m.salt + 1);
        if (m.fill === "copy" && blocks > 0) block = buf.slice((m.from % blocks) * 512, (m.from % blocks) * 512 + 512);
        const out = new Uint8Array(buf.length + 512);
        out.set(buf.subarray(0, at));
        out.set(block, at);
        out.set(buf.subarray(at), at + 512);
        buf = out;
        break;
      }
      case "deleteBlock": {
        const blocks = Math.floor(buf.length / 512);
        if (blocks === 0) break;
        const at = (m.block % blocks) * 512;
        const out = new Uint8Array(buf.length - 512);
        out.set(buf.subarray(0, at));
        out.set(buf.subarray(at + 512), at);
        buf = out;
        break;
      }
      case "field": {
        if (headers.length === 0) break;
        const off = headers[m.header % headers.length]!;
        const [fo, len] = FIELDS[m.field];
        if (off + fo + len > buf.length) break;
        buf.set(extreme(m.field, len, m.value, buf.subarray(off + fo, off + fo + len)), off + fo);
        if (m.fixChecksum && m.field !== "chksum") fixChecksum(buf, off);
        break;
      }
      case "sizeLie": {
        if (headers.length === 0) break;
        const off = headers[m.header % headers.length]!;
        if (off + 512 > buf.length) break;
        const size = octalField(buf.subarray(off + 124, off + 136));
        const lie = Math.max(0, size + m.delta);
        buf.set(enc.encode(lie.toString(8).padStart(11, "0").slice(-11) + "\0"), off + 124);
        if (m.fixChecksum) fixChecksum(buf, off);
        break;
      }
      case "zstdHeader": {
        const l = zstdLayout(buf);
        if (m.part === "fhd") {
          const vals = [0x00, 0x20, 0x24, 0x40, 0x60, 0x80, 0xa0, 0xc0, 0xe0, 0x08, 0x10, 0x03, 0x01, 0x04, 0xff];
          buf[l.fhd] = vals[m.value % vals.length]!;
        } else if (m.part === "wd" && l.wd >= 0 && l.wd < buf.length) {
          // exponent 13 (8 MiB) is the limit; 14+ must be refused before any decoding
          const vals = [0x00, 0x68, 0x69, 0x6f, 0x70, 0x78, 0x80, 0xb8, 0xf8, 0xff, 0x07];
          buf[l.wd] = vals[m.value % vals.length]!;
        } else if (m.part === "fcs") {
          for (let i = 0; i < l.fcsLen && l.fcs + i < buf.length; i++) buf[l.fcs + i] = m.value % 2 === 0 ? 0xff : (m.value >> (i * 3)) & 0xff;
        } else if (m.part === "block" && l.block + 3 <= buf.length) {
          const hdr = [[0xff, 0xff, 0xff], [0x07, 0x00, 0x00], [0x06, 0x00, 0x00], [0x01, 0x00, 0x00], [0xfd, 0xff, 0x0f], [0x05, 0x00, 0x40]][m.value % 6]!;
          buf.set(hdr, l.block);
        }
        break;
      }
      case "insertBytes": {
        const at = m.pos % (buf.length + 1);
        const out = new Uint8Array(buf.length + m.bytes.length);
        out.set(buf.subarray(0, at));
        out.set(m.bytes, at);
        out.set(buf.subarray(at), at + m.bytes.length);
        buf = out;
        break;
      }
      case "entry": {
        // whole entries (header + data) taken from the seed's layout: reorder, repeat, leave out
        if (headers.length < 2 || buf.length !== input.length) break;
        const ends = [...headers.slice(1), endOfEntries(buf, headers)];
        const span = (i: number) => buf.slice(headers[i]!, ends[i]!);
        const i = m.a % headers.length;
        const j = m.b % headers.length;
        const parts = headers.map((_, k) => span(k));
        if (m.op === "swap") [parts[i], parts[j]] = [parts[j]!, parts[i]!];
        else if (m.op === "dup") parts.splice(j, 0, span(i));
        else parts.splice(i, 1);
        const tail = buf.slice(ends[ends.length - 1]!);
        buf = concat([...parts, tail]);
        break;
      }
      case "meta": {
        // a PAX (x/g) or GNU long-name/long-link (L/K) header before an entry
        const off = headers.length === 0 ? 0 : Math.min(headers[m.at % headers.length]!, buf.length);
        const body = metaBody(m.type, m.record, m.value);
        const block = new Uint8Array(512);
        block.set(enc.encode(m.type === "x" || m.type === "g" ? "PaxHeader/x" : "././@LongLink"));
        block.set(enc.encode("0000644\0"), 100);
        block.set(enc.encode(body.length.toString(8).padStart(11, "0") + "\0"), 124);
        block.set(enc.encode("00000000000\0"), 136);
        block[156] = m.type.charCodeAt(0);
        block.set(enc.encode("ustar  \0"), 257);
        fixChecksum(block, 0);
        const data = new Uint8Array(Math.ceil(body.length / 512) * 512);
        data.set(body);
        buf = concat([buf.subarray(0, off), block, data, buf.subarray(off)]);
        break;
      }
      case "deleteBytes": {
        const at = m.pos % buf.length;
        buf = new Uint8Array([...buf.subarray(0, at), ...buf.subarray(Math.min(buf.length, at + m.len))]);
        break;
      }
    }
  }
  return buf;
}

const pos = fc.nat({ max: 1 << 20 });
const tarMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("flip" as const), pos, bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: pos }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("insertBlock" as const), block: fc.nat(200), fill: fc.constantFrom("zero" as const, "random" as const, "copy" as const), from: fc.nat(200), salt: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteBlock" as const), block: fc.nat(200) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("field" as const),
      header: fc.nat(20),
      field: fc.constantFrom(...(Object.keys(FIELDS) as FieldName[])),
      value: fc.nat(1 << 20),
      fixChecksum: fc.integer({ min: 0, max: 9 }).map((v) => v < 7),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("entry" as const), op: fc.constantFrom("swap" as const, "dup" as const, "drop" as const), a: fc.nat(20), b: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("meta" as const), at: fc.nat(20), type: fc.constantFrom("x" as const, "g" as const, "L" as const, "K" as const), record: fc.nat(40), value: fc.oneof(fc.nat(70_000), fc.constantFrom(0, 1, 512, 2 ** 31, 2 ** 53, 2 ** 40)) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("sizeLie" as const), header: fc.nat(20), delta: fc.oneof(fc.integer({ min: -2048, max: 2048 }), fc.constantFrom(-1, 1, 511, 512, 513, -512, 1 << 20, 1 << 30, 2 ** 33)), fixChecksum: fc.constant(true) }) },
);
const zstdMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("flip" as const), pos: fc.oneof(fc.nat(24), pos), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: pos }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("zstdHeader" as const), part: fc.constantFrom("fhd" as const, "wd" as const, "fcs" as const, "block" as const), value: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("insertBytes" as const), pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deleteBytes" as const), pos, len: fc.integer({ min: 1, max: 64 }) }) },
);

/** One fuzz case: which seed, at which layer, which mutations. */
export interface FuzzInput {
  seed: number;
  /** `raw`: mutate the bytes as saved; `tar`: mutate the tar, then compress again if the seed is zstd. */
  layer: "raw" | "tar";
  muts: Mutation[];
}

export function inputArbitrary(seeds: readonly Seed[]): fc.Arbitrary<FuzzInput> {
  return fc.integer({ min: 0, max: seeds.length - 1 }).chain((seed) => {
    const s = seeds[seed]!;
    const tarCase = fc.record({ seed: fc.constant(seed), layer: fc.constant("tar" as const), muts: fc.array(tarMutation, { minLength: 1, maxLength: 4 }) });
    if (!s.zstd) return tarCase;
    const rawCase = fc.record({ seed: fc.constant(seed), layer: fc.constant("raw" as const), muts: fc.array(zstdMutation, { minLength: 1, maxLength: 3 }) });
    return fc.oneof(rawCase, tarCase);
  });
}

/** The bytes of a fuzz case. */
export async function materialize(seeds: readonly Seed[], input: FuzzInput): Promise<Uint8Array> {
  const s = seeds[input.seed]!;
  if (input.layer === "raw") return mutate(s.bytes, s.headers, input.muts);
  const tar = mutate(s.tar, s.headers, input.muts);
  return s.zstd ? zstd(tar) : tar;
}

// ---------------------------------------------------------------- the run

export interface FuzzSummary {
  cases: number;
  outcomes: Record<string, number>;
  maxRssGrowthMiB: number;
  slowestMs: number;
}

export interface FuzzOptions {
  runs: number;
  seed?: number;
  /** rss may grow at most this much above the start (default 1 GiB). */
  maxRssGrowthMiB?: number;
  timeoutMs?: number;
  /** Called for each case (e.g. to collect a corpus). */
  onCase?: (bytes: Uint8Array, result: CaseResult, input: FuzzInput) => void;
}

const rssMiB = () => process.memoryUsage().rss / (1 << 20);

/**
 * Run `runs` fast-check cases; throws (with the shrunk counterexample) on the
 * first violation, untyped error, hang or runaway memory.
 */
export async function fuzzLoader(options: FuzzOptions): Promise<FuzzSummary> {
  const seeds = await buildSeeds();
  await buildTemplate();
  const summary: FuzzSummary = { cases: 0, outcomes: {}, maxRssGrowthMiB: 0, slowestMs: 0 };
  // warm up (WASM modules, template) before taking the baseline
  await runCase(seeds[1]!.bytes);
  const baseline = rssMiB();
  const limit = options.maxRssGrowthMiB ?? 1024;
  await fc.assert(
    fc.asyncProperty(inputArbitrary(seeds), async (input) => {
      const bytes = await materialize(seeds, input);
      const r = await runCase(bytes, options.timeoutMs);
      summary.cases++;
      summary.outcomes[r.outcome] = (summary.outcomes[r.outcome] ?? 0) + 1;
      summary.slowestMs = Math.max(summary.slowestMs, r.ms);
      const growth = rssMiB() - baseline;
      summary.maxRssGrowthMiB = Math.max(summary.maxRssGrowthMiB, Math.round(growth));
      options.onCase?.(bytes, r, input);
      if (r.violation) throw new Error(`${seeds[input.seed]!.name}: ${r.violation}`);
      if (growth > limit) throw new Error(`rss grew by ${Math.round(growth)} MiB (limit ${limit}) after a case ending in ${r.outcome}: ${r.message}`);
    }),
    { numRuns: options.runs, seed: options.seed, endOnFailure: false, verbose: 1 },
  );
  return summary;
}

// ---------------------------------------------------------------- script

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv.includes("--run")) {
  const runs = Number(arg("--runs") ?? 20_000);
  const seed = arg("--seed") === undefined ? Date.now() % 1_000_000 : Number(arg("--seed"));
  const collect = arg("--collect");
  const kept = new Map<string, number>();
  if (collect) mkdirSync(collect, { recursive: true });
  const started = Date.now();
  console.log(`fuzzing the loader: ${runs} cases, seed ${seed}`);
  let n = 0;
  const summary = await fuzzLoader({
    runs,
    seed,
    onCase: (bytes, r, input) => {
      if (++n % 1000 === 0) console.log(`  ${n} cases, ${Math.round((Date.now() - started) / 1000)} s`);
      if (!collect) return;
      const key = `${r.outcome}`;
      const have = kept.get(key) ?? 0;
      if (have >= 4 && !r.violation) return;
      kept.set(key, have + 1);
      const name = `${r.violation ? "violation" : r.outcome}-${have}-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}`;
      writeFileSync(`${collect}/${name}.bin`, bytes);
      writeFileSync(`${collect}/${name}.json`, JSON.stringify({ outcome: r.outcome, message: r.message, input }, (_, v) => (v instanceof Uint8Array ? [...v] : v), 1));
    },
  });
  console.log(JSON.stringify({ ...summary, seconds: Math.round((Date.now() - started) / 1000) }, null, 1));
}
