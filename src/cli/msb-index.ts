/**
 * Keep microsandbox's own snapshot index (`<home>/db/msb.db`) in step with
 * the home after a command of ours changed it (`create`, `load`, `rm`,
 * `reindex`): `msb snapshot list` reads only that SQLite index, so without
 * this a snapshot we create stays invisible to msb and one we remove stays
 * listed.
 *
 * We never write the database ourselves. msb opens it in WAL mode with a
 * busy timeout, funnels writes through one connection, serialises its schema
 * migrations with `db/msb.db.migration.lock`, and refuses a database whose
 * schema is newer than its binary. A WASM SQLite cannot share WAL's memory-
 * mapped `-shm` index with a running msb, so it could not honour that
 * locking. Instead, where msb is found (`$MSB_PATH`, else `msb` on `$PATH`),
 * we let msb update its own index:
 *
 * 1. rows whose artifact directory is gone, inside one of our roots, are
 *    dropped with `msb snapshot rm --force DIGEST` (msb deletes only the row
 *    when the directory does not exist);
 * 2. each root holding snapshots is rescanned with `msb snapshot reindex DIR`
 *    (an upsert that supersedes rows of the same digest, path or name).
 *
 * When msb is not found, or refuses (e.g. a schema newer than it knows), the
 * database is left untouched and one line on stderr names the msb command to
 * run. A home without `db/msb.db` is not an msb home: nothing happens.
 *
 * Spawning processes belongs to the CLI layer: the core never does it.
 * @module
 */

import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, lstatSync, readFileSync, realpathSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";

/** What the sync needs from the command that ran. */
export interface MsbSyncInput {
  /** The home (absolute). */
  readonly home: string;
  /** The directories our index scans (`<home>/snapshots` and every extra root). */
  readonly roots: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Print one line on stderr. */
  err(text: string): void;
}

/** The outcome, for tests and `--json` callers: what was done and the hint printed, if any. */
export interface MsbSyncResult {
  readonly status: "not-msb-home" | "synced" | "hinted";
  readonly hint?: string;
}

/** The msb binary to run: `$MSB_PATH`, else the first executable `msb` on `$PATH`, else null. */
export function findMsb(env: Readonly<Record<string, string | undefined>>): string | null {
  if (env.MSB_PATH) return executable(env.MSB_PATH) ? env.MSB_PATH : null;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "msb");
    if (executable(candidate)) return candidate;
  }
  return null;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return lstatSync(path).isDirectory() === false;
  } catch {
    return false;
  }
}

/**
 * True when the msb we would run after a write migrates `manifest.json`
 * artifacts (0.6.7 and later do, on any command) and the home is an msb home:
 * a `manifest.json` snapshot created there would get a new identity at once,
 * so `create` writes `snapshot.json` unless `--layout` says otherwise.
 */
export function msbWouldMigrate(home: string, env: Readonly<Record<string, string | undefined>>): boolean {
  if (!existsSync(join(home, "db", "msb.db"))) return false;
  const msb = findMsb(env);
  if (msb === null) return false;
  const r = spawnSync(msb, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 });
  const v = /\b(\d+)\.(\d+)\.(\d+)\b/.exec(r.stdout ?? "");
  if (r.status !== 0 || v === null) return false;
  const [major, minor, patch] = [Number(v[1]), Number(v[2]), Number(v[3])];
  return major > 0 || minor > 6 || (minor === 6 && patch >= 7);
}

/** The roots our own index file records (`<home>/snapshots/.snapbundle-index.json`), plus `<home>/snapshots`. */
export function indexRoots(home: string): string[] {
  const snapshots = join(home, "snapshots");
  const roots = new Set([snapshots]);
  try {
    const raw = JSON.parse(readFileSync(join(snapshots, ".snapbundle-index.json"), "utf8")) as { roots?: unknown };
    if (Array.isArray(raw.roots)) for (const r of raw.roots) if (typeof r === "string" && r.startsWith("/")) roots.add(resolve(r));
  } catch {
    // no index yet, or unreadable: the home's own directory is the one root
  }
  return [...roots];
}

interface MsbRow {
  readonly digest: string;
  readonly artifact_path: string;
}

function runMsb(msb: string, home: string, args: readonly string[], env: Readonly<Record<string, string | undefined>>): { ok: boolean; stdout: string; message: string } {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  childEnv.MSB_HOME = home;
  const r = spawnSync(msb, [...args], { env: childEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  if (r.error) return { ok: false, stdout: "", message: r.error.message };
  const message = (r.stderr ?? "").trim().split("\n").filter((l) => l.trim() !== "").pop() ?? `exit status ${r.status}`;
  return { ok: r.status === 0, stdout: r.stdout ?? "", message };
}

/**
 * Bring `<home>/db/msb.db` in step with the snapshots on disk, through msb
 * itself; see the module comment. Never throws: the command it follows has
 * already succeeded.
 */
export function syncMsbIndex(input: MsbSyncInput): MsbSyncResult {
  const { home } = input;
  if (!existsSync(join(home, "db", "msb.db"))) return { status: "not-msb-home" };
  // msb records paths as its MSB_HOME spelled them when it wrote each row: compare real paths
  const roots = [...new Set(input.roots.map((r) => canonical(resolve(r))))];
  const command = `MSB_HOME=${shellWord(home)} msb snapshot reindex`;
  const hint = (why: string): MsbSyncResult => {
    const line = `note: microsandbox's index ${join(home, "db", "msb.db")} is not updated (${why}); run: ${command}, and msb snapshot rm --force DIGEST for each removed snapshot msb still lists`;
    input.err(`${line}\n`);
    return { status: "hinted", hint: line };
  };
  const msb = findMsb(input.env);
  if (msb === null) return hint(input.env.MSB_PATH ? `MSB_PATH ${input.env.MSB_PATH} is not an executable` : "msb is not on PATH; set MSB_PATH");

  const listed = runMsb(msb, home, ["snapshot", "list", "--format", "json"], input.env);
  if (!listed.ok) return hint(`msb snapshot list failed: ${listed.message}`);
  let rows: MsbRow[];
  try {
    const parsed = JSON.parse(listed.stdout.trim() === "" ? "[]" : listed.stdout) as unknown;
    if (!Array.isArray(parsed)) throw new Error("not a JSON array");
    rows = parsed.filter((r): r is MsbRow => typeof r?.digest === "string" && typeof r?.artifact_path === "string");
  } catch (e) {
    return hint(`msb snapshot list printed no JSON list: ${(e as Error).message}`);
  }
  for (const row of rows) {
    // Only rows inside our roots whose artifact is gone: msb's `rm` then deletes the row alone.
    if (!roots.includes(canonical(resolve(dirname(row.artifact_path)))) || existsSync(row.artifact_path)) continue;
    const removed = runMsb(msb, home, ["snapshot", "rm", "--force", "--quiet", row.digest], input.env);
    if (!removed.ok) return hint(`msb snapshot rm ${row.digest} failed: ${removed.message}`);
  }
  for (const root of roots) {
    if (!existsSync(root)) continue;
    const args = root === canonical(resolve(home, "snapshots")) ? ["snapshot", "reindex"] : ["snapshot", "reindex", root];
    const done = runMsb(msb, home, args, input.env);
    if (!done.ok) return hint(`msb snapshot reindex failed: ${done.message}`);
  }
  return { status: "synced" };
}

/** The real path of `p` when it exists, else `p`. */
function canonical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** `s` quoted for a POSIX shell when it needs it. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
