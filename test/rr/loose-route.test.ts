/**
 * loose_route() and friends: Route processing per RFC 3261 §16.4/§16.12 with
 * strict-router interworking (§16.4, §16.6 step 6), RFC 5658 double Route
 * values, and Kamailio 5.6.3's return codes. The proxy listens on
 * 127.0.0.1:5060 (UDP and TCP).
 */
import { describe, expect, it } from "vitest";
import { makeContext } from "../helpers/context.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import type { MessageContext } from "../../host/core/context.js";
import { renderRecordRoute } from "../../host/proxy/record-route.js";
import { topRouteUri } from "../../host/modules/rr.js";
import { routedRequest, rr } from "./helpers.js";

/** The request as it would be forwarded: edits applied, new R-URI on the start line. */
function forwarded(ctx: MessageContext): string {
  return serializeMessage(ctx.msg, ctx.edits, { requestUri: ctx.newRequestUri });
}

function routeLines(text: string): string[] {
  return text.split("\r\n").filter((l) => /^Route:/i.test(l));
}

describe("loose_route: nothing to do", () => {
  it("returns -1 without a Route header and changes nothing", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [] }));
    expect(rr("loose_route", ctx)).toBe(-1);
    expect(ctx.dstUri).toBeUndefined();
    expect(ctx.newRequestUri).toBeUndefined();
    expect(ctx.edits.replaced.size).toBe(0);
    expect(rr("next_hop_route", ctx)).toBe(-1);
  });

  it("returns -1 when a Route value does not parse", () => {
    const { ctx, host } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1;lr"] }));
    expect(rr("loose_route", ctx)).toBe(-1);
    expect(host.logs.some((l) => l.level === "err")).toBe(true);
  });
});

describe("loose_route after a loose router (in dialog)", () => {
  it("removes our Route and sends to the next loose hop via $du, R-URI untouched", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:127.0.0.1;lr;ftag=a>", "<sip:p2.example.com;lr>"] }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(ctx.newRequestUri).toBeUndefined();
    expect(rr("next_hop_route", ctx)).toBe(1);
    const out = forwarded(ctx);
    expect(out.startsWith("BYE sip:bob@10.0.0.9:5062 SIP/2.0\r\n")).toBe(true);
    expect(routeLines(out)).toEqual(["Route: <sip:p2.example.com;lr>"]);
    // Like Kamailio's lumps: reads keep seeing the Route set as received.
    expect(topRouteUri(ctx.msg)).toBe("sip:127.0.0.1;lr;ftag=a");
  });

  it("rewrites a comma-separated Route field without our value", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:bob@10.0.0.9:5062",
        routes: ["<sip:127.0.0.1;lr>, <sip:p2.example.com;lr>,<sip:p3.example.com;lr>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>"]);
  });

  it("leaves a Route field the script removed before removed", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:127.0.0.1;lr>, <sip:p2.example.com;lr>"] }),
    );
    const index = ctx.msg.headers.findIndex((h) => h.key === "route");
    ctx.edits.replaced.set(index, "");
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.edits.replaced.get(index)).toBe("");
  });

  it("with only our Route left returns 1 and leaves the R-URI to decide", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:127.0.0.1;lr>"] }));
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBeUndefined();
    expect(ctx.newRequestUri).toBeUndefined();
    expect(rr("next_hop_route", ctx)).toBe(-1);
    expect(routeLines(forwarded(ctx))).toEqual([]);
  });

  it("routes to a foreign topmost Route without removing it", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"] }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(routeLines(forwarded(ctx))).toHaveLength(2);
    expect(rr("next_hop_route", ctx)).toBe(-1);
  });

  it("takes a maddr parameter as the next hop's address", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:bob@10.0.0.9:5062",
        routes: ["<sip:127.0.0.1;lr>", "<sip:p2.example.com:5070;maddr=10.9.9.9;lr>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:10.9.9.9:5070");
  });

  it("does not take a Route on another port or a GRUU as ours", () => {
    const other = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1:5070;lr>"] })).ctx;
    expect(rr("loose_route", other)).toBe(1);
    expect(other.dstUri).toBe("sip:127.0.0.1:5070;lr");
    const gruu = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1;gr=urn:uuid:1;lr>"] })).ctx;
    expect(rr("loose_route", gruu)).toBe(1);
    expect(gruu.dstUri).toBe("sip:127.0.0.1;gr=urn:uuid:1;lr");
  });

  it("treats a Route without port as port 5060", () => {
    const listen = [{ proto: "udp" as const, ip: "127.0.0.1", port: 5080 }];
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1;lr>"] }), { listen });
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:127.0.0.1;lr");
  });
});

