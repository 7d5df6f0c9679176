import { describe, expect, it } from "vitest";
import { lookupPv, parsePvName, pvModule } from "../../host/modules/pv.js";
import { newTenantState } from "../../host/core/context.js";
import { makeContext, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const call = caller(pvModule);

const INVITE = `
  INVITE sip:bob@example.org:5080;transport=tcp SIP/2.0
  Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1
  Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-2
  Max-Forwards: 70
  From: "Alice A" <sip:alice@example.com>;tag=ft1
  To: Bob <sip:bob@example.org>
  Call-ID: abc@10.0.0.1
  CSeq: 42 INVITE
  Contact: <sip:alice@10.0.0.1:5070>, <sip:alice@10.0.0.9>
  User-Agent: TestUA/1.0
  Proxy-Authorization: Digest username="alice@example.com", realm="example.com", nonce="n", uri="sip:bob@example.org", response="r"
  Content-Type: application/sdp
  Content-Length: 5

  v=0
`;

describe("pv name parsing", () => {
  it("splits class, inner name and index", () => {
    expect(parsePvName("$ru")).toEqual({ cls: "ru", inner: undefined, idx: { kind: "none" } });
    expect(parsePvName("$var(x)")).toEqual({ cls: "var", inner: "x", idx: { kind: "none" } });
    expect(parsePvName("$(hdr(Via)[-1])")).toEqual({ cls: "hdr", inner: "Via", idx: { kind: "int", i: -1 } });
    expect(parsePvName("$(avp(x)[*])")).toEqual({ cls: "avp", inner: "x", idx: { kind: "all" } });
    expect(parsePvName("ru")).toBeNull();
    expect(parsePvName("$hdr(Via)[1]")).toBeNull();
    expect(parsePvName("$(ru{uri.user})")).toBeNull();
  });

  it("caches compiled accessors", () => {
    expect(lookupPv("$rU")).toBe(lookupPv("$rU"));
    expect(lookupPv("$nosuchpv")).toBeNull();
  });
});

describe("pv.get of message PVs", () => {
  it("returns strings, numbers and nulls as Kamailio types them", () => {
    const { ctx } = makeContext(INVITE, { rcv: { srcIp: "10.0.0.1", srcPort: 5070, proto: "udp" } });
    const g = (n: string) => call("get", ctx, n);
    expect(g("$ru")).toBe("sip:bob@example.org:5080;transport=tcp");
    expect(g("$rU")).toBe("bob");
    expect(g("$rd")).toBe("example.org");
    expect(g("$rp")).toBe("5080");
    expect(g("$rz")).toBe("sip");
    expect(g("$fu")).toBe("sip:alice@example.com");
    expect(g("$fU")).toBe("alice");
    expect(g("$fd")).toBe("example.com");
    expect(g("$fn")).toBe('"Alice A"');
    expect(g("$ft")).toBe("ft1");
    expect(g("$tn")).toBe("Bob");
    expect(g("$tt")).toBeNull();
    expect(g("$ci")).toBe("abc@10.0.0.1");
    expect(g("$cs")).toBe("42");
    expect(g("$rm")).toBe("INVITE");
    expect(g("$rs")).toBeNull();
    expect(g("$rr")).toBeNull();
    expect(g("$si")).toBe("10.0.0.1");
    expect(g("$sp")).toBe(5070);
    expect(g("$Ri")).toBe("127.0.0.1");
    expect(g("$Rp")).toBe(5060);
    expect(g("$pr")).toBe("udp");
    expect(g("$proto")).toBe("udp");
    expect(g("$ua")).toBe("TestUA/1.0");
    expect(g("$ct")).toBe("<sip:alice@10.0.0.1:5070>, <sip:alice@10.0.0.9>");
    expect(g("$rb")).toBe("v=0\r\n");
    expect(g("$cl")).toBe(5);
    expect(g("$cT")).toBe("application/sdp");
    expect(g("$ml")).toBe(ctx.msg.raw.length);
    expect(g("$au")).toBe("alice");
    expect(g("$ad")).toBe("example.com");
    expect(g("$ar")).toBe("example.com");
    expect(g("$du")).toBeNull();
    expect(g("$fs")).toBeNull();
  });

  it("$rp defaults to 5060 and the R-URI PVs are null for replies", () => {
    expect(call("get", makeContext(request({ uri: "sip:x@h" })).ctx, "$rp")).toBe("5060");
    expect(call("get", makeContext(request({ uri: "sip:x@h;transport=tls" })).ctx, "$rp")).toBe("5061");
    const rpl = makeContext(response(486, "Busy Here")).ctx;
    expect(call("get", rpl, "$ru")).toBeNull();
    expect(call("get", rpl, "$rU")).toBeNull();
    expect(call("get", rpl, "$rs")).toBe(486);
    expect(call("get", rpl, "$rr")).toBe("Busy Here");
    expect(call("get", rpl, "$rm")).toBe("INVITE");
    expect(call("get", rpl, "$tt")).toBe("to-tag-2");
  });

  it("$rU is null when the R-URI has no user", () => {
    expect(call("get", makeContext(request({ uri: "sip:127.0.0.1" })).ctx, "$rU")).toBeNull();
  });

  it("$hdr, index forms and $hdrc", () => {
    const { ctx } = makeContext(INVITE);
    expect(call("get", ctx, "$hdr(via)")).toBe("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1");
    expect(call("get", ctx, "$(hdr(Via)[1])")).toBe("SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-2");
    expect(call("get", ctx, "$(hdr(v)[-1])")).toBe("SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-2");
    expect(call("get", ctx, "$(hdr(Via)[2])")).toBeNull();
    expect(call("get", ctx, "$(hdr(Via)[*])")).toBe(
      "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1,SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-2",
    );
    expect(call("get", ctx, "$hdr(X-None)")).toBeNull();
    expect(call("get", ctx, "$hdrc(Via)")).toBe(2);
    expect(call("get", ctx, "$hdrc(X-None)")).toBe(0);
  });

  it("invalid names: get → null, gete → '', getw → '<null>', with an error log", () => {
    const { ctx, host } = makeContext(request());
    expect(call("get", ctx, "$bogus")).toBeNull();
    expect(call("gete", ctx, "$bogus")).toBe("");
    expect(call("getw", ctx, "not-a-pv")).toBe("<null>");
    expect(call("is_null", ctx, "$bogus")).toBe(true);
    expect(call("sets", ctx, "$bogus", "x")).toBe(false);
    expect(call("geti", ctx, "$bogus")).toBe(0);
    expect(host.logs.some((l) => l.level === "err" && l.text.includes("$bogus"))).toBe(true);
  });

  it("getvs/getvn give the default only when missing", () => {
    const { ctx } = makeContext(request());
    expect(call("getvs", ctx, "$du", "none")).toBe("none");
    expect(call("getvn", ctx, "$du", 7)).toBe(7);
    expect(call("getvn", ctx, "$sp", 7)).toBe(5070);
  });

  it("geti parses strings and uses Kamailio's integer views", () => {
    const { ctx } = makeContext(INVITE);
    expect(call("geti", ctx, "$cs")).toBe(42);
    expect(call("geti", ctx, "$rp")).toBe(5080);
    expect(call("geti", ctx, "$rm")).toBe(1);
    expect(call("geti", ctx, "$pr")).toBe(1);
    expect(call("geti", ctx, "$ua")).toBe(0);
    expect(call("geti", ctx, "$du")).toBe(0);
    call("sets", ctx, "$var(n)", "12ab");
    expect(call("geti", ctx, "$var(n)")).toBe(12);
  });
});

describe("writable PVs", () => {
  it("$var starts at integer 0, keeps type, unset resets to 0, and lives in the tenant", () => {
    const tenant = newTenantState("t1");
    const a = makeContext(request(), { tenant }).ctx;
    expect(call("get", a, "$var(x)")).toBe(0);
    expect(call("is_null", a, "$var(x)")).toBe(false);
    expect(call("seti", a, "$var(x)", 5)).toBe(true);
    expect(call("get", a, "$var(x)")).toBe(5);
    const b = makeContext(request(), { tenant }).ctx;
    expect(call("get", b, "$var(x)")).toBe(5);
    expect(call("sets", b, "$var(x)", "five")).toBe(true);
    expect(call("get", b, "$var(x)")).toBe("five");
    expect(call("unset", b, "$var(x)")).toBe(true);
    expect(call("get", b, "$var(x)")).toBe(0);
    expect(call("get", makeContext(request()).ctx, "$var(y)")).toBe(0);
  });

  it("$shv is shared through tenant.sharedVars", () => {
    const tenant = newTenantState("t2");
    call("sets", makeContext(request(), { tenant }).ctx, "$shv(k)", "v");
    expect(tenant.sharedVars.get("k")).toBe("v");
    expect(call("get", makeContext(request(), { tenant }).ctx, "$shv(k)")).toBe("v");
  });

  it("$avp is a per-message stack: null when unset, newest first", () => {
    const { ctx } = makeContext(request());
    expect(call("get", ctx, "$avp(a)")).toBeNull();
    expect(call("is_null", ctx, "$avp(a)")).toBe(true);
    call("seti", ctx, "$avp(a)", 1);
    call("sets", ctx, "$avp(a)", "two");
    expect(call("get", ctx, "$avp(a)")).toBe("two");
    expect(call("get", ctx, "$(avp(a)[1])")).toBe(1);
    expect(call("get", ctx, "$(avp(a)[-1])")).toBe(1);
    expect(call("unset", ctx, "$avp(a)")).toBe(true);
    expect(call("get", ctx, "$avp(a)")).toBe(1);
    call("sets", ctx, "$avp(a)", "x");
    expect(call("unset", ctx, "$(avp(a)[*])")).toBe(true);
    expect(call("get", ctx, "$avp(a)")).toBeNull();
    expect(call("get", makeContext(request()).ctx, "$avp(a)")).toBeNull();
  });

  it("$ru/$rU/$rd/$rp rewrite the R-URI; $du sets and unsets", () => {
    const { ctx } = makeContext(request({ uri: "sip:bob@example.org" }));
    expect(call("sets", ctx, "$rU", "carol")).toBe(true);
    expect(call("sets", ctx, "$rd", "10.0.0.8")).toBe(true);
    expect(call("seti", ctx, "$rp", 5090)).toBe(true);
    expect(ctx.requestUri).toBe("sip:carol@10.0.0.8:5090");
    expect(call("get", ctx, "$ru")).toBe("sip:carol@10.0.0.8:5090");
    expect(call("get", ctx, "$ou")).toBe("sip:bob@example.org");
    expect(call("get", ctx, "$oU")).toBe("bob");
    expect(call("unset", ctx, "$rp")).toBe(true);
    expect(call("sets", ctx, "$rp", "x1")).toBe(false);
    expect(call("seti", ctx, "$rU", 5)).toBe(false);
    expect(call("sets", ctx, "$ru", "sip:z@example.net")).toBe(true);
    expect(ctx.newRequestUri).toBe("sip:z@example.net");
    expect(call("sets", ctx, "$du", "sip:10.1.1.1;lr")).toBe(true);
    expect(ctx.dstUri).toBe("sip:10.1.1.1;lr");
    expect(call("unset", ctx, "$du")).toBe(true);
    expect(ctx.dstUri).toBeUndefined();
  });

  it("read-only PVs refuse assignment", () => {
    const { ctx } = makeContext(request());
    expect(call("sets", ctx, "$ci", "x")).toBe(false);
    expect(call("sets", ctx, "$si", "1.2.3.4")).toBe(false);
  });

  it("$fs accepts a local socket, warns (but succeeds) for a foreign one", () => {
    const { ctx, host } = makeContext(request());
    expect(call("sets", ctx, "$fs", "tcp:127.0.0.1:5060")).toBe(true);
    expect(ctx.sendSocket).toBe("tcp:127.0.0.1:5060");
    expect(call("sets", ctx, "$fs", "udp:10.9.9.9:5060")).toBe(true);
    expect(ctx.sendSocket).toBe("tcp:127.0.0.1:5060");
    expect(host.logs.some((l) => l.level === "warn")).toBe(true);
    expect(call("sets", ctx, "$fs", "udp:127.0.0.1:notaport")).toBe(false);
    expect(call("unset", ctx, "$fs")).toBe(true);
    expect(ctx.sendSocket).toBeUndefined();
  });

  it("time PVs come from the host clock; $Ts is fixed per message", () => {
    const { ctx, host } = makeContext(request(), { now: 1_700_000_123_456 });
    expect(call("get", ctx, "$Ts")).toBe(1_700_000_123);
    expect(call("get", ctx, "$TV(u)")).toBe(456_000);
    host.clock.ms += 5000;
    expect(call("get", ctx, "$Ts")).toBe(1_700_000_123);
    expect(call("get", ctx, "$TV(sn)")).toBe(1_700_000_128);
    const r = call("get", ctx, "$RANDOM");
    expect(typeof r === "number" && r >= 0 && r < 2 ** 31).toBe(true);
    expect(typeof call("get", ctx, "$HN(n)")).toBe("string");
  });
});
