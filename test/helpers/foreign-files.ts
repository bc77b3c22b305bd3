/**
 * Files of other well-known formats, each written by its own tool (gzip, xz,
 * bzip2, lz4, zip, python3's zipfile for an empty zip, bsdtar for 7-Zip), for
 * the tests that an input is recognised by its magic bytes. Through
 * temporary files, not pipes (Deno's `execFileSync` and large stdin).
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One foreign file: what snapbundle must call it, which tool made it, and its bytes. */
export interface ForeignFile {
  /** The name the refusal must give it ("a gzip file"). */
  readonly format: string;
  /** The tool (and format) that wrote it, for assertion messages. */
  readonly tool: string;
  readonly bytes: Uint8Array;
}

/** `content` (a file named `data`) written in every foreign format by its tool. */
export function foreignFiles(content: Uint8Array): ForeignFile[] {
  const dir = mkdtempSync(join(tmpdir(), "snapbundle-foreign-"));
  try {
    const data = join(dir, "data");
    writeFileSync(data, content);
    const out = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
    const make = (format: string, tool: string, file: string, cmd: string, args: string[]): ForeignFile => {
      execFileSync(cmd, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
      return { format, tool, bytes: out(file) };
    };
    return [
      make("a gzip file", "gzip", "data.gz", "gzip", ["-k", "-n", "data"]),
      make("an xz file", "xz", "data.xz", "xz", ["-k", "data"]),
      make("a bzip2 file", "bzip2", "data.bz2", "bzip2", ["-k", "data"]),
      make("an lz4 file", "lz4", "data.lz4", "lz4", ["-q", "data", "data.lz4"]),
      make("a zip file", "zip", "data.zip", "zip", ["-q", "data.zip", "data"]),
      make("a zip file", "python3 zipfile (empty zip)", "empty.zip", "python3", ["-c", "import zipfile; zipfile.ZipFile('empty.zip', 'w').close()"]),
      make("a 7-Zip file", "bsdtar --format 7zip", "data.7z", "bsdtar", ["--format", "7zip", "-cf", "data.7z", "data"]),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
