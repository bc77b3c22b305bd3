/**
 * Third-party readers as judges of an archive's bytes: python3's tarfile,
 * GNU tar and bsdtar each list and extract it, and report every member's
 * header fields and the SHA-256 of its extracted content. A judge that exits
 * non-zero or writes anything to stderr (a warning such as "A lone zero
 * block") fails the test.
 * @module
 */

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as nodePath from "node:path";

import { removeDir, sha256File, tempDir } from "./tar-tools.js";

/** One member as python's tarfile reads it. */
export interface PyMember {
  name: string;
  /** The typeflag as tarfile keeps it (`"S"` for old-GNU sparse). */
  type: string;
  /** Logical size (`realsize` of a sparse member). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** `[offset, length]` pairs of a sparse member's map, else null. */
  sparse: [number, number][] | null;
  /** SHA-256 of the content tarfile extracts (holes as zeros). */
  sha256: string;
}

/** What each judge made of an archive. */
export interface Verdicts {
  python: PyMember[];
  /** GNU tar's `-xvv --numeric-owner --full-time` listing. */
  gnuListing: string;
  /** Extracted file → [size, SHA-256], by GNU tar. */
  gnu: Map<string, [number, string]>;
  /** Extracted file → [size, SHA-256], by bsdtar. */
  bsd: Map<string, [number, string]>;
}

const PY = `
import sys, tarfile, json, hashlib
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t:
        h = hashlib.sha256()
        if m.isreg():
            h.update(t.extractfile(m).read())
        out.append(dict(name=m.name, type=m.type.decode("latin-1"), size=m.size, mode=m.mode, uid=m.uid, gid=m.gid,
                        mtime=m.mtime, sparse=[list(s) for s in m.sparse] if m.sparse is not None else None,
                        sha256=h.hexdigest()))
print(json.dumps(out))
`;

function judge(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0 || r.stderr !== "") {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}, stderr: ${r.stderr}${r.error ? ` (${r.error.message})` : ""}`);
  }
  return r.stdout;
}

function extracted(dir: string): Map<string, [number, string]> {
  const out = new Map<string, [number, string]>();
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(nodePath.join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) walk(r);
      else {
        const p = nodePath.join(dir, r);
        out.set(r, [fs.statSync(p).size, sha256File(p)]);
      }
    }
  };
  walk("");
  return out;
}

/** Let python3 tarfile, GNU tar and bsdtar read `archive` (an uncompressed tar). */
export function judgeArchive(archive: Uint8Array): Verdicts {
  const dir = tempDir("judges");
  try {
    const file = nodePath.join(dir, "a.tar");
    fs.writeFileSync(file, archive);
    const python = JSON.parse(judge("python3", ["-c", PY, file])) as PyMember[];
    const gnuDir = nodePath.join(dir, "gnu");
    const bsdDir = nodePath.join(dir, "bsd");
    fs.mkdirSync(gnuDir);
    fs.mkdirSync(bsdDir);
    const gnuListing = judge("tar", ["--numeric-owner", "--full-time", "-xvvf", file, "-C", gnuDir]);
    judge("bsdtar", ["-xf", file, "-C", bsdDir]);
    return { python, gnuListing, gnu: extracted(gnuDir), bsd: extracted(bsdDir) };
  } finally {
    removeDir(dir);
  }
}
