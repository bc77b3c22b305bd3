/**
 * The EROFS validity rule for image-cache files (docs/format.md §9.6 step 9,
 * microsandbox's `is_valid_erofs_artifact`): a layer or fsmeta `.erofs` file
 * is a valid image when, beyond being a non-empty multiple of 4096 bytes,
 * - the superblock at byte 1024 carries the EROFS magic `0xE0F5E1E2`;
 * - its block size is 4096 bytes (`blkszbits` 12: microsandbox reads no other);
 * - the root inode (`meta_blkaddr * 4096 + root_nid * 32`) lies inside the
 *   image, is a directory, and its inline xattrs parse (upstream's reader
 *   knows the `user.`, `trusted.` and `security.` name indexes only).
 *
 * The check reads only what it needs: 128 bytes of superblock, the root
 * inode, and its xattr body (at most 256 KiB), asked for as byte ranges in
 * increasing order, so a file (positioned reads) and a stream (one pass)
 * are checked by the same code. Pure: no I/O of its own.
 *
 * @example
 * ```ts
 * const check = new ErofsCheck(size);
 * for (let r = check.need; r !== null; r = check.need) check.supply(await readAt(r.offset, r.length));
 * check.problem; // null, or e.g. "no EROFS superblock magic at byte 1024 (found 0x00000000)"
 * ```
 * @module
 */

import { EROFS_BLOCK } from "../layout.js";

/** Where the superblock starts. */
export const EROFS_SUPER_OFFSET = 1024;
/** The superblock's magic number (little-endian at byte 1024). */
export const EROFS_MAGIC = 0xe0f5e1e2;
const SUPER_BYTES = 128;
const BLOCK_BITS = 12;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
/** The xattr name indexes microsandbox's reader accepts: user, trusted, security. */
const XATTR_INDEXES = new Set([1, 4, 6]);

/** The rule, as error messages quote it. */
export const EROFS_RULE = "an EROFS cache file needs the superblock magic at byte 1024, 4096-byte blocks and a root directory inode that parses";

/** A byte range of the image. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * One image's check: ask {@link need} for the next range, {@link supply}
 * its bytes, until `need` is `null`; then {@link problem} is the verdict.
 */
export class ErofsCheck {
  #need: ByteRange | null = null;
  #problem: string | null = null;
  #step: "superblock" | "inode" | "xattrs" | "done" = "superblock";
  #inodeAt = 0;
  #inodeBytes = 64;

  /** `size`: the image's length in bytes. */
  constructor(readonly size: number) {
    if (size <= 0 || size % EROFS_BLOCK !== 0) this.#fail(`not a non-empty multiple of ${EROFS_BLOCK} bytes (${size} bytes)`);
    else this.#ask(EROFS_SUPER_OFFSET, SUPER_BYTES, "the superblock");
  }

  /** The next range the check needs, or `null` once it has decided. */
  get need(): ByteRange | null {
    return this.#need;
  }

  /** What is wrong with the image (once {@link need} is `null`), or `null` when it is valid. */
  get problem(): string | null {
    return this.#problem;
  }

  /** The bytes of the range {@link need} asked for (exactly its length). */
  supply(bytes: Uint8Array): void {
    const need = this.#need;
    if (need === null || bytes.length !== need.length) throw new Error(`ErofsCheck: supplied ${bytes.length} bytes, needed ${need?.length ?? 0}`);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#step === "superblock") this.#superblock(v);
    else if (this.#step === "inode") this.#inode(v);
    else this.#xattrs(bytes, v);
  }

  #superblock(v: DataView): void {
    const magic = v.getUint32(0, true);
    if (magic !== EROFS_MAGIC) return this.#fail(`no EROFS superblock magic at byte ${EROFS_SUPER_OFFSET} (found 0x${magic.toString(16).padStart(8, "0")})`);
    const bits = v.getUint8(12);
    if (bits !== BLOCK_BITS) return this.#fail(`block size 2^${bits} bytes; microsandbox reads ${EROFS_BLOCK}-byte blocks only`);
    const rootNid = v.getUint16(14, true);
    const metaBlkaddr = v.getUint32(40, true);
    this.#inodeAt = metaBlkaddr * EROFS_BLOCK + rootNid * 32;
    this.#step = "inode";
    // upstream reads 64 bytes whatever the inode's version; so does this check
    this.#ask(this.#inodeAt, 64, `the root inode (nid ${rootNid}, meta_blkaddr ${metaBlkaddr})`);
  }

