/**
 * `archive.json`, the inventory of a microsandbox 0.6 bundle (docs/format.md §9.2; load steps of §9.6):
 * strict parsing that insists on upstream's exact bytes (it must re-serialise
 * byte for byte), serialisation, and the load checks that need it — step 3
 * (the inventory against the members present), step 6 (owner bindings) and
 * step 7 (the head).
 *
 * @example
 * ```ts
 * import { parseInventory, serializeInventory } from "./inventory.js";
 * const inv = parseInventory(bytes, "a.tar.zst: archive.json");
 * serializeInventory(inv); // the same bytes
 * ```
 * @module
 */

import { ArchiveError } from "../errors.js";
import { descriptorIntegrityText, type DescriptorIntegrity, isBlake3Digest, isSha256Digest, MERKLE_BLAKE3, MERKLE_LEAF_SIZE, type SnapshotDescriptor } from "../descriptor.js";
import { compareCodePoints, decodeUtf8Strict, JsonSyntaxError, type JsonValue, parseStrictJson, serdeValueText } from "../json.js";
import { SPARSE_SHA256 } from "../manifest.js";
import { MEMBER_BLAKE3 } from "./member-hash.js";
import { descriptorPath, INVENTORY_PATH, MEMBER_KINDS, payloadPath } from "./msb06-paths.js";

/** The largest `archive.json` a load reads (4 MiB, as upstream). */
export const MAX_INVENTORY_BYTES = 4 << 20;
/** The entry kinds an inventory may name. */
export const ENTRY_KINDS = MEMBER_KINDS;

/** A member hash as recorded. */
export interface TransportIntegrity {
  readonly algorithm: typeof MEMBER_BLAKE3;
  readonly digest: string;
}

/** One inventoried member. */
export interface InventoryEntry {
  readonly path: string;
  readonly owner_snapshot: string | null;
  readonly kind: string;
  readonly included: boolean;
  readonly encoded_size: number;
  readonly apparent_size: number;
  readonly integrity: DescriptorIntegrity | null;
  /** Absent in 0.6.7–0.6.8 bundles. */
  readonly transport_integrity?: TransportIntegrity;
}

/** A parsed `archive.json`. */
export interface ArchiveInventory {
  readonly schema: 1;
  readonly artifact: "snapshot-archive";
  readonly head: string;
  readonly suggested_name: string | null;
  readonly completeness: string;
  readonly with_parents: boolean;
  readonly with_image: boolean;
  readonly snapshots: readonly { readonly snapshot_id: string; readonly descriptor: string }[];
  readonly entries: readonly InventoryEntry[];
  /** Each value's JSON text as serde_json writes it. */
  readonly protection_requirements: readonly string[];
  /** Each value's JSON text as serde_json writes it. */
  readonly extensions: Readonly<Record<string, string>>;
  readonly requires: readonly string[];
}

/** What the unpack step saw of one member. */
export interface ObservedMember {
  readonly encodedSize: number;
  readonly apparentSize: number;
  /** The member hash computed while it streamed. */
  readonly memberHash: string;
  /** `sha256:<hex>` of its logical bytes (descriptors and image files; `null` for payloads). */
  readonly sha256: string | null;
}

const s = JSON.stringify;

function integrityOrNull(i: DescriptorIntegrity | null): string {
  return i === null ? "null" : descriptorIntegrityText(i);
}

/**
 * `archive.json` bytes in upstream's field order, compact (serde_json).
 *
 * @example
 * ```ts
 * new TextDecoder().decode(serializeInventory(inv)).startsWith('{"schema":1,"artifact":"snapshot-archive"'); // true
 * ```
 */
