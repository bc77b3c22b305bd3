/**
 * Unit tests of `archive.json`, the inventory of a microsandbox 0.6 bundle
 * (`src/archive/inventory.ts`, docs/format.md §9.2, load steps 3 and 6 of §9.6): one test
 * per rule, each inventory written by hand (JSON.stringify of an object in
 * upstream's field order, as microsandbox writes it) with exactly one rule
 * broken.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ArchiveError } from "../src/errors.js";
import { checkInventoryBindings, checkInventoryMembers, type ObservedMember, parseInventory, serializeInventory } from "../src/archive/inventory.js";
import { parseDescriptor, type SnapshotDescriptor } from "../src/descriptor.js";
import { descriptorText, fileState } from "./helpers/msb06-reference.js";

const enc = new TextEncoder();
const LABEL = "t.tar: archive.json";
const H1 = "1".repeat(64);
const H2 = "2".repeat(64);
const ID1 = `sha256:${H1}`;
const ID2 = `sha256:${H2}`;
const B3 = (c: string) => `blake3:${c.repeat(64)}`;
const SHA = (c: string) => `sha256:${c.repeat(64)}`;
const MEMBER = "msb-archive-member-blake3-v1";

/** A valid inventory object: two snapshots, a payload of the head, an image file; member hashes required. */
function base(): any {
  return {
    schema: 1, artifact: "snapshot-archive", head: ID2, suggested_name: "py", completeness: "boot-complete", with_parents: true, with_image: true,
    snapshots: [{ snapshot_id: ID1, descriptor: `snapshots/${H1}/snapshot.json` }, { snapshot_id: ID2, descriptor: `snapshots/${H2}/snapshot.json` }],
    entries: [
      { path: `files/${H2}/upper.ext4`, owner_snapshot: ID2, kind: "file-payload", included: true, encoded_size: 10, apparent_size: 4096, integrity: null, transport_integrity: { algorithm: MEMBER, digest: B3("a") } },
      { path: "images/manifests/m.json", owner_snapshot: null, kind: "image-metadata", included: true, encoded_size: 5, apparent_size: 5, integrity: { algorithm: "sha256", digest: SHA("e") }, transport_integrity: { algorithm: MEMBER, digest: B3("b") } },
      { path: `snapshots/${H1}/snapshot.json`, owner_snapshot: ID1, kind: "snapshot-descriptor", included: true, encoded_size: 7, apparent_size: 7, integrity: { algorithm: "sha256", digest: ID1 }, transport_integrity: { algorithm: MEMBER, digest: B3("c") } },
      { path: `snapshots/${H2}/snapshot.json`, owner_snapshot: ID2, kind: "snapshot-descriptor", included: true, encoded_size: 8, apparent_size: 8, integrity: { algorithm: "sha256", digest: ID2 }, transport_integrity: { algorithm: MEMBER, digest: B3("d") } },
    ],
    protection_requirements: [], extensions: {}, requires: [MEMBER],
  };
}

const bytesOf = (inv: unknown) => enc.encode(JSON.stringify(inv));
const parsed = (edit: (inv: any) => void = () => {}) => {
  const inv = base();
  edit(inv);
  return parseInventory(bytesOf(inv), LABEL);
};

/** `fn` throws an ArchiveError (code "archive") whose message leads with `label` and matches `rule`. */
function refused(fn: () => unknown, rule: RegExp, label = LABEL): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.equal(e.code, "archive");
    assert.ok(e.message.startsWith(`${label}: `), `the label leads: ${e.message}`);
    assert.match(e.message, rule);
    return true;
  });
}
const parseRefused = (edit: (inv: any) => void, rule: RegExp) => refused(() => parsed(edit), rule);
const textRefused = (text: string, rule: RegExp) => refused(() => parseInventory(enc.encode(text), LABEL), rule);

