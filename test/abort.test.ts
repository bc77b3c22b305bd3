/** Rules of cancellation (src/abort.ts): how an AbortSignal stops work, streams and progress, always as OperationAborted. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { abortableReadable, abortableWritable, abortError, abortingProgress, raceAbort, throwIfAborted } from "../src/abort.js";
import { OperationAborted } from "../src/errors.js";

const T = { timeout: 60_000 };

describe("abort", () => {
  test("rule: an abort is an OperationAborted (code aborted) whose message carries a string reason; one already typed is kept", () => {
    const ac = new AbortController();
    throwIfAborted(ac.signal);
    throwIfAborted(undefined);
    ac.abort("SIGINT");
    assert.throws(() => throwIfAborted(ac.signal), (e: unknown) => e instanceof OperationAborted && e.code === "aborted" && e.message === "the operation was aborted (SIGINT)" && e.reason === "SIGINT");
    const typed = new OperationAborted("stopped by the user");
    const ac2 = new AbortController();
    ac2.abort(typed);
    assert.equal(abortError(ac2.signal), typed);
  });

  test("rule: raceAbort rejects at the abort while the work is still pending, and passes the work's own outcome otherwise", T, async () => {
    const ac = new AbortController();
    const never = new Promise<never>(() => {});
    const raced = raceAbort(never, ac.signal);
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(raced, OperationAborted);
    await assert.rejects(raceAbort(Promise.resolve(1), ac.signal), OperationAborted, "already aborted: rejects at once");
    assert.equal(await raceAbort(Promise.resolve(7), new AbortController().signal), 7);
    await assert.rejects(raceAbort(Promise.reject(new Error("own")), new AbortController().signal), /own/);
  });

  test("rule: progress after an abort throws, so a loop that reports progress stops within one chunk", () => {
    const seen: number[] = [];
    const ac = new AbortController();
    const progress = abortingProgress(ac.signal, (n: number) => seen.push(n))!;
    progress(1);
    ac.abort();
    assert.throws(() => progress(2), OperationAborted);
    assert.deepEqual(seen, [1]);
    const plain = (n: number) => void n;
    assert.equal(abortingProgress(undefined, plain), plain, "no signal: the callback itself");
  });

  test("rule: an aborted readable stops a read that is waiting and cancels its source", T, async () => {
    let cancelled: unknown = null;
    const source = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}), cancel: (r) => void (cancelled = r) });
    const ac = new AbortController();
    const reader = abortableReadable(source, ac.signal).getReader();
    const read = reader.read();
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(read, OperationAborted);
    assert.ok(cancelled instanceof OperationAborted, "the source was cancelled with the abort");
  });

  test("rule: a write blocked on a slow sink fails at the abort with OperationAborted, and the sink is aborted with it", T, async () => {
    let aborted: unknown = null;
    let finishWrite = () => {};
    const ac = new AbortController();
    const sink = new WritableStream<Uint8Array>({ write: () => new Promise<void>((r) => (finishWrite = r)), abort: (r) => void (aborted = r) });
    const writer = abortableWritable(sink, ac.signal).getWriter();
    const blocked = writer.write(new Uint8Array([1]));
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(blocked, OperationAborted);
    finishWrite(); // a stream aborts its sink once the write in flight settles
    await new Promise((r) => setTimeout(r, 10));
    assert.ok(aborted instanceof OperationAborted, "the sink was aborted with the OperationAborted");
  });
});
