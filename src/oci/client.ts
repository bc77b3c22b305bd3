/**
 * A client of the OCI distribution API, on `fetch` and Web Streams only (so
 * it runs on Node, Deno and Bun): blob `HEAD`, cross-repository mount,
 * streamed chunked upload (`POST`, `PATCH`…, `PUT ?digest=`) with the digest
 * computed on the way, blob `GET` checked against its digest as it streams
 * and resumed with `Range` after a broken connection, manifest `GET`/`PUT`.
 *
 * Auth: anonymous first; on a 401 the `WWW-Authenticate` challenge decides —
 * `Basic` sends the credentials, `Bearer` fetches a token from the realm
 * (with the credentials if any) for the scope asked. Credentials are never
 * put in a message. Retries with exponential backoff on 429, 5xx and network
 * failures of requests that can be repeated, honouring `Retry-After`.
 *
 * TLS and custom CAs are the `fetch`'s business: pass one (`options.fetch`)
 * that trusts what it should (the CLI builds one per runtime).
 *
 * @example
 * ```ts
 * const client = new RegistryClient(parseRegistryReference("localhost:5000/snaps:base"), { plainHttp: true });
 * const manifest = await client.getManifest("base");
 * ```
 * @module
 */

import { createSha256 } from "../../wasm/mod.js";
import { abortError, throwIfAborted } from "../abort.js";
import { OperationAborted, RegistryError } from "../errors.js";
import { backoffMs, base64, CREDENTIAL_HINT, type Descriptor, fixedChunks, parseChallenge, readBounded, type RegistryCredentials, type RegistryOptions, sleep, statusError } from "./http.js";
import { type RegistryReference } from "./reference.js";

export { type Descriptor, iterate, parseChallenge, type RegistryCredentials, type RegistryOptions } from "./http.js";

type Scope = "pull" | "pull,push";

interface RequestSpec {
  readonly method: string;
  /** A path under the registry (`/v2/…`) or an absolute URL (an upload location). */
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array;
  /** Statuses that are success (anything else is an error). */
  readonly ok: readonly number[];
  readonly scope: Scope;
  /** Other repositories the token must cover (pull), e.g. a mount source. */
  readonly also?: readonly string[];
  /** Retry on 429/5xx/network failure (default true; false for non-idempotent requests). */
  readonly retry?: boolean;
  /** What the request is, for messages: "blob sha256:…", "manifest base". */
  readonly what: string;
  /** Statuses returned to the caller without raising (e.g. 404 of a HEAD). */
  readonly pass?: readonly number[];
}

const DEFAULT_CHUNK = 8 << 20;

/**
 * The registry API for one reference's repository. One instance caches the
 * authorization it earned (a token per scope, or Basic) across requests.
 */
export class RegistryClient {
  readonly ref: RegistryReference;
  readonly #fetch: typeof fetch;
  readonly #options: RegistryOptions;
  readonly #base: string;
  /** Authorization header values by scope key; "basic" for a Basic registry. */
  readonly #auth = new Map<string, string>();
  #basic: string | null = null;
  #credentials: Promise<RegistryCredentials | null> | undefined;

  constructor(ref: RegistryReference, options: RegistryOptions = {}) {
    this.ref = ref;
    this.#options = options;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#base = `${options.plainHttp ? "http" : "https"}://${ref.endpoint}`;
  }

  /** `/v2/<repo>/…` of this client's repository. */
  path(rest: string, repository = this.ref.repository): string {
    return `/v2/${repository}/${rest}`;
  }

  /** The blob's size when the repository has it, else null. */
  async blobSize(digest: string): Promise<number | null> {
    const r = await this.request({ method: "HEAD", url: this.path(`blobs/${digest}`), ok: [200], pass: [404], scope: "pull", what: `blob ${digest}` });
    if (r.status === 404) return null;
    const len = Number(r.headers.get("content-length"));
    return Number.isFinite(len) ? len : -1;
  }

