/**
 * A minimal tar header walker for checking what snapbundle writes, written
 * from the format description and independent of src/tar: names, typeflags,
 * sizes, magic and mode of every header, sparse extension blocks skipped.
 * @module
 */

const dec = new TextDecoder();

/** One header as found. */
export interface RawHeader {
  readonly offset: number;
  readonly name: string;
  readonly typeflag: string;
  /** The size field: bytes stored in the archive. */
  readonly size: number;
  /** `realsize` of an old-GNU sparse entry, else `size`. */
  readonly realSize: number;
  readonly magic: string;
  readonly mode: number;
}

function str(b: Uint8Array, off: number, len: number): string {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return dec.decode(nul < 0 ? f : f.subarray(0, nul));
}

function num(b: Uint8Array, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = BigInt(b[off]! & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[off + i]!);
    return Number(v);
  }
  const s = str(b, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

/** Every header of an uncompressed tar, up to the first zero block. */
export function walkHeaders(tar: Uint8Array): RawHeader[] {
  const out: RawHeader[] = [];
  let at = 0;
  while (at + 512 <= tar.length) {
    const b = tar.subarray(at, at + 512);
    if (b.every((x) => x === 0)) break;
    const magic = dec.decode(b.subarray(257, 265));
    let name = str(b, 0, 100);
    const prefix = magic.startsWith("ustar\0") ? str(b, 345, 155) : "";
    if (prefix !== "") name = `${prefix}/${name}`;
    const typeflag = String.fromCharCode(b[156]!);
    const size = num(b, 124, 12);
    let realSize = size;
    let next = at + 512;
    if (typeflag === "S") {
      realSize = num(b, 483, 12);
      let extended = b[482] === 1;
      while (extended) {
        extended = tar[next + 504] === 1;
        next += 512;
      }
    }
    out.push({ offset: at, name, typeflag, size, realSize, magic, mode: num(b, 100, 8) });
    at = next + Math.ceil(size / 512) * 512;
  }
  return out;
}
