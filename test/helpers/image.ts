/** Build a consistent image cache in a home: metadata whose raw JSON hashes to its digests, fsmeta, VMDK, layers. */
import { createHash } from "node:crypto";
import type { FileSystem } from "../../src/fs/types.js";
import { HomeLayout } from "../../src/layout.js";
import { minimalErofs } from "./erofs.js";
import { writeSparse } from "./homes.js";

export interface BuiltImage {
  readonly ref: string;
  readonly manifest_digest: string;
  /** Paths of every cache file, metadata first. */
  readonly files: string[];
  readonly metadataPath: string;
  readonly metadata: Record<string, unknown>;
}

const sha = (s: string) => "sha256:" + createHash("sha256").update(s).digest("hex");

export async function buildImage(fs: FileSystem, home: string, ref = "python:3.12", layers = 2, salt = ""): Promise<BuiltImage> {
  const layout = new HomeLayout(home);
  const rawManifest = JSON.stringify({ schemaVersion: 2, layers: layers, salt });
  const rawConfig = JSON.stringify({ architecture: "amd64", salt });
  const manifest_digest = sha(rawManifest);
  const layerList = Array.from({ length: layers }, (_, i) => ({
    digest: sha(`layer-${i}-${salt}`),
    media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    size_bytes: 1234 + i,
    diff_id: sha(`diff-${i}-${salt}`),
  }));
  // a duplicated layer (same diff_id twice) must be shipped once
  if (layers > 0) layerList.push({ ...layerList[0]! });
  const metadata = {
    manifest_digest,
    config_digest: sha(rawConfig),
    raw_manifest_json: rawManifest,
    raw_config_json: rawConfig,
    config: { opaque: true },
    layers: layerList,
  };
  const metadataPath = await layout.metadataPath(ref);
  const files = [metadataPath, layout.fsmetaPath(manifest_digest), layout.vmdkPath(manifest_digest)];
  for (const l of layerList) if (!files.includes(layout.layerPath(l.diff_id))) files.push(layout.layerPath(l.diff_id));
  for (const dir of ["manifests", "layers", "fsmeta", "vmdk"]) await fs.mkdir(`${home}/cache/${dir}`, { recursive: true });
  await writeSparse(fs, metadataPath, 0, [[0, JSON.stringify(metadata)]]);
  await writeSparse(fs, files[1]!, 8192, [[0, minimalErofs(8192, 11 + salt.length)]]);
  await writeSparse(fs, files[2]!, 0, [[0, `# Disk DescriptorFile\nversion=1\n${salt}\n`]]);
  for (let i = 3; i < files.length; i++) await writeSparse(fs, files[i]!, 4096 * (i - 1), [[0, minimalErofs(4096 * (i - 1), i)]]);
  return { ref, manifest_digest, files, metadataPath, metadata };
}
