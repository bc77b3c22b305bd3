/** Load steps 5–7 of a microsandbox 0.6 bundle (docs/format.md §9.6): each listed snapshot's descriptor and identity, the head archive.json names, every staged payload verified; the rules of src/archive/load06.ts. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Volume } from "memfs";
import { ArchiveError, InvalidManifest, OperationAborted, SnapshotIntegrityError } from "../src/errors.js";
import { memFs } from "../src/fs/memfs.js";
import { SnapshotStore } from "../src/store.js";
import { fingerprint, writeBytes } from "./helpers/archive-fs.js";
import { fileEntry, tarOf } from "./helpers/archive-bundle.js";
import { errorRule } from "./helpers/error-rules.js";
import { FaultyFs } from "./helpers/faulty-fs.js";
import { BACKENDS, type Backend, makeHome, noise } from "./helpers/homes.js";
import { craftBundle06, crafted06, sha256Of } from "./helpers/msb06-reference.js";

/** Every test that reads a stream or a filesystem gets a bound instead of hanging the suite. */
const T = { timeout: 60_000 };

const enc = (s: string) => new TextEncoder().encode(s);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

type Members = { path: string; data: Uint8Array }[];

/**
 * Load the members as a plain tar into a fresh home; the home must be left
 * unchanged when the load is refused. Resolves the loaded head, or checks
 * the refusal with `rule`.
 */
async function loadMembers(backend: Backend, members: Members, rule?: (e: unknown) => true): Promise<{ digest: string; path: string } | null> {
  const { fs, home, store, cleanup } = await makeHome(backend);
  try {
    const bundle = `${home}/b.tar`;
    await writeBytes(fs, bundle, tarOf(...members.map((m) => fileEntry(m.path, m.data))));
    if (rule === undefined) {
      const head = await store.load(bundle);
      for (const s of (await store.list()).snapshots) assert.equal((await store.verify(s.digest)).integrity.status, "verified");
      return head;
    }
    const before = await fingerprint(fs, home);
    await assert.rejects(store.load(bundle), rule);
    assert.deepEqual(await fingerprint(fs, home), before, "the home is unchanged");
    return null;
  } finally {
    cleanup();
  }
}

/** The label a load of `<home>/b.tar` names in its messages. */
const LABEL = /^\/.*\/home\/b\.tar: /.source;

