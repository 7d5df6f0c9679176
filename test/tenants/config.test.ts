/**
 * The tenants file: what a valid file becomes, and that every error names
 * the file, the tenant and the field.
 */
import { describe, expect, test } from "vitest";
import { loadTenantsFile, TenantsConfigError, type TenantsConfigIssue } from "../../host/tenants/index.js";
import { REPLY_200, tenantDir } from "./fixtures.js";
import { DEFAULT_TENANT_QUOTAS } from "../../host/core/quota.js";
import { DEFAULT_EGRESS_DENY } from "../../host/core/egress.js";

/** Loads `text` as a tenants file (with the scripts it names written) and returns the issues it raised. */
function issuesOf(text: string, fileName = "tenants.yaml"): TenantsConfigIssue[] {
  const d = tenantDir();
  d.write("a.js", REPLY_200);
  d.write("b.ts", REPLY_200);
  const file = d.write(fileName, text);
  try {
    loadTenantsFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(TenantsConfigError);
    const issues = (e as TenantsConfigError).issues;
    for (const issue of issues) expect(issue.file).toBe(file);
    // The message of the error lists every issue with file, tenant and field.
    for (const issue of issues) {
      expect((e as Error).message).toContain(file);
      if (issue.tenant !== undefined) expect((e as Error).message).toContain(`tenant "${issue.tenant}"`);
      if (issue.field !== "") expect((e as Error).message).toContain(`field ${issue.field}`);
    }
    return [...issues];
  }
  throw new Error("the tenants file was accepted");
}

describe("a valid tenants file", () => {
  test("YAML: defaults filled in, paths resolved relative to the file, one rule or a list", () => {
    const d = tenantDir();
    const a = d.write("a.js", REPLY_200);
    const b = d.write("b.ts", REPLY_200);
    const file = d.write(
      "tenants.yaml",
      `
unmatched: 403
default: b
tenants:
  - id: a
    script: a.js
    match:
      domains: [A.Example.com, "*.a.example.com"]
      sockets: ["udp:127.0.0.1:5060", "[::1]:5062", "tcp:*"]
      sources: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]
    limits: { heapMb: 48, routeTimeoutMs: 50, cpuShare: 0.25 }
    onError: { status: 503 }
    kemi: { reply_route_callback: my_reply, onsend_route_callback: NONE }
    modules: [sl, hdr]
    mode: async
    workers: 3
  - id: b
    script: ./b.ts
    match:
      - domains: [b.example.com]
      - sources: ["::1"]
`,
    );
    const config = loadTenantsFile(file);
    expect(config.file).toBe(file);
    expect(config.unmatched).toBe(403);
    expect(config.defaultTenant).toBe("b");
    const [ta, tb] = config.tenants;
    expect(ta).toEqual({
      id: "a",
      scriptPath: a,
      match: [
        {
          domains: ["a.example.com", "*.a.example.com"],
          sockets: [{ proto: "udp", ip: "127.0.0.1", port: 5060 }, { ip: "::1", port: 5062 }, { proto: "tcp" }],
          sources: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
        },
      ],
      limits: { heapMb: 48, routeTimeoutMs: 50, cpuShare: 0.25, cpuBurstMs: 1000 },
      onError: { status: 503, reason: "Service Unavailable" },
      kemi: { onsend: "", reply: "my_reply", event: "" },
      modules: ["sl", "hdr"],
      mode: "async",
      quotas: DEFAULT_TENANT_QUOTAS,
      egress: { allow: [], deny: [...DEFAULT_EGRESS_DENY] },
      workers: 3,
      ownProcess: false,
      shard: undefined,
      modparams: {},
    });
    expect(tb).toMatchObject({
      id: "b",
      scriptPath: b,
      match: [
        { domains: ["b.example.com"], sockets: [], sources: [] },
        { domains: [], sockets: [], sources: ["::1"] },
      ],
      limits: { heapMb: 64, routeTimeoutMs: 100, cpuShare: 1, cpuBurstMs: 1000 },
      onError: { status: 500, reason: "Server Internal Error" },
      kemi: { onsend: "ksr_onsend_route", reply: "ksr_reply_route", event: "" },
      modules: undefined,
      mode: "sync",
      workers: 1,
    });
  });

  test('onError: none (no reply when the route fails, as app_jsdt); kemi callbacks must be function names; no tm event callback among them', () => {
    const d = tenantDir();
    d.write("a.js", REPLY_200);
    const file = d.write("tenants.yaml", "tenants:\n  - id: a\n    script: a.js\n    onError: none\n    kemi: { onsend_route_callback: ksr_send, event_route_callback: ksr_core_event }\n");
    const [t] = loadTenantsFile(file).tenants;
    expect(t!.onError).toBe("none");
    expect(t!.kemi).toEqual({ onsend: "ksr_send", reply: "ksr_reply_route", event: "ksr_core_event" });
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    kemi: { reply_route_callback: "not a name" }\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "kemi.reply_route_callback", message: expect.stringContaining("function name") }),
    ]);
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    kemi: { tm_event_callback: ev }\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "kemi", message: expect.stringContaining("tm_event_callback") }),
    ]);
  });

  test("JSON works the same way; unmatched defaults to 404", () => {
    const d = tenantDir();
    d.write("a.js", REPLY_200);
    const file = d.write("tenants.json", JSON.stringify({ tenants: [{ id: "a", script: "a.js", match: { domains: ["*"] } }] }));
    const config = loadTenantsFile(file);
    expect(config.unmatched).toBe(404);
    expect(config.defaultTenant).toBeUndefined();
    expect(config.tenants.map((t) => t.id)).toEqual(["a"]);
  });
});

