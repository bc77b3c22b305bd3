/**
 * The member paths of a microsandbox 0.6 bundle, the one place they are
 * spelled: `archive.json` (the inventory), `snapshots/<64hex>/snapshot.json`
 * (a descriptor), `files/<64hex>/<name>` (an upper, the payload) and
 * `images/<kind>/<file>` (image metadata and objects), and the member kind
 * upstream records for each, from where the grammar placed the member.
 *
 * @example
 * ```ts
 * descriptorPath("ab".repeat(32));           // "snapshots/abab…/snapshot.json"
 * memberKindOf({ role: "image", kind: "manifests" }); // "image-metadata"
 * ```
 * @module
 */

import { DESCRIPTOR_FILENAME } from "../descriptor.js";
import type { CacheKind } from "../layout.js";

/** The inventory's path. */
export const INVENTORY_PATH = "archive.json";
/** The top directories of the layout. */
export const MSB06_ROOTS: readonly string[] = ["snapshots", "files", "images"];

/** The kinds of inventoried members, as upstream names them. */
export const MEMBER_KINDS = ["snapshot-descriptor", "file-payload", "image-metadata", "image-object"] as const;
/** The kind of an inventoried member. */
export type MemberKind = (typeof MEMBER_KINDS)[number];

/**
 * The descriptor of the snapshot `hex` (64 hex digits).
 *
 * @example
 * ```ts
 * descriptorPath(digest.slice(7)); // "snapshots/<64hex>/snapshot.json"
 * ```
 */
export function descriptorPath(hex: string): string {
  return `snapshots/${hex}/${DESCRIPTOR_FILENAME}`;
}

/**
 * The upper `file` of the snapshot `hex`.
 *
 * @example
 * ```ts
 * payloadPath(hex, "upper.ext4"); // "files/<64hex>/upper.ext4"
 * ```
 */
export function payloadPath(hex: string, file: string): string {
  return `files/${hex}/${file}`;
}

/**
 * The image cache file `file` of `kind`.
 *
 * @example
 * ```ts
 * imagePath("manifests", "abc.json"); // "images/manifests/abc.json"
 * ```
 */
export function imagePath(kind: CacheKind, file: string): string {
  return `images/${kind}/${file}`;
}

/**
 * The member kind of a member the grammar placed (see `grammar.ts`,
 * `Msb06FilePlace`): descriptor, payload, or image metadata/object; null
 * for the inventory, which is no member of itself.
 *
 * @example
 * ```ts
 * memberKindOf({ role: "payload", kind: null }); // "file-payload"
 * ```
 */
export function memberKindOf(place: { readonly role: "inventory" | "descriptor" | "payload" | "image"; readonly kind: CacheKind | null }): MemberKind | null {
  if (place.role === "inventory") return null;
  if (place.role === "descriptor") return "snapshot-descriptor";
  if (place.role === "payload") return "file-payload";
  return place.kind === "manifests" ? "image-metadata" : "image-object";
}
