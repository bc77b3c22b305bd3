/**
 * The real msb 0.6.18 as the witness of our formats, both ways: what
 * `msb snapshot save` writes, we inspect, verify and load; what our `save`
 * writes, `msb snapshot load`, `verify` and `list` accept; what our
 * `create --integrity` records, `msb snapshot verify` confirms. And one
 * index for both tools in a home msb uses (src/cli/msb-index.ts): after each
 * of our writes, `msb snapshot list` shows exactly what `snapbundle ls` shows.
 * Skipped, with the reason, where msb's platform package is missing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { expectRun, IMAGE_DIGEST, IMAGE_REF, stdoutJson } from "./helpers/cli-assert.js";
import { noise } from "./helpers/bytes.js";
import { runCli, RUNTIME, writeSparseFile } from "./helpers/cli-run.js";
import "./helpers/node-host.js"; // the suite drives the core (SnapshotStore) directly
import { nodeFs } from "../src/fs/node.js";
import { SnapshotStore } from "../src/store.js";
import { HEAVY } from "./helpers/heavy.js";
import { buildMsbImage, MKFS_EROFS_SKIP, MSB_BIN, MSB_SKIP, msbHome, msbList, msbOk, runMsb } from "./helpers/msb.js";

const T = { timeout: 60_000 };
const SKIP = { ...T, skip: MSB_SKIP };
/** Beyond the round trips, Deno and Bun run the witness only with SNAPBUNDLE_HEAVY=1 (Node always does). */
const NODE_OR_HEAVY = { ...T, skip: MSB_SKIP || (RUNTIME !== "node" && HEAVY && `${HEAVY} (on ${RUNTIME}; Node runs it by default)`) };
/** Our CLI with msb found, so it keeps msb's index in step. */
const WITH_MSB: { env: Record<string, string | undefined> } = { env: { MSB_PATH: MSB_BIN } };
/** Our CLI with no msb anywhere. */
const NO_MSB: { env: Record<string, string | undefined> } = { env: { MSB_PATH: undefined, PATH: "/nonexistent" } };

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A 2 MiB upper: data, a hole, noise. */
function upperIn(root: string, seed = 3): string {
  const p = join(root, `upper-${seed}.ext4`);
  writeSparseFile(p, 2 << 20, [[0, "hello"], [1 << 20, noise(24 << 10, seed)]]);
  return p;
}

async function sb(home: string, args: readonly string[], opts: { env?: Record<string, string | undefined> } = WITH_MSB): Promise<any> {
  const r = await runCli(["--home", home, "--json", ...args], opts);
  return stdoutJson(expectRun(r, args.join(" "), 0, { quietStderr: false }), args.join(" "));
}

