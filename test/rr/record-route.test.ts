/**
 * record_route* / add_rr_param / remove_record_route and the header text
 * renderRecordRoute produces for the forwarders (RFC 3261 §16.6 step 4,
 * RFC 5658 double Record-Route, Kamailio rr module defaults).
 */
import { describe, expect, it } from "vitest";
import { makeContext, request } from "../helpers/context.js";
import { carryMessageState } from "../../host/core/context.js";
import {
  hasRecordRoute,
  isRecordRouteAdded,
  renderRecordRoute,
  type RecordRouteSocket,
} from "../../host/proxy/record-route.js";
import { coreModule } from "../../host/modules/core.js";
import { caller } from "../modules/call.js";
import { CALLER_TAG, routedRequest, rr } from "./helpers.js";

const core = caller(coreModule);
const UDP: RecordRouteSocket = { proto: "udp", ip: "127.0.0.1", port: 5060 };
const TCP: RecordRouteSocket = { proto: "tcp", ip: "127.0.0.1", port: 5060 };

function invite(extra: Partial<Parameters<typeof request>[0]> = {}): string {
  return request({ method: "INVITE", uri: "sip:bob@10.0.0.9:5062", ...extra });
}

describe("record_route", () => {
  it("adds nothing until the script asks", () => {
    const { ctx } = makeContext(invite());
    expect(hasRecordRoute(ctx)).toBe(false);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([]);
  });

  it("renders one loose-routing header with the From tag when in and out socket are the same", () => {
    const { ctx } = makeContext(invite());
    expect(rr("record_route", ctx)).toBe(1);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([`Record-Route: <sip:127.0.0.1;lr;ftag=${CALLER_TAG}>\r\n`]);
  });

  it("writes the port when it is not 5060 and ;transport for TCP", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    const tcp5080: RecordRouteSocket = { proto: "tcp", ip: "192.0.2.7", port: 5080 };
    expect(renderRecordRoute(ctx, tcp5080, tcp5080)).toEqual([
      `Record-Route: <sip:192.0.2.7:5080;transport=tcp;lr;ftag=${CALLER_TAG}>\r\n`,
    ]);
  });

  it("puts an IPv6 address in brackets", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    const v6: RecordRouteSocket = { proto: "udp", ip: "2001:db8::1", port: 5062 };
    expect(renderRecordRoute(ctx, v6, v6)).toEqual([`Record-Route: <sip:[2001:db8::1]:5062;lr;ftag=${CALLER_TAG}>\r\n`]);
  });

  it("doubles the header on a transport change: outbound side first, both with r2=on (RFC 5658)", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([
      `Record-Route: <sip:127.0.0.1;transport=tcp;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
      `Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
    ]);
  });

  it("doubles the header when only the address or the port changes", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    const other: RecordRouteSocket = { proto: "udp", ip: "198.51.100.1", port: 5060 };
    expect(renderRecordRoute(ctx, other, UDP)).toEqual([
      `Record-Route: <sip:198.51.100.1;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
      `Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
    ]);
    const otherPort: RecordRouteSocket = { proto: "udp", ip: "127.0.0.1", port: 5070 };
    expect(renderRecordRoute(ctx, otherPort, UDP)).toHaveLength(2);
  });

  it("decides single or double per call, so each branch gets what its socket needs", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, TCP, UDP)).toHaveLength(2);
    expect(renderRecordRoute(ctx, UDP, UDP)).toHaveLength(1);
  });

  it("uses sips when the R-URI is sips", () => {
    const { ctx } = makeContext(invite({ uri: "sips:bob@example.org" }));
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, UDP, UDP)[0]).toMatch(/^Record-Route: <sips:127\.0\.0\.1;lr;/);
  });

  it("omits ftag when the From header has no tag", () => {
    const { ctx } = makeContext(invite({ from: "<sip:alice@example.com>" }));
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual(["Record-Route: <sip:127.0.0.1;lr>\r\n"]);
  });

  it("keeps the dialog's caller tag as ftag on an upstream in-dialog request (To tag)", () => {
    // The callee re-INVITEs: its From tag is the dialog's To tag and our
    // Route carries the caller's tag.
    const { ctx } = makeContext(
      routedRequest({
        method: "INVITE",
        uri: "sip:alice@10.0.0.1:5070",
        routes: [`<sip:127.0.0.1;lr;ftag=${CALLER_TAG}>`],
        from: "<sip:bob@example.org>;tag=callee-tag",
        to: `<sip:alice@example.com>;tag=${CALLER_TAG}`,
      }),
    );
    expect(rr("loose_route", ctx)).toBe(1);
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([`Record-Route: <sip:127.0.0.1;lr;ftag=${CALLER_TAG}>\r\n`]);
  });

  it("refuses a second record_route in the same request (Kamailio FL_RR_ADDED)", () => {
    const { ctx, host } = makeContext(invite());
    expect(rr("record_route", ctx)).toBe(1);
    expect(rr("record_route", ctx)).toBe(-1);
    expect(rr("record_route_preset", ctx, "192.0.2.1", "")).toBe(-1);
    expect(host.logs.some((l) => l.level === "err" && l.text.includes("Double attempt to record-route"))).toBe(true);
    expect(renderRecordRoute(ctx, UDP, UDP)).toHaveLength(1);
  });

  it("lets every branch route record-route (the flag is not set there)", () => {
    const { ctx } = makeContext(invite(), { routeType: "branch" });
    expect(rr("record_route", ctx)).toBe(1);
    expect(isRecordRouteAdded(ctx)).toBe(false);
    expect(rr("record_route", ctx)).toBe(1);
  });

  it("is refused for a reply", () => {
    const { ctx } = makeContext(
      "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>;tag=2\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n",
    );
    expect(rr("record_route", ctx)).toBe(-1);
  });

  it("takes record_route_params parameters after ftag", () => {
    const { ctx } = makeContext(invite());
    expect(rr("record_route_params", ctx, ";did=abc;x")).toBe(1);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([`Record-Route: <sip:127.0.0.1;lr;ftag=${CALLER_TAG};did=abc;x>\r\n`]);
  });

  it("advertises set_advertised_address/port on the outbound-side header only", () => {
    const { ctx } = makeContext(invite());
    core("set_advertised_address", ctx, "proxy.example.net");
    core("set_advertised_port", ctx, "5099");
    rr("record_route", ctx);
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([
      `Record-Route: <sip:proxy.example.net:5099;transport=tcp;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
      `Record-Route: <sip:127.0.0.1;r2=on;lr;ftag=${CALLER_TAG}>\r\n`,
    ]);
  });

  it("takes a wildcard-bound socket as the same socket as a concrete address of it", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    const listening: RecordRouteSocket = { proto: "tcp", ip: "0.0.0.0", port: 5060 };
    const connection: RecordRouteSocket = { proto: "tcp", ip: "192.0.2.7", port: 5060 };
    expect(renderRecordRoute(ctx, listening, connection)).toEqual([
      `Record-Route: <sip:192.0.2.7;transport=tcp;lr;ftag=${CALLER_TAG}>\r\n`,
    ]);
  });

  it("writes an IPv4-mapped IPv6 address as plain IPv4", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    const mapped: RecordRouteSocket = { proto: "tcp", ip: "::ffff:192.0.2.7", port: 5060 };
    expect(renderRecordRoute(ctx, mapped, mapped)[0]).toBe(`Record-Route: <sip:192.0.2.7;transport=tcp;lr;ftag=${CALLER_TAG}>\r\n`);
  });

  it("names a wildcard-bound socket by the first alias", () => {
    const { ctx } = makeContext(invite(), { aliases: ["udp:sip.example.com:5060"] });
    rr("record_route", ctx);
    const any: RecordRouteSocket = { proto: "udp", ip: "0.0.0.0", port: 5060 };
    expect(renderRecordRoute(ctx, any, any)).toEqual([`Record-Route: <sip:sip.example.com;lr;ftag=${CALLER_TAG}>\r\n`]);
  });
});

describe("add_rr_param", () => {
  it("keeps parameters given before record_route and appends later ones, on both headers", () => {
    const { ctx } = makeContext(invite());
    expect(rr("add_rr_param", ctx, ";nat=yes")).toBe(1);
    rr("record_route_params", ctx, ";p=1");
    expect(rr("add_rr_param", ctx, ";late=2")).toBe(1);
    const rest = `;lr;ftag=${CALLER_TAG};p=1;nat=yes;late=2>\r\n`;
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([
      `Record-Route: <sip:127.0.0.1;transport=tcp;r2=on${rest}`,
      `Record-Route: <sip:127.0.0.1;r2=on${rest}`,
    ]);
  });

  it("fails when the parameters waiting for record_route exceed 512 bytes", () => {
    const { ctx, host } = makeContext(invite());
    expect(rr("add_rr_param", ctx, ";a=" + "x".repeat(500))).toBe(1);
    expect(rr("add_rr_param", ctx, ";b=" + "y".repeat(20))).toBe(-1);
    expect(host.logs.some((l) => l.text.includes("rr_param_buf"))).toBe(true);
    rr("record_route", ctx);
    const line = renderRecordRoute(ctx, UDP, UDP)[0]!;
    expect(line).toContain(";a=xxx");
    expect(line).not.toContain(";b=");
  });

  it("applies to a context only, not to the next message", () => {
    const first = makeContext(invite());
    rr("add_rr_param", first.ctx, ";nat=yes");
    const second = makeContext(invite(), { host: first.host });
    rr("record_route", second.ctx);
    expect(renderRecordRoute(second.ctx, UDP, UDP)[0]).not.toContain("nat=yes");
  });
});

describe("remove_record_route", () => {
  it("drops the Record-Route asked for and keeps refusing a new one, as Kamailio 5.6", () => {
    const { ctx } = makeContext(invite());
    rr("record_route", ctx);
    rr("add_rr_param", ctx, ";nat=yes");
    expect(rr("remove_record_route", ctx)).toBe(1);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([]);
    expect(rr("record_route", ctx)).toBe(-1);
  });

  it("returns 1 when nothing was asked for", () => {
    const { ctx } = makeContext(invite());
    expect(rr("remove_record_route", ctx)).toBe(1);
  });
});

describe("record_route_preset", () => {
  it("uses the texts verbatim, one header each, ftag before the buffered params and ;lr", () => {
    const { ctx } = makeContext(invite());
    rr("add_rr_param", ctx, ";early=1");
    expect(rr("record_route_preset", ctx, "203.0.113.5:5090;r2=on", "10.1.1.1;transport=tcp;r2=on")).toBe(1);
    expect(rr("add_rr_param", ctx, ";late=2")).toBe(1);
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([
      `Record-Route: <sip:203.0.113.5:5090;r2=on;ftag=${CALLER_TAG};early=1;lr;late=2>\r\n`,
      `Record-Route: <sip:10.1.1.1;transport=tcp;r2=on;ftag=${CALLER_TAG};early=1;lr;late=2>\r\n`,
    ]);
    // The same headers whatever the sockets: the script chose the addresses.
    expect(renderRecordRoute(ctx, UDP, UDP)).toHaveLength(2);
  });

  it("with an empty second address gives one header", () => {
    const { ctx } = makeContext(invite());
    expect(rr("record_route_preset", ctx, "203.0.113.5", "")).toBe(1);
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([`Record-Route: <sip:203.0.113.5;ftag=${CALLER_TAG};lr>\r\n`]);
  });

  it("record_route_preset_one: a later add_rr_param is applied but returns -1, as in Kamailio", () => {
    const { ctx } = makeContext(invite());
    expect(rr("record_route_preset_one", ctx, "203.0.113.5")).toBe(1);
    expect(rr("add_rr_param", ctx, ";nat=yes")).toBe(-1);
    expect(renderRecordRoute(ctx, UDP, UDP)).toEqual([`Record-Route: <sip:203.0.113.5;ftag=${CALLER_TAG};lr;nat=yes>\r\n`]);
  });

  it("sets the record-routed flag even in a branch route", () => {
    const { ctx } = makeContext(invite(), { routeType: "branch" });
    rr("record_route_preset_one", ctx, "203.0.113.5");
    expect(isRecordRouteAdded(ctx)).toBe(true);
    expect(rr("record_route", ctx)).toBe(-1);
  });
});

describe("record_route_advertised_address", () => {
  it("gives one header without transport when the transport does not change", () => {
    const { ctx } = makeContext(invite());
    expect(rr("record_route_advertised_address", ctx, "pub.example.com:5080")).toBe(1);
    const other: RecordRouteSocket = { proto: "udp", ip: "198.51.100.1", port: 5060 };
    expect(renderRecordRoute(ctx, other, UDP)).toEqual([`Record-Route: <sip:pub.example.com:5080;ftag=${CALLER_TAG};lr>\r\n`]);
  });

  it("doubles with each side's transport when it changes", () => {
    const { ctx } = makeContext(invite());
    rr("record_route_advertised_address", ctx, "pub.example.com");
    rr("add_rr_param", ctx, ";nat=yes");
    expect(renderRecordRoute(ctx, TCP, UDP)).toEqual([
      `Record-Route: <sip:pub.example.com;transport=tcp;r2=on;ftag=${CALLER_TAG};lr;nat=yes>\r\n`,
      `Record-Route: <sip:pub.example.com;transport=udp;r2=on;ftag=${CALLER_TAG};lr;nat=yes>\r\n`,
    ]);
  });
});

describe("the Record-Route state carried into failure and branch routes (carryMessageState)", () => {
  it("gives a failure/branch context the request's Record-Route, independently", () => {
    const { ctx, host } = makeContext(invite());
    rr("record_route", ctx);
    const failure = makeContext(invite(), { host, routeType: "failure" }).ctx;
    carryMessageState(ctx, failure, "failure");
    expect(renderRecordRoute(failure, UDP, UDP)).toEqual(renderRecordRoute(ctx, UDP, UDP));
    expect(rr("record_route", failure)).toBe(-1);
    rr("add_rr_param", failure, ";retry=1");
    expect(renderRecordRoute(failure, UDP, UDP)[0]).toContain(";retry=1");
    expect(renderRecordRoute(ctx, UDP, UDP)[0]).not.toContain(";retry=1");
  });

  it("clears the target when the source asked for nothing", () => {
    const { ctx, host } = makeContext(invite());
    const other = makeContext(invite(), { host }).ctx;
    rr("record_route", other);
    carryMessageState(ctx, other, "branch");
    expect(renderRecordRoute(other, UDP, UDP)).toEqual([]);
  });
});
