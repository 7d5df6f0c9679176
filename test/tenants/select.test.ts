/**
 * Tenant selection: domain (R-URI or To host, wildcards), listening socket,
 * source CIDR (IPv4 and IPv6), first match wins, default tenant, unmatched.
 */
import { describe, expect, test } from "vitest";
import { loadTenantsFile, TenantSelector, type TenantsConfig } from "../../host/tenants/index.js";
import { rcv, REPLY_200, request, tenantDir } from "./fixtures.js";

function configFrom(yaml: string): TenantsConfig {
  const d = tenantDir();
  d.write("s.js", REPLY_200);
  return loadTenantsFile(d.write("tenants.yaml", yaml));
}

function selectorFor(yaml: string): TenantSelector {
  return new TenantSelector(configFrom(yaml));
}

describe("by domain", () => {
  const selector = selectorFor(`
tenants:
  - id: exact
    script: s.js
    match: { domains: [Voip.Example.com] }
  - id: wild
    script: s.js
    match: { domains: ["*.example.com"] }
  - id: ipv6
    script: s.js
    match: { domains: ["[2001:db8::5]", "192.0.2.99"] }
`);
  const pick = (opts: Parameters<typeof request>[0]) => selector.select(request(opts), rcv())?.id;

  test("exact host of the R-URI, case-insensitive", () => {
    expect(pick({ ruri: "sip:alice@VOIP.example.COM:5060;transport=udp", to: "<sip:x@elsewhere.net>" })).toBe("exact");
  });

  test("a wildcard matches subdomains at any depth but not the bare domain", () => {
    expect(pick({ ruri: "sip:a@pbx.example.com", to: "<sip:x@elsewhere.net>" })).toBe("wild");
    expect(pick({ ruri: "sip:a@a.b.example.com", to: "<sip:x@elsewhere.net>" })).toBe("wild");
    expect(pick({ ruri: "sip:a@example.com", to: "<sip:x@elsewhere.net>" })).toBeUndefined();
    expect(pick({ ruri: "sip:a@badexample.com", to: "<sip:x@elsewhere.net>" })).toBeUndefined();
  });

  test("the To host counts when the R-URI does not match", () => {
    expect(pick({ ruri: "sip:a@198.51.100.1", to: '"Bob" <sip:bob@voip.example.com>;tag=x' })).toBe("exact");
  });

  test("IP literals, IPv6 with brackets", () => {
    expect(pick({ ruri: "sip:a@[2001:DB8::5]:5060", to: "<sip:x@elsewhere.net>" })).toBe("ipv6");
    expect(pick({ ruri: "sip:a@192.0.2.99", to: "<sip:x@elsewhere.net>" })).toBe("ipv6");
  });

  test("a tel: R-URI has no host; the To host decides", () => {
    expect(pick({ ruri: "tel:+15551234", to: "<sip:x@pbx.example.com>" })).toBe("wild");
    expect(pick({ ruri: "tel:+15551234", to: "<tel:+15551234>" })).toBeUndefined();
  });
});

describe("by socket and source", () => {
  const selector = selectorFor(`
tenants:
  - id: tcp-5061
    script: s.js
    match: { sockets: ["tcp:127.0.0.1:5061"] }
  - id: v6-socket
    script: s.js
    match: { sockets: ["udp:[::1]:5060"] }
  - id: lan
    script: s.js
    match: { sources: [10.0.0.0/8] }
  - id: v6-net
    script: s.js
    match: { sources: ["2001:db8:abcd::/48"] }
  - id: one-host
    script: s.js
    match: { sources: [198.51.100.7] }
`);
  const pick = (r: Parameters<typeof rcv>[0]) => selector.select(request({ ruri: "sip:x@nowhere.test", to: "<sip:x@nowhere.test>" }), rcv(r))?.id;

  test("listening socket: protocol, address and port must all match", () => {
    expect(pick({ proto: "tcp", localIp: "127.0.0.1", localPort: 5061 })).toBe("tcp-5061");
    expect(pick({ proto: "udp", localIp: "127.0.0.1", localPort: 5061 })).toBeUndefined();
    expect(pick({ proto: "tcp", localIp: "127.0.0.1", localPort: 5062 })).toBeUndefined();
    expect(pick({ proto: "udp", localIp: "::1", localPort: 5060 })).toBe("v6-socket");
  });

  test("IPv4 CIDR, including an IPv4-mapped IPv6 source address", () => {
    expect(pick({ srcIp: "10.200.3.4" })).toBe("lan");
    expect(pick({ srcIp: "::ffff:10.1.2.3" })).toBe("lan");
    expect(pick({ srcIp: "11.0.0.1" })).toBeUndefined();
  });

  test("IPv6 CIDR", () => {
    expect(pick({ srcIp: "2001:db8:abcd:12::1" })).toBe("v6-net");
    expect(pick({ srcIp: "2001:DB8:ABCD::9" })).toBe("v6-net");
    expect(pick({ srcIp: "2001:db8:abce::1" })).toBeUndefined();
  });

  test("a bare address is a single host", () => {
    expect(pick({ srcIp: "198.51.100.7" })).toBe("one-host");
    expect(pick({ srcIp: "198.51.100.8" })).toBeUndefined();
  });
});

describe("rule combination and order", () => {
  test("every criterion of one rule must match; any rule of a tenant may", () => {
    const selector = selectorFor(`
tenants:
  - id: both
    script: s.js
    match:
      - { domains: [a.example], sources: [10.0.0.0/8] }
      - { sockets: ["udp:*:5099"] }
`);
    const msg = request({ ruri: "sip:x@a.example" });
    expect(selector.select(msg, rcv({ srcIp: "10.0.0.1" }))?.id).toBe("both");
    expect(selector.select(msg, rcv({ srcIp: "192.0.2.1" }))).toBeUndefined();
    expect(selector.select(request({ ruri: "sip:x@b.example" }), rcv({ srcIp: "192.0.2.1", localPort: 5099 }))?.id).toBe("both");
  });

  test("the first matching tenant wins", () => {
    const selector = selectorFor(`
tenants:
  - id: first
    script: s.js
    match: { domains: ["*.example.com"] }
  - id: second
    script: s.js
    match: { domains: [pbx.example.com] }
`);
    expect(selector.select(request({ ruri: "sip:x@pbx.example.com" }), rcv())?.id).toBe("first");
  });

  test("a default tenant takes what no rule selects; a tenant with no rules is only reachable as the default", () => {
    const selector = selectorFor(`
default: fallback
tenants:
  - id: acme
    script: s.js
    match: { domains: [acme.example] }
  - id: fallback
    script: s.js
`);
    expect(selector.select(request({ ruri: "sip:x@acme.example" }), rcv())?.id).toBe("acme");
    expect(selector.select(request({ ruri: "sip:x@other.example", to: "<sip:x@other.example>" }), rcv())?.id).toBe("fallback");
  });

  test("without a default, an unmatched request selects nothing", () => {
    const config = configFrom(`
unmatched: 403
tenants:
  - id: acme
    script: s.js
    match: { domains: [acme.example] }
`);
    expect(new TenantSelector(config).select(request({ ruri: "sip:x@other.example", to: "<sip:x@other.example>" }), rcv())).toBeUndefined();
    expect(config.unmatched).toBe(403);
  });

  test("\"*\" matches any host", () => {
    const selector = selectorFor(`tenants:\n  - id: all\n    script: s.js\n    match: { domains: ["*"] }\n`);
    expect(selector.select(request({ ruri: "sip:x@anything.test" }), rcv())?.id).toBe("all");
  });
});
