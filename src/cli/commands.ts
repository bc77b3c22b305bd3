/**
 * The commands of `snapbundle`, each a thin layer over {@link SnapshotStore}:
 * take the parsed arguments, call the store (with a progress bar where it
 * reads or writes a lot), print a sentence/table or one JSON document.
 *
 * @example
 * ```ts
 * import { runCommand } from "./commands.js";
 * await runCommand(ctx, command, positionals, values); // throws SnapbundleError / UsageError on failure
 * ```
 * @module
 */

import { fstatSync, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { dirname as hostDirname, resolve as hostResolve } from "node:path";
import type { BundleReport } from "../archive/inspect.js";
import type { LoadNotice } from "../archive/load.js";
import { ImageCacheError, isFsError, SnapbundleError, SnapshotAlreadyExists, SnapshotAlreadyInstalled, SnapshotNotFound } from "../errors.js";
import { isPathLike, type ListProblem, type SnapshotInfo, snapshotInfo, type SnapshotStore } from "../store.js";
import { type CommandSpec, findCommand, parseByteSize, parseLabels, UsageError } from "./args.js";
import { humanBytes, jsonDocument, keyValues, labelList, printable, shortDigest, snapshotTable } from "./format.js";
import type { Shell } from "./completions.js";
import { startProgress } from "./progress.js";
import { packageVersion } from "./version.js";
import { countingWritable, fileStreamWritable, specialReadable, stdinSource, stdoutWritable } from "./stdio.js";
import { levelOption, maxWindowOption } from "./zstd-options.js";
import { isRegistryArgument } from "./registry-argument.js";

import type { CommandContext } from "./context.js";

export type { CommandContext };

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

/**
 * Run `command` with its positionals and option values.
 *
 * @example
 * ```ts
 * const store = new SnapshotStore(nodeFs(), "/root/.microsandbox");
 * const ctx = { store, json: true, progress: false, out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };
 * await runCommand(ctx, findCommand("ls")!, [], {});
 * ```
 */
export async function runCommand(ctx: CommandContext, command: CommandSpec, positionals: readonly string[], values: Values): Promise<void> {
  switch (command.name) {
    case "create":
      return create(ctx, command, positionals[0]!, values);
    case "ls":
      return ls(ctx);
    case "inspect":
      if (isRegistryArgument(ctx, positionals[0]!)) return (await import("./oci.js")).inspectReference(ctx, positionals[0]!, values, values.verify === true);
      if (await isBundle(ctx, positionals[0]!)) return bundle(ctx, positionals[0]!, values.verify === true ? "inspect --verify" : "inspect");
      return inspect(ctx, positionals[0]!, values.verify === true);
    case "verify":
      if (values.cache === true) return verifyCache(ctx, command, positionals);
      if (positionals.length === 0) throw new UsageError(`missing argument ${command.args[0]}`, command);
      if (isRegistryArgument(ctx, positionals[0]!)) return (await import("./oci.js")).inspectReference(ctx, positionals[0]!, values, true);
      if (await isBundle(ctx, positionals[0]!)) return bundle(ctx, positionals[0]!, "verify");
      return verify(ctx, positionals[0]!);
    case "rm":
      return rm(ctx, positionals, values.force === true);
    case "reindex":
      return reindex(ctx, positionals[0]);
    case "save":
      return save(ctx, positionals[0]!, positionals[1]!, values);
    case "load":
      return load(ctx, positionals[0]!, loadDest(command, positionals, values));
    case "push":
      return (await import("./oci.js")).push(ctx, positionals[0]!, positionals[1]!, values);
    case "pull":
      return (await import("./oci.js")).pull(ctx, positionals[0]!, values);
    case "gc":
      return gc(ctx, positionals, values["dry-run"] === true);
    case "completions":
      return ctx.out((await import("./completions.js")).completionScript(positionals[0] as Shell));
    case "man":
      return ctx.out((await import("./completions.js")).manPage(packageVersion()));
    default:
      throw new UsageError(`unknown command '${command.name}'`);
  }
}

/** A summary sentence: printed unless `--quiet`. */
function say(ctx: CommandContext, text: string): void {
  if (!ctx.quiet) ctx.out(text);
}

/** True when stdout is a pipe or socket: another process reads it, and draws its own progress. */
function stdoutIsPipe(): boolean {
  try {
    const s = fstatSync(1);
    return s.isFIFO() || s.isSocket();
  } catch {
    return false;
  }
}

function optionalString(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/** Size of a file named on the command line, or null when it cannot be stat'ed (the store will report the real problem). */
function sizeOf(ctx: CommandContext, path: string): number | null {
  try {
    return statSync(ctx.store.absolutePath(path)).size;
  } catch {
    return null;
  }
}

function warnProblems(ctx: CommandContext, problems: readonly ListProblem[]): void {
  for (const p of problems) ctx.err(`warning: skipping ${printable(p.path)}: ${printable(p.message)}\n`);
}

function describeSnapshot(s: SnapshotInfo, extra: readonly (readonly [string, string])[] = []): string {
  return keyValues([
    ["name", printable(s.name)],
    ["digest", s.digest],
    ["path", printable(s.path)],
    ["form", s.form === "snapshot" ? `snapshot.json (${s.state_kind} state, scope ${s.scope})` : "manifest.json"],
    ["parent", s.parent ?? "-"],
    ["image", printable(s.image_ref)],
    ["image digest", s.image_manifest_digest],
    ["format", s.format],
    ["fstype", printable(s.fstype)],
    ["size", `${humanBytes(s.size_bytes)} (${s.size_bytes} bytes)`],
    ["created", printable(s.created_at)],
    ["labels", labelList(s.labels)],
    ...extra,
  ]);
}

/** `--parent`: the digest of an existing snapshot named by name, digest or path. */
async function parentDigest(ctx: CommandContext, ref: string | undefined): Promise<string | null> {
  if (ref === undefined) return null;
  try {
    return (await ctx.store.resolve(ref)).digest;
  } catch (e) {
    // a parent that is not there is a usage error (exit 2), as for any option value that names nothing
    if (e instanceof SnapshotNotFound || isFsError(e, "ENOENT") || isFsError(e, "ENOTDIR")) throw new UsageError(`--parent ${JSON.stringify(ref)}: ${e.message}`, findCommand("create"));
    if (e instanceof SnapbundleError) e.message = `--parent ${JSON.stringify(ref)}: ${e.message}`;
    throw e;
  }
}

async function create(ctx: CommandContext, command: CommandSpec, name: string, values: Values): Promise<void> {
  const upper = values.upper as string;
  const labels = parseLabels(values.label as string[] | undefined, command);
  const integrity = values.integrity === true;
  const parent = await parentDigest(ctx, optionalString(values, "parent"));
  const bar = startProgress(ctx.progress, integrity ? "copying+hashing" : "copying", ctx.progress ? sizeOf(ctx, upper) : null);
  let info: SnapshotInfo;
  try {
    info = await ctx.store.create(name, {
      upper,
      image: { ref: values.image as string, manifest_digest: values["image-digest"] as string },
      parent,
      labels,
      integrity,
      sourceSandbox: optionalString(values, "source-sandbox") ?? null,
      destDir: optionalString(values, "dest-dir"),
      force: values.force === true,
      form: artifactLayout(values, command),
      onProgress: (bytes) => bar.update(bytes),
      signal: ctx.signal,
    });
  } catch (e) {
    // the library's message says "use force"; on the command line the flag is --force
    if (e instanceof SnapshotAlreadyExists && e.message.includes("(use force ")) e.message = e.message.replace("(use force ", "(use --force ");
    throw e;
  } finally {
    bar.stop();
  }
  if (ctx.json) ctx.out(jsonDocument(info));
  else say(ctx, `created ${printable(info.name)} ${info.digest} at ${printable(info.path)}\n`);
}

async function ls(ctx: CommandContext): Promise<void> {
  const { snapshots, problems } = await ctx.store.list();
  warnProblems(ctx, problems);
  const reclaimable = (await ctx.store.leftovers().catch(() => [])).filter((l) => l.verdict.state === "gone" && l.kind !== "lease");
  if (reclaimable.length > 0) {
    const bytes = reclaimable.reduce((n, l) => n + l.bytes, 0);
    ctx.err(`warning: ${reclaimable.length} leftover${reclaimable.length === 1 ? "" : "s"} of interrupted operations hold ${humanBytes(bytes)}; run 'snapbundle gc' to reclaim ${reclaimable.length === 1 ? "it" : "them"}\n`);
  }
  if (ctx.json) ctx.out(jsonDocument(snapshots.map(withDiskUse)));
  else if (ctx.quiet) ctx.out(snapshots.map((s) => `${s.digest}\n`).join("")); // `msb snapshot list -q`: digests only
  else if (snapshots.length === 0 && !existsDir(ctx.store.layout.home)) ctx.out(`no snapshots: the home ${printable(ctx.store.layout.home)} does not exist (choose another with --home or MSB_HOME)\n`);
  else if (snapshots.length === 0) ctx.out(`no snapshots in ${printable(ctx.store.layout.snapshotsDir)}\n`);
  else ctx.out(snapshotTable(snapshots, snapshots.map((s) => diskBytes(s.path))));
}

/**
 * The disk space a snapshot's artifact takes (`du`'s figure): the allocated
 * bytes of the files in its directory, holes not counted; null when it cannot
 * be read. Beside the apparent `size_bytes`, it shows what a sparse upper costs.
 */
function diskBytes(dir: string): number | null {
  try {
    let total = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isFile()) total += lstatSync(`${dir}/${e.name}`).blocks * 512;
    }
    return total;
  } catch {
    return null;
  }
}

