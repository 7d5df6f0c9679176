/**
 * Cost of a next hop named by a host name once its RFC 3263 resolution is
 * cached (not a test): what every relayed request to a name pays in the
 * route call.
 *   npx vitest bench --run bench/dns.bench.ts
 */
import { bench, describe } from "vitest";
import { nextHopOf } from "../host/core/outbound.js";
import { CachingDnsLookups, NextHopResolver, resolveOptionsFor } from "../host/dns/resolver.js";
import { TableDnsLookups } from "../host/dns/table.js";

const listen = [
  { proto: "udp" as const, ip: "127.0.0.1", port: 5060 },
  { proto: "tcp" as const, ip: "127.0.0.1", port: 5060 },
];
const table = new TableDnsLookups({
  srv: {
    "_sip._udp.svc.test": [
      { priority: 10, weight: 60, port: 5070, name: "a.test" },
      { priority: 10, weight: 40, port: 5080, name: "b.test" },
    ],
  },
  hosts: { "a.test": "192.0.2.1", "b.test": "192.0.2.2" },
  ttlS: 1_000_000,
});
const options = resolveOptionsFor(listen); // the server makes them once, at start
const resolver = new NextHopResolver(new CachingDnsLookups(table, Date.now), Date.now, () => options);
const srvHop = nextHopOf("sip:bob@svc.test");
const aHop = nextHopOf("sip:bob@a.test:5060");
if (typeof srvHop === "string" || typeof aHop === "string" || srvHop.query === undefined || aHop.query === undefined) throw new Error("bad hop");
await resolver.resolve(srvHop.query);
await resolver.resolve(aHop.query);
if (!Array.isArray(resolver.known(srvHop.query))) throw new Error("not cached");

describe("next hop of a request", () => {
  bench("IP literal: nextHopOf only", () => {
    nextHopOf("sip:bob@192.0.2.1:5060");
  });
  bench("name with a port (A): nextHopOf + cached resolution", () => {
    const hop = nextHopOf("sip:bob@a.test:5060");
    if (typeof hop !== "string" && hop.query !== undefined) resolver.known(hop.query);
  });
  bench("name (NAPTR/SRV/A, 2 weighted SRV targets): nextHopOf + cached resolution", () => {
    const hop = nextHopOf("sip:bob@svc.test");
    if (typeof hop !== "string" && hop.query !== undefined) resolver.known(hop.query);
  });
});
