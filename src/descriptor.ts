/**
 * The microsandbox 0.6 snapshot descriptor (`snapshot.json`, schema 1):
 * strict parsing, validation, the normalized canonical form and the snapshot
 * digest (docs/format.md §4).
 *
 * Stricter than `manifest.json`: every digest is `sha256:` + 64 lowercase hex,
 * `created_at` is RFC 3339 and normalized to UTC, `extensions` values are
 * key-sorted recursively. Field names stay exactly as on disk.
 *
 * @example
 * ```ts
 * import { parseDescriptor, canonicalDescriptorText, descriptorDigest } from "./descriptor.js";
 * const d = parseDescriptor(bytes, "/home/snapshots/a/snapshot.json");
 * canonicalDescriptorText(d); // '{"schema":1,"artifact":"snapshot",…}'
 * await descriptorDigest(d);  // "sha256:…"
 * ```
 * @module
 */

import { sha256Hex } from "../wasm/mod.js";
import { InvalidManifest } from "./errors.js";
import { compareCodePoints, type JsonValue, serdeValueText } from "./json.js";
import { type Manifest, parseJsonDocument, SPARSE_SHA256 } from "./manifest.js";
import { isSha256Digest } from "./reference.js";

/** The file name of a 0.6 descriptor inside a snapshot directory. */
export const DESCRIPTOR_FILENAME = "snapshot.json";
/** The largest descriptor snapbundle reads (1 MiB, as for `manifest.json`). */
export const MAX_DESCRIPTOR_BYTES = 1 << 20;
/** The BLAKE3 Merkle integrity algorithm of microsandbox 0.6.9+. */
export const MERKLE_BLAKE3 = "msb-file-merkle-blake3-v1";
/** The only leaf size {@link MERKLE_BLAKE3} allows. */
export const MERKLE_LEAF_SIZE = 65536;
/** Names microsandbox 0.6 keeps beside a migrated artifact; never an upper, never a snapshot. */
export const RESERVED_ARTIFACT_NAMES: readonly string[] = ["snapshot.json", "manifest.json", ".manifest.json.legacy", ".snapshot-migration.lock"];

/** `sha256` or `msb-sparse-sha256-v1` integrity. */
export interface DigestIntegrity {
  readonly algorithm: "sha256" | typeof SPARSE_SHA256;
  readonly digest: string;
}
/** `msb-file-merkle-blake3-v1` integrity. */
export interface MerkleIntegrity {
  readonly algorithm: typeof MERKLE_BLAKE3;
  readonly root: string;
  readonly logical_size: number;
  readonly leaf_size: number;
}
/** The integrity a descriptor can record. */
export type DescriptorIntegrity = DigestIntegrity | MerkleIntegrity;

/** State captured as a file (the only state snapbundle creates). */
export interface FileState {
  readonly kind: "file";
  readonly format: "raw" | "qcow2";
  readonly fstype: string;
  readonly upper: { readonly file: string; readonly size_bytes: number; readonly integrity: DescriptorIntegrity | null };
}
/** A resumable checkpoint: no payload file in the artifact. */
export interface CheckpointState {
  readonly kind: "checkpoint";
  readonly checkpoint_id: string;
  readonly manifest: string;
}

/** A parsed, validated, normalized `snapshot.json`. */
export interface SnapshotDescriptor {
  readonly schema: 1;
  readonly artifact: "snapshot";
  readonly scope: "disk" | "resumable";
  /** Normalized: UTC, `Z`, no trailing fractional zeros. */
  readonly created_at: string;
  readonly parent: string | null;
  readonly image: { readonly ref: string; readonly manifest_digest: string };
  readonly source_sandbox: string | null;
  readonly state: FileState | CheckpointState;
  readonly labels: Readonly<Record<string, string>>;
  /** Each value's canonical JSON text (objects key-sorted recursively). */
  readonly extensions: Readonly<Record<string, string>>;
  readonly requires: readonly string[];
}

type Obj = ReadonlyMap<string, JsonValue>;

