/**
 * The host seam (src/host.ts) on the runtime running this suite (Node, Deno
 * or Bun): the host that `snapbundle` installs reads zstd.wasm, starts the
 * compression Workers, and tells leases who this process is, checked against
 * /proc, os.hostname() and the zstd CLI; and the core without a host (a child
 * process that imports `snapbundle/core` and the node:fs adapter only)
 * knows nothing of the process and fails to compress with WasmUnavailable.
 */

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { currentHost, installHost, NO_HOST } from "../src/host.js";
import { nodeHost } from "../src/hosts/node.js";
import { processProbe } from "../src/lease.js";
import { currentPid } from "../src/staging.js";
import type { ZstdWorkerFactory } from "../wasm/mod.js";
import { zstdCompressStream, zstdDecompressStream } from "../src/zstd.js";
import { childEnv, RUNTIME } from "./helpers/cli-run.js";
import { mixedBytes, pipe, sameBytes, unzstdCli } from "./helpers/wasm-util.js";

const T = { timeout: 60_000 };
const MiB = 1024 * 1024;
const dist = fileURLToPath(new URL("../", import.meta.url));

describe(`the Node/Deno/Bun host on ${RUNTIME}`, () => {
  test("rule: the installed host reads zstd.wasm: a round trip that zstd -d agrees with", T, async () => {
    installHost(nodeHost());
    const data = mixedBytes(3 * MiB + 17, 5);
    const packed = await pipe(data, zstdCompressStream({ worker: false }), 256 * 1024);
    assert.ok(sameBytes(unzstdCli(packed), data));
    assert.ok(sameBytes(await pipe(packed, zstdDecompressStream(), 100_000), data));
  });

  test("rule: the host starts one compression Worker per stream and the Worker writes what the inline compressor writes", T, async () => {
    const host = nodeHost();
    assert.equal(typeof host.makeWorker, "function", `${RUNTIME}: the host makes Workers`);
    const made: string[] = [];
    const counting: ZstdWorkerFactory = (url) => {
      made.push(url.pathname.split("/").pop()!);
      return host.makeWorker!(url);
    };
    installHost({ ...host, makeWorker: counting });
    try {
      const data = mixedBytes(2 * MiB + 5, 9);
      const onWorker = await pipe(data, zstdCompressStream({ level: 3 }), 300 * 1024);
      assert.deepEqual(made, ["zstd-worker.js"]);
      assert.ok(sameBytes(onWorker, await pipe(data, zstdCompressStream({ level: 3, worker: false }), 300 * 1024)));
    } finally {
      installHost(nodeHost());
    }
  });

  test("rule: leases learn this process from the host: pid, host name, boot id, pid namespace and start time as /proc says", () => {
    installHost(nodeHost());
    const probe = processProbe();
    assert.equal(probe.pid, process.pid);
    assert.equal(currentPid(), process.pid);
    assert.equal(probe.self.host, hostname());
    assert.equal(probe.self.boot, readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
    assert.equal(probe.self.pidns, readlinkSync("/proc/self/ns/pid"));
    const stat = readFileSync(`/proc/${process.pid}/stat`, "utf8");
    assert.equal(probe.startTime(process.pid), stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    assert.equal(probe.isAlive(process.pid), true);
    assert.equal(probe.isAlive(1), true, "pid 1 is alive (EPERM counts as alive)");
    const dead = execFileSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).trim(); // exited and reaped
    assert.equal(probe.isAlive(Number(dead)), false, `pid ${dead} has exited`);
  });

  test("rule: installing NO_HOST forgets the process: pid 0 and no probe", () => {
    installHost(NO_HOST);
    try {
      assert.equal(currentHost(), NO_HOST);
      const probe = processProbe();
      assert.deepEqual([probe.pid, probe.isAlive(process.pid), probe.self.host, probe.startTime(process.pid)], [0, null, null, null]);
    } finally {
      installHost(nodeHost());
    }
  });

  test("rule: snapbundle/core and the node:fs adapter install no host; a save without one fails with WasmUnavailable", T, async () => {
    // inside the package, so that Deno resolves hash-wasm from its node_modules as it does for snapbundle
    const work = { dir: mkdtempSync(join(dist, "test", ".host-")), remove: () => rmSync(work.dir, { recursive: true, force: true }) };
    try {
      const script = join(work.dir, "core-only.mjs");
      writeFileSync(join(work.dir, "upper"), "hi");
      const url = (p: string) => JSON.stringify(new URL(p, `file://${dist}`).href);
      writeFileSync(
        script,
        `import { currentHost, SnapshotStore, WasmUnavailable } from ${url("src/core.js")};\n` +
          `import { nodeFs } from ${url("src/fs/node.js")};\n` +
          `let error = null;\n` +
          `const dir = ${JSON.stringify(work.dir)};\n` +
          `const store = new SnapshotStore(nodeFs(), dir + "/home");\n` +
          `await store.create("t", { upper: dir + "/upper", image: { ref: "alpine", manifest_digest: "sha256:" + "b".repeat(64) } });\n` +
          `try { await store.save("t", dir + "/t.tar.zst"); } catch (e) { error = { typed: e instanceof WasmUnavailable, code: e.code }; }\n` +
          `console.log(JSON.stringify({ host: currentHost().name, error }));\n`,
      );
      const args = RUNTIME === "deno" ? ["run", "-A", "--no-lock", script] : [script];
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, args, { env: childEnv(), stdio: ["ignore", "pipe", "inherit"] });
        let text = "";
        child.stdout.on("data", (d: Buffer) => (text += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
      });
      assert.deepEqual(JSON.parse(out.trim()), { host: "none", error: { typed: true, code: "wasm-unavailable" } });
    } finally {
      work.remove();
    }
  });
});
