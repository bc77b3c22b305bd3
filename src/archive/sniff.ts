/**
 * Recognise what a bundle input is from its first bytes, before anything is
 * unpacked: an empty input, a file of another well-known format (gzip, xz,
 * bzip2, zip, 7-Zip, lz4) or something that is not a tar archive at all is
 * refused with an {@link ArchiveError} that names it — instead of a tar
 * parser's complaint about a numeric field at offset 0.
 *
 * The file name plays no part: only the magic bytes do.
 *
 * @example
 * ```ts
 * import { openBundleStream } from "./sniff.js";
 * const tar = await openBundleStream(fileReadable(fs, "/tmp/x.tar.gz"), "/tmp/x.tar.gz");
 * // throws ArchiveError: /tmp/x.tar.gz is a gzip file; snapbundle reads .tar and .tar.zst
 * ```
 * @module
 */

import { isZstdMagic } from "../zstd.js";
import { ArchiveError } from "../errors.js";
import { headerFormat, type HeaderFormat, isZeroBlock, verifyChecksum } from "../tar/header.js";
import { decompressIfZstd, peekStream, type ZstdReadOptions } from "./streams.js";

const TAR_BLOCK = 512;

/** Foreign formats by their magic bytes (offset 0). */
const FOREIGN_MAGIC: readonly (readonly [string, readonly number[]])[] = [
  ["a gzip file", [0x1f, 0x8b]],
  ["an xz file", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["a bzip2 file", [0x42, 0x5a, 0x68]], // "BZh"
  ["a zip file", [0x50, 0x4b, 0x03, 0x04]],
  ["a zip file", [0x50, 0x4b, 0x05, 0x06]], // an empty zip
  ["a 7-Zip file", [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
  ["an lz4 file", [0x04, 0x22, 0x4d, 0x18]],
];

/**
 * The name of the foreign format `head` starts with ("a gzip file"), or null.
 *
 * @example
 * ```ts
 * foreignFormat(new Uint8Array([0x1f, 0x8b, 8, 0])); // "a gzip file"
 * foreignFormat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // null (zstd is ours)
 * ```
 */
export function foreignFormat(head: Uint8Array): string | null {
  for (const [name, magic] of FOREIGN_MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return name;
  }
  return null;
}

/** What the first bytes of a bundle say. */
export type Compression = "zstd" | "none";

/**
 * Check the first bytes of a raw bundle input: empty, foreign, else its compression.
 * Throws {@link ArchiveError} naming `label` and what the input is.
 *
 * @example
 * ```ts
 * classifyBundleStart(new Uint8Array(0), "x"); // throws "x: empty input, no archive"
 * classifyBundleStart(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]), "x"); // "zstd"
 * ```
 */
export function classifyBundleStart(head: Uint8Array, label: string): Compression {
  if (head.length === 0) throw new ArchiveError(`${label}: empty input, no archive`);
  const foreign = foreignFormat(head);
  if (foreign !== null) throw new ArchiveError(`${label} is ${foreign}; snapbundle reads .tar and .tar.zst`);
  return isZstdMagic(head) ? "zstd" : "none";
}

/**
 * Check that (decompressed) bytes start like a tar archive: a first header
 * block whose checksum is right, or an end-of-archive block. Returns the
 * header's dialect (`null` for a zero block). `compressed` only shapes the message.
 *
 * @example
 * ```ts
 * checkTarStart(new TextEncoder().encode("hello\n"), "notes.txt", "none");
 * // throws "notes.txt is not a tar archive (6 bytes, shorter than one 512-byte tar header); snapbundle reads .tar and .tar.zst"
 * ```
 */
export function checkTarStart(head: Uint8Array, label: string, compression: Compression): HeaderFormat | null {
  const where = compression === "zstd" ? `${label} is zstd-compressed, but what it holds` : label;
  const fail = (why: string): never => {
    throw new ArchiveError(`${where} is not a tar archive (${why}); snapbundle reads .tar and .tar.zst`);
  };
  if (head.length === 0) return fail("it is empty");
  if (head.length < TAR_BLOCK) return fail(`${head.length} bytes, shorter than one ${TAR_BLOCK}-byte tar header`);
  const block = head.subarray(0, TAR_BLOCK);
  if (isZeroBlock(block)) return null;
  if (compression === "none") {
    const foreign = foreignFormat(block);
    if (foreign !== null) fail(`it is ${foreign}`);
  }
  verifyChecksum(block, (rule) => fail(`its first 512 bytes are no tar header: ${rule}`));
  return headerFormat(block);
}

/** A bundle opened as a tar stream, and what its first bytes said. */
export interface OpenedBundle {
  /** The tar bytes (decompressed if the input was zstd). */
  readonly tar: ReadableStream<Uint8Array>;
  readonly compression: Compression;
  /** The dialect of the first tar header (`null`: the archive starts with an end-of-archive block). */
  readonly firstFormat: HeaderFormat | null;
}

/**
 * Sniff a raw bundle input, decompress it if it is zstd, and check that what
 * follows starts like a tar archive. Every refusal names `label` and what the
 * input is instead.
 *
 * @example
 * ```ts
 * const { tar, compression } = await openBundle(fileReadable(fs, path), path);
 * for await (const entry of readTar(tar, { label: path })) { … }
 * ```
 */
export async function openBundle(source: ReadableStream<Uint8Array>, label: string, options: ZstdReadOptions = {}): Promise<OpenedBundle> {
  const raw = await peekStream(source, TAR_BLOCK);
  let compression: Compression;
  try {
    compression = classifyBundleStart(raw.head, label);
  } catch (e) {
    await raw.stream.cancel(e).catch(() => {});
    throw e;
  }
  const tar = await peekStream(await decompressIfZstd(raw.stream, label, options), TAR_BLOCK);
  try {
    return { tar: tar.stream, compression, firstFormat: checkTarStart(tar.head, label, compression) };
  } catch (e) {
    await tar.stream.cancel(e).catch(() => {});
    throw e;
  }
}

/**
 * {@link openBundle} for callers that only want the tar bytes (the load's unpack step).
 *
 * @example
 * ```ts
 * const tar = await openBundleStream(source, "stdin");
 * ```
 */
export async function openBundleStream(source: ReadableStream<Uint8Array>, label: string, options: ZstdReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
  return (await openBundle(source, label, options)).tar;
}
