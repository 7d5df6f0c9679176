/**
 * The control socket server against a fake ControlTarget: the three
 * methods, JSON-RPC 2.0 errors, hostile input, the socket file's life
 * (0600, stale replaced, live refused, removed on close).
 */
import { spawn } from "node:child_process";
import { existsSync, lstatSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setLogLevel, setLogSink, type LogRecord } from "../../host/core/log.js";
import { MAX_REQUEST_LINE_BYTES } from "../../host/control/protocol.js";
import { startControlServer, type ControlServer } from "../../host/control/server.js";
import type { ControlTarget } from "../../host/control/types.js";
import { fakeTarget, RawClient, socketDir, STATUSES } from "./helpers.js";

let dir: ReturnType<typeof socketDir>;
const servers: ControlServer[] = [];
const clients: RawClient[] = [];
const logged: LogRecord[] = [];

beforeEach(() => {
  dir = socketDir();
  logged.length = 0;
  setLogLevel("dbg");
  setLogSink((r) => logged.push(r));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
  setLogSink(undefined);
  setLogLevel("info");
  dir.remove();
});

async function serve(target: ControlTarget, options: Parameters<typeof startControlServer>[2] = {}): Promise<ControlServer> {
  const server = await startControlServer(dir.socket, target, options);
  servers.push(server);
  return server;
}

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(dir.socket);
  clients.push(c);
  return c;
}

/** One request on a fresh connection; its response. */
async function call(request: unknown): Promise<any> {
  const c = await connect();
  c.send(request);
  return c.next();
}

describe("control server methods", () => {
  it("tenants answers the target's statuses with the request id", async () => {
    const target = fakeTarget();
    await serve(target);
    expect(await call({ jsonrpc: "2.0", id: 7, method: "tenants" })).toEqual({ jsonrpc: "2.0", id: 7, result: STATUSES });
    expect(target.calls).toEqual(["tenants"]);
  });

  it("counters answers the target's lines; empty params are accepted", async () => {
    await serve(fakeTarget({ counterLines: ["tenant x: messages=1", "no tenant: requests answered 404=0"] }));
    const expected = ["tenant x: messages=1", "no tenant: requests answered 404=0"];
    expect((await call({ jsonrpc: "2.0", id: "c", method: "counters" })).result).toEqual(expected);
    expect((await call({ jsonrpc: "2.0", id: "d", method: "counters", params: {} })).result).toEqual(expected);
    expect((await call({ jsonrpc: "2.0", id: "e", method: "counters", params: [] })).result).toEqual(expected);
  });

  it("reload: one tenant by name or position, every tenant without params, an unknown tenant as ok:false", async () => {
    const target = fakeTarget();
    await serve(target);
    expect((await call({ jsonrpc: "2.0", id: 1, method: "reload", params: { tenant: "b" } })).result).toEqual([{ tenant: "b", ok: true }]);
    expect((await call({ jsonrpc: "2.0", id: 2, method: "reload", params: ["a"] })).result).toEqual([{ tenant: "a", ok: true }]);
    expect((await call({ jsonrpc: "2.0", id: 3, method: "reload" })).result).toEqual([
      { tenant: "a", ok: true },
      { tenant: "b", ok: true },
    ]);
    expect((await call({ jsonrpc: "2.0", id: 4, method: "reload", params: { tenant: "zz" } })).result).toEqual([
      { tenant: "zz", ok: false, error: 'no tenant "zz"' },
    ]);
    expect(target.calls).toEqual(["reload:b", "reload:a", "reload:*", "reload:zz"]);
  });

  it("logs each reload asked, and its failures", async () => {
    await serve(fakeTarget({ reloadOne: (id) => (id === "b" ? { tenant: id, ok: false, error: "b.js:3:1: SyntaxError" } : { tenant: id, ok: true }) }));
    await call({ jsonrpc: "2.0", id: 1, method: "reload", params: { tenant: "a" } });
    await call({ jsonrpc: "2.0", id: 2, method: "reload" });
    const lines = logged.filter((r) => r.scope === "ctl").map((r) => `${r.level} ${r.text}`);
    expect(lines).toContain("notice reload of tenant a asked on the control socket");
    expect(lines).toContain("notice reload of tenant a: 1 tenant(s) reloaded");
    expect(lines).toContain("notice reload of every tenant asked on the control socket");
    expect(lines).toContain("err reload of every tenant: failed for b; their previous scripts keep running");
  });
});