describe("inventory: parsing archive.json", () => {
  test("rule: a canonical inventory parses and re-serialises to the same bytes", () => {
    const bytes = bytesOf(base());
    const inv = parseInventory(bytes, LABEL);
    assert.deepEqual(serializeInventory(inv), bytes);
    assert.equal(inv.head, ID2);
    assert.equal(inv.schema, 1);
    assert.equal(inv.artifact, "snapshot-archive");
    assert.equal(inv.suggested_name, "py");
    assert.deepEqual(inv.entries[0]!.transport_integrity, { algorithm: MEMBER, digest: B3("a") });
    assert.equal(inv.entries[1]!.owner_snapshot, null);
    assert.deepEqual(inv.entries[1]!.integrity, { algorithm: "sha256", digest: SHA("e") });
    assert.equal(inv.entries[0]!.apparent_size, 4096);
  });
  test("rule: optional and free-form parts keep their values — suggested_name null, no transport_integrity, protection requirements and extensions as serde writes them", () => {
    const inv = parsed((i) => {
      i.suggested_name = null;
      i.requires = [];
      delete i.entries[0].transport_integrity;
      i.entries[0].integrity = { algorithm: "msb-file-merkle-blake3-v1", root: B3("f"), logical_size: 4096, leaf_size: 65536 };
      i.entries[2].included = false;
      i.protection_requirements = [{ a: [1, null, "x"] }, true];
      i.extensions = { "x.a": null, "x.b": { k: false } };
    });
    assert.equal(inv.suggested_name, null);
    assert.equal("transport_integrity" in inv.entries[0]!, false);
    assert.deepEqual(inv.entries[0]!.integrity, { algorithm: "msb-file-merkle-blake3-v1", root: B3("f"), logical_size: 4096, leaf_size: 65536 });
    assert.equal(inv.entries[2]!.included, false);
    assert.deepEqual(inv.protection_requirements, ['{"a":[1,null,"x"]}', "true"]);
    assert.deepEqual(inv.extensions, { "x.a": "null", "x.b": '{"k":false}' });
  });
  test("rule: archive.json is at most 4 MiB — counted in bytes, the bound itself allowed", () => {
    const inv = base();
    inv.extensions = { pad: "" };
    const fill = (4 << 20) - bytesOf(inv).length;
    inv.extensions.pad = "é".repeat(Math.floor(fill / 2)) + "a".repeat(fill % 2); // fewer characters than bytes
    assert.equal(bytesOf(inv).length, 4 << 20);
    assert.equal(parseInventory(bytesOf(inv), LABEL).extensions.pad, JSON.stringify(inv.extensions.pad));
    inv.extensions.pad += "a";
    refused(() => parseInventory(bytesOf(inv), LABEL), /^t\.tar: archive\.json: the inventory is 4194305 bytes; at most 4194304 are read$/);
  });
  test("rule: archive.json is UTF-8 JSON", () => {
    refused(() => parseInventory(new Uint8Array([0x7b, 0xff, 0x7d]), LABEL), /: the inventory is not valid UTF-8 JSON: /);
    textRefused("{", /: the inventory is not valid UTF-8 JSON: /);
  });
  test("rule: archive.json is an object with exactly its known fields", () => {
    textRefused("[]", /: archive\.json must be an object$/);
    parseRefused((i) => (i.extra = 1), /: archive\.json\.extra is not a known field$/);
    parseRefused((i) => delete i.requires, /: archive\.json\.requires is missing$/);
    parseRefused((i) => (i.entries[0].size = 1), /: entries\[0\]\.size is not a known field$/);
    parseRefused((i) => delete i.entries[3].integrity, /: entries\[3\]\.integrity is missing$/);
    parseRefused((i) => (i.snapshots[1] = [ID2]), /: snapshots\[1\] must be an object$/);
  });
  test("rule: schema 1, artifact \"snapshot-archive\"", () => {
    parseRefused((i) => (i.schema = 2), /: archive\.json schema must be 1$/);
    parseRefused((i) => (i.schema = "1"), /: archive\.json schema must be 1$/);
    parseRefused((i) => (i.artifact = "snapshot"), /: archive\.json artifact must be "snapshot-archive"$/);
    parseRefused((i) => (i.artifact = 1), /: artifact must be a string$/);
  });
  test("rule: each field has its JSON type, named by its place", () => {
    parseRefused((i) => (i.head = null), /: head must be a string$/);
    parseRefused((i) => (i.suggested_name = 1), /: suggested_name must be a string$/);
    parseRefused((i) => (i.completeness = null), /: completeness must be a string$/);
    parseRefused((i) => (i.with_parents = 1), /: with_parents must be true or false$/);
    parseRefused((i) => (i.with_image = "true"), /: with_image must be true or false$/);
    parseRefused((i) => (i.snapshots = {}), /: snapshots must be an array$/);
    parseRefused((i) => (i.entries = null), /: entries must be an array$/);
    parseRefused((i) => (i.protection_requirements = {}), /: protection_requirements must be an array$/);
    parseRefused((i) => (i.extensions = []), /: extensions must be an object$/);
    parseRefused((i) => (i.requires = [MEMBER, 1]), /: requires\[1\] must be a string$/);
    parseRefused((i) => (i.requires = {}), /: requires must be an array$/);
    parseRefused((i) => (i.snapshots[0].snapshot_id = 1), /: snapshots\[0\]\.snapshot_id must be a string$/);
    parseRefused((i) => (i.snapshots[1].descriptor = null), /: snapshots\[1\]\.descriptor must be a string$/);
    parseRefused((i) => (i.entries[1].path = 1), /: entries\[1\]\.path must be a string$/);
    parseRefused((i) => (i.entries[1].owner_snapshot = 1), /: entries\[1\]\.owner_snapshot must be a string$/);
    parseRefused((i) => (i.entries[1].kind = null), /: entries\[1\]\.kind must be a string$/);
    parseRefused((i) => (i.entries[1].included = 1), /: entries\[1\]\.included must be true or false$/);
  });
  test("rule: sizes are non-negative integers written plainly, at most 2^53-1", () => {
    for (const raw of ["-1", "1.0", "1e3", '"1"', "true"]) {
      textRefused(JSON.stringify(base()).replace('"encoded_size":10,', `"encoded_size":${raw},`), /: entries\[0\]\.encoded_size must be a non-negative integer$/);
    }
    textRefused(JSON.stringify(base()).replace('"apparent_size":4096,', '"apparent_size":9007199254740992,'), /: entries\[0\]\.apparent_size must not exceed 2\^53-1$/);
    assert.equal(parseInventory(enc.encode(JSON.stringify(base()).replace('"apparent_size":4096,', '"apparent_size":9007199254740991,')), LABEL).entries[0]!.apparent_size, 2 ** 53 - 1);
    assert.equal(parsed((i) => (i.entries[0].encoded_size = 0)).entries[0]!.encoded_size, 0);
  });
  test("rule: a recorded integrity is null or one of the known algorithms, in its exact form", () => {
    const at = (v: unknown, rule: RegExp) => parseRefused((i) => (i.entries[1].integrity = v), rule);
    at("sha256", /: entries\[1\]\.integrity must be an object or null$/);
    at({ digest: SHA("e") }, /: entries\[1\]\.integrity\.algorithm must be a string$/);
    at({ algorithm: "md5", digest: SHA("e") }, /: entries\[1\]\.integrity\.algorithm "md5" is not a known integrity algorithm$/);
    at({ algorithm: "sha256", digest: SHA("E") }, /: entries\[1\]\.integrity\.digest must be "sha256:" followed by 64 lowercase hex digits$/);
    at({ algorithm: "msb-sparse-sha256-v1", digest: SHA("e"), x: 1 }, /: entries\[1\]\.integrity\.x is not a known field$/);
    at({ algorithm: "sha256", digest: 5 }, /: entries\[1\]\.integrity\.digest must be a string$/);
    const m = (o: object) => ({ algorithm: "msb-file-merkle-blake3-v1", root: B3("f"), logical_size: 5, leaf_size: 65536, ...o });
    at(m({ root: SHA("f") }), /: entries\[1\]\.integrity\.root must be "blake3:" followed by 64 lowercase hex digits$/);
    at(m({ leaf_size: 4096 }), /: entries\[1\]\.integrity\.leaf_size must be 65536$/);
    at(m({ root: 5 }), /: entries\[1\]\.integrity\.root must be a string$/);
    at(m({ leaf_size: "65536" }), /: entries\[1\]\.integrity\.leaf_size must be a non-negative integer$/);
    at(m({ logical_size: -5 }), /: entries\[1\]\.integrity\.logical_size must be a non-negative integer$/);
    assert.deepEqual(parsed((i) => (i.entries[1].integrity = { algorithm: "msb-sparse-sha256-v1", digest: SHA("e") })).entries[1]!.integrity, { algorithm: "msb-sparse-sha256-v1", digest: SHA("e") });
  });
  test("rule: a transport_integrity is exactly the member BLAKE3 form", () => {
    const at = (v: unknown, rule: RegExp) => parseRefused((i) => (i.entries[2].transport_integrity = v), rule);
    const form = /: entries\[2\]\.transport_integrity must be \{"algorithm":"msb-archive-member-blake3-v1","digest":"blake3:<64 lowercase hex>"\}$/;
    at({ algorithm: "blake3", digest: B3("c") }, form);
    at({ algorithm: MEMBER, digest: SHA("c") }, form);
    at({ algorithm: MEMBER }, /: entries\[2\]\.transport_integrity\.digest is missing$/);
    at({ algorithm: 1, digest: B3("c") }, /: entries\[2\]\.transport_integrity\.algorithm must be a string$/);
    at({ algorithm: MEMBER, digest: null }, /: entries\[2\]\.transport_integrity\.digest must be a string$/);
  });
  test("rule: archive.json is canonical — compact, in microsandbox's field order, byte for byte", () => {
    const canonical = JSON.stringify(base());
    const msg = /: archive\.json is not canonical: it must be compact JSON in microsandbox's field order, exactly as microsandbox writes it$/;
    textRefused(canonical + "\n", msg);
    textRefused(canonical.replace('"with_parents":true,"with_image":true', '"with_image":true,"with_parents":true'), msg); // same length, other order
    textRefused(canonical.replace('"suggested_name":"py"', '"suggested_name":"\\u0070y"'), msg);
    // extensions are a map sorted by key, as serde writes a BTreeMap
    parseRefused((i) => (i.extensions = { b: 1, a: 2 }), msg);
    assert.deepEqual(Object.keys(parsed((i) => (i.extensions = { a: 2, b: 1 })).extensions), ["a", "b"]);
  });
});

