/**
 * Hand-crafted tar bytes for hostile-input tests, written from the format
 * description independently of src/tar (its own octal, base-256, checksum).
 * @module
 */

import { concatBytes } from "./bytes.js";

export { concatBytes } from "./bytes.js";

const enc = new TextEncoder();

/** Header fields to craft; anything missing is a sane default. */
export interface CraftHeader {
  name?: string | Uint8Array;
  mode?: number;
  /** A number (octal) or the raw 12 bytes of the size field. */
  size?: number | Uint8Array;
  mtime?: number;
  typeflag?: string;
  linkname?: string;
  magic?: "gnu" | "ustar" | "v7" | "bogus";
  prefix?: string;
  /** Old-GNU sparse fields: descriptors (first 4), isextended, realsize. */
  sparse?: { map: [number, number][]; isExtended?: boolean; realSize: number };
  /** Last-moment edits before the checksum is computed. */
  edit?: (block: Uint8Array) => void;
  /** `"ok"` (unsigned sum), `"signed"` (signed sum), `"bad"` (off by one), or a raw field value. */
  checksum?: "ok" | "signed" | "bad" | string;
}

function putString(b: Uint8Array, off: number, len: number, s: string | Uint8Array): void {
  const bytes = typeof s === "string" ? enc.encode(s) : s;
  if (bytes.length > len) throw new Error(`craft: field too long (${bytes.length} > ${len})`);
  b.set(bytes, off);
}

/** Octal with `len - 1` digits and a NUL. */
export function octal(b: Uint8Array, off: number, len: number, v: number): void {
  putString(b, off, len, v.toString(8).padStart(len - 1, "0") + "\0");
}

/** GNU base-256, positive, in `len` bytes. */
export function base256(v: bigint, len = 12): Uint8Array {
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0]! |= 0x80;
  return out;
}

/** GNU base-256 two's complement negative value in `len` bytes. */
export function base256Negative(v: bigint, len = 12): Uint8Array {
  const out = new Uint8Array(len);
  let x = (1n << BigInt(8 * len)) + v; // two's complement
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** One 512-byte header block. */
export function craftHeader(h: CraftHeader): Uint8Array {
  const b = new Uint8Array(512);
  putString(b, 0, 100, h.name ?? "file");
  octal(b, 100, 8, h.mode ?? 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  if (h.size instanceof Uint8Array) b.set(h.size, 124);
  else octal(b, 124, 12, h.size ?? 0);
  octal(b, 136, 12, h.mtime ?? 0);
  b[156] = (h.typeflag ?? "0").charCodeAt(0);
  putString(b, 157, 100, h.linkname ?? "");
  const magic = h.magic ?? "gnu";
  if (magic === "gnu") putString(b, 257, 8, "ustar  \0");
  else if (magic === "ustar") putString(b, 257, 8, "ustar\x0000");
  else if (magic === "bogus") putString(b, 257, 8, "tarus\x0000");
  if (h.prefix !== undefined) putString(b, 345, 155, h.prefix);
  if (h.sparse) {
    h.sparse.map.slice(0, 4).forEach(([o, n], k) => {
      octal(b, 386 + 24 * k, 12, o);
      octal(b, 386 + 24 * k + 12, 12, n);
    });
    b[482] = h.sparse.isExtended ? 1 : 0;
    octal(b, 483, 12, h.sparse.realSize);
  }
  h.edit?.(b);
  b.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const x of b) {
    unsigned += x;
    signed += x >= 128 ? x - 256 : x;
  }
  const mode = h.checksum ?? "ok";
  if (mode === "ok") putString(b, 148, 8, unsigned.toString(8).padStart(6, "0") + "\0 ");
  else if (mode === "signed") putString(b, 148, 8, signed.toString(8).padStart(6, "0") + "\0 ");
  else if (mode === "bad") putString(b, 148, 8, (unsigned + 1).toString(8).padStart(6, "0") + "\0 ");
  else putString(b, 148, 8, mode);
  return b;
}

/** A sparse extension block with up to 21 descriptors. */
export function craftSparseExtension(map: [number, number][], isExtended: boolean): Uint8Array {
  const b = new Uint8Array(512);
  map.forEach(([o, n], k) => {
    octal(b, 24 * k, 12, o);
    octal(b, 24 * k + 12, 12, n);
  });
  b[504] = isExtended ? 1 : 0;
  return b;
}

/** Data padded to whole blocks. */
export function craftData(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  const out = new Uint8Array(Math.ceil(bytes.length / 512) * 512);
  out.set(bytes);
  return out;
}

/** One PAX record `"<len> key=value\n"` with the correct length. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len++;
  return `${len}${body}`;
}

/** A PAX `x` header plus its padded records. */
export function craftPax(records: string | Uint8Array): Uint8Array {
  const bytes = typeof records === "string" ? enc.encode(records) : records;
  return concatBytes(craftHeader({ name: "PaxHeader/file", typeflag: "x", size: bytes.length }), craftData(bytes));
}

/** The end-of-archive marker: two zero blocks. */
export const END = new Uint8Array(1024);
