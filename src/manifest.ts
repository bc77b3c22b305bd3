/**
 * The snapshot manifest (`manifest.json`, schema 1): strict parsing,
 * validation, canonical serialization and the snapshot digest (docs/format.md §3).
 *
 * Field names stay exactly as on disk (snake_case) so that what you read is
 * what the file says.
 *
 * @example
 * ```ts
 * import { parseManifest, canonicalManifest, manifestDigest } from "snapbundle";
 * const m = parseManifest(await fileText, "/home/snapshots/a/manifest.json");
 * const bytes = canonicalManifest(m); // compact, fields in schema order
 * const digest = await manifestDigest(m); // "sha256:…"
 * ```
 * @module
 */

import { sha256Hex } from "../wasm/mod.js";
import { InvalidManifest } from "./errors.js";
import { compareCodePoints, decodeUtf8Strict, JsonSyntaxError, type JsonValue, parseStrictJson } from "./json.js";

/** The file name of a manifest inside a snapshot directory. */
export const MANIFEST_FILENAME = "manifest.json";
/**
 * Names an upper may not have: they are the documents of a snapshot
 * directory or bundle (`manifest.json` here; `snapshot.json` and
 * `archive.json` in microsandbox 0.6). An upper named `manifest.json` would
 * overwrite its own manifest on load and be written twice by save.
 */
export const RESERVED_UPPER_NAMES: readonly string[] = [MANIFEST_FILENAME, "snapshot.json", "archive.json"];
/** The largest manifest snapbundle reads (1 MiB). */
export const MAX_MANIFEST_BYTES = 1 << 20;
/** The integrity algorithm microsandbox records for sparse uppers. */
export const SPARSE_SHA256 = "msb-sparse-sha256-v1";

/** Recorded integrity of an upper. */
export interface UpperIntegrity {
  readonly algorithm: string;
  readonly digest: string;
}

/** A parsed, validated schema-1 manifest. */
export interface Manifest {
  readonly schema: 1;
  readonly format: "raw" | "qcow2";
  readonly fstype: string;
  readonly image: { readonly ref: string; readonly manifest_digest: string };
  readonly parent: string | null;
  readonly created_at: string;
  /** Own properties only; any key (even `__proto__`) is an ordinary label. */
  readonly labels: Readonly<Record<string, string>>;
  readonly upper: {
    readonly file: string;
    readonly size_bytes: number;
    readonly integrity: UpperIntegrity | null;
  };
  readonly source_sandbox: string | null;
}

type Obj = ReadonlyMap<string, JsonValue>;

function fieldsOf(v: JsonValue, where: string, allowed: readonly string[], source: string): Obj {
  if (v.kind !== "object") throw bad(source, where, "must be an object");
  const map = new Map(v.entries);
  for (const [k] of v.entries) {
    if (!allowed.includes(k)) throw bad(source, where === "" ? k : `${where}.${k}`, "is not a known field");
  }
  for (const k of allowed) {
    if (!map.has(k)) throw bad(source, where === "" ? k : `${where}.${k}`, "is missing (every field must be present, null where allowed)");
  }
  return map;
}

function bad(source: string, field: string, rule: string): InvalidManifest {
  return new InvalidManifest(`${source}: field "${field}" ${rule}`);
}

function str(o: Obj, key: string, where: string, source: string, opts: { nullable?: boolean; nonEmpty?: boolean } = {}): string | null {
  const v = o.get(key)!;
  const name = where === "" ? key : `${where}.${key}`;
  if (v.kind === "null" && opts.nullable) return null;
  if (v.kind !== "string") throw bad(source, name, opts.nullable ? "must be a string or null" : "must be a string");
  if (opts.nonEmpty && v.value === "") throw bad(source, name, "must not be empty");
  return v.value;
}

/** True when `s` has the digest form `algo:hex` with both parts non-empty. */
export function isDigestForm(s: string): boolean {
  const i = s.indexOf(":");
  return i > 0 && i < s.length - 1;
}

function digestField(o: Obj, key: string, where: string, source: string, nullable = false): string | null {
  const s = str(o, key, where, source, { nullable });
  if (s !== null && !isDigestForm(s)) throw bad(source, where === "" ? key : `${where}.${key}`, `must have the form algo:hex (got ${JSON.stringify(s)})`);
  return s;
}

