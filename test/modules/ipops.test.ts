/**
 * KSR.ipops against Kamailio 5.6's return values. DNS functions answer from
 * the server's DNS cache: a name not in it answers "not resolved" at once
 * and is looked up in the background, so the next call has the answer.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadScriptSource, type ScriptHarness } from "../../host/testing/index.js";

const harnesses: ScriptHarness[] = [];
afterEach(() => {
  for (const h of harnesses.splice(0)) h.close();
});

/** Runs `body` (which sets $var(out)) in a request route and returns the info lines it logged. */
async function run(body: string, opts: Parameters<typeof loadScriptSource>[2] = {}): Promise<{ h: ScriptHarness; lines: () => Promise<string[]> }> {
  const h = await loadScriptSource(`function ksr_request_route() { ${body} }`, "ipops.js", opts);
  harnesses.push(h);
  return {
    h,
    lines: async () => (await h.send({ method: "OPTIONS", ruri: "sip:x@127.0.0.1" })).logs.filter((l) => l.level === "info").map((l) => l.text),
  };
}

const out = (expr: string): string => `KSR.info(String(${expr}));`;

describe("address checks", () => {
  it("is_ip, is_pure_ip, is_ip4, is_ip6, is_ip6_reference, ip_type", async () => {
    const inputs = ["1.2.3.4", "::1", "[2001:db8::1]", "example.com", "1.2.3.256", ""];
    const calls = inputs.flatMap((s) =>
      ["is_ip", "is_pure_ip", "is_ip4", "is_ip6", "is_ip6_reference", "ip_type"].map((f) => out(`"${f} ${s} " + KSR.ipops.${f}(${JSON.stringify(s)})`)),
    );
    const { lines } = await run(calls.join(""));
    const got = await lines();
    const row = (s: string): string[] => got.filter((l) => l.split(" ")[1] === s || (s === "" && l.split(" ")[1] === "")).map((l) => l.split(" ").pop()!);
    expect(row("1.2.3.4")).toEqual(["1", "1", "1", "-1", "-1", "1"]);
    expect(row("::1")).toEqual(["1", "1", "-1", "1", "-1", "2"]);
    expect(row("[2001:db8::1]")).toEqual(["1", "-1", "-1", "-1", "1", "3"]);
    expect(row("example.com")).toEqual(["-1", "-1", "-1", "-1", "-1", "-1"]);
    expect(row("1.2.3.256")).toEqual(["-1", "-1", "-1", "-1", "-1", "-1"]);
  });

  it("compare_ips takes IPv6 in any form and references; compare_pure_ips refuses references", async () => {
    const { lines } = await run(
      [
        out(`KSR.ipops.compare_ips("2001:db8::1", "[2001:0db8:0:0::1]")`),
        out(`KSR.ipops.compare_ips("10.0.0.1", "10.0.0.2")`),
        out(`KSR.ipops.compare_ips("10.0.0.1", "nope")`),
        out(`KSR.ipops.compare_pure_ips("2001:db8::1", "[2001:db8::1]")`),
        out(`KSR.ipops.compare_pure_ips("::ffff:1.2.3.4", "::ffff:102:304")`),
      ].join(""),
    );
    expect(await lines()).toEqual(["1", "-1", "-1", "-1", "1"]);
  });

  it("ip_is_in_subnet / is_in_subnet: any of a comma list, bare addresses, family mismatch is no match", async () => {
    const { lines } = await run(
      [
        out(`KSR.ipops.ip_is_in_subnet("192.168.1.7", "10.0.0.0/8, 192.168.0.0/16")`),
        out(`KSR.ipops.is_in_subnet("192.168.1.7", "10.0.0.0/8")`),
        out(`KSR.ipops.is_in_subnet("2001:db8::5", "2001:db8::/32")`),
        out(`KSR.ipops.is_in_subnet("2001:db8::5", "10.0.0.0/8")`),
        out(`KSR.ipops.is_in_subnet("10.1.1.1", "10.1.1.1")`),
        out(`KSR.ipops.is_in_subnet("[::1]", "::/0")`),
        out(`KSR.ipops.is_in_subnet("10.1.1.1", "10.0.0.0/33")`),
      ].join(""),
    );
    expect(await lines()).toEqual(["1", "-1", "1", "-1", "1", "-1", "-1"]);
  });

  it("is_ip_rfc1918 and detailed_ip_type", async () => {
    const { lines } = await run(
      [
        out(`KSR.ipops.is_ip_rfc1918("172.20.1.1") + " " + KSR.ipops.is_ip_rfc1918("172.32.0.1") + " " + KSR.ipops.is_ip_rfc1918("::1")`),
        ...["8.8.8.8", "10.2.3.4", "127.0.0.1", "192.0.2.1", "100.64.1.1", "::1", "2001:db8::1", "fe80::1", "2a00::1", "[::1]"].map(
          (ip) => `${out(`KSR.ipops.detailed_ip_type("${ip}", "$var(t)") + " " + KSR.pv.get("$var(t)")`)}KSR.pv.sets("$var(t)", "");`,
        ),
        out(`KSR.ipops.detailed_ipv4_type("::1", "$var(t)")`),
        out(`KSR.ipops.detailed_ipv6_type("10.0.0.1", "$var(t)")`),
      ].join(""),
    );
    expect(await lines()).toEqual([
      "1 -1 -1",
      "1 PUBLIC",
      "1 PRIVATE",
      "1 LOOPBACK",
      "1 TEST-NET",
      "1 SHARED",
      "1 LOOPBACK",
      "1 DOCUMENTATION",
      "1 LINK-LOCAL-UNICAST",
      "1 GLOBAL-UNICAST",
      "1 LOOPBACK",
      "-1",
      "-1",
    ]);
  });
});

