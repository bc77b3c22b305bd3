/**
 * Step 5 of a load: check the image cache files a bundle carried against
 * the head snapshot's image and install them into `<home>/cache` by rename,
 * the metadata last (a reader that finds the metadata finds every file it
 * names). Each install is registered with the load's undo log.
 *
 * @example
 * ```ts
 * await installStagedCache(fs, layout, stage.cache, head.manifest, "a.tar.zst", undo);
 * ```
 * @module
 */

import { ArchiveError, ImageCacheError, isFsError } from "../errors.js";
import type { FileInfo, FileSystem } from "../fs/types.js";
import { lstatOrNull, readSmallFile } from "../io.js";
import type { HomeLayout } from "../layout.js";
import type { Manifest } from "../manifest.js";
import { dirname, join } from "../path.js";
import { scanFile } from "../sparse.js";
import { type CacheFile, cacheTargetProblem, checkCarriedCache, erofsFileProblem, MAX_METADATA_BYTES } from "./image-cache.js";
import type { Move } from "./promote.js";
import { removeDirIfEmpty, type UndoLog } from "./undo.js";

/**
 * Step 5. If the archive carried image cache files: what is staged passes
 * {@link checkCarriedCache} (the rule `verify BUNDLE` applies too), and each
 * file already in the cache has identical content (kept) or is corrupt
 * (replaced: set aside, renamed back if the load fails). Then install by
 * rename, the metadata last. Resolves the corrupt files replaced.
 *
 * @example
 * ```ts
 * await installStagedCache(fs, layout, stage.cache, head.manifest, label, undo);
 * ```
 */
export async function installStagedCache(fs: FileSystem, layout: HomeLayout, cacheStage: string, manifest: Manifest, label: string, undo: UndoLog): Promise<HealedCacheFile[]> {
  const carried = {
    root: cacheStage,
    files: await collectFiles(fs, cacheStage),
    readMetadata: (p: string) => readSmallFile(fs, p, MAX_METADATA_BYTES),
    imageProblem: (p: string, info: FileInfo) => erofsFileProblem(fs, p, info.size),
  };
  const expected = await checkCarriedCache(layout, manifest, carried, label);
  if (expected.length === 0) return [];
  const metaPath = expected.find((f) => f.kind === "manifests")!.path;
  const fresh: (Move & { corrupt: string | null })[] = [];
  for (const f of expected) {
    const to = join(layout.cacheDir, f.path.slice(cacheStage.length + 1));
    const target = await cacheTargetState(fs, { ...f, path: to }, f.path);
    if (target !== "identical") fresh.push({ from: f.path, to, corrupt: target === "absent" ? null : target.corrupt });
  }
  // Metadata last: a reader that finds the metadata finds every file it names.
  const ordered = [...fresh.filter((m) => m.from !== metaPath), ...fresh.filter((m) => m.from === metaPath)];
  const healed: HealedCacheFile[] = [];
  for (const m of ordered) {
    await mkdirTracked(fs, layout.cacheDir, m.to, undo);
    if (m.corrupt !== null) {
      // set the corrupt file aside in the staging directory (removed with it once the load
      // succeeds), to be renamed back if the load fails; then the valid one takes its name
      const aside = join(cacheStage, ".corrupt", m.to.slice(layout.cacheDir.length + 1));
      await fs.mkdir(dirname(aside), { recursive: true });
      await fs.rename(m.to, aside);
      undo.push(`put back ${m.to}`, () => fs.rename(aside, m.to));
      healed.push({ path: m.to, problem: m.corrupt });
    }
    await fs.rename(m.from, m.to);
    undo.push(`remove ${m.to}`, () => fs.remove(m.to, { force: true }));
    // durable before the next rename: after a power cut the metadata never names a file that is gone
    await fs.syncDir(dirname(m.to));
  }
  return healed;
}

/** A corrupt cache file a load replaced: where it was, and what was wrong with it. */
export interface HealedCacheFile {
  readonly path: string;
  readonly problem: string;
}

/**
 * The state of the cache file `target` (its path in the home) against the
 * staged `source`: absent; identical (kept); corrupt by
 * {@link cacheTargetProblem} (to be replaced). A target that is not a
 * regular file, or is valid with other content, is an
 * {@link ImageCacheError}: installing must not replace it.
 */
async function cacheTargetState(fs: FileSystem, target: CacheFile, source: string): Promise<"absent" | "identical" | { corrupt: string }> {
  const t = await lstatOrNull(fs, target.path);
  if (t === null) return "absent";
  if (t.kind !== "file") throw new ImageCacheError(`cache target ${target.path} exists and is a ${t.kind}, not a regular file`);
  const s = await fs.lstat(source);
  const sha = async (p: string, size: number) => (await scanFile(fs, p, size, { algorithm: "sha256" })).digest;
  if (s.size === t.size && (await sha(source, s.size)) === (await sha(target.path, t.size))) return "identical";
  const corrupt = await cacheTargetProblem(fs, target, t);
  if (corrupt !== null) return { corrupt };
  throw new ImageCacheError(`cache target ${target.path} already exists with different content`);
}

/** Create the parent directories of `target` below `root`, registering each new one for removal on undo. */
async function mkdirTracked(fs: FileSystem, root: string, target: string, undo: UndoLog): Promise<void> {
  const rel = target.slice(root.length + 1).split("/").slice(0, -1);
  let dir = root;
  for (const part of rel) {
    dir = join(dir, part);
    if ((await lstatOrNull(fs, dir)) === null) {
      try {
        await fs.mkdir(dir);
      } catch (e) {
        if (isFsError(e, "EEXIST")) continue; // made meanwhile by another load: not ours to undo
        throw e;
      }
      const made = dir;
      undo.push(`remove directory ${made}`, () => removeDirIfEmpty(fs, made));
      await fs.syncDir(dirname(made));
    }
  }
}

/** Every file below `dir` with its state (the staged cache: directories and regular files only). */
async function collectFiles(fs: FileSystem, dir: string, out = new Map<string, FileInfo>()): Promise<Map<string, FileInfo>> {
  for (const name of await fs.readdir(dir)) {
    const p = join(dir, name);
    const info = await fs.lstat(p);
    if (info.kind === "directory") await collectFiles(fs, p, out);
    else if (info.kind === "file") out.set(p, info);
    else throw new ArchiveError(`staged cache entry ${p} is a ${info.kind}`);
  }
  return out;
}
