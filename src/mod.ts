/**
 * snapbundle: create, inspect, verify, save and load microsandbox disk
 * snapshots, and move them between machines as `.tar.zst` bundles — on
 * Node, Deno and Bun, against a real disk ({@link nodeFs}) or an in-memory
 * `memfs` volume ({@link memFs}).
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

export * from "./core.js";
export { nodeFs } from "./fs/node.js";
