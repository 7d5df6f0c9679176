import { describe, expect, it } from "vitest";
import { coreModule } from "../../host/modules/core.js";
import { peekSendOptions } from "../../host/modules/sendopts.js";
import { makeContext, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const call = caller(coreModule);

describe("core logging", () => {
  it("logs at the named level, unknown levels at err, without adding a newline", () => {
    const { ctx, host } = makeContext(request());
    expect(call("info", ctx, "hello")).toBeUndefined();
    call("log", ctx, "WARN", "w\n");
    call("log", ctx, "bogus", "x");
    expect(host.logs).toEqual([
      { level: "info", text: "hello" },
      { level: "warn", text: "w\n" },
      { level: "err", text: "x" },
    ]);
  });
});

describe("method tests", () => {
  it("is_INVITE and friends use the request method, CSeq method for replies", () => {
    const inv = makeContext(request({ method: "INVITE" })).ctx;
    expect(call("is_INVITE", inv)).toBe(true);
    expect(call("is_BYE", inv)).toBe(false);
    const rpl = makeContext(response(200, "OK", { method: "BYE" })).ctx;
    expect(call("is_BYE", rpl)).toBe(true);
    expect(call("is_INVITE", rpl)).toBe(false);
  });

  it("is_method compares case-insensitively and accepts |-lists of standard methods", () => {
    const { ctx } = makeContext(request({ method: "INVITE" }));
    expect(call("is_method", ctx, "invite")).toBe(true);
    expect(call("is_method", ctx, "INVITE|BYE")).toBe(true);
    expect(call("is_method", ctx, "BYE|CANCEL")).toBe(false);
    expect(call("is_method", ctx, "BYE|FOO")).toBe(false);
    expect(call("is_method", ctx, "")).toBe(false);
  });

  it("is_method handles non-standard methods by name only", () => {
    const { ctx } = makeContext(request({ method: "FOO" }));
    expect(call("is_method", ctx, "foo")).toBe(true);
    expect(call("is_method_in", ctx, "IABCRMOSPNFUEKGTVD")).toBe(false);
  });

  it("is_method_in matches letters case-insensitively", () => {
    const reg = makeContext(request({ method: "REGISTER" })).ctx;
    expect(call("is_method_in", reg, "r")).toBe(true);
    expect(call("is_method_in", reg, "IB")).toBe(false);
    const prack = makeContext(request({ method: "PRACK" })).ctx;
    expect(call("is_method_in", prack, "E")).toBe(true);
    const refer = makeContext(request({ method: "REFER" })).ctx;
    expect(call("is_method_in", refer, "xF")).toBe(true);
  });
});

describe("transport tests", () => {
  it("reports the receive transport and ports", () => {
    const { ctx } = makeContext(request(), { rcv: { proto: "tcp", srcPort: 4000, localPort: 5060 } });
    expect(call("is_TCP", ctx)).toBe(true);
    expect(call("is_UDP", ctx)).toBe(false);
    expect(call("is_WSX", ctx)).toBe(false);
    expect(call("is_proto", ctx, "ut")).toBe(true);
    expect(call("is_proto", ctx, "uew")).toBe(false);
    expect(call("is_src_port", ctx, 4000)).toBe(true);
    expect(call("is_src_port", ctx, 5060)).toBe(false);
    expect(call("is_dst_port", ctx, 5060)).toBe(true);
    expect(call("is_IPv4", ctx)).toBe(true);
    expect(call("is_IPv6", ctx)).toBe(false);
  });

  it("to_* look at the transport parameter of $du, else the R-URI, else nothing", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@example.org;transport=tcp" }));
    expect(call("to_TCP", ctx)).toBe(true);
    call("setdsturi", ctx, "sip:10.1.1.1;transport=udp");
    expect(call("to_UDP", ctx)).toBe(true);
    expect(call("to_TCP", ctx)).toBe(false);
    expect(call("to_IPv4", ctx)).toBe(true);
    const plain = makeContext(request({ uri: "sip:bob@[2001:db8::1]" })).ctx;
    expect(call("to_UDP", plain)).toBe(false);
    expect(call("to_IPv6", plain)).toBe(true);
  });

  it("to_* for a reply use the second Via", () => {
    const { ctx } = makeContext(response(180, "Ringing"));
    expect(call("to_TCP", ctx)).toBe(true);
    expect(call("to_UDP", ctx)).toBe(false);
    expect(call("to_IPv4", ctx)).toBe(true);
  });
});

