/**
 * Progress on stderr: one line, redrawn in place, that names its step and
 * phase (`[1/3] unpacking`, `[2/3] verifying`, `[3/3] installing`, …) and
 * shows bytes done, total, percentage, rate and the time left (ETA) —
 * whatever of it fits the terminal's width. A phase that counts no bytes
 * (installing, waiting for input) shows only its name. Under `TERM=dumb` no
 * escape code is written: a plain line at each new phase and every
 * {@link PLAIN_EVERY_MS} ms instead. Drawn only
 * when asked (stderr is a terminal, no `--json`, `--quiet` or
 * `--no-progress`); otherwise every method is a no-op, so scripts and pipes
 * never see progress output.
 *
 * @example
 * ```ts
 * import { startProgress } from "./progress.js";
 * const bar = startProgress(true, "verifying", 1 << 30);
 * bar.update(512 << 20);          // half way
 * bar.update(0, 4096, "installing"); // a new phase, its own total
 * bar.stop();
 * ```
 * @module
 */

import { humanBytes } from "./format.js";

/** A running progress display. */
export interface Progress {
  /** Report `bytes` done (and optionally a new total and phase). A new phase restarts the rate. */
  update(bytes: number, total?: number | null, phase?: string): void;
  /** Remove the line. Safe to call twice. */
  stop(): void;
}

/** Where a progress line is drawn. */
export interface ProgressTarget {
  write(text: string): void;
  /** The terminal's width in columns (read at each redraw: the window may be resized). */
  columns(): number;
  /** A terminal that understands no escape codes (`TERM=dumb`): plain lines, now and then. */
  readonly plain?: boolean;
}

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** The command's phases in order: a phase among them is shown as `[i/n] phase`. */
  readonly steps?: readonly string[];
}

/** How often a plain (`TERM=dumb`) progress line is printed while a phase runs. */
export const PLAIN_EVERY_MS = 10_000;

const NO_PROGRESS: Progress = { update() {}, stop() {} };

/** Lines being drawn, so that a signal handler can remove them. */
const active = new Set<Progress>();

/**
 * Stop every progress line now (each clears its line and shows the cursor
 * again): for a signal handler, before the command has unwound.
 *
 * @example
 * ```ts
 * process.on("SIGINT", () => stopAllProgress());
 * ```
 */
export function stopAllProgress(): void {
  for (const bar of [...active]) bar.stop();
}
const REDRAW_MS = 125;
const MAX_BAR = 30;
const MIN_BAR = 10;

/**
 * The line for one state, at most `columns - 1` characters wide (the last
 * column is left free, so a terminal never wraps it). Parts are dropped from
 * the right end as the width shrinks: rate, then sizes, then the bar.
 *
 * @example
 * ```ts
 * progressLine("verifying", 50, 100, 1000, 80); // "verifying [███…░░░]  50% | 50 B / 100 B | 50 B/s"
 * progressLine("unpacking", 5 << 20, null, 1000, 40); // "unpacking 5.0 MiB | 5.0 MiB/s"
 * ```
 */