export function serializeInventory(inv: ArchiveInventory): Uint8Array {
  const snapshots = inv.snapshots.map((x) => `{"snapshot_id":${s(x.snapshot_id)},"descriptor":${s(x.descriptor)}}`).join(",");
  const entries = inv.entries
    .map(
      (e) =>
        `{"path":${s(e.path)},"owner_snapshot":${e.owner_snapshot === null ? "null" : s(e.owner_snapshot)},"kind":${s(e.kind)},"included":${e.included},` +
        `"encoded_size":${e.encoded_size},"apparent_size":${e.apparent_size},"integrity":${integrityOrNull(e.integrity)}` +
        (e.transport_integrity === undefined ? "" : `,"transport_integrity":{"algorithm":${s(e.transport_integrity.algorithm)},"digest":${s(e.transport_integrity.digest)}}`) +
        "}",
    )
    .join(",");
  const ext = Object.keys(inv.extensions)
    .sort(compareCodePoints)
    .map((k) => `${s(k)}:${inv.extensions[k]}`)
    .join(",");
  return new TextEncoder().encode(
    `{"schema":1,"artifact":"snapshot-archive","head":${s(inv.head)},"suggested_name":${inv.suggested_name === null ? "null" : s(inv.suggested_name)},` +
      `"completeness":${s(inv.completeness)},"with_parents":${inv.with_parents},"with_image":${inv.with_image},"snapshots":[${snapshots}],"entries":[${entries}],` +
      `"protection_requirements":[${inv.protection_requirements.join(",")}],"extensions":{${ext}},"requires":[${inv.requires.map((r) => s(r)).join(",")}]}`,
  );
}

class Reader {
  constructor(readonly label: string) {}
  bad(rule: string): ArchiveError {
    return new ArchiveError(`${this.label}: ${rule}`);
  }
  obj(v: JsonValue, where: string, fields: readonly string[], optional: readonly string[] = []): Map<string, JsonValue> {
    if (v.kind !== "object") throw this.bad(`${where} must be an object`);
    for (const [k] of v.entries) if (!fields.includes(k) && !optional.includes(k)) throw this.bad(`${where}.${k} is not a known field`);
    const m = new Map(v.entries);
    for (const k of fields) if (!m.has(k)) throw this.bad(`${where}.${k} is missing`);
    return m;
  }
  str(v: JsonValue | undefined, where: string): string {
    if (v?.kind !== "string") throw this.bad(`${where} must be a string`);
    return v.value;
  }
  bool(v: JsonValue | undefined, where: string): boolean {
    if (v?.kind !== "boolean") throw this.bad(`${where} must be true or false`);
    return v.value;
  }
  size(v: JsonValue | undefined, where: string): number {
    if (v?.kind !== "number" || !/^(?:0|[1-9][0-9]*)$/.test(v.raw)) throw this.bad(`${where} must be a non-negative integer`);
    const n = Number(v.raw);
    if (!Number.isSafeInteger(n)) throw this.bad(`${where} must not exceed 2^53-1`);
    return n;
  }
  array(v: JsonValue | undefined, where: string): readonly JsonValue[] {
    if (v?.kind !== "array") throw this.bad(`${where} must be an array`);
    return v.items;
  }
  integrity(v: JsonValue, where: string): DescriptorIntegrity | null {
    if (v.kind === "null") return null;
    if (v.kind !== "object") throw this.bad(`${where} must be an object or null`);
    const alg = this.str(v.entries.find(([k]) => k === "algorithm")?.[1], `${where}.algorithm`);
    if (alg === "sha256" || alg === SPARSE_SHA256) {
      const o = this.obj(v, where, ["algorithm", "digest"]);
      const digest = this.str(o.get("digest"), `${where}.digest`);
      if (!isSha256Digest(digest)) throw this.bad(`${where}.digest must be "sha256:" followed by 64 lowercase hex digits`);
      return { algorithm: alg, digest };
    }
    if (alg === MERKLE_BLAKE3) {
      const o = this.obj(v, where, ["algorithm", "root", "logical_size", "leaf_size"]);
      const root = this.str(o.get("root"), `${where}.root`);
      if (!isBlake3Digest(root)) throw this.bad(`${where}.root must be "blake3:" followed by 64 lowercase hex digits`);
      const leaf = this.size(o.get("leaf_size"), `${where}.leaf_size`);
      if (leaf !== MERKLE_LEAF_SIZE) throw this.bad(`${where}.leaf_size must be ${MERKLE_LEAF_SIZE}`);
      return { algorithm: alg, root, logical_size: this.size(o.get("logical_size"), `${where}.logical_size`), leaf_size: leaf };
    }
    throw this.bad(`${where}.algorithm ${s(alg)} is not a known integrity algorithm`);
  }
}

