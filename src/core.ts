/**
 * The platform-neutral core of snapbundle: everything except the `node:fs`
 * adapter and the Node/Deno/Bun host. It touches files only through a
 * {@link FileSystem} you pass in, and learns about the process (pid, process
 * probe, how to read its own `zstd.wasm`, Workers) only from the host
 * installed with {@link installHost} (importing `snapbundle` installs one;
 * without one, compressing and decompressing fail with `WasmUnavailable`).
 *
 * @example
 * ```ts
 * import { SnapshotStore } from "snapbundle/core";
 * import { memFs } from "snapbundle";
 * import { Volume } from "memfs";
 * const store = new SnapshotStore(memFs(new Volume()), "/home");
 * ```
 * @module
 */

export * from "./errors.js";
export type { FileHandle, FileInfo, FileKind, FileSystem, OpenMode, RemoveOptions } from "./fs/types.js";
export { memFs } from "./fs/memfs.js";
export {
  canonicalManifest,
  canonicalManifestText,
  isDigestForm,
  type Manifest,
  MANIFEST_FILENAME,
  manifestDigest,
  parseManifest,
  SPARSE_SHA256,
  type UpperIntegrity,
  validateManifest,
} from "./manifest.js";
export { archivePrefix, digestSafe, HomeLayout, imageCacheKey, normalizeImageRef } from "./layout.js";
export { digestProblem, imageReferenceProblem, isSha256Digest } from "./reference.js";
export {
  type CreateOptions,
  createSnapshot,
  openSnapshot,
  type Snapshot,
  validateSnapshotName,
  type Verification,
  verifySnapshot,
} from "./snapshot.js";
export { isPathLike, type ListProblem, type SnapshotInfo, snapshotInfo, SnapshotStore } from "./store.js";
export { type LoadOptions } from "./archive/load.js";
export { type BundleReport, type BundleSnapshotReport, inspectBundle, type InspectOptions, verifyBundle } from "./archive/inspect.js";
export { type SaveOptions, type SaveResult } from "./archive/save.js";
export { readTar, type TarEntry, type TarInput, TarStream, TarWriter } from "./tar/mod.js";
export { type Leftover, type SweepPolicy, type SweepResult } from "./staging.js";
export { type LeaseOwner, type LeaseVerdict } from "./lease.js";
export { LockTimeout } from "./lock.js";
export { currentHost, type Host, type HostFfi, installHost, NO_HOST } from "./host.js";
export type { WasmReader, ZstdWorker, ZstdWorkerFactory } from "../wasm/mod.js";
export * from "./oci/mod.js";
export { type BundleParts } from "./archive/load.js";