async function create(home: string, name: string, upper: string, extra: readonly string[] = [], opts = WITH_MSB): Promise<any> {
  return sb(home, ["create", name, "--upper", upper, "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, ...extra], opts);
}

/** What each tool lists, in the same shape: digest, name, path, parent; sorted by digest. */
async function bothLists(home: string): Promise<{ ours: string[]; msb: string[] }> {
  // what `snapbundle --json ls` prints, read through the library to spare a process per comparison
  const ours = (await new SnapshotStore(nodeFs(), home).list()).snapshots.map((s) => `${s.digest} ${s.name} ${s.path} ${s.parent}`).sort();
  const msb = msbList(home).map((r) => `${r.digest} ${r.name} ${r.artifact_path} ${r.parent_digest}`).sort();
  return { ours, msb };
}

/** Run `body` in a fresh msb home (see {@link msbHome}), removed afterwards. */
async function withMsbHome(prefix: string, body: (root: string, home: string) => Promise<void>): Promise<void> {
  const { root, home } = msbHome(prefix);
  try {
    await body(root, home);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function assertSameIndex(home: string, after: string): Promise<void> {
  const { ours, msb } = await bothLists(home);
  assert.deepEqual(msb, ours, `after ${after}: msb snapshot list must show exactly what snapbundle ls shows`);
}

describe("msb witness: msb snapshot save → our inspect, verify, load", () => {
  // by default the two extremes; all four with SNAPBUNDLE_HEAVY=1
  const saves: string[][] = HEAVY ? [["--with-parents"], ["--plain-tar"]] : [["--with-parents"], ["--with-parents", "--plain-tar"], ["--plain-tar"], []];
  for (const layout of ["snapshot", "manifest"]) {
    const opts = layout === "snapshot" ? SKIP : { ...T, skip: MSB_SKIP || HEAVY };
    test(`rule: a bundle msb saves from a ${layout}-created chain is read and loaded intact by us (${saves.map((s) => s.join(" ") || "default").join("; ")})`, opts, async () => {
      await withMsbHome("msb-save-", async (root, home) => {
        const upper = upperIn(root);
        await create(home, "base", upper, ["--integrity", "--layout", layout]);
        await create(home, "kid", upper, ["--parent", "base", "--layout", layout]);
        msbOk(home, ["snapshot", "reindex"]);
        // msb rewrote manifest.json artifacts into snapshot.json: read the identities after that
        const listed = (await sb(home, ["ls"], NO_MSB)) as any[];
        const base = listed.find((s) => s.name === "base")!;
        const kid = listed.find((s) => s.name === "kid")!;
        assert.equal(base.form, "snapshot");
        assert.equal(kid.parent, base.digest);
        for (const opts of saves) {
          const out = join(root, `msb-${opts.join("") || "plain"}.tar${opts.includes("--plain-tar") ? "" : ".zst"}`);
          msbOk(home, ["snapshot", "save", "kid", out, ...opts]);
          const withParents = opts.includes("--with-parents");
          const report = await sb(home, ["inspect", out], NO_MSB);
          assert.equal(report.head, kid.digest, `${opts}: head`);
          assert.deepEqual(report.snapshots.map((s: any) => s.digest), withParents ? [base.digest, kid.digest] : [kid.digest], `${opts}: snapshots`);
          const verified = await runCli(["--home", join(root, "nowhere"), "verify", out]);
          expectRun(verified, `verify ${out}`, 0, { quietStderr: withParents });
          // a child alone: verify says, in one line, that its parent is missing (docs/image-cache.md)
          if (!withParents) assert.match(verified.stderr, new RegExp(`^warning: snapshot .* needs its parent ${base.digest}, which the bundle does not carry: .*\n$`));
          const target = join(root, `target-${opts.join("")}`);
          if (!withParents) {
            // a child saved alone loads where its parent is installed already
            const parent = join(root, "msb-base.tar.zst");
            if (!existsSync(parent)) msbOk(home, ["snapshot", "save", "base", parent]);
            assert.equal((await sb(target, ["load", parent], NO_MSB)).digest, base.digest);
          }
          const loaded = await sb(target, ["load", out], NO_MSB);
          assert.equal(loaded.digest, kid.digest);
          assert.equal(sha(readFileSync(join(loaded.path, "upper.ext4"))), sha(readFileSync(upper)), `${opts}: upper bytes`);
        }
      });
    });
  }
});

describe("msb witness: our save → msb snapshot load, verify, list", () => {
  const fast: [string, string[]][] = [
    ["snapshot", ["--with-parents", "--sparse", "--member-hashes", "yes"]],
    ["manifest", ["--with-parents"]],
  ];
  const heavy: [string, string[]][] = [
    ["snapshot", ["--with-parents"]],
    ["snapshot", ["--with-parents", "--plain-tar"]],
    ["manifest", ["--with-parents", "--layout", "snapshot"]],
    ["snapshot", ["--with-parents", "--member-hashes", "no"]],
    ["snapshot", ["--with-parents", "--plain-tar", "--sparse", "--member-hashes", "yes"]],
    ["manifest", ["--with-parents", "--sparse"]],
    ["manifest", ["--with-parents", "--plain-tar", "--layout", "snapshot", "--member-hashes", "yes"]],
  ];
  for (const [form, opts] of [...fast, ...heavy]) {
    const isHeavy = heavy.some(([f, o]) => f === form && o === opts);
    test(`rule: msb loads, verifies and lists the ${form}-form chain we save with ${opts.join(" ")}`, { ...T, skip: MSB_SKIP || (isHeavy && HEAVY) }, async () => {
      await withMsbHome("msb-load-", async (root, target) => {
        // the source is a plain home (no db/msb.db), so its manifest.json artifacts stay as created
        const source = join(root, "source");
        const upper = upperIn(root, 5);
        await create(source, "base", upper, ["--integrity", "--layout", form], NO_MSB);
        await create(source, "kid", upper, ["--parent", "base", "--integrity", "--layout", form], NO_MSB);
        const out = join(root, "ours.bundle");
        const saved = await sb(source, ["save", "kid", out, ...opts], NO_MSB);
        // the identities msb must end up with: ours, or for a manifest-layout bundle, msb's migration of it,
        // which our own translation (--layout snapshot) must reproduce exactly
        const expected = form === "manifest" && !opts.includes("--layout")
          ? (await sb(source, ["save", "kid", join(root, "translated.tar.zst"), "--with-parents", "--layout", "snapshot"], NO_MSB)).snapshots
          : saved.snapshots;
        msbOk(target, ["snapshot", "load", out]);
        assert.deepEqual(msbList(target).map((r) => r.digest).sort(), [...expected].sort(), "msb snapshot list shows the loaded chain");
        const rows = msbList(target);
        for (const d of expected) {
          // msb's verify takes a path or name, not a digest
          const v = runMsb(target, ["snapshot", "verify", rows.find((r) => r.digest === d)!.artifact_path]);
          assert.equal(v.code, 0, `msb snapshot verify ${d}: ${v.stderr}`);
          assert.match(v.stdout, /Verification:\s+verified/, `msb verified ${d} against its recorded integrity`);
        }
        const row = rows.find((r) => r.digest === expected[expected.length - 1])!;
        assert.equal(sha(readFileSync(join(row.artifact_path, "upper.ext4"))), sha(readFileSync(upper)), "msb's loaded upper holds our bytes");
      });
    });
  }
});

describe("msb witness: our create --integrity → msb snapshot verify", () => {
  test("rule: msb verifies the integrity we record, and refuses it once the upper changes by one byte", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-verify-", async (root, home) => {
      const upper = upperIn(root, 9);
      const info = await create(home, "s", upper, ["--integrity", "--layout", "snapshot"]);
      const ok = runMsb(home, ["snapshot", "verify", "s"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /Verification:\s+verified \(msb-file-merkle-blake3-v1 /);
      const p = join(info.path, "upper.ext4");
      const bytes = readFileSync(p);
      bytes[(1 << 20) + 100]! ^= 1;
      writeFileSync(p, bytes);
      const bad = runMsb(home, ["snapshot", "verify", "s"]);
      assert.notEqual(bad.code, 0, "msb must refuse a changed upper");
      const ours = await runCli(["--home", home, "verify", "s"], NO_MSB);
      assert.equal(ours.code, 1, "we refuse it too");
      // the manifest layout's msb-sparse-sha256-v1, which msb checks as it migrates the artifact
      const old = await create(home, "old", upper, ["--integrity", "--layout", "manifest"], NO_MSB);
      const migrated = runMsb(home, ["snapshot", "verify", old.path]);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.match(migrated.stdout, /Verification:\s+verified/);
    });
  });
});

describe("one index for both tools in an msb home (db/msb.db)", () => {
  test("rule: after our create, load, rm and reindex, msb snapshot list shows exactly what snapbundle ls shows", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-index-", async (root, home) => {
      const upper = upperIn(root, 11);
      await create(home, "base", upper, ["--integrity", "--layout", "snapshot"]);
      await assertSameIndex(home, "create base");
      await create(home, "kid", upper, ["--parent", "base"]);
      await assertSameIndex(home, "create kid");
      await create(home, "kid", upperIn(root, 12), ["--parent", "base", "--force"]);
      await assertSameIndex(home, "create --force kid (replaced in place)");
      // a bundle from another home
      const other = join(root, "other");
      await create(other, "far", upperIn(root, 13), ["--integrity", "--layout", "snapshot"], NO_MSB);
      await sb(other, ["save", "far", join(root, "far.tar.zst")], NO_MSB);
      await sb(home, ["load", join(root, "far.tar.zst")]);
      await assertSameIndex(home, "load");
      await sb(home, ["rm", "kid"]);
      await assertSameIndex(home, "rm kid");
      const extra = join(root, "extra");
      mkdirSync(extra);
      await create(other, "ext", upperIn(root, 14), ["--layout", "snapshot", "--dest-dir", extra], NO_MSB);
      await sb(home, ["reindex", extra]);
      await assertSameIndex(home, "reindex DIR");
      await sb(home, ["rm", join(extra, "ext")]);
      await assertSameIndex(home, "rm of a snapshot in an extra root");
      assert.equal(msbList(home).length, 2, "base and the loaded one remain");
    });
  });

  test("rule: a home reached through a symlink is kept in step too, whichever spelling of the home msb recorded", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-symlink-", async (root, home) => {
      const link = join(root, "link");
      symlinkSync(home, link);
      await create(link, "s", upperIn(root, 16), ["--layout", "snapshot"]);
      assert.deepEqual(msbList(link).map((r) => r.artifact_path), [join(link, "snapshots", "s")], "msb records the home as MSB_HOME spells it");
      // msb run on the real path re-records the row under it; our rm through the link must still find it stale
      msbOk(home, ["snapshot", "reindex"]);
      assert.deepEqual(msbList(home).map((r) => r.artifact_path), [join(home, "snapshots", "s")]);
      await sb(link, ["rm", "s"]);
      assert.deepEqual(msbList(home), [], "the removed snapshot's row is gone");
    });
  });

  test("rule: in a home msb 0.6.7+ would migrate, create writes snapshot.json by default, so the digest it prints is the one msb lists", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-default-", async (root, home) => {
      const info = await create(home, "s", upperIn(root, 15));
      assert.equal(info.form, "snapshot");
      assert.deepEqual(msbList(home).map((r) => r.digest), [info.digest], "msb lists the very digest create printed");
      // without msb to run, nothing would migrate it: the home's own form (manifest, as it has no snapshot.json yet) stays the default
      const { home: other } = msbHome("msb-default-none-");
      try {
        assert.equal((await create(other, "s", upperIn(root, 15), [], NO_MSB)).form, "manifest");
      } finally {
        rmSync(dirname(other), { recursive: true, force: true });
      }
    });
  });

  test("rule: without msb, our write leaves db/msb.db untouched and one line names the msb command to run", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-hint-", async (root, home) => {
      const db = join(home, "db", "msb.db");
      const before = sha(readFileSync(db));
      const r = await runCli(["--home", home, "create", "s", "--upper", upperIn(root), "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--layout", "snapshot"], NO_MSB);
      expectRun(r, "create without msb", 0, { quietStderr: false });
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^note: microsandbox's index .*msb\.db is not updated \(msb is not on PATH; set MSB_PATH\); run: MSB_HOME=\S+ msb snapshot reindex/);
      assert.equal(sha(readFileSync(db)), before, "msb.db untouched");
      assert.deepEqual(msbList(home), [], "msb still lists nothing: the hint is the remedy");
      msbOk(home, ["snapshot", "reindex"]);
      await assertSameIndex(home, "the hinted command");
    });
  });

  test("rule: a db/msb.db whose schema is newer than msb knows is left untouched, with the one-line hint", { ...T, skip: NODE_OR_HEAVY.skip || (spawnSync("sqlite3", ["-version"]).status !== 0 && "sqlite3 CLI missing") }, async () => {
    await withMsbHome("msb-newer-", async (root, home) => {
      const db = join(home, "db", "msb.db");
      const add = spawnSync("sqlite3", [db, "INSERT INTO seaql_migrations VALUES ('m20991231_000001_from_the_future', 1)"], { encoding: "utf8" });
      assert.equal(add.status, 0, add.stderr);
      const files = () => ["msb.db", "msb.db-wal", "msb.db-shm"].map((f) => (existsSync(join(home, "db", f)) ? sha(readFileSync(join(home, "db", f))) : "-")).join(" ");
      const before = files();
      const r = await runCli(["--home", home, "create", "s", "--upper", upperIn(root), "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST, "--layout", "snapshot"], WITH_MSB);
      expectRun(r, "create", 0, { quietStderr: false });
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^note: .*not updated \(msb snapshot list failed: .*schema is newer than this msb binary.*\); run: MSB_HOME=\S+ msb snapshot reindex/);
      // msb.db byte for byte, and no WAL frame written: msb's own open may leave SQLite's empty -wal and its
      // -shm index beside it (whether it does depends on how msb's refusing process closes), never data
      const [dbAfter, wal] = files().split(" ");
      assert.equal(dbAfter, before.split(" ")[0], "msb.db is byte for byte what it was");
      assert.ok(wal === "-" || wal === sha(new Uint8Array(0)), "no WAL frame was written");
    });
  });

  test("rule: a home without db/msb.db is not an msb home: no msb run, no note, no database created", T, async () => {
    const root = join(process.env.TMPDIR ?? "/tmp", `msb-none-${process.pid}-${Date.now()}`);
    mkdirSync(root, { recursive: true });
    try {
      const home = join(root, "home");
      // an msb that would leave a mark if it ran
      const fake = join(root, "msb");
      writeFileSync(fake, `#!/bin/sh\ntouch "${root}/ran"\n`, { mode: 0o755 });
      const r = await runCli(["--home", home, "create", "s", "--upper", upperIn(root), "--image", IMAGE_REF, "--image-digest", IMAGE_DIGEST], { env: { MSB_PATH: fake } });
      expectRun(r, "create", 0, { quietStderr: true });
      assert.equal(existsSync(join(root, "ran")), false, "msb was not run");
      assert.equal(existsSync(join(home, "db")), false, "no db directory");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("msb witness: differences docs/msb-differences.md states", () => {
  test("difference: msb snapshot save overwrites an existing output; our save refuses it without --force", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-overwrite-", async (root, home) => {
      await create(home, "s", upperIn(root), ["--layout", "snapshot"]);
      const out = join(root, "exists.tar.zst");
      writeFileSync(out, "precious");
      const ours = await runCli(["--home", home, "save", "s", out], NO_MSB);
      assert.equal(ours.code, 1);
      assert.match(ours.stderr, /already exists; use --force/);
      assert.equal(readFileSync(out, "utf8"), "precious", "we left it alone");
      msbOk(home, ["snapshot", "save", "s", out]);
      assert.notEqual(readFileSync(out, "utf8"), "precious", "msb replaced it without asking");
    });
  });

  test("difference: any msb command rewrites a manifest.json artifact of its home into snapshot.json, in place", NODE_OR_HEAVY, async () => {
    await withMsbHome("msb-migrate-", async (root, home) => {
      // created without msb, so nothing runs msb behind our back
      const info = await create(home, "old", upperIn(root), ["--layout", "manifest", "--integrity"], NO_MSB);
      assert.ok(existsSync(join(info.path, "manifest.json")));
      msbOk(home, ["snapshot", "list"]);
      assert.equal(existsSync(join(info.path, "manifest.json")), false, "msb removed manifest.json");
      assert.ok(existsSync(join(info.path, "snapshot.json")), "and wrote snapshot.json in its place");
      const now = (await new SnapshotStore(nodeFs(), home).list()).snapshots.find((s) => s.name === "old")!;
      assert.notEqual(now.digest, info.digest, "a new identity");
      assert.equal(now.form, "snapshot");
    });
  });
});

describe("msb witness: --with-image both ways (real EROFS images from mkfs.erofs)", () => {
  const skip = MSB_SKIP || MKFS_EROFS_SKIP;
  /** Every image cache file under `home/cache`, relative path → sha256. */
  const cacheFiles = (home: string, files: readonly string[]) => Object.fromEntries(files.map((f) => [f.slice(home.length), sha(readFileSync(f))]));

  test("rule: msb's --with-image bundle loads with us, cache files byte for byte; ours loads with msb the same way", { ...T, skip }, async () => {
    await withMsbHome("msb-image-", async (root, home) => {
      const ref = "docker.io/library/python:3.12";
      const image = await buildMsbImage(home, ref, "witness");
      const upper = upperIn(root, 17);
      await sb(home, ["create", "s", "--upper", upper, "--image", ref, "--image-digest", image.manifestDigest, "--layout", "snapshot", "--integrity"]);
      const want = cacheFiles(home, image.files);
      // msb → us
      const theirs = join(root, "msb-image.tar.zst");
      msbOk(home, ["snapshot", "save", "s", theirs, "--with-image"]);
      const report = await sb(join(root, "nowhere"), ["inspect", theirs], NO_MSB);
      assert.equal(report.cache_files.length, image.files.length, "we see every cache file msb shipped");
      const ours = join(root, "ours-target");
      await sb(ours, ["load", theirs], NO_MSB);
      assert.deepEqual(cacheFiles(ours, image.files.map((f) => ours + f.slice(home.length))), want, "our load installed msb's cache files intact");
      // us → msb
      const mine = join(root, "ours-image.tar.zst");
      await sb(home, ["save", "s", mine, "--with-image"], NO_MSB);
      const { home: target } = msbHome("msb-image-target-");
      try {
        msbOk(target, ["snapshot", "load", mine]);
        assert.deepEqual(cacheFiles(target, image.files.map((f) => target + f.slice(home.length))), want, "msb's load installed our cache files intact");
        const [row] = msbList(target);
        assert.ok(row, "msb lists the snapshot");
        assert.match(runMsb(target, ["snapshot", "verify", row.artifact_path]).stdout, /Verification:\s+verified/);
      } finally {
        rmSync(dirname(target), { recursive: true, force: true });
      }
    });
  });
});
