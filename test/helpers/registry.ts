/**
 * Real registries for the tests: CNCF distribution (`docker-registry serve`)
 * on a loopback port with filesystem storage in a temporary directory, plain
 * HTTP, HTTPS with htpasswd Basic auth (a CA and server certificate made by
 * `openssl` here), or token auth (with the minimal token server below); and a
 * fault-injecting HTTP proxy in front of one.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createSign, createHash, X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free loopback port (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.on("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Certificates made by openssl: a CA, a server certificate for 127.0.0.1/localhost signed by it, and a token signing certificate. */
export interface Pki {
  readonly dir: string;
  readonly caPem: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly tokenCert: string;
  readonly tokenKey: string;
}

export function makePki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ossl("req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-subj", "/CN=snapbundle test CA", "-days", "2");
  ossl("req", "-new", ...ec, "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost");
  writeFileSync(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ossl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf"));
  ossl("req", "-x509", ...ec, "-keyout", p("token.key"), "-out", p("token.pem"), "-subj", "/CN=snapbundle test token issuer", "-days", "2");
  return { dir, caPem: p("ca.pem"), serverCert: p("server.pem"), serverKey: p("server.key"), tokenCert: p("token.pem"), tokenKey: p("token.key") };
}

export interface RegistryConfig {
  readonly tls?: { cert: string; key: string };
  /** Path of an htpasswd file (bcrypt). */
  readonly htpasswd?: string;
  readonly token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
}

/** A running distribution registry. */
export class Registry {
  #child: ChildProcess | null = null;
  #log = "";
  readonly root: string;
  readonly data: string;
  constructor(readonly port: number, readonly config: RegistryConfig) {
    this.root = mkdtempSync(join(tmpdir(), "snapbundle-registry-"));
    this.data = join(this.root, "data");
    const lines = [
      "version: 0.1",
      "log:",
      "  level: info",
      "  accesslog:",
      "    disabled: false",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${this.data}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      ...(config.tls ? ["  tls:", `    certificate: ${config.tls.cert}`, `    key: ${config.tls.key}`] : []),
      ...(config.htpasswd ? ["auth:", "  htpasswd:", "    realm: snapbundle-test", `    path: ${config.htpasswd}`] : []),
      ...(config.token
        ? ["auth:", "  token:", `    realm: ${config.token.realm}`, `    service: ${config.token.service}`, `    issuer: ${config.token.issuer}`, `    rootcertbundle: ${config.token.rootcertbundle}`]
        : []),
    ];
    writeFileSync(join(this.root, "config.yml"), lines.join("\n") + "\n");
  }

