/**
 * OCI references of a registry artifact: `host[:port]/repository[:tag|@sha256:…]`.
 * The registry part is required (no implicit Docker Hub: a snapshot goes where
 * it is told); `docker.io` is reached at `registry-1.docker.io`, as docker does.
 * The grammar is distribution/reference's ({@link imageReferenceProblem}).
 *
 * @example
 * ```ts
 * parseRegistryReference("localhost:5000/snaps/py:base");
 * // { registry: "localhost:5000", repository: "snaps/py", tag: "base", digest: null, … }
 * looksLikeRegistryReference("./base.tar.zst"); // false
 * ```
 * @module
 */

import { InvalidArgument } from "../errors.js";
import { imageReferenceProblem, isSha256Digest } from "../reference.js";

/** A parsed reference. Exactly one of `tag` and `digest` is set (`latest` when neither was written). */
export interface RegistryReference {
  /** `host[:port]` as written (lowercased host). */
  readonly registry: string;
  /** The host to connect to (`docker.io` becomes `registry-1.docker.io`). */
  readonly endpoint: string;
  readonly repository: string;
  readonly tag: string | null;
  readonly digest: string | null;
  /** The reference as given, for messages. */
  readonly text: string;
}

/** The manifest reference part: the digest if given, else the tag. */
export function manifestReference(ref: RegistryReference): string {
  return ref.digest ?? ref.tag!;
}

/**
 * True when the first path component names a registry host: it holds a `.`
 * or a `:`, or is `localhost`, and a `/` follows it (the rule docker and
 * distribution/reference use to tell a domain from a repository).
 */
function hasRegistryHost(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash <= 0) return false;
  const host = text.slice(0, slash);
  return host === "localhost" || host.includes(".") || host.includes(":");
}

/**
 * True when `text` has the form of a registry reference: a registry host
 * first (see {@link parseRegistryReference}) and the OCI reference grammar.
 * (The CLI also requires that no file of that name exists.)
 *
 * @example
 * ```ts
 * looksLikeRegistryReference("ghcr.io/org/snaps:v1"); // true
 * looksLikeRegistryReference("base"); // false: a snapshot name
 * ```
 */
export function looksLikeRegistryReference(text: string): boolean {
  return hasRegistryHost(text) && imageReferenceProblem(text) === null;
}

/**
 * Parse `host[:port]/repository[:tag][@sha256:…]`. Throws {@link InvalidArgument}
 * naming the rule broken.
 */
export function parseRegistryReference(text: string): RegistryReference {
  const rule = "expected host[:port]/repository[:tag|@sha256:…], e.g. localhost:5000/snaps:base";
  if (!hasRegistryHost(text)) throw new InvalidArgument(`${JSON.stringify(text)} is not a registry reference: it names no registry host (a first component with a "." or ":", or localhost); ${rule}`);
  const problem = imageReferenceProblem(text);
  if (problem !== null) throw new InvalidArgument(`${JSON.stringify(text)} ${problem}; ${rule}`);
  const slash = text.indexOf("/");
  const registry = text.slice(0, slash).toLowerCase();
  let rest = text.slice(slash + 1);
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isSha256Digest(digest)) throw new InvalidArgument(`${JSON.stringify(text)}: only sha256 digests (64 lowercase hex digits) are supported`);
  }
  const colon = rest.lastIndexOf(":");
  let tag: string | null = null;
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (tag === null && digest === null) tag = "latest";
  const endpoint = registry === "docker.io" || registry === "index.docker.io" ? "registry-1.docker.io" : registry;
  return { registry, endpoint, repository: rest, tag: digest === null ? tag : null, digest, text };
}
