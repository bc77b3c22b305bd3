/** Assertions that an ArchiveError (code "archive") names a rule, shared by the tar rule suites. */
import assert from "node:assert/strict";
import { ArchiveError } from "../../src/errors.js";
import { errorRule } from "./error-rules.js";

/** A matcher for `assert.throws`/`rejects`: an ArchiveError with code "archive" whose message matches `pattern`. */
export function archiveRule(pattern: RegExp): (e: unknown) => true {
  return errorRule(ArchiveError, "archive", pattern);
}

/** `fn` throws an ArchiveError (code "archive") whose message matches `pattern`. */
export function throwsRule(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, archiveRule(pattern));
}

/** `p` rejects with an ArchiveError (code "archive") whose message matches `pattern`. */
export async function rejectsRule(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, archiveRule(pattern));
}
