/**
 * What a command needs from its surroundings: its own file, so that the
 * command modules (`./commands.ts`, `./oci.ts`) share it without importing
 * each other.
 *
 * @module
 */

import type { SnapshotStore } from "../store.js";

/** What a command needs from its surroundings. */
export interface CommandContext {
  readonly store: SnapshotStore;
  readonly json: boolean;
  /** Draw progress bars (stderr is a terminal; no `--json`, `--quiet` or `--no-progress`). */
  readonly progress: boolean;
  /** `--quiet`: no summary sentences (tables and JSON still print). */
  readonly quiet?: boolean;
  /** Write to stdout. */
  out(text: string): void;
  /** Write to stderr. */
  err(text: string): void;
  /** Aborted when the process is interrupted (SIGINT, SIGTERM, SIGHUP). */
  readonly signal?: AbortSignal;
}
