/**
 * Snapshots in OCI registries (src/oci/, docs/oci-format.md), against real
 * registries the suite starts: CNCF distribution (`docker-registry serve`)
 * over plain HTTP, over HTTPS with htpasswd Basic auth and a CA made by
 * openssl, and with token auth (a minimal token server here); `skopeo` and the
 * real `msb` as independent witnesses; a fault-injecting proxy for corrupt
 * bytes, broken connections and error statuses, and the registry killed
 * mid-push and mid-pull.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryError } from "../src/errors.js";
import { nodeFs } from "../src/fs/node.js";
import { inspectRemote, pullSnapshot } from "../src/oci/pull.js";
import { pushSnapshot } from "../src/oci/push.js";
import { dockerConfigCredentials, IMAGE_CACHE_LAYER, parseSnapshotManifest, SNAPSHOT_ARTIFACT_TYPE, SNAPSHOT_LAYER } from "../src/oci/format.js";
import { OperationAborted } from "../src/errors.js";
import { buildImage } from "./helpers/image.js";
import { looksLikeRegistryReference, parseRegistryReference } from "../src/oci/reference.js";
import { SnapshotStore } from "../src/store.js";
import { runCli } from "./helpers/cli-run.js";
import { noise, tree } from "./helpers/homes.js";
import { FaultProxy, htpasswdFile, makePki, Registry, TokenServer } from "./helpers/registry.js";

const T = { timeout: 60_000 };
const fs = nodeFs();
const IMG = { ref: "docker.io/library/python:3.12", manifest_digest: `sha256:${"b".repeat(64)}` };
const MSB = join(process.cwd(), "node_modules/@superradcompany/microsandbox-linux-x64-gnu/bin/msb");

let root: string;
const fresh = (name: string) => {
  const dir = join(root, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const homeStore = (dir: string) => new SnapshotStore(fs, dir, { cwd: root, userHome: root });

/** A home holding `base` (data at two offsets of a sparse 4 MiB upper) and `child` (its parent `base`). */
async function chainHome(seed: number, form: "manifest" | "snapshot" = "manifest"): Promise<{ home: string; store: SnapshotStore; base: string; child: string }> {
  const home = fresh("home");
  const store = homeStore(home);
  const upper = join(home, "..", `upper-${seed}.ext4`);
  const make = (data: Uint8Array) => {
    writeFileSync(upper, new Uint8Array(0));
    execFileSync("truncate", ["-s", String(4 << 20), upper]);
    const fd = readFileSync(upper);
    fd.set(data.subarray(0, 256 << 10), 0);
    fd.set(data.subarray(256 << 10), 3 << 20);
    writeFileSync(upper, fd);
  };
  make(noise(320 << 10, seed));
  const base = (await store.create("base", { upper, image: IMG, integrity: true, form })).digest;
  make(noise(320 << 10, seed + 1));
  const child = (await store.create("child", { upper, image: IMG, integrity: true, parent: base, form })).digest;
  return { home, store, base, child };
}

const plain = { plainHttp: true, retries: 1, retryDelayMs: 5 };

