/**
 * Command-line grammar of `snapbundle`: the commands, their options and help
 * texts, and {@link parseCommandLine}, which turns `argv` into a
 * {@link ParsedCommandLine} with `node:util` `parseArgs` (strict).
 *
 * Global options (`--home`, `--json`, `--help`, `--version`) may come before
 * or after the command; a command's own options must come after it.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./args.js";
 * const p = parseCommandLine(["--json", "save", "base", "-", "--with-parents"]);
 * // { kind: "run", command: "save", positionals: ["base", "-"], values: { json: true, "with-parents": true } }
 * ```
 * @module
 */

import { parseArgs } from "node:util";

/** One option in `parseArgs` form. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly short?: string;
}

/** A command: how it is called and what it accepts. */
export interface CommandSpec {
  readonly name: string;
  /** Positional argument names, in order (shown in messages). */
  readonly args: readonly string[];
  /** How many trailing positionals are optional. */
  readonly optionalArgs?: number;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** The synopsis after `snapbundle `, e.g. `save <name|path> <out|-> [--with-parents]`. */
  readonly usage: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The body of `snapbundle <command> --help`. */
  readonly help: string;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  home: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};

const GLOBAL_HELP = `Global options (before or after the command):
  --home DIR     the microsandbox home (default: $MSB_HOME, else ~/.microsandbox)
  --json         print exactly one JSON document on stdout
  -h, --help     show help
  --version      print the version`;

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "create",
    args: ["<name>"],
    options: {
      upper: { type: "string" },
      image: { type: "string" },
      "image-digest": { type: "string" },
      parent: { type: "string" },
      label: { type: "string", multiple: true },
      integrity: { type: "boolean" },
      "source-sandbox": { type: "string" },
      "dest-dir": { type: "string" },
      force: { type: "boolean" },
      layout: { type: "string" },
    },
    usage:
      "create <name> --upper FILE --image REF --image-digest DIGEST [--parent DIGEST] [--label K=V]… [--integrity] [--source-sandbox NAME] [--dest-dir DIR] [--force] [--layout manifest|snapshot]",
    summary: "capture an upper file as a new snapshot",
    help: `Create snapshot <name> under <home>/snapshots (or --dest-dir) from an upper
file. The upper is copied sparsely; the source is not changed.

Options:
  --upper FILE            the upper layer to capture (required)
  --image REF             the image reference, e.g. python:3.12 (required)
  --image-digest DIGEST   the image manifest digest, sha256:… (required)
  --parent DIGEST         the parent snapshot's digest
  --label K=V             a label; repeat for more
  --integrity             record integrity (reads the upper once more):
                          msb-sparse-sha256-v1 in a manifest.json,
                          msb-file-merkle-blake3-v1 in a snapshot.json
  --source-sandbox NAME   the sandbox the upper came from
  --dest-dir DIR          create under DIR instead (DIR becomes an indexed root)
  --force                 replace an existing snapshot of the same name
  --layout L              the artifact to write: manifest (manifest.json, read
                          by every microsandbox) or snapshot (snapshot.json,
                          microsandbox 0.6.7+). Default: snapshot in a home that
                          already holds snapshot.json artifacts, else manifest

With --json, prints the new snapshot.`,
  },
  {
    name: "ls",
    args: [],
    options: {},
    usage: "ls",
    summary: "list the snapshots of the home",
    help: `List every snapshot in the indexed roots: NAME, FORM (manifest.json or
snapshot.json), DIGEST, SIZE, CREATED, PARENT.
Artifacts that do not open are reported on stderr as "warning: …" lines; they
do not change the exit status.

With --json, prints an array of snapshots.`,
  },
  {
    name: "inspect",
    args: ["<name|digest|path>"],
    options: { verify: { type: "boolean" } },
    usage: "inspect <name|digest|path> [--verify]",
    summary: "show a snapshot's manifest (and verify it)",
    help: `Show a snapshot as "key: value" lines. A digest may be a unique prefix of at
least 12 hex digits.

Options:
  --verify   also read the whole upper and check its recorded integrity
             (exit status 1 on a mismatch)

With --json, prints the snapshot (with --verify, plus "integrity").`,
  },
  {
    name: "verify",
    args: ["<name|digest|path>"],
    options: {},
    usage: "verify <name|digest|path>",
    summary: "check a snapshot's upper against its recorded integrity",
    help: `Read the whole upper and check it against the integrity its manifest records.
Exit status 1 on a mismatch (the error names the upper and both digests);
a snapshot with no recorded integrity is reported as "not-recorded", and a
microsandbox 0.6 checkpoint (no payload) as "unsupported"; neither is an error.
Algorithms: sha256, msb-sparse-sha256-v1, msb-file-merkle-blake3-v1.

With --json, prints the snapshot plus "integrity": {status, algorithm, digest}.`,
  },
  {
    name: "rm",
    args: ["<name|digest|path>"],
    options: { force: { type: "boolean" } },
    usage: "rm <name|digest|path> [--force]",
    summary: "remove a snapshot",
    help: `Remove a snapshot. Refused while other indexed snapshots name it as their
parent, unless --force.

Options:
  --force   remove it even if it is a parent

With --json, prints the removed snapshot.`,
  },
  {
    name: "reindex",
    args: ["[DIR]"],
    optionalArgs: 1,
    options: {},
    usage: "reindex [DIR]",
    summary: "rebuild the index (adding DIR as a root)",
    help: `Rebuild the snapshot index from the artifacts on disk. With DIR, also index the
snapshots directly under DIR from now on.

With --json, prints the array of indexed snapshots.`,
  },
  {
    name: "save",
    args: ["<name|path>", "<out|->"],
    options: {
      "with-parents": { type: "boolean" },
      "with-image": { type: "boolean" },
      "plain-tar": { type: "boolean" },
      sparse: { type: "boolean" },
      dense: { type: "boolean" },
      layout: { type: "string" },
      "member-hashes": { type: "string" },
      force: { type: "boolean" },
    },
    usage: "save <name|path> <out|-> [--with-parents] [--with-image] [--plain-tar] [--sparse] [--force] [--layout manifest|snapshot] [--member-hashes auto|yes|no]",
    summary: "write a snapshot bundle (.tar.zst) to a file or stdout",
    help: `Verify a snapshot and write it as a .tar.zst bundle to <out>, or to stdout
when <out> is "-". A file is written under a temporary name and renamed into
place when complete.

Options:
  --with-parents   include every ancestor, oldest first
  --with-image     include the image cache files the snapshot's image needs
  --plain-tar      write a plain .tar instead of zstd
  --sparse         store only the data of uppers with holes, as old-GNU sparse
                   (S) entries: smaller and faster, but microsandbox before
                   0.6.7 (and the npm tar package) cannot load them. The
                   default writes regular entries every reader loads; zero
                   runs compress to almost nothing and load turns them back
                   into holes. (--dense, the default, is accepted and ignored.)
                   The snapshot layout always writes payloads with holes as
                   sparse entries, as microsandbox 0.6.7+ does and reads.
  --layout L       the bundle layout: manifest (sha256-<16hex>/manifest.json,
                   which every microsandbox loads; 0.6.7+ migrates it) or
                   snapshot (the 0.6.7+ layout: snapshots/, files/, images/,
                   archive.json). Default: the snapshot's own artifact form.
                   A manifest.json chain is translated to snapshot.json as
                   microsandbox's migration would (new identities; parents
                   must ship along); a snapshot.json one cannot go back to
                   the manifest layout and is refused, saying why
  --member-hashes M  snapshot layout: record per-member BLAKE3 hashes (yes),
                   or not (no), or only when microsandbox 0.6.7-0.6.8 could
                   not load the bundle anyway (auto, the default)
  --force          replace an existing <out> (otherwise refused)

<out> must be a new file in an existing directory, an existing file with
--force, or an existing FIFO or device (written into as a stream).

With --json, prints {path, snapshots, cache_files, bytes}: the archive's
absolute path, the digests it holds (oldest first), the image cache files and
its size in bytes. When <out> is "-", stdout carries the archive and nothing
else: no JSON and no summary is printed (and no progress bar unless stderr is
a terminal).`,
  },
  {
    name: "load",
    args: ["<archive|->"],
    options: { dest: { type: "string" }, name: { type: "string" }, "max-apparent-size": { type: "string" } },
    usage: "load <archive|-> [--dest DIR] [--name NAME] [--max-apparent-size SIZE]",
    summary: "install a bundle from a file or stdin",
    help: `Load a .tar.zst or .tar bundle (compression is detected from its first bytes)
from <archive>, or from stdin when it is "-". All or nothing: on any failure
nothing new is left in the home.

Options:
  --dest DIR    install into DIR instead of <home>/snapshots (DIR becomes an indexed root)
  --name NAME   install the head snapshot under NAME
  --max-apparent-size SIZE
                refuse an archive whose files declare more than SIZE bytes in
                all, holes included (default 256G; suffixes K, M, G, T are
                powers of 1024). A load reads and hashes every logical byte,
                so this bounds what a tiny archive declaring a huge upper costs.

With --json, prints the head snapshot.`,
  },
  {
    name: "gc",
    args: ["[DIR]"],
    optionalArgs: 1,
    options: { "dry-run": { type: "boolean" } },
    usage: "gc [--dry-run] [DIR]",
    summary: "reclaim what interrupted or killed commands left behind",
    help: `Remove the leftovers of interrupted or killed commands: load and create
staging directories, removed snapshots not yet deleted, stale lease files, and
in DIR (e.g. where a save was killed) partial archives. Only leftovers
whose owner is provably gone are removed: its process is dead (or its pid
now belongs to another process), or it stopped refreshing its lease. Those of
a process that may be alive on another host or pid namespace sharing the home
are kept, and the output says so. Prints what it removed and the space freed.

Options:
  --dry-run   only list what would be removed

With --json, prints {dry_run, removed, kept, failed, freed_bytes}.`,
  },
];

