/**
 * Checks of user-given identifiers: a snapshot or image digest in the form
 * microsandbox 0.6 requires (`sha256:` + 64 lowercase hex digits), and an
 * image reference against the OCI reference grammar of
 * `distribution/reference` (`[domain[:port]/]path[:tag][@digest]`, lowercase
 * repository, at most 255 characters of name). Each check returns the reason
 * a value is refused, or `null` when it is accepted.
 *
 * @example
 * ```ts
 * import { digestProblem, imageReferenceProblem } from "snapbundle";
 * digestProblem("sha256:" + "a".repeat(64)); // null
 * digestProblem("sha256:XYZ");               // "holds characters that are not hex digits; expected sha256: …"
 * imageReferenceProblem("python:3.12");      // null
 * imageReferenceProblem("Bad Image!");       // "is not a valid OCI image reference …"
 * ```
 * @module
 */

const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Why `value` is not a `sha256:` digest of 64 lowercase hex digits, or null.
 *
 * @example
 * ```ts
 * digestProblem("sha256:" + "A".repeat(64)); // "has upper-case hex digits; expected sha256: …"
 * ```
 */
export function digestProblem(value: string): string | null {
  if (SHA256_DIGEST.test(value)) return null;
  const colon = value.indexOf(":");
  const expected = "expected sha256: followed by exactly 64 lowercase hex digits";
  if (colon < 0) return `is not a digest (no algorithm prefix); ${expected}`;
  const algo = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (algo !== "sha256") return `uses algorithm ${JSON.stringify(algo)}; ${expected}`;
  if (!/^[0-9a-fA-F]*$/.test(hex)) return `holds characters that are not hex digits; ${expected}`;
  if (/[A-F]/.test(hex)) return `has upper-case hex digits; ${expected}`;
  return `has ${hex.length} hex digits; ${expected}`;
}

/**
 * True when `value` is `sha256:` followed by exactly 64 lowercase hex digits.
 *
 * @example
 * ```ts
 * isSha256Digest("sha256:" + "0".repeat(64)); // true
 * ```
 */
export function isSha256Digest(value: string): boolean {
  return SHA256_DIGEST.test(value);
}

// The grammar of distribution/reference (reference.go), written out:
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [domain "/"] path-component ["/" path-component]*
//   domain     := host [":" port]          host := domain-name | "[" IPv6 "]"
//   path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | "__" | "-"+
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex{32,}   algorithm := [A-Za-z][A-Za-z0-9]* ([-_+.][A-Za-z][A-Za-z0-9]*)*
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^(${NAME})(?::${TAG})?(?:@${DIGEST})?$`);
const NAME_MAX = 255;

/**
 * Why `ref` is not a valid OCI image reference, or null.
 *
 * @example
 * ```ts
 * imageReferenceProblem("ghcr.io/org/app:v1@sha256:" + "a".repeat(64)); // null
 * imageReferenceProblem("Python:3.12"); // "… repository name must be lowercase"
 * ```
 */
export function imageReferenceProblem(ref: string): string | null {
  const rule = "is not a valid OCI image reference ([registry[:port]/]repository[:tag][@digest])";
  if (ref === "") return "must not be empty";
  const m = REFERENCE.exec(ref);
  if (m === null) {
    // distribution/reference's own diagnosis of the commonest mistake
    if (REFERENCE.test(ref.toLowerCase())) return `${rule}: the repository name must be lowercase`;
    return rule;
  }
  if (m[1]!.length > NAME_MAX) return `${rule}: the name is longer than ${NAME_MAX} characters`;
  return null;
}