/** A snapshot as `ls --json` and `inspect --json` print it: with `disk_bytes` ({@link diskBytes}). */
function withDiskUse(s: SnapshotInfo): SnapshotInfo & { disk_bytes: number | null } {
  return { ...s, disk_bytes: diskBytes(s.path) };
}

/** Resolve, then verify with a progress bar sized to the upper. */
async function verified(ctx: CommandContext, ref: string) {
  const snap = await ctx.store.resolve(ref);
  const bar = startProgress(ctx.progress && snap.manifest.upper.integrity !== null, "verifying", snap.manifest.upper.size_bytes);
  try {
    return await ctx.store.verify(snap.path, { onProgress: (bytes) => bar.update(bytes), signal: ctx.signal });
  } finally {
    bar.stop();
  }
}

function integrityLine(v: { integrity: { status: string; algorithm: string | null; digest: string | null } }): string {
  if (v.integrity.status === "unsupported") return "unsupported (checkpoint state has no payload to verify)";
  return v.integrity.status === "verified" ? `verified (${v.integrity.algorithm} ${v.integrity.digest})` : "not recorded (nothing to verify)";
}

/** `--member-hashes auto|yes|no` (default auto). */
function memberHashes(values: Values): boolean | "auto" {
  const v = optionalString(values, "member-hashes") ?? "auto";
  if (v === "auto") return "auto";
  if (v === "yes" || v === "no") return v === "yes";
  throw new UsageError(`--member-hashes must be "auto", "yes" or "no" (got ${JSON.stringify(v)})`, findSaveCommand());
}

