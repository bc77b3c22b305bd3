/**
 * Third-party readers as judges of an archive's bytes: python3's tarfile
 * (through `py-tar.ts`), GNU tar and bsdtar each list and extract it, and report every member's
 * header fields and the SHA-256 of its extracted content. A judge that exits
 * non-zero or writes anything to stderr (a warning such as "A lone zero
 * block") fails the test.
 * @module
 */

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as nodePath from "node:path";

import { type PyMember, pyListTar } from "./py-tar.js";
import { removeDir, sha256File, tempDir } from "./tar-tools.js";

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
    const python = pyListTar(archive);
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