describe("inventory: the document rules of load step 3", () => {
  test("rule: completeness is \"boot-complete\"", () => {
    parseRefused((i) => (i.completeness = "partial"), /: unsupported: archive completeness "partial" \(only "boot-complete" is known\)$/);
  });
  test("rule: requires is [] or [\"msb-archive-member-blake3-v1\"]", () => {
    const rule = /: unsupported: archive requires \[.*\] \(only \[\] or \["msb-archive-member-blake3-v1"\] are known\)$/;
    parseRefused((i) => (i.requires = ["x"]), rule);
    parseRefused((i) => (i.requires = [MEMBER, MEMBER]), rule);
    assert.deepEqual(parsed((i) => (i.requires = [])).requires, []);
  });
  test("rule: suggested_name is one non-empty name of at most 255 bytes, without / or \\", () => {
    for (const n of ["", "a/b", "a\\b", "é".repeat(128)]) {
      parseRefused((i) => (i.suggested_name = n), new RegExp(`: archive\\.json suggested_name ${JSON.stringify(n).replace(/[\\/]/g, "\\$&")} is invalid$`));
    }
    assert.equal(parsed((i) => (i.suggested_name = "é".repeat(127) + "a")).suggested_name, "é".repeat(127) + "a");
  });
  test("rule: snapshots are sha256 digests, strictly sorted, each with its descriptor path", () => {
    parseRefused((i) => (i.snapshots[0].snapshot_id = "sha256:abc"), /: archive\.json snapshot_id "sha256:abc" must be "sha256:" followed by 64 lowercase hex digits$/);
    parseRefused((i) => i.snapshots.reverse(), /: archive\.json snapshots are not strictly sorted by snapshot_id$/);
    parseRefused((i) => (i.snapshots[0] = { ...i.snapshots[1] }), /: archive\.json snapshots are not strictly sorted by snapshot_id$/);
    parseRefused((i) => (i.snapshots[1].descriptor = `snapshots/${H1}/snapshot.json`), new RegExp(`: archive\\.json descriptor path "snapshots/${H1}/snapshot\\.json" does not match snapshot ${ID2}$`));
  });
  test("rule: the head is one of the snapshots", () => {
    parseRefused((i) => (i.head = SHA("3")), new RegExp(`: archive\\.json head "${SHA("3")}" is not one of its snapshots$`));
    assert.equal(parsed((i) => (i.head = ID1)).head, ID1);
  });
  test("rule: entries are strictly sorted by the bytes of their paths", () => {
    parseRefused((i) => ([i.entries[2], i.entries[3]] = [i.entries[3], i.entries[2]]), new RegExp(`: archive\\.json entries are not strictly sorted by path \\(at "snapshots/${H1}/snapshot\\.json"\\)$`));
    parseRefused((i) => (i.entries[3] = { ...i.entries[2] }), new RegExp(`: archive\\.json entries are not strictly sorted by path \\(at "snapshots/${H1}/snapshot\\.json"\\)$`));
    // a prefix sorts first; UTF-8 byte order, not UTF-16: U+FFFF (EF BF BF) before U+1F600 (F0 9F 98 80)
    const img = (path: string) => ({ ...base().entries[1], path });
    const order = (paths: string[]) => (i: any) => i.entries.splice(1, 1, ...paths.map(img));
    assert.equal(parsed(order(["images/manifests/m", "images/manifests/m.json"])).entries.length, 5);
    parseRefused(order(["images/manifests/m.json", "images/manifests/m"]), /entries are not strictly sorted by path \(at "images\/manifests\/m"\)$/);
    assert.equal(parsed(order(["images/\uffff", "images/\u{1f600}"])).entries.length, 5);
    parseRefused(order(["images/\u{1f600}", "images/\uffff"]), /entries are not strictly sorted by path \(at "images\/\uffff"\)$/);
    parseRefused(order(["images/b", "images/a"]), /entries are not strictly sorted by path \(at "images\/a"\)$/);
  });
  test("rule: entry kinds are the four known ones", () => {
    for (const kind of ["snapshot-descriptor", "file-payload", "image-metadata", "image-object"]) assert.equal(parsed((i) => (i.entries[1].kind = kind)).entries[1]!.kind, kind);
    parseRefused((i) => (i.entries[1].kind = "image-layer"), /: unsupported: archive entry kind "image-layer" of "images\/manifests\/m\.json"$/);
  });
  test("rule: when member hashes are required, every included entry has one", () => {
    parseRefused((i) => delete i.entries[1].transport_integrity, /: archive member "images\/manifests\/m\.json" has no transport_integrity, which the inventory requires$/);
    assert.equal(parsed((i) => { delete i.entries[1].transport_integrity; i.entries[1].included = false; }).entries[1]!.included, false);
    assert.equal(parsed((i) => { delete i.entries[1].transport_integrity; i.requires = []; }).requires.length, 0);
  });
});

