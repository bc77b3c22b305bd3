/**
 * The real microsandbox CLI (`msb` 0.6.18, the devDependency `microsandbox`
 * with its optional platform package) as a test witness. Every `msb snapshot`
 * subcommand except `create` works on files, without virtualization.
 *
 * @example
 * ```ts
 * test("msb agrees", { skip: MSB_SKIP }, () => {
 *   const home = msbHome("witness-");
 *   const r = runMsb(home, ["snapshot", "list", "--format", "json"]);
 * });
 * ```
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The static binary of the platform package (its `bin/msb`), found from the repository's node_modules. */
export const MSB_BIN = fileURLToPath(new URL("../../../node_modules/@superradcompany/microsandbox-linux-x64-gnu/bin/msb", import.meta.url));

function findBinary(): string | null {
  try {
    accessSync(MSB_BIN, constants.X_OK);
    const r = spawnSync(MSB_BIN, ["--version"], { encoding: "utf8", timeout: 30_000 });
    return r.status === 0 ? r.stdout.trim() : null;
  } catch {
    return null;
  }
}

/** `msb --version`, or null when the platform package is missing (not linux-x64-gnu, or not installed). */
export const MSB_VERSION: string | null = process.platform === "linux" && process.arch === "x64" ? findBinary() : null;

/**
 * Pass as a test's `skip` option: false where msb runs, else the reason,
 * so the run reports the witness tests as skipped with why — never as passed.
 */
export const MSB_SKIP: false | string = MSB_VERSION !== null
  ? false
  : `msb witness skipped: ${MSB_BIN} is missing or does not run (the devDependency @superradcompany/microsandbox-linux-x64-gnu, msb 0.6.18, runs on linux-x64 with glibc only)`;

export interface MsbResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `msb ARGS…` with `MSB_HOME=home` (and nothing else of the test's msb setup). */
export function runMsb(home: string, args: readonly string[], timeoutMs = 60_000): MsbResult {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("MSB_")) env[k] = v;
  env.MSB_HOME = home;
  const r = spawnSync(MSB_BIN, [...args], { env, encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run msb and fail the test, with its stderr, unless it succeeds. */
export function msbOk(home: string, args: readonly string[]): string {
  const r = runMsb(home, args);
  if (r.code !== 0) throw new Error(`msb ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** One row of `msb snapshot list --format json`. */
export interface MsbRow {
  readonly digest: string;
  readonly name: string | null;
  readonly parent_digest: string | null;
  readonly artifact_path: string;
  readonly image_ref: string;
  readonly size_bytes: number | null;
  readonly [k: string]: unknown;
}

/** `msb snapshot list --format json`, sorted by digest. */
export function msbList(home: string): MsbRow[] {
  const rows = JSON.parse(msbOk(home, ["snapshot", "list", "--format", "json"])) as MsbRow[];
  return rows.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

/**
 * A fresh msb home under the temp directory (real path, as msb records
 * canonical paths), with msb's database created by one `msb snapshot list`.
 */
export function msbHome(prefix: string): { root: string; home: string } {
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const home = join(root, "home");
  mkdirSync(join(home, "snapshots"), { recursive: true });
  msbOk(home, ["snapshot", "list"]);
  return { root, home };
}

/** Where `mkfs.erofs` (Debian erofs-utils) runs: false, else why a real image cannot be built. */
export const MKFS_EROFS_SKIP: false | string = (() => {
  const r = spawnSync("mkfs.erofs", ["--help"], { encoding: "utf8" });
  return r.error ? "mkfs.erofs (Debian erofs-utils) is not installed" : false;
})();

/**
 * An image cache msb itself accepts for `save --with-image`: metadata that
 * parses as msb's `CachedImageMetadata` (a full `config` object), raw
 * manifest/config JSON hashing to their digests, real EROFS images for the
 * fsmeta and every layer (made by `mkfs.erofs`), and a VMDK descriptor.
 * Resolves the image's manifest digest and its cache files.
 */
export async function buildMsbImage(home: string, ref: string, salt = ""): Promise<{ manifestDigest: string; files: string[] }> {
  const { HomeLayout } = await import("../../src/layout.js");
  const layout = new HomeLayout(home);
  const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
  for (const d of ["manifests", "layers", "fsmeta", "vmdk"]) mkdirSync(join(home, "cache", d), { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "msb-erofs-"));
  const erofs = (out: string, name: string, text: string) => {
    const src = mkdtempSync(join(scratch, "src-"));
    writeFileSync(join(src, name), text);
    const r = spawnSync("mkfs.erofs", ["--quiet", "-T0", "--all-root", out, src], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mkfs.erofs ${out}: ${r.stderr}`);
  };
  try {
    const layers = [0, 1].map((i) => ({ digest: sha(`blob-${i}-${salt}`), media_type: "application/vnd.oci.image.layer.v1.tar+gzip", size_bytes: 100 + i, diff_id: sha(`diff-${i}-${salt}`) }));
    const rawConfig = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.diff_id) }, config: {} });
    const rawManifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(rawConfig), size: rawConfig.length },
      layers: layers.map((l) => ({ mediaType: l.media_type, digest: l.digest, size: l.size_bytes })),
    });
    const manifestDigest = sha(rawManifest);
    const config = { env: [], cmd: null, entrypoint: null, working_dir: null, user: null, exposed_ports: [], volumes: [], labels: {}, stop_signal: null };
    const metadataPath = await layout.metadataPath(ref);
    writeFileSync(metadataPath, JSON.stringify({ manifest_digest: manifestDigest, config_digest: sha(rawConfig), raw_manifest_json: rawManifest, raw_config_json: rawConfig, config, layers }));
    const files = [metadataPath, layout.fsmetaPath(manifestDigest), layout.vmdkPath(manifestDigest), ...layers.map((l) => layout.layerPath(l.diff_id))];
    erofs(files[1]!, "fsmeta", `fsmeta ${salt}`);
    writeFileSync(files[2]!, `# Disk DescriptorFile\nversion=1\n# ${salt}\n`);
    layers.forEach((l, i) => erofs(layout.layerPath(l.diff_id), `f${i}`, `layer ${i} ${salt}`));
    return { manifestDigest, files };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
