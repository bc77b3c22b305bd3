/** Assertions that a SnapbundleError of a given class names a rule: its class, its code and its message. */
import assert from "node:assert/strict";
import { FsError, SnapbundleError } from "../../src/errors.js";

/** A matcher for `assert.throws`/`rejects`: an instance of `cls` with `code` whose message matches `pattern`. */
export function errorRule<T extends SnapbundleError>(cls: abstract new (...args: never[]) => T, code: string, pattern: RegExp): (e: unknown) => true {
  return (e) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  };
}

/** A matcher for an {@link FsError} (code "fs") with `errno` from the operation `op`. */
export function fsErrorRule(errno: string, op: string): (e: unknown) => true {
  return (e) => {
    assert.ok(e instanceof FsError, `expected FsError, got ${String(e)}`);
    assert.equal(e.code, "fs");
    assert.equal(e.errno, errno);
    assert.equal(e.op, op);
    return true;
  };
}