/** What streaming showed for each member of {@link base}, consistent with it. */
function observedOf(inv = parseInventory(bytesOf(base()), LABEL)): Map<string, ObservedMember> {
  return new Map(inv.entries.filter((e) => e.included).map((e) => [e.path, {
    encodedSize: e.encoded_size, apparentSize: e.apparent_size, memberHash: e.transport_integrity!.digest,
    sha256: e.kind === "file-payload" ? null : (e.integrity as { digest: string }).digest,
  }]));
}
const inv0 = () => parseInventory(bytesOf(base()), LABEL);
const membersRefused = (inv: ReturnType<typeof inv0>, observed: Map<string, ObservedMember>, rule: RegExp) => refused(() => checkInventoryMembers(inv, observed, "t.tar"), rule, "t.tar");

describe("inventory: against the members present (load step 3)", () => {
  test("rule: members that match the inventory pass; archive.json itself needs no entry", () => {
    const o = observedOf();
    o.set("archive.json", { encodedSize: 1, apparentSize: 1, memberHash: "x", sha256: null });
    assert.equal(checkInventoryMembers(inv0(), o, "t.tar"), undefined);
  });
  test("rule: an included entry is present, an omitted one absent, and nothing present is unlisted", () => {
    const o = observedOf();
    o.delete("images/manifests/m.json");
    membersRefused(inv0(), o, /^t\.tar: archive\.json lists "images\/manifests\/m\.json", which is missing from the archive$/);
    const omitted = parsed((i) => (i.entries[1].included = false));
    membersRefused(omitted, observedOf(inv0()), /^t\.tar: archive member "images\/manifests\/m\.json" is marked included:false in archive\.json but is present$/);
    const o2 = observedOf(inv0());
    o2.delete("images/manifests/m.json");
    assert.equal(checkInventoryMembers(omitted, o2, "t.tar"), undefined);
    const o3 = observedOf();
    o3.set("images/vmdk/x.vmdk", { encodedSize: 1, apparentSize: 1, memberHash: "x", sha256: null });
    membersRefused(inv0(), o3, /^t\.tar: archive member "images\/vmdk\/x\.vmdk" is not listed in archive\.json$/);
  });
  test("rule: stored and apparent sizes equal the recorded ones, each", () => {
    for (const [k, rule] of [["encodedSize", /has 11 stored \/ 4096 apparent bytes; archive\.json records 10 \/ 4096$/], ["apparentSize", /has 10 stored \/ 4097 apparent bytes; archive\.json records 10 \/ 4096$/]] as const) {
      const o = observedOf();
      const p = `files/${H2}/upper.ext4`;
      o.set(p, { ...o.get(p)!, [k]: o.get(p)![k] + 1 });
      membersRefused(inv0(), o, new RegExp(`^t\\.tar: archive member "${p}" ${rule.source}`));
    }
  });
  test("rule: a recorded member hash equals the member's; none recorded, none compared", () => {
    const o = observedOf();
    o.set("images/manifests/m.json", { ...o.get("images/manifests/m.json")!, memberHash: B3("9") });
    membersRefused(inv0(), o, new RegExp(`^t\\.tar: transport integrity mismatch for "images/manifests/m\\.json": archive\\.json records ${B3("b")}, the member hashes to ${B3("9")}$`));
    const noHashes = parsed((i) => { i.requires = []; for (const e of i.entries) delete e.transport_integrity; });
    assert.equal(checkInventoryMembers(noHashes, o, "t.tar"), undefined);
  });
  test("rule: a descriptor's or image file's sha256 equals its recorded sha256 integrity; a payload's is not compared", () => {
    const o = observedOf();
    o.set("images/manifests/m.json", { ...o.get("images/manifests/m.json")!, sha256: SHA("9") });
    membersRefused(inv0(), o, new RegExp(`^t\\.tar: archive member "images/manifests/m\\.json" hashes to ${SHA("9")}; archive\\.json records ${SHA("e")}$`));
    const o2 = observedOf();
    o2.set(`snapshots/${H1}/snapshot.json`, { ...o2.get(`snapshots/${H1}/snapshot.json`)!, sha256: SHA("9") });
    membersRefused(inv0(), o2, new RegExp(`^t\\.tar: archive member "snapshots/${H1}/snapshot\\.json" hashes to ${SHA("9")}`));
    const shaPayload = parsed((i) => (i.entries[0].integrity = { algorithm: "sha256", digest: SHA("7") }));
    assert.equal(checkInventoryMembers(shaPayload, observedOf(), "t.tar"), undefined);
    const sparseImage = parsed((i) => (i.entries[1].integrity = { algorithm: "msb-sparse-sha256-v1", digest: SHA("7") }));
    assert.equal(checkInventoryMembers(sparseImage, observedOf(), "t.tar"), undefined);
    const noIntegrity = parsed((i) => (i.entries[1].integrity = null));
    assert.equal(checkInventoryMembers(noIntegrity, observedOf(), "t.tar"), undefined);
  });
  test("rule: a descriptor entry has an owner and sha256 integrity equal to it", () => {
    const rule = new RegExp(`^t\\.tar: snapshot descriptor "snapshots/${H1}/snapshot\\.json": its integrity must be sha256 equal to its owner_snapshot$`);
    const o = observedOf();
    membersRefused(parsed((i) => (i.entries[2].owner_snapshot = null)), o, rule);
    membersRefused(parsed((i) => (i.entries[2].owner_snapshot = SHA("4"))), o, rule);
    membersRefused(parsed((i) => (i.entries[2].integrity = null)), o, rule);
    membersRefused(parsed((i) => (i.entries[2].integrity = { algorithm: "msb-sparse-sha256-v1", digest: ID1 })), o, rule);
  });
  test("rule: the snapshots listed and the descriptor entries name the same set", () => {
    const rule = /^t\.tar: archive\.json snapshots and its snapshot-descriptor entries disagree$/;
    const o = observedOf();
    o.delete(`snapshots/${H1}/snapshot.json`);
    membersRefused(parsed((i) => i.entries.splice(2, 1)), o, rule);
    const o2 = observedOf();
    o2.delete(`snapshots/${H1}/snapshot.json`);
    membersRefused(parsed((i) => (i.entries[2].included = false)), o2, rule);
    // as many descriptors as snapshots, but one names a snapshot not listed
    const H3 = "3".repeat(64);
    const other = parsed((i) => { i.entries[2] = { ...i.entries[2], path: `snapshots/${H1}/snapshot.json`, owner_snapshot: `sha256:${H3}`, integrity: { algorithm: "sha256", digest: `sha256:${H3}` } }; });
    membersRefused(other, observedOf(other), rule);
    // every listed snapshot has its descriptor, and one more descriptor names a snapshot not listed
    const extra = parsed((i) => i.entries.push({ ...i.entries[3], path: `snapshots/${H3}/snapshot.json`, owner_snapshot: `sha256:${H3}`, integrity: { algorithm: "sha256", digest: `sha256:${H3}` } }));
    membersRefused(extra, observedOf(extra), rule);
  });
});