function findSaveCommand(): CommandSpec {
  return findCommand("save")!;
}

/** `--layout manifest|snapshot`, or undefined for the home's default. */
function artifactLayout(values: Values, command: CommandSpec): "manifest" | "snapshot" | undefined {
  const layout = optionalString(values, "layout");
  if (layout === undefined || layout === "manifest" || layout === "snapshot") return layout;
  throw new UsageError(`--layout must be "manifest" or "snapshot" (got ${JSON.stringify(layout)})`, command);
}

async function inspect(ctx: CommandContext, ref: string, verify: boolean): Promise<void> {
  if (verify) {
    const v = await verified(ctx, ref);
    if (ctx.json) ctx.out(jsonDocument(v));
    else ctx.out(describeSnapshot(v, [["integrity", integrityLine(v)]]));
    return;
  }
  const snap = await ctx.store.resolve(ref);
  const info = withDiskUse(snapshotInfo(snap));
  if (ctx.json) {
    ctx.out(jsonDocument(info));
    return;
  }
  const recorded = snap.manifest.upper.integrity;
  const children = await ctx.store.children(snap.digest);
  ctx.out(
    describeSnapshot(info, [
      ["disk use", info.disk_bytes === null ? "-" : `${humanBytes(info.disk_bytes)} (${info.disk_bytes} bytes allocated)`],
      ["integrity", recorded === null ? "not recorded" : `${recorded.algorithm} ${recorded.digest} (not checked; use --verify)`],
      ["source sandbox", snap.manifest.source_sandbox === null ? "-" : printable(snap.manifest.source_sandbox)],
      ["children", String(children.filter((c) => c.path !== snap.path).length)],
    ]),
  );
}

