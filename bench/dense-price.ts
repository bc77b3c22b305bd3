/**
 * The price of save's dense default (issue 11): a snapshot whose upper is
 * mostly holes — `GiB` apparent, 16 random (incompressible) pieces of 256 KiB
 * (4 MiB of data) —
 * saved as `.tar.zst` with the default (regular entries, holes written as
 * zeros and compressed) and with `sparse: true` (old-GNU `S` entries), then
 * each bundle loaded into a fresh home. Prints one line per size and mode:
 * save and load wall time, and the bundle's size. Node's fs, one process.
 * Without `--integrity` no integrity is recorded, so the sparse rows read
 * only the data and the difference is the price of the dense default alone;
 * with it, save and load hash every logical byte in both modes.
 *
 * @example
 * ```sh
 * node dist/bench/dense-price.js 1 4 16 [--integrity]
 * ```
 * @module
 */

import * as nodeFsMod from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nodeFs, SnapshotStore } from "../src/mod.js";
import { RUNTIME } from "./common.js";

const GiB = 2 ** 30;
const PIECE = 256 * 1024;

/** A sparse file of `size` bytes with 16 pseudo-random 256 KiB pieces spread over it. */
function sparseUpper(file: string, size: number): void {
  const fd = nodeFsMod.openSync(file, "w");
  try {
    const piece = new Uint8Array(PIECE);
    for (let k = 0; k < 16; k++) {
      for (let i = 0; i < PIECE; i += 65536) crypto.getRandomValues(piece.subarray(i, i + 65536)); // incompressible
      nodeFsMod.writeSync(fd, piece, 0, PIECE, Math.floor((size / 16) * k / 4096) * 4096);
    }
    nodeFsMod.ftruncateSync(fd, size);
  } finally {
    nodeFsMod.closeSync(fd);
  }
}

async function main(): Promise<void> {
  const integrity = process.argv.includes("--integrity");
  const sizes = process.argv.slice(2).filter((a) => a !== "--integrity").map(Number);
  const root = nodeFsMod.mkdtempSync(path.join(os.tmpdir(), "snapbundle-dense-price-"));
  const fs = nodeFs();
  try {
    for (const g of sizes.length > 0 ? sizes : [1]) {
      const home = path.join(root, `home-${g}`);
      const store = new SnapshotStore(fs, home);
      const upper = path.join(root, `u-${g}`);
      sparseUpper(upper, g * GiB);
      await store.create("s", { upper, image: { ref: "python:3.12", manifest_digest: "sha256:" + "a".repeat(64) }, integrity });
      nodeFsMod.rmSync(upper);
      for (const mode of ["dense", "sparse"] as const) {
        const out = path.join(root, `s-${g}-${mode}.tar.zst`);
        let t = performance.now();
        await store.save("s", out, { sparse: mode === "sparse" });
        const saveMs = performance.now() - t;
        const bytes = nodeFsMod.statSync(out).size;
        const dst = new SnapshotStore(fs, path.join(root, `dst-${g}-${mode}`));
        t = performance.now();
        await dst.load(out);
        const loadMs = performance.now() - t;
        console.log(JSON.stringify({ runtime: RUNTIME, integrity, apparentGiB: g, dataMiB: 4, mode, saveS: +(saveMs / 1000).toFixed(2), loadS: +(loadMs / 1000).toFixed(2), bundleBytes: bytes }));
        nodeFsMod.rmSync(path.join(root, `dst-${g}-${mode}`), { recursive: true, force: true });
        nodeFsMod.rmSync(out);
      }
      nodeFsMod.rmSync(home, { recursive: true, force: true });
    }
  } finally {
    nodeFsMod.rmSync(root, { recursive: true, force: true });
  }
}

await main();
