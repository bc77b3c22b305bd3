/**
 * Whether a command-line argument names a registry reference rather than a
 * file or a snapshot: its first component names a host (holds a `.` or `:`,
 * or is `localhost`), a `/` follows, it matches the OCI reference grammar,
 * and no file or directory of that name exists. Kept apart from `oci.ts` so
 * that `inspect` and `verify` of a local snapshot or bundle do not load the
 * registry client (and `node:https`) just to ask.
 *
 * @example
 * ```ts
 * isRegistryArgument(ctx, "localhost:5000/snaps/dev:v1"); // true, unless such a path exists
 * ```
 * @module
 */

import { existsSync } from "node:fs";
import { looksLikeRegistryReference } from "../oci/reference.js";
import type { CommandContext } from "./context.js";

/** True when `arg` is a registry reference, not a path or a name. An existing file or directory of that name always wins. */
export function isRegistryArgument(ctx: CommandContext, arg: string): boolean {
  if (!looksLikeRegistryReference(arg)) return false;
  try {
    return !existsSync(ctx.store.absolutePath(arg));
  } catch {
    return true;
  }
}