class Reader {
  constructor(readonly source: string) {}
  bad(field: string, rule: string): InvalidManifest {
    return new InvalidManifest(`${this.source}: field "${field}" ${rule}`);
  }
  fields(v: JsonValue, where: string, allowed: readonly string[]): Obj {
    if (v.kind !== "object") throw this.bad(where, "must be an object");
    const name = (k: string) => (where === "" ? k : `${where}.${k}`);
    for (const [k] of v.entries) if (!allowed.includes(k)) throw this.bad(name(k), "is not a known field");
    const map = new Map(v.entries);
    for (const k of allowed) if (!map.has(k)) throw this.bad(name(k), "is missing (every field must be present, null where allowed)");
    return map;
  }
  str(v: JsonValue, field: string, opts: { nullable?: boolean; nonEmpty?: boolean } = {}): string | null {
    if (v.kind === "null" && opts.nullable) return null;
    if (v.kind !== "string") throw this.bad(field, opts.nullable ? "must be a string or null" : "must be a string");
    if (opts.nonEmpty && v.value === "") throw this.bad(field, "must not be empty");
    return v.value;
  }
  sha256(v: JsonValue, field: string, nullable = false): string | null {
    const s = this.str(v, field, { nullable });
    if (s !== null && !isSha256Digest(s)) throw this.bad(field, `must be "sha256:" followed by 64 lowercase hex digits (got ${JSON.stringify(s)})`);
    return s;
  }
  size(v: JsonValue, field: string): number {
    // serde's u64: a plain non-negative integer literal; our bound: 2^53-1 (upstream's too)
    if (v.kind !== "number" || !/^(?:0|[1-9][0-9]*)$/.test(v.raw)) throw this.bad(field, "must be a non-negative integer");
    const n = Number(v.raw);
    if (!Number.isSafeInteger(n)) throw this.bad(field, "must not exceed 2^53-1");
    return n;
  }
}

/** True for `sha256:` + 64 lowercase hex digits (the one rule, in `reference.ts`). */
export { isSha256Digest };

/** True for `blake3:` + 64 lowercase hex digits. */
export function isBlake3Digest(s: string): boolean {
  return /^blake3:[0-9a-f]{64}$/.test(s);
}

/** True when `name` may name a 0.6 upper: one normal component and none of {@link RESERVED_ARTIFACT_NAMES}. */
export function isValidUpperFile(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0") && !RESERVED_ARTIFACT_NAMES.includes(name);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/**
 * An RFC 3339 timestamp rewritten in UTC as `YYYY-MM-DDTHH:MM:SS[.f]Z`, the
 * fraction without trailing zeros (nanosecond precision: digits beyond the
 * ninth are dropped, as chrono keeps nanoseconds). Returns `null` for text
 * that is not RFC 3339 (a `:60` leap second included) or leaves years 0–9999.
 *
 * @example
 * ```ts
 * normalizeRfc3339("2026-05-01T13:00:00.500+01:00"); // "2026-05-01T12:00:00.5Z"
 * ```
 */
export function normalizeRfc3339(text: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (mo < 1 || mo > 12 || d < 1 || d > (mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1]!) || h > 23 || mi > 59 || s > 59) return null;
  let offset = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offset = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const minutes = daysFromCivil(y, mo, d) * 1440 + h * 60 + mi - offset;
  const day = Math.floor(minutes / 1440);
  const rest = minutes - day * 1440;
  const [Y, M, D] = civilFromDays(day);
  if (Y < 0 || Y > 9999) return null;
  const frac = (m[7] ?? "").slice(0, 9).replace(/0+$/, "");
  return `${pad(Y, 4)}-${pad(M, 2)}-${pad(D, 2)}T${pad(Math.floor(rest / 60), 2)}:${pad(rest % 60, 2)}:${pad(s, 2)}${frac === "" ? "" : `.${frac}`}Z`;
}

