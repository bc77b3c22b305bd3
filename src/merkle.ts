/**
 * `msb-file-merkle-blake3-v1`, the integrity microsandbox 0.6.9+ records on
 * request: a binary BLAKE3 Merkle tree over 64 KiB leaves of a file's logical
 * bytes (holes read as zeros), padded with zero leaves to a power of two.
 *
 * - leaf   = BLAKE3("msb-file-merkle-blake3-v1\0leaf\0" ‖ 64 KiB, zero-filled past the end)
 * - parent = BLAKE3("…\0parent\0" ‖ left ‖ right)
 * - root   = BLAKE3("…\0root\0" ‖ u64le size ‖ u32le 65536 ‖ u32le height ‖ top)
 *
 * An all-zero leaf is never hashed: it reuses one precomputed hash, and a
 * subtree of zero leaves reuses its precomputed root, so holes cost no BLAKE3.
 *
 * @example
 * ```ts
 * import { merkleRootOfFile } from "./merkle.js";
 * await merkleRootOfFile(fs, "/h/snapshots/a/upper.ext4", size); // "blake3:…"
 * ```
 * @module
 */

import { createBlake3, HashPool, MAX_HASH_WORKERS } from "../wasm/mod.js";
import { MERKLE_BLAKE3, MERKLE_LEAF_SIZE } from "./descriptor.js";
import type { FileSystem } from "./fs/types.js";
import { dataRuns, type Extent, scanFile } from "./sparse.js";

const enc = new TextEncoder();
const LEAF_DOMAIN = enc.encode(`${MERKLE_BLAKE3}\0leaf\0`);
const PARENT_DOMAIN = enc.encode(`${MERKLE_BLAKE3}\0parent\0`);
const ROOT_DOMAIN = enc.encode(`${MERKLE_BLAKE3}\0root\0`);

async function hashParts(...parts: Uint8Array[]): Promise<Uint8Array> {
  const h = await createBlake3();
  for (const p of parts) h.update(p);
  return h.digestBytes();
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Which of `leaves` leaves starting at file offset `base` hold data: all
 * with `runs` null, else those a data run (at file offsets, in order) meets.
 */
function leafHasData(base: number, leaves: number, length: number, runs: readonly Extent[] | null): boolean[] {
  const out = new Array<boolean>(leaves).fill(runs === null);
  if (runs === null) return out;
  for (const run of runs) {
    const from = Math.max(run.offset, base) - base;
    const to = Math.min(run.offset + run.length, base + length) - base;
    if (run.length === 0 || to <= from) continue;
    for (let l = Math.floor(from / MERKLE_LEAF_SIZE); l * MERKLE_LEAF_SIZE < to; l++) out[l] = true;
  }
  return out;
}

/** Batches of leaf hashes a builder lets run ahead on Workers while its caller reads on. */
const MAX_PENDING_BATCHES = 4;

/** Workers each builder may hash leaves on; 0 (the default) hashes inline. */
let hashWorkers = 0;

/**
 * Let each {@link MerkleBuilder} hash its data leaves on up to `workers`
 * Workers (at most 2) once it has hashed 32 MiB inline, while its caller
 * reads on; 0, the default, hashes on the caller's thread. Off by default:
 * measured on a 2-core machine, `snapbundle verify` of 256 MiB of data was no
 * faster with them and peaked at 130-240 MiB instead of 80 (each Worker is a
 * JavaScript runtime of its own); see docs/benchmarks.md, "Primitives".
 * Where no Worker can be made, leaves are hashed inline either way.
 *
 * @example
 * ```ts
 * setMerkleHashWorkers(2);
 * ```
 */
export function setMerkleHashWorkers(workers: number): void {
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_HASH_WORKERS) throw new RangeError(`setMerkleHashWorkers: ${workers} is not 0, 1 or 2`);
  hashWorkers = workers;
}

