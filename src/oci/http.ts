/**
 * The pieces the registry client (`./client.ts`) is made of: its options and
 * descriptor types, the `WWW-Authenticate` parser, backoff and sleep, the
 * error for a refused request, and bounded body reading.
 *
 * @example
 * ```ts
 * parseChallenge('Bearer realm="https://auth.example/token",service="registry"');
 * // { scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry" } }
 * ```
 * @module
 */

import { abortError, throwIfAborted } from "../abort.js";
import { RegistryError } from "../errors.js";
import type { RegistryReference } from "./reference.js";

/** A username and password (or token as password) for one registry. */
export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** Options of {@link RegistryClient} (and of push and pull). */
export interface RegistryOptions {
  /** The `fetch` to use (default `globalThis.fetch`): the place for a custom CA or TLS settings. */
  readonly fetch?: typeof fetch;
  /** Talk `http://` instead of `https://` (test and loopback registries). */
  readonly plainHttp?: boolean;
  /** Credentials for the registry, or a function giving them per registry host (`null`: anonymous). */
  readonly credentials?: RegistryCredentials | null | ((registry: string) => RegistryCredentials | null | Promise<RegistryCredentials | null>);
  /** Retries of a request after 429, 5xx or a network failure (default 4). */
  readonly retries?: number;
  /** First backoff in ms, doubled each retry (default 250); `Retry-After` wins when given. */
  readonly retryDelayMs?: number;
  /** Longest wait between retries in ms (default 30 s), `Retry-After` included. */
  readonly maxRetryDelayMs?: number;
  /** Bytes per upload `PATCH` (default 8 MiB); one chunk is held in memory at a time. */
  readonly chunkBytes?: number;
  /** Stop (rejecting with `OperationAborted`) once this fires. */
  readonly signal?: AbortSignal;
}

/** An OCI descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
}

/** Wait before retry `attempt` (from 0): `Retry-After` when given, else exponential from `retryDelayMs` with jitter; at most `maxRetryDelayMs`. */
export function backoffMs(options: RegistryOptions, attempt: number, retryAfter: string | null): number {
  const max = options.maxRetryDelayMs ?? 30_000;
  if (retryAfter !== null) {
    const secs = Number(retryAfter);
    if (Number.isFinite(secs) && secs >= 0) return Math.min(secs * 1000, max);
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) return Math.min(Math.max(0, at - Date.now()), max);
  }
  const base = (options.retryDelayMs ?? 250) * 2 ** attempt;
  return Math.min(base * (0.75 + Math.random() * 0.5), max);
}

/** Sleep `ms`, or reject with `OperationAborted` once `signal` fires. */
export async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  throwIfAborted(signal);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(t);
      reject(abortError(signal!));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The error for a refused request: the reference first, then the cause by
 * status, the request, the registry's own error text, and what would help.
 */
export async function statusError(ref: RegistryReference, method: string, what: string, r: Response, retried: string): Promise<RegistryError> {
  let detail = "";
  try {
    const text = new TextDecoder().decode(await readBounded(r, 64 << 10, () => new Error("long")));
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    detail = (doc.errors ?? []).map((x) => [x.code, x.message].filter(Boolean).join(": ")).join("; ");
  } catch {
    detail = "";
  }
  detail = detail.replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 300);
  const said = detail ? ` (the registry says: ${detail})` : "";
  const where = `${method} ${what}`;
  const s = r.status;
  if (s === 401) return new RegistryError(`${ref.text}: unauthorized: ${where} needs credentials the registry accepts (HTTP 401)${said}; ${CREDENTIAL_HINT}`, ref.text, "unauthorized", s);
  if (s === 403) return new RegistryError(`${ref.text}: access denied: ${where} is not allowed for these credentials on ${ref.repository} (HTTP 403)${said}`, ref.text, "denied", s);
  if (s === 404) return new RegistryError(`${ref.text}: not found: ${what} is not in ${ref.registry}/${ref.repository} (HTTP 404)${said}`, ref.text, "not-found", s);
  if (s === 429) return new RegistryError(`${ref.text}: rate limited: ${where} answered HTTP 429 Too Many Requests${retried}${said}; try again later`, ref.text, "rate-limited", s);
  if (s >= 500) return new RegistryError(`${ref.text}: registry failure: ${where} answered HTTP ${s}${retried}${said}`, ref.text, "server", s);
  return new RegistryError(`${ref.text}: ${where} answered HTTP ${s}${said}`, ref.text, "protocol", s);
}

export const CREDENTIAL_HINT = "log in (docker login, or ~/.docker/config.json auths), or give --creds USER:PASSWORD or SNAPBUNDLE_REGISTRY_USER and SNAPBUNDLE_REGISTRY_PASSWORD";

/** `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`, or null. */
export function parseChallenge(header: string): { scheme: "basic" | "bearer"; params: Record<string, string> } | null {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (m === null) return null;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "basic" && scheme !== "bearer") return null;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/g;
  for (let p = re.exec(m[2]!); p !== null; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  return { scheme, params };
}

export function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export async function readBounded(r: Response, max: number, tooLarge: () => Error): Promise<Uint8Array> {
  if (r.body === null) return new Uint8Array();
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of iterate(r.body)) {
    n += c.length;
    if (n > max) throw tooLarge();
    parts.push(c);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Iterate a stream's chunks (releasing/cancelling it when the loop is left). */
export async function* iterate(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * The stream's bytes in chunks of exactly `size` (the last may be shorter),
 * each a view of one buffer that is refilled once the consumer asks for the
 * next: one chunk in memory at a time.
 */
export async function* fixedChunks(reader: ReadableStreamDefaultReader<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(size);
  let fill = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    let piece = r.value;
    while (piece.length > 0) {
      const take = Math.min(piece.length, size - fill);
      chunk.set(piece.subarray(0, take), fill);
      fill += take;
      piece = piece.subarray(take);
      if (fill === size) {
        yield chunk;
        fill = 0;
      }
    }
  }
  if (fill > 0) yield chunk.subarray(0, fill);
}
