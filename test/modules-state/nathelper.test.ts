import { beforeEach, describe, expect, it } from "vitest";
import type { MessageContext, ReceiveInfo } from "../../host/core/context.js";
import { hdrModule } from "../../host/modules/hdr.js";
import { nathelperModule, receivedFor } from "../../host/modules/nathelper.js";
import { pvModule } from "../../host/modules/pv.js";
import { parseMessage } from "../../host/sip/parser.js";
import { serializeMessage } from "../../host/sip/serialize.js";
import { caller } from "../modules/call.js";
import { makeContext, makeRecordingHost, request, response, type RecordingHost } from "../helpers/context.js";

const nh = caller(nathelperModule);
const pv = caller(pvModule);
const hdr = caller(hdrModule);

/** A client behind NAT: it writes its private address, the packet comes from the NAT's public one. */
const NATED: Partial<ReceiveInfo> = { srcIp: "203.0.113.7", srcPort: 40000, proto: "udp" };

let host: RecordingHost;
beforeEach(() => {
  host = makeRecordingHost();
});

function ctxWith(
  opts: { via?: string; contact?: string | null; extra?: string[]; body?: string; method?: string; uri?: string; rcv?: Partial<ReceiveInfo> } = {},
): MessageContext {
  const contact = opts.contact === undefined ? "<sip:alice@192.168.1.10:5060>" : opts.contact;
  const extra = [...(contact === null ? [] : [`Contact: ${contact}`]), ...(opts.extra ?? [])];
  if (opts.body !== undefined) extra.push("Content-Type: application/sdp");
  const text = request({
    method: opts.method ?? "INVITE",
    uri: opts.uri ?? "sip:bob@example.org",
    via: [opts.via ?? "SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1;rport"],
    extraHeaders: extra,
    body: opts.body,
  });
  return makeContext(text, { host, rcv: opts.rcv ?? NATED }).ctx;
}

/** The Contact header values of the message as it would be sent. */
function sentContacts(ctx: MessageContext): string[] {
  const parsed = parseMessage(serializeMessage(ctx.msg, ctx.edits));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.message.headers.filter((h) => h.key === "contact").map((h) => h.value);
}

const sdp = (session: string, media = "") =>
  ["v=0", "o=- 1 1 IN IP4 192.168.1.10", "s=-", ...(session ? [session] : []), "t=0 0", "m=audio 4000 RTP/AVP 0", ...(media ? [media] : []), ""].join("\r\n");

