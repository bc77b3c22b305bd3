/**
 * Deliberately simple second implementations for the microsandbox 0.6 hashes,
 * written straight from docs/format.md §9 and sharing no code with src/: the whole
 * file in memory, every leaf hashed (no zero shortcuts), the tree reduced
 * level by level. BLAKE3 itself comes from the `b3sum` CLI, an implementation
 * independent of the one under test (wasm/, our blake3.wasm); the hash function
 * is a parameter, so the same reference also runs over wasm/'s
 * {@link wasmBlake3} for the cross-check. Only wasm/ imports hash-wasm.
 *
 * Also builders for 0.6 artifacts (descriptor text written by hand from the
 * spec's field order) so tests do not depend on our own serializer.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { blake3Hex } from "../../wasm/mod.js";
import type { FileSystem } from "../../src/fs/types.js";
import { concatBytes } from "./tar-craft.js";

/**
 * BLAKE3-256 of each buffer, in order. Batched: the reference hashes a whole
 * tree level in one call, which {@link b3sumBlake3} makes one `b3sum` run.
 */
export type Blake3Fn = (inputs: readonly Uint8Array[]) => Promise<Uint8Array[]>;

const fromHex = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The `b3sum` CLI: the independent BLAKE3 the references use by default. */
export const b3sumBlake3: Blake3Fn = async (inputs) => b3sumHexAll(inputs).map(fromHex);

/** wasm/'s BLAKE3 (the implementation under test), to cross-check the reference against. */
export const wasmBlake3: Blake3Fn = async (inputs) => Promise.all(inputs.map(async (d) => fromHex(await blake3Hex(d))));

/** `b3sum --no-names` of the bytes. */
export function b3sumHex(data: Uint8Array): string {
  return b3sumHexAll([data])[0]!;
}

/** Files per `b3sum` run: well inside any argument-list limit. */
const B3SUM_BATCH = 512;

/**
 * `b3sum --no-names` of each buffer, through temporary files (Deno's
 * execFileSync does not pipe large stdin reliably), one run per batch.
 */
function b3sumHexAll(inputs: readonly Uint8Array[]): string[] {
  if (inputs.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), "msb06-b3-"));
  try {
    const out: string[] = [];
    for (let at = 0; at < inputs.length; at += B3SUM_BATCH) {
      const files = inputs.slice(at, at + B3SUM_BATCH).map((data, i) => {
        const path = join(dir, String(at + i));
        writeFileSync(path, data);
        return path;
      });
      out.push(...b3sum(files).trim().split("\n"));
      for (const f of files) rmSync(f);
    }
    if (out.length !== inputs.length) throw new Error(`b3sum printed ${out.length} digests for ${inputs.length} inputs`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function b3sum(files: readonly string[]): string {
  try {
    return execFileSync("b3sum", ["--no-names", ...files], { encoding: "utf8", maxBuffer: 1 << 26 });
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new Error("b3sum is not installed (apt-get install -y b3sum): the microsandbox 0.6 reference hashes use it as their independent BLAKE3");
    }
    throw e;
  }
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}
function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

const text = (s: string) => new TextEncoder().encode(s);

/** `msb-file-merkle-blake3-v1` root of `bytes`, the obvious way. */
export async function referenceMerkleRoot(bytes: Uint8Array, hash: Blake3Fn = b3sumBlake3): Promise<string> {
  const LEAF = 65536;
  const tag = "msb-file-merkle-blake3-v1\0";
  const count = Math.max(1, Math.ceil(bytes.length / LEAF));
  let width = 1;
  while (width < count) width *= 2;
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < width; i++) {
    const leaf = new Uint8Array(LEAF);
    if (i < count) leaf.set(bytes.subarray(i * LEAF, Math.min(bytes.length, (i + 1) * LEAF)));
    leaves.push(concatBytes(text(`${tag}leaf\0`), leaf));
  }
  let level = await hash(leaves);
  let height = 0;
  while (level.length > 1) {
    const parents: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) parents.push(concatBytes(text(`${tag}parent\0`), level[i]!, level[i + 1]!));
    level = await hash(parents);
    height++;
  }
  const [root] = await hash([concatBytes(text(`${tag}root\0`), u64(bytes.length), u32(LEAF), u32(height), level[0]!)]);
  return `blake3:${toHex(root!)}`;
}

/**
 * `msb-archive-member-blake3-v1` of one archive member: kind, path, sizes,
 * the sparse descriptors exactly as written (terminator included; none for a
 * regular entry), then the stored bytes.
 */