function parseIntegrity(r: Reader, v: JsonValue, where: string, sizeBytes: number): DescriptorIntegrity | null {
  if (v.kind === "null") return null;
  if (v.kind !== "object") throw r.bad(where, "must be an object or null");
  const alg = v.entries.find(([k]) => k === "algorithm")?.[1];
  if (alg === undefined) throw r.bad(`${where}.algorithm`, "is missing");
  const algorithm = r.str(alg, `${where}.algorithm`);
  if (algorithm === "sha256" || algorithm === SPARSE_SHA256) {
    const o = r.fields(v, where, ["algorithm", "digest"]);
    return { algorithm, digest: r.sha256(o.get("digest")!, `${where}.digest`)! };
  }
  if (algorithm === MERKLE_BLAKE3) {
    const o = r.fields(v, where, ["algorithm", "root", "logical_size", "leaf_size"]);
    const root = r.str(o.get("root")!, `${where}.root`)!;
    if (!isBlake3Digest(root)) throw r.bad(`${where}.root`, `must be "blake3:" followed by 64 lowercase hex digits (got ${JSON.stringify(root)})`);
    const logical = r.size(o.get("logical_size")!, `${where}.logical_size`);
    const leaf = r.size(o.get("leaf_size")!, `${where}.leaf_size`);
    if (logical !== sizeBytes) throw r.bad(`${where}.logical_size`, `must equal state.upper.size_bytes (${logical} ≠ ${sizeBytes})`);
    if (leaf !== MERKLE_LEAF_SIZE) throw r.bad(`${where}.leaf_size`, `must be ${MERKLE_LEAF_SIZE} (got ${leaf})`);
    return { algorithm, root, logical_size: logical, leaf_size: leaf };
  }
  throw r.bad(`${where}.algorithm`, `must be "sha256", "${SPARSE_SHA256}" or "${MERKLE_BLAKE3}" (got ${JSON.stringify(algorithm)})`);
}

/**
 * Parse and validate `snapshot.json` text or bytes, normalizing it. Throws
 * {@link InvalidManifest} naming `source`, the field and the rule.
 *
 * @example
 * ```ts
 * const d = parseDescriptor(text, "/h/snapshots/a/snapshot.json");
 * d.state.kind; // "file" or "checkpoint"
 * ```
 */
