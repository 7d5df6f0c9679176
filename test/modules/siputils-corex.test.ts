import { describe, expect, it } from "vitest";
import { siputilsModule } from "../../host/modules/siputils.js";
import { corexModule, xflagsOf } from "../../host/modules/corex.js";
import { makeContext, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const su = caller(siputilsModule);
const cx = caller(corexModule);

describe("siputils message checks", () => {
  it("has_totag / is_request / is_reply return 1/-1", () => {
    const req = makeContext(request()).ctx;
    expect(su("has_totag", req)).toBe(-1);
    expect(su("is_request", req)).toBe(1);
    expect(su("is_reply", req)).toBe(-1);
    const inDialog = makeContext(request({ to: "<sip:bob@example.org>;tag=abc" })).ctx;
    expect(su("has_totag", inDialog)).toBe(1);
    const rpl = makeContext(response(200, "OK")).ctx;
    expect(su("is_reply", rpl)).toBe(1);
    expect(su("has_totag", rpl)).toBe(1);
  });

  it("is_first_hop counts Via values of a request", () => {
    expect(su("is_first_hop", makeContext(request()).ctx)).toBe(1);
    const two = makeContext(request({ via: ["SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-a, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-b"] })).ctx;
    expect(su("is_first_hop", two)).toBe(-1);
  });

  it("is_first_hop for replies looks at the top Record-Route", () => {
    expect(su("is_first_hop", makeContext(response(200, "OK")).ctx)).toBe(1);
    const viaUs = makeContext(response(200, "OK", { extraHeaders: ["Record-Route: <sip:127.0.0.1;lr>"] })).ctx;
    expect(su("is_first_hop", viaUs)).toBe(1);
    const notUs = makeContext(response(200, "OK", { extraHeaders: ["Record-Route: <sip:10.7.7.7;lr>"] })).ctx;
    expect(su("is_first_hop", notUs)).toBe(-1);
    const loop = makeContext(response(200, "OK", { extraHeaders: ["Record-Route: <sip:127.0.0.1;lr>"] }), {
      rcv: { srcIp: "127.0.0.1", srcPort: 5060 },
    }).ctx;
    expect(su("is_first_hop", loop)).toBe(-1);
    const named = makeContext(response(200, "OK", { extraHeaders: ["Record-Route: <sip:proxy.example.org;lr>"] }), {
      aliases: ["proxy.example.org"],
    }).ctx;
    expect(su("is_first_hop", named)).toBe(-1);
    expect(su("is_first_hop_mode", named, 1)).toBe(1);
  });

  it("is_uri, is_tel_number, is_numeric, is_alphanum(ex) with Kamailio's codes", () => {
    const { ctx } = makeContext(request());
    expect(su("is_uri", ctx, "sip:alice@example.com")).toBe(1);
    expect(su("is_uri", ctx, "alice@example.com")).toBe(-1);
    expect(su("is_tel_number", ctx, "+4930123")).toBe(1);
    expect(su("is_tel_number", ctx, "+0123")).toBe(-2);
    expect(su("is_tel_number", ctx, "12a")).toBe(-2);
    expect(su("is_tel_number", ctx, "")).toBe(-2);
    expect(su("is_numeric", ctx, "0042")).toBe(1);
    expect(su("is_numeric", ctx, "+42")).toBe(-2);
    expect(su("is_alphanum", ctx, "abc123")).toBe(1);
    expect(su("is_alphanum", ctx, "")).toBe(-2);
    expect(su("is_alphanum", ctx, "a-b")).toBe(-3);
    expect(su("is_alphanumex", ctx, "a-b_c", "-_")).toBe(1);
    expect(su("is_alphanumex", ctx, "a.b", "-_")).toBe(-3);
  });
});

describe("siputils R-URI parameters", () => {
  const uri = "sip:bob@example.org;lr;transport=TCP;gr";

  it("uri_param / uri_param_value / uri_param_any", () => {
    const { ctx } = makeContext(request({ uri }));
    expect(su("uri_param", ctx, "lr")).toBe(1);
    expect(su("uri_param", ctx, "transport")).toBe(-1);
    expect(su("uri_param", ctx, "LR")).toBe(-1);
    expect(su("uri_param_value", ctx, "transport", "TCP")).toBe(1);
    expect(su("uri_param_value", ctx, "transport", "tcp")).toBe(-1);
    expect(su("uri_param_any", ctx, "TRANSPORT")).toBe(1);
    expect(su("uri_param_any", ctx, "maddr")).toBe(-1);
  });

  it("add_uri_param / uri_param_rm rewrite the R-URI", () => {
    const { ctx } = makeContext(request({ uri }));
    expect(su("add_uri_param", ctx, "nat=yes")).toBe(1);
    expect(ctx.requestUri).toBe("sip:bob@example.org;lr;transport=TCP;gr;nat=yes");
    expect(su("uri_param_rm", ctx, "Transport")).toBe(1);
    expect(ctx.requestUri).toBe("sip:bob@example.org;lr;gr;nat=yes");
    expect(su("uri_param_rm", ctx, "absent")).toBe(1);
    expect(su("add_uri_param", ctx, "")).toBe(1);
    expect(ctx.requestUri).toBe("sip:bob@example.org;lr;gr;nat=yes");
  });

  it("is_gruu: 2 for gr without value, 1 with, -1 without", () => {
    expect(su("is_gruu", makeContext(request({ uri })).ctx)).toBe(2);
    expect(su("is_gruu", makeContext(request({ uri: "sip:bob@example.org;gr=urn:uuid:f81d" })).ctx)).toBe(1);
    expect(su("is_gruu", makeContext(request()).ctx)).toBe(-1);
  });
});

describe("siputils comparisons", () => {
  it("cmp_uri follows RFC 3261 19.1.4 as Kamailio applies it", () => {
    const { ctx } = makeContext(request());
    expect(su("cmp_uri", ctx, "sip:bob@EXAMPLE.org", "sip:bob@example.org")).toBe(1);
    expect(su("cmp_uri", ctx, "sip:Bob@example.org", "sip:bob@example.org")).toBe(-1);
    expect(su("cmp_uri", ctx, "sip:bob@example.org:5060", "sip:bob@example.org")).toBe(-1);
    expect(su("cmp_uri", ctx, "sip:bob@example.org;transport=tcp", "sip:bob@example.org;transport=TCP;lr")).toBe(1);
    expect(su("cmp_uri", ctx, "sip:bob@example.org;transport=tcp", "sip:bob@example.org;transport=udp")).toBe(-1);
    expect(su("cmp_uri", ctx, "sip:bob@example.org;maddr=1.2.3.4", "sip:bob@example.org")).toBe(-1);
    expect(su("cmp_uri", ctx, "sips:bob@example.org", "sip:bob@example.org")).toBe(-1);
    expect(su("cmp_uri", ctx, "nope", "sip:bob@example.org")).toBe(-2);
  });

  it("cmp_aor compares user, host and port with 5060 as default", () => {
    const { ctx } = makeContext(request());
    expect(su("cmp_aor", ctx, "sip:bob@example.org", "sip:bob@Example.org:5060;transport=tcp")).toBe(1);
    expect(su("cmp_aor", ctx, "sip:bob@example.org", "sip:bob@example.org:5070")).toBe(-1);
    expect(su("cmp_aor", ctx, "sip:bob@example.org", "sip:alice@example.org")).toBe(-1);
    expect(su("cmp_aor", ctx, "sip:bob@example.org", "x")).toBe(-2);
  });

  it("cmp_hdr_name knows compact forms", () => {
    const { ctx } = makeContext(request());
    expect(su("cmp_hdr_name", ctx, "Via", "v")).toBe(1);
    expect(su("cmp_hdr_name", ctx, "X-A", "x-a")).toBe(1);
    expect(su("cmp_hdr_name", ctx, "From", "To")).toBe(-1);
    expect(su("cmp_hdr_name", ctx, "", "To")).toBe(-2);
  });
});

describe("siputils.options_reply", () => {
  it("answers OPTIONS to a user-less R-URI with 200 and the capability headers", () => {
    const { ctx, host } = makeContext(request({ method: "OPTIONS", uri: "sip:127.0.0.1" }));
    expect(su("options_reply", ctx)).toBe(1);
    expect(host.replies).toEqual([
      {
        status: 200,
        reason: "OK",
        headers: ["Accept: */*\r\n", "Accept-Encoding: \r\n", "Accept-Language: en\r\n", "Supported: \r\n"],
      },
    ]);
  });

  it("returns -1 for other methods or an R-URI with a user", () => {
    const a = makeContext(request({ method: "INVITE", uri: "sip:127.0.0.1" }));
    expect(su("options_reply", a.ctx)).toBe(-1);
    const b = makeContext(request({ method: "OPTIONS", uri: "sip:bob@127.0.0.1" }));
    expect(su("options_reply", b.ctx)).toBe(-1);
    expect([...a.host.replies, ...b.host.replies]).toEqual([]);
  });
});

describe("corex", () => {
  it("has_ruri_user and has_user_agent return 1/-1", () => {
    expect(cx("has_ruri_user", makeContext(request({ uri: "sip:bob@x" })).ctx)).toBe(1);
    expect(cx("has_ruri_user", makeContext(request({ uri: "sip:x" })).ctx)).toBe(-1);
    expect(cx("has_ruri_user", makeContext(response(200, "OK")).ctx)).toBe(-1);
    expect(cx("has_user_agent", makeContext(request({ extraHeaders: ["User-Agent: ua"] })).ctx)).toBe(1);
    expect(cx("has_user_agent", makeContext(request()).ctx)).toBe(-1);
  });

  it("extended flags 0..63 return 1/-1", () => {
    const { ctx } = makeContext(request());
    expect(cx("isxflagset", ctx, 63)).toBe(-1);
    expect(cx("setxflag", ctx, 63)).toBe(1);
    expect(cx("setxflag", ctx, 2)).toBe(1);
    expect(cx("isxflagset", ctx, 63)).toBe(1);
    expect(xflagsOf(ctx)).toBe((1n << 63n) | 4n);
    expect(cx("resetxflag", ctx, 63)).toBe(1);
    expect(cx("isxflagset", ctx, 63)).toBe(-1);
    expect(cx("setxflag", ctx, 64)).toBe(-1);
    expect(cx("isxflagset", ctx, -1)).toBe(-1);
  });
});