describe("nat_uac_test", () => {
  const test = (ctx: MessageContext, flags: number) => nh("nat_uac_test", ctx, flags);

  it("1: Contact holds a private address", () => {
    expect(test(ctxWith(), 1)).toBe(1);
    expect(test(ctxWith({ contact: "<sip:alice@198.51.100.20:5060>" }), 1)).toBe(-1);
    expect(test(ctxWith({ contact: "sip:alice@172.20.0.5;expires=60" }), 1)).toBe(1);
    expect(test(ctxWith({ contact: null }), 1)).toBe(-1);
    expect(test(ctxWith({ contact: "*" }), 1)).toBe(-1);
  });

  it("2: the Via address differs from the source address", () => {
    expect(test(ctxWith(), 2)).toBe(1);
    expect(test(ctxWith({ via: "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK-1" }), 2)).toBe(-1);
    expect(test(ctxWith({ via: "SIP/2.0/UDP client.example.com;branch=z9hG4bK-1" }), 2)).toBe(1);
    const v6 = { srcIp: "2001:db8::7", srcPort: 5060, proto: "udp" as const };
    expect(test(ctxWith({ via: "SIP/2.0/UDP [2001:DB8:0::7];branch=z9hG4bK-1", rcv: v6 }), 2)).toBe(-1);
  });

  it("4: the top Via holds a private address", () => {
    expect(test(ctxWith(), 4)).toBe(1);
    expect(test(ctxWith({ via: "SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-1" }), 4)).toBe(-1);
  });

  it("8: the SDP holds a private media address (session or media level)", () => {
    expect(test(ctxWith({ body: sdp("c=IN IP4 192.168.1.10") }), 8)).toBe(1);
    expect(test(ctxWith({ body: sdp("c=IN IP4 198.51.100.20", "c=IN IP4 10.1.1.1") }), 8)).toBe(1);
    expect(test(ctxWith({ body: sdp("c=IN IP4 198.51.100.20") }), 8)).toBe(-1);
    // A held stream (0.0.0.0) ends the scan, as in Kamailio.
    const held = sdp("c=IN IP4 0.0.0.0") + "m=video 4002 RTP/AVP 31\r\nc=IN IP4 10.1.1.1\r\n";
    expect(test(ctxWith({ body: held }), 8)).toBe(-1);
    expect(test(ctxWith({ body: sdp("c=IN IP6 fd00::1") }), 8)).toBe(-1);
    expect(test(ctxWith(), 8)).toBe(-1);
  });

  it("16: the source port differs from the Via port (5060 when absent)", () => {
    expect(test(ctxWith(), 16)).toBe(1);
    expect(test(ctxWith({ via: "SIP/2.0/UDP 192.168.1.10:40000;branch=z9hG4bK-1" }), 16)).toBe(-1);
    const at5060 = { ...NATED, srcPort: 5060 };
    expect(test(ctxWith({ via: "SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK-1", rcv: at5060 }), 16)).toBe(-1);
  });

  it("32: the source address itself is private (RFC 1918 / RFC 6598)", () => {
    expect(test(ctxWith({ rcv: { ...NATED, srcIp: "100.64.1.1" } }), 32)).toBe(1);
    expect(test(ctxWith({ rcv: { ...NATED, srcIp: "::ffff:10.0.0.1" } }), 32)).toBe(1);
    expect(test(ctxWith({ rcv: { ...NATED, srcIp: "fd00::1" } }), 32)).toBe(-1);
    expect(test(ctxWith(), 32)).toBe(-1);
  });

  it("64: true for a message that came over WebSocket (ws or wss), whatever its addresses", () => {
    expect(test(ctxWith(), 64)).toBe(-1);
    expect(test(ctxWith({ rcv: { ...NATED, proto: "tcp" } }), 64)).toBe(-1);
    expect(test(ctxWith({ rcv: { ...NATED, proto: "tls" } }), 64)).toBe(-1);
    expect(test(ctxWith({ rcv: { ...NATED, proto: "ws" } }), 64)).toBe(1);
    expect(test(ctxWith({ rcv: { ...NATED, proto: "wss" } }), 64)).toBe(1);
  });

  it("128: the source port differs from the Contact port", () => {
    expect(test(ctxWith(), 128)).toBe(1);
    expect(test(ctxWith({ contact: "<sip:alice@192.168.1.10:40000>" }), 128)).toBe(-1);
    expect(test(ctxWith({ contact: "<sip:alice@192.168.1.10>", rcv: { ...NATED, srcPort: 5060 } }), 128)).toBe(-1);
    expect(test(ctxWith({ contact: null }), 128)).toBe(-1);
  });

  it("256: the SDP connection address differs from the source address", () => {
    expect(test(ctxWith({ body: sdp("c=IN IP4 192.168.1.10") }), 256)).toBe(1);
    expect(test(ctxWith({ body: sdp("c=IN IP4 203.0.113.7") }), 256)).toBe(-1);
    expect(test(ctxWith(), 256)).toBe(-1);
  });

  it("512: the destination differs from the R-URI", () => {
    const ctx = ctxWith({ uri: "sip:bob@198.51.100.30:5060" });
    expect(test(ctx, 512)).toBe(-1);
    ctx.dstUri = "sip:198.51.100.30:5060";
    expect(test(ctx, 512)).toBe(-1);
    ctx.dstUri = "sip:198.51.100.30:5070";
    expect(test(ctx, 512)).toBe(1);
    ctx.dstUri = "sip:198.51.100.31";
    expect(test(ctx, 512)).toBe(1);
    expect(test(ctxWith({ uri: "sip:bob@198.51.100.30;transport=ws" }), 512)).toBe(1);
  });

  it("512 on a reply: the 2nd Via was answered on another port or address", () => {
    const reply = (via: string) => makeContext(response(200, "OK").replace(/Via: SIP\/2\.0\/TCP [^\r]*/, `Via: ${via}`), { host }).ctx;
    expect(nh("nat_uac_test", reply("SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1;received=203.0.113.7;rport=40000"), 512)).toBe(1);
    expect(nh("nat_uac_test", reply("SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1;received=192.168.1.10;rport=5060"), 512)).toBe(-1);
    expect(nh("nat_uac_test", reply("SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1"), 512)).toBe(-1);
  });

  it("combines tests with OR (the example scripts' 19 = 1 + 2 + 16)", () => {
    expect(test(ctxWith({ contact: "<sip:alice@198.51.100.20>", via: "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK-1" }), 19)).toBe(-1);
    expect(test(ctxWith({ via: "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK-1" }), 19)).toBe(1);
    expect(test(ctxWith(), 0)).toBe(-1);
  });
});