async function verify(ctx: CommandContext, ref: string): Promise<void> {
  const v = await verified(ctx, ref);
  if (ctx.json) ctx.out(jsonDocument(v));
  else if (v.integrity.status === "verified") ctx.out(`verified ${printable(v.name)} ${v.digest}: upper matches ${v.integrity.algorithm} ${v.integrity.digest}\n`);
  else if (v.integrity.status === "unsupported") ctx.out(`${printable(v.name)} ${v.digest}: unsupported: checkpoint state has no payload to verify\n`);
  else ctx.out(`${printable(v.name)} ${v.digest}: no integrity recorded; nothing to verify\n`);
}

/** `rm A B …`: each in turn; a failure does not stop the others (as `msb snapshot remove`); the last is thrown at the end, the others reported before it. */
async function rm(ctx: CommandContext, refs: readonly string[], force: boolean): Promise<void> {
  const removed: SnapshotInfo[] = [];
  const failures: SnapbundleError[] = [];
  for (const ref of refs) {
    try {
      const info = await ctx.store.remove(ref, { force });
      removed.push(info);
      if (!ctx.json) say(ctx, `removed ${printable(info.name)} ${info.digest} from ${printable(info.path)}\n`);
    } catch (e) {
      if (!(e instanceof SnapbundleError) || ctx.signal?.aborted) throw e;
      failures.push(e);
    }
  }
  for (const e of failures.slice(0, -1)) ctx.err(`error: ${printable(e.message)}\n`);
  if (failures.length > 0) throw failures[failures.length - 1];
  if (ctx.json) ctx.out(jsonDocument(refs.length === 1 ? removed[0] : removed));
}

/** `load ARCHIVE DEST` (msb's positional) or `--dest DEST`; not both. */
function loadDest(command: CommandSpec, positionals: readonly string[], values: Values): Values {
  if (positionals[1] === undefined) return values;
  if (values.dest !== undefined) throw new UsageError(`give the destination once: as DEST or as --dest, not both`, command);
  return { ...values, dest: positionals[1] };
}

async function reindex(ctx: CommandContext, dir: string | undefined): Promise<void> {
  const { snapshots, problems } = await ctx.store.reindex(dir);
  warnProblems(ctx, problems);
  if (ctx.json) ctx.out(jsonDocument(snapshots));
  else {
    say(ctx, `indexed ${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"}\n`);
    if (snapshots.length > 0) ctx.out(snapshotTable(snapshots));
  }
}

/** Compressions an output name may ask for that snapbundle does not write, by suffix (as `tar -a` reads them). */
const UNWRITABLE_SUFFIXES: readonly (readonly [RegExp, string])[] = [
  [/\.(tar\.gz|tgz|taz|gz)$/i, "gzip"],
  [/\.(tar\.bz2|tbz2?|tz2|tb2|bz2)$/i, "bzip2"],
  [/\.(tar\.xz|txz|xz)$/i, "xz"],
  [/\.(tar\.lzma|tlz|lzma|tar\.lz|lz)$/i, "lzma/lzip"],
  [/\.(tar\.lzo|tzo|lzo)$/i, "lzop"],
  [/\.(tar\.lz4|lz4)$/i, "lz4"],
  [/\.(tar\.z|taz)$/i, "compress"],
  [/\.(zip|7z|rar|jar)$/i, "a non-tar archive format"],
];

/**
 * Plain tar or zstd for `save`'s `<out>`, from its name as `tar -a` decides:
 * `.tar` is a plain tar, `.tar.zst`/`.tzst`/`.zst` zstd, a compression we do
 * not write is refused before any work. Any other name (and `-`, a FIFO, a
 * device) is zstd, as msb writes, unless `--plain-tar`.
 */