describe("flags", () => {
  it("sets, tests and resets message flags 0..31", () => {
    const { ctx } = makeContext(request());
    expect(call("isflagset", ctx, 31)).toBe(false);
    expect(call("setflag", ctx, 31)).toBe(true);
    expect(call("setflag", ctx, 0)).toBe(true);
    expect(call("isflagset", ctx, 31)).toBe(true);
    expect(ctx.flags).toBe(0x80000001);
    expect(call("resetflag", ctx, 31)).toBe(true);
    expect(call("isflagset", ctx, 31)).toBe(false);
    expect(ctx.flags).toBe(1);
  });

  it("rejects flags outside 0..31 with false and an error log", () => {
    const { ctx, host } = makeContext(request());
    expect(call("setflag", ctx, 32)).toBe(false);
    expect(call("isflagset", ctx, -1)).toBe(false);
    expect(call("setsflag", ctx, 40)).toBe(false);
    expect(call("setbflag", ctx, 32)).toBe(false);
    expect(ctx.flags).toBe(0);
    expect(host.logs.filter((l) => l.level === "err")).toHaveLength(4);
  });

  it("branch flags apply to existing branches only; script flags are separate", () => {
    const { ctx } = makeContext(request());
    expect(call("setbflag", ctx, 3)).toBe(true);
    expect(call("isbiflagset", ctx, 3, 0)).toBe(true);
    expect(call("setbiflag", ctx, 4, 2)).toBe(true); // no branch 2: ignored, still true
    expect(call("isbiflagset", ctx, 4, 2)).toBe(false);
    ctx.branchFlags.push(0);
    expect(call("setbiflag", ctx, 4, 1)).toBe(true);
    expect(call("isbiflagset", ctx, 4, 1)).toBe(true);
    expect(call("resetbiflag", ctx, 4, 1)).toBe(true);
    expect(call("isbiflagset", ctx, 4, 1)).toBe(false);
    expect(call("setsflag", ctx, 5)).toBe(true);
    expect(call("issflagset", ctx, 5)).toBe(true);
    expect(call("isflagset", ctx, 5)).toBe(false);
    expect(call("resetsflag", ctx, 5)).toBe(true);
    expect(ctx.scriptFlags).toBe(0);
  });
});

describe("is_myself", () => {
  it("matches listen addresses; a URI without port matches any port", () => {
    const { ctx } = makeContext(request());
    expect(call("is_myself", ctx, "sip:127.0.0.1")).toBe(true);
    expect(call("is_myself", ctx, "sip:alice@127.0.0.1:5060")).toBe(true);
    expect(call("is_myself", ctx, "sip:127.0.0.1:5080")).toBe(false);
    expect(call("is_myself", ctx, "127.0.0.1")).toBe(true);
    expect(call("is_myself", ctx, "sip:10.9.9.9")).toBe(false);
    expect(call("is_myself", ctx, "sip:127.0.0.1;transport=tcp")).toBe(true);
    expect(call("is_myself", ctx, "sip:127.0.0.1;transport=tls")).toBe(false);
    expect(call("is_myself", ctx, "sip:bad uri")).toBe(false);
  });

  it("matches aliases with and without port, case-insensitively", () => {
    const { ctx } = makeContext(request(), { aliases: ["Example.COM", "sip.example.net:5080"] });
    expect(call("is_myself", ctx, "sip:example.com:7000")).toBe(true);
    expect(call("is_myself", ctx, "sip:sip.example.net")).toBe(true);
    expect(call("is_myself", ctx, "sip:sip.example.net:5080")).toBe(true);
    expect(call("is_myself", ctx, "sip:sip.example.net:5060")).toBe(false);
    expect(call("is_myself", ctx, "other.example.com")).toBe(false);
  });

  it("matches IPv6 listen addresses in any textual form", () => {
    const { ctx } = makeContext(request(), { listen: [{ proto: "udp", ip: "::1", port: 5060 }] });
    expect(call("is_myself", ctx, "sip:[0:0::1]:5060")).toBe(true);
    expect(call("is_myself", ctx, "sip:[::2]")).toBe(false);
  });

  it("is_myself_ruri uses the rewritten R-URI and is false for replies", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@127.0.0.1" }));
    expect(call("is_myself_ruri", ctx)).toBe(true);
    call("seturi", ctx, "sip:bob@example.org");
    expect(call("is_myself_ruri", ctx)).toBe(false);
    expect(call("is_myself_ruri", makeContext(response(200, "OK")).ctx)).toBe(false);
  });

  it("duri/nhuri/furi/turi/srcip variants", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@127.0.0.1", to: "<sip:bob@127.0.0.1>" }), {
      rcv: { srcIp: "127.0.0.1", srcPort: 5060 },
    });
    expect(call("is_myself_duri", ctx)).toBe(false);
    expect(call("is_myself_nhuri", ctx)).toBe(true);
    call("setdsturi", ctx, "sip:10.0.0.5");
    expect(call("is_myself_nhuri", ctx)).toBe(false);
    expect(call("is_myself_furi", ctx)).toBe(false);
    expect(call("is_myself_turi", ctx)).toBe(true);
    expect(call("is_myself_srcip", ctx)).toBe(true);
    expect(call("is_myself_suri", ctx)).toBe(true);
  });
});

