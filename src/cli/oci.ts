/**
 * The registry commands of the CLI — `push`, `pull`, and `inspect`/`verify`
 * of a registry reference — and what only the CLI may do for them: read the
 * environment and `~/.docker/config.json` for credentials, and build a
 * `fetch` that trusts a custom CA (or, with `--insecure`, any certificate)
 * on each runtime: Deno through `Deno.createHttpClient`, Bun through its
 * `fetch` `tls` option, Node through `node:https` (its global fetch cannot
 * take a CA after start).
 *
 * An argument is a registry reference when its first component names a host
 * (holds a `.` or `:`, or is `localhost`), a `/` follows, it matches the OCI
 * reference grammar, and no file or directory of that name exists.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { RegistryCredentials, RegistryOptions } from "../oci/client.js";
import { dockerConfigCredentials } from "../oci/format.js";
import { inspectRemote, pullSnapshot, type RemoteReport } from "../oci/pull.js";
import { pushSnapshot } from "../oci/push.js";
import { looksLikeRegistryReference } from "../oci/reference.js";
import { UsageError } from "./args.js";
import type { CommandContext } from "./context.js";
import { humanBytes, jsonDocument, keyValues, printable } from "./format.js";
import { startProgress } from "./progress.js";
import { levelOption } from "./zstd-options.js";

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;



type Runtime = "deno" | "bun" | "node";
function runtime(): Runtime {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";
}

/** Credentials: `--creds`, then the environment, then the Docker config file; never printed. */
function credentialSource(values: Values): (registry: string) => RegistryCredentials | null {
  return (registry) => {
    const given = typeof values.creds === "string" ? values.creds : null;
    if (given !== null) {
      const colon = given.indexOf(":");
      if (colon <= 0) throw new UsageError("--creds must be USER:PASSWORD");
      return { username: given.slice(0, colon), password: given.slice(colon + 1) };
    }
    const user = process.env.SNAPBUNDLE_REGISTRY_USER;
    if (user) return { username: user, password: process.env.SNAPBUNDLE_REGISTRY_PASSWORD ?? "" };
    const dir = process.env.DOCKER_CONFIG || join(homedir(), ".docker");
    let text: string;
    try {
      text = readFileSync(join(dir, "config.json"), "utf8");
    } catch {
      return null;
    }
    return dockerConfigCredentials(text, registry);
  };
}

/** The registry options of the command line. */
export function registryOptions(ctx: CommandContext, values: Values): RegistryOptions {
  const insecure = values.insecure === true;
  const caFile = typeof values["ca-file"] === "string" ? values["ca-file"] : null;
  let ca: string | null = null;
  if (caFile !== null) {
    try {
      ca = readFileSync(ctx.store.absolutePath(caFile), "utf8");
    } catch (e) {
      throw new UsageError(`--ca-file ${JSON.stringify(caFile)} cannot be read (${(e as Error).message})`);
    }
  }
  return {
    plainHttp: values["plain-http"] === true,
    retries: typeof values.retries === "string" ? Number(values.retries) : undefined,
    credentials: credentialSource(values),
    signal: ctx.signal,
    fetch: ca !== null || insecure ? tlsFetch(ca, insecure) : undefined,
  };
}

/** A `fetch` trusting `ca` too (or, when `insecure`, any certificate), on this runtime. */
function tlsFetch(ca: string | null, insecure: boolean): typeof fetch {
  const rt = runtime();
  if (rt === "deno") {
    if (insecure) throw new UsageError("--insecure is not available on Deno (it verifies every certificate); give the registry's CA with --ca-file, or run deno with --unsafely-ignore-certificate-errors");
    const D = (globalThis as unknown as { Deno: { createHttpClient(o: { caCerts: string[] }): unknown } }).Deno;
    const client = D.createHttpClient({ caCerts: [ca!] });
    return ((url: RequestInfo | URL, init?: RequestInit) => fetch(url, { ...init, client } as RequestInit)) as typeof fetch;
  }
  if (rt === "bun") {
    const tls = { ...(ca !== null ? { ca } : {}), ...(insecure ? { rejectUnauthorized: false } : {}) };
    return ((url: RequestInfo | URL, init?: RequestInit) => fetch(url, { ...init, tls } as RequestInit)) as typeof fetch;
  }
  return nodeHttpsFetch(ca, insecure);
}

/** The subset of `fetch` the registry client uses, on `node:https` with a CA of our own. */
function nodeHttpsFetch(ca: string | null, insecure: boolean): typeof fetch {
  const once = (url: URL, init: RequestInit, redirects: number): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers = (init.headers ?? {}) as Record<string, string>;
      const options = { method: init.method ?? "GET", headers, ...(url.protocol === "https:" ? { ca: ca ?? undefined, rejectUnauthorized: !insecure } : {}) };
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, options, (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if ([301, 302, 303, 307, 308].includes(status) && location !== undefined && redirects < 5) {
          res.resume();
          const next = new URL(location, url);
          const sameOrigin = next.origin === url.origin;
          const h = { ...headers };
          if (!sameOrigin) delete h.authorization; // as fetch does: credentials stay with their origin
          resolve(once(next, { ...init, headers: h, ...(status === 303 ? { method: "GET", body: undefined } : {}) }, redirects + 1));
          return;
        }
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(", ") : v);
        const empty = status === 204 || status === 304 || options.method === "HEAD";
        if (empty) res.resume(); // frees the socket
        const body = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, headers: out }));
      });
      req.on("error", reject);
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) req.destroy(signal.reason);
        else {
          const onAbort = () => req.destroy(signal.reason);
          signal.addEventListener("abort", onAbort, { once: true });
          req.on("close", () => signal.removeEventListener("abort", onAbort));
        }
      }
      req.end(init.body === undefined || init.body === null ? undefined : (init.body as Uint8Array));
    });
  return ((input: RequestInfo | URL, init: RequestInit = {}) => once(new URL(String(input)), init, 0)) as typeof fetch;
}

