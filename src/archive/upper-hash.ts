/**
 * Hashing an upper as its bytes stream out of a bundle, with the integrity
 * algorithm its manifest or descriptor records. `inspect`/`verify BUNDLE`
 * hash what streams past; a load hashes what it writes into staging, so the
 * staged upper is checked on the bytes as they were written and never read
 * back (see `unpack.ts` and `verifySnapshot`'s `hashed` option).
 *
 * @example
 * ```ts
 * const recorded = new RecordedIntegrity();
 * recorded.note(place, bytes, "a.tar"); // a manifest or descriptor as it comes (its grammar place and bytes)
 * const algorithms = algorithmsFor(recorded.recordedFor(place)); // later, for the upper at a place of the same snapshot
 * const digests = await hashSegments(entry, algorithms, async (seg) => write(seg));
 * ```
 * @module
 */

import { MERKLE_BLAKE3, readDescriptor } from "../descriptor.js";
import { parseManifest } from "../manifest.js";
import { MerkleStream } from "../merkle.js";
import { INTEGRITY_ALGORITHMS } from "../snapshot.js";
import { createUpperHasher } from "../sparse.js";
import type { TarEntry, TarSegment } from "../tar/mod.js";
import type { FilePlace } from "./grammar.js";

/** One integrity algorithm over an upper's logical bytes, fed as they stream past. */
export interface UpperHasher {
  update(data: Uint8Array): void | Promise<void>;
  zeros(length: number): void | Promise<void>;
  finish(): Promise<string>;
}

const ZEROS = new Uint8Array(1 << 20);

/** A hasher of `algorithm` (one of {@link INTEGRITY_ALGORITHMS}) over an upper of `size` logical bytes. */
export async function upperHasher(algorithm: string, size: number): Promise<UpperHasher> {
  if (algorithm === MERKLE_BLAKE3) return new MerkleStream(size);
  const h = await createUpperHasher(algorithm, size);
  return {
    update: (data) => h.update(data),
    // SHA-256 has no shortcut for zeros: the logical bytes are hashed, holes included
    zeros: (length) => {
      for (let left = length; left > 0; left -= ZEROS.length) h.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
    },
    finish: async () => `sha256:${h.digestHex()}`,
  };
}

/** The integrity a place records: an algorithm, none (`null`), or not known yet (`undefined`). */
type Recorded = { readonly algorithm: string } | null | undefined;

/**
 * What the manifests and descriptors seen so far record, by snapshot: the
 * algorithm to hash the upper that follows with.
 */
export class RecordedIntegrity {
  readonly #byKey = new Map<string, { readonly algorithm: string } | null>();

  /**
   * A small document as it comes: a `manifest.json` (the snapshot area) or a
   * 0.6 `snapshot.json` descriptor; anything else is ignored. The grammar has
   * parsed and checked it already; a descriptor that fails records nothing
   * (its load fails anyway).
   */
  note(place: FilePlace, bytes: Uint8Array, label: string): void {
    if (place.area === "msb06" && place.role === "descriptor") {
      const d = readDescriptor(bytes).descriptor;
      this.#byKey.set(`06:${place.hex}`, d?.state.kind === "file" ? d.state.upper.integrity : null);
    } else if (place.area === "snapshot") {
      this.#byKey.set(`m:${place.prefix}`, parseManifest(bytes, `${label}: ${place.prefix}/${place.file}`).upper.integrity);
    }
  }

  /** What the upper at `place` records, if its manifest or descriptor came before it. */
  recordedFor(place: FilePlace): Recorded {
    const key = place.area === "msb06" ? `06:${place.hex}` : place.area === "snapshot" ? `m:${place.prefix}` : null;
    return key !== null && this.#byKey.has(key) ? this.#byKey.get(key) : undefined;
  }
}

/**
 * The algorithms to hash an upper with: the one recorded (none when null or
 * unknown to verify), or — the upper came before its manifest or descriptor —
 * `unknown` (inspect hashes with every algorithm, a load with none and reads
 * the staged upper back instead).
 */
export function algorithmsFor(recorded: Recorded, unknown: readonly string[] = INTEGRITY_ALGORITHMS): readonly string[] {
  if (recorded === undefined) return unknown;
  return recorded !== null && INTEGRITY_ALGORITHMS.includes(recorded.algorithm) ? [recorded.algorithm] : [];
}

/**
 * Read an entry's segments, handing each to `each` (e.g. to write it) and
 * hashing its logical bytes (holes as zeros) with each algorithm asked for.
 * Resolves the digests by algorithm.
 */
export async function hashSegments(entry: TarEntry, algorithms: readonly string[], each?: (seg: TarSegment) => Promise<void>): Promise<Map<string, string>> {
  const hashers = await Promise.all(algorithms.map((a) => upperHasher(a, entry.size)));
  try {
    let at = 0;
    for await (const seg of entry.segments()) {
      if (each) await each(seg);
      for (const h of hashers) {
        if (seg.offset > at) await h.zeros(seg.offset - at);
        await h.update(seg.data);
      }
      at = seg.offset + seg.data.length;
    }
    for (const h of hashers) if (entry.size > at) await h.zeros(entry.size - at);
    const digests = new Map<string, string>();
    for (const [i, a] of algorithms.entries()) digests.set(a, await hashers[i]!.finish());
    return digests;
  } catch (e) {
    for (const h of hashers) await h.finish().catch(() => {}); // release the hashers
    throw e;
  }
}
