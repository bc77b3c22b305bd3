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
import { SnapbundleError } from "../errors.js";
import { digestProblem, imageReferenceProblem } from "../reference.js";
import { validateSnapshotName } from "../snapshot.js";
import { REGISTRY_HELP, REGISTRY_OPTIONS } from "./registry-options.js";

/** One option in `parseArgs` form, plus the checks made before anything is read. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly short?: string;
  /** The command fails with a usage error (exit 2) without it. */
  readonly required?: boolean;
  /** Why a value is refused (a usage error: `--flag "value" <reason>`), or null. Runs on each value. */
  readonly check?: (value: string) => string | null;
  /** The values it allows, for shell completion (the check still decides). */
  readonly choices?: readonly string[];
  /** Its value is a directory (shell completion offers directories). */
  readonly directory?: boolean;
}

/** A command: how it is called and what it accepts. */
export interface CommandSpec {
  readonly name: string;
  /** Positional argument names, in order (shown in messages). */
  readonly args: readonly string[];
  /** How many trailing positionals are optional. */
  readonly optionalArgs?: number;
  /** The last positional may repeat (`rm A B C`, as `msb snapshot remove` takes). */
  readonly variadic?: boolean;
  /** Other names the command answers to (msb's: `list` for `ls`, `remove` for `rm`). */
  readonly aliases?: readonly string[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** The synopsis after `snapbundle `, e.g. `save <name|path> <out|-> [--with-parents]`. */
  readonly usage: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The body of `snapbundle <command> --help`. */
  readonly help: string;
  /** Why a positional argument is refused (a usage error: `<arg> "value" <reason>`), or null; `index` counts from 0. */
  readonly checkArg?: (value: string, index: number) => string | null;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  home: { type: "string", check: nonEmpty, directory: true },
  json: { type: "boolean" },
  format: { type: "string", choices: ["json"], check: (v) => (v === "json" ? null : 'is not a format: the only one is "json" (as msb\'s --format)') },
  quiet: { type: "boolean", short: "q" },
  "no-progress": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
};

const GLOBAL_HELP = `Global options (before or after the command):
  --home DIR       the microsandbox home (default: $MSB_HOME, else ~/.microsandbox)
  --json           print exactly one JSON document on stdout (on failure too:
                   {"error": {"code", "message", "path"}}, same exit status)
  --format json    the same as --json (msb's spelling)
  -q, --quiet      no progress bars and no summary lines (errors still print)
  --no-progress    no progress bars
  -h, --help       show help
  -V, --version    print the version`;

function nonEmpty(value: string): string | null {
  return value === "" ? "must not be empty" : null;
}

/** Why `name` is not a snapshot name (the library's own rule), or null. */
function snapshotNameProblem(name: string): string | null {
  try {
    validateSnapshotName(name);
    return null;
  } catch (e) {
    if (e instanceof SnapbundleError) return e.message.replace(`snapshot name ${JSON.stringify(name)} `, "");
    throw e;
  }
}

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "create",
    args: ["<name>"],
    options: {
      upper: { type: "string", required: true, check: nonEmpty },
      image: { type: "string", required: true, check: imageReferenceProblem },
      "image-digest": { type: "string", required: true, check: digestProblem },
      parent: { type: "string", check: nonEmpty },
      label: { type: "string", multiple: true },
      integrity: { type: "boolean" },
      "source-sandbox": { type: "string" },
      "dest-dir": { type: "string", directory: true },
      force: { type: "boolean" },
      layout: { type: "string", choices: ["manifest", "snapshot"] },
    },
    usage:
      "create <name> --upper FILE --image REF --image-digest DIGEST [--parent SNAPSHOT] [--label K=V]… [--integrity] [--source-sandbox NAME] [--dest-dir DIR] [--force] [--layout manifest|snapshot]",
    summary: "capture an upper file as a new snapshot",
    help: `Create snapshot <name> under <home>/snapshots (or --dest-dir) from an upper
file. The upper is copied sparsely; the source is not changed.

Options:
  --upper FILE            the upper layer to capture (required)
  --image REF             the image reference, e.g. python:3.12 (required; the
                          OCI reference grammar: [registry/]repository[:tag][@digest])
  --image-digest DIGEST   the image manifest digest: sha256: and 64 lowercase hex digits (required)
  --parent SNAPSHOT       the parent: the name, digest or path of a snapshot in the home
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
    checkArg: snapshotNameProblem,
  },
  {
    name: "ls",
    aliases: ["list"],
    args: [],
    options: {},
    usage: "ls [-q]",
    summary: "list the snapshots of the home",
    help: `List every snapshot in the indexed roots: NAME, FORM (manifest.json or
snapshot.json), DIGEST, SIZE, CREATED, PARENT, LABELS.
With -q (--quiet), only the full digests, one a line (as 'msb snapshot list -q').
Artifacts that do not open are reported on stderr as "warning: …" lines; they
do not change the exit status.

With --json, prints an array of snapshots.`,
  },
  {
    name: "inspect",
    args: ["<name|digest|path|bundle|->"],
    options: { verify: { type: "boolean" }, ...REGISTRY_OPTIONS },
    usage: "inspect <name|digest|path|bundle|-|REF> [--verify]",
    summary: "show a snapshot's manifest, or what a bundle holds",
    help: `Show a snapshot as "key: value" lines. A digest may be a unique prefix of at
least 12 hex digits.

A regular file (or "-" for stdin) is a bundle, of either layout (manifest, or
snapshot: microsandbox 0.6.7+ with archive.json): it is streamed through the
load's reader and grammar, writing nothing, and its layout, snapshots (digest,
parent, image, size, recorded integrity, labels), head, image cache files,
compression and tar formats are shown. No home is needed. This is a quick
listing, as 'tar -tv': the data is decoded and skipped, nothing is hashed
("not checked"); --verify hashes it and makes every check a load makes. When
the bundle is corrupt, the members read before the corruption are listed,
then the error (exit status 1).