describe("loose_route with our double Route (RFC 5658)", () => {
  it("removes both values, forces the socket of the second and routes to the next", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:bob@10.0.0.9:5062",
        routes: ["<sip:127.0.0.1;r2=on;lr;ftag=a>", "<sip:127.0.0.1;transport=tcp;r2=on;lr;ftag=a>", "<sip:p2.example.com;lr>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.sendSocket).toBe("tcp:127.0.0.1:5060");
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:p2.example.com;lr>"]);
  });

  it("with nothing after the pair returns 1 in dialog and the R-URI decides", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:127.0.0.1;transport=tcp;r2=on;lr>, <sip:127.0.0.1;r2=on;lr>"] }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.sendSocket).toBe("udp:127.0.0.1:5060");
    expect(ctx.dstUri).toBeUndefined();
    expect(routeLines(forwarded(ctx))).toEqual([]);
  });

  it("logs when the second value names no local socket", () => {
    const { ctx, host } = makeContext(
      routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1;r2=on;lr>", "<sip:192.0.2.99;r2=on;lr>"] }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.sendSocket).toBeUndefined();
    expect(host.logs.some((l) => l.level === "warn" && l.text.includes("second RR"))).toBe(true);
  });

  it("recognises the pair record_route rendered on the initial request", () => {
    const initial = makeContext(routedRequest({ method: "INVITE", uri: "sip:bob@10.0.0.9", routes: [], initial: true }));
    rr("record_route", initial.ctx);
    const rrValues = renderRecordRoute(
      initial.ctx,
      { proto: "tcp", ip: "127.0.0.1", port: 5060 },
      { proto: "udp", ip: "127.0.0.1", port: 5060 },
    ).map((line) => line.slice("Record-Route: ".length, -2));
    // The callee's BYE carries the route set in Record-Route order (RFC 3261 §12.1.1).
    const bye = makeContext(
      routedRequest({
        uri: "sip:alice@10.0.0.1:5070",
        routes: rrValues,
        from: "<sip:bob@example.org>;tag=to-tag-2",
        to: '"Alice" <sip:alice@example.com>;tag=from-tag-1',
      }),
    ).ctx;
    expect(rr("loose_route", bye)).toBe(1);
    expect(routeLines(forwarded(bye))).toEqual([]);
    expect(bye.sendSocket).toBe("udp:127.0.0.1:5060");
    expect(rr("is_direction", bye, "upstream")).toBe(1);
  });
});

describe("loose_route towards a strict router (RFC 3261 §16.6 step 6)", () => {
  it("puts the R-URI last in the Route set and the strict router's URI in the R-URI", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:bob@10.0.0.9:5062",
        routes: ["<sip:127.0.0.1;lr>", "<sip:strict.example.com>", "<sip:p3.example.com;lr>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.newRequestUri).toBe("sip:strict.example.com");
    expect(ctx.dstUri).toBeUndefined();
    const out = forwarded(ctx);
    expect(out.startsWith("BYE sip:strict.example.com SIP/2.0\r\n")).toBe(true);
    expect(routeLines(out)).toEqual(["Route: <sip:p3.example.com;lr>", "Route: <sip:bob@10.0.0.9:5062>"]);
  });

  it("handles a foreign strict router on top the same way", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9:5062", routes: ["<sip:strict.example.com>"] }));
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.newRequestUri).toBe("sip:strict.example.com");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:bob@10.0.0.9:5062>"]);
  });
});