/** What {@link parseCommandLine} found. */
export type ParsedCommandLine =
  | { readonly kind: "help"; readonly command: CommandSpec | null }
  | { readonly kind: "version" }
  | {
    readonly kind: "run";
    readonly command: CommandSpec;
    readonly positionals: readonly string[];
    readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  };

/**
 * Bad usage: exit status 2, with the command's usage line.
 *
 * @example
 * ```ts
 * throw new UsageError("missing argument <name>", findCommand("rm"));
 * ```
 */
export class UsageError extends Error {
  constructor(message: string, readonly command: CommandSpec | null = null) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The command named `name`, if any.
 *
 * @example
 * ```ts
 * findCommand("save")?.usage; // "save <name|path> <out|-> …"
 * ```
 */
export function findCommand(name: string): CommandSpec | null {
  return COMMANDS.find((c) => c.name === name) ?? null;
}

/**
 * `usage: …` lines for a command (or the whole tool).
 *
 * @example
 * ```ts
 * usageLine(findCommand("ls")); // "usage: snapbundle ls"
 * ```
 */
export function usageLine(command: CommandSpec | null): string {
  return command ? `usage: snapbundle ${command.usage}` : "usage: snapbundle [--home DIR] [--json] <command> [args…]";
}

/**
 * The hint printed after a usage error.
 *
 * @example
 * ```ts
 * tryHelpLine(findCommand("save")); // "try 'snapbundle save --help'"
 * ```
 */
export function tryHelpLine(command: CommandSpec | null): string {
  return command ? `try 'snapbundle ${command.name} --help'` : "try 'snapbundle --help'";
}

/**
 * The text of `snapbundle --help`.
 *
 * @example
 * ```ts
 * process.stdout.write(globalHelp());
 * ```
 */
export function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `snapbundle — create, inspect, verify, save and load microsandbox disk snapshots

${usageLine(null)}

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

${GLOBAL_HELP}

Run 'snapbundle <command> --help' for a command's options.
Exit status: 0 success, 1 failure (one "error: …" line on stderr), 2 bad usage.
`;
}

