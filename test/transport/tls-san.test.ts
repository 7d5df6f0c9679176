/**
 * subjectAltName text as Node gives it, taken apart by kind
 * (host/transport/tls.ts), including what a hostile certificate may put in
 * it: commas and quotes inside values, kinds we do not use, text that is
 * not a list at all.
 */
import { describe, expect, it } from "vitest";
import { parseSubjectAltName } from "../../host/transport/tls.js";

describe("parseSubjectAltName", () => {
  it("sorts DNS, URI, email and IP entries, in order", () => {
    expect(parseSubjectAltName("DNS:sip.example.org, DNS:example.org, IP Address:127.0.0.1, IP Address:::1, email:a@example.org, URI:sip:example.org")).toEqual({
      dns: ["sip.example.org", "example.org"],
      uri: ["sip:example.org"],
      email: ["a@example.org"],
      ip: ["127.0.0.1", "::1"],
    });
  });

  it("unquotes a value with a comma, keeps a broken quoted one as written, skips other kinds", () => {
    expect(parseSubjectAltName('URI:"sip:a,b@example.org", DirName:CN=x, DNS:"bad\\q", DNS:ok.example')).toEqual({
      dns: ['"bad\\q"', "ok.example"],
      uri: ["sip:a,b@example.org"],
      email: [],
      ip: [],
    });
  });

  it("answers empty lists for empty or shapeless text", () => {
    const none = { dns: [], uri: [], email: [], ip: [] };
    expect(parseSubjectAltName("")).toEqual(none);
    expect(parseSubjectAltName(",,,  ,")).toEqual(none);
  });
});
