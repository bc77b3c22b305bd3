/**
 * A process probe for lease tests: one machine (host `h`, boot `b`, pid
 * namespace `pid:[1]`) on which exactly one process, `pid`, is alive.
 *
 * @example
 * ```ts
 * const lease = new Lease(fs, fakeProbe(4242, "77"));
 * ```
 * @module
 */
import type { ProcessProbe } from "../../src/lease.js";

/** A probe that knows one live process, `pid`, started at `start`. */
export function fakeProbe(pid = 4242, start = "77"): ProcessProbe {
  return { self: { host: "h", boot: "b", pidns: "pid:[1]" }, pid, isAlive: (p) => p === pid, startTime: (p) => (p === pid ? start : null) };
}
