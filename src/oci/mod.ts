/**
 * Snapshots in OCI registries: push, pull, inspect and verify remotely
 * (docs/oci-format.md). Core code: `fetch` and Web Streams only.
 *
 * @example
 * ```ts
 * import { pushSnapshot, pullSnapshot } from "snapbundle";
 * await pushSnapshot(store, "base", "localhost:5000/snaps:base", { plainHttp: true });
 * await pullSnapshot(otherStore, "localhost:5000/snaps:base", { plainHttp: true });
 * ```
 * @module
 */
export { type Descriptor, parseChallenge, RegistryClient, type RegistryCredentials, type RegistryOptions } from "./client.js";
export * from "./format.js";
export { fetchSnapshotManifest, inspectRemote, pullSnapshot, type PullOptions, type PullProgress, type PullResult, type RemoteReport } from "./pull.js";
export { type PushedLayer, pushSnapshot, type PushOptions, type PushProgress, type PushResult } from "./push.js";
export { looksLikeRegistryReference, manifestReference, parseRegistryReference, type RegistryReference } from "./reference.js";
