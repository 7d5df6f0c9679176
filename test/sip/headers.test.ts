import { describe, expect, it } from "vitest";
import { COMPACT_FORMS, canonicalHeaderKey, isMultiValueHeader, splitHeaderValues } from "../../host/sip/headers.js";

describe("canonicalHeaderKey", () => {
  it("expands every compact form of RFC 3261 §7.3.3 and the extensions", () => {
    const expected: Record<string, string> = {
      i: "call-id", v: "via", f: "from", t: "to", m: "contact", l: "content-length",
      c: "content-type", k: "supported", s: "subject", e: "content-encoding", o: "event",
      u: "allow-events", r: "refer-to", b: "referred-by", x: "session-expires",
    };
    for (const [short, full] of Object.entries(expected)) {
      expect(canonicalHeaderKey(short)).toBe(full);
      expect(canonicalHeaderKey(short.toUpperCase())).toBe(full);
      expect(COMPACT_FORMS.get(short)).toBe(full);
    }
    expect(COMPACT_FORMS.size).toBe(Object.keys(expected).length);
  });

  it("lowercases full names and leaves unknown one-letter names alone", () => {
    expect(canonicalHeaderKey("VIA")).toBe("via");
    expect(canonicalHeaderKey("Call-ID")).toBe("call-id");
    expect(canonicalHeaderKey("X-Custom-Header")).toBe("x-custom-header");
    expect(canonicalHeaderKey("q")).toBe("q");
  });
});

describe("isMultiValueHeader", () => {
  it("knows the list headers in any spelling", () => {
    for (const name of ["Via", "v", "Contact", "m", "Route", "Record-Route", "Allow", "Supported", "k", "Require"]) {
      expect(isMultiValueHeader(name)).toBe(true);
    }
  });
  it("excludes single-value headers and the comma-carrying auth headers (§7.3.1)", () => {
    for (const name of ["From", "To", "Call-ID", "CSeq", "Authorization", "WWW-Authenticate", "Proxy-Authorization", "Date"]) {
      expect(isMultiValueHeader(name)).toBe(false);
    }
  });
});

describe("splitHeaderValues", () => {
  it("splits on top-level commas and trims", () => {
    expect(splitHeaderValues("INVITE, ACK ,BYE,  CANCEL")).toEqual(["INVITE", "ACK", "BYE", "CANCEL"]);
  });
  it("keeps commas inside quoted strings, including escaped quotes", () => {
    expect(splitHeaderValues('"Doe, John" <sip:j@x>, "a \\" , b" <sip:b@y>')).toEqual([
      '"Doe, John" <sip:j@x>',
      '"a \\" , b" <sip:b@y>',
    ]);
  });
  it("keeps commas inside <...>", () => {
    expect(splitHeaderValues("<sip:a@x;foo=1,2>;q=0.5, <sip:b@y>")).toEqual(["<sip:a@x;foo=1,2>;q=0.5", "<sip:b@y>"]);
  });
  it("drops empty elements and handles an empty value", () => {
    expect(splitHeaderValues("a, ,b,")).toEqual(["a", "b"]);
    expect(splitHeaderValues("")).toEqual([]);
    expect(splitHeaderValues("   ")).toEqual([]);
  });
  it("splits several via-parms", () => {
    expect(splitHeaderValues("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5070;branch=z9hG4bK2")).toEqual([
      "SIP/2.0/UDP a;branch=z9hG4bK1",
      "SIP/2.0/TCP b:5070;branch=z9hG4bK2",
    ]);
  });
});