/**
 * Parse `archive.json` (at most {@link MAX_INVENTORY_BYTES}) and apply the
 * rules that need nothing else: exact re-serialisation, schema and artifact,
 * completeness, requires, suggested_name, sorted unique snapshots and entries,
 * the head listed, descriptor paths, member-hash form. Throws
 * {@link ArchiveError} naming `label` and the rule.
 *
 * @example
 * ```ts
 * const inv = parseInventory(bytes, "bundle.tar.zst: archive.json");
 * inv.head; // "sha256:…"
 * ```
 */
export function parseInventory(bytes: Uint8Array, label: string): ArchiveInventory {
  const r = new Reader(label);
  if (bytes.length > MAX_INVENTORY_BYTES) throw r.bad(`the inventory is ${bytes.length} bytes; at most ${MAX_INVENTORY_BYTES} are read`);
  let root: JsonValue;
  try {
    root = parseStrictJson(decodeUtf8Strict(bytes));
  } catch (e) {
    if (e instanceof JsonSyntaxError || e instanceof TypeError) throw r.bad(`the inventory is not valid UTF-8 JSON: ${e.message}`);
    throw e;
  }
  const top = r.obj(root, "archive.json", ["schema", "artifact", "head", "suggested_name", "completeness", "with_parents", "with_image", "snapshots", "entries", "protection_requirements", "extensions", "requires"]);
  const schema = top.get("schema")!;
  if (schema.kind !== "number" || schema.raw !== "1") throw r.bad("archive.json schema must be 1");
  if (r.str(top.get("artifact"), "artifact") !== "snapshot-archive") throw r.bad('archive.json artifact must be "snapshot-archive"');
  const head = r.str(top.get("head"), "head");
  const sn = top.get("suggested_name")!;
  const suggested = sn.kind === "null" ? null : r.str(sn, "suggested_name");
  const completeness = r.str(top.get("completeness"), "completeness");
  const snapshots = r.array(top.get("snapshots"), "snapshots").map((v, i) => {
    const o = r.obj(v, `snapshots[${i}]`, ["snapshot_id", "descriptor"]);
    return { snapshot_id: r.str(o.get("snapshot_id"), `snapshots[${i}].snapshot_id`), descriptor: r.str(o.get("descriptor"), `snapshots[${i}].descriptor`) };
  });
  const entries = r.array(top.get("entries"), "entries").map((v, i): InventoryEntry => {
    const where = `entries[${i}]`;
    const o = r.obj(v, where, ["path", "owner_snapshot", "kind", "included", "encoded_size", "apparent_size", "integrity"], ["transport_integrity"]);
    const owner = o.get("owner_snapshot")!;
    const t = o.get("transport_integrity");
    let transport: TransportIntegrity | undefined;
    if (t !== undefined) {
      const to = r.obj(t, `${where}.transport_integrity`, ["algorithm", "digest"]);
      const alg = r.str(to.get("algorithm"), `${where}.transport_integrity.algorithm`);
      const digest = r.str(to.get("digest"), `${where}.transport_integrity.digest`);
      if (alg !== MEMBER_BLAKE3 || !isBlake3Digest(digest)) throw r.bad(`${where}.transport_integrity must be {"algorithm":"${MEMBER_BLAKE3}","digest":"blake3:<64 lowercase hex>"}`);
      transport = { algorithm: alg, digest };
    }
    return {
      path: r.str(o.get("path"), `${where}.path`),
      owner_snapshot: owner.kind === "null" ? null : r.str(owner, `${where}.owner_snapshot`),
      kind: r.str(o.get("kind"), `${where}.kind`),
      included: r.bool(o.get("included"), `${where}.included`),
      encoded_size: r.size(o.get("encoded_size"), `${where}.encoded_size`),
      apparent_size: r.size(o.get("apparent_size"), `${where}.apparent_size`),
      integrity: r.integrity(o.get("integrity")!, `${where}.integrity`),
      ...(transport === undefined ? {} : { transport_integrity: transport }),
    };
  });
  const protection = r.array(top.get("protection_requirements"), "protection_requirements").map((v) => serdeValueText(v) ?? "null");
  const extV = top.get("extensions")!;
  if (extV.kind !== "object") throw r.bad("extensions must be an object");
  const extensions = Object.fromEntries(extV.entries.map(([k, v]) => [k, serdeValueText(v) ?? "null"]));
  const requires = r.array(top.get("requires"), "requires").map((v, i) => r.str(v, `requires[${i}]`));
  const inv: ArchiveInventory = {
    schema: 1,
    artifact: "snapshot-archive",
    head,
    suggested_name: suggested,
    completeness,
    with_parents: r.bool(top.get("with_parents"), "with_parents"),
    with_image: r.bool(top.get("with_image"), "with_image"),
    snapshots,
    entries,
    protection_requirements: protection,
    extensions,
    requires,
  };
  const again = serializeInventory(inv);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
    throw r.bad("archive.json is not canonical: it must be compact JSON in microsandbox's field order, exactly as microsandbox writes it");
  }
  validateInventoryShape(inv, r);
  return inv;
}