  /** `host:port` */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(config: RegistryConfig = {}): Promise<Registry> {
    const r = new Registry(await freePort(), config);
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    const child = spawn("docker-registry", ["serve", join(this.root, "config.yml")], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (c: Uint8Array) => (this.#log += new TextDecoder().decode(c)));
    child.stderr!.on("data", (c: Uint8Array) => (this.#log += new TextDecoder().decode(c)));
    this.#child = child;
    await waitForPort(this.port);
  }

  /** The access log so far: one line per request (`"PATCH /v2/… HTTP/1.1" 202`). */
  get log(): string {
    return this.#log;
  }

  /** Access-log request lines matching `method` (and `path` substring) since log offset `from`. */
  requests(method: string, from = 0, path = ""): string[] {
    return this.#log.slice(from).split("\n").filter((l) => l.includes(`"${method} /v2/`) && l.includes(path));
  }

  /** Blob files in the storage directory (digests). */
  blobs(): string[] {
    const out: string[] = [];
    const dir = join(this.data, "docker/registry/v2/blobs/sha256");
    let prefixes: string[];
    try {
      prefixes = execFileSync("ls", [dir], { encoding: "utf8" }).split("\n").filter(Boolean);
    } catch {
      return [];
    }
    for (const p of prefixes) for (const h of execFileSync("ls", [join(dir, p)], { encoding: "utf8" }).split("\n").filter(Boolean)) out.push(`sha256:${h}`);
    return out;
  }

  /** The registry process's pid (for a proxy rule that kills it). */
  get pid(): number {
    return this.#child!.pid!;
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.on("exit", () => resolve());
      c.kill("SIGKILL");
    });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** An htpasswd file (bcrypt, as distribution requires) made by `htpasswd`. */
export function htpasswdFile(dir: string, user: string, password: string): string {
  const path = join(dir, "htpasswd");
  writeFileSync(path, execFileSync("htpasswd", ["-Bbn", user, password], { encoding: "utf8" }));
  return path;
}

const b64url = (b: Uint8Array | string) => Buffer.from(b).toString("base64").replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

/**
 * A minimal token server for distribution's token auth: Basic credentials
 * checked against `users`; a JWT (ES256, the signing certificate in `x5c`)
 * granting the scopes asked for (`pull` only for users in `readOnly`).
 * Records each request's scopes.
 */
export class TokenServer {
  readonly requests: { user: string | null; scopes: string[] }[] = [];
  #server: Server | null = null;
  port = 0;
  constructor(readonly pki: Pki, readonly service: string, readonly issuer: string, readonly users: Record<string, string>, readonly readOnly: readonly string[] = []) {}

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  async start(): Promise<void> {
    const certDer = new X509Certificate(readFileSync(this.pki.tokenCert)).raw;
    const key = readFileSync(this.pki.tokenKey, "utf8");
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const scopes = url.searchParams.getAll("scope");
      const auth = req.headers.authorization ?? "";
      let user: string | null = null;
      if (auth.startsWith("Basic ")) {
        const [u, ...rest] = Buffer.from(auth.slice(6), "base64").toString().split(":");
        if (this.users[u!] !== rest.join(":")) {
          this.requests.push({ user: u!, scopes });
          res.writeHead(401, { "content-type": "application/json" }).end('{"details":"bad credentials"}');
          return;
        }
        user = u!;
      }
      this.requests.push({ user, scopes });
      const access = user === null ? [] : scopes.map((s) => {
        const [type, name, actions] = s.split(":");
        const allowed = actions!.split(",").filter((a) => a === "pull" || !this.readOnly.includes(user!));
        return { type, name, actions: allowed };
      });
      const now = Math.floor(Date.now() / 1000);
      const header = { typ: "JWT", alg: "ES256", x5c: [Buffer.from(certDer).toString("base64")] };
      const claims = { iss: this.issuer, sub: user ?? "", aud: this.service, exp: now + 300, nbf: now - 10, iat: now, jti: createHash("sha256").update(String(Math.random())).digest("hex").slice(0, 16), access };
      const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
      const sig = createSign("SHA256").update(signing).sign({ key, dsaEncoding: "ieee-p1363" });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `${signing}.${b64url(sig)}` }));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", () => resolve()));
    this.port = (this.#server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

/** What a {@link FaultProxy} does to one request: answer it itself, damage the response, cut it, or SIGKILL a process first. */
export type Fault =
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  | { kind: "corrupt" }
  | { kind: "cut"; after: number }
  | { kind: "kill"; pid: number };

/** Which requests a fault applies to: all matching, or only the `nth` (1-based) matching one. */
export interface FaultRule {
  readonly method?: string;
  readonly pathIncludes?: string;
  readonly pathEndsWith?: string;
  readonly nth?: number;
  /** Only requests without a Range header. */
  readonly rangeless?: boolean;
  readonly fault: Fault;
}

/**
 * An HTTP proxy in front of a plain-HTTP registry, run by Node in its own
 * process (./fault-proxy-server.ts) whatever runtime the suite runs on, so
 * that a cut connection is cut the same way for every client. Rules and the
 * requests seen (method, path, Range) go through its control endpoint.
 */
export class FaultProxy {
  #child: ChildProcess | null = null;
  port = 0;
  constructor(readonly target: number) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const script = new URL("./fault-proxy-server.js", import.meta.url).pathname;
    const child = spawn("node", [script, String(this.target)], { stdio: ["ignore", "pipe", "inherit"] });
    this.#child = child;
    this.port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (c: Uint8Array) => {
        out += new TextDecoder().decode(c);
        const m = /^port (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`the fault proxy exited (${code}) before listening`)));
    });
  }

  async #control(method: string, body?: unknown): Promise<unknown> {
    const r = await fetch(`http://${this.host}/__proxy`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
    return r.json();
  }

  /** Replace the rules (an empty list passes everything). */
  async rules(rules: readonly FaultRule[]): Promise<void> {
    await this.#control("PUT", rules);
  }

  /** The requests seen since the last {@link clearSeen}. */
  async seen(): Promise<{ method: string; path: string; range: string | null }[]> {
    return (await this.#control("GET")) as { method: string; path: string; range: string | null }[];
  }

  async clearSeen(): Promise<void> {
    await this.#control("DELETE");
  }

  async stop(): Promise<void> {
    const c = this.#child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.on("exit", () => resolve());
      c.kill("SIGKILL");
    });
  }
}