export function parseDescriptor(input: string | Uint8Array, source = DESCRIPTOR_FILENAME): SnapshotDescriptor {
  const root = parseJsonDocument(input, source, "descriptor", MAX_DESCRIPTOR_BYTES);
  const r = new Reader(source);
  const top = r.fields(root, "", ["schema", "artifact", "scope", "created_at", "parent", "image", "source_sandbox", "state", "labels", "extensions", "requires"]);
  const schema = top.get("schema")!;
  if (schema.kind !== "number" || schema.raw !== "1") throw r.bad("schema", "must be 1");
  const artifact = r.str(top.get("artifact")!, "artifact");
  if (artifact !== "snapshot") throw r.bad("artifact", `must be "snapshot" (got ${JSON.stringify(artifact)})`);
  const scope = r.str(top.get("scope")!, "scope");
  if (scope !== "disk" && scope !== "resumable") throw r.bad("scope", `must be "disk" or "resumable" (got ${JSON.stringify(scope)})`);
  const createdRaw = r.str(top.get("created_at")!, "created_at")!;
  const created = normalizeRfc3339(createdRaw);
  if (created === null) throw r.bad("created_at", `must be an RFC 3339 timestamp (got ${JSON.stringify(createdRaw)})`);
  const parent = r.sha256(top.get("parent")!, "parent", true);
  const image = r.fields(top.get("image")!, "image", ["ref", "manifest_digest"]);
  const ref = r.str(image.get("ref")!, "image.ref", { nonEmpty: true })!;
  const imageDigest = r.sha256(image.get("manifest_digest")!, "image.manifest_digest")!;
  const sourceSandbox = r.str(top.get("source_sandbox")!, "source_sandbox", { nullable: true });

  const stateV = top.get("state")!;
  if (stateV.kind !== "object") throw r.bad("state", "must be an object");
  const kindV = stateV.entries.find(([k]) => k === "kind")?.[1];
  if (kindV === undefined) throw r.bad("state.kind", "is missing");
  const kind = r.str(kindV, "state.kind");
  let state: FileState | CheckpointState;
  if (kind === "file") {
    if (scope !== "disk") throw r.bad("scope", `must be "disk" for file state (got ${JSON.stringify(scope)})`);
    const st = r.fields(stateV, "state", ["kind", "format", "fstype", "upper"]);
    const format = r.str(st.get("format")!, "state.format");
    if (format !== "raw" && format !== "qcow2") throw r.bad("state.format", `must be "raw" or "qcow2" (got ${JSON.stringify(format)})`);
    const fstype = r.str(st.get("fstype")!, "state.fstype", { nonEmpty: true })!;
    const up = r.fields(st.get("upper")!, "state.upper", ["file", "size_bytes", "integrity"]);
    const file = r.str(up.get("file")!, "state.upper.file")!;
    if (!isValidUpperFile(file)) {
      throw r.bad("state.upper.file", `must be one normal path component other than ${RESERVED_ARTIFACT_NAMES.join(", ")} (got ${JSON.stringify(file)})`);
    }
    const size = r.size(up.get("size_bytes")!, "state.upper.size_bytes");
    const integrity = parseIntegrity(r, up.get("integrity")!, "state.upper.integrity", size);
    state = { kind, format, fstype, upper: { file, size_bytes: size, integrity } };
  } else if (kind === "checkpoint") {
    const st = r.fields(stateV, "state", ["kind", "checkpoint_id", "manifest"]);
    const id = r.str(st.get("checkpoint_id")!, "state.checkpoint_id", { nonEmpty: true })!;
    state = { kind, checkpoint_id: id, manifest: r.sha256(st.get("manifest")!, "state.manifest")! };
  } else throw r.bad("state.kind", `must be "file" or "checkpoint" (got ${JSON.stringify(kind)})`);

  const labelsV = top.get("labels")!;
  if (labelsV.kind !== "object") throw r.bad("labels", "must be an object of strings");
  const labels: [string, string][] = [];
  for (const [k, v] of labelsV.entries) labels.push([k, r.str(v, `labels.${k}`)!]);

  const extV = top.get("extensions")!;
  if (extV.kind !== "object") throw r.bad("extensions", "must be an object");
  const extensions: [string, string][] = [];
  for (const [k, v] of extV.entries) {
    const t = serdeValueText(v);
    if (t === null) throw r.bad(`extensions.${k}`, "holds a number outside the range of a 64-bit float");
    extensions.push([k, t]);
  }
  const reqV = top.get("requires")!;
  if (reqV.kind !== "array") throw r.bad("requires", "must be an array of strings");
  const requires = reqV.items.map((v, i) => r.str(v, `requires[${i}]`)!);
  for (let i = 0; i < requires.length; i++) {
    if (i > 0 && compareCodePoints(requires[i - 1]!, requires[i]!) >= 0) throw r.bad("requires", "must be sorted and without duplicates");
    if (!extensions.some(([k]) => k === requires[i])) throw r.bad(`requires[${i}]`, `names ${JSON.stringify(requires[i])}, which is not a key of extensions`);
  }
  return {
    schema: 1,
    artifact: "snapshot",
    scope,
    created_at: created,
    parent,
    image: { ref, manifest_digest: imageDigest },
    source_sandbox: sourceSandbox,
    state,
    labels: Object.fromEntries(labels),
    extensions: Object.fromEntries(extensions),
    requires,
  };
}

/**
 * A descriptor read from bytes that streamed past: the parsed descriptor, or
 * the {@link InvalidManifest} saying why it is not one. The error is kept,
 * not thrown, so that a load reports it at the step that opens the snapshot
 * (after the inventory checks, which may explain it: a member hash mismatch).
 */
export type DescriptorRead = { readonly descriptor: SnapshotDescriptor; readonly error: null } | { readonly descriptor: null; readonly error: InvalidManifest };

/**
 * {@link parseDescriptor}, keeping the refusal instead of throwing it (see {@link DescriptorRead}).
 *
 * @example
 * ```ts
 * const r = readDescriptor(bytes, "a.tar.zst: snapshots/ab…/snapshot.json");
 * if (r.error !== null) throw r.error;
 * ```
 */
export function readDescriptor(input: string | Uint8Array, source = DESCRIPTOR_FILENAME): DescriptorRead {
  try {
    return { descriptor: parseDescriptor(input, source), error: null };
  } catch (e) {
    if (e instanceof InvalidManifest) return { descriptor: null, error: e };
    throw e;
  }
}

function integrityText(i: DescriptorIntegrity | null): string {
  const s = JSON.stringify;
  if (i === null) return "null";
  if (i.algorithm === MERKLE_BLAKE3) return `{"algorithm":${s(i.algorithm)},"root":${s(i.root)},"logical_size":${i.logical_size},"leaf_size":${i.leaf_size}}`;
  return `{"algorithm":${s(i.algorithm)},"digest":${s(i.digest)}}`;
}