describe("is_rfc1918", () => {
  it.each([
    ["10.1.2.3", 1],
    ["172.16.0.1", 1],
    ["172.31.255.255", 1],
    ["172.32.0.1", -1],
    ["192.168.200.1", 1],
    ["100.64.0.1", 1],
    ["100.127.255.255", 1],
    ["100.128.0.0", -1],
    ["192.0.0.7", 1],
    ["192.0.0.200", 1],
    ["192.0.1.1", -1],
    ["8.8.8.8", -1],
    ["fd00::1", -1],
    ["10.1.2", -1],
    ["not an address", -1],
  ])("%s → %i", (ip, expected) => {
    expect(nh("is_rfc1918", ctxWith(), ip)).toBe(expected);
  });
});

describe("fix_nated_register", () => {
  it("records the source URI for the registrar", () => {
    const ctx = ctxWith({ method: "REGISTER" });
    expect(receivedFor(ctx)).toBeUndefined();
    expect(nh("fix_nated_register", ctx)).toBe(1);
    expect(receivedFor(ctx)).toBe("sip:203.0.113.7:40000");
    // The Contact is left as received.
    expect(ctx.edits.replaced.size).toBe(0);
  });

  it("adds the transport unless UDP and brackets IPv6", () => {
    const tcp = ctxWith({ method: "REGISTER", rcv: { ...NATED, proto: "tcp" } });
    nh("fix_nated_register", tcp);
    expect(receivedFor(tcp)).toBe("sip:203.0.113.7:40000;transport=tcp");
    const v6 = ctxWith({ method: "REGISTER", rcv: { srcIp: "2001:db8::7", srcPort: 5062, proto: "udp" } });
    nh("fix_nated_register", v6);
    expect(receivedFor(v6)).toBe("sip:[2001:db8::7]:5062");
  });
});

