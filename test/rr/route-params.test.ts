/**
 * check_route_param / is_direction: the parameters of the Route value that
 * names this proxy (the Record-Route URI parameters mirrored by the UAs,
 * RFC 3261 §12.1.1), as Kamailio's rr module exposes them.
 */
import { describe, expect, it } from "vitest";
import { makeContext } from "../helpers/context.js";
import { CALLER_TAG, routedRequest, rr } from "./helpers.js";

const CALLEE_FROM = "<sip:bob@example.org>;tag=to-tag-2";
const CALLER_TO = `"Alice" <sip:alice@example.com>;tag=${CALLER_TAG}`;

describe("check_route_param", () => {
  const ours = `<sip:127.0.0.1;lr;ftag=${CALLER_TAG};nat=yes>`;

  it("matches a regex against our Route's parameters (after loose_route)", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [ours] }));
    expect(rr("loose_route", ctx)).toBe(1);
    expect(rr("check_route_param", ctx, "nat=yes")).toBe(1);
    expect(rr("check_route_param", ctx, "^;lr;ftag=")).toBe(1);
    expect(rr("check_route_param", ctx, "NAT=YES")).toBe(1);
    expect(rr("check_route_param", ctx, "nat=no")).toBe(-1);
  });

  it("reads the topmost Route when it is ours even without loose_route", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [ours] }));
    expect(rr("check_route_param", ctx, "nat=yes")).toBe(1);
  });

  it("is -1 when the topmost Route is not ours, when there is none, and for an empty parameter list", () => {
    const foreign = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:p2.example.com;lr;nat=yes>"] })).ctx;
    expect(rr("loose_route", foreign)).toBe(1);
    expect(rr("check_route_param", foreign, "nat=yes")).toBe(-1);
    const none = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [] })).ctx;
    expect(rr("check_route_param", none, ".*")).toBe(-1);
    const bare = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: ["<sip:127.0.0.1>"] })).ctx;
    expect(rr("check_route_param", bare, ".*")).toBe(-1);
  });

  it("logs and returns -1 for a pattern that backtracks without end on the Route's parameters", () => {
    const crafted = `<sip:127.0.0.1;lr;ftag=${CALLER_TAG};x=${"a".repeat(40)}!>`;
    const { ctx, host } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [crafted] }));
    expect(rr("check_route_param", ctx, "x=(a+)+$")).toBe(-1);
    expect(host.logs.some((l) => l.level === "err" && /took longer than/.test(l.text))).toBe(true);
  });

  it("logs and returns -1 for an expression that does not compile", () => {
    const { ctx, host } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [ours] }));
    expect(rr("check_route_param", ctx, "(nat")).toBe(-1);
    expect(host.logs.some((l) => l.level === "err" && l.text.includes("bad re"))).toBe(true);
  });
});

describe("is_direction", () => {
  it("is downstream for a request from the caller (From tag = ftag)", () => {
    const { ctx } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [`<sip:127.0.0.1;lr;ftag=${CALLER_TAG}>`] }));
    rr("loose_route", ctx);
    expect(rr("is_direction", ctx, "downstream")).toBe(1);
    expect(rr("is_direction", ctx, "upstream")).toBe(-1);
  });

  it("is upstream for a request from the callee", () => {
    const { ctx } = makeContext(
      routedRequest({
        uri: "sip:alice@10.0.0.1",
        routes: [`<sip:127.0.0.1;lr;ftag=${CALLER_TAG}>`],
        from: CALLEE_FROM,
        to: CALLER_TO,
      }),
    );
    rr("loose_route", ctx);
    expect(rr("is_direction", ctx, "upstream")).toBe(1);
    expect(rr("is_direction", ctx, "UpStream")).toBe(1);
    expect(rr("is_direction", ctx, "downstream")).toBe(-1);
  });

  it("reads the ftag among other parameters and ignores an ftag without value", () => {
    const withOthers = makeContext(
      routedRequest({
        uri: "sip:alice@10.0.0.1",
        routes: [`<sip:127.0.0.1;lr;nat=yes;ftag=${CALLER_TAG};did=7>`],
        from: CALLEE_FROM,
        to: CALLER_TO,
      }),
    ).ctx;
    expect(rr("is_direction", withOthers, "upstream")).toBe(1);
    const flagOnly = makeContext(
      routedRequest({ uri: "sip:alice@10.0.0.1", routes: ["<sip:127.0.0.1;lr;ftag>"], from: CALLEE_FROM, to: CALLER_TO }),
    ).ctx;
    expect(rr("is_direction", flagOnly, "downstream")).toBe(1);
  });

  it("defaults to downstream without an ftag", () => {
    const { ctx } = makeContext(
      routedRequest({ uri: "sip:alice@10.0.0.1", routes: ["<sip:127.0.0.1;lr>"], from: CALLEE_FROM, to: CALLER_TO }),
    );
    rr("loose_route", ctx);
    expect(rr("is_direction", ctx, "downstream")).toBe(1);
  });

  it("returns -6 (E_CFG) for an unknown direction", () => {
    const { ctx, host } = makeContext(routedRequest({ uri: "sip:bob@10.0.0.9", routes: [] }));
    expect(rr("is_direction", ctx, "sideways")).toBe(-6);
    expect(host.logs.some((l) => l.text.includes("unknown direction"))).toBe(true);
  });
});