function plainTarFor(out: string, values: Values, command: CommandSpec): boolean {
  const asked = values["plain-tar"] === true;
  const name = out.slice(out.lastIndexOf("/") + 1);
  for (const [suffix, what] of UNWRITABLE_SUFFIXES) {
    if (suffix.test(name)) {
      throw new UsageError(
        `<out> ${JSON.stringify(out)} asks by its name for ${what}, which snapbundle does not write: name it .tar.zst (zstd, the default) or .tar (--plain-tar); microsandbox loads only those`,
        command,
      );
    }
  }
  if (/\.(tar\.zst|tzst|zst)$/i.test(name)) {
    if (asked) throw new UsageError(`--plain-tar writes a plain tar, but <out> ${JSON.stringify(out)} is named as zstd: name it .tar, or drop --plain-tar`, command);
    return false;
  }
  return asked || /\.tar$/i.test(name);
}

async function save(ctx: CommandContext, ref: string, out: string, values: Values): Promise<void> {
  // `-` and /dev/stdout are stdout, written as is. An existing FIFO or device is written into
  // as a stream, never renamed over. A symbolic link is followed: the file it names is replaced.
  const target = out === "-" ? null : followLinks(ctx.store.absolutePath(out));
  const toStdout = target === null || STDOUT_PATHS.includes(target);
  const plainTar = toStdout ? values["plain-tar"] === true : plainTarFor(out, values, findSaveCommand());
  const special = !toStdout && (isUnderDevOrProc(target) || isSpecialFile(target));
  const written = { bytes: 0 };
  const sink = toStdout ? stdoutWritable() : special ? countingWritable(await fileStreamWritable(target, ctx.signal), written) : target;
  const verify = values["no-verify"] !== true;
  // In `save x - | snapbundle load -` only the reading end draws: two bars on one terminal line would overwrite each other.
  const bar = startProgress(ctx.progress && !(toStdout && stdoutIsPipe()), verify ? "verifying" : "reading", null, undefined, { steps: verify ? ["verifying", "writing"] : ["writing"] });
  let result;
  try {
    result = await ctx.store.save(ref, sink, {
      withParents: values["with-parents"] === true,
      withImage: values["with-image"] === true,
      plainTar,
      sparse: values.sparse === true,
      verify,
      layout: artifactLayout(values, findSaveCommand()),
      memberHashes: memberHashes(values),
      overwrite: values.force === true,
      onProgress: (p) => bar.update(p.bytes, p.total, p.phase === "write" ? "writing" : verify ? "verifying" : "reading"),
      signal: ctx.signal,
      level: levelOption(values),
    });
  } finally {
    bar.stop();
  }
  if (toStdout) return; // stdout carries the archive and nothing else
  const path = target;
  const bytes = special ? written.bytes : (sizeOf(ctx, path) ?? 0);
  // verified only when every snapshot shipped had an integrity to check its upper against
  const unchecked = result.snapshots.filter((s) => s.upperPath === null || s.manifest.upper.integrity === null).length;
  const allVerified = verify && unchecked === 0;
  if (ctx.json) {
    ctx.out(jsonDocument({ path, snapshots: result.snapshots.map((s) => s.digest), cache_files: result.cacheFiles, bytes, verified: allVerified }));
    return;
  }
  const n = result.snapshots.length;
  const cache = result.cacheFiles.length > 0 ? ` and ${result.cacheFiles.length} image cache file${result.cacheFiles.length === 1 ? "" : "s"}` : "";
  const checked = !verify ? "; not verified (--no-verify)" : unchecked > 0 ? `; ${unchecked === n ? "not verified" : `${unchecked} of ${n} not verified`}: no integrity recorded` : "";
  say(ctx, `saved ${n} snapshot${n === 1 ? "" : "s"}${cache} to ${printable(path)} (${humanBytes(bytes)})${checked}\n`);
}

/**
 * Run `body`; a failure that names no file of its own gets `path` (the
 * archive a command reads), for the `path` of the `--json` error document.
 */
async function about<T>(path: string | null, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof SnapbundleError && path !== null && !("path" in e)) Object.defineProperty(e, "path", { value: path, enumerable: false });
    throw e;
  }
}

async function load(ctx: CommandContext, source: string, values: Values): Promise<void> {
  return about(source === "-" ? null : ctx.store.absolutePath(source), () => loadFrom(ctx, source, values));
}