/** True when `name` is one normal path component: not empty, no `/`, not `.` or `..`. */
export function isNormalComponent(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

/**
 * Decode (strict UTF-8, at most `maxBytes`) and parse (strict JSON) a
 * metadata document; `what` names it in errors. Throws {@link InvalidManifest}.
 *
 * @example
 * ```ts
 * const root = parseJsonDocument(bytes, "/h/snapshots/a/snapshot.json", "descriptor", 1 << 20);
 * ```
 */
export function parseJsonDocument(input: string | Uint8Array, source: string, what: string, maxBytes: number): JsonValue {
  let text: string;
  if (typeof input === "string") text = input;
  else {
    if (input.length > maxBytes) throw new InvalidManifest(`${source}: ${what} is ${input.length} bytes; the limit is ${maxBytes}`);
    try {
      text = decodeUtf8Strict(input);
    } catch {
      throw new InvalidManifest(`${source}: ${what} is not valid UTF-8`);
    }
  }
  try {
    return parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new InvalidManifest(`${source}: not valid JSON: ${e.message}`);
    throw e;
  }
}

/**
 * Parse and validate manifest text or bytes. `source` names the file in error
 * messages. Throws {@link InvalidManifest} naming the field and the rule.
 */
export function parseManifest(input: string | Uint8Array, source = MANIFEST_FILENAME): Manifest {
  const root = parseJsonDocument(input, source, "manifest", MAX_MANIFEST_BYTES);
  const top = fieldsOf(root, "", ["schema", "format", "fstype", "image", "parent", "created_at", "labels", "upper", "source_sandbox"], source);

  const schema = top.get("schema")!;
  if (schema.kind !== "number" || schema.raw !== "1") throw bad(source, "schema", "must be 1");

  const format = str(top, "format", "", source);
  if (format !== "raw" && format !== "qcow2") throw bad(source, "format", `must be "raw" or "qcow2" (got ${JSON.stringify(format)})`);

  const fstype = str(top, "fstype", "", source, { nonEmpty: true })!;

  const image = fieldsOf(top.get("image")!, "image", ["ref", "manifest_digest"], source);
  const ref = str(image, "ref", "image", source, { nonEmpty: true })!;
  const imageDigest = digestField(image, "manifest_digest", "image", source)!;

  const parent = digestField(top, "parent", "", source, true);
  const createdAt = str(top, "created_at", "", source)!;

  const labelsV = top.get("labels")!;
  if (labelsV.kind !== "object") throw bad(source, "labels", "must be an object of strings");
  const labelPairs: [string, string][] = [];
  for (const [k, v] of labelsV.entries) {
    if (v.kind !== "string") throw bad(source, `labels.${k}`, "must be a string");
    labelPairs.push([k, v.value]);
  }

  const upper = fieldsOf(top.get("upper")!, "upper", ["file", "size_bytes", "integrity"], source);
  const file = str(upper, "file", "upper", source)!;
  if (!isNormalComponent(file)) throw bad(source, "upper.file", `must be one normal path component (got ${JSON.stringify(file)})`);
  if (RESERVED_UPPER_NAMES.includes(file)) throw bad(source, "upper.file", `must not be a reserved name (${RESERVED_UPPER_NAMES.join(", ")}); got ${JSON.stringify(file)}`);
  const sizeV = upper.get("size_bytes")!;
  if (sizeV.kind !== "number" || !/^-?[0-9]+$/.test(sizeV.raw)) throw bad(source, "upper.size_bytes", "must be a non-negative integer");
  const size = Number(sizeV.raw);
  if (sizeV.raw.startsWith("-") && size !== 0) throw bad(source, "upper.size_bytes", "must be a non-negative integer");
  if (!Number.isSafeInteger(size)) throw bad(source, "upper.size_bytes", "must not exceed 2^53-1");
  const integrityV = upper.get("integrity")!;
  let integrity: UpperIntegrity | null = null;
  if (integrityV.kind !== "null") {
    const io = fieldsOf(integrityV, "upper.integrity", ["algorithm", "digest"], source);
    const algorithm = str(io, "algorithm", "upper.integrity", source, { nonEmpty: true })!;
    const digest = digestField(io, "digest", "upper.integrity", source)!;
    integrity = { algorithm, digest };
  }
  const sourceSandbox = str(top, "source_sandbox", "", source, { nullable: true });

  return {
    schema: 1,
    format,
    fstype,
    image: { ref, manifest_digest: imageDigest },
    parent,
    created_at: createdAt,
    labels: Object.fromEntries(labelPairs),
    upper: { file, size_bytes: size === 0 ? 0 : size, integrity },
    source_sandbox: sourceSandbox,
  };
}

/**
 * Check a manifest built in code against the same rules {@link parseManifest}
 * applies, by serializing and parsing it. Throws {@link InvalidManifest}.
 */
export function validateManifest(m: Manifest, source = MANIFEST_FILENAME): Manifest {
  return parseManifest(canonicalManifestText(m), source);
}

/** The canonical manifest as text: compact JSON, schema field order, labels sorted by code point. */
export function canonicalManifestText(m: Manifest): string {
  const s = JSON.stringify;
  const labels = Object.keys(m.labels)
    .sort(compareCodePoints)
    .map((k) => `${s(k)}:${s(m.labels[k])}`)
    .join(",");
  const integrity =
    m.upper.integrity === null ? "null" : `{"algorithm":${s(m.upper.integrity.algorithm)},"digest":${s(m.upper.integrity.digest)}}`;
  const nullable = (v: string | null) => (v === null ? "null" : s(v));
  return (
    `{"schema":1,"format":${s(m.format)},"fstype":${s(m.fstype)},` +
    `"image":{"ref":${s(m.image.ref)},"manifest_digest":${s(m.image.manifest_digest)}},` +
    `"parent":${nullable(m.parent)},"created_at":${s(m.created_at)},"labels":{${labels}},` +
    `"upper":{"file":${s(m.upper.file)},"size_bytes":${String(m.upper.size_bytes)},"integrity":${integrity}},` +
    `"source_sandbox":${nullable(m.source_sandbox)}}`
  );
}

/** The canonical manifest bytes (UTF-8 of {@link canonicalManifestText}). */
export function canonicalManifest(m: Manifest): Uint8Array {
  return new TextEncoder().encode(canonicalManifestText(m));
}

/** The snapshot's identity: `sha256:` + hex SHA-256 of its canonical manifest bytes. */
export async function manifestDigest(m: Manifest): Promise<string> {
  return "sha256:" + (await sha256Hex(canonicalManifest(m)));
}