/** A recorded integrity as JSON text, in upstream's field order. */
export { integrityText as descriptorIntegrityText };

/**
 * The canonical descriptor text: compact JSON in upstream's field order,
 * labels and extensions sorted by code point, each extension value as parsed
 * and normalized.
 *
 * @example
 * ```ts
 * canonicalDescriptorText(parseDescriptor(pretty)); // the compact identity bytes as text
 * ```
 */
export function canonicalDescriptorText(d: SnapshotDescriptor): string {
  const s = JSON.stringify;
  const nullable = (v: string | null) => (v === null ? "null" : s(v));
  const sorted = (o: Readonly<Record<string, string>>, value: (v: string) => string) =>
    Object.keys(o)
      .sort(compareCodePoints)
      .map((k) => `${s(k)}:${value(o[k]!)}`)
      .join(",");
  const st = d.state;
  const state =
    st.kind === "file"
      ? `{"kind":"file","format":${s(st.format)},"fstype":${s(st.fstype)},"upper":{"file":${s(st.upper.file)},"size_bytes":${st.upper.size_bytes},"integrity":${integrityText(st.upper.integrity)}}}`
      : `{"kind":"checkpoint","checkpoint_id":${s(st.checkpoint_id)},"manifest":${s(st.manifest)}}`;
  return (
    `{"schema":1,"artifact":"snapshot","scope":${s(d.scope)},"created_at":${s(d.created_at)},"parent":${nullable(d.parent)},` +
    `"image":{"ref":${s(d.image.ref)},"manifest_digest":${s(d.image.manifest_digest)}},"source_sandbox":${nullable(d.source_sandbox)},` +
    `"state":${state},"labels":{${sorted(d.labels, s)}},"extensions":{${sorted(d.extensions, (v) => v)}},"requires":[${d.requires.map((k) => s(k)).join(",")}]}`
  );
}

/** The canonical descriptor bytes (UTF-8 of {@link canonicalDescriptorText}). */
export function canonicalDescriptor(d: SnapshotDescriptor): Uint8Array {
  return new TextEncoder().encode(canonicalDescriptorText(d));
}

/**
 * The snapshot's identity: `sha256:` + hex SHA-256 of its canonical bytes.
 *
 * @example
 * ```ts
 * await descriptorDigest(parseDescriptor(text)); // "sha256:5b9ca761…"
 * ```
 */
export async function descriptorDigest(d: SnapshotDescriptor): Promise<string> {
  return "sha256:" + (await sha256Hex(canonicalDescriptor(d)));
}

/**
 * Check a descriptor built in code by serializing and parsing it again (and
 * so normalizing it). Throws {@link InvalidManifest}.
 *
 * @example
 * ```ts
 * const d = validateDescriptor(draft, "descriptor for /h/snapshots/a");
 * ```
 */
export function validateDescriptor(d: SnapshotDescriptor, source = DESCRIPTOR_FILENAME): SnapshotDescriptor {
  return parseDescriptor(canonicalDescriptorText(d), source);
}

/**
 * The 0.6 descriptor of an old-layout manifest as microsandbox's migration
 * translates it (`translate_v066_forward`): scope `disk`, no extensions or
 * requires, integrity copied. `parentDigest` is the parent's *new* digest
 * (every identity changes in translation). Throws {@link InvalidManifest} for
 * what 0.6 cannot hold: digests not `sha256:<64 lowercase hex>`, other
 * integrity algorithms, a reserved upper name, or a time that is not RFC 3339.
 *
 * @example
 * ```ts
 * const d = descriptorFromManifest(m, null);
 * ```
 */
export function descriptorFromManifest(m: Manifest, parentDigest: string | null, source = "manifest.json"): SnapshotDescriptor {
  const i = m.upper.integrity;
  const draft = {
    schema: 1,
    artifact: "snapshot",
    scope: "disk",
    created_at: m.created_at,
    parent: parentDigest,
    image: m.image,
    source_sandbox: m.source_sandbox,
    state: { kind: "file", format: m.format, fstype: m.fstype, upper: { file: m.upper.file, size_bytes: m.upper.size_bytes, integrity: i } },
    labels: m.labels,
    extensions: {},
    requires: [],
  } as unknown as SnapshotDescriptor;
  return validateDescriptor(draft, `${source} (translated to snapshot.json)`);
}
