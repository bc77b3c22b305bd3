/**
 * Progress bars on stderr (cli-progress): bytes done, total and rate. Drawn
 * only when stderr is a terminal and `--json` is off; otherwise every method
 * is a no-op, so scripts and pipes never see progress output.
 *
 * @example
 * ```ts
 * import { startProgress } from "./progress.js";
 * const bar = startProgress(process.stderr.isTTY === true, "verify", 1 << 30);
 * bar.update(512 << 20);  // half way
 * bar.stop();
 * ```
 * @module
 */

import cliProgress from "cli-progress";
import { humanBytes } from "./format.js";

/** A running progress display. */
export interface Progress {
  /** Report `bytes` done (and optionally a new total and phase label). */
  update(bytes: number, total?: number | null, label?: string): void;
  /** Remove the bar. Safe to call twice. */
  stop(): void;
}

const NO_PROGRESS: Progress = { update() {}, stop() {} };

/** Bars being drawn, so that a signal handler can remove them. */
const active = new Set<Progress>();

/**
 * Stop every bar now and show the cursor again (a bar hides it): for a
 * signal handler, before the command has unwound.
 *
 * @example
 * ```ts
 * process.on("SIGINT", () => stopAllProgress());
 * ```
 */
export function stopAllProgress(): void {
  const had = active.size > 0;
  for (const bar of [...active]) bar.stop();
  if (had && process.stderr.isTTY) process.stderr.write("\x1b[?25h");
}
const BAR_WIDTH = 30;

/**
 * Start a bar labelled `label` for `total` bytes (`null`: unknown, e.g. a
 * stream on stdin — then only bytes and rate are shown). Returns a no-op
 * when `enabled` is false.
 *
 * @example
 * ```ts
 * const bar = startProgress(process.stderr.isTTY === true, "load", null); // unknown total
 * bar.update(1 << 20);
 * bar.stop();
 * ```
 */
export function startProgress(enabled: boolean, label: string, total: number | null): Progress {
  if (!enabled) return NO_PROGRESS;
  let currentLabel = label;
  let currentTotal = total;
  let startedAt = Date.now();
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    stopOnComplete: false,
    fps: 8,
    format: (_options, params) => {
      const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
      const rate = `${humanBytes(Math.round(params.value / seconds))}/s`;
      if (currentTotal === null || currentTotal <= 0) return `${currentLabel} ${humanBytes(params.value)} | ${rate}`;
      const fraction = Math.min(Math.max(params.value / currentTotal, 0), 1);
      const filled = Math.round(fraction * BAR_WIDTH);
      const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
      return `${currentLabel} [${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}] ${pct} | ${humanBytes(params.value)} / ${humanBytes(currentTotal)} | ${rate}`;
    },
  });
  bar.start(total ?? 0, 0);
  let stopped = false;
  const progress: Progress = {
    update(bytes, newTotal, newLabel) {
      if (stopped) return;
      if (newLabel !== undefined && newLabel !== currentLabel) {
        currentLabel = newLabel;
        startedAt = Date.now(); // a new phase: its own rate
      }
      if (newTotal !== undefined && newTotal !== currentTotal) {
        currentTotal = newTotal;
        bar.setTotal(newTotal ?? 0);
      }
      bar.update(bytes);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      active.delete(progress);
      bar.stop();
    },
  };
  active.add(progress);
  return progress;
}
