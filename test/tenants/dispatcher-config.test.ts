/**
 * The `dispatcher:` block of a tenant in the tenants file: the list is
 * checked when the file is read (errors name the list file and line), and
 * the tenant's registry entry gets the list and its parameters.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadTenantsFile, TenantsConfigError } from "../../host/tenants/config.js";
import { TenantRegistry } from "../../host/tenants/registry.js";
import { dispatcherOf, removeDispatcher } from "../../host/modules/dispatcher/tenants.js";
import { REPLY_200, tenantDir } from "./fixtures.js";

afterEach(() => removeDispatcher("acme"));

function issuesOf(yaml: string, list: string) {
  const t = tenantDir();
  t.write("acme.js", REPLY_200);
  t.write("ds.list", list);
  const file = t.write("tenants.yaml", yaml);
  try {
    return { config: loadTenantsFile(file), issues: [], dir: t.dir };
  } catch (e) {
    if (!(e instanceof TenantsConfigError)) throw e;
    return { config: undefined, issues: e.issues, dir: t.dir };
  }
}

const TENANT = (block: string) => `tenants:\n  - id: acme\n    script: acme.js\n${block}`;

describe("tenants file dispatcher block", () => {
  it("reads the list relative to the tenants file, with its parameters", () => {
    const { config, issues, dir } = issuesOf(TENANT("    dispatcher:\n      list: ds.list\n      params: { flags: 2, hash_pvar: $fU }\n"), "1 sip:127.0.0.1:5070\n");
    expect(issues).toEqual([]);
    expect(config!.tenants[0]!.dispatcher).toEqual({ list: `${dir}/ds.list`, params: { flags: 2, hash_pvar: "$fU" } });
  });

  it("names the list file and line of a bad entry", () => {
    const { issues, dir } = issuesOf(TENANT("    dispatcher:\n      list: ds.list\n"), "1 sip:127.0.0.1\n1 sip:127.0.0.2 0 0 weight=500\n");
    expect(issues).toEqual([expect.objectContaining({ tenant: "acme", field: "dispatcher", message: `${dir}/ds.list:2: weight 500 is not in 1..100` })]);
  });

  it("refuses an unknown parameter and a missing list", () => {
    expect(issuesOf(TENANT("    dispatcher:\n      list: ds.list\n      params: { nope: 1 }\n"), "").issues[0]!.message).toContain('unknown dispatcher parameter "nope"');
    expect(issuesOf(TENANT("    dispatcher:\n      list: other.list\n"), "").issues[0]!.message).toContain("other.list: cannot read");
  });

  it("gives the tenant its list when the registry starts it", () => {
    const { config } = issuesOf(TENANT("    dispatcher:\n      list: ds.list\n      params: { flags: 2 }\n"), "4 sip:127.0.0.1:5070\n");
    const registry = new TenantRegistry(config!);
    try {
      expect(dispatcherOf("acme")!.settings.flags).toBe(2);
      expect([...dispatcherOf("acme")!.list.sets.keys()]).toEqual([4]);
    } finally {
      registry.dispose();
    }
  });
});