  #inode(v: DataView): void {
    const format = v.getUint16(0, true);
    const mode = v.getUint16(4, true);
    if ((mode & S_IFMT) !== S_IFDIR) return this.#fail(`the root inode at byte ${this.#inodeAt} is not a directory (mode 0o${mode.toString(8)})`);
    this.#inodeBytes = (format & 1) === 1 ? 64 : 32;
    const icount = v.getUint16(2, true);
    if (icount === 0) return this.#done();
    this.#step = "xattrs";
    this.#ask(this.#inodeAt + this.#inodeBytes, 12 + (icount - 1) * 4, "the root inode's xattrs");
  }

  #xattrs(bytes: Uint8Array, v: DataView): void {
    const shared = v.getUint8(4);
    let at = 12 + shared * 4;
    if (at > bytes.length) return this.#fail(`the root inode's xattrs name ${shared} shared xattrs, more than their ${bytes.length}-byte body holds`);
    while (at < bytes.length) {
      if (bytes.length - at < 4) return this.#fail("the root inode's xattrs end in a truncated entry header");
      const nameLen = v.getUint8(at);
      const index = v.getUint8(at + 1);
      const valueLen = v.getUint16(at + 2, true);
      const entry = (4 + nameLen + valueLen + 3) & ~3;
      if (at + entry > bytes.length) return this.#fail("a root inode xattr entry runs past its xattr body");
      if (!XATTR_INDEXES.has(index)) return this.#fail(`the root inode has an xattr with name index ${index} (microsandbox reads user, trusted and security only)`);
      at += entry;
    }
    this.#done();
  }

  #ask(offset: number, length: number, what: string): void {
    if (offset + length > this.size) return this.#fail(`${what} at byte ${offset} lies past the end of the ${this.size}-byte image`);
    this.#need = { offset, length };
  }

  #fail(problem: string): void {
    this.#problem = problem;
    this.#done();
  }

  #done(): void {
    this.#need = null;
    this.#step = "done";
  }
}

/**
 * The same check over bytes that stream past once, in order (an archive
 * member): feed every chunk, then {@link finish}. Keeps the first
 * {@link EROFS_SUPER_OFFSET} + 128 bytes, the range being collected and the
 * one before it, no more.
 *
 * @example
 * ```ts
 * const s = new ErofsStreamCheck(entry.size);
 * for await (const seg of entry.segments()) s.feed(seg.data, seg.offset);
 * s.finish(); // null when valid
 * ```
 */
export class ErofsStreamCheck {
  readonly #check: ErofsCheck;
  readonly #head: Uint8Array;
  #pos = 0;
  #buf: Uint8Array | null = null;
  #filled = 0;
  /** The range supplied last: the next may start inside it (the root inode is read as 64 bytes; a compact one's xattrs start at 32). */
  #prev: { offset: number; bytes: Uint8Array } | null = null;

  constructor(size: number) {
    this.#check = new ErofsCheck(size);
    this.#head = new Uint8Array(Math.min(Math.max(size, 0), EROFS_SUPER_OFFSET + SUPER_BYTES));
  }

  /** The bytes at `offset` (default: right after the last ones); a gap before them is a hole, read as zeros. */
  feed(chunk: Uint8Array, offset = this.#pos): void {
    if (offset > this.#pos) this.#span(null, this.#pos, offset - this.#pos);
    this.#span(chunk, offset, chunk.length);
  }

  /** The verdict once every byte was fed (a tail not fed is a hole): `null` when valid, else what is wrong. */
  finish(): string | null {
    if (this.#pos < this.#check.size) this.#span(null, this.#pos, this.#check.size - this.#pos);
    if (this.#check.need !== null) return `the image ended after ${this.#pos} of its ${this.#check.size} bytes`;
    return this.#check.problem;
  }

  /** `length` bytes at `start`: `src`, or zeros (a hole) when `null`. */
  #span(src: Uint8Array | null, start: number, length: number): void {
    this.#pos = start + length;
    if (src !== null && start < this.#head.length) this.#head.set(src.subarray(0, this.#head.length - start), start);
    for (let need = this.#check.need; need !== null; need = this.#check.need) {
      if (this.#buf === null) {
        this.#buf = new Uint8Array(need.length);
        this.#filled = 0;
      }
      this.#take(this.#head, 0, Math.min(this.#pos, this.#head.length), need);
      if (this.#prev !== null) this.#take(this.#prev.bytes, this.#prev.offset, this.#prev.bytes.length, need);
      this.#take(src, start, length, need);
      if (this.#filled < need.length) return; // the rest comes with later bytes
      const bytes = this.#buf;
      this.#buf = null;
      this.#prev = { offset: need.offset, bytes };
      this.#check.supply(bytes);
    }
  }

  /** Copy into the range being collected whatever `src` (`srcLength` bytes from `srcAt`; `null`: zeros) holds next. */
  #take(src: Uint8Array | null, srcAt: number, srcLength: number, need: ByteRange): void {
    const at = need.offset + this.#filled;
    if (at < srcAt || at >= srcAt + srcLength) return;
    const n = Math.min(need.length - this.#filled, srcAt + srcLength - at);
    if (src !== null) this.#buf!.set(src.subarray(at - srcAt, at - srcAt + n), this.#filled); // a hole's zeros are there already
    this.#filled += n;
  }
}
