import { describe, expect, it } from "vitest";
import { defaultPort, formatUri, parseUri, unescapeUriPart, uriParam, uriTransport } from "../../host/sip/uri.js";

describe("parseUri: SIP and SIPS (RFC 3261 §19.1)", () => {
  it("parses user, password, host, port, params and headers", () => {
    const u = parseUri("sip:alice:secretword@atlanta.com:5070;transport=tcp;lr?subject=project%20x&priority=urgent");
    expect(u).toEqual({
      scheme: "sip",
      user: "alice",
      password: "secretword",
      host: "atlanta.com",
      port: 5070,
      params: [{ name: "transport", value: "tcp" }, { name: "lr" }],
      headers: [
        { name: "subject", value: "project%20x" },
        { name: "priority", value: "urgent" },
      ],
    });
  });

  it("parses a host-only URI and a sips URI, scheme case-insensitive", () => {
    expect(parseUri("sip:example.com")).toEqual({ scheme: "sip", host: "example.com", params: [], headers: [] });
    const s = parseUri("SIPS:bob@biloxi.com");
    expect(s?.scheme).toBe("sips");
    expect(s?.user).toBe("bob");
  });

  it("keeps IPv6 references with brackets and reads the port after them", () => {
    const u = parseUri("sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::1]");
    expect(u?.host).toBe("[2001:db8::10]");
    expect(u?.port).toBe(5070);
    expect(uriParam(u!, "maddr")).toBe("[2001:db8::1]");
    expect(parseUri("sip:[::1]")?.host).toBe("[::1]");
    expect(parseUri("sip:[::ffff:192.0.2.1]:5060")?.host).toBe("[::ffff:192.0.2.1]");
  });

  it("accepts IPv4 hosts and user parts with user-unreserved chars and escapes", () => {
    const u = parseUri("sip:+1-212-555-1212;phone-context=example.com@192.0.2.4;user=phone");
    expect(u?.user).toBe("+1-212-555-1212;phone-context=example.com");
    expect(u?.host).toBe("192.0.2.4");
    expect(uriParam(u!, "user")).toBe("phone");
    const e = parseUri("sip:sip%3Auser%40example.com@example.net");
    expect(e?.user).toBe("sip%3Auser%40example.com");
    expect(unescapeUriPart(e!.user!)).toBe("sip:user@example.com");
  });

  it("allows an empty password", () => {
    const u = parseUri("sip:alice:@example.com");
    expect(u?.user).toBe("alice");
    expect(u?.password).toBe("");
  });

  it.each([
    ["", "empty"],
    ["sip:", "no host"],
    ["sip:@example.com", "empty user"],
    ["sip:alice@", "empty host after @"],
    ["sip:alice@exa mple.com", "space in host"],
    ["sip:alice@example.com:", "empty port"],
    ["sip:alice@example.com:65536", "port out of range"],
    ["sip:alice@example.com:12a", "non-digit port"],
    ["sip:alice@[2001:db8::1", "unterminated IPv6 reference"],
    ["sip:alice@[2001:db8:::1]", "invalid IPv6"],
    ["sip:alice@[1:2:3:4:5:6:7:8:9]", "too many IPv6 groups"],
    ["sip:al<ice@example.com", "forbidden char in user"],
    ["sip:alice@example.com;", "empty parameter name"],
    ["sip:alice@example.com;=x", "empty parameter name before ="],
    ["sip:alice@example.com;a b", "space in parameter"],
    ["sip:alice@example.com?", "empty header"],
    ["sip:alice@example.com;x=%zz", "bad escape"],
    ["sip:alice%4@example.com", "truncated escape"],
    ["http://example.com/", "unsupported scheme"],
    ["mailto:a@b", "unsupported scheme"],
    ["sip:a@..example.com", "empty label"],
  ])("rejects %j (%s)", (text) => {
    expect(parseUri(text)).toBeNull();
  });
});

describe("parseUri: tel (RFC 3966)", () => {
  it("puts a global number with visual separators in user and reads params", () => {
    const u = parseUri("tel:+1-201-555-0123;ext=1234;isub=1411");
    expect(u).toEqual({
      scheme: "tel",
      user: "+1-201-555-0123",
      host: "",
      params: [
        { name: "ext", value: "1234" },
        { name: "isub", value: "1411" },
      ],
      headers: [],
    });
  });
  it("accepts local numbers with phone-context", () => {
    const u = parseUri("tel:7042;phone-context=example.com");
    expect(u?.user).toBe("7042");
    expect(uriParam(u!, "phone-context")).toBe("example.com");
    expect(parseUri("tel:*21#;phone-context=+1")?.user).toBe("*21#");
  });
  it.each(["tel:", "tel:+", "tel:+12a", "tel:12 34", "tel:+1;ext", "tel:+1;e_x=1", "tel:+1?x=y"])("rejects %j", (text) => {
    expect(parseUri(text)).toBeNull();
  });
});

describe("formatUri", () => {
  it.each([
    "sip:alice:pw@atlanta.com:5070;transport=tcp;lr?subject=project%20x&priority=urgent",
    "sips:bob@[2001:db8::10]:5061",
    "sip:example.com;maddr=239.255.255.1;ttl=15",
    "sip:%61lice@example.com",
    "tel:+1-201-555-0123;ext=1234",
    "sip:a@b;x=",
  ])("round-trips %j", (text) => {
    expect(formatUri(parseUri(text)!)).toBe(text);
  });
  it("writes a built URI", () => {
    expect(formatUri({ scheme: "sip", user: "u", host: "h", port: 1, params: [{ name: "lr" }], headers: [] })).toBe("sip:u@h:1;lr");
  });
});

describe("uriParam, defaultPort, uriTransport", () => {
  it("distinguishes absent params from flag params, names case-insensitive", () => {
    const u = parseUri("sip:a@b;LR;Transport=TCP")!;
    expect(uriParam(u, "lr")).toBe("");
    expect(uriParam(u, "transport")).toBe("TCP");
    expect(uriParam(u, "maddr")).toBeUndefined();
  });
  it("derives transport and default port", () => {
    expect(uriTransport(parseUri("sip:a@b")!)).toBe("udp");
    expect(defaultPort(parseUri("sip:a@b")!)).toBe(5060);
    expect(uriTransport(parseUri("sip:a@b;transport=TCP")!)).toBe("tcp");
    expect(defaultPort(parseUri("sip:a@b;transport=tcp")!)).toBe(5060);
    expect(uriTransport(parseUri("sip:a@b;transport=tls")!)).toBe("tls");
    expect(defaultPort(parseUri("sip:a@b;transport=tls")!)).toBe(5061);
    expect(uriTransport(parseUri("sips:a@b")!)).toBe("tls");
    expect(uriTransport(parseUri("sips:a@b;transport=tcp")!)).toBe("tls");
    expect(defaultPort(parseUri("sips:a@b")!)).toBe(5061);
  });
});

describe("unescapeUriPart", () => {
  it("decodes %HH to bytes and keeps malformed escapes", () => {
    expect(unescapeUriPart("a%20b%3d")).toBe("a b=");
    expect(unescapeUriPart("100%")).toBe("100%");
    expect(unescapeUriPart("%zz%4")).toBe("%zz%4");
    expect(unescapeUriPart("%C3%A9")).toBe("\u00c3\u00a9"); // UTF-8 bytes as a binary string
  });
});