export async function referenceMemberHash(
  member: { kind: string; path: string; encodedSize: number; apparentSize: number; ranges: readonly [number, number][]; stored: Uint8Array },
  hash: Blake3Fn = b3sumBlake3,
): Promise<string> {
  const kind = text(member.kind);
  const path = text(member.path);
  const parts = [text("msb-archive-member-blake3-v1\0"), u64(kind.length), kind, u64(path.length), path, u64(member.encodedSize), u64(member.apparentSize), u64(member.ranges.length)];
  for (const [o, l] of member.ranges) parts.push(u64(o), u64(l));
  parts.push(member.stored);
  const [digest] = await hash([concatBytes(...parts)]);
  return `blake3:${toHex(digest!)}`;
}

/** Plain `sha256:<hex>` with node:crypto. */
export function sha256Of(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** `msb-sparse-sha256-v1` with node:crypto. */
export function sparseSha256Of(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(text("msb-sparse-sha256-v1\0")).update(u64(bytes.length)).update(bytes).digest("hex")}`;
}

/** The spec's §2 inputs as a 0.6 descriptor, written by hand in upstream's field order. */
export interface Descriptor06 {
  scope?: "disk" | "resumable";
  created_at?: string;
  parent?: string | null;
  image?: { ref: string; manifest_digest: string };
  source_sandbox?: string | null;
  /** Raw JSON text of `state`. */
  state: string;
  labels?: Record<string, string>;
  /** Raw JSON text of `extensions`. */
  extensions?: string;
  requires?: string[];
}

export const IMAGE06 = { ref: "docker.io/library/python:3.12", manifest_digest: `sha256:${"a".repeat(64)}` };

/** Descriptor JSON text, compact, in upstream's field order; labels sorted (ASCII keys in tests). */
export function descriptorText(d: Descriptor06): string {
  const s = JSON.stringify;
  const labels = Object.keys(d.labels ?? {})
    .sort()
    .map((k) => `${s(k)}:${s(d.labels![k])}`)
    .join(",");
  const image = d.image ?? IMAGE06;
  return (
    `{"schema":1,"artifact":"snapshot","scope":${s(d.scope ?? "disk")},"created_at":${s(d.created_at ?? "2026-05-01T12:00:00Z")},` +
    `"parent":${d.parent == null ? "null" : s(d.parent)},"image":{"ref":${s(image.ref)},"manifest_digest":${s(image.manifest_digest)}},` +
    `"source_sandbox":${d.source_sandbox == null ? "null" : s(d.source_sandbox)},"state":${d.state},"labels":{${labels}},` +
    `"extensions":${d.extensions ?? "{}"},"requires":${s(d.requires ?? [])}}`
  );
}

/** `state` text for a file state. `integrity` is raw JSON text or "null". */
export function fileState(size: number, integrity: string, file = "upper.ext4"): string {
  return `{"kind":"file","format":"raw","fstype":"ext4","upper":{"file":${JSON.stringify(file)},"size_bytes":${size},"integrity":${integrity}}}`;
}

/** Integrity JSON text of `bytes` for an algorithm, computed by the reference implementations. */
export async function integrityText(alg: "sha256" | "msb-sparse-sha256-v1" | "msb-file-merkle-blake3-v1" | null, bytes: Uint8Array): Promise<string> {
  if (alg === null) return "null";
  if (alg === "sha256") return `{"algorithm":"sha256","digest":"${sha256Of(bytes)}"}`;
  if (alg === "msb-sparse-sha256-v1") return `{"algorithm":"msb-sparse-sha256-v1","digest":"${sparseSha256Of(bytes)}"}`;
  return `{"algorithm":"msb-file-merkle-blake3-v1","root":"${await referenceMerkleRoot(bytes)}","logical_size":${bytes.length},"leaf_size":65536}`;
}

/**
 * Write a 0.6 artifact at `dir`: the payload (sparse: only the given pieces
 * are written, the rest stays a hole) and `snapshot.json`. Returns the
 * descriptor text and its digest (sha256 of the text, which is canonical).
 */
export async function write06(
  fs: FileSystem,
  dir: string,
  opts: {
    size: number;
    pieces?: [number, Uint8Array][];
    integrity?: "sha256" | "msb-sparse-sha256-v1" | "msb-file-merkle-blake3-v1" | null;
    parent?: string | null;
    created_at?: string;
    labels?: Record<string, string>;
    image?: { ref: string; manifest_digest: string };
  },
): Promise<{ text: string; digest: string; bytes: Uint8Array }> {
  const bytes = new Uint8Array(opts.size);
  for (const [o, d] of opts.pieces ?? []) bytes.set(d, o);
  await fs.mkdir(dir, { recursive: true });
  const h = await fs.open(`${dir}/upper.ext4`, "w");
  try {
    for (const [o, d] of opts.pieces ?? []) await h.write(d, o);
    await h.setLength(opts.size);
  } finally {
    await h.close();
  }
  const t = descriptorText({
    state: fileState(opts.size, await integrityText(opts.integrity ?? null, bytes)),
    parent: opts.parent ?? null,
    created_at: opts.created_at,
    labels: opts.labels,
    image: opts.image,
  });
  const w = await fs.open(`${dir}/snapshot.json`, "w");
  try {
    await w.write(text(t), 0);
  } finally {
    await w.close();
  }
  return { text: t, digest: sha256Of(text(t)), bytes };
}

/** Write a checkpoint-state 0.6 artifact (no payload). */
export async function writeCheckpoint06(fs: FileSystem, dir: string): Promise<{ text: string; digest: string }> {
  const t = descriptorText({ scope: "resumable", state: `{"kind":"checkpoint","checkpoint_id":"ckpt-1","manifest":"sha256:${"c".repeat(64)}"}` });
  await fs.mkdir(dir, { recursive: true });
  const w = await fs.open(`${dir}/snapshot.json`, "w");
  try {
    await w.write(text(t), 0);
  } finally {
    await w.close();
  }
  return { text: t, digest: sha256Of(text(t)) };
}

/** Read a file from the host filesystem (for b3sum comparisons of real files). */
export function readHostFile(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** One snapshot of a hand-crafted 0.6 bundle: its descriptor text and dense payload. */
export interface Crafted06 {
  readonly text: string;
  readonly payload: Uint8Array | null;
  readonly integrity: string; // JSON text of the payload integrity, as in the descriptor
  readonly file?: string;
}

/** A crafted 0.6 snapshot from payload bytes (integrity by the reference implementations). */
export async function crafted06(payload: Uint8Array, alg: "sha256" | "msb-sparse-sha256-v1" | "msb-file-merkle-blake3-v1" | null, parent: string | null = null): Promise<Crafted06 & { digest: string }> {
  const integrity = await integrityText(alg, payload);
  const t = descriptorText({ state: fileState(payload.length, integrity), parent });
  return { text: t, payload, integrity, digest: sha256Of(text(t)) };
}

/**
 * The members and inventory object of a 0.6 bundle built by hand from the
 * spec (no code from src/): `mutate` may change the inventory object (field
 * order is kept by JSON.stringify) or the member list before it is written.
 */
export async function craftBundle06(
  snaps: readonly (Crafted06 & { digest: string })[],
  opts: { memberHashes: boolean; mutate?: (inv: any, members: { path: string; data: Uint8Array }[]) => void; inventoryText?: (t: string) => string } = { memberHashes: true },
): Promise<{ members: { path: string; data: Uint8Array }[]; inventory: any }> {
  const members: { path: string; data: Uint8Array }[] = [];
  const entries: any[] = [];
  for (const s of snaps) {
    const hex = s.digest.slice(7);
    const d = { path: `snapshots/${hex}/snapshot.json`, data: text(s.text) };
    members.push(d);
    entries.push({ path: d.path, owner_snapshot: s.digest, kind: "snapshot-descriptor", included: true, encoded_size: d.data.length, apparent_size: d.data.length, integrity: { algorithm: "sha256", digest: s.digest } });
    if (s.payload !== null) {
      const p = { path: `files/${hex}/${s.file ?? "upper.ext4"}`, data: s.payload };
      members.push(p);
      entries.push({ path: p.path, owner_snapshot: s.digest, kind: "file-payload", included: true, encoded_size: p.data.length, apparent_size: p.data.length, integrity: JSON.parse(s.integrity) });
    }
  }
  if (opts.memberHashes) {
    for (const e of entries) {
      const m = members.find((x) => x.path === e.path)!;
      e.transport_integrity = { algorithm: "msb-archive-member-blake3-v1", digest: await referenceMemberHash({ kind: e.kind, path: e.path, encodedSize: m.data.length, apparentSize: m.data.length, ranges: [], stored: m.data }) };
    }
  }
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const head = snaps[snaps.length - 1]!.digest;
  const inventory: any = {
    schema: 1,
    artifact: "snapshot-archive",
    head,
    suggested_name: "crafted",
    completeness: "boot-complete",
    with_parents: snaps.length > 1,
    with_image: false,
    snapshots: snaps.map((s) => ({ snapshot_id: s.digest, descriptor: `snapshots/${s.digest.slice(7)}/snapshot.json` })).sort((a, b) => (a.snapshot_id < b.snapshot_id ? -1 : 1)),
    entries,
    protection_requirements: [],
    extensions: {},
    requires: opts.memberHashes ? ["msb-archive-member-blake3-v1"] : [],
  };
  opts.mutate?.(inventory, members);
  let inv = JSON.stringify(inventory);
  if (opts.inventoryText) inv = opts.inventoryText(inv);
  members.push({ path: "archive.json", data: text(inv) });
  return { members, inventory };
}