describe("control server errors", () => {
  it("unknown method: -32601 naming it, with the request id", async () => {
    await serve(fakeTarget());
    const r = await call({ jsonrpc: "2.0", id: 9, method: "shutdown" });
    expect(r.id).toBe(9);
    expect(r.error.code).toBe(-32601);
    expect(r.error.message).toContain('"shutdown"');
    expect(r.result).toBeUndefined();
  });

  it("malformed JSON: -32700 with id null, and the connection keeps serving", async () => {
    await serve(fakeTarget());
    const c = await connect();
    c.write('{"jsonrpc":"2.0","id":1,"method":\n');
    const r = await c.next();
    expect(r).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    c.send({ jsonrpc: "2.0", id: 2, method: "counters" });
    expect((await c.next()).id).toBe(2);
  });

  it("bad params: -32602", async () => {
    await serve(fakeTarget());
    for (const params of [{ tenant: 5 }, { tenant: "" }, { tenant: "a", force: true }, ["a", "b"], "a"]) {
      const r = await call({ jsonrpc: "2.0", id: 1, method: "reload", params });
      expect(r.error?.code, JSON.stringify(params)).toBe(-32602);
    }
    expect((await call({ jsonrpc: "2.0", id: 1, method: "tenants", params: { tenant: "a" } })).error.code).toBe(-32602);
    expect((await call({ jsonrpc: "2.0", id: 1, method: "counters", params: [1] })).error.code).toBe(-32602);
  });

  it("invalid requests: -32600", async () => {
    await serve(fakeTarget());
    for (const request of [42, "tenants", null, { id: 1, method: "tenants" }, { jsonrpc: "1.0", id: 1, method: "tenants" }, { jsonrpc: "2.0", id: 1, method: 3 }, { jsonrpc: "2.0", id: {}, method: "tenants" }, []]) {
      const r = await call(request);
      expect(r.error?.code, JSON.stringify(request)).toBe(-32600);
    }
  });

  it("a target that throws: -32603 with its message, and the server keeps serving", async () => {
    const target = fakeTarget();
    await serve({
      ...target,
      async counters() {
        throw new Error("worker gone");
      },
      async tenants() {
        return [{ id: "big", size: 10n }] as never;
      },
    });
    expect((await call({ jsonrpc: "2.0", id: 1, method: "counters" })).error).toEqual({ code: -32603, message: "Internal error: worker gone" });
    expect((await call({ jsonrpc: "2.0", id: 2, method: "tenants" })).error.code).toBe(-32603);
    expect((await call({ jsonrpc: "2.0", id: 3, method: "reload" })).result).toHaveLength(2);
  });

  it("binary garbage and NULs are refused with -32700, not a crash", async () => {
    await serve(fakeTarget());
    const c = await connect();
    c.write(Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a]));
    expect((await c.next()).error.code).toBe(-32700);
    c.write("\u0000\u0000\n");
    expect((await c.next()).error.code).toBe(-32700);
    c.send({ jsonrpc: "2.0", id: 1, method: "tenants" });
    expect((await c.next()).result).toEqual(STATUSES);
  });
});