  /**
   * Mount `digest` from `from` (same registry). True when mounted; false when
   * the registry declined (any upload session it opened instead is left to expire).
   */
  async mountBlob(digest: string, from: string): Promise<boolean> {
    const r = await this.request({
      method: "POST",
      url: `${this.path("blobs/uploads/")}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      headers: { "content-length": "0" },
      ok: [201, 202],
      scope: "pull,push",
      also: [from],
      what: `mount of blob ${digest} from ${from}`,
    });
    await r.body?.cancel().catch(() => {});
    return r.status === 201;
  }

  /**
   * Upload a stream as a blob: `POST` a session, `PATCH` it chunk by chunk
   * (one chunk of `chunkBytes` in memory at a time), hashing the bytes on the
   * way, then `PUT ?digest=` with the digest found. Resolves the descriptor's
   * digest and size. `expect`, when given, is checked against the digest.
   */
  async uploadBlob(source: ReadableStream<Uint8Array>, options: { onBytes?: (n: number) => void; expect?: string } = {}): Promise<{ digest: string; size: number }> {
    const reader = source.getReader();
    try {
      const start = await this.request({ method: "POST", url: this.path("blobs/uploads/"), headers: { "content-length": "0" }, ok: [202], scope: "pull,push", what: "blob upload" });
      await start.body?.cancel().catch(() => {});
      let location = this.#location(start, "blob upload");
      const hash = await createSha256();
      let offset = 0;
      for await (const body of fixedChunks(reader, this.#options.chunkBytes ?? DEFAULT_CHUNK)) {
        hash.update(body);
        const r = await this.request({
          method: "PATCH",
          url: location,
          headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${offset + body.length - 1}`, "content-length": String(body.length) },
          body,
          ok: [202],
          scope: "pull,push",
          retry: false,
          what: "blob upload",
        });
        await r.body?.cancel().catch(() => {});
        location = this.#location(r, "blob upload");
        offset += body.length;
        options.onBytes?.(body.length);
      }
      const digest = `sha256:${hash.digestHex()}`;
      if (options.expect !== undefined && options.expect !== digest) {
        throw new RegistryError(`${this.ref.text}: the bytes uploaded hash to ${digest}, not ${options.expect} (the source changed while it was read)`, this.ref.text, "digest-mismatch");
      }
      const sep = location.includes("?") ? "&" : "?";
      const put = await this.request({ method: "PUT", url: `${location}${sep}digest=${encodeURIComponent(digest)}`, headers: { "content-length": "0" }, ok: [201, 204], scope: "pull,push", retry: false, what: `blob ${digest}` });
      await put.body?.cancel().catch(() => {});
      return { digest, size: offset };
    } catch (e) {
      await reader.cancel(e).catch(() => {});
      throw e;
    } finally {
      reader.releaseLock();
    }
  }

  /**
   * The blob's bytes, checked as they stream: more bytes than `size`, fewer,
   * or another digest fail the stream with a {@link RegistryError} naming the
   * digest. A connection broken mid-body is resumed with `Range` from the
   * byte reached (the retries allowing), when the registry honours it.
   */
  async blobStream(desc: Pick<Descriptor, "digest" | "size">, onBytes?: (n: number) => void): Promise<ReadableStream<Uint8Array>> {
    const blob = await this.openBlob(desc, onBytes, false);
    return blob.stream;
  }

  /**
   * {@link blobStream}, plus `check()`: when the reader of the stream gave up
   * early (a loader refusing what it read), reads the rest of the blob and
   * says whether its bytes were what the descriptor names — so a refusal
   * caused by corrupt bytes is reported as the corrupt blob it is. `close()`
   * releases the connection.
   */
  async openBlob(desc: Pick<Descriptor, "digest" | "size">, onBytes?: (n: number) => void, keepOnCancel = true): Promise<{ stream: ReadableStream<Uint8Array>; check(): Promise<RegistryError | null>; close(): Promise<void> }> {
    const hash = await createSha256();
    const url = this.path(`blobs/${desc.digest}`);
    const what = `blob ${desc.digest}`;
    let received = 0;
    let resumes = 0;
    let verdict: RegistryError | null | undefined; // undefined: not read to its end yet
    const open = async (): Promise<ReadableStreamDefaultReader<Uint8Array>> => {
      const headers: Record<string, string> = received > 0 ? { range: `bytes=${received}-` } : {};
      const r = await this.request({ method: "GET", url, headers, ok: received > 0 ? [206] : [200], scope: "pull", what });
      if (r.body === null) throw this.#protocol(`${what}: the registry sent no body`);
      return r.body.getReader();
    };
    let reader = await open();
    const mismatch = (detail: string) =>
      new RegistryError(`${this.ref.text}: ${what} is corrupt: ${detail}; refused (nothing from it is installed)`, this.ref.text, "digest-mismatch");
    /** The next chunk (resuming a broken connection with Range), or null at the end, where the digest is checked. */
    const next = async (): Promise<Uint8Array | null> => {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          throwIfAborted(this.#options.signal);
          r = await reader.read();
        } catch (e) {
          if (e instanceof OperationAborted || resumes >= (this.#options.retries ?? 4)) throw this.#network(what, e);
          resumes++;
          await sleep(backoffMs(this.#options, resumes - 1, null), this.#options.signal);
          reader = await open();
          continue;
        }
        if (r.done && received < desc.size && resumes < (this.#options.retries ?? 4)) {
          // a body that ends short is a broken connection too (some runtimes report it as a clean end)
          resumes++;
          await sleep(backoffMs(this.#options, resumes - 1, null), this.#options.signal);
          reader = await open();
          continue;
        }
        if (r.done) {
          const got = `sha256:${hash.digestHex()}`;
          if (received !== desc.size) verdict = mismatch(`the registry sent ${received} bytes, the descriptor says ${desc.size}`);
          else verdict = got === desc.digest ? null : mismatch(`its bytes hash to ${got}`);
          if (verdict !== null) throw verdict;
          return null;
        }
        received += r.value.length;
        if (received > desc.size) throw (verdict = mismatch(`the registry sent more than the ${desc.size} bytes the descriptor says`));
        hash.update(r.value);
        onBytes?.(r.value.length);
        return r.value;
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await next();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      // kept for check() (close() releases it), unless asked otherwise
      cancel: () => (keepOnCancel ? undefined : reader.cancel().catch(() => {})),
    }, { highWaterMark: 0 });
    return {
      stream,
      check: async () => {
        try {
          while (verdict === undefined && (await next()) !== null);
        } catch (e) {
          if (e instanceof RegistryError && e.reason === "digest-mismatch") return e;
          return null; // unknown: the original failure stands
        }
        return verdict ?? null;
      },
      close: async () => {
        await reader.cancel().catch(() => {});
      },
    };
  }

  /** Upload a small blob held in memory (a config). */
  async putSmallBlob(bytes: Uint8Array, digest: string): Promise<void> {
    const once = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    });
    await this.uploadBlob(once, { expect: digest });
  }

  /** The manifest at `reference` (tag or digest): its bytes, media type and digest (checked when `reference` is a digest). Null when absent and `missingOk`. */
  async getManifest(reference: string, missingOk = false): Promise<{ bytes: Uint8Array; mediaType: string; digest: string } | null> {
    const r = await this.request({
      method: "GET",
      url: this.path(`manifests/${reference}`),
      headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json" },
      ok: [200],
      pass: missingOk ? [404] : [],
      scope: "pull",
      what: `manifest ${reference}`,
    });
    if (r.status === 404) {
      await r.body?.cancel().catch(() => {});
      return null;
    }
    const bytes = await readBounded(r, 4 << 20, () => this.#protocol(`manifest ${reference} is larger than 4 MiB`));
    const h = await createSha256();
    h.update(bytes);
    const digest = `sha256:${h.digestHex()}`;
    if (reference.startsWith("sha256:") && digest !== reference) {
      throw new RegistryError(`${this.ref.text}: manifest ${reference} is corrupt: its bytes hash to ${digest}; refused`, this.ref.text, "digest-mismatch");
    }
    return { bytes, mediaType: (r.headers.get("content-type") ?? "").split(";")[0]!.trim(), digest };
  }

  /** Put a manifest under `reference` (a tag, or its digest). */
  async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<void> {
    const r = await this.request({ method: "PUT", url: this.path(`manifests/${reference}`), headers: { "content-type": mediaType, "content-length": String(bytes.length) }, body: bytes, ok: [201, 200, 204], scope: "pull,push", what: `manifest ${reference}` });
    await r.body?.cancel().catch(() => {});
  }

  /** The repository's tags (empty when it has none), at most `limit`. */
  async tags(limit = 100): Promise<string[]> {
    const r = await this.request({ method: "GET", url: `${this.path("tags/list")}?n=${limit}`, ok: [200], pass: [404], scope: "pull", what: "tag list" });
    if (r.status === 404) {
      await r.body?.cancel().catch(() => {});
      return [];
    }
    const bytes = await readBounded(r, 4 << 20, () => this.#protocol("the tag list is larger than 4 MiB"));
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as { tags?: unknown };
    return Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === "string").slice(0, limit) : [];
  }

  /** A client of another repository of the same registry, sharing nothing but the options. */
  sibling(repository: string): RegistryClient {
    return new RegistryClient({ ...this.ref, repository, tag: null, digest: null, text: `${this.ref.registry}/${repository}` }, this.#options);
  }

  // ---- the request loop: auth, retries, errors ----

  /** One request with its auth dance and retries. Resolves a response whose status is in `ok` or `pass`. */
  async request(spec: RequestSpec): Promise<Response> {
    const retries = spec.retry === false ? 0 : (this.#options.retries ?? 4);
    for (let authTried = false; ;) {
      const url = spec.url.startsWith("/") ? this.#base + spec.url : spec.url;
      const headers: Record<string, string> = { ...spec.headers };
      const auth = this.#authFor(spec);
      if (auth !== null) headers.authorization = auth;
      const { r, attempts } = await this.#send(url, { method: spec.method, headers, body: spec.body as BodyInit | undefined, redirect: "follow" }, retries, `${spec.method} ${spec.what}`);
      if (spec.ok.includes(r.status) || spec.pass?.includes(r.status)) return r;
      if (r.status === 401 && !authTried) {
        authTried = true;
        const challenge = r.headers.get("www-authenticate");
        await r.body?.cancel().catch(() => {});
        if (challenge !== null && (await this.#authorize(challenge, spec))) continue; // the auth round is not a retry
        throw await statusError(this.ref, spec.method, spec.what, r, "");
      }
      throw await statusError(this.ref, spec.method, spec.what, r, attempts > 1 ? ` after ${attempts} attempts` : "");
    }
  }

  /** `fetch`, repeated after a network failure, 429 or 5xx while `retries` allow, with backoff. */
  async #send(url: string, init: RequestInit, retries: number, what: string): Promise<{ r: Response; attempts: number }> {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(this.#options.signal);
      let r: Response;
      try {
        r = await this.#fetch(url, { ...init, signal: this.#options.signal });
      } catch (e) {
        if (this.#options.signal?.aborted) throw abortError(this.#options.signal);
        if (attempt < retries) {
          await sleep(backoffMs(this.#options, attempt, null), this.#options.signal);
          continue;
        }
        throw this.#network(what, e);
      }
      if ((r.status === 429 || r.status >= 500) && attempt < retries) {
        const wait = backoffMs(this.#options, attempt, r.headers.get("retry-after"));
        await r.body?.cancel().catch(() => {});
        await sleep(wait, this.#options.signal);
        continue;
      }
      return { r, attempts: attempt + 1 };
    }
  }

  #scopeKey(spec: RequestSpec): string {
    return [`repository:${this.ref.repository}:${spec.scope}`, ...(spec.also ?? []).map((r) => `repository:${r}:pull`)].join(" ");
  }

  #authFor(spec: RequestSpec): string | null {
    if (this.#basic !== null) return this.#basic;
    return this.#auth.get(this.#scopeKey(spec)) ?? (spec.scope === "pull" && !spec.also ? (this.#auth.get(`repository:${this.ref.repository}:pull,push`) ?? null) : null);
  }

  async #creds(): Promise<RegistryCredentials | null> {
    const c = this.#options.credentials;
    this.#credentials ??= Promise.resolve(typeof c === "function" ? c(this.ref.registry) : (c ?? null));
    return this.#credentials;
  }

  /** Answer a challenge: true when an authorization was obtained (the request is to be repeated). */
  async #authorize(challenge: string, spec: RequestSpec): Promise<boolean> {
    const parsed = parseChallenge(challenge);
    if (parsed === null) return false;
    const creds = await this.#creds();
    if (parsed.scheme === "basic") {
      if (creds === null) return false;
      this.#basic = `Basic ${base64(`${creds.username}:${creds.password}`)}`;
      return true;
    }
    const realm = parsed.params.realm;
    if (realm === undefined) return false;
    const q = new URL(realm);
    if (parsed.params.service !== undefined) q.searchParams.set("service", parsed.params.service);
    for (const s of this.#scopeKey(spec).split(" ")) q.searchParams.append("scope", s);
    const headers: Record<string, string> = {};
    if (creds !== null) headers.authorization = `Basic ${base64(`${creds.username}:${creds.password}`)}`;
    const { r } = await this.#send(q.toString(), { headers }, this.#options.retries ?? 4, `token request to ${q.origin}${q.pathname}`);
    if (r.status !== 200) {
      await r.body?.cancel().catch(() => {});
      const reason = r.status === 401 ? "unauthorized" : r.status === 403 ? "denied" : r.status === 429 ? "rate-limited" : r.status >= 500 ? "server" : "protocol";
      throw new RegistryError(
        `${this.ref.text}: the token server ${q.origin}${q.pathname} refused a token for ${spec.scope} access (HTTP ${r.status})${creds === null ? `; ${CREDENTIAL_HINT}` : "; check the credentials given for " + this.ref.registry}`,
        this.ref.text,
        reason,
        r.status,
      );
    }
    const body = await readBounded(r, 1 << 20, () => this.#protocol("the token response is larger than 1 MiB"));
    let token: unknown;
    try {
      const doc = JSON.parse(new TextDecoder().decode(body)) as { token?: unknown; access_token?: unknown };
      token = doc.token ?? doc.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== "string" || token === "") throw this.#protocol(`the token server ${q.origin}${q.pathname} answered without a token`);
    this.#auth.set(this.#scopeKey(spec), `Bearer ${token}`);
    return true;
  }

  #location(r: Response, what: string): string {
    const loc = r.headers.get("location");
    if (loc === null) throw this.#protocol(`${what}: the registry answered HTTP ${r.status} without a Location`);
    return new URL(loc, this.#base + "/").toString();
  }

  #protocol(detail: string): RegistryError {
    return new RegistryError(`${this.ref.text}: ${detail}`, this.ref.text, "protocol");
  }

  #network(what: string, e: unknown): RegistryError | OperationAborted {
    if (e instanceof OperationAborted) return e;
    if (e instanceof RegistryError) return e;
    const detail = e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
    return new RegistryError(`${this.ref.text}: ${what} failed: cannot reach ${this.#base} (${detail})${this.#options.plainHttp ? "" : "; for a registry that speaks plain HTTP use --plain-http, for a private CA --ca-file"}`, this.ref.text, "network", 0, { cause: e });
  }


}