describe("validation errors name the file, the tenant and the field", () => {
  test("workers: a whole number from 1 to 64", () => {
    for (const [value, message] of [["0", "at least 1"], ["1.5", "whole number"], ["65", "at most 64"], ['"two"', "number"]] as const) {
      expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    workers: ${value}\n`)).toEqual([
        expect.objectContaining({ tenant: "acme", field: "workers", message: expect.stringContaining(message) }),
      ]);
    }
  });

  test("a wrong type in the limits", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    limits: { heapMb: "lots" }\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "limits.heapMb", message: expect.stringContaining("number") }),
    ]);
  });

  test("values out of range, each reported", () => {
    const issues = issuesOf(`
tenants:
  - id: acme
    script: a.js
    limits: { heapMb: 2, routeTimeoutMs: 0, cpuShare: 0 }
    onError: { status: 200 }
`);
    expect(issues.map((i) => `${i.tenant}|${i.field}`).sort()).toEqual([
      "acme|limits.cpuShare",
      "acme|limits.heapMb",
      "acme|limits.routeTimeoutMs",
      "acme|onError.status",
    ]);
  });

  test("an unknown field is a typo, not ignored", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    limits: { heapMB: 64 }\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "limits", message: expect.stringContaining("heapMB") }),
    ]);
  });

  test("bad selection patterns: wildcard placement, socket, CIDR", () => {
    const issues = issuesOf(`
tenants:
  - id: acme
    script: a.js
    match:
      domains: ["a.*.example.com", "ok.example.com"]
      sockets: ["udp:::1:5060", "udp:127.0.0.1:70000"]
      sources: ["10.0.0.0/33", "not-an-ip", "2001:db8::/129"]
`);
    expect(issues.map((i) => i.field)).toEqual([
      "match.domains[0]",
      "match.sockets[0]",
      "match.sockets[1]",
      "match.sources[0]",
      "match.sources[1]",
      "match.sources[2]",
    ]);
    expect(issues.every((i) => i.tenant === "acme")).toBe(true);
    expect(issues[0]!.message).toContain("wildcard");
    expect(issues[1]!.message).toContain("brackets");
  });

  test("a tenant without an id is named by its position", () => {
    expect(issuesOf(`tenants:\n  - id: a\n    script: a.js\n  - script: a.js\n`)).toEqual([
      expect.objectContaining({ tenant: "#2", field: "id" }),
    ]);
  });

  test("a script that does not exist", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: missing.js\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "script", message: expect.stringContaining("file not found") }),
    ]);
  });

  test("a script that is not JavaScript or TypeScript", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.lua\n`)).toEqual([expect.objectContaining({ tenant: "acme", field: "script" })]);
  });

  test("an unknown KSR module", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n    modules: [sl, no_such_module]\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "modules[1]", message: expect.stringContaining('"no_such_module"') }),
    ]);
  });

  test("duplicate ids", () => {
    expect(issuesOf(`tenants:\n  - id: acme\n    script: a.js\n  - id: acme\n    script: b.ts\n`)).toEqual([
      expect.objectContaining({ tenant: "acme", field: "id", message: expect.stringContaining("duplicate") }),
    ]);
  });

  test("top-level fields: unmatched status and an unknown default tenant", () => {
    expect(issuesOf(`unmatched: 500\ntenants:\n  - id: a\n    script: a.js\n`)).toEqual([
      expect.objectContaining({ tenant: undefined, field: "unmatched" }),
    ]);
    expect(issuesOf(`default: nobody\ntenants:\n  - id: a\n    script: a.js\n`)).toEqual([
      expect.objectContaining({ tenant: undefined, field: "default", message: expect.stringContaining('"nobody"') }),
    ]);
  });

  test("no tenants at all", () => {
    expect(issuesOf(`tenants: []\n`)).toEqual([expect.objectContaining({ tenant: undefined, field: "tenants" })]);
  });

  test("YAML and JSON syntax errors, and an unknown extension", () => {
    expect(issuesOf(`tenants:\n  - id: [unclosed\n`)[0]).toMatchObject({ tenant: undefined, field: "" });
    expect(issuesOf(`{"tenants": [}`, "tenants.json")[0]).toMatchObject({ message: expect.stringContaining("invalid JSON") });
    expect(issuesOf(`tenants: []`, "tenants.toml")[0]).toMatchObject({ message: expect.stringContaining(".yaml") });
  });

  test("an unreadable file", () => {
    const d = tenantDir();
    expect(() => loadTenantsFile(`${d.dir}/absent.yaml`)).toThrow(/absent\.yaml: top level: cannot read/);
  });
});

