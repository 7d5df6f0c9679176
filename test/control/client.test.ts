/**
 * callControl's answers and errors, and `ksr ctl`'s output (runCtl) against
 * a control server with a fake target.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setLogSink } from "../../host/core/log.js";
import { callControl, ControlError } from "../../host/control/client.js";
import { startControlServer, type ControlServer } from "../../host/control/server.js";
import { formatTenantTable, runCtl, type CtlRequest } from "../../host/cli/ctl.js";
import { fakeTarget, socketDir, STATUSES, type FakeTargetOptions } from "./helpers.js";

let dir: ReturnType<typeof socketDir>;
const closers: (() => Promise<void>)[] = [];

beforeEach(() => {
  dir = socketDir();
  setLogSink(() => {});
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  setLogSink(undefined);
  dir.remove();
});

async function serve(opts: FakeTargetOptions = {}): Promise<ControlServer> {
  const server = await startControlServer(dir.socket, fakeTarget(opts));
  closers.push(() => server.close());
  return server;
}

/** A plain socket server on the path that does `onConnection` with each client. */
async function rogue(onConnection: (socket: net.Socket) => void): Promise<void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    onConnection(socket);
  });
  await new Promise<void>((r) => server.listen(dir.socket, r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
}

async function rejection(promise: Promise<unknown>): Promise<ControlError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ControlError);
    return err as ControlError;
  }
  throw new Error("expected a rejection");
}

describe("callControl", () => {
  it("resolves with the method's result", async () => {
    await serve();
    expect(await callControl(dir.socket, "tenants")).toEqual(STATUSES);
    expect(await callControl(dir.socket, "reload", { tenant: "b" })).toEqual([{ tenant: "b", ok: true }]);
  });

  it("no socket file: says no ksr server listens there and how to start one", async () => {
    const err = await rejection(callControl(dir.socket, "tenants"));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toBe(`no ksr server is listening on ${dir.socket} (is it running with --control ${dir.socket}?)`);
  });

  it("a stale socket file (its server gone): the same message", async () => {
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(dir.socket)}, () => console.log("up"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const err = await rejection(callControl(dir.socket, "tenants"));
    expect(err.message).toBe(`no ksr server is listening on ${dir.socket} (is it running with --control ${dir.socket}?)`);
  });

  it("a server that does not answer: a timeout error", async () => {
    await rogue(() => {});
    const err = await rejection(callControl(dir.socket, "tenants", undefined, { timeoutMs: 150 }));
    expect(err.kind).toBe("timeout");
    expect(err.message).toBe(`no answer from the ksr server on ${dir.socket} within 150 ms`);
  });

  it("a JSON-RPC error: kind rpc with the code and message", async () => {
    await serve();
    const err = await rejection(callControl(dir.socket, "restart"));
    expect(err.kind).toBe("rpc");
    expect(err.rpcError?.code).toBe(-32601);
    expect(err.message).toContain("JSON-RPC error -32601");
    expect(err.message).toContain('"restart"');
  });

  it("a server that closes without answering, or answers garbage: protocol errors", async () => {
    await rogue((s) => s.destroy());
    expect((await rejection(callControl(dir.socket, "tenants"))).message).toBe(`the ksr server on ${dir.socket} closed the connection without answering`);
    for (const close of closers.splice(0)) await close();
    await rogue((s) => s.end("hello\n"));
    const err = await rejection(callControl(dir.socket, "tenants"));
    expect(err.kind).toBe("protocol");
    expect(err.message).toContain("not JSON: hello");
  });
});

describe("runCtl", () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } };
  }

  async function ctl(request: CtlRequest, json = false) {
    const o = io();
    const code = await runCtl(request, { control: dir.socket, json, timeoutMs: 3000 }, o.io);
    return { code, out: o.out.join(""), err: o.err.join("") };
  }

  it("tenants: an aligned table", async () => {
    await serve();
    const r = await ctl({ action: "tenants" });
    expect(r.code).toBe(0);
    expect(r.out.split("\n")).toEqual([
      "TENANT  STATE       ISOLATION   MODE   PID   RESTARTS  SCRIPT",
      "a       running     in-process  sync   4242  -         /srv/a.js",
      "b       restarting  process     async  4343  2         /srv/b.js",
      "",
    ]);
    expect(formatTenantTable([])).toBe("TENANT  STATE  ISOLATION  MODE  PID  RESTARTS  SCRIPT\n");
    // A tenant with a pool of workers: one row per worker, named by its index.
    const pool = (worker: number, pid: number) => ({ id: "p", worker, script: "/srv/p.js", isolation: "process" as const, state: "running", pid, restarts: 0 });
    expect(formatTenantTable([pool(0, 11), pool(1, 12)]).split("\n").slice(1, 3)).toEqual([
      "p#0     running  process    -     11   0         /srv/p.js",
      "p#1     running  process    -     12   0         /srv/p.js",
    ]);
  });

  it("counters: the lines; --json: the raw result", async () => {
    await serve({ counterLines: ["tenant a: messages=3"] });
    expect(await ctl({ action: "counters" })).toEqual({ code: 0, out: "tenant a: messages=3\n", err: "" });
    const json = await ctl({ action: "counters" }, true);
    expect(JSON.parse(json.out)).toEqual(["tenant a: messages=3"]);
  });

  it("reload: exit 0 when every tenant reloaded, 1 with the error on stderr when one failed", async () => {
    await serve({ reloadOne: (id) => (id === "b" ? { tenant: id, ok: false, error: "/srv/b.js:3:4: SyntaxError: Unexpected token" } : { tenant: id, ok: true }) });
    expect(await ctl({ action: "reload", tenant: "a" })).toEqual({ code: 0, out: "tenant a: reloaded\n", err: "" });
    expect(await ctl({ action: "reload" })).toEqual({
      code: 1,
      out: "tenant a: reloaded\n",
      err: "tenant b: reload failed: /srv/b.js:3:4: SyntaxError: Unexpected token\n",
    });
    const json = await ctl({ action: "reload", tenant: "b" }, true);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toEqual([{ tenant: "b", ok: false, error: "/srv/b.js:3:4: SyntaxError: Unexpected token" }]);
  });

  it("no server: exit 1 with the client's message", async () => {
    const r = await ctl({ action: "counters" });
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toBe(`ksr ctl: no ksr server is listening on ${dir.socket} (is it running with --control ${dir.socket}?)\n`);
  });

  it("an answer of the wrong shape: exit 1, not a crash", async () => {
    await rogue((s) => s.end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { not: "a list" } }) + "\n"));
    const r = await ctl({ action: "tenants" });
    expect(r.code).toBe(1);
    expect(r.err).toContain("unexpected answer from the server");
  });
});
