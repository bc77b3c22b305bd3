/**
 * The one error type of `wasm/`: a {@link WasmError} with a {@link WasmErrorCode}
 * and the figures behind it, so that `wasm/` imports nothing of the core. The
 * core maps each code to its own error at the boundary (`src/zstd.ts`), adding
 * what only it knows: which archive, and which option would change the outcome.
 *
 * @example
 * ```ts
 * try { await stream.pipeTo(sink); }
 * catch (e) { if (e instanceof WasmError && e.code === "checksum") console.log(e.detail.frameStart); }
 * ```
 * @module
 */

/**
 * Why `wasm/` failed: `unavailable` (no reader of its `.wasm` files),
 * `invalid-argument` (a bad option or chunk), `out-of-memory`, `worker`
 * (the compression Worker failed), `compression`, and for decoding:
 * `window-too-large`, `dictionary`, `checksum`, `corrupt`, `truncated`, `empty`.
 */
export type WasmErrorCode =
  | "unavailable"
  | "invalid-argument"
  | "out-of-memory"
  | "worker"
  | "compression"
  | "window-too-large"
  | "dictionary"
  | "checksum"
  | "corrupt"
  | "truncated"
  | "empty";

/** The figures behind a {@link WasmError} (byte offsets and sizes), where it has them. */
export interface WasmErrorDetail {
  /** Offset of the frame at fault in the compressed stream. */
  readonly frameStart?: number;
  /** Where that frame ends (exclusive), where it could be measured. */
  readonly frameEnd?: number;
  /** Compressed bytes the decoder had consumed. */
  readonly consumed?: number;
  /** The window the frame needs (bytes), when the frame states it. */
  readonly window?: number;
  /** The largest window allowed (bytes). */
  readonly maxWindow?: number;
}

/**
 * A failure of `wasm/`: the message says what happened in zstd's or the
 * Worker's terms, `code` what kind it was, `detail` the figures.
 *
 * @example
 * ```ts
 * throw new WasmError("truncated", "the input ended inside a frame", { frameStart: 0, consumed: 17 });
 * ```
 */
export class WasmError extends Error {
  readonly code: WasmErrorCode;
  readonly detail: WasmErrorDetail;

  constructor(code: WasmErrorCode, message: string, detail: WasmErrorDetail = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WasmError";
    this.code = code;
    this.detail = detail;
  }
}