const payloadDescriptor = (size = 4096, integrity = "null", file = "upper.ext4"): SnapshotDescriptor => parseDescriptor(descriptorText({ state: fileState(size, integrity, file) }), "d");
const checkpointDescriptor = (): SnapshotDescriptor =>
  parseDescriptor(descriptorText({ scope: "resumable", state: `{"kind":"checkpoint","checkpoint_id":"c1","manifest":"${SHA("c")}"}` }), "d");
/** Descriptors of {@link base}: ID1 a checkpoint (no payload), ID2 the payload's owner. */
const imported = (d2 = payloadDescriptor()) => new Map<string, SnapshotDescriptor>([[ID1, checkpointDescriptor()], [ID2, d2]]);
const bindRefused = (inv: ReturnType<typeof inv0>, m: Map<string, SnapshotDescriptor>, rule: RegExp) => refused(() => checkInventoryBindings(inv, m, "t.tar"), rule, "t.tar");

describe("inventory: owner bindings (load step 6)", () => {
  test("rule: consistent bindings pass", () => {
    assert.equal(checkInventoryBindings(inv0(), imported(), "t.tar"), undefined);
  });
  test("rule: the descriptors imported are exactly the snapshots listed", () => {
    const rule = /^t\.tar: the archive's snapshot descriptors do not match the snapshots archive\.json lists$/;
    const m = imported();
    m.delete(ID1);
    bindRefused(inv0(), m, rule);
    const swapped = new Map([[ID2, payloadDescriptor()], [SHA("3"), checkpointDescriptor()]]);
    bindRefused(inv0(), swapped, rule);
    const more = imported();
    more.set(SHA("3"), checkpointDescriptor());
    bindRefused(inv0(), more, rule);
  });
  test("rule: a payload's owner is imported, holds file state, and names that path, size and integrity", () => {
    const p = `files/${H2}/upper.ext4`;
    bindRefused(parsed((i) => (i.entries[0].owner_snapshot = null)), imported(), new RegExp(`^t\\.tar: file payload "${p}": its owner_snapshot null is not in the archive$`));
    bindRefused(parsed((i) => (i.entries[0].owner_snapshot = SHA("3"))), imported(), new RegExp(`^t\\.tar: file payload "${p}": its owner_snapshot "${SHA("3")}" is not in the archive$`));
    bindRefused(parsed((i) => (i.entries[0].owner_snapshot = ID1)), imported(), new RegExp(`^t\\.tar: file payload "${p}": its owner ${ID1} is checkpoint state, which has no payload$`));
    const disagrees = (d: SnapshotDescriptor) => bindRefused(inv0(), imported(d), new RegExp(`^t\\.tar: file payload binding disagrees with descriptor: "${p}" \\(the descriptor names "files/${H2}/`));
    disagrees(payloadDescriptor(4096, "null", "disk.img"));
    disagrees(payloadDescriptor(4095));
    disagrees(payloadDescriptor(4096, `{"algorithm":"sha256","digest":"${SHA("7")}"}`));
    bindRefused(inv0(), imported(payloadDescriptor(4095)), /\(the descriptor names "files\/2+\/upper\.ext4", 4095 bytes, integrity null\)$/);
  });
  test("rule: every imported file-state snapshot has its payload entry, included", () => {
    const rule = new RegExp(`^t\\.tar: snapshot ${ID2}: its payload upper\\.ext4 is not in archive\\.json$`);
    bindRefused(parsed((i) => (i.entries[0].included = false)), imported(), rule);
    bindRefused(parsed((i) => i.entries.splice(0, 1)), imported(), rule);
  });
  test("rule: an image entry has no owner and sha256 integrity; omitted image entries are not judged", () => {
    const rule = /^t\.tar: invalid image entry binding: "images\/manifests\/m\.json" \(no owner, sha256 integrity\)$/;
    bindRefused(parsed((i) => (i.entries[1].owner_snapshot = ID2)), imported(), rule);
    bindRefused(parsed((i) => (i.entries[1].integrity = null)), imported(), rule);
    bindRefused(parsed((i) => (i.entries[1].integrity = { algorithm: "msb-sparse-sha256-v1", digest: SHA("e") })), imported(), rule);
    bindRefused(parsed((i) => { i.entries[1].kind = "image-object"; i.entries[1].integrity = null; }), imported(), rule);
    assert.equal(checkInventoryBindings(parsed((i) => { i.entries[1].included = false; i.entries[1].integrity = null; }), imported(), "t.tar"), undefined);
  });
});