/**
 * The text of `snapbundle <command> --help`.
 *
 * @example
 * ```ts
 * process.stdout.write(commandHelp(findCommand("load")!));
 * ```
 */
export function commandHelp(command: CommandSpec): string {
  return `${usageLine(command)}

${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.

${command.help}

${GLOBAL_HELP}
`;
}

/** All command options together, for the first pass that only locates the command. */
function allOptions(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  for (const c of COMMANDS) Object.assign(all, c.options);
  return all;
}

/** Turn a `parseArgs` error into a short message. */
function parseArgsMessage(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = String(err?.message ?? e);
  if (err?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const m = /'([^']+)'/.exec(msg);
    return m ? `unknown option '${m[1]}'` : msg.split("\n")[0]!;
  }
  if (err?.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const m = /'([^']+)'/.exec(msg);
    return m ? `unexpected argument '${m[1]}'` : msg.split("\n")[0]!;
  }
  const first = msg.split("\n")[0]!.replace(/\.$/, "");
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/**
 * Parse `argv` (without the runtime and script). Throws {@link UsageError}
 * for an unknown command or option, a missing or extra argument.
 *
 * @example
 * ```ts
 * const p = parseCommandLine(["rm", "old", "--force"]);
 * if (p.kind === "run") console.log(p.command.name, p.positionals, p.values.force); // rm ["old"] true
 * ```
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  // Pass 1 (lenient): where is the command? Every known option is declared so
  // that option values are not mistaken for the command.
  const located = parseArgs({ args: [...argv], options: allOptions(), strict: false, allowPositionals: true, tokens: true });
  const first = located.tokens.find((t) => t.kind === "positional");
  const commandIndex = first?.index ?? -1;
  const commandName = first?.kind === "positional" ? first.value : null;
  const command = commandName === null ? null : findCommand(commandName);

  if (command === null) {
    // Report a bad option before a bad command; then help/version; then the command.
    let values: Record<string, unknown>;
    try {
      values = parseArgs({ args: [...argv], options: GLOBAL_OPTIONS, strict: true, allowPositionals: true }).values;
    } catch (e) {
      throw new UsageError(parseArgsMessage(e));
    }
    if (values.help) return { kind: "help", command: null };
    if (values.version) return { kind: "version" };
    if (commandName === null) throw new UsageError("missing command");
    throw new UsageError(`unknown command '${commandName}'`);
  }

  // Pass 2 (strict): the command's grammar plus the global options.
  const rest = argv.filter((_, i) => i !== commandIndex);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e), command);
  }
  for (const t of parsed.tokens ?? []) {
    if (t.kind === "option" && t.index < commandIndex && !(t.name in GLOBAL_OPTIONS)) {
      throw new UsageError(`option '${t.rawName}' belongs to '${command.name}' and must come after it`, command);
    }
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) return { kind: "help", command };
  if (values.version) return { kind: "version" };
  const positionals = parsed.positionals;
  const required = command.args.length - (command.optionalArgs ?? 0);
  if (positionals.length < required) throw new UsageError(`missing argument ${command.args[positionals.length]}`, command);
  if (positionals.length > command.args.length) throw new UsageError(`unexpected argument '${positionals[command.args.length]}'`, command);
  return { kind: "run", command, positionals, values };
}

/**
 * Parse a byte size such as `4096`, `512M`, `256G` or `1TiB` (suffixes are
 * powers of 1024, as in GNU tools). Throws {@link UsageError} naming `flag`.
 *
 * @example
 * ```ts
 * parseByteSize("256G", "--max-apparent-size"); // 274877906944
 * ```
 */
