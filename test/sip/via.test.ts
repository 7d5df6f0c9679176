import { describe, expect, it } from "vitest";
import { formatVia, parseVia, setViaParam, viaParam } from "../../host/sip/via.js";

describe("parseVia", () => {
  it("parses protocol, transport, host, port and the known params", () => {
    const [v, ...rest] = parseVia("SIP/2.0/udp pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5070;maddr=224.2.0.1;ttl=16");
    expect(rest).toEqual([]);
    expect(v).toEqual({
      protocol: "SIP/2.0",
      transport: "UDP",
      host: "pc33.atlanta.com",
      port: 5066,
      params: [
        { name: "branch", value: "z9hG4bK776asdhds" },
        { name: "received", value: "192.0.2.1" },
        { name: "rport", value: "5070" },
        { name: "maddr", value: "224.2.0.1" },
        { name: "ttl", value: "16" },
      ],
      branch: "z9hG4bK776asdhds",
      received: "192.0.2.1",
      rport: "5070",
      maddr: "224.2.0.1",
      ttl: 16,
    });
  });

  it("reports a valueless rport as ''", () => {
    const [v] = parseVia("SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK1");
    expect(v!.rport).toBe("");
    expect(v!.port).toBeUndefined();
  });

  it("splits comma-separated via-parms, allowing LWS around / : ; =", () => {
    const vias = parseVia("SIP / 2.0 / TCP  [2001:db8::9] : 5070 ; branch = z9hG4bKa ; received=2001:db8::1 , SIP/2.0/TLS b.example.com;branch=z9hG4bKb");
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatchObject({ protocol: "SIP/2.0", transport: "TCP", host: "[2001:db8::9]", port: 5070, branch: "z9hG4bKa", received: "2001:db8::1" });
    expect(vias[1]).toMatchObject({ transport: "TLS", host: "b.example.com", branch: "z9hG4bKb" });
  });

  it("keeps extension params, quoted values included", () => {
    const [v] = parseVia('SIP/2.0/UDP h;branch=z9hG4bK1;alias;x-note="a;b,c"');
    expect(viaParam(v!, "alias")).toBe("");
    expect(viaParam(v!, "X-NOTE")).toBe('"a;b,c"');
  });

  it.each([
    ["", "empty"],
    ["SIP/2.0/UDP", "no sent-by"],
    ["SIP/2.0 host", "no transport"],
    ["SIP/2.0/UDPhost", "no LWS before sent-by"],
    ["SIP/2.0/UDP host:", "empty port"],
    ["SIP/2.0/UDP host:99999", "port out of range"],
    ["SIP/2.0/UDP ho$t", "bad host"],
    ["SIP/2.0/UDP [::1", "unterminated IPv6"],
    ["SIP/2.0/UDP host;branch", "branch without value"],
    ["SIP/2.0/UDP host;branch=a b", "trailing garbage"],
    ["SIP/2.0/UDP host;ttl=256", "ttl over 255"],
    ["SIP/2.0/UDP host;ttl=x", "ttl not a number"],
    ["SIP/2.0/UDP host;rport=abc", "rport not a number"],
    ["SIP/2.0/UDP host;received=not_an_ip", "received not an IP"],
    ["SIP/2.0/UDP host;maddr=", "empty maddr"],
    ["SIP/2.0/UDP host;;branch=z9hG4bK1", "empty param"],
    ["SIP/2.0/UDP a;branch=z9hG4bK1, garbage", "one bad via-parm in a list"],
  ])("returns [] for %j (%s)", (text) => {
    expect(parseVia(text)).toEqual([]);
  });
});

describe("formatVia / setViaParam", () => {
  it("round-trips a canonical via-parm", () => {
    const text = "SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKa;rport;received=192.0.2.7";
    expect(formatVia(parseVia(text)[0]!)).toBe(text);
  });
  it("sets received and rport as RFC 3581 §4 asks, keeping param order", () => {
    const v = parseVia("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKx")[0]!;
    const updated = setViaParam(setViaParam(v, "received", "192.0.2.9"), "rport", "40000");
    expect(formatVia(updated)).toBe("SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bKx;received=192.0.2.9");
    expect(updated.received).toBe("192.0.2.9");
    expect(updated.rport).toBe("40000");
    expect(v.received).toBeUndefined(); // original untouched
  });
});