describe("a tenant's TLS certificate (tls:)", () => {
  test("is presented for its domains (without \"*\"), or for the names it lists; paths relative to the file", () => {
    const d = tenantDir();
    d.write("a.js", REPLY_200);
    d.write("acme.pem", "cert");
    d.write("acme.key", "key");
    const file = d.write(
      "tenants.yaml",
      "tenants:\n" +
        "  - id: acme\n    script: a.js\n    match: [{ domains: [sip.acme.test, \"*.acme.test\"] }, { domains: [\"*\"] }]\n    tls: { cert: acme.pem, key: acme.key }\n" +
        "  - id: globex\n    script: a.js\n    match: { domains: [globex.test] }\n    tls: { cert: acme.pem, key: acme.key, names: [sips.globex.test] }\n",
    );
    const [acme, globex] = loadTenantsFile(file).tenants;
    expect(acme!.tls).toEqual({ names: ["sip.acme.test", "*.acme.test"], certFile: `${d.dir}/acme.pem`, keyFile: `${d.dir}/acme.key`, owner: "tenant acme" });
    expect(globex!.tls?.names).toEqual(["sips.globex.test"]);
  });

  test("needs a name to be presented for, never \"*\", and files that exist", () => {
    expect(issuesOf(`tenants:\n  - id: a\n    script: a.js\n    match: { domains: ["*"] }\n    tls: { cert: x.pem, key: x.key }\n`)).toEqual(
      expect.arrayContaining([expect.objectContaining({ tenant: "a", field: "tls", message: expect.stringContaining("no server name") })]),
    );
    expect(issuesOf(`tenants:\n  - id: a\n    script: a.js\n    tls: { cert: x.pem, key: x.key, names: ["*"] }\n`)).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: "tls.names", message: expect.stringContaining("every server name") })]),
    );
    expect(issuesOf(`tenants:\n  - id: a\n    script: a.js\n    tls: { cert: x.pem, key: x.key, names: [sip.a.test] }\n`)).toEqual([
      expect.objectContaining({ field: "tls.cert", message: expect.stringContaining("file not found") }),
      expect.objectContaining({ field: "tls.key", message: expect.stringContaining("file not found") }),
    ]);
  });
});