/** Roots of all-zero subtrees by height, computed once per process and extended on demand. */
const zeroRoots: Uint8Array[] = [];
async function zeroRoot(height: number): Promise<Uint8Array> {
  if (zeroRoots.length === 0) zeroRoots.push(await hashParts(LEAF_DOMAIN, new Uint8Array(MERKLE_LEAF_SIZE)));
  while (zeroRoots.length <= height) {
    const child = zeroRoots[zeroRoots.length - 1]!;
    zeroRoots.push(await hashParts(PARENT_DOMAIN, child, child));
  }
  return zeroRoots[height]!;
}

/**
 * Builds the Merkle root of a file of a known size from its bytes in order.
 * Feed it leaf-aligned chunks ({@link MerkleBuilder.addChunk}) with the data
 * runs the sparse scan found, or whole holes ({@link MerkleBuilder.addZeros}).
 *
 * @example
 * ```ts
 * const m = new MerkleBuilder(5);
 * await m.addChunk(new TextEncoder().encode("hello"), null);
 * await m.finish(); // "blake3:733a84a1…c941"
 * ```
 */
export class MerkleBuilder {
  readonly #size: number;
  readonly #leafCount: number;
  readonly #height: number;
  /** Pending left siblings by height (the accumulator of a left-to-right build). */
  readonly #nodes: (Uint8Array | null)[];
  /** Bytes consumed so far. */
  #offset = 0;
  /**
   * Subtrees not yet pushed, in order: hashes of data leaves still being
   * computed (on Workers, while the caller reads on), or runs of zero leaves.
   */
  readonly #queue: ({ digests: Promise<Uint8Array> } | { start: number; count: number })[] = [];
  #batches = 0;
  /** Hashes data leaves (on Workers once the input is large, where {@link setMerkleHashWorkers} allows); made on first use. */
  #pool: HashPool | undefined;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`MerkleBuilder: size ${size} is not a non-negative safe integer`);
    this.#size = size;
    const logical = Math.max(1, Math.ceil(size / MERKLE_LEAF_SIZE));
    let leaves = 1;
    let height = 0;
    while (leaves < logical) {
      leaves *= 2;
      height++;
    }
    this.#leafCount = leaves;
    this.#height = height;
    this.#nodes = new Array<Uint8Array | null>(height + 1).fill(null);
  }

  /** Push a subtree of `2^height` leaves; the leaves so far must be a multiple of its width. */
  async #push(height: number, hash: Uint8Array): Promise<void> {
    let level = height;
    let node = hash;
    for (let left = this.#nodes[level]; left != null; left = this.#nodes[level]) {
      this.#nodes[level] = null;
      const zero = await zeroRoot(level);
      node = equal(left, zero) && equal(node, zero) ? await zeroRoot(level + 1) : await hashParts(PARENT_DOMAIN, left, node);
      level++;
    }
    this.#nodes[level] = node;
  }

  /** Push `count` zero leaves starting at leaf `start`, as the largest aligned zero subtrees. */
  async #pushZeroLeaves(start: number, count: number): Promise<void> {
    let s = start;
    const end = start + count;
    while (s < end) {
      let h = 0;
      while (s % 2 ** (h + 1) === 0 && s + 2 ** (h + 1) <= end) h++;
      await this.#push(h, await zeroRoot(h));
      s += 2 ** h;
    }
  }

  /**
   * The next bytes of the file, starting at a leaf boundary; every chunk but
   * the last must be a whole number of leaves. `runs` are the chunk's data
   * runs at file offsets (from the sparse scan), or `null` to hash every leaf.
   */
  async addChunk(data: Uint8Array, runs: readonly Extent[] | null): Promise<void> {
    if (this.#offset % MERKLE_LEAF_SIZE !== 0) throw new RangeError("MerkleBuilder: a chunk after a partial leaf");
    if (this.#offset + data.length > this.#size) throw new RangeError(`MerkleBuilder: more than ${this.#size} bytes`);
    const base = this.#offset;
    const leaves = Math.ceil(data.length / MERKLE_LEAF_SIZE);
    const hasData = leafHasData(base, leaves, Math.min(data.length, leaves * MERKLE_LEAF_SIZE), runs);
    for (let i = 0; i < leaves; ) {
      let j = i + 1;
      while (j < leaves && hasData[j] === hasData[i]) j++;
      if (!hasData[i]) this.#queue.push({ start: base / MERKLE_LEAF_SIZE + i, count: j - i });
      else {
        // a run of data leaves is hashed in one batch (the last leaf zero-filled)
        this.#pool ??= new HashPool(hashWorkers);
        const digests = this.#pool.prefixedMany(LEAF_DOMAIN, data.subarray(i * MERKLE_LEAF_SIZE, j * MERKLE_LEAF_SIZE), MERKLE_LEAF_SIZE);
        digests.catch(() => {}); // observed when settled; meanwhile not an unhandled rejection
        this.#queue.push({ digests });
        this.#batches++;
      }
      i = j;
    }
    this.#offset += data.length;
    // inline, `data` is read when its batch settles: settle all before the caller refills it
    await this.#settle((this.#pool?.workers ?? 0) > 0 ? MAX_PENDING_BATCHES : 0);
  }

  /** Push queued subtrees in order until at most `keep` batches of leaf hashes are outstanding. */
  async #settle(keep: number): Promise<void> {
    try {
      for (let head = this.#queue[0]; head !== undefined; head = this.#queue[0]) {
        if ("digests" in head) {
          if (this.#batches <= keep) return;
          this.#queue.shift();
          this.#batches--;
          const digests = await head.digests;
          for (let k = 0; k < digests.length; k += 32) await this.#push(0, digests.subarray(k, k + 32));
        } else {
          this.#queue.shift();
          await this.#pushZeroLeaves(head.start, head.count);
        }
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * Stop hashing: Workers this builder started are terminated. {@link finish}
   * does this itself; call it when abandoning a builder (an error, an abort).
   */
  close(): void {
    this.#pool?.close();
    this.#queue.length = 0;
    this.#batches = 0;
  }

  /** `length` zero bytes (a hole), starting at a leaf boundary. */
  async addZeros(length: number): Promise<void> {
    if (this.#offset % MERKLE_LEAF_SIZE !== 0) throw new RangeError("MerkleBuilder: zeros after a partial leaf");
    if (this.#offset + length > this.#size) throw new RangeError(`MerkleBuilder: more than ${this.#size} bytes`);
    this.#queue.push({ start: this.#offset / MERKLE_LEAF_SIZE, count: Math.ceil(length / MERKLE_LEAF_SIZE) });
    this.#offset += length;
    if (this.#batches === 0) await this.#settle(0);
  }

  /** The root, `blake3:<hex>`. Every byte must have been added. */
  async finish(): Promise<string> {
    if (this.#offset !== this.#size) throw new RangeError(`MerkleBuilder: got ${this.#offset} of ${this.#size} bytes`);
    await this.#settle(0);
    this.close();
    const done = this.#size === 0 ? 0 : Math.ceil(this.#size / MERKLE_LEAF_SIZE);
    await this.#pushZeroLeaves(done, this.#leafCount - done);
    const top = this.#nodes[this.#height];
    if (top == null || this.#nodes.some((n, i) => n !== null && i !== this.#height)) throw new Error("MerkleBuilder: the tree is incomplete");
    const header = new Uint8Array(16);
    const dv = new DataView(header.buffer);
    dv.setBigUint64(0, BigInt(this.#size), true);
    dv.setUint32(8, MERKLE_LEAF_SIZE, true);
    dv.setUint32(12, this.#height, true);
    return `blake3:${hex(await hashParts(ROOT_DOMAIN, header, top))}`;
  }
}

/**
 * A {@link MerkleBuilder} fed a file's bytes in order in pieces of any size,
 * and its holes: it keeps one partial leaf. For an upper streaming past (a
 * bundle member), whose pieces follow the archive's chunks and sparse map,
 * not leaves. All-zero leaves are not hashed, as in {@link merkleRootOfFile}.
 *
 * @example
 * ```ts
 * const m = new MerkleStream(5);
 * await m.update(new TextEncoder().encode("hel"));
 * await m.update(new TextEncoder().encode("lo"));
 * await m.finish(); // "blake3:733a84a1…c941"
 * ```
 */
export class MerkleStream {
  readonly #tree: MerkleBuilder;
  readonly #leaf = new Uint8Array(MERKLE_LEAF_SIZE);
  /** Bytes in {@link #leaf} not yet handed to the tree. */
  #fill = 0;
  /** Bytes handed to the tree so far (whole leaves until the end). */
  #offset = 0;

  constructor(size: number) {
    this.#tree = new MerkleBuilder(size);
  }

  /** The next bytes of the file. */
  async update(data: Uint8Array): Promise<void> {
    let at = 0;
    if (this.#fill > 0) {
      at = Math.min(data.length, MERKLE_LEAF_SIZE - this.#fill);
      this.#leaf.set(data.subarray(0, at), this.#fill);
      this.#fill += at;
      if (this.#fill === MERKLE_LEAF_SIZE) await this.#flush();
    }
    const whole = Math.floor((data.length - at) / MERKLE_LEAF_SIZE) * MERKLE_LEAF_SIZE;
    if (whole > 0) await this.#add(data.subarray(at, at + whole));
    at += whole;
    if (at < data.length) {
      // the leaf buffer is empty here: either it was, or it was just flushed
      this.#leaf.set(data.subarray(at), 0);
      this.#fill = data.length - at;
    }
  }

  /** The next `length` bytes are zero (a hole). */
  async zeros(length: number): Promise<void> {
    let left = length;
    if (this.#fill > 0) {
      const n = Math.min(left, MERKLE_LEAF_SIZE - this.#fill);
      this.#leaf.fill(0, this.#fill, this.#fill + n);
      this.#fill += n;
      left -= n;
      if (this.#fill === MERKLE_LEAF_SIZE) await this.#flush();
    }
    const whole = Math.floor(left / MERKLE_LEAF_SIZE) * MERKLE_LEAF_SIZE;
    if (whole > 0) {
      await this.#tree.addZeros(whole);
      this.#offset += whole;
    }
    if (left > whole) {
      this.#leaf.fill(0, 0, left - whole);
      this.#fill = left - whole;
    }
  }

  /** Stop hashing (see {@link MerkleBuilder.close}); {@link finish} does it itself. */
  close(): void {
    this.#tree.close();
  }

  /** The root, `blake3:<hex>`; every byte must have come. */
  async finish(): Promise<string> {
    if (this.#fill > 0) await this.#flush();
    return this.#tree.finish();
  }

  async #flush(): Promise<void> {
    await this.#add(this.#leaf.subarray(0, this.#fill));
    this.#fill = 0;
  }

  async #add(data: Uint8Array): Promise<void> {
    await this.#tree.addChunk(data, dataRuns(data, this.#offset));
    this.#offset += data.length;
  }
}

/**
 * The `msb-file-merkle-blake3-v1` root of `[0, size)` of a file, reading it
 * once through the sparse scan (zero leaves are not hashed).
 *
 * @example
 * ```ts
 * await merkleRootOfFile(fs, "/tmp/empty", 0); // "blake3:1f44fec2…05fa"
 * ```
 */
export async function merkleRootOfFile(fs: FileSystem, path: string, size: number, onProgress?: (bytes: number) => void): Promise<string> {
  const m = new MerkleBuilder(size);
  try {
    await scanFile(fs, path, size, { onProgress, onChunk: (chunk, runs) => m.addChunk(chunk.data, runs), onHole: (_, length) => m.addZeros(length) });
    return await m.finish();
  } finally {
    m.close();
  }
}