describe("loose_route after a strict router (R-URI is ours, RFC 3261 §16.4)", () => {
  it("restores the last Route value as R-URI and sends to the next loose hop", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:127.0.0.1;lr;ftag=from-tag-1;nat=yes",
        routes: ["<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>", "<sip:bob@10.0.0.9:5062>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(ctx.newRequestUri).toBe("sip:bob@10.0.0.9:5062");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:p2.example.com;lr>", "Route: <sip:p3.example.com;lr>"]);
    // The parameters of our URI came back in the R-URI.
    expect(rr("check_route_param", ctx, "nat=yes")).toBe(1);
  });

  it("behaves as a strict router when the next hop is strict too", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:127.0.0.1;lr", routes: ["<sip:strict2.example.com>, <sip:bob@10.0.0.9:5062>"] }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.newRequestUri).toBe("sip:strict2.example.com");
    expect(ctx.dstUri).toBeUndefined();
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:bob@10.0.0.9:5062>"]);
  });

  it("drops our other value of a double pair first and forces its socket", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:127.0.0.1;transport=tcp;r2=on;lr",
        routes: ["<sip:127.0.0.1;r2=on;lr>", "<sip:p2.example.com;lr>", "<sip:bob@10.0.0.9:5062>"],
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.sendSocket).toBe("udp:127.0.0.1:5060");
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(ctx.newRequestUri).toBe("sip:bob@10.0.0.9:5062");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:p2.example.com;lr>"]);
  });

  it("returns -1 when our double value was the only Route", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:127.0.0.1;lr", routes: ["<sip:127.0.0.1;r2=on;lr>"] }));
    expect(rr("loose_route", ctx)).toBe(-1);
  });

  it("loose_route_mode(1) skips the strict-router check", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:127.0.0.1;lr", routes: ["<sip:p2.example.com;lr>", "<sip:bob@10.0.0.9:5062>"] }),
    );
    expect(rr("loose_route_mode", ctx, 1)).toBe(1);
    expect(ctx.dstUri).toBe("sip:p2.example.com;lr");
    expect(ctx.newRequestUri).toBeUndefined();
  });
});

describe("loose_route on initial requests (preloaded Route set)", () => {
  it("returns 1 and routes to a preloaded foreign Route, which stays", () => {
    const { ctx } = makeContext(
      routedRequest({ method: "INVITE", uri: "sip:bob@example.org", routes: ["<sip:edge.example.net;lr>"], initial: true }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:edge.example.net;lr");
    expect(routeLines(forwarded(ctx))).toEqual(["Route: <sip:edge.example.net;lr>"]);
  });

  it("returns -3 when the only preloaded Route is ours, and removes it", () => {
    const { ctx } = makeContext(
      routedRequest({ method: "INVITE", uri: "sip:bob@example.org", routes: ["<sip:127.0.0.1;lr>"], initial: true }),
    );
    expect(rr("loose_route", ctx)).toBe(-3);
    expect(ctx.dstUri).toBeUndefined();
    expect(routeLines(forwarded(ctx))).toEqual([]);
  });

  it("routes to the Route after ours (1)", () => {
    const { ctx } = makeContext(
      routedRequest({
        method: "INVITE",
        uri: "sip:bob@example.org",
        routes: ["<sip:127.0.0.1;lr>", "<sip:edge.example.net;lr>"],
        initial: true,
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:edge.example.net;lr");
  });

  it("does not treat an initial request to our address as after a strict router", () => {
    const { ctx } = makeContext(
      routedRequest({ method: "INVITE", uri: "sip:127.0.0.1", routes: ["<sip:edge.example.net;lr>"], initial: true }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:edge.example.net;lr");
    expect(ctx.newRequestUri).toBeUndefined();
  });

  it("loose_route_preloaded is 1 only for a preloaded Route set of ours", () => {
    const ours = makeContext(
      routedRequest({ method: "INVITE", uri: "sip:bob@example.org", routes: ["<sip:127.0.0.1;lr>"], initial: true }),
    ).ctx;
    expect(rr("loose_route_preloaded", ours)).toBe(1);
    const foreign = makeContext(
      routedRequest({ method: "INVITE", uri: "sip:bob@example.org", routes: ["<sip:edge.example.net;lr>"], initial: true }),
    ).ctx;
    expect(rr("loose_route_preloaded", foreign)).toBe(-1);
    const inDialog = makeContext(routedRequest({ uri: "sip:bob@example.org", routes: ["<sip:127.0.0.1;lr>"] })).ctx;
    expect(rr("loose_route_preloaded", inDialog)).toBe(-1);
  });
});
