/**
 * The fault-injecting proxy of ./registry.ts, as a Node program:
 * `node fault-proxy-server.js TARGET_PORT` listens on a free loopback port
 * (printed as "port N"), forwards to 127.0.0.1:TARGET_PORT, and applies the
 * rules set through `PUT /__proxy` (JSON {@link FaultRule}[]); `GET /__proxy`
 * lists the requests seen, `DELETE /__proxy` forgets them.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { FaultRule } from "./registry.js";

const target = Number(process.argv[2]);
let rules: FaultRule[] = [];
const counts = new Map<FaultRule, number>();
let seen: { method: string; path: string; range: string | null }[] = [];

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

function control(req: IncomingMessage, res: ServerResponse): void {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    if (req.method === "PUT") {
      rules = JSON.parse(body);
      counts.clear();
    }
    if (req.method === "DELETE") seen = [];
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.method === "GET" ? seen : {}));
  });
}

function pick(method: string, path: string, range: string | null): FaultRule | null {
  for (const r of rules) {
    if (r.rangeless === true && range !== null) continue;
    if (r.method !== undefined && r.method !== method) continue;
    if (r.pathIncludes !== undefined && !path.includes(r.pathIncludes)) continue;
    if (r.pathEndsWith !== undefined && !path.split("?")[0]!.endsWith(r.pathEndsWith)) continue;
    const n = (counts.get(r) ?? 0) + 1;
    counts.set(r, n);
    if (r.nth === undefined || r.nth === n) return r;
  }
  return null;
}

const server = createServer(async (req, res) => {
  const method = req.method ?? "GET";
  const path = req.url ?? "/";
  if (path === "/__proxy") return control(req, res);
  seen.push({ method, path, range: (req.headers.range as string | undefined) ?? null });
  const fault = pick(method, path, (req.headers.range as string | undefined) ?? null)?.fault ?? null;
  if (fault?.kind === "status") {
    req.resume();
    res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers }).end(fault.body ?? "");
    return;
  }
  if (fault?.kind === "kill") {
    try {
      process.kill(fault.pid, "SIGKILL");
    } catch {
      // gone already
    }
    // until its parent (the test) has reaped it, or 5 s
    for (let i = 0; i < 500 && !gone(fault.pid); i++) await new Promise((r) => setTimeout(r, 10));
  }
  const up = request({ host: "127.0.0.1", port: target, method, path, headers: { ...req.headers, host: `127.0.0.1:${target}` } }, (ur) => {
    const headers = { ...ur.headers };
    // Location headers point at the registry itself: send the client back through the proxy
    if (typeof headers.location === "string") headers.location = headers.location.replace(`127.0.0.1:${target}`, `127.0.0.1:${port}`);
    res.writeHead(ur.statusCode ?? 502, headers);
    let sent = 0;
    ur.on("data", (c: Buffer) => {
      if (fault?.kind === "corrupt") {
        const bad = Buffer.from(c);
        bad[0] = bad[0]! ^ 0xff;
        res.write(bad);
      } else if (fault?.kind === "cut" && sent + c.length > fault.after) {
        if (sent > fault.after) return; // cut already
        res.write(c.subarray(0, fault.after - sent));
        ur.destroy();
        // the connection breaks mid-body once what was sent has reached the client: Bun's fetch
        // rejects outright when the socket dies before its body was handed out, which no client can resume
        const socket = res.socket;
        setTimeout(() => socket?.destroy(), 250);
        sent = fault.after + 1;
        return;
      } else {
        res.write(c);
      }
      sent += c.length;
    });
    ur.on("end", () => res.end());
    ur.on("error", () => res.socket?.destroy());
  });
  up.on("error", () => res.socket?.destroy());
  req.pipe(up);
});

let port = 0;
server.listen(0, "127.0.0.1", () => {
  port = (server.address() as { port: number }).port;
  process.stdout.write(`port ${port}\n`);
});