Options:
  --verify   also read the whole upper and check its recorded integrity
             (exit status 1 on a mismatch); for a bundle, every check of
             'snapbundle verify BUNDLE', then the listing

A registry reference REF (host[:port]/repository[:tag|@digest], the host
holding a "." or ":" or being localhost, and no file of that name) shows the
pushed artifact: its manifest, snapshots and layers, reading no layer; with
--verify, downloads every layer and checks it as a pull would, installing
nothing.

${REGISTRY_HELP}

With --json, prints the snapshot (with --verify, plus "integrity").`,
  },
  {
    name: "verify",
    args: ["<name|digest|path|bundle|->"],
    optionalArgs: 1, // none with --cache
    options: { cache: { type: "boolean" }, ...REGISTRY_OPTIONS },
    usage: "verify <name|digest|path|bundle|-|REF>  |  verify --cache",
    summary: "check a snapshot's upper, or a whole bundle, against its recorded integrity",
    help: `Read the whole upper and check it against the integrity its manifest records.

A regular file (or "-" for stdin) is a bundle: verify runs every check a load
would run on it (grammar, sizes, checksums; for a microsandbox 0.6 bundle its
archive.json inventory, member hashes and bindings; each upper's recorded
integrity, hashed as the data streams past; the image cache) and writes
nothing; exit status 0 only if a load into an empty home would succeed. No
home is needed.
Exit status 1 on a mismatch (the error names the upper and both digests);
a snapshot with no recorded integrity is reported as "not-recorded", and a
microsandbox 0.6 checkpoint (no payload) as "unsupported"; neither is an error.
Algorithms: sha256, msb-sparse-sha256-v1, msb-file-merkle-blake3-v1.

verify --cache checks every file of the home's image cache instead and
changes nothing: each layer and fsmeta .erofs file must be a valid EROFS
image, each cached image metadata must parse and hash to the digests it
records. Exit status 1 if any is corrupt (each is listed); a load of a bundle
carrying a corrupt file replaces it.

