import { describe, expect, it } from "vitest";
import { sanityModule } from "../../host/modules/sanity.js";
import { slModule } from "../../host/modules/sl.js";
import type { Header, SipMessage } from "../../host/sip/message.js";
import { makeContext, makeContextFromMessage, parseTestMessage, request, response } from "../helpers/context.js";
import { caller } from "./call.js";

const call = caller(sanityModule);
const sl = caller(slModule);

/** The basic Kamailio example's checks: sanity_check(1511, 7). */
const EXAMPLE_FLAGS = [1511, 7] as const;

function header(name: string, value: string): Header {
  return { name, key: name.toLowerCase(), value, raw: `${name}: ${value}\r\n` };
}

/** A parsed request with one header replaced or dropped, for cases the strict parser refuses. */
function edited(text: string, change: (headers: Header[]) => Header[], extra: Partial<SipMessage> = {}): SipMessage {
  const m = parseTestMessage(text);
  return { ...m, headers: change([...m.headers]), ...extra };
}

describe("sanity_check passes", () => {
  it("a well-formed request passes the example flags and the defaults", () => {
    const { ctx, host } = makeContext(request({ method: "INVITE", body: "v=0\r\n" }));
    expect(call("sanity_check", ctx, ...EXAMPLE_FLAGS)).toBe(1);
    expect(call("sanity_check_defaults", ctx)).toBe(1);
    expect(call("sanity_check", ctx, 32767, 15)).toBe(1);
    expect(host.replies).toEqual([]);
  });

  it("a reply passes the reply flags (17604, 6)", () => {
    const { ctx } = makeContext(response(200, "OK"));
    expect(call("sanity_check", ctx, 17604, 6)).toBe(1);
  });
});