export function progressLine(phase: string, bytes: number, total: number | null, elapsedMs: number, columns: number): string {
  const width = Math.max(columns - 1, 1);
  const perSecond = bytes / Math.max(elapsedMs / 1000, 0.001);
  const rate = `${humanBytes(Math.round(perSecond))}/s`;
  const candidates: string[] = [];
  if ((total === null || total <= 0) && bytes === 0) {
    candidates.push(phase); // nothing counted (installing, waiting for input): "0 B | 0 B/s" would say nothing true
  } else if (total === null || total <= 0) {
    candidates.push(`${phase} ${humanBytes(bytes)} | ${rate}`, `${phase} ${humanBytes(bytes)}`, phase);
  } else {
    const fraction = Math.min(Math.max(bytes / total, 0), 1);
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
    const sizes = `${humanBytes(bytes)} / ${humanBytes(total)}`;
    const bar = (n: number) => {
      const filled = Math.round(fraction * n);
      return `[${"█".repeat(filled)}${"░".repeat(n - filled)}]`;
    };
    const eta = bytes > 0 && bytes < total && elapsedMs >= 1000 ? ` | ETA ${clock((total - bytes) / perSecond)}` : "";
    const tails = [...(eta ? [` | ${sizes} | ${rate}${eta}`] : []), ` | ${sizes} | ${rate}`, ` | ${sizes}`, ""];
    for (const tail of tails) {
      const room = width - phase.length - 1 - 2 - pct.length - 1 - tail.length;
      if (room >= MIN_BAR) candidates.push(`${phase} ${bar(Math.min(room, MAX_BAR + 2) - 2)} ${pct}${tail}`);
    }
    candidates.push(`${phase} ${pct.trim()} | ${sizes}`, `${phase} ${pct.trim()}`);
  }
  const fit = candidates.find((c) => c.length <= width) ?? candidates[candidates.length - 1]!;
  return fit.length <= width ? fit : fit.slice(0, width);
}

/** Seconds as `m:ss` or `h:mm:ss`. */
function clock(seconds: number): string {
  const s = Math.max(Math.ceil(seconds), 0);
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** stderr of this process as a {@link ProgressTarget}. */
export function stderrTarget(): ProgressTarget {
  return {
    plain: process.env.TERM === "dumb",
    write: (text) => void process.stderr.write(text),
    columns: () => (process.stderr.columns && process.stderr.columns > 0 ? process.stderr.columns : 80),
  };
}

/**
 * Start a progress line for `phase` and `total` bytes (`null`: unknown, e.g. a
 * stream on stdin — then only bytes and rate are shown). Returns a no-op when
 * `enabled` is false.
 *
 * @example
 * ```ts
 * const bar = startProgress(process.stderr.isTTY === true, "unpacking", null);
 * bar.update(1 << 20);
 * bar.stop();
 * ```
 */
export function startProgress(enabled: boolean, phase: string, total: number | null, target: ProgressTarget = stderrTarget(), options: ProgressOptions = {}): Progress {
  if (!enabled) return NO_PROGRESS;
  let state = { phase, total, bytes: 0, startedAt: Date.now() };
  let drawnAt = 0;
  let plainPhase: string | null = null;
  let stopped = false;
  const steps = options.steps ?? [];
  const label = (p: string) => (steps.includes(p) ? `[${steps.indexOf(p) + 1}/${steps.length}] ${p}` : p);
  const draw = () => {
    const now = Date.now();
    const line = progressLine(label(state.phase), state.bytes, state.total, now - state.startedAt, target.columns());
    if (!target.plain) {
      drawnAt = now;
      target.write(`\r${line}\x1b[K`);
    } else if (plainPhase !== state.phase || now - drawnAt >= PLAIN_EVERY_MS) {
      // no escape codes, no carriage returns: a line of its own at each phase, then now and then
      drawnAt = now;
      plainPhase = state.phase;
      target.write(`${line}\n`);
    }
  };
  // redraw now and then even without updates (a slow phase still shows it is alive)
  const timer = setInterval(draw, 1000);
  (timer as { unref?: () => void }).unref?.();
  if (!target.plain) target.write("\x1b[?25l"); // the cursor would flicker at the line's end; stop() shows it again
  draw();
  const progress: Progress = {
    update(bytes, newTotal, newPhase) {
      if (stopped) return;
      const phaseChanged = newPhase !== undefined && newPhase !== state.phase;
      state = {
        phase: newPhase ?? state.phase,
        total: newTotal === undefined ? state.total : newTotal,
        bytes,
        startedAt: phaseChanged ? Date.now() : state.startedAt,
      };
      if (phaseChanged || (!target.plain && Date.now() - drawnAt >= REDRAW_MS)) draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      active.delete(progress);
      clearInterval(timer);
      if (!target.plain) target.write("\r\x1b[K\x1b[?25h");
    },
  };
  active.add(progress);
  return progress;
}