describe("DNS queries from the cache", () => {
  const dns = {
    hosts: { "pbx.test": ["192.0.2.10", "2001:db8::10"], "a.test": "192.0.2.1", "b.test": "192.0.2.2" },
    srv: {
      "_sip._udp.pbx.test": [
        { priority: 20, weight: 0, port: 5070, name: "b.test" },
        { priority: 10, weight: 0, port: 5080, name: "a.test" },
      ],
    },
    naptr: {
      "pbx.test": [
        { order: 20, preference: 10, flags: "s", service: "SIP+D2U", regexp: "", replacement: "_sip._udp.pbx.test" },
        { order: 10, preference: 10, flags: "s", service: "SIP+D2T", regexp: "", replacement: "_sip._tcp.pbx.test" },
      ],
    },
  };

  it("dns_query: -4 while not cached, then 1 with $dns filled (A then AAAA)", async () => {
    const { lines } = await run(
      out(`KSR.ipops.dns_query("pbx.test", "d") + " " + KSR.pv.get("$dns(d=>count)") + " " + KSR.pv.get("$dns(d=>addr[0])") + " " + KSR.pv.get("$dns(d=>type[1])") + " " + KSR.pv.get("$dns(d=>addr[-1])") + " " + KSR.pv.get("$dns(d=>ipv4)") + KSR.pv.get("$dns(d=>ipv6)")`),
      { dns },
    );
    const first = await lines();
    expect(first.at(-1)).toBe("-4 0 null null null 00");
    expect(first.some((l) => l.includes("not in the DNS cache yet"))).toBe(true);
    expect((await lines()).at(-1)).toBe("1 2 192.0.2.10 6 2001:db8::10 11");
  });

  it("dns_query of a name that does not exist: -4; of an address: 1 with the address", async () => {
    const { lines } = await run(
      [out(`KSR.ipops.dns_query("nowhere.test", "d") + " " + KSR.pv.get("$dns(d=>count)")`), out(`KSR.ipops.dns_query("10.0.0.1", "e") + " " + KSR.pv.get("$dns(e=>addr)")`)].join(""),
      { dns },
    );
    await lines();
    const second = (await lines()).filter((l) => !l.includes("DNS cache"));
    expect(second).toEqual(["-4 0", "1 10.0.0.1"]);
  });

  it("srv_query: records by priority; naptr_query: by order then preference", async () => {
    const { lines } = await run(
      [
        out(`KSR.ipops.srv_query("_sip._udp.pbx.test", "s") + " " + KSR.pv.get("$srvquery(s=>count)") + " " + KSR.pv.get("$srvquery(s=>target[0])") + ":" + KSR.pv.get("$srvquery(s=>port[0])") + " " + KSR.pv.get("$srvquery(s=>priority[1])")`),
        out(`KSR.ipops.naptr_query("pbx.test", "n") + " " + KSR.pv.get("$naptrquery(n=>count)") + " " + KSR.pv.get("$naptrquery(n=>services[0])") + " " + KSR.pv.get("$naptrquery(n=>replace[0])") + " " + KSR.pv.get("$naptrquery(n=>order[1])")`),
      ].join(""),
      { dns },
    );
    expect((await lines()).filter((l) => !l.includes("DNS cache"))).toEqual(["-1 0 null:null null", "-1 0 null null null"]);
    expect(await lines()).toEqual(["1 2 a.test:5080 20", "1 2 SIP+D2T _sip._tcp.pbx.test 20"]);
  });

  it("dns_int_match_ip and dns_sys_match_ip", async () => {
    const { lines } = await run(
      [
        out(`KSR.ipops.dns_int_match_ip("pbx.test", "192.0.2.10")`),
        out(`KSR.ipops.dns_sys_match_ip("pbx.test", "2001:db8:0::10")`),
        out(`KSR.ipops.dns_int_match_ip("pbx.test", "192.0.2.11")`),
        out(`KSR.ipops.dns_int_match_ip("pbx.test", "not-an-ip")`),
        out(`KSR.ipops.dns_int_match_ip("nowhere.test", "192.0.2.11")`),
      ].join(""),
      { dns },
    );
    await lines();
    expect(await lines()).toEqual(["1", "1", "-1", "-3", "-4"]);
  });

  it("KSR.x.modf reaches the native names (is_ipv4 is KEMI's is_ip4)", async () => {
    const { lines } = await run([out(`KSR.x.modf("is_ipv4", "10.0.0.1")`), out(`KSR.x.modf("is_ipv6", "10.0.0.1")`)].join(""));
    expect(await lines()).toEqual(["1", "-1"]);
  });
});
