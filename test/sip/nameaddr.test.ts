import { describe, expect, it } from "vitest";
import { formatNameAddr, headerParam, parseNameAddr } from "../../host/sip/nameaddr.js";

describe("parseNameAddr: name-addr form", () => {
  it("unquotes a quoted display name with escaped quotes", () => {
    const na = parseNameAddr('"Quoted \\"x\\"" <sip:a@b>;tag=1');
    expect(na).toEqual({ displayName: 'Quoted "x"', uri: "sip:a@b", params: [{ name: "tag", value: "1" }] });
  });

  it("keeps URI parameters inside <> and header parameters after it", () => {
    const na = parseNameAddr("<sip:alice@atlanta.com;transport=tcp>;tag=88sja8x;expires=60");
    expect(na?.uri).toBe("sip:alice@atlanta.com;transport=tcp");
    expect(na?.displayName).toBeUndefined();
    expect(na?.params).toEqual([
      { name: "tag", value: "88sja8x" },
      { name: "expires", value: "60" },
    ]);
  });

  it("reads token display names (several tokens, UTF-8 bytes) and LWS around < and ;", () => {
    expect(parseNameAddr("Bob Smith <sip:bob@x>")?.displayName).toBe("Bob Smith");
    expect(parseNameAddr("J\u00c3\u00a9r\u00c3\u00b4me <sip:j@x>")?.displayName).toBe("J\u00c3\u00a9r\u00c3\u00b4me");
    const na = parseNameAddr('  "A"<sip:a@b> ; tag = xyz ;lr  ');
    expect(na).toEqual({ displayName: "A", uri: "sip:a@b", params: [{ name: "tag", value: "xyz" }, { name: "lr" }] });
  });

  it("keeps quoted parameter values as written", () => {
    const na = parseNameAddr('<sip:a@b>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1');
    expect(headerParam(na!, "+sip.instance")).toBe('"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"');
    expect(headerParam(na!, "REG-ID")).toBe("1");
  });

  it("accepts an empty quoted display name and non-sip URIs", () => {
    expect(parseNameAddr('"" <tel:+123>')).toEqual({ displayName: "", uri: "tel:+123", params: [] });
    expect(parseNameAddr("<urn:service:sos>")?.uri).toBe("urn:service:sos");
  });
});

describe("parseNameAddr: addr-spec form (RFC 3261 §20.10)", () => {
  it("gives parameters after an addr-spec to the header, not the URI", () => {
    const na = parseNameAddr("sip:alice@atlanta.com;tag=1928301774;foo");
    expect(na).toEqual({
      uri: "sip:alice@atlanta.com",
      params: [{ name: "tag", value: "1928301774" }, { name: "foo" }],
    });
  });
  it("accepts a bare addr-spec", () => {
    expect(parseNameAddr("sips:bob@[2001:db8::1]:5061")).toEqual({ uri: "sips:bob@[2001:db8::1]:5061", params: [] });
  });
});

describe("parseNameAddr: malformed", () => {
  it.each([
    ["", "empty"],
    ["*", "contact wildcard is not a name-addr"],
    ['"unterminated <sip:a@b>', "unterminated quote"],
    ['"A" sip:a@b', "quoted name without <>"],
    ["<sip:a@b", "missing >"],
    ["<>", "empty URI"],
    ["<sip a@b>", "space in URI"],
    ["<nocolon>", "no scheme"],
    ["<1sip:a@b>", "scheme must start with a letter"],
    ["<sip:a@b>;", "empty parameter"],
    ["<sip:a@b>;tag=", "empty parameter value"],
    ["<sip:a@b> junk", "trailing text"],
    ["<sip:a@b>;tag=\"x", "unterminated quoted value"],
    ['Bad"Name <sip:a@b>', "quote inside token display name"],
    ["Bad@Name <sip:a@b>", "non-token display name"],
  ])("rejects %j (%s)", (text) => {
    expect(parseNameAddr(text)).toBeNull();
  });
});

describe("headerParam / formatNameAddr", () => {
  it("returns undefined when absent and '' for a flag", () => {
    const na = parseNameAddr("<sip:a@b>;lr;tag=5")!;
    expect(headerParam(na, "lr")).toBe("");
    expect(headerParam(na, "Tag")).toBe("5");
    expect(headerParam(na, "expires")).toBeUndefined();
  });
  it("formats with quoting and escaping, always as name-addr", () => {
    expect(formatNameAddr({ displayName: 'Say "hi" \\', uri: "sip:a@b", params: [{ name: "tag", value: "1" }, { name: "lr" }] })).toBe(
      '"Say \\"hi\\" \\\\" <sip:a@b>;tag=1;lr',
    );
    expect(formatNameAddr(parseNameAddr("sip:a@b;tag=2")!)).toBe("<sip:a@b>;tag=2");
  });
  it("round-trips through format and parse", () => {
    const original = parseNameAddr('"Al \\"x\\"" <sip:al@b;lr>;tag=9')!;
    expect(parseNameAddr(formatNameAddr(original))).toEqual(original);
  });
});