async function loadFrom(ctx: CommandContext, source: string, values: Values): Promise<void> {
  const fromStdin = source === "-";
  const stdin = fromStdin ? stdinSource() : null;
  const special = !fromStdin && isSpecialFile(ctx.store.absolutePath(source));
  const total = !ctx.progress || special ? null : fromStdin ? stdinFileSize() : sizeOf(ctx, source);
  // From a pipe, nothing may come for a while (in `save - | load -` the save verifies first): say so rather than "unpacking 0 B".
  const waiting = fromStdin ? "waiting for input on stdin" : `waiting for input from ${printable(source)}`;
  const bar = startProgress(ctx.progress, (fromStdin || special) && total === null ? waiting : "unpacking", total, undefined, { steps: LOAD_STEPS });
  let head: SnapshotInfo;
  const notices: LoadNotice[] = [];
  try {
    const input = stdin ? stdin.stream : special ? specialReadable(ctx.store.absolutePath(source), ctx.signal) : source;
    head = await ctx.store.load(input, {
      onNotice: (n) => notices.push(n),
      dest: optionalString(values, "dest"),
      name: optionalString(values, "name"),
      useSuggestedName: true, // a 0.6 bundle's suggested_name, where free (msb 0.6.18 ignores it: 64-hex names)
      maxApparentBytes: values["max-apparent-size"] === undefined ? undefined : parseByteSize(String(values["max-apparent-size"]), "--max-apparent-size"),
      label: fromStdin ? "stdin" : special ? ctx.store.absolutePath(source) : undefined,
      maxWindowBytes: maxWindowOption(values),
      onProgress: (bytes) => bar.update(bytes, undefined, "unpacking"),
      onStep: (p) => bar.update(p.bytes, p.phase === "installing" ? null : p.total, p.phase),
      signal: ctx.signal,
      onLockWait: (holder) => ctx.err(`waiting: ${printable(holder)}\n`),
    });
  } catch (e) {
    if (e instanceof SnapshotAlreadyInstalled) {
      bar.stop();
      if (stdin) await stdin.drain();
      return alreadyInstalled(ctx, e);
    }
    stdin?.close();
    throw e;
  } finally {
    bar.stop();
  }
  if (stdin) await stdin.drain();
  if (!ctx.json) for (const n of notices) ctx.err(`warning: ${printable(n.message)}\n`);
  if (ctx.json) ctx.out(jsonDocument(notices.length === 0 ? head : { ...head, notices }));
  else say(ctx, `loaded ${printable(head.name)} ${head.digest} into ${printable(head.path)}\n`);
}

/** The steps of a load, as its progress line counts them. */
const LOAD_STEPS = ["unpacking", "verifying", "installing"];