for (const backend of BACKENDS) {
  describe(`0.6 bundle load steps 5–7 on ${backend.label}`, () => {
    test("rule: every snapshot archive.json lists needs its descriptor at snapshots/<its id>/snapshot.json", T, async () => {
      const s = await crafted06(noise(2000, 21), "sha256");
      const elsewhere = "f".repeat(64);
      const { members } = await craftBundle06([s], {
        memberHashes: false,
        mutate: (inv, m) => {
          // the same (hash-matching) descriptor bytes, filed under another id
          const d = m.find((x) => x.path.startsWith("snapshots/"))!;
          const e = inv.entries.find((x: any) => x.kind === "snapshot-descriptor");
          d.path = e.path = `snapshots/${elsewhere}/snapshot.json`;
        },
      });
      await loadMembers(
        backend,
        members,
        errorRule(ArchiveError, "archive", new RegExp(`${LABEL}${esc(`archive.json lists snapshot ${s.digest}, but the archive has no snapshots/${s.digest.slice(7)}/snapshot.json`)}$`)),
      );
    });

    test("rule: an archive.json refusal names the bundle and archive.json", T, async () => {
      const s = await crafted06(noise(2000, 20), "sha256");
      const { members } = await craftBundle06([s], { memberHashes: true, mutate: (inv) => (inv.extra = 1) });
      await loadMembers(backend, members, errorRule(ArchiveError, "archive", new RegExp(`${LABEL}archive\\.json: archive\\.json\\.extra is not a known field$`)));
    });

    test("rule: a descriptor that does not parse is refused with the parser's InvalidManifest", T, async () => {
      const s = await crafted06(noise(2000, 22), "sha256");
      const text = s.text.replace(`"schema":1`, `"schema":2`);
      const bad = { ...s, text, digest: sha256Of(enc(text)) };
      const { members } = await craftBundle06([bad], { memberHashes: true });
      await loadMembers(backend, members, errorRule(InvalidManifest, "invalid-manifest", new RegExp(esc(`snapshots/${bad.digest.slice(7)}/snapshot.json`))));
    });

    test("rule: a descriptor whose parsed identity is not the id it is listed under is not canonical", T, async () => {
      const s = await crafted06(noise(2000, 23), "sha256");
      const pretty = JSON.stringify(JSON.parse(s.text), null, 2);
      const fake = { ...s, text: pretty, digest: sha256Of(enc(pretty)) };
      const { members } = await craftBundle06([fake], { memberHashes: true });
      await loadMembers(
        backend,
        members,
        errorRule(ArchiveError, "archive", new RegExp(`${LABEL}${esc(`snapshots/${fake.digest.slice(7)}/snapshot.json is not in canonical form: its identity is ${s.digest}, not ${fake.digest}`)}$`)),
      );
    });

    test("rule: the head is the snapshot archive.json names, wherever it sorts (not the last, not the leaf)", T, async () => {
      const p = await crafted06(noise(3000, 24), "msb-sparse-sha256-v1");
      const c = await crafted06(noise(3000, 25), "sha256", p.digest);
      for (const head of [p, c]) {
        const { members } = await craftBundle06([p, c], { memberHashes: false, mutate: (inv) => (inv.head = head.digest) });
        const loaded = await loadMembers(backend, members);
        assert.equal(loaded!.digest, head.digest);
        assert.match(loaded!.path, new RegExp(`/snapshots/${head.digest.slice(7)}$`));
      }
    });

    test("rule: every staged payload is verified against its descriptor's integrity (a 0.6.7–0.6.8 bundle has no member hash to catch it)", T, async () => {
      const p = await crafted06(noise(3000, 26), "msb-sparse-sha256-v1");
      const c = await crafted06(noise(3000, 27), "sha256", p.digest);
      for (const victim of [p, c]) {
        const { members } = await craftBundle06([p, c], { memberHashes: false });
        const m = members.find((x) => x.path === `files/${victim.digest.slice(7)}/upper.ext4`)!;
        m.data = m.data.slice();
        m.data[1500]! ^= 0x40;
        await loadMembers(backend, members, errorRule(SnapshotIntegrityError, "snapshot-integrity", new RegExp(esc(victim.digest.slice(7)))));
      }
    });
  });
}

describe("0.6 bundle load: abort", () => {
  test("rule: an abort while a load stages its payloads stops it; no staged payload is read back (each is checked on the bytes as they were written); the home is unchanged", { timeout: 30_000 }, async () => {
    const p = await crafted06(noise(3000, 28), "sha256");
    const c = await crafted06(noise(3000, 29), "sha256", p.digest);
    const { members } = await craftBundle06([p, c], { memberHashes: false });
    const ctl = new AbortController();
    let payloadReads = 0;
    const fs = new FaultyFs(memFs(new Volume()), {
      before: (op) => {
        if (!op.path.endsWith("/upper.ext4")) return;
        if (op.kind === "read") payloadReads++;
        if (op.kind === "write" && !ctl.signal.aborted) ctl.abort(); // the first payload is being staged
      },
    });
    await fs.mkdir("/t/home", { recursive: true });
    await writeBytes(fs, "/t/b.tar", tarOf(...members.map((m) => fileEntry(m.path, m.data))));
    const store = new SnapshotStore(fs, "/t/home", { cwd: "/t", userHome: "/t" });
    const before = await fingerprint(fs, "/t/home");
    await assert.rejects(store.load("/t/b.tar", { signal: ctl.signal }), errorRule(OperationAborted, "aborted", /./));
    assert.equal(ctl.signal.aborted, true, "a payload was staged");
    assert.equal(payloadReads, 0);
    // without the abort the same load installs, still reading no payload back
    const clean = new FaultyFs(memFs(new Volume()), { before: (op) => void (op.kind === "read" && op.path.endsWith("/upper.ext4") && payloadReads++) });
    await clean.mkdir("/t/home", { recursive: true });
    await writeBytes(clean, "/t/b.tar", tarOf(...members.map((m) => fileEntry(m.path, m.data))));
    assert.equal((await new SnapshotStore(clean, "/t/home", { cwd: "/t", userHome: "/t" }).load("/t/b.tar")).digest, c.digest);
    assert.equal(payloadReads, 0);
    assert.deepEqual(await fingerprint(fs, "/t/home"), before);
  });
});