describe("sanity_check failures reply and return -1", () => {
  it("R-URI that does not parse: 400 Bad Request URI", () => {
    const { ctx, host } = makeContextFromMessage({ ...parseTestMessage(request()), requestUri: "http://example.org/" });
    expect(call("sanity_check", ctx, ...EXAMPLE_FLAGS)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400, reason: "Bad Request URI" }]);
  });

  it("R-URI SIP version other than 2.0: 505", () => {
    const { ctx, host } = makeContextFromMessage({ ...parseTestMessage(request()), version: "SIP/3.0" });
    expect(call("sanity_check", ctx, 1, 7)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 505, reason: "Version Not Supported (R-URI)" }]);
  });

  it("missing Call-ID: no reply, and later sl replies are refused (-2)", () => {
    const msg = edited(request(), (hs) => hs.filter((h) => h.key !== "call-id"));
    const { ctx, host } = makeContextFromMessage(msg);
    expect(call("sanity_check", ctx, ...EXAMPLE_FLAGS)).toBe(-1);
    expect(host.replies).toEqual([]);
    expect(sl("sl_send_reply", ctx, 400, "Bad")).toBe(-2);
  });

  it("duplicated To: fails without a reply", () => {
    const msg = edited(request(), (hs) => [...hs, header("To", "<sip:other@example.org>")]);
    const { ctx, host } = makeContextFromMessage(msg);
    expect(call("sanity_check", ctx, 4, 7)).toBe(-1);
    expect(host.replies).toEqual([]);
  });

  it("CSeq method differing from the request method: 400", () => {
    const msg = edited(request({ method: "INVITE" }), (hs) => hs, { method: "BYE" });
    const { ctx, host } = makeContextFromMessage(msg);
    expect(call("sanity_check", ctx, 32, 7)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400, reason: "CSeq method does not match request method" }]);
  });

  it("CSeq number of 2^31 or more: 400 CSeq number is illegal", () => {
    const msg = edited(request(), (hs) => hs.map((h) => (h.key === "cseq" ? header("CSeq", "2147483648 OPTIONS") : h)));
    const { ctx, host } = makeContextFromMessage(msg);
    expect(call("sanity_check", ctx, 64, 7)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400, reason: "CSeq number is illegal" }]);
  });

  it("octets after Content-Length: not part of a UDP datagram's message (RFC 3261 §18.3), 400 Content-Length mis-match otherwise", () => {
    const text = request({ body: "abc" }) + "EXTRA";
    const udp = makeContext(text, { raw: true });
    expect(udp.ctx.msg.body).toBe("abc");
    // RFC 4475 §3.1.1.8 (dblreq): processed. Kamailio 5.6 answers 400 here.
    expect(call("sanity_check", udp.ctx, ...EXAMPLE_FLAGS)).toBe(1);
    const tcp = makeContext(text, { raw: true, rcv: { proto: "tcp", connectionId: 7 } });
    expect(call("sanity_check", tcp.ctx, ...EXAMPLE_FLAGS)).toBe(-1);
    expect(tcp.host.replies).toMatchObject([{ status: 400, reason: "Content-Length mis-match" }]);
  });

  it("Expires that is not an unsigned integer: 400", () => {
    const { ctx, host } = makeContext(request({ method: "REGISTER", extraHeaders: ["Expires: -5"] }));
    expect(call("sanity_check", ctx, ...EXAMPLE_FLAGS)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400, reason: "Expires value is illegal" }]);
    const empty = makeContextFromMessage(edited(request(), (hs) => [...hs, header("Expires", "")]));
    expect(call("sanity_check", empty.ctx, 256, 7)).toBe(-1);
    expect(empty.host.replies).toMatchObject([{ status: 400, reason: "Missing number in Expires header" }]);
  });

  it("unsupported Proxy-Require options: 420 with Unsupported listing them all, §8.2.2.3 (defaults include 512, 1511 does not)", () => {
    const text = request({ extraHeaders: ["Proxy-Require: foo, bar"] });
    const a = makeContext(text);
    expect(call("sanity_check", a.ctx, ...EXAMPLE_FLAGS)).toBe(1);
    const b = makeContext(text);
    expect(call("sanity_check_defaults", b.ctx)).toBe(-1);
    expect(b.host.replies).toEqual([{ status: 420, reason: "Bad Proxy Require Extension", headers: ["Unsupported: foo, bar\r\n"] }]);
  });

  it("From URI that does not parse: 400 Invalid From Header (uri flag 2)", () => {
    const msg = edited(request(), (hs) => hs.map((h) => (h.key === "from" ? header("From", "<mailto:x@y>;tag=1") : h)));
    const a = makeContextFromMessage(msg);
    expect(call("sanity_check", a.ctx, 1024, 2)).toBe(-1);
    expect(a.host.replies).toMatchObject([{ status: 400, reason: "Invalid From Header" }]);
    expect(call("sanity_check", makeContextFromMessage(msg).ctx, 1024, 1)).toBe(1);
  });

  it("Contact URI check only with uri flag 8", () => {
    const msg = edited(request(), (hs) => [...hs, header("Contact", "<foo:bar>")]);
    expect(call("sanity_check", makeContextFromMessage(msg).ctx, 1024, 7)).toBe(1);
    const b = makeContextFromMessage(msg);
    expect(call("sanity_check", b.ctx, 1024, 8)).toBe(-1);
    expect(b.host.replies).toMatchObject([{ status: 400, reason: "Bad Contact URI" }]);
  });

  it("digest credentials: incomplete → 400; non-Digest fails 2048 silently, passes 8192", () => {
    const incomplete = makeContext(request({ extraHeaders: ['Authorization: Digest username="a", realm="r", nonce="n"'] }));
    expect(call("sanity_check_defaults", incomplete.ctx)).toBe(-1);
    expect(incomplete.host.replies).toMatchObject([{ status: 400, reason: "Bad Auth Credentials" }]);
    const emptyUser = makeContext(
      request({ extraHeaders: ['Authorization: Digest username="", realm="r", nonce="n", uri="sip:x", response="z"'] }),
    );
    expect(call("sanity_check", emptyUser.ctx, 2048, 7)).toBe(-1);
    expect(emptyUser.host.replies).toMatchObject([{ status: 400, reason: "Auth Empty User" }]);
    const basic = request({ extraHeaders: ["Authorization: Basic YTpi"] });
    const b1 = makeContext(basic);
    expect(call("sanity_check", b1.ctx, 2048, 7)).toBe(-1);
    expect(b1.host.replies).toEqual([]);
    expect(call("sanity_check", makeContext(basic).ctx, 8192, 7)).toBe(1);
  });

  it("duplicate To tags: 400 Many To Tag Params", () => {
    const msg = edited(request(), (hs) => hs.map((h) => (h.key === "to" ? header("To", "<sip:b@x>;tag=1;tag=2") : h)));
    const { ctx, host } = makeContextFromMessage(msg);
    expect(call("sanity_check", ctx, 4096, 7)).toBe(-1);
    expect(host.replies).toMatchObject([{ status: 400, reason: "Many To Tag Params" }]);
  });

  it("top Via without branch fails flag 16384 without a reply", () => {
    const { ctx, host } = makeContext(request({ via: ["SIP/2.0/UDP 10.0.0.1:5070"] }));
    expect(call("sanity_check", ctx, 16384, 7)).toBe(-1);
    expect(host.replies).toEqual([]);
  });

  it("ACK is never answered", () => {
    const { ctx, host } = makeContext(request({ method: "ACK" }));
    ctx.newRequestUri = "http://x";
    expect(call("sanity_check", ctx, ...EXAMPLE_FLAGS)).toBe(-1);
    expect(host.replies).toEqual([]);
  });

  it("sanity_reply returns 1 and sends nothing outside noreply mode", () => {
    const { ctx, host } = makeContext(request());
    ctx.newRequestUri = "http://x"; // sanity parses the current R-URI, as Kamailio's parse_sip_msg_uri
    expect(call("sanity_check", ctx, 2, 7)).toBe(-1);
    expect(call("sanity_reply", ctx)).toBe(1);
    expect(host.replies).toHaveLength(1);
  });
});
