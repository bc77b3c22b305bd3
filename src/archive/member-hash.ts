/**
 * `msb-archive-member-blake3-v1`: the per-member BLAKE3 hash microsandbox
 * 0.6.9+ records in `archive.json` (docs/format.md §9), over
 *
 * ```
 * "msb-archive-member-blake3-v1\0" ‖ u64le len(kind) ‖ kind ‖ u64le len(path) ‖ path
 * ‖ u64le encoded_size ‖ u64le apparent_size ‖ u64le n ‖ n × (u64le offset ‖ u64le length)
 * ‖ the stored bytes, without padding
 * ```
 *
 * where the `n` ranges are the sparse descriptors as written (the trailing
 * `(realsize, 0)` terminator included; a regular entry has none). Computed
 * while the bytes stream, on save and on load.
 *
 * @example
 * ```ts
 * const h = await MemberHasher.create({ kind: "file-payload", path, encodedSize, apparentSize, ranges });
 * for (const chunk of stored) h.update(chunk);
 * h.digest(); // "blake3:…"
 * ```
 * @module
 */

import { type Blake3, createBlake3 } from "../../wasm/mod.js";
import type { SparseSegment } from "../tar/mod.js";
import type { TarEntry, TarSegment } from "../tar/reader.js";

/** The algorithm name, also the one `requires` entry an inventory may carry. */
export const MEMBER_BLAKE3 = "msb-archive-member-blake3-v1";

/** What a member hash binds besides the stored bytes. */
export interface MemberFacts {
  readonly kind: string;
  readonly path: string;
  /** Stored bytes (the tar header's size field). */
  readonly encodedSize: number;
  /** Logical size (`realsize` of a sparse entry). */
  readonly apparentSize: number;
  /** Sparse descriptors as written, terminator included; `[]` for a regular entry. */
  readonly ranges: readonly (readonly [number, number])[];
}

const enc = new TextEncoder();

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/**
 * The descriptors an old-GNU sparse entry carries for a data map (as our
 * writer and upstream's write it): the map, then `(realsize, 0)` when the
 * file ends in a hole. Our tar reader reports the map without zero-length
 * descriptors; this puts the terminator back.
 *
 * @example
 * ```ts
 * sparseDescriptors([{ offset: 0, length: 512 }], 4096); // [[0, 512], [4096, 0]]
 * ```
 */
export function sparseDescriptors(map: readonly SparseSegment[], realSize: number): [number, number][] {
  const out: [number, number][] = map.filter((s) => s.length > 0).map((s) => [s.offset, s.length]);
  const last = out[out.length - 1];
  if (realSize > (last ? last[0] + last[1] : 0)) out.push([realSize, 0]);
  return out;
}

/** A streaming member hash: the prefix is hashed on creation, then the stored bytes. */
export class MemberHasher {
  readonly #h: Blake3;
  private constructor(h: Blake3) {
    this.#h = h;
  }
  /** Start a member hash over `facts`. */
  static async create(facts: MemberFacts): Promise<MemberHasher> {
    const h = await createBlake3();
    const kind = enc.encode(facts.kind);
    const path = enc.encode(facts.path);
    for (const part of [enc.encode(`${MEMBER_BLAKE3}\0`), u64(kind.length), kind, u64(path.length), path, u64(facts.encodedSize), u64(facts.apparentSize), u64(facts.ranges.length)]) h.update(part);
    for (const [o, l] of facts.ranges) {
      h.update(u64(o));
      h.update(u64(l));
    }
    return new MemberHasher(h);
  }
  /** Hash more stored bytes. */
  update(data: Uint8Array): void {
    this.#h.update(data);
  }
  /** `blake3:<hex>`; ends the hasher. */
  digest(): string {
    return `blake3:${this.#h.digestHex()}`;
  }
}

/**
 * Hash the chunks of `data` as they pass (the consumer may reuse a chunk's
 * buffer once it asks for the next: each is hashed before it is yielded).
 *
 * @example
 * ```ts
 * await tar.addFile(path, size, hashedChunks(readRanges(fs, path, ranges), hasher));
 * ```
 */
export async function* hashedChunks(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, ...hashers: { update(d: Uint8Array): void }[]): AsyncGenerator<Uint8Array> {
  for await (const chunk of data) {
    for (const h of hashers) h.update(chunk);
    yield chunk;
  }
}

/**
 * A view of a tar entry whose `segments()` feeds every stored byte to
 * `hasher` as it passes; `drain()` reads (and hashes) whatever the consumer
 * left unread, so the hash always covers the whole member.
 *
 * @example
 * ```ts
 * const h = hashingEntry(entry, hasher);
 * await sink.file(place, h.entry);
 * await h.drain();
 * ```
 */
export function hashingEntry(entry: TarEntry, ...hashers: { update(d: Uint8Array): void }[]): { entry: TarEntry; drain(): Promise<void> } {
  let gen: AsyncGenerator<TarSegment, void, undefined> | null = null;
  const source = async function* (): AsyncGenerator<TarSegment, void, undefined> {
    for await (const seg of entry.segments()) {
      for (const h of hashers) h.update(seg.data);
      yield seg;
    }
  };
  const view: TarEntry = Object.assign(Object.create(entry) as TarEntry, {
    segments: () => {
      if (gen !== null) throw new Error("hashingEntry: segments() may be called once");
      gen = source();
      return gen;
    },
  });
  return {
    entry: view,
    async drain() {
      if (gen === null) gen = source();
      for (;;) {
        const r = await gen.next();
        if (r.done) break;
      }
    },
  };
}