/** The document rules of load step 3 that need no member. */
function validateInventoryShape(inv: ArchiveInventory, r: Reader): void {
  if (inv.completeness !== "boot-complete") throw r.bad(`unsupported: archive completeness ${s(inv.completeness)} (only "boot-complete" is known)`);
  if (!(inv.requires.length === 0 || (inv.requires.length === 1 && inv.requires[0] === MEMBER_BLAKE3))) {
    throw r.bad(`unsupported: archive requires ${s(inv.requires)} (only [] or ["${MEMBER_BLAKE3}"] are known)`);
  }
  const n = inv.suggested_name;
  if (n !== null && (n === "" || new TextEncoder().encode(n).length > 255 || n.includes("/") || n.includes("\\"))) throw r.bad(`archive.json suggested_name ${s(n)} is invalid`);
  let prior: string | null = null;
  for (const x of inv.snapshots) {
    if (!isSha256Digest(x.snapshot_id)) throw r.bad(`archive.json snapshot_id ${s(x.snapshot_id)} must be "sha256:" followed by 64 lowercase hex digits`);
    if (prior !== null && prior >= x.snapshot_id) throw r.bad("archive.json snapshots are not strictly sorted by snapshot_id");
    if (x.descriptor !== descriptorPath(x.snapshot_id.slice(7))) throw r.bad(`archive.json descriptor path ${s(x.descriptor)} does not match snapshot ${x.snapshot_id}`);
    prior = x.snapshot_id;
  }
  if (!inv.snapshots.some((x) => x.snapshot_id === inv.head)) throw r.bad(`archive.json head ${s(inv.head)} is not one of its snapshots`);
  let priorPath: Uint8Array | null = null;
  for (const e of inv.entries) {
    const p = new TextEncoder().encode(e.path);
    if (priorPath !== null && compareBytes(priorPath, p) >= 0) throw r.bad(`archive.json entries are not strictly sorted by path (at ${s(e.path)})`);
    priorPath = p;
    if (!(ENTRY_KINDS as readonly string[]).includes(e.kind)) throw r.bad(`unsupported: archive entry kind ${s(e.kind)} of ${s(e.path)}`);
    if (e.included && inv.requires.includes(MEMBER_BLAKE3) && e.transport_integrity === undefined) {
      throw r.bad(`archive member ${s(e.path)} has no transport_integrity, which the inventory requires`);
    }
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Load step 3 against the members present: each included entry present with
 * equal sizes and member hash (when recorded), omitted ones absent, nothing
 * present that is not inventoried, descriptor sha256 = owner = recorded,
 * image sha256 = recorded, one descriptor entry per listed snapshot.
 *
 * @example
 * ```ts
 * checkInventoryMembers(inv, observed, "a.tar.zst");
 * ```
 */
export function checkInventoryMembers(inv: ArchiveInventory, observed: ReadonlyMap<string, ObservedMember>, label: string): void {
  const r = new Reader(label);
  const expected = new Set<string>();
  const descriptorOwners = new Set<string>();
  for (const e of inv.entries) {
    const seen = observed.get(e.path);
    if (!e.included) {
      if (seen !== undefined) throw r.bad(`archive member ${s(e.path)} is marked included:false in archive.json but is present`);
      continue;
    }
    expected.add(e.path);
    if (seen === undefined) throw r.bad(`archive.json lists ${s(e.path)}, which is missing from the archive`);
    if (seen.encodedSize !== e.encoded_size || seen.apparentSize !== e.apparent_size) {
      throw r.bad(`archive member ${s(e.path)} has ${seen.encodedSize} stored / ${seen.apparentSize} apparent bytes; archive.json records ${e.encoded_size} / ${e.apparent_size}`);
    }
    if (e.transport_integrity !== undefined && e.transport_integrity.digest !== seen.memberHash) {
      throw r.bad(`transport integrity mismatch for ${s(e.path)}: archive.json records ${e.transport_integrity.digest}, the member hashes to ${seen.memberHash}`);
    }
    if (e.kind !== "file-payload" && e.integrity !== null && e.integrity.algorithm === "sha256" && seen.sha256 !== e.integrity.digest) {
      throw r.bad(`archive member ${s(e.path)} hashes to ${seen.sha256}; archive.json records ${e.integrity.digest}`);
    }
    if (e.kind === "snapshot-descriptor") {
      if (e.owner_snapshot === null || e.integrity?.algorithm !== "sha256" || e.integrity.digest !== e.owner_snapshot) {
        throw r.bad(`snapshot descriptor ${s(e.path)}: its integrity must be sha256 equal to its owner_snapshot`);
      }
      descriptorOwners.add(e.owner_snapshot);
    }
  }
  for (const path of observed.keys()) {
    if (path !== INVENTORY_PATH && !expected.has(path)) throw r.bad(`archive member ${s(path)} is not listed in archive.json`);
  }
  const listed = new Set(inv.snapshots.map((x) => x.snapshot_id));
  if (descriptorOwners.size !== listed.size || [...listed].some((id) => !descriptorOwners.has(id))) {
    throw r.bad("archive.json snapshots and its snapshot-descriptor entries disagree");
  }
}

/**
 * Load step 6: the imported set is the inventory's `snapshots`; each payload
 * entry's path and integrity match its owner's descriptor; image entries have
 * no owner and sha256 integrity.
 *
 * @example
 * ```ts
 * checkInventoryBindings(inv, new Map([[digest, descriptor]]), "a.tar.zst");
 * ```
 */
export function checkInventoryBindings(inv: ArchiveInventory, imported: ReadonlyMap<string, SnapshotDescriptor>, label: string): void {
  const r = new Reader(label);
  if (imported.size !== inv.snapshots.length || inv.snapshots.some((x) => !imported.has(x.snapshot_id))) {
    throw r.bad("the archive's snapshot descriptors do not match the snapshots archive.json lists");
  }
  const payloads = new Set<string>();
  for (const e of inv.entries) {
    if (!e.included) continue;
    if (e.kind === "file-payload") {
      const d = e.owner_snapshot === null ? undefined : imported.get(e.owner_snapshot);
      if (d === undefined) throw r.bad(`file payload ${s(e.path)}: its owner_snapshot ${s(e.owner_snapshot)} is not in the archive`);
      if (d.state.kind !== "file") throw r.bad(`file payload ${s(e.path)}: its owner ${e.owner_snapshot} is checkpoint state, which has no payload`);
      const want = payloadPath(e.owner_snapshot!.slice(7), d.state.upper.file);
      if (e.path !== want || integrityOrNull(e.integrity) !== integrityOrNull(d.state.upper.integrity) || e.apparent_size !== d.state.upper.size_bytes) {
        throw r.bad(`file payload binding disagrees with descriptor: ${s(e.path)} (the descriptor names ${s(want)}, ${d.state.upper.size_bytes} bytes, integrity ${integrityOrNull(d.state.upper.integrity)})`);
      }
      payloads.add(e.owner_snapshot!);
    } else if (e.kind === "image-metadata" || e.kind === "image-object") {
      if (e.owner_snapshot !== null || e.integrity?.algorithm !== "sha256") throw r.bad(`invalid image entry binding: ${s(e.path)} (no owner, sha256 integrity)`);
    }
  }
  for (const [id, d] of imported) {
    if (d.state.kind === "file" && !payloads.has(id)) throw r.bad(`snapshot ${id}: its payload ${d.state.upper.file} is not in archive.json`);
  }
}