/** `snapbundle push SNAPSHOT REF [--with-parents] [--with-image] [--mount-from REPO]…` */
export async function push(ctx: CommandContext, snapshot: string, reference: string, values: Values): Promise<void> {
  if (!looksLikeRegistryReference(reference)) {
    throw new UsageError(`${JSON.stringify(reference)} is not a registry reference: expected host[:port]/repository[:tag], the host holding a "." or ":" or being localhost (e.g. localhost:5000/snaps:base)`);
  }
  const bar = startProgress(ctx.progress, "pushing", null);
  let result;
  try {
    result = await pushSnapshot(ctx.store, snapshot, reference, {
      ...registryOptions(ctx, values),
      withParents: values["with-parents"] === true,
      withImage: values["with-image"] === true,
      mountFrom: (values["mount-from"] as string[] | undefined) ?? [],
      level: levelOption(values),
      onProgress: (p) => bar.update(p.bytes, null, `${p.phase} ${p.layer}`),
    });
  } finally {
    bar.stop();
  }
  if (ctx.json) {
    ctx.out(jsonDocument({ reference: result.reference, digest: result.digest, uploaded_bytes: result.uploadedBytes, layers: result.layers }));
    return;
  }
  if (ctx.quiet) return;
  for (const l of result.layers) ctx.out(`${l.action.padEnd(8)} ${l.digest} ${humanBytes(l.size).padStart(10)}  ${printable(l.what)}\n`);
  const n = result.layers.filter((l) => l.action === "uploaded").length;
  ctx.out(`pushed ${printable(result.reference)}@${result.digest} (${n} of ${result.layers.length} layer${result.layers.length === 1 ? "" : "s"} uploaded, ${humanBytes(result.uploadedBytes)})\n`);
}

/** `snapbundle pull REF [--name NAME] [--dest DIR]` */
export async function pull(ctx: CommandContext, reference: string, values: Values): Promise<void> {
  const bar = startProgress(ctx.progress, "pulling", null);
  let result;
  try {
    result = await pullSnapshot(ctx.store, reference, {
      ...registryOptions(ctx, values),
      name: typeof values.name === "string" ? values.name : undefined,
      dest: typeof values.dest === "string" ? ctx.store.absolutePath(values.dest) : undefined,
      onProgress: (p) => bar.update(p.bytes, p.total, p.phase),
      onLockWait: (holder) => ctx.err(`waiting: ${printable(holder)}\n`),
    });
  } finally {
    bar.stop();
  }
  if (ctx.json) {
    ctx.out(jsonDocument({ ...result.head, reference: result.reference, manifest_digest: result.digest, fetched: result.fetched, skipped: result.skipped, ...(result.alreadyInstalled ? { already_installed: true } : {}) }));
    return;
  }
  if (ctx.quiet) return;
  if (result.alreadyInstalled) ctx.out(`${result.head.digest} is installed already at ${printable(result.head.path)}; nothing pulled\n`);
  else ctx.out(`pulled ${printable(result.reference)}: ${result.fetched.length} snapshot${result.fetched.length === 1 ? "" : "s"} (${result.skipped.length} installed already), head ${printable(result.head.name)} ${result.head.digest} into ${printable(result.head.path)}\n`);
}

/** `snapbundle inspect REF` / `snapbundle verify REF`: nothing is installed. */
export async function inspectReference(ctx: CommandContext, reference: string, values: Values, verify: boolean): Promise<void> {
  const bar = startProgress(ctx.progress && verify, "verifying", null);
  let report: RemoteReport;
  try {
    report = await inspectRemote(ctx.store, reference, { ...registryOptions(ctx, values), verify, onProgress: (p) => bar.update(p.bytes, p.total) });
  } finally {
    bar.stop();
  }
  if (ctx.json) {
    ctx.out(jsonDocument(report));
    return;
  }
  if (verify) {
    const n = report.snapshots.length;
    if (!ctx.quiet) ctx.out(`verified ${printable(report.reference)}@${report.digest}: ${n} snapshot${n === 1 ? "" : "s"}, ${report.cache_files.length} image cache file${report.cache_files.length === 1 ? "" : "s"}, head ${report.head}; a pull into an empty home would succeed\n`);
    return;
  }
  ctx.out(keyValues([
    ["reference", printable(report.reference)],
    ["digest", report.digest],
    ["created", printable(report.created ?? "-")],
    ["head", report.head],
    ["cache files", report.cache_files.length === 0 ? "-" : report.cache_files.map((c) => printable(c.path)).join(", ")],
  ]));
  for (const s of report.snapshots) {
    ctx.out("\n" + keyValues([
      ["snapshot", printable(s.name)],
      ["digest", s.digest],
      ["parent", s.parent ?? "-"],
      ["created", printable(s.created ?? "-")],
      ["layout", s.layout],
      ["size", s.size_bytes === null ? "-" : `${humanBytes(s.size_bytes)} (${s.size_bytes} bytes)`],
      ["layer", `${s.blob} (${humanBytes(s.blob_size)})`],
    ]));
  }
}
