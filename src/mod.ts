/**
 * snapbundle: create, inspect, verify, save and load microsandbox disk
 * snapshots, and move them between machines as `.tar.zst` bundles — on
 * Node, Deno and Bun, against a real disk ({@link nodeFs}) or an in-memory
 * `memfs` volume ({@link memFs}).
 *
 * Importing it installs the Node/Deno/Bun host ({@link nodeHost}, see
 * `src/host.ts`): the pid, process probe, `.wasm` reader and compression
 * Workers the core asks for. `snapbundle/core` installs none.
 *
 * @example
 * ```ts
 * import { nodeFs, SnapshotStore } from "snapbundle";
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * await store.create("base", { upper: "/tmp/upper.ext4", image: { ref: "python:3.12", manifest_digest: "sha256:…" }, integrity: true });
 * await store.save("base", "/tmp/base.tar.zst");
 * ```
 * @module
 */

import { installHost } from "./host.js";
import { nodeHost } from "./hosts/node.js";

export * from "./core.js";
export { nodeFs } from "./fs/node.js";
export { nodeHost, threadWorker } from "./hosts/node.js";

installHost(nodeHost());