export function parseByteSize(text: string, flag: string, command: CommandSpec | null = null): number {
  const m = /^([0-9]+)([KMGTP]?)(i?B)?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * 1024 ** "KMGTP".indexOf(m[2]!.toUpperCase()) * (m[2] === "" ? 1 : 1024) : NaN;
  if (!m || !Number.isSafeInteger(n)) throw new UsageError(`bad ${flag} ${JSON.stringify(text)}: expected a byte count such as 4096, 512M or 256G`, command);
  return n;
}

/**
 * Parse repeated `--label K=V` values into a record. The key is everything
 * before the first `=` and must not be empty; a key may appear once.
 *
 * @example
 * ```ts
 * parseLabels(["owner=alice", "note=a=b"], findCommand("create")!); // { owner: "alice", note: "a=b" }
 * ```
 */
export function parseLabels(raw: readonly string[] | undefined, command: CommandSpec): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of raw ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad --label ${JSON.stringify(item)}: expected KEY=VALUE with a non-empty KEY`, command);
    const key = item.slice(0, eq);
    if (Object.hasOwn(labels, key)) throw new UsageError(`bad --label ${JSON.stringify(item)}: label ${JSON.stringify(key)} is given twice`, command);
    labels[key] = item.slice(eq + 1);
  }
  return labels;
}