describe("oci: push and pull against a plain-HTTP distribution registry", () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let a: Awaited<ReturnType<typeof chainHome>>;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "snapbundle-oci-"));
    reg = await Registry.start();
    proxy = new FaultProxy(reg.port);
    await proxy.start();
    a = await chainHome(11);
  }, T);
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    rmSync(root, { recursive: true, force: true });
  }, T);

  test("rule: REF is a registry reference only with a host part (., : or localhost) and the OCI grammar", () => {
    assert.equal(looksLikeRegistryReference("localhost/snaps:base"), true);
    assert.equal(looksLikeRegistryReference("127.0.0.1:5000/a/b@sha256:" + "a".repeat(64)), true);
    assert.equal(looksLikeRegistryReference("base"), false);
    assert.equal(looksLikeRegistryReference("snaps/base.tar.zst"), false, "no host: a relative path");
    assert.equal(looksLikeRegistryReference("./x.y/z"), false);
    const r = parseRegistryReference("docker.io/me/snaps");
    assert.deepEqual([r.endpoint, r.repository, r.tag, r.digest], ["registry-1.docker.io", "me/snaps", "latest", null]);
    assert.throws(() => parseRegistryReference("Host.io/Snaps"), /lowercase/);
  });

  test("rule: a pushed chain is a standard OCI artifact: skopeo reads it, copies it to a layout whose layer blobs snapbundle load and msb snapshot load accept", T, async () => {
    const r = await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    assert.deepEqual(r.layers.map((l) => l.action), ["uploaded", "uploaded"]);
    const raw = JSON.parse(execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/snaps:chain`], { encoding: "utf8" }));
    assert.equal(raw.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assert.equal(raw.artifactType, SNAPSHOT_ARTIFACT_TYPE);
    assert.deepEqual(raw.config, { mediaType: "application/vnd.oci.empty.v1+json", digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size: 2 });
    assert.deepEqual(raw.layers.map((l: { mediaType: string }) => l.mediaType), [SNAPSHOT_LAYER, SNAPSHOT_LAYER]);
    assert.deepEqual(raw.layers.map((l: { annotations: Record<string, string> }) => l.annotations["io.snapbundle.snapshot.digest"]), [a.base, a.child], "oldest first");
    assert.equal(raw.layers[1].annotations["io.snapbundle.snapshot.parent"], a.base);
    assert.match(raw.layers[0].annotations["org.opencontainers.image.created"], /^\d{4}-\d\d-\d\dT/);

    // skopeo copies the artifact into an OCI layout; its layer blobs load, oldest first, in snapbundle and in msb
    // (msb 0.6.18 loads a manifest.json child only beside its parent in one bundle, so its witness here is a chain in its own 0.6 layout)
    const s06 = await chainHome(12, "snapshot");
    await pushSnapshot(s06.store, "child", `${reg.host}/snaps06:chain`, { ...plain, withParents: true });
    for (const [repo, chain] of [["snaps", a], ["snaps06", s06]] as const) {
      const layout = join(fresh("layout"), "oci");
      execFileSync("skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", `docker://${reg.host}/${repo}:chain`, `oci:${layout}:chain`], { stdio: "pipe" });
      const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
      const manifest = JSON.parse(readFileSync(join(layout, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"));
      const blobs = manifest.layers.map((l: { digest: string }) => join(layout, "blobs/sha256", l.digest.slice(7)));
      assert.equal(blobs.length, 2);
      const sbHome = fresh("sb-home");
      for (const b of blobs) await homeStore(sbHome).load(b);
      assert.deepEqual((await homeStore(sbHome).list()).snapshots.map((s) => s.digest).sort(), [chain.base, chain.child].sort(), repo);
      const msbHome = fresh("msb-home");
      for (const b of repo === "snaps" ? blobs.slice(0, 1) : blobs) execFileSync(MSB, ["snapshot", "load", b], { env: { ...process.env, MSB_HOME: msbHome }, stdio: "pipe" });
      const installed = readdirSync(join(msbHome, "snapshots")).filter((n) => !n.startsWith("."));
      assert.equal(installed.length, repo === "snaps" ? 1 : 2, `msb installed ${installed.join(", ")}`);
    }
    // and a 0.6-layout chain pulls (its layers load one by one: each carries its own archive.json)
    const p = await pullSnapshot(homeStore(fresh("pull06")), `${reg.host}/snaps06:chain`, plain);
    assert.deepEqual(p.fetched, [s06.base, s06.child]);
  });

  test("rule: a pull installs the whole chain, the same bytes, and downloads no layer of a snapshot installed already", T, async () => {
    await pushSnapshot(a.store, "base", `${reg.host}/snaps:base`, plain);
    await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    const b = homeStore(fresh("pull-home"));
    const first = await pullSnapshot(b, `${reg.host}/snaps:base`, plain);
    assert.deepEqual([first.fetched, first.alreadyInstalled], [[a.base], false]);
    const mark = reg.log.length;
    const second = await pullSnapshot(b, `${reg.host}/snaps:chain`, plain);
    assert.deepEqual([second.fetched, second.skipped], [[a.child], [a.base]]);
    const gets = reg.requests("GET", mark, "/blobs/");
    assert.equal(gets.length, 1, `one layer downloaded, not ${gets.length}: ${gets.join(" | ")}`);
    for (const name of ["base", "child"]) {
      const src = await a.store.resolve(name);
      const dst = await b.resolve(src.digest);
      assert.ok(readFileSync(src.upperPath!).equals(readFileSync(dst.upperPath!)), `${name}: the upper arrived unchanged`);
    }
    const again = await pullSnapshot(b, `${reg.host}/snaps:chain`, plain);
    assert.equal(again.alreadyInstalled, true);
  });

  test("rule: pushing a child after its parent uploads only the child's layer (the registry's request log and storage say so)", T, async () => {
    const d = await chainHome(21);
    await pushSnapshot(d.store, "base", `${reg.host}/dedupe:base`, plain);
    const mark = reg.log.length;
    const blobsBefore = new Set(reg.blobs());
    const r = await pushSnapshot(d.store, "child", `${reg.host}/dedupe:child`, { ...plain, withParents: true });
    assert.deepEqual(r.layers.map((l) => l.action), ["exists", "uploaded"]);
    const posts = reg.requests("POST", mark, "/blobs/uploads/");
    assert.equal(posts.length, 1, `one upload session, not ${posts.length}`);
    const added = reg.blobs().filter((x) => !blobsBefore.has(x));
    assert.deepEqual(added.sort(), [r.layers[1]!.digest, r.digest].sort(), "the storage gained the child's layer and the manifest only");
  });

  test("rule: re-pushing an unchanged chain uploads nothing and puts the same manifest", T, async () => {
    const first = await pushSnapshot(a.store, "child", `${reg.host}/snaps:again`, { ...plain, withParents: true });
    const mark = reg.log.length;
    const second = await pushSnapshot(a.store, "child", `${reg.host}/snaps:again`, { ...plain, withParents: true });
    assert.equal(second.uploadedBytes, 0);
    assert.deepEqual(reg.requests("POST", mark), []);
    assert.deepEqual(reg.requests("PATCH", mark), []);
    assert.equal(second.digest, first.digest);
  });

  test("rule: a blob known in another repository of the registry is mounted, not uploaded; skopeo copy to another repository keeps it pullable", T, async () => {
    await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    const mark = reg.log.length;
    const r = await pushSnapshot(a.store, "child", `${reg.host}/elsewhere:chain`, { ...plain, withParents: true, mountFrom: ["snaps"] });
    assert.deepEqual(r.layers.map((l) => l.action), ["mounted", "mounted"]);
    assert.deepEqual(reg.requests("PATCH", mark), []);
    execFileSync("skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", `docker://${reg.host}/snaps:chain`, `docker://${reg.host}/copied:v1`], { stdio: "pipe" });
    const p = await pullSnapshot(homeStore(fresh("copied")), `${reg.host}/copied:v1`, plain);
    assert.equal(p.head.digest, a.child);
  });

  test("rule: inspect and verify of a REF install nothing; verify reads every layer", T, async () => {
    await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    const empty = homeStore(fresh("inspect-home"));
    const mark = reg.log.length;
    const r = await inspectRemote(empty, `${reg.host}/snaps:chain`, plain);
    assert.deepEqual(r.snapshots.map((s) => s.digest), [a.base, a.child]);
    assert.deepEqual(reg.requests("GET", mark, "/blobs/"), [], "inspect reads no layer");
    const v = await inspectRemote(empty, `${reg.host}/snaps:chain`, { ...plain, verify: true });
    assert.equal(v.bundles!.length, 2);
    assert.deepEqual(await tree(fs, empty.layout.home), []);
    const cli = await runCli(["--json", "verify", `${reg.host}/snaps:chain`, "--plain-http"]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).head, a.child);
  });

  test("attack: a registry serving wrong bytes for a layer is refused naming the digest; the home stays as it was", T, async () => {
    const r = await pushSnapshot(a.store, "child", `${proxy.host}/snaps:chain`, { ...plain, withParents: true });
    const bad = r.layers[1]!.digest;
    await proxy.rules([{ method: "GET", pathEndsWith: `/blobs/${bad}`, fault: { kind: "corrupt" } }]);
    const home = fresh("corrupt-home");
    try {
      await assert.rejects(pullSnapshot(homeStore(home), `${proxy.host}/snaps:chain`, plain), (e: unknown) => {
        assert.ok(e instanceof RegistryError && e.reason === "digest-mismatch", String(e));
        assert.match(e.message, new RegExp(`blob ${bad} is corrupt: its bytes hash to sha256:`));
        return true;
      });
    } finally {
      await proxy.rules([]);
    }
    assert.deepEqual(await tree(fs, home), []);
  });

  test("rule: a download cut mid-layer resumes with Range from the byte reached", T, async () => {
    const r = await pushSnapshot(a.store, "child", `${proxy.host}/snaps:chain`, { ...plain, withParents: true });
    const layer = r.layers[0]!;
    assert.ok(layer.size > 100_000);
    await proxy.clearSeen();
    // every whole-blob GET is cut (a client's own transparent retry too); only a Range request gets through
    await proxy.rules([{ method: "GET", pathEndsWith: `/blobs/${layer.digest}`, rangeless: true, fault: { kind: "cut", after: 70_000 } }]);
    try {
      const p = await pullSnapshot(homeStore(fresh("resume-home")), `${proxy.host}/snaps:chain`, plain);
      assert.equal(p.head.digest, a.child);
    } finally {
      await proxy.rules([]);
    }
    const ranged = (await proxy.seen()).filter((s) => s.path.endsWith(layer.digest) && s.range !== null);
    assert.equal(ranged.length, 1, "resumed once");
    assert.match(ranged[0]!.range!, /^bytes=\d+-$/);
    assert.ok(Number(/=(\d+)-/.exec(ranged[0]!.range!)![1]) > 0);
  });

  test("rule: 401, 403, 404, 429 and 500 each fail with a message naming the reference and the cause (429 and 500 after their retries)", T, async () => {
    await pushSnapshot(a.store, "base", `${proxy.host}/snaps:base`, plain);
    const ref = `${proxy.host}/snaps:base`;
    const cases: [number, string, RegExp][] = [
      [401, "unauthorized", /unauthorized: GET manifest base needs credentials.*--creds/],
      [403, "denied", /access denied: GET manifest base is not allowed/],
      [404, "not-found", /not found: manifest base is not in/],
      [429, "rate-limited", /rate limited: GET manifest base answered HTTP 429 Too Many Requests after 2 attempts/],
      [500, "server", /registry failure: GET manifest base answered HTTP 500 after 2 attempts \(the registry says: UNKNOWN: boom\)/],
    ];
    try {
      for (const [status, reason, message] of cases) {
        await proxy.clearSeen();
        await proxy.rules([{ pathIncludes: "/manifests/", fault: { kind: "status", status, headers: status === 429 ? { "retry-after": "0" } : {}, body: '{"errors":[{"code":"UNKNOWN","message":"boom"}]}' } }]);
        await assert.rejects(pullSnapshot(homeStore(fresh("status")), ref, plain), (e: unknown) => {
          assert.ok(e instanceof RegistryError, String(e));
          assert.equal(e.reason, reason);
          assert.equal(e.status, status);
          assert.ok(e.message.startsWith(`${ref}: `), e.message);
          assert.match(e.message, message);
          return true;
        });
        const tries = (await proxy.seen()).filter((s) => s.path.includes("/manifests/")).length;
        assert.equal(tries, status === 429 || status === 500 ? 2 : 1, `HTTP ${status}: ${tries} requests`);
      }
      // a push whose manifest PUT fails leaves no tag
      await proxy.rules([{ method: "PUT", pathIncludes: "/manifests/", fault: { kind: "status", status: 500 } }]);
      await assert.rejects(pushSnapshot(a.store, "child", `${proxy.host}/notag:x`, { ...plain, withParents: true }), /registry failure: PUT manifest x/);
    } finally {
      await proxy.rules([]);
    }
    await assert.rejects(pullSnapshot(homeStore(fresh("notag")), `${reg.host}/notag:x`, plain), /not found/);
  });

  test("fault: the registry killed mid-push leaves no tag; the rerun uploads only the missing layer", T, async () => {
    const d = await chainHome(31);
    await proxy.rules([{ method: "POST", pathIncludes: "/killed/blobs/uploads/", nth: 2, fault: { kind: "kill", pid: reg.pid } }]);
    try {
      await assert.rejects(pushSnapshot(d.store, "child", `${proxy.host}/killed:x`, { ...plain, withParents: true }), (e: unknown) => e instanceof RegistryError && e.reason === "network");
    } finally {
      await proxy.rules([]);
    }
    await reg.kill(); // reaped (the proxy killed it)
    await reg.start();
    await assert.rejects(pullSnapshot(homeStore(fresh("killed")), `${reg.host}/killed:x`, plain), /not found/, "no tag at missing blobs");
    const mark = reg.log.length;
    const r = await pushSnapshot(d.store, "child", `${proxy.host}/killed:x`, { ...plain, withParents: true });
    assert.deepEqual(r.layers.map((l) => l.action), ["exists", "uploaded"]);
    assert.equal(reg.requests("POST", mark, "/blobs/uploads/").length, 2, "the child's layer and the empty config only");
    assert.equal((await pullSnapshot(homeStore(fresh("killed-pull")), `${reg.host}/killed:x`, plain)).head.digest, d.child);
  });

  test("fault: the registry killed mid-pull leaves the home as it was; the rerun installs the chain", T, async () => {
    const r = await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    const second = r.layers[1]!.digest;
    await proxy.rules([{ method: "GET", pathEndsWith: `/blobs/${second}`, nth: 1, fault: { kind: "kill", pid: reg.pid } }]);
    const home = fresh("killed-pull");
    try {
      await assert.rejects(pullSnapshot(homeStore(home), `${proxy.host}/snaps:chain`, plain), (e: unknown) => e instanceof RegistryError && e.reason === "network");
    } finally {
      await proxy.rules([]);
    }
    assert.deepEqual(await tree(fs, home), []);
    await reg.kill(); // reaped (the proxy killed it)
    await reg.start();
    const p = await pullSnapshot(homeStore(home), `${proxy.host}/snaps:chain`, plain);
    assert.deepEqual(p.fetched, [a.base, a.child]);
  });

  test("rule: --with-image pushes each image cache file as a layer of its own, shared by the snapshots of that image; a pull installs them", T, async () => {
    const home = fresh("img-home");
    const store = homeStore(home);
    const img = await buildImage(fs, home, "python:3.12", 2);
    const upper = join(home, "..", "img-upper.ext4");
    writeFileSync(upper, noise(64 << 10, 61));
    const image = { ref: img.ref, manifest_digest: img.manifest_digest };
    await store.create("one", { upper, image, integrity: true });
    writeFileSync(upper, noise(64 << 10, 62));
    await store.create("two", { upper, image, integrity: true });
    const one = await pushSnapshot(store, "one", `${reg.host}/img:one`, { ...plain, withImage: true });
    const cache = one.layers.filter((l) => l.mediaType === IMAGE_CACHE_LAYER);
    assert.equal(cache.length, img.files.length, "one layer per cache file");
    assert.ok(cache.every((l) => l.action === "uploaded"));
    const mark = reg.log.length;
    const two = await pushSnapshot(store, "two", `${reg.host}/img:two`, { ...plain, withImage: true });
    assert.deepEqual(two.layers.map((l) => l.action), ["uploaded", ...cache.map(() => "exists")], "the image's files are stored once");
    assert.equal(reg.requests("POST", mark, "/blobs/uploads/").length, 1);
    const dst = fresh("img-pull");
    const p = await pullSnapshot(homeStore(dst), `${reg.host}/img:two`, plain);
    assert.equal(p.head.image_manifest_digest, img.manifest_digest);
    for (const f of img.files) {
      const rel = f.slice(home.length);
      assert.ok(readFileSync(join(dst, rel)).equals(readFileSync(f)), `${rel} installed unchanged`);
    }
  });

  test("rule: a pull stopped by its AbortSignal leaves the home as it was; progress counts the layer bytes", T, async () => {
    await pushSnapshot(a.store, "child", `${reg.host}/snaps:chain`, { ...plain, withParents: true });
    const home = fresh("abort-home");
    const ac = new AbortController();
    const seen: number[] = [];
    await assert.rejects(
      pullSnapshot(homeStore(home), `${reg.host}/snaps:chain`, { ...plain, signal: ac.signal, onProgress: (p) => {
        if (p.phase === "downloading") seen.push(p.bytes);
        if (p.bytes > 50_000) ac.abort("test");
      } }),
      (e: unknown) => e instanceof OperationAborted,
    );
    assert.ok(seen.length > 0 && seen.every((b, i) => i === 0 || b >= seen[i - 1]!), "progress rises");
    assert.deepEqual(await tree(fs, home), []);
  });

  test("attack: a manifest whose layers are not a chain oldest first, or of another type, is refused before any layer is read", () => {
    const layer = (digest: string, parent?: string) => ({ mediaType: SNAPSHOT_LAYER, digest: `sha256:${"c".repeat(64)}`, size: 1, annotations: { "io.snapbundle.snapshot.digest": digest, ...(parent ? { "io.snapbundle.snapshot.parent": parent } : {}) } });
    const doc = (layers: unknown[], extra: object = {}) => new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: SNAPSHOT_ARTIFACT_TYPE, config: {}, layers, ...extra }));
    const A = `sha256:${"a".repeat(64)}`;
    const B = `sha256:${"b".repeat(64)}`;
    assert.equal(parseSnapshotManifest(doc([layer(A), layer(B, A)]), "r").snapshots.length, 2);
    assert.throws(() => parseSnapshotManifest(doc([layer(B, A), layer(A)]), "r"), /snapshot layer 1's parent is not the layer before it/);
    assert.throws(() => parseSnapshotManifest(doc([layer(A)], { artifactType: "application/vnd.oci.image.config.v1+json" }), "r"), /its artifactType is/);
    assert.throws(() => parseSnapshotManifest(doc([{ ...layer(A), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }]), "r"), /layer 0 has media type/);
    assert.throws(() => parseSnapshotManifest(doc([layer(A), { mediaType: IMAGE_CACHE_LAYER, digest: `sha256:${"d".repeat(64)}`, size: 1, annotations: { "org.opencontainers.image.title": "cache/../../etc/passwd" } }]), "r"), /bad org\.opencontainers\.image\.title/);
    assert.throws(() => parseSnapshotManifest(doc([]), "r"), /no snapshot layer/);
  });

  test("rule: Docker config auths give credentials by registry host (auth, or username and password)", () => {
    const auth = Buffer.from("u:p:w").toString("base64");
    const cfg = JSON.stringify({ auths: { "https://index.docker.io/v1/": { auth }, "localhost:5000": { username: "x", password: "y" } } });
    assert.deepEqual(dockerConfigCredentials(cfg, "docker.io"), { username: "u", password: "p:w" });
    assert.deepEqual(dockerConfigCredentials(cfg, "localhost:5000"), { username: "x", password: "y" });
    assert.equal(dockerConfigCredentials(cfg, "ghcr.io"), null);
    assert.equal(dockerConfigCredentials("not json", "ghcr.io"), null);
  });

  test("rule: --json push and pull through the CLI; a REF that is an existing path is a path", T, async () => {
    const push = await runCli(["--home", a.home, "--json", "push", "child", `${reg.host}/cli:v1`, "--with-parents", "--plain-http"]);
    assert.equal(push.code, 0, push.stderr);
    const doc = JSON.parse(push.stdout);
    assert.match(doc.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(doc.layers.length, 2);
    const home = fresh("cli-pull");
    const pull = await runCli(["--home", home, "--json", "pull", `${reg.host}/cli:v1`, "--plain-http", "--name", "mine"]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(JSON.parse(pull.stdout).name, "mine");
    assert.equal(JSON.parse(pull.stdout).digest, a.child);
    const usage = await runCli(["--home", a.home, "push", "child", "not-a-registry/x"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /is not a registry reference/);
  });
});

describe("oci: HTTPS with htpasswd Basic auth and a CA made by openssl", () => {
  let reg: Registry;
  let pki: ReturnType<typeof makePki>;
  let a: Awaited<ReturnType<typeof chainHome>>;
  const PASSWORD = "s3cret-Pa55word";

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "snapbundle-oci-tls-"));
    pki = makePki(join(root, "pki"));
    reg = await Registry.start({ tls: { cert: pki.serverCert, key: pki.serverKey }, htpasswd: htpasswdFile(root, "alice", PASSWORD) });
    a = await chainHome(41);
  }, T);
  after(async () => {
    await reg?.stop();
    rmSync(root, { recursive: true, force: true });
  }, T);

  test("rule: push with --ca-file and --creds, pull with the Docker config's auths, verify with the environment's credentials; no run prints the password", T, async () => {
    const ref = `${reg.host}/tls/snaps:chain`;
    const runs = [];
    const push = await runCli(["--home", a.home, "--json", "push", "child", ref, "--with-parents", "--ca-file", pki.caPem, "--creds", `alice:${PASSWORD}`]);
    runs.push(push);
    assert.equal(push.code, 0, push.stderr);
    const docker = fresh("docker");
    writeFileSync(join(docker, "config.json"), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString("base64") } } }));
    const home = fresh("tls-pull");
    const pull = await runCli(["--home", home, "--json", "pull", ref, "--ca-file", pki.caPem], { env: { DOCKER_CONFIG: docker } });
    runs.push(pull);
    assert.equal(pull.code, 0, pull.stderr);
    assert.equal(JSON.parse(pull.stdout).digest, a.child);
    const verify = await runCli(["verify", ref, "--ca-file", pki.caPem], { env: { SNAPBUNDLE_REGISTRY_USER: "alice", SNAPBUNDLE_REGISTRY_PASSWORD: PASSWORD } });
    runs.push(verify);
    assert.equal(verify.code, 0, verify.stderr);
    const anonymous = await runCli(["pull", ref, "--ca-file", pki.caPem, "--retries", "0"], { env: { DOCKER_CONFIG: fresh("nodocker") } });
    runs.push(anonymous);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, new RegExp(`^error: ${ref.replace(/[.]/g, "\\.")}: unauthorized: GET manifest chain needs credentials`));
    const wrong = await runCli(["pull", ref, "--ca-file", pki.caPem, "--creds", `alice:not-${PASSWORD}`, "--retries", "0"]);
    runs.push(wrong);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /unauthorized/);
    for (const r of runs) {
      assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), "the password is never printed");
      assert.ok(!r.stderr.includes(Buffer.from(`alice:${PASSWORD}`).toString("base64")));
    }
  });

  test("rule: TLS is verified by default: without the CA the pull fails and says which option would help", T, async () => {
    const r = await runCli(["pull", `${reg.host}/tls/snaps:chain`, "--creds", `alice:${PASSWORD}`, "--retries", "0"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach https:\/\/127\.0\.0\.1:\d+ .*--ca-file/);
  });
});