describe("R-URI and destination", () => {
  it("seturi/setuser/sethost rewrite $ru, the received message stays", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@example.org:5070;transport=tcp" }));
    expect(call("setuser", ctx, "carol")).toBe(true);
    expect(ctx.requestUri).toBe("sip:carol@example.org:5070;transport=tcp");
    expect(call("sethost", ctx, "10.0.0.7")).toBe(true);
    expect(ctx.requestUri).toBe("sip:carol@10.0.0.7:5070;transport=tcp");
    expect(call("setuser", ctx, "")).toBe(true);
    expect(ctx.requestUri).toBe("sip:10.0.0.7:5070;transport=tcp");
    expect(call("seturi", ctx, "sip:dave@example.com")).toBe(true);
    expect(ctx.requestUri).toBe("sip:dave@example.com");
    expect(ctx.msg.requestUri).toBe("sip:bob@example.org:5070;transport=tcp");
  });

  it("setuser fails when the R-URI does not parse", () => {
    const { ctx } = makeContext(request());
    call("seturi", ctx, "not a uri");
    expect(call("setuser", ctx, "x")).toBe(false);
  });

  it("setdsturi returns true even for an empty URI; resetdsturi/isdsturiset", () => {
    const { ctx } = makeContext(request());
    expect(call("isdsturiset", ctx)).toBe(false);
    expect(call("setdsturi", ctx, "")).toBe(true);
    expect(call("isdsturiset", ctx)).toBe(false);
    expect(call("setdsturi", ctx, "sip:10.0.0.2:5080")).toBe(true);
    expect(ctx.dstUri).toBe("sip:10.0.0.2:5080");
    expect(call("isdsturiset", ctx)).toBe(true);
    expect(call("resetdsturi", ctx)).toBe(true);
    expect(ctx.dstUri).toBeUndefined();
  });

  it("force_rport, add_local_rport, set_drop set the context fields", () => {
    const { ctx } = makeContext(request());
    expect(call("force_rport", ctx)).toBe(true);
    expect(call("add_local_rport", ctx)).toBe(true);
    expect(call("set_drop", ctx)).toBeUndefined();
    expect([ctx.forceRport, ctx.addLocalRport, ctx.dropped, ctx.exited]).toEqual([true, true, true, false]);
  });
});

describe("forwarding and send options", () => {
  it("forward asks the host and returns 1, -1 when the host fails or the URI is bad", () => {
    const { ctx, host } = makeContext(request());
    expect(call("forward", ctx)).toBe(1);
    expect(call("forward_uri", ctx, "sip:10.0.0.3:5062")).toBe(1);
    expect(host.forwards).toEqual([{ uri: undefined }, { uri: "sip:10.0.0.3:5062" }]);
    expect(ctx.forwarded).toBe(true);
    expect(call("forward_uri", ctx, "garbage")).toBe(-1);
    host.forwardResult = false;
    expect(call("forward", ctx)).toBe(-1);
    expect(host.forwards).toHaveLength(2);
  });

  it("connection flags and advertised address are recorded per message", () => {
    const { ctx } = makeContext(request());
    expect(peekSendOptions(ctx)).toBeUndefined();
    expect(call("set_reply_no_connect", ctx)).toBe(true);
    expect(call("set_forward_close", ctx)).toBe(true);
    expect(call("set_advertised_address", ctx, "203.0.113.5")).toBe(1);
    expect(call("set_advertised_port", ctx, "5099")).toBe(1);
    expect(call("set_advertised_port", ctx, "123456789")).toBe(0);
    expect(peekSendOptions(ctx)).toEqual({
      forwardClose: true,
      forwardNoConnect: false,
      replyClose: false,
      replyNoConnect: true,
      advertisedAddress: "203.0.113.5",
      advertisedPort: "5099",
    });
    expect(peekSendOptions(makeContext(request()).ctx)).toBeUndefined();
  });

  it("route() has no native cfg routes to run", () => {
    expect(call("route", makeContext(request()).ctx, "RELAY")).toBe(-1);
  });
});