/** The size of stdin when it is a regular file (`load - < file`), else null. */
function stdinFileSize(): number | null {
  try {
    const st = fstatSync(0);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/** The bundle's head is installed already: nothing was loaded, which is success. */
async function alreadyInstalled(ctx: CommandContext, e: SnapshotAlreadyInstalled): Promise<void> {
  const existing = await ctx.store.resolve(e.existing);
  const info = snapshotInfo(existing);
  if (ctx.json) ctx.out(jsonDocument({ ...info, already_installed: true }));
  else say(ctx, `already installed: ${printable(info.name)} ${info.digest} at ${printable(info.path)}; nothing loaded (use --name NAME for a second copy)\n`);
}

/**
 * A bundle rather than a snapshot: `-` (stdin), or a regular file. An
 * argument that looks like a path (has a `/`, starts with `.` or `~`) is a
 * path; any other is a snapshot's name or digest first, and a file in the
 * current directory only when no snapshot answers to it.
 */
async function isBundle(ctx: CommandContext, ref: string): Promise<boolean> {
  if (ref === "-") return true;
  const isFile = () => {
    try {
      return statSync(ctx.store.absolutePath(ref)).isFile();
    } catch {
      return false;
    }
  };
  if (isPathLike(ref) || !isFile()) return isFile();
  try {
    await ctx.store.resolve(ref);
    return false;
  } catch (e) {
    if (e instanceof SnapshotNotFound) return true;
    throw e;
  }
}

/** What `/dev/stdout` names: stdout itself, written as `-` is (never reopened, truncated or renamed over). */
const STDOUT_PATHS = ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"];

/** Under /dev or /proc (e.g. /dev/stderr, /proc/self/fd/3): always written as a stream, whatever it names. */
function isUnderDevOrProc(path: string): boolean {
  return path.startsWith("/dev/") || path.startsWith("/proc/");
}

/** `path` with its symbolic links followed to the file they name (which need not exist). Stops under /dev and /proc. */
function followLinks(path: string): string {
  for (let hops = 0; hops < 40 && !isUnderDevOrProc(path); hops++) {
    try {
      if (!lstatSync(path).isSymbolicLink()) return path;
      path = hostResolve(hostDirname(path), readlinkSync(path));
    } catch {
      return path;
    }
  }
  return path;
}

function existsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * `inspect BUNDLE` (a quick listing: data decoded and skipped, nothing
 * hashed), `inspect --verify BUNDLE` (the listing after every check a load
 * makes) and `verify BUNDLE` (those checks, one summary line): the bundle
 * streams through the load's reader and grammar, writing nothing. When a
 * listing fails part way, the members read before the failure are printed
 * first (as `tar -tv` lists up to a corrupt member), then the error.
 */
async function bundle(ctx: CommandContext, source: string, mode: "inspect" | "inspect --verify" | "verify"): Promise<void> {
  const fromStdin = source === "-";
  const path = fromStdin ? null : ctx.store.absolutePath(source);
  return about(path, async () => {
    const stdin = fromStdin ? stdinSource() : null;
    const bar = startProgress(ctx.progress, "reading", !ctx.progress ? null : path === null ? stdinFileSize() : sizeOf(ctx, path));
    let report: BundleReport;
    const members: string[] = [];
    try {
      const { inspectBundle, verifyBundle } = await import("../archive/inspect.js");
      const run = mode === "inspect" ? inspectBundle : verifyBundle;
      report = await run(ctx.store.fs, stdin ? stdin.stream : path!, {
        label: fromStdin ? "stdin" : undefined,
        onProgress: (b) => bar.update(b),
        quick: mode === "inspect",
        onMember: (m) => members.push(`${printable(m.path)} (${humanBytes(m.size)}${m.sparse ? ", sparse" : ""})`),
      });
    } catch (e) {
      stdin?.close();
      bar.stop();
      if (mode !== "verify" && !ctx.json && members.length > 0) ctx.out(`read before the error (${members.length} member${members.length === 1 ? "" : "s"}):\n${members.map((m) => `  ${m}\n`).join("")}`);
      throw e;
    } finally {
      bar.stop();
    }
    if (stdin) await stdin.drain();
    // verify: a snapshot whose parent the bundle lacks loads, without its parent (as msb 0.6 loads it): say so
    const digests = new Set(report.snapshots.map((s) => s.digest));
    const { parentMissingNotice } = await import("../archive/load.js");
    const orphans = mode === "inspect" ? [] : report.snapshots.filter((s) => s.parent !== null && !digests.has(s.parent)).map((s) => parentMissingNotice(s.name, s.digest, s.parent!, "bundle"));
    if (ctx.json) {
      ctx.out(jsonDocument(orphans.length === 0 ? report : { ...report, notices: orphans }));
      return;
    }
    for (const o of orphans) ctx.err(`warning: ${printable(o.message)}\n`);
    if (mode === "verify") {
      const n = report.snapshots.length;
      say(ctx, `verified ${fromStdin ? "stdin" : printable(path!)}: ${n} snapshot${n === 1 ? "" : "s"}, head ${report.head}; a load into an empty home would succeed\n`);
      return;
    }
    ctx.out(
      keyValues([
        ["bundle", fromStdin ? "stdin" : printable(path!)],
        ["layout", report.layout],
        ["compression", report.compression],
        ["tar formats", report.tar_formats.join(", ") || "-"],
        ["head", report.head ?? "-"],
        ...(report.layout === "snapshot" ? [["suggested name", report.suggested_name === null ? "-" : printable(report.suggested_name)] as const] : []),
        ["cache files", report.cache_files.length === 0 ? "-" : report.cache_files.map(printable).join(", ")],
      ]),
    );
    for (const s of report.snapshots) {
      const i = s.integrity;
      ctx.out(
        "\n" +
          keyValues([
            ["snapshot", printable(s.name)],
            ["digest", s.digest],
            ["parent", s.parent ?? "-"],
            ["image", printable(s.image_ref)],
            ["size", s.state_kind === "checkpoint" ? "- (checkpoint state: no payload)" : `${humanBytes(s.size_bytes)} (${s.size_bytes} bytes)`],
            ["integrity", bundleIntegrityText(i)],
            ["labels", labelList(s.labels)],
          ]),
      );
    }
  });
}

/** A bundle snapshot's integrity line of `inspect BUNDLE`. */
function bundleIntegrityText(i: BundleReport["snapshots"][number]["integrity"]): string {
  if (i.status === "not-recorded") return "not recorded";
  if (i.status === "not-checked") return `${i.algorithm} ${i.recorded} (not checked; use --verify)`;
  if (i.status === "unsupported") return "unsupported (checkpoint state has no payload to verify)";
  if (i.status === "missing") return `missing: the archive does not carry the payload${i.recorded === null ? "" : ` (recorded ${i.algorithm} ${i.recorded})`}`;
  return `${i.status} (${i.algorithm} ${i.recorded})`;
}

/** True when `path` exists (links followed) and is neither a regular file nor a directory: a FIFO, a device. */
function isSpecialFile(path: string): boolean {
  try {
    const st = statSync(path);
    return !st.isFile() && !st.isDirectory();
  } catch {
    return false;
  }
}

/**
 * `snapbundle verify --cache`: check every file of the home's image cache,
 * changing nothing. All valid: one line (or `{cache, checked, corrupt: []}`).
 * Any corrupt: each on a "corrupt PATH: PROBLEM" line, then an
 * {@link ImageCacheError} naming them all (exit status 1), as verify does.
 */
async function verifyCache(ctx: CommandContext, command: CommandSpec, positionals: readonly string[]): Promise<void> {
  if (positionals.length > 0) throw new UsageError(`--cache checks the home's image cache and takes no argument (got '${positionals[0]}')`, command);
  const layout = ctx.store.layout;
  const { scanCache } = await import("../archive/image-cache.js");
  const { checked, corrupt } = await scanCache(ctx.store.fs, layout);
  const files = `${checked} image cache file${checked === 1 ? "" : "s"}`;
  if (corrupt.length > 0) {
    if (!ctx.json) for (const c of corrupt) ctx.out(`corrupt ${printable(c.path)}: ${printable(c.problem)}\n`);
    const list = corrupt.map((c) => `${c.path} (${c.problem})`).join("; ");
    throw new ImageCacheError(`${corrupt.length} of ${files} in ${layout.cacheDir} corrupt: ${list}; a load of a bundle carrying the file replaces it, or remove it`);
  }
  if (ctx.json) ctx.out(jsonDocument({ cache: layout.cacheDir, checked, corrupt }));
  else say(ctx, `checked ${files} in ${printable(layout.cacheDir)}: none corrupt\n`);
}

/** `snapbundle gc [--dry-run] [DIR…]`: remove (or list) the leftovers whose owner is gone. */
async function gc(ctx: CommandContext, dirs: readonly string[], dryRun: boolean): Promise<void> {
  const r = await ctx.store.gc({ dryRun, dirs });
  const shown = (l: { kind: string }) => l.kind !== "lease";
  const freed = r.removed.reduce((n, l) => n + l.bytes, 0);
  if (ctx.json) {
    const row = (l: { path: string; kind: string; bytes: number; verdict: { why: string } }) => ({ path: l.path, kind: l.kind, bytes: l.bytes, reason: l.verdict.why });
    ctx.out(jsonDocument({ dry_run: dryRun, removed: r.removed.map(row), kept: r.kept.map(row), failed: r.failed.map(row), freed_bytes: dryRun ? 0 : freed }));
    return;
  }
  for (const l of r.removed.filter(shown)) ctx.out(`${dryRun ? "would remove" : "removed"} ${printable(l.path)} (${humanBytes(l.bytes)}): ${printable(l.verdict.why)}\n`);
  for (const l of r.failed.filter(shown)) ctx.err(`warning: could not remove ${printable(l.path)}; it is tried again next time\n`);
  for (const l of r.kept.filter(shown)) ctx.out(`kept ${printable(l.path)}: ${printable(l.verdict.why)}\n`);
  const n = r.removed.filter(shown).length;
  ctx.out(dryRun ? `${n} leftover${n === 1 ? "" : "s"} to reclaim, ${humanBytes(freed)}\n` : `freed ${humanBytes(freed)} in ${n} leftover${n === 1 ? "" : "s"}\n`);
}
