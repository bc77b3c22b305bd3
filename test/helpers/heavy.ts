/**
 * Opt-in heavy tests: pass as a test's `skip` option so a normal run
 * reports them as skipped (with how to run them) instead of leaving them out.
 *
 * @example
 * ```ts
 * test("4 GiB round trip", { skip: HEAVY }, async () => { ... });
 * ```
 */
export const HEAVY: false | string = process.env.SNAPBUNDLE_HEAVY === "1" ? false : "set SNAPBUNDLE_HEAVY=1";