With --json, prints the snapshot plus "integrity": {status, algorithm, digest}
(--cache: {cache, checked, corrupt: [{path, kind, problem}]}).`,
  },
  {
    name: "rm",
    aliases: ["remove"],
    args: ["<name|digest|path>…"],
    variadic: true,
    options: { force: { type: "boolean", short: "f" } },
    usage: "rm <name|digest|path>… [-f|--force]",
    summary: "remove one or more snapshots",
    help: `Remove snapshots, in the order given. Each is refused while other indexed
snapshots name it as their parent, unless --force. A snapshot that cannot be
removed does not stop the others (as 'msb snapshot remove'): each failure is
reported, and the exit status is 1 if any failed.

Options:
  -f, --force   remove it even if it is a parent

With --json, prints the removed snapshot (an array of them when several are
named; on any failure, the error document of the last failure).`,
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
      "no-verify": { type: "boolean" },
      layout: { type: "string", choices: ["manifest", "snapshot"] },
      "member-hashes": { type: "string", choices: ["auto", "yes", "no"] },
      force: { type: "boolean" },
      level: { type: "string" },
    },
    usage: "save <name|path> <out|-> [--with-parents] [--with-image] [--plain-tar] [--sparse] [--level N] [--no-verify] [--force] [--layout manifest|snapshot] [--member-hashes auto|yes|no]",
    summary: "write a snapshot bundle (.tar.zst) to a file or stdout",
    help: `Verify a snapshot and write it as a .tar.zst bundle to <out>, or to stdout
when <out> is "-". A file is written under a temporary name and renamed into
place when complete.

Options:
  --with-parents   include every ancestor, oldest first
  --with-image     include the image cache files the snapshot's image needs
  --plain-tar      write a plain .tar instead of zstd (an <out> named .tar
                   is always a plain tar)
  --sparse         store only the data of uppers with holes, as old-GNU sparse
                   (S) entries: smaller and faster, but microsandbox before
                   0.6.7 (and the npm tar package) cannot load them. The
                   default writes regular entries every reader loads; zero
                   runs compress to almost nothing and load turns them back
                   into holes. (--dense, the default, is accepted and ignored.)
                   The snapshot layout always writes payloads with holes as
                   sparse entries, as microsandbox 0.6.7+ does and reads.
  --level N        zstd level, 1 (fastest) to 19 (smallest); default 3
  --no-verify      skip checking each upper against its recorded integrity
                   before writing (microsandbox stopped verifying on save in
                   0.6.9); the summary says "not verified"
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

