/**
 * Minimally valid EROFS images for image-cache fixtures: a superblock
 * (4096-byte blocks, no checksum feature), a root directory inode (compact,
 * inline data) holding `.` and `..`, and `seed` noise in the unused bytes
 * (the boot area and every block after the first), so two images differ.
 * `fsck.erofs` accepts them (test/erofs.test.ts checks it); real images made
 * by `mkfs.erofs` are there too. And {@link imageBundle}: a `--with-image`
 * bundle of either layout built by hand, every hash computed over the bytes given.
 */
import { type CacheEntry, cacheEntries, fileEntry, type ImageFixture, sha256Hex, snapEntries, snapFixture, tarOf } from "./archive-bundle.js";
import { noise } from "./homes.js";
import { craftBundle06, crafted06, descriptorText, fileState, integrityText, referenceMemberHash } from "./msb06-reference.js";

export function minimalErofs(size = 4096, seed = 1): Uint8Array {
  if (size <= 0 || size % 4096 !== 0) throw new Error(`minimalErofs: ${size} is not a multiple of 4096`);
  const img = new Uint8Array(size);
  img.set(noise(1024, seed), 0);
  if (size > 4096) img.set(noise(size - 4096, seed + 1), 4096);
  const v = new DataView(img.buffer);
  const sb = 1024;
  const rootNid = 36; // right after the superblock: byte 1152
  v.setUint32(sb + 0, 0xe0f5e1e2, true); // magic
  v.setUint8(sb + 12, 12); // blkszbits: 4096
  v.setUint16(sb + 14, rootNid, true);
  v.setBigUint64(sb + 16, 1n, true); // inodes
  v.setUint32(sb + 36, size / 4096, true); // blocks
  v.setUint32(sb + 40, 0, true); // meta_blkaddr
  const ino = rootNid * 32;
  const names = [".", ".."];
  const dirSize = 12 * names.length + names.join("").length;
  v.setUint16(ino + 0, 2 << 1, true); // compact inode, FLAT_INLINE
  v.setUint16(ino + 4, 0o040755, true);
  v.setUint16(ino + 6, 2, true); // nlink
  v.setUint32(ino + 8, dirSize, true);
  const data = ino + 32;
  let nameoff = 12 * names.length;
  names.forEach((n, i) => {
    v.setBigUint64(data + 12 * i, BigInt(rootNid), true);
    v.setUint16(data + 12 * i + 8, nameoff, true);
    v.setUint8(data + 12 * i + 10, 2); // EROFS_FT_DIR
    img.set(new TextEncoder().encode(n), data + nameoff);
    nameoff += n.length;
  });
  return img;
}

/** A `--with-image` bundle of one layout carrying `files`, every hash recomputed. */
export async function imageBundle(layout: "manifest" | "snapshot", image: ImageFixture, files: readonly CacheEntry[]): Promise<Uint8Array> {
  const imageRef = { ref: image.ref, manifest_digest: image.manifest_digest };
  if (layout === "manifest") return tarOf(...snapEntries(snapFixture({ image: imageRef })), ...cacheEntries(files));
  const payload = noise(4096, 5);
  const integrity = await integrityText("sha256", payload);
  const t = descriptorText({ state: fileState(payload.length, integrity), image: imageRef });
  const snap = { ...(await crafted06(payload, "sha256")), text: t, digest: `sha256:${sha256Hex(t)}` };
  const images = files.map((f) => ({ path: `images/${f.archivePath.slice("cache/".length)}`, data: f.bytes }));
  const entries = await Promise.all(
    images.map(async (m) => {
      const kind = m.path.startsWith("images/manifests/") ? "image-metadata" : "image-object";
      const member = await referenceMemberHash({ kind, path: m.path, encodedSize: m.data.length, apparentSize: m.data.length, ranges: [], stored: m.data });
      return { path: m.path, owner_snapshot: null, kind, included: true, encoded_size: m.data.length, apparent_size: m.data.length, integrity: { algorithm: "sha256", digest: `sha256:${sha256Hex(m.data)}` }, transport_integrity: { algorithm: "msb-archive-member-blake3-v1", digest: member } };
    }),
  );
  const { members } = await craftBundle06([snap], {
    memberHashes: true,
    mutate: (inv, ms) => {
      inv.with_image = true;
      inv.entries.push(...entries);
      inv.entries.sort((a: { path: string }, b: { path: string }) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
      ms.push(...images);
    },
  });
  return tarOf(...members.map((m) => fileEntry(m.path, m.data)));
}