describe("fix_nated_contact", () => {
  it("rewrites host:port to the source, keeping the rest", () => {
    const ctx = ctxWith({ contact: '"Alice" <sip:alice@192.168.1.10:5060;transport=udp;maddr=192.168.1.1>;expires=60' });
    expect(nh("fix_nated_contact", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(['"Alice" <sip:alice@203.0.113.7:40000;transport=udp>;expires=60']);
    // Reads keep seeing the Contact as received (Kamailio lumps).
    expect(pv("get", ctx, "$ct")).toContain("192.168.1.10");
  });

  it("handles an addr-spec Contact and refuses a second rewrite", () => {
    const ctx = ctxWith({ contact: "sip:alice@192.168.1.10;expires=60" });
    expect(nh("fix_nated_contact", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["sip:alice@203.0.113.7:40000;expires=60"]);
    expect(nh("fix_nated_contact", ctx)).toBe(-1);
    expect(nh("set_contact_alias", ctx)).toBe(-1);
  });

  it("fails without a Contact or after another function removed it", () => {
    expect(nh("fix_nated_contact", ctxWith({ contact: null }))).toBe(-1);
    expect(nh("fix_nated_contact", ctxWith({ contact: "*" }))).toBe(-1);
    const ctx = ctxWith();
    hdr("remove", ctx, "Contact");
    expect(nh("fix_nated_contact", ctx)).toBe(-1);
    expect(sentContacts(ctx)).toEqual([]);
  });
});

describe("set_contact_alias / add_contact_alias", () => {
  it("set_contact_alias appends the source as alias parameter", () => {
    const ctx = ctxWith({ contact: "<sip:alice@192.168.1.10:5060;transport=udp>;expires=3600" });
    expect(nh("set_contact_alias", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10:5060;transport=udp;alias=203.0.113.7~40000~1>;expires=3600"]);
    expect(nh("set_contact_alias", ctx)).toBe(-1);
  });

  it("puts an addr-spec Contact in angle brackets so the alias stays a URI parameter", () => {
    const ctx = ctxWith({ contact: "sip:alice@192.168.1.10;expires=60", rcv: { ...NATED, proto: "tcp" } });
    expect(nh("set_contact_alias", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10;alias=203.0.113.7~40000~2>;expires=60"]);
  });

  it("set_contact_alias_trim replaces an alias the URI already carries", () => {
    const ctx = ctxWith({ contact: "<sip:alice@192.168.1.10;alias=198.51.100.1~5060~1>" });
    expect(nh("set_contact_alias_trim", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10;alias=203.0.113.7~40000~1>"]);
  });

  it("set_contact_alias fails without a Contact", () => {
    expect(nh("set_contact_alias", ctxWith({ contact: null }))).toBe(-1);
  });

  it("add_contact_alias inserts the alias after host:port, or answers 2 when not needed", () => {
    const ctx = ctxWith({ contact: "<sip:alice@192.168.1.10:5060;transport=udp>" });
    expect(nh("add_contact_alias", ctx)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10:5060;alias=203.0.113.7~40000~1;transport=udp>"]);
    const direct = ctxWith({ contact: "<sip:alice@203.0.113.7:40000;transport=udp>" });
    expect(nh("add_contact_alias", direct)).toBe(2);
    expect(direct.edits.replaced.size).toBe(0);
    expect(nh("add_contact_alias", ctxWith({ contact: null }))).toBe(2);
    expect(nh("add_contact_alias", ctxWith({ contact: "*" }))).toBe(2);
  });

  it("add_contact_alias over WebSocket: a browser's .invalid Contact gets the source and proto 5 (ws) or 6 (wss)", () => {
    const ws = ctxWith({ contact: "<sip:k3v9@a1b2c3.invalid;transport=ws>", rcv: { ...NATED, proto: "ws" } });
    expect(nh("add_contact_alias", ws)).toBe(1);
    expect(sentContacts(ws)).toEqual(["<sip:k3v9@a1b2c3.invalid;alias=203.0.113.7~40000~5;transport=ws>"]);
    const wss = ctxWith({ contact: "<sip:k3v9@a1b2c3.invalid;transport=ws>", rcv: { ...NATED, proto: "wss" } });
    expect(nh("set_contact_alias", wss)).toBe(1);
    expect(sentContacts(wss)).toEqual(["<sip:k3v9@a1b2c3.invalid;transport=ws;alias=203.0.113.7~40000~6>"]);
  });

  it("add_contact_alias_addr validates its address, port and protocol", () => {
    const ctx = ctxWith({ contact: "sip:alice@192.168.1.10" });
    expect(nh("add_contact_alias_addr", ctx, "not-ip", "5060", "udp")).toBe(-1);
    expect(nh("add_contact_alias_addr", ctx, "2001:db8::9", "0", "udp")).toBe(-1);
    expect(nh("add_contact_alias_addr", ctx, "2001:db8::9", "5060", "carrier-pigeon")).toBe(-1);
    expect(nh("add_contact_alias_addr", ctx, "2001:db8::9", "5061", "TLS")).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10;alias=[2001:db8::9]~5061~3>"]);
  });
});

describe("handle_ruri_alias", () => {
  const inDialog = (uri: string) => ctxWith({ method: "BYE", uri, rcv: { srcIp: "198.51.100.30", srcPort: 5060, proto: "udp" } });

  it("moves the alias into $du and strips it from the R-URI", () => {
    const ctx = inDialog("sip:alice@192.168.1.10:5060;alias=203.0.113.7~40000~1;ob");
    expect(nh("handle_ruri_alias", ctx)).toBe(1);
    expect(pv("get", ctx, "$du")).toBe("sip:203.0.113.7:40000");
    expect(pv("get", ctx, "$ru")).toBe("sip:alice@192.168.1.10:5060;ob");
  });

  it("adds the transport for other protocols and brackets IPv6", () => {
    const tcp = inDialog("sip:alice@192.168.1.10;alias=203.0.113.7~40000~2");
    expect(nh("handle_ruri_alias", tcp)).toBe(1);
    expect(tcp.dstUri).toBe("sip:203.0.113.7:40000;transport=tcp");
    const v6 = inDialog("sip:alice@192.168.1.10;alias=2001:db8::7~5062~3");
    expect(nh("handle_ruri_alias", v6)).toBe(1);
    expect(v6.dstUri).toBe("sip:[2001:db8::7]:5062;transport=tls");
  });

  it("a WebSocket alias (proto 5 ws, 6 wss) becomes a ;transport=ws/wss destination: the client's connection", () => {
    const ws = inDialog("sip:k3v9@a1b2c3.invalid;alias=198.51.100.7~50001~5;transport=ws");
    expect(nh("handle_ruri_alias", ws)).toBe(1);
    expect(ws.dstUri).toBe("sip:198.51.100.7:50001;transport=ws");
    expect(pv("get", ws, "$ru")).toBe("sip:k3v9@a1b2c3.invalid;transport=ws");
    const wss = inDialog("sip:k3v9@a1b2c3.invalid;transport=ws;alias=198.51.100.7~50001~6");
    expect(nh("handle_ruri_alias", wss)).toBe(1);
    expect(wss.dstUri).toBe("sip:198.51.100.7:50001;transport=wss");
  });

  it("answers 2 when there is no alias, -1 when it is malformed", () => {
    expect(nh("handle_ruri_alias", inDialog("sip:alice@192.168.1.10"))).toBe(2);
    expect(nh("handle_ruri_alias", inDialog("sip:alice@192.168.1.10;lr"))).toBe(2);
    const noTilde = inDialog("sip:alice@192.168.1.10;alias=203.0.113.7");
    expect(nh("handle_ruri_alias", noTilde)).toBe(-1);
    expect(noTilde.dstUri).toBeUndefined();
    expect(nh("handle_ruri_alias", inDialog("sip:alice@192.168.1.10;alias=203.0.113.7~40000~"))).toBe(-1);
    expect(nh("handle_ruri_alias", inDialog("sip:alice@192.168.1.10;alias=203.0.113.7~40000~9"))).toBe(-1);
    expect(nh("handle_ruri_alias", inDialog("sip:alice@192.168.1.10;alias=203.0.113.7~40000~12"))).toBe(-1);
  });

  it("uses the first alias, or the last one with handle_ruri_alias_mode(1)", () => {
    const uri = "sip:a@192.168.1.10;alias=192.0.2.1~1111~1;alias=192.0.2.2~2222~1";
    const first = inDialog(uri);
    expect(nh("handle_ruri_alias_mode", first, 0)).toBe(1);
    expect(first.dstUri).toBe("sip:192.0.2.1:1111");
    expect(first.requestUri).toBe("sip:a@192.168.1.10;alias=192.0.2.2~2222~1");
    const last = inDialog(uri);
    expect(nh("handle_ruri_alias_mode", last, 1)).toBe(1);
    expect(last.dstUri).toBe("sip:192.0.2.2:2222");
  });

  it("fails on a reply", () => {
    expect(nh("handle_ruri_alias", makeContext(response(200, "OK"), { host }).ctx)).toBe(-1);
  });
});

describe("alias round trip", () => {
  it("a Contact aliased on the INVITE routes the later in-dialog request back through the NAT", () => {
    const invite = ctxWith({ contact: "<sip:alice@192.168.1.10:5060;transport=tcp>", rcv: { ...NATED, proto: "tcp" } });
    expect(nh("nat_uac_test", invite, 19)).toBe(1);
    expect(nh("set_contact_alias", invite)).toBe(1);
    const [sentContact] = sentContacts(invite);
    const contactUri = /<([^>]+)>/.exec(sentContact!)![1]!;

    // The callee sends its BYE to the Contact it received; the proxy gets it from the callee.
    const bye = ctxWith({ method: "BYE", uri: contactUri, rcv: { srcIp: "198.51.100.30", srcPort: 5060, proto: "udp" } });
    expect(nh("handle_ruri_alias", bye)).toBe(1);
    expect(bye.dstUri).toBe("sip:203.0.113.7:40000;transport=tcp");
    expect(bye.requestUri).toBe("sip:alice@192.168.1.10:5060;transport=tcp");
  });

  it("set_alias_to_pv decodes the alias of the Contact into a PV", () => {
    const ctx = ctxWith({ contact: "<sip:alice@192.168.1.10;alias=203.0.113.7~40000~1>" });
    expect(nh("set_alias_to_pv", ctx, "$var(target)")).toBe(1);
    expect(pv("get", ctx, "$var(target)")).toBe("sip:203.0.113.7:40000;transport=udp");
    expect(nh("set_alias_to_pv", ctx, "$rs")).toBe(-1);
    expect(nh("set_alias_to_pv", ctxWith(), "$var(target)")).toBe(-1);
  });
});

describe("add_rcv_param", () => {
  it("adds received as a header parameter to every contact", () => {
    const ctx = ctxWith({
      method: "REGISTER",
      contact: "<sip:alice@192.168.1.10>;expires=60, sip:alice@192.168.1.11",
      extra: ["Contact: <sip:alice@192.168.1.12>"],
    });
    expect(nh("add_rcv_param", ctx, 0)).toBe(1);
    expect(sentContacts(ctx)).toEqual([
      '<sip:alice@192.168.1.10>;expires=60;received="sip:203.0.113.7:40000", sip:alice@192.168.1.11;received="sip:203.0.113.7:40000"',
      '<sip:alice@192.168.1.12>;received="sip:203.0.113.7:40000"',
    ]);
  });

  it("adds received as a URI parameter with flag 1, UDP only", () => {
    const ctx = ctxWith({ method: "REGISTER", contact: "sip:alice@192.168.1.10;expires=60" });
    expect(nh("add_rcv_param", ctx, 1)).toBe(1);
    expect(sentContacts(ctx)).toEqual(["<sip:alice@192.168.1.10;received=sip:203.0.113.7:40000>;expires=60"]);
    expect(nh("add_rcv_param", ctxWith({ rcv: { ...NATED, proto: "tcp" } }), 1)).toBe(-1);
  });

  it("composes with set_contact_alias and leaves a star Contact alone", () => {
    const ctx = ctxWith();
    nh("set_contact_alias", ctx);
    expect(nh("add_rcv_param", ctx, 0)).toBe(1);
    expect(sentContacts(ctx)).toEqual(['<sip:alice@192.168.1.10:5060;alias=203.0.113.7~40000~1>;received="sip:203.0.113.7:40000"']);
    const star = ctxWith({ method: "REGISTER", contact: "*" });
    expect(nh("add_rcv_param", star, 0)).toBe(1);
    expect(star.edits.replaced.size).toBe(0);
  });
});