The name of <out> picks the format, as 'tar -a' does: .tar is a plain tar,
.tar.zst, .tzst or .zst zstd; a compression snapbundle does not write
(.tar.gz, .tgz, .tar.bz2, .tar.xz, .zip, …) is refused before any work,
saying why. Any other name, "-", a FIFO or a device gets zstd (what msb
writes whatever the name) unless --plain-tar.

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
    args: ["<archive|->", "[DEST]"],
    optionalArgs: 1,
    options: {
      dest: { type: "string", check: nonEmpty, directory: true },
      name: { type: "string", check: snapshotNameProblem },
      "max-apparent-size": { type: "string" },
      "max-window": { type: "string" },
    },
    usage: "load <archive|-> [DEST] [--dest DIR] [--name NAME] [--max-apparent-size SIZE] [--max-window SIZE]",
    summary: "install a bundle from a file or stdin",
    help: `Load a .tar.zst or .tar bundle (compression is detected from its first bytes)
from <archive>, or from stdin when it is "-". All or nothing: on any failure
nothing new is left in the home.

DEST, as in 'msb snapshot load ARCHIVE DEST', is the same as --dest DEST
(give one of them).

Options:
  --dest DIR    install into DIR instead of <home>/snapshots (DIR becomes an indexed root)
  --name NAME   install the head snapshot under NAME (also when a snapshot with
                the head's digest is installed already: a second copy)
  --max-apparent-size SIZE
                refuse an archive whose files declare more than SIZE bytes in
                all, holes included (default 256G; suffixes K, M, G, T are
                powers of 1024). A load reads and hashes every logical byte,
                so this bounds what a tiny archive declaring a huge upper costs.
  --max-window SIZE
                largest zstd window a frame may need (default 128M, at most 2G);
                the decoder holds up to that much memory

A bundle whose head snapshot is installed already (same digest) installs
nothing and says so (exit status 0), unless --name asks for a second copy.
When the bundle's first snapshot is installed and its directory here exists,
this is decided from the first entry, before the payload is read; --name NAME
where NAME exists is refused before anything is read.

A microsandbox 0.6 bundle's suggested_name (shown by inspect) names the head
when no --name is given and nothing lies at that name; otherwise the head
keeps its 64-hex id, the name msb 0.6.18 always gives it.

With --json, prints the head snapshot (plus "already_installed": true when
nothing was installed).`,
  },
  {
    name: "push",
    args: ["<name|digest|path>", "<REF>"],
    options: { "with-parents": { type: "boolean" }, "with-image": { type: "boolean" }, "mount-from": { type: "string", multiple: true }, level: { type: "string" }, ...REGISTRY_OPTIONS },
    usage: "push <name|digest|path> <REF> [--with-parents] [--with-image] [--mount-from REPO]… [--level N]",
    summary: "push a snapshot to an OCI registry",
    help: `Push a snapshot to an OCI registry as an artifact (docs/oci-format.md): an
OCI image manifest whose layers are one-snapshot bundles, oldest first.
REF is host[:port]/repository[:tag] (tag default: latest). Only blobs the
registry lacks are uploaded, streamed in chunks; the manifest goes last.

Options:
  --with-parents     push every ancestor too, one layer each
  --with-image       push the image cache files too, one layer each
  --mount-from REPO  look in REPO (same registry) for layers to mount instead
                     of uploading; repeat for more
  --level N          zstd level of the layers (1-19, default 3)

${REGISTRY_HELP}

With --json, prints {reference, digest, uploaded_bytes, layers}.`,
  },
  {
    name: "pull",
    args: ["<REF>"],
    options: { dest: { type: "string", check: nonEmpty }, name: { type: "string", check: snapshotNameProblem }, ...REGISTRY_OPTIONS },
    usage: "pull <REF> [--name NAME] [--dest DIR]",
    summary: "install a snapshot (and its ancestors) from an OCI registry",
    help: `Pull a snapshot artifact from an OCI registry and install it, as a load
does: every layer is checked against its digest as it streams and goes
straight into the load's checks; the whole chain installs all or nothing.
Layers whose snapshot is installed already are not downloaded.

Options:
  --dest DIR    install into DIR instead of <home>/snapshots
  --name NAME   install the head snapshot under NAME

${REGISTRY_HELP}

With --json, prints the head snapshot plus reference, manifest_digest,
fetched, skipped (and "already_installed": true when nothing was installed).`,
  },
  {
    name: "help",
    args: ["[command]"],
    optionalArgs: 1,
    options: {},
    usage: "help [command]",
    summary: "show the usage of snapbundle or of one command",
    help: `Print the usage of snapbundle, or of <command> (the same as 'snapbundle <command> --help').`,
    checkArg: (name) => (findCommand(name) === null ? `is not a command; the commands are ${COMMANDS.map((c) => c.name).join(", ")}` : null),
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
  {
    name: "completions",
    args: ["<bash|zsh|fish>"],
    options: {},
    usage: "completions <bash|zsh|fish>",
    summary: "print a shell completion script",
    help: `Print the completion script for bash, zsh or fish, generated from the same
table as the parser and --help (so it knows every command, alias and option).

  bash   eval "$(snapbundle completions bash)", or save it as
         ~/.local/share/bash-completion/completions/snapbundle
  zsh    snapbundle completions zsh > "\${fpath[1]}/_snapbundle"
  fish   snapbundle completions fish > ~/.config/fish/completions/snapbundle.fish`,
    checkArg: (shell) => (["bash", "zsh", "fish"].includes(shell) ? null : 'is not a shell: give "bash", "zsh" or "fish"'),
  },
  {
    name: "man",
    args: [],
    options: {},
    usage: "man",
    summary: "print the snapbundle(1) man page (roff)",
    help: `Print the manual page, generated from the same table as --help:
  snapbundle man | man -l -
  snapbundle man > ~/.local/share/man/man1/snapbundle.1`,
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
  return COMMANDS.find((c) => c.name === name || (c.aliases ?? []).includes(name)) ?? null;
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
  // msb's way of showing an alias: "list  List indexed snapshots [alias: ls]"
  const aliases = (c: CommandSpec) => (c.aliases ?? []).map((a) => ` [alias: ${a}]`).join("");
  return `snapbundle — create, inspect, verify, save and load microsandbox disk snapshots

${usageLine(null)}

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}${aliases(c)}`).join("\n")}

