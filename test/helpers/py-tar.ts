/**
 * Listing a saved bundle with a real tool: python3's `tarfile` (after the zstd
 * CLI for a `.tar.zst`), so a save's entry types, sizes, mtimes, sparse maps
 * and logical contents are judged by a reader that is not ours.
 * @module
 */

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One member as python's tarfile reads it. */
export interface PyMember {
  readonly name: string;
  /** The typeflag: "0" regular, "S" old-GNU sparse, "5" directory, … */
  readonly type: string;
  /** Apparent (logical) size. */
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** `[offset, length]` data extents of a sparse member, else null. */
  readonly sparse: [number, number][] | null;
  /** Hex SHA-256 of the logical content (holes as zeros); null for non-files. */
  readonly sha256: string | null;
}

const SCRIPT = `
import hashlib, json, sys, tarfile
lists = []
for path in sys.argv[1:]:
  out = []
  lists.append(out)
  with tarfile.open(path, "r:") as t:
    for m in t:
        h = None
        if m.isfile():
            f = t.extractfile(m)
            h = hashlib.sha256()
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
            h = h.hexdigest()
        out.append({"name": m.name, "type": m.type.decode("latin-1"), "size": m.size, "mode": m.mode, "uid": m.uid, "gid": m.gid, "mtime": int(m.mtime),
                    "sparse": [list(x) for x in m.sparse] if m.sparse is not None else None, "sha256": h})
print(json.dumps(lists))
`;

/**
 * List each of `bundles` (plain tar, or zstd-compressed tar) with python3
 * tarfile, in one run. Exiting non-zero or writing anything to stderr (a
 * warning) fails the listing.
 */
export function pyListTars(bundles: readonly Uint8Array[]): PyMember[][] {
  const dir = mkdtempSync(join(tmpdir(), "snapbundle-pytar-"));
  try {
    const paths = bundles.map((bundle, i) => {
      const zstd = bundle[0] === 0x28 && bundle[1] === 0xb5 && bundle[2] === 0x2f && bundle[3] === 0xfd;
      writeFileSync(join(dir, `${i}`), bundle);
      if (!zstd) return join(dir, `${i}`);
      execFileSync("zstd", ["-d", "-q", "-f", join(dir, `${i}`), "-o", join(dir, `${i}.tar`)], { stdio: ["ignore", "ignore", "pipe"] });
      return join(dir, `${i}.tar`);
    });
    const r = spawnSync("python3", ["-c", SCRIPT, ...paths], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.status !== 0 || r.stderr !== "") throw new Error(`python3 tarfile: exit ${r.status}, stderr: ${r.stderr}${r.error ? ` (${r.error.message})` : ""}`);
    return JSON.parse(r.stdout) as PyMember[][];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** List one bundle (see {@link pyListTars}). */
export function pyListTar(bundle: Uint8Array): PyMember[] {
  return pyListTars([bundle])[0]!;
}
