/**
 * The core KSR send settings do what they say on the wire (Kamailio's send
 * flags and set_advertised_*): set_forward_close / set_forward_no_connect
 * change how a forwarded request uses TCP, set_reply_close how a reply
 * does, and set_advertised_address/port what our Via says. The routes call
 * the core module's own functions on the real server and sockets.
 */
import { describe, expect, it } from "vitest";
import { HostRouteRunner, startServer, type HostRoutes, type RunningServer } from "./harness.js";
import { TcpListenerPeer, buildRequest, headerValue, headerValues, statusOf } from "./sip-client.js";
import { testbed } from "./testbed.js";
import { coreModule } from "../../host/modules/core.js";
import type { MessageContext } from "../../host/core/context.js";

const bed = testbed();
const { udpPeer, tcpPeer, closeAfter } = bed;

async function serve(routes: HostRoutes): Promise<RunningServer> {
  return bed.serve(await startServer(new HostRouteRunner(routes)));
}

/** Calls a core KSR function as the bridge would. */
function core(name: string, ctx: MessageContext, ...args: unknown[]): unknown {
  return coreModule.functions[name]!.run(ctx, ...args);
}

describe("set_forward_close / set_forward_no_connect", () => {
  it("set_forward_close: the TCP connection the request went out on is closed after it", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        core("set_forward_close", ctx);
        ctx.host.forward(ctx);
      },
    });
    const caller = await udpPeer();
    const listener = await TcpListenerPeer.open();
    closeAfter(() => listener.close());
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${listener.port};transport=tcp`, viaPort: caller.port }), srv.udpPort);
    const conn = await listener.nextConnection();
    closeAfter(() => conn.close());
    expect(headerValue(await conn.next(), "call-id")).toBeDefined();
    await conn.waitClosed();
  });

  it("set_forward_no_connect: without an open connection the forward fails and no connection is opened", async () => {
    const results: boolean[] = [];
    const srv = await serve({
      ksr_request_route: (ctx) => {
        core("set_forward_no_connect", ctx);
        results.push(ctx.host.forward(ctx));
        ctx.host.sendReply(ctx, 200, "done");
      },
    });
    const caller = await udpPeer();
    const listener = await TcpListenerPeer.open();
    closeAfter(() => listener.close());
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${listener.port};transport=tcp`, viaPort: caller.port }), srv.udpPort);
    expect(statusOf((await caller.next()).data)).toBe(200);
    expect(results).toEqual([false]);
    await expect(listener.nextConnection(300)).rejects.toThrow();
  });
});

describe("set_reply_close", () => {
  it("the caller's TCP connection is closed once the reply is written", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        core("set_reply_close", ctx);
        ctx.host.sendReply(ctx, 200, "OK");
      },
    });
    const caller = await tcpPeer(srv.tcpPort);
    await caller.write(buildRequest({ transport: "TCP", viaPort: caller.localPort }));
    expect(statusOf(await caller.next())).toBe(200);
    await caller.waitClosed();
  });
});

describe("set_advertised_address / set_advertised_port", () => {
  it("our Via of a forwarded request carries them (Record-Route did already)", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        core("set_advertised_address", ctx, "proxy.example.com");
        core("set_advertised_port", ctx, "5999");
        ctx.host.forward(ctx);
      },
    });
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port }), srv.udpPort);
    const out = (await callee.next()).data;
    expect(headerValues(out, "via")[0]).toMatch(/^SIP\/2\.0\/UDP proxy\.example\.com:5999;branch=z9hG4bK/);
  });

  it("the port alone keeps the socket's address", async () => {
    const srv = await serve({
      ksr_request_route: (ctx) => {
        core("set_advertised_port", ctx, "5999");
        ctx.host.forward(ctx);
      },
    });
    const caller = await udpPeer();
    const callee = await udpPeer();
    await caller.send(buildRequest({ uri: `sip:bob@127.0.0.1:${callee.port}`, viaPort: caller.port }), srv.udpPort);
    expect(headerValues((await callee.next()).data, "via")[0]).toMatch(/^SIP\/2\.0\/UDP 127\.0\.0\.1:5999;branch=/);
  });
});