describe("oci: token auth (distribution delegating to a token server)", () => {
  let reg: Registry;
  let tokens: TokenServer;
  let a: Awaited<ReturnType<typeof chainHome>>;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "snapbundle-oci-token-"));
    const pki = makePki(join(root, "pki"));
    tokens = new TokenServer(pki, "snapbundle-test-registry", "snapbundle-test-issuer", { bob: "hunter2", reader: "readonly" }, ["reader"]);
    await tokens.start();
    reg = await Registry.start({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootcertbundle: pki.tokenCert } });
    a = await chainHome(51);
  }, T);
  after(async () => {
    await reg?.stop();
    await tokens?.stop();
    rmSync(root, { recursive: true, force: true });
  }, T);

  test("rule: Bearer tokens through the WWW-Authenticate challenge: push and pull with the scopes asked; a wrong password and a read-only user are refused clearly", T, async () => {
    const ref = `${reg.host}/tok/snaps:chain`;
    const bob = { ...plain, credentials: { username: "bob", password: "hunter2" } };
    const r = await pushSnapshot(a.store, "child", ref, { ...bob, withParents: true });
    assert.deepEqual(r.layers.map((l) => l.action), ["uploaded", "uploaded"]);
    assert.ok(tokens.requests.some((q) => q.user === "bob" && q.scopes.includes("repository:tok/snaps:pull,push")), JSON.stringify(tokens.requests));
    const p = await pullSnapshot(homeStore(fresh("tok-pull")), ref, { ...plain, credentials: { username: "reader", password: "readonly" } });
    assert.equal(p.head.digest, a.child);
    await assert.rejects(pullSnapshot(homeStore(fresh("tok-bad")), ref, { ...plain, credentials: { username: "bob", password: "wrong" } }), (e: unknown) => {
      assert.ok(e instanceof RegistryError && e.reason === "unauthorized", String(e));
      assert.match(e.message, /the token server http:\/\/127\.0\.0\.1:\d+\/token refused a token for pull access \(HTTP 401\)/);
      assert.ok(!e.message.includes("wrong"));
      return true;
    });
    await assert.rejects(pushSnapshot(a.store, "base", `${reg.host}/tok/other:x`, { ...plain, credentials: { username: "reader", password: "readonly" } }), (e: unknown) => {
      assert.ok(e instanceof RegistryError && e.reason === "unauthorized", String(e));
      assert.match(e.message, /unauthorized: /);
      return true;
    });
  });
});