${GLOBAL_HELP}

Run 'snapbundle <command> --help' for a command's options.
Exit status: 0 success, 1 failure (one "error: …" line on stderr), 2 bad usage,
130, 143, 129 interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP (128 + the signal's
number; what the command had begun is undone, as after a failure).

Environment:
  MSB_HOME           the home when --home is not given
  SNAPBUNDLE_DEBUG   1: after an "error: …" line, print the error's stack trace
  NO_COLOR, TERM     TERM=dumb: progress as plain lines, no escape codes
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

/** Options in the form `parseArgs` takes (only the keys it knows). */
type ParseArgsOptions = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

function forParseArgs(...specs: Readonly<Record<string, OptionSpec>>[]): ParseArgsOptions {
  const out: ParseArgsOptions = {};
  for (const spec of specs) {
    for (const [name, o] of Object.entries(spec)) {
      out[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
    }
  }
  return out;
}

/** All command options together, for the first pass that only locates the command. */
function allOptions(): ParseArgsOptions {
  return forParseArgs(GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options));
}

/**
 * The checks that need no home: required options, each option's value check
 * and each positional's check. Throws a {@link UsageError} naming the flag.
 */
function checkValues(command: CommandSpec, positionals: readonly string[], values: Readonly<Record<string, unknown>>): void {
  const options = { ...GLOBAL_OPTIONS, ...command.options };
  for (const [name, spec] of Object.entries(options)) {
    const v = values[name];
    if (v === undefined) {
      if (spec.required) throw new UsageError(`missing required option --${name}`, command);
      continue;
    }
    if (spec.check === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      const problem = spec.check(String(item));
      if (problem !== null) throw new UsageError(`--${name} ${JSON.stringify(item)} ${problem}`, command);
    }
  }
  positionals.forEach((value, i) => {
    const problem = command.checkArg?.(value, i) ?? null;
    if (problem !== null) throw new UsageError(`${command.args[Math.min(i, command.args.length - 1)]!.replace(/^\[(.*)\]$/, "$1")} ${JSON.stringify(value)} ${problem}`, command);
  });
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
      values = parseArgs({ args: [...argv], options: forParseArgs(GLOBAL_OPTIONS), strict: true, allowPositionals: true }).values;
    } catch (e) {
      throw new UsageError(parseArgsMessage(e));
    }
    if (values.version) return { kind: "version" };
    // `snapbundle` alone (or with only global options) prints the usage, like `snapbundle --help`
    if (values.help || commandName === null) return { kind: "help", command: null };
    throw new UsageError(`unknown command '${commandName}'`);
  }

  // Pass 2 (strict): the command's grammar plus the global options.
  const rest = argv.filter((_, i) => i !== commandIndex);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: forParseArgs(GLOBAL_OPTIONS, command.options), strict: true, allowPositionals: true, tokens: true });
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
  if (positionals.length > command.args.length && !command.variadic) throw new UsageError(`unexpected argument '${positionals[command.args.length]}'`, command);
  checkValues(command, positionals, values);
  if (command.name === "help") return { kind: "help", command: positionals[0] === undefined ? null : findCommand(positionals[0]) };
  parseLabels(values.label as string[] | undefined, command); // its rules are usage rules too
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
