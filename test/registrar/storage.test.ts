/**
 * The SQLite-backed stores: registrations survive a reopen of the file
 * (restart), memory-only saves do not, expired bindings are dropped at load
 * and swept in bounded steps; the address table (KSR.permissions) and the
 * `ksr subscriber|address` commands; tenant isolation of every table.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Command } from "commander";
import { registrarModule } from "../../host/modules/registrar.js";
import { permissionsModule } from "../../host/modules/permissions.js";
import { openRunDatabase, registerDbCommands } from "../../host/cli/db-commands.js";
import { openSqlite, SqliteAddressStore, SqliteSubscriberStore } from "../../host/storage/sqlite.js";
import { CachedLocationStore } from "../../host/storage/location.js";
import type { Binding } from "../../host/storage/types.js";
import { caller } from "../modules/call.js";
import { contextOn, invite, makeDataHost, register, T0 } from "./helpers.js";

const reg = caller(registrarModule);
const perm = caller(permissionsModule);
const dirs: string[] = [];

function tempDb(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "ksr-db-"));
  dirs.push(dir);
  return path.join(dir, "ksr.sqlite");
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("persistence", () => {
  it("keeps registrations across a close and reopen of the file", () => {
    const file = tempDb();
    const first = makeDataHost({ file });
    const { ctx } = contextOn(first, register({ contacts: ["<sip:alice@10.0.0.1:5070>;q=0.7", "<sip:alice@10.0.0.2:5070>"], headers: ["Path: <sip:edge.example.net;lr>", "User-Agent: phone/1.0"] }));
    ctx.branchFlags[0] = 0x40;
    expect(reg("save", ctx, "location", 0)).toBe(1);
    const before = first.data.locations.bindings("t1", "location", "alice");
    first.data.close();

    const second = makeDataHost({ file });
    second.clock.ms = T0 + 10_000;
    const after = second.data.locations.bindings("t1", "location", "alice");
    expect(after).toEqual(before);
    const look = contextOn(second, invite("sip:alice@example.com")).ctx;
    expect(reg("lookup", look, "location")).toBe(1);
    expect(look.requestUri).toBe("sip:alice@10.0.0.1:5070");
    second.data.close();
  });

  it("does not persist memory-only saves (flag 0x01) and drops bindings expired while closed", () => {
    const file = tempDb();
    const first = makeDataHost({ file });
    reg("save", contextOn(first, register({ aor: "sip:mem@example.com" })).ctx, "location", 0x01);
    reg("save", contextOn(first, register({ aor: "sip:short@example.com", expires: 60, callId: "s" })).ctx, "location", 0);
    reg("save", contextOn(first, register({ aor: "sip:long@example.com", expires: 3600, callId: "l" })).ctx, "location", 0);
    expect(first.data.locations.bindings("t1", "location", "mem")).toHaveLength(1);
    first.data.close();

    // Reopened two minutes later: the 60 s binding is gone, the memory-only one never was stored.
    const second = makeDataHost({ file }, T0 + 120_000);
    expect(second.data.locations.bindings("t1", "location", "short")).toHaveLength(0);
    expect(second.data.locations.bindings("t1", "location", "mem")).toHaveLength(0);
    expect(second.data.locations.bindings("t1", "location", "long")).toHaveLength(1);
    second.data.close();
    const db = openSqlite(file);
    const rows = db.prepare("SELECT aor FROM location ORDER BY aor").all() as { aor: string }[];
    db.close();
    expect(rows.map((r) => r.aor)).toEqual(["long"]);
  });

  it("sweeps expired bindings in bounded steps, from memory and file", () => {
    const persisted: string[] = [];
    const store = new CachedLocationStore(
      { loadValid: () => [], apply: (_u, deletions) => void persisted.push(...deletions), changedElsewhere: () => false },
      T0,
    );
    const binding = (aor: string, i: number, expires: number): Binding => ({
      ruid: `${aor}-${i}`, aor, contact: `sip:${aor}${i}@10.0.0.1`, expires, q: -1, callId: "c", cseq: 1, path: "", received: "",
      instance: "", regId: 0, userAgent: "", socket: "", branchFlags: 0, methods: [], lastModified: T0, seq: 0, memoryOnly: false,
    });
    for (let a = 0; a < 5; a++) {
      store.replace("t", "location", `u${a}`, [binding(`u${a}`, 0, T0 + 1000), binding(`u${a}`, 1, T0 + 10_000)]);
    }
    expect(store.sweepExpired(T0 + 5000, 3)).toBe(3);
    expect(store.sweepExpired(T0 + 5000, 3)).toBe(2);
    expect(store.sweepExpired(T0 + 5000, 3)).toBe(0);
    expect(persisted.sort()).toEqual(["u0-0", "u1-0", "u2-0", "u3-0", "u4-0"]);
    expect(store.aorCount("t")).toBe(5);
    expect(store.sweepExpired(T0 + 20_000, 100)).toBe(5);
    expect(store.aorCount("t")).toBe(0);
  });
});

describe("location in memory only (--location memory, usrloc db_mode 0)", () => {
  const locationRows = (file: string): string[] => {
    const db = openSqlite(file);
    const rows = db.prepare("SELECT aor FROM location ORDER BY aor").all() as { aor: string }[];
    db.close();
    return rows.map((r) => r.aor);
  };

  it("finds a saved REGISTER by lookup until it expires, and writes nothing to the file", () => {
    const file = tempDb();
    const host = makeDataHost({ file, location: "memory" });
    expect(reg("save", contextOn(host, register({ expires: 60 })).ctx, "location", 0)).toBe(1);
    host.clock.ms = T0 + 59_000;
    const found = contextOn(host, invite("sip:alice@example.com")).ctx;
    expect(reg("lookup", found, "location")).toBe(1);
    expect(found.requestUri).toBe("sip:alice@10.0.0.1:5070");
    expect(locationRows(file)).toEqual([]);

    // RFC 3261 §10.3: a binding past its expiration is gone; lookup answers -1 (not found).
    host.clock.ms = T0 + 61_000;
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(-1);
    expect(host.data.locations.sweepExpired(host.clock.ms, 10)).toBe(1);
    expect(host.data.locations.aorCount("t1")).toBe(0);
    host.data.close();
  });

  it("loses its bindings at a restart and neither loads nor removes rows a db-mode run stored", () => {
    const file = tempDb();
    const stored = makeDataHost({ file });
    reg("save", contextOn(stored, register({ aor: "sip:kept@example.com" })).ctx, "location", 0);
    stored.data.close();

    const memory = makeDataHost({ file, location: "memory" });
    expect(memory.data.locations.bindings("t1", "location", "kept")).toEqual([]);
    reg("save", contextOn(memory, register({ aor: "sip:volatile@example.com", callId: "v" })).ctx, "location", 0);
    expect(memory.data.locations.bindings("t1", "location", "volatile")).toHaveLength(1);
    memory.data.close();
    expect(locationRows(file)).toEqual(["kept"]);

    const restarted = makeDataHost({ file, location: "memory" });
    expect(restarted.data.locations.bindings("t1", "location", "volatile")).toEqual([]);
    restarted.data.close();
  });

  it("is what openRunDatabase (ksr run --location memory) opens, subscribers still from the file", () => {
    const file = tempDb();
    const data = openRunDatabase(file, "memory");
    data.subscribers.put("default", { username: "alice", domain: "example.com", password: "", ha1: "h", ha1b: "hb", ha1Sha256: "", ha1bSha256: "" });
    const binding: Binding = {
      ruid: "r1", aor: "alice", contact: "sip:alice@10.0.0.1", expires: Date.now() + 60_000, q: -1, callId: "c", cseq: 1, path: "", received: "",
      instance: "", regId: 0, userAgent: "", socket: "", branchFlags: 0, methods: [], lastModified: Date.now(), seq: 0, memoryOnly: false,
    };
    data.locations.replace("default", "location", "alice", [binding]);
    expect(data.locations.bindings("default", "location", "alice")).toHaveLength(1);
    data.close();
    expect(locationRows(file)).toEqual([]);
    const again = openRunDatabase(file, "memory");
    expect(again.subscribers.find("default", "alice", "example.com")?.ha1).toBe("h");
    expect(again.locations.bindings("default", "location", "alice")).toEqual([]);
    again.close();
  });
});

describe("permissions.allow_source_address", () => {
  it("matches the source against CIDR entries of the group; port 0 is any port", () => {
    const host = makeDataHost();
    host.data.addresses.add("t1", { group: 1, ip: "10.1.0.0", mask: 16, port: 0, tag: "" });
    host.data.addresses.add("t1", { group: 2, ip: "192.0.2.7", mask: 32, port: 5080, tag: "pbx" });
    host.data.addresses.add("t1", { group: 1, ip: "2001:db8::", mask: 32, port: 0, tag: "" });
    const from = (ip: string, port: number, tenantId = "t1") => contextOn(host, invite("sip:x@example.com"), tenantId, { srcIp: ip, srcPort: port }).ctx;
    expect(perm("allow_source_address", from("10.1.200.3", 5060), 1)).toBe(1);
    expect(perm("allow_source_address", from("10.2.0.1", 5060), 1)).toBe(-1);
    expect(perm("allow_source_address", from("10.1.200.3", 5060), 2)).toBe(-1);
    expect(perm("allow_source_address", from("192.0.2.7", 5080), 2)).toBe(1);
    expect(perm("allow_source_address", from("192.0.2.7", 5081), 2)).toBe(-1);
    expect(perm("allow_source_address", from("2001:db8:1::5", 5060), 1)).toBe(1);
    expect(perm("allow_source_address", from("::ffff:10.1.0.9", 5060), 1)).toBe(1);
    expect(perm("allow_source_address_group", from("192.0.2.7", 5080))).toBe(2);
    expect(perm("allow_address", from("1.1.1.1", 1), 1, "10.1.0.1", 9)).toBe(1);
    expect(perm("allow_address_group", from("1.1.1.1", 1), "8.8.8.8", 53)).toBe(-1);
    // Another tenant's table is empty.
    expect(perm("allow_source_address", from("10.1.200.3", 5060, "globex"), 1)).toBe(-1);
  });

  it("sees rows another connection (the ksr command) commits", () => {
    const file = tempDb();
    const host = makeDataHost({ file });
    const ctx = contextOn(host, invite("sip:x@example.com"), "t1", { srcIp: "198.51.100.4" }).ctx;
    expect(perm("allow_source_address", ctx, 3)).toBe(-1);
    const other = openSqlite(file);
    new SqliteAddressStore(other).add("t1", { group: 3, ip: "198.51.100.0", mask: 24, port: 0, tag: "" });
    other.close();
    expect(perm("allow_source_address", ctx, 3)).toBe(1);
    host.data.close();
  });
});

describe("subscriber rows (auth_db)", () => {
  const row = (ha1: string) => ({ username: "bob", domain: "example.com", password: "", ha1, ha1b: "", ha1Sha256: "", ha1bSha256: "" });

  it("sees rows another connection (the ksr command) adds, changes or removes after a look-up", () => {
    const file = tempDb();
    const host = makeDataHost({ file });
    const subscribers = host.data.subscribers;
    expect(subscribers.find("t1", "bob", "example.com")).toBeUndefined();
    expect(subscribers.findByUsername("t1", "bob")).toEqual([]);

    const other = openSqlite(file);
    const command = new SqliteSubscriberStore(other);
    command.put("t1", row("first"));
    expect(subscribers.find("t1", "bob", "example.com")?.ha1).toBe("first");
    expect(subscribers.findByUsername("t1", "bob").map((s) => s.ha1)).toEqual(["first"]);
    command.put("t1", row("second"));
    expect(subscribers.find("t1", "bob", "example.com")?.ha1).toBe("second");
    command.remove("t1", "bob", "example.com");
    expect(subscribers.find("t1", "bob", "example.com")).toBeUndefined();
    expect(subscribers.findByUsername("t1", "bob")).toEqual([]);
    other.close();
    host.data.close();
  });

  it("sees its own writes at once", () => {
    const host = makeDataHost();
    const subscribers = host.data.subscribers;
    expect(subscribers.find("t1", "bob", "example.com")).toBeUndefined();
    subscribers.put("t1", row("mine"));
    expect(subscribers.find("t1", "bob", "example.com")?.ha1).toBe("mine");
    expect(subscribers.find("t2", "bob", "example.com")).toBeUndefined();
    subscribers.remove("t1", "bob", "example.com");
    expect(subscribers.find("t1", "bob", "example.com")).toBeUndefined();
    host.data.close();
  });
});

describe("ksr subscriber / address commands", () => {
  async function ksr(args: string[]): Promise<string[]> {
    const out: string[] = [];
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    registerDbCommands(program, (l) => out.push(l));
    await program.parseAsync(args, { from: "user" });
    return out;
  }

  it("add, list and remove subscribers and addresses per tenant", async () => {
    const db = tempDb();
    await ksr(["subscriber", "add", "alice@Example.com", "secret", "--db", db]);
    await ksr(["subscriber", "add", "bob@example.com", "pw", "--db", db, "--tenant", "acme", "--store-password"]);
    expect(await ksr(["subscriber", "list", "--db", db])).toEqual(["alice@example.com"]);
    expect(await ksr(["subscriber", "list", "--db", db, "--tenant", "acme"])).toEqual(["bob@example.com (password stored)"]);
    const conn = openSqlite(db);
    const row = new SqliteSubscriberStore(conn).find("default", "alice", "example.com");
    conn.close();
    // HA1 = MD5("alice:example.com:secret"): the realm is the domain.
    expect(row?.ha1).toBe(createHash("md5").update("alice:example.com:secret").digest("hex"));
    expect(row?.password).toBe("");
    await ksr(["subscriber", "rm", "alice@example.com", "--db", db]);
    expect(await ksr(["subscriber", "list", "--db", db])).toEqual([]);

    await ksr(["address", "add", "1", "10.0.0.0/8", "--db", db]);
    await ksr(["address", "add", "2", "192.0.2.1", "--port", "5060", "--tag", "gw", "--db", db, "--tenant", "acme"]);
    expect(await ksr(["address", "list", "--db", db])).toEqual(["1\t10.0.0.0/8\t0\t"]);
    expect(await ksr(["address", "list", "--db", db, "--tenant", "acme"])).toEqual(["2\t192.0.2.1/32\t5060\tgw"]);
    expect(await ksr(["address", "rm", "1", "10.0.0.0/8", "--db", db])).toEqual(["1 address entry removed"]);
    expect(await ksr(["address", "list", "--db", db])).toEqual([]);
  });

  it("ksr run creates a missing database file only when a script first needs it", () => {
    const file = tempDb();
    const data = openRunDatabase(file);
    expect(existsSync(file)).toBe(false);
    expect(data.locations.bindings("default", "location", "alice")).toEqual([]);
    expect(existsSync(file)).toBe(true);
    data.close();
    expect(() => data.locations).toThrow(/closed/);
    const again = openRunDatabase(file);
    expect(again.subscribers.list("default")).toEqual([]);
    again.close();
  });

  it("refuses malformed arguments", async () => {
    const db = tempDb();
    await expect(ksr(["address", "add", "1", "10.0.0.0/40", "--db", db])).rejects.toThrow(/CIDR/);
    await expect(ksr(["address", "add", "x", "10.0.0.0/8", "--db", db])).rejects.toThrow(/group/);
    await expect(ksr(["subscriber", "add", "nodomain", "pw", "--db", db])).rejects.toThrow(/user@domain/);
  });
});

describe("worker processes sharing the file (ksr run --workers)", () => {
  const secret = Buffer.alloc(32, 7);
  const worker = (file: string, index: number) => makeDataHost({ file, sharedBy: { nonceSecret: secret, lane: { index, count: 2 } } });

  it("a registration saved by one worker is found by lookup on the other, and its removal too", () => {
    const file = tempDb();
    const first = worker(file, 0);
    const second = worker(file, 1);
    const miss = contextOn(second, invite("sip:alice@example.com")).ctx;
    expect(reg("lookup", miss, "location")).toBe(-1);
    reg("save", contextOn(first, register({ contacts: ["<sip:alice@10.0.0.1:5070>"] })).ctx, "location", 0);
    const look = contextOn(second, invite("sip:alice@example.com")).ctx;
    expect(reg("lookup", look, "location")).toBe(1);
    expect(look.requestUri).toBe("sip:alice@10.0.0.1:5070");
    // The second worker unregisters it: the first stops finding it.
    reg("save", contextOn(second, register({ contacts: ["<sip:alice@10.0.0.1:5070>;expires=0"], cseq: 2 })).ctx, "location", 0);
    expect(reg("lookup", contextOn(first, invite("sip:alice@example.com")).ctx, "location")).toBe(-1);
    first.data.close();
    second.data.close();
  });

  it("a nonce issued by one worker verifies on the other, and never twice on one", () => {
    const file = tempDb();
    const first = worker(file, 0);
    const second = worker(file, 1);
    const nonce = first.data.nonces.issue("t1", T0);
    // Not in the second worker's replay table: stale (re-challenged), never "invalid".
    expect(second.data.nonces.verify("t1", nonce, T0, undefined)).toBe("stale");
    expect(first.data.nonces.verify("t1", nonce, T0, undefined)).toBe("ok");
    expect(first.data.nonces.verify("t1", nonce, T0, undefined)).toBe("reused");
    // A server of another secret refuses it outright.
    expect(makeDataHost({ file: ":memory:" }).data.nonces.verify("t1", nonce, T0, undefined)).toBe("invalid");
    first.data.close();
    second.data.close();
  });

  it("refuses a private in-memory database or in-memory registrations, naming the option", () => {
    expect(() => worker(":memory:", 0)).toThrow(/--db :memory:/);
    expect(() => makeDataHost({ file: tempDb(), location: "memory", sharedBy: { nonceSecret: secret, lane: { index: 0, count: 2 } } })).toThrow(
      /--location memory/,
    );
  });
});