describe("control server framing", () => {
  it("several requests on one connection are answered in order, even when the first takes longest", async () => {
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const target = fakeTarget({
      reloadOne: async (id) => {
        if (id === "a") await slow;
        return { tenant: id, ok: true };
      },
    });
    await serve(target);
    const c = await connect();
    c.write(
      [
        { jsonrpc: "2.0", id: 1, method: "reload", params: { tenant: "a" } },
        { jsonrpc: "2.0", id: 2, method: "reload", params: { tenant: "b" } },
        { jsonrpc: "2.0", id: 3, method: "counters" },
      ]
        .map((r) => JSON.stringify(r) + "\n")
        .join(""),
    );
    expect(await c.nothingWithin(100)).toBe(true);
    // Not yet started: requests are handled one at a time.
    expect(target.calls).toEqual(["reload:a"]);
    release();
    expect((await c.next()).id).toBe(1);
    expect((await c.next()).id).toBe(2);
    expect((await c.next()).id).toBe(3);
  });

  it("a notification is run but not answered; blank lines are ignored", async () => {
    const target = fakeTarget();
    await serve(target);
    const c = await connect();
    c.write(JSON.stringify({ jsonrpc: "2.0", method: "reload", params: { tenant: "a" } }) + "\n\r\n  \n");
    c.send({ jsonrpc: "2.0", id: "after", method: "tenants" });
    expect((await c.next()).id).toBe("after");
    expect(target.calls).toEqual(["reload:a", "tenants"]);
  });

  it("a batch is answered in one array, without the notifications", async () => {
    await serve(fakeTarget());
    const r = await call([
      { jsonrpc: "2.0", id: 1, method: "counters" },
      { jsonrpc: "2.0", method: "counters" },
      { jsonrpc: "2.0", id: 2, method: "nope" },
    ]);
    expect(Array.isArray(r)).toBe(true);
    expect(r.map((x: { id: unknown }) => x.id)).toEqual([1, 2]);
    expect(r[1].error.code).toBe(-32601);
  });

  it("a line of exactly the limit is read; one byte more closes the connection with an error", async () => {
    await serve(fakeTarget());
    const request = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "counters" });
    const c = await connect();
    c.write(request + " ".repeat(MAX_REQUEST_LINE_BYTES - request.length) + "\n");
    expect((await c.next()).id).toBe(1);

    const long = await connect();
    long.write(request + " ".repeat(MAX_REQUEST_LINE_BYTES - request.length + 1) + "\n");
    const r = await long.next();
    expect(r).toMatchObject({ id: null, error: { code: -32600 } });
    expect(r.error.message).toContain(`longer than ${MAX_REQUEST_LINE_BYTES} bytes`);
    await long.closedWithin();
    expect(logged.some((l) => l.level === "warn" && l.text.includes("longer than"))).toBe(true);
    // Others are still served.
    expect((await call({ jsonrpc: "2.0", id: 5, method: "counters" })).id).toBe(5);
  });

  it("an endless line without a newline is cut off once over the limit, not buffered", async () => {
    await serve(fakeTarget(), { maxLineBytes: 1024 });
    const c = await connect();
    for (let i = 0; i < 50 && !c.closed; i++) c.write("x".repeat(512));
    expect((await c.next()).error.code).toBe(-32600);
    await c.closedWithin();
  });

  it("a last request without newline is answered when the client shuts down its side", async () => {
    await serve(fakeTarget());
    const c = await connect();
    c.socket.end(JSON.stringify({ jsonrpc: "2.0", id: 11, method: "counters" }));
    expect((await c.next()).id).toBe(11);
    await c.closedWithin();
  });

  it("an idle connection is closed after the idle timeout", async () => {
    await serve(fakeTarget(), { idleTimeoutMs: 100 });
    const c = await connect();
    await c.closedWithin(2000);
  });
});

describe("control socket file", () => {
  it("is created with mode 0600 without changing the process umask, and removed on close", async () => {
    const umask = process.umask();
    const server = await startControlServer(dir.socket, fakeTarget());
    expect(process.umask()).toBe(umask);
    const stats = lstatSync(dir.socket);
    expect(stats.isSocket()).toBe(true);
    expect(stats.mode & 0o777).toBe(0o600);
    await server.close();
    expect(existsSync(dir.socket)).toBe(false);
  });

  it("close() removes the file before it settles and closes open connections", async () => {
    const server = await startControlServer(dir.socket, fakeTarget());
    const c = await connect();
    const closing = server.close();
    expect(existsSync(dir.socket)).toBe(false);
    await closing;
    await c.closedWithin();
    await server.close();
  });

  it("replaces a stale socket file nothing listens on", async () => {
    // A process that dies by SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(dir.socket)}, () => console.log("up"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`listener exited with ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(lstatSync(dir.socket).isSocket()).toBe(true);

    await serve(fakeTarget());
    expect((await call({ jsonrpc: "2.0", id: 1, method: "counters" })).id).toBe(1);
    expect(logged.some((l) => l.text.includes(`removing stale control socket ${dir.socket}`))).toBe(true);
  });

  it("refuses a socket another server answers on, naming the path, and leaves it alone", async () => {
    const other = net.createServer((s) => s.end());
    await new Promise<void>((r) => other.listen(dir.socket, r));
    try {
      await expect(startControlServer(dir.socket, fakeTarget())).rejects.toThrow(`another server is already listening on ${dir.socket}`);
      const answered = await new Promise<boolean>((resolve) => {
        const s = net.createConnection(dir.socket, () => resolve(true));
        s.on("error", () => resolve(false));
      });
      expect(answered).toBe(true);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it("refuses to replace a file that is not a socket", async () => {
    writeFileSync(dir.socket, "precious");
    await expect(startControlServer(dir.socket, fakeTarget())).rejects.toThrow(`${dir.socket} exists and is not a socket`);
    expect(statSync(dir.socket).isFile()).toBe(true);
  });

  it("refuses a path longer than a Unix socket path may be", async () => {
    const long = `${dir.dir}/${"s".repeat(120)}.ctl`;
    await expect(startControlServer(long, fakeTarget())).rejects.toThrow("longer than the");
  });
});
