/**
 * KSR.dispatcher: the list format, selection algorithms, failover records,
 * destination states and address matching, against Kamailio 5.6's
 * dispatcher behaviour (dispatch.c).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { newTenantState } from "../../host/core/context.js";
import { dispatcherModule, dispatcherRecords } from "../../host/modules/dispatcher/module.js";
import { dispatcherHash } from "../../host/modules/dispatcher/hash.js";
import { DispatcherListError, loadDispatcherList, parseDispatcherList } from "../../host/modules/dispatcher/list.js";
import { configureDispatcher, dispatcherOf, dispatcherSettingsOf, removeDispatcher, setDispatcherEventSink } from "../../host/modules/dispatcher/tenants.js";
import { makeContext, request, type MakeContextOptions } from "../helpers/context.js";

const dir = mkdtempSync(path.join(tmpdir(), "ksr-dispatcher-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function listFile(text: string): string {
  const file = path.join(dir, `list-${++fileNo}.list`);
  writeFileSync(file, text);
  return file;
}

const TENANT = "ds-test";
const tenant = newTenantState(TENANT);

function useList(text: string, params: Record<string, string | number> = {}): void {
  configureDispatcher(TENANT, listFile(text), dispatcherSettingsOf(params));
}

function invite(opts: { callId?: string; from?: string; to?: string; ruri?: string } = {}, ctxOpts: MakeContextOptions = {}) {
  return makeContext(
    [
      `INVITE ${opts.ruri ?? "sip:bob@example.org"} SIP/2.0`,
      "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-ds-1",
      "Max-Forwards: 70",
      `From: <${opts.from ?? "sip:alice@example.com"}>;tag=f1`,
      `To: <${opts.to ?? "sip:bob@example.org"}>`,
      `Call-ID: ${opts.callId ?? "call-1@10.0.0.1"}`,
      "CSeq: 1 INVITE",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n"),
    { tenant, ...ctxOpts },
  );
}

const ds = dispatcherModule.functions;

beforeEach(() => removeDispatcher(TENANT));

describe("dispatcher list file", () => {
  it("orders a set by priority, highest first, and equal priorities last line first (Kamailio's index order)", () => {
    const list = parseDispatcherList(
      ["# comment", "1 sip:10.0.0.1:5060", "1 sip:10.0.0.2:5060 0 5", "1 sip:10.0.0.3:5060", "", "2 sip:10.0.1.1 # trailing comment"].join("\n"),
      "x.list",
    );
    expect(list.size).toBe(4);
    expect(list.sets.get(1)!.dests.map((d) => d.uri)).toEqual(["sip:10.0.0.2:5060", "sip:10.0.0.3:5060", "sip:10.0.0.1:5060"]);
    expect(list.sets.get(2)!.dests.map((d) => d.uri)).toEqual(["sip:10.0.1.1"]);
  });

  it("reads flags, priority and attributes", () => {
    const list = parseDispatcherList("3 sip:10.0.0.9:5080;transport=tcp 5 7 duid=gw9;weight=40;rweight=20;socket=udp:127.0.0.1:5060;maxload=10;foo=bar;\n", "x.list");
    const d = list.sets.get(3)!.dests[0]!;
    expect(d.flags).toBe(5);
    expect(d.priority).toBe(7);
    expect(d.proto).toBe("tcp");
    expect(d.port).toBe(5080);
    expect(d.attrs).toMatchObject({ body: "duid=gw9;weight=40;rweight=20;socket=udp:127.0.0.1:5060;maxload=10;foo=bar", duid: "gw9", weight: 40, rweight: 20, socket: "udp:127.0.0.1:5060", maxload: 10 });
  });

  it("adds sip: to a destination written without a scheme, as Kamailio does", () => {
    expect(parseDispatcherList("1 10.0.0.1:5070\n", "x.list").sets.get(1)!.dests[0]!.uri).toBe("sip:10.0.0.1:5070");
  });

  it.each([
    ["1\n", 1, "no destination"],
    ["x sip:10.0.0.1\n", 1, "set id"],
    ["\n\n1 http://a\n", 3, "not a sip: or sips: URI"],
    ["1 sip:10.0.0.1 abc\n", 1, "flags"],
    ["1 sip:10.0.0.1 64\n", 1, "bits other than the states"],
    ["1 sip:10.0.0.1 0 0 weight=0\n", 1, "weight 0 is not in 1..100"],
    ["1 sip:10.0.0.1 0 0 socket=nowhere\n", 1, "socket"],
    ["1 sip:10.0.0.1 0 0 a=b extra\n", 1, "unexpected"],
    [`1 sip:10.0.0.1 0 0 duid=${"x".repeat(1100)}\n`, 1, "longer than 1023"],
    ["1 sip:10.0.0.1\n\u0000\u00ff\u0007garbage\n", 2, "set id"],
    ["1 sip:10.0.0.1 99999999999\n", 1, "flags"],
    ["99999999999 sip:10.0.0.1\n", 1, "too large"],
  ])("rejects %j with the file and line", (text, line, reason) => {
    const file = listFile(text);
    let err: unknown;
    try {
      loadDispatcherList(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DispatcherListError);
    expect((err as Error).message).toContain(`${file}:${line}: `);
    expect((err as Error).message).toContain(reason);
  });

  it("names the file it cannot read", () => {
    expect(() => loadDispatcherList(path.join(dir, "missing.list"))).toThrow(/missing\.list: cannot read/);
  });

  it("loads a list of 10 000 destinations", () => {
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) lines.push(`${i % 100} sip:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5060 0 ${i % 3} weight=${1 + (i % 100)}`);
    const list = loadDispatcherList(listFile(lines.join("\n")));
    expect(list.size).toBe(10_000);
    expect(list.sets.size).toBe(100);
    expect(list.sets.get(42)!.dests).toHaveLength(100);
  });
});

describe("dispatcher hash", () => {
  // Values of Kamailio 5.6.3's ds_get_hash, built from dispatch.c and run on amd64.
  it.each([
    [["a84b4c76e66710@pc33.atlanta.com"], 2175018094],
    [["alice", "atlanta.com"], 1053853112],
    [["bob", "biloxi.com:5070"], 1220057865],
    [["x"], 119],
    [[Buffer.from("ü-é").toString("latin1")], 3137921022],
    [["12345678901"], 1794388423],
  ] as const)("ds_get_hash(%j) = %d", (args, want) => {
    expect(dispatcherHash(args[0], args[1])).toBe(want);
  });
});

const THREE = "1 sip:10.0.0.1:5060\n1 sip:10.0.0.2:5060\n1 sip:10.0.0.3:5060\n";

describe("ds_select_dst", () => {
  it("fails with -1 without a list, for an unknown set and an unknown algorithm", () => {
    const { ctx, host } = invite();
    expect(ds.ds_select_dst!.run(ctx, 1, 4)).toBe(-1);
    expect(host.logs.some((l) => l.text.includes("no destination list"))).toBe(true);
    useList(THREE);
    expect(ds.ds_select_dst!.run(ctx, 9, 4)).toBe(-1);
    expect(ds.ds_select_dst!.run(ctx, 1, 12)).toBe(-1);
    expect(ctx.dstUri).toBeUndefined();
  });

  it("round robin (4) walks the set in index order and skips inactive and disabled destinations", () => {
    useList(THREE);
    const picks = () => {
      const { ctx } = invite();
      expect(ds.ds_select_dst!.run(ctx, 1, 4)).toBe(1);
      return ctx.dstUri;
    };
    expect([picks(), picks(), picks(), picks()]).toEqual(["sip:10.0.0.3:5060", "sip:10.0.0.2:5060", "sip:10.0.0.1:5060", "sip:10.0.0.3:5060"]);
    dispatcherOf(TENANT)!.list.sets.get(1)!.dests[1]!.flags = 1;
    dispatcherOf(TENANT)!.list.sets.get(1)!.dests[2]!.flags = 4;
    expect([picks(), picks()]).toEqual(["sip:10.0.0.3:5060", "sip:10.0.0.3:5060"]);
  });

  it("answers -1 when every destination is down", () => {
    useList("1 sip:10.0.0.1 1\n1 sip:10.0.0.2 4\n");
    const { ctx } = invite();
    expect(ds.ds_select_dst!.run(ctx, 1, 4)).toBe(-1);
    expect(ctx.dstUri).toBeUndefined();
  });

  it("hash of Call-ID (0), From (1), To (2) picks index hash mod size, the same for the same key", () => {
    useList(THREE);
    const dests = dispatcherOf(TENANT)!.list.sets.get(1)!.dests.map((d) => d.uri);
    for (const callId of ["a@1", "b@2", "c@3", "d@4", "e@5"]) {
      const { ctx } = invite({ callId });
      expect(ds.ds_select_dst!.run(ctx, 1, 0)).toBe(1);
      expect(ctx.dstUri).toBe(dests[dispatcherHash(callId) % 3]);
    }
    const { ctx: f } = invite({ from: "sip:carol@example.net:5070" });
    ds.ds_select_dst!.run(f, 1, 1);
    expect(f.dstUri).toBe(dests[dispatcherHash("carol", "example.net:5070") % 3]);
    const { ctx: t } = invite({ to: "sip:dave@example.org:5060" });
    ds.ds_select_dst!.run(t, 1, 2);
    // The default port is left out of the key.
    expect(t.dstUri).toBe(dests[dispatcherHash("dave", "example.org") % 3]);
  });

  it("hash on a pv format (7) uses the hash_pvar parameter", () => {
    useList(THREE, { hash_pvar: "$fU" });
    const dests = dispatcherOf(TENANT)!.list.sets.get(1)!.dests.map((d) => d.uri);
    const { ctx } = invite({ from: "sip:erin@example.com" });
    expect(ds.ds_select_dst!.run(ctx, 1, 7)).toBe(1);
    expect(ctx.dstUri).toBe(dests[dispatcherHash("erin") % 3]);
    useList(THREE);
    expect(ds.ds_select_dst!.run(invite().ctx, 1, 7)).toBe(-1);
  });

  it("priority (8) takes the highest priority active destination", () => {
    useList("1 sip:10.0.0.1 0 1\n1 sip:10.0.0.2 0 9\n1 sip:10.0.0.3 0 5\n");
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 8);
    expect(ctx.dstUri).toBe("sip:10.0.0.2");
    dispatcherOf(TENANT)!.list.sets.get(1)!.dests[0]!.flags = 1;
    const { ctx: c2 } = invite();
    ds.ds_select_dst!.run(c2, 1, 8);
    expect(c2.dstUri).toBe("sip:10.0.0.3");
  });

  it("weight (9) gives each destination its weight in every 100 selections, the rest to the last", () => {
    useList("1 sip:10.0.0.1 0 0 weight=20\n1 sip:10.0.0.2 0 0 weight=50\n1 sip:10.0.0.3 0 0 weight=10\n");
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const { ctx } = invite();
      ds.ds_select_dst!.run(ctx, 1, 9);
      counts.set(ctx.dstUri!, (counts.get(ctx.dstUri!) ?? 0) + 1);
    }
    // Index order is 10.0.0.3, .2, .1; the last (10.0.0.1) takes the 20 left over.
    expect(Object.fromEntries(counts)).toEqual({ "sip:10.0.0.3": 20, "sip:10.0.0.2": 100, "sip:10.0.0.1": 80 });
  });

  it("relative weight (11) shares among active destinations and follows state changes", () => {
    useList("1 sip:10.0.0.1 0 0 rweight=25\n1 sip:10.0.0.2 0 0 rweight=75\n", { flags: 2 });
    const count = (n: number) => {
      const counts = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const { ctx } = invite();
        ds.ds_select_dst!.run(ctx, 1, 11);
        counts.set(ctx.dstUri!, (counts.get(ctx.dstUri!) ?? 0) + 1);
      }
      return Object.fromEntries(counts);
    };
    expect(count(100)).toEqual({ "sip:10.0.0.1": 25, "sip:10.0.0.2": 75 });
    // Mark 10.0.0.2 down: every selection goes to 10.0.0.1.
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 8); // index 0 = 10.0.0.2 (last line first)
    expect(ctx.dstUri).toBe("sip:10.0.0.2");
    expect(ds.ds_mark_dst!.run(ctx)).toBe(1);
    expect(count(100)).toEqual({ "sip:10.0.0.1": 100 });
  });

  it("does not replace a $du already set when force_dst is 0", () => {
    useList(THREE, { force_dst: 0 });
    const { ctx } = invite();
    ctx.dstUri = "sip:10.9.9.9";
    expect(ds.ds_select_dst!.run(ctx, 1, 4)).toBe(-1);
    expect(ctx.dstUri).toBe("sip:10.9.9.9");
  });

  it("sets the destination's socket as the send socket", () => {
    useList("1 sip:10.0.0.1 0 0 socket=udp:127.0.0.1:5060\n");
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 4);
    expect(ctx.sendSocket).toBe("udp:127.0.0.1:5060");
  });
});

describe("failover records and ds_next_dst", () => {
  it("keeps no records and refuses ds_next_dst without failover (flags 2), as Kamailio's default", () => {
    useList(THREE);
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 8);
    expect(ds.ds_next_dst!.run(ctx)).toBe(-1);
    expect(ds.ds_mark_dst!.run(ctx)).toBe(-1);
  });

  it("walks the active destinations after the selected one, then those before it, then fails", () => {
    useList("1 sip:10.0.0.1\n1 sip:10.0.0.2 1\n1 sip:10.0.0.3\n1 sip:10.0.0.4\n", { flags: 2 });
    // Index order: .4 .3 .2(inactive) .1
    const { ctx } = invite();
    const rr = dispatcherOf(TENANT)!.list.sets.get(1)!;
    rr.last = 1;
    expect(ds.ds_select_dst!.run(ctx, 1, 4)).toBe(1);
    const seen = [ctx.dstUri];
    while (ds.ds_next_dst!.run(ctx) === 1) seen.push(ctx.dstUri);
    expect(seen).toEqual(["sip:10.0.0.3", "sip:10.0.0.1", "sip:10.0.0.4"]);
  });

  it("keeps at most limit records", () => {
    useList(THREE, { flags: 2 });
    const { ctx } = invite();
    expect(ds.ds_select_dst_limit!.run(ctx, 1, 8, 2)).toBe(1);
    expect(ds.ds_next_dst!.run(ctx)).toBe(1);
    expect(ds.ds_next_dst!.run(ctx)).toBe(-1);
  });

  it("use_default keeps the last destination for when the others are down", () => {
    useList("1 sip:10.0.0.9\n1 sip:10.0.0.1\n1 sip:10.0.0.2\n", { flags: 2, use_default: 1 });
    // Index order: .2 .1 .9 — .9 is the default.
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 8);
    const seen = [ctx.dstUri];
    while (ds.ds_next_dst!.run(ctx) === 1) seen.push(ctx.dstUri);
    expect(seen).toEqual(["sip:10.0.0.2", "sip:10.0.0.1", "sip:10.0.0.9"]);
    for (const d of dispatcherOf(TENANT)!.list.sets.get(1)!.dests.slice(0, 2)) d.flags = 1;
    const { ctx: c2 } = invite();
    expect(ds.ds_select_dst!.run(c2, 1, 4)).toBe(1);
    expect(c2.dstUri).toBe("sip:10.0.0.9");
  });

  it("ds_select leaves $du alone and ds_set_dst applies the current record", () => {
    useList(THREE, { flags: 2 });
    const { ctx } = invite();
    expect(ds.ds_select!.run(ctx, 1, 8)).toBe(1);
    expect(ctx.dstUri).toBeUndefined();
    expect(ds.ds_set_dst!.run(ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:10.0.0.3:5060");
  });

  it("ds_select_domain and ds_next_domain rewrite the R-URI host and port, keeping the user", () => {
    useList("1 sip:10.0.0.1:5070\n1 sip:10.0.0.2\n", { flags: 2 });
    const { ctx } = invite({ ruri: "sip:bob@example.org:5099;user=phone" });
    expect(ds.ds_select_domain!.run(ctx, 1, 8)).toBe(1);
    expect(ctx.requestUri).toBe("sip:bob@10.0.0.2;user=phone");
    expect(ctx.dstUri).toBeUndefined();
    expect(ds.ds_next_domain!.run(ctx)).toBe(1);
    expect(ctx.requestUri).toBe("sip:bob@10.0.0.1:5070;user=phone");
  });
});

describe("destination states", () => {
  it("ds_mark_dst marks the current destination inactive (and probing with ds_probing_mode 1)", () => {
    useList(THREE, { flags: 2, ds_probing_mode: 1 });
    const { ctx } = invite();
    ds.ds_select_dst!.run(ctx, 1, 8);
    expect(ds.ds_is_active_uri!.run(ctx, 1, "sip:10.0.0.3:5060")).toBe(1);
    expect(ds.ds_mark_dst!.run(ctx)).toBe(1);
    expect(dispatcherOf(TENANT)!.list.sets.get(1)!.dests[0]!.flags).toBe(1 | 8);
    expect(ds.ds_is_active_uri!.run(ctx, 1, "sip:10.0.0.3:5060")).toBe(-1);
    expect(ds.ds_is_active!.run(ctx, 1)).toBe(1);
  });

  it("trying marks count toward ds_probing_threshold; an inactive one needs ds_inactive_threshold successes", () => {
    useList(THREE, { flags: 2, ds_probing_threshold: 3, ds_inactive_threshold: 2 });
    const dest = dispatcherOf(TENANT)!.list.sets.get(1)!.dests[0]!;
    const markFirst = (letters: string): number => {
      const { ctx } = invite();
      useRecordOf(ctx, "sip:10.0.0.3:5060");
      return ds.ds_mark_dst_state!.run(ctx, letters) as number;
    };
    expect(markFirst("t")).toBe(1);
    expect(dest.flags).toBe(2);
    expect(markFirst("t")).toBe(1);
    expect(markFirst("t")).toBe(1);
    expect(dest.flags).toBe(1);
    expect(markFirst("a")).toBe(1);
    expect(dest.flags).toBe(1);
    expect(markFirst("a")).toBe(1);
    expect(dest.flags).toBe(0);
    expect(markFirst("x")).toBe(-1);
    expect(markFirst("d")).toBe(1);
    expect(dest.flags).toBe(4);
  });

  it("a destination going down or up calls the event_callback with dispatcher:dst-down / dst-up, once per change", () => {
    const events: string[] = [];
    setDispatcherEventSink(TENANT, (callback, event, uri) => events.push(`${callback} ${event} ${uri}`));
    useList(THREE, { flags: 2, event_callback: "ksr_ds_event" });
    const mark = (letters: string) => {
      const { ctx } = invite();
      useRecordOf(ctx, "sip:10.0.0.3:5060");
      return ds.ds_mark_dst_state!.run(ctx, letters);
    };
    mark("i");
    mark("i");
    mark("a");
    mark("t");
    expect(events).toEqual(["ksr_ds_event dispatcher:dst-down sip:10.0.0.3:5060", "ksr_ds_event dispatcher:dst-up sip:10.0.0.3:5060", "ksr_ds_event dispatcher:dst-down sip:10.0.0.3:5060"]);
    // Without event_callback nothing is called.
    useList(THREE, { flags: 2 });
    mark("i");
    expect(events).toHaveLength(3);
  });

  it("ds_list_exists and ds_is_active", () => {
    useList("1 sip:10.0.0.1 1\n2 sip:10.0.0.2\n");
    const { ctx } = invite();
    expect(ds.ds_list_exists!.run(ctx, 1)).toBe(1);
    expect(ds.ds_list_exists!.run(ctx, 3)).toBe(-1);
    expect(ds.ds_is_active!.run(ctx, 1)).toBe(-1);
    expect(ds.ds_is_active!.run(ctx, 2)).toBe(1);
  });

  it("ds_reload reads the file again and keeps the old list when the new one is bad", () => {
    const file = listFile(THREE);
    configureDispatcher(TENANT, file, dispatcherSettingsOf({}));
    const { ctx, host } = invite();
    writeFileSync(file, "1 sip:10.0.0.7\n5 sip:10.0.0.8\n");
    expect(ds.ds_reload!.run(ctx)).toBe(1);
    expect(ds.ds_list_exists!.run(ctx, 5)).toBe(1);
    writeFileSync(file, "1 sip:10.0.0.7\nbroken\n");
    // Within reload_delta (5 s) of the last reload: refused, nothing read.
    host.clock.ms += 4_999;
    expect(ds.ds_reload!.run(ctx)).toBe(-1);
    expect(host.logs.some((l) => l.text.includes("ongoing reload"))).toBe(true);
    expect(host.logs.some((l) => l.text.includes(`${file}:2:`))).toBe(false);
    host.clock.ms += 1;
    expect(ds.ds_reload!.run(ctx)).toBe(-1);
    expect(host.logs.some((l) => l.text.includes(`${file}:2:`))).toBe(true);
    expect(ds.ds_list_exists!.run(ctx, 5)).toBe(1);
  });
});

/** Put a record for uri (set 1) as the current one, as a selection would have. */
function useRecordOf(ctx: Parameters<typeof dispatcherRecords>[0], uri: string): void {
  dispatcherRecords(ctx).dst = [{ uri, grp: 1, attrs: "", socket: undefined }];
}

describe("ds_is_from_list", () => {
  const LIST = "1 sip:10.0.0.1:5070\n1 sip:10.0.0.2;transport=tcp\n2 sip:10.0.0.3:5080 1\n3 sip:gw.example.com\n";
  const from = (ip: string, port: number, proto: "udp" | "tcp" = "udp") => invite({}, { rcv: { srcIp: ip, srcPort: port, proto } }).ctx;

  it("matches the source IP and port (a destination without port: any port), any transport", () => {
    useList(LIST);
    expect(ds.ds_is_from_list!.run(from("10.0.0.1", 5070), 1)).toBe(1);
    expect(ds.ds_is_from_list!.run(from("10.0.0.1", 5071), 1)).toBe(-1);
    expect(ds.ds_is_from_list!.run(from("10.0.0.2", 40000), 1)).toBe(1);
    expect(ds.ds_is_from_list!.run(from("10.0.0.1", 5070), 2)).toBe(-1);
    expect(ds.ds_is_from_lists!.run(from("10.0.0.3", 5080))).toBe(1);
    expect(ds.ds_is_from_list!.run(from("10.0.0.3", 5080), -1)).toBe(1);
  });

  it("mode bits: 1 any port, 2 any transport, 4 only active", () => {
    useList(LIST);
    expect(ds.ds_is_from_list_mode!.run(from("10.0.0.1", 9), 1, 1 | 2)).toBe(1);
    // Transport must match without bit 2: the URI says tcp.
    expect(ds.ds_is_from_list_mode!.run(from("10.0.0.2", 9, "udp"), 1, 0)).toBe(-1);
    expect(ds.ds_is_from_list_mode!.run(from("10.0.0.2", 9, "tcp"), 1, 0)).toBe(1);
    expect(ds.ds_is_from_list_mode!.run(from("10.0.0.3", 5080), 2, 2)).toBe(1);
    expect(ds.ds_is_from_list_mode!.run(from("10.0.0.3", 5080), 2, 2 | 4)).toBe(-1);
  });

  it("matches a URI's address instead of the source; a host name is refused (no DNS)", () => {
    useList(LIST);
    const { ctx, host } = invite();
    expect(ds.ds_is_from_list_uri!.run(ctx, 2, 2, "sip:10.0.0.3:5080")).toBe(1);
    expect(ds.ds_is_from_list_uri!.run(ctx, 2, 2, "sip:10.0.0.3")).toBe(-1);
    expect(ds.ds_is_from_list_uri!.run(ctx, 3, 3, "sip:gw.example.com")).toBe(-1);
    expect(host.logs.some((l) => l.text.includes("no DNS"))).toBe(true);
  });
});

describe("algorithm 10: call load", () => {
  // Equal priorities: the last line is the set's first destination (Kamailio's index order).
  const LOADED = "1 sip:10.0.0.3:5060 0 0 duid=c\n1 sip:10.0.0.2:5060 0 0 duid=b\n1 sip:10.0.0.1:5060 0 0 duid=a\n";
  const T0 = 1_700_000_000_000;
  const load = (duid: string, now = T0) => dispatcherOf(TENANT)!.callLoad!.loadOf(1, duid, now);
  const inDialog = (method: "BYE" | "CANCEL", callId: string) =>
    makeContext(
      [`${method} sip:bob@10.0.0.9 SIP/2.0`, "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-bye", "Max-Forwards: 70", "From: <sip:alice@example.com>;tag=f1", "To: <sip:bob@example.org>;tag=t1", `Call-ID: ${callId}`, `CSeq: 2 ${method}`, "Content-Length: 0", "", ""].join("\r\n"),
      { tenant },
    ).ctx;
  const reply = (status: number, callId: string, now = T0) =>
    makeContext(
      [`SIP/2.0 ${status} Whatever`, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p", "From: <sip:alice@example.com>;tag=f1", "To: <sip:bob@example.org>;tag=t1", `Call-ID: ${callId}`, "CSeq: 1 INVITE", "Content-Length: 0", "", ""].join("\r\n"),
      { tenant, now },
    ).ctx;

  it("sends each INVITE to the destination with the fewest calls; a BYE through ds_load_update gives the call's place back", () => {
    useList(LOADED, { ds_hash_size: 8 });
    const picked = ["c1", "c2", "c3", "c4"].map((id) => {
      const ctx = invite({ callId: id }).ctx;
      expect(ds.ds_select_dst!.run(ctx, 1, 10)).toBe(1);
      return ctx.dstUri;
    });
    // a, b, c each get one; the fourth ties all three and goes to the first.
    expect(picked).toEqual(["sip:10.0.0.1:5060", "sip:10.0.0.2:5060", "sip:10.0.0.3:5060", "sip:10.0.0.1:5060"]);
    expect([load("a"), load("b"), load("c")]).toEqual([2, 1, 1]);
    expect(ds.ds_load_update!.run(inDialog("BYE", "c2"))).toBe(0);
    expect(load("b")).toBe(0);
    const next = invite({ callId: "c5" }).ctx;
    expect(ds.ds_select_dst!.run(next, 1, 10)).toBe(1);
    expect(next.dstUri).toBe("sip:10.0.0.2:5060");
    // A CANCEL ends a call as a BYE does; one not tracked changes nothing and still answers 0 (Kamailio's KEMI value).
    expect(ds.ds_load_update!.run(inDialog("CANCEL", "c1"))).toBe(0);
    expect(ds.ds_load_update!.run(inDialog("BYE", "unknown"))).toBe(0);
    expect([load("a"), load("b"), load("c")]).toEqual([1, 1, 1]);
  });

  it("passes over a destination at its maxload and fails when every one is full or down", () => {
    useList("1 sip:10.0.0.2:5060 0 0 duid=b;maxload=1\n1 sip:10.0.0.1:5060 0 0 duid=a;maxload=1\n", { ds_hash_size: 4 });
    const a = invite({ callId: "m1" }).ctx;
    const b = invite({ callId: "m2" }).ctx;
    expect(ds.ds_select_dst!.run(a, 1, 10)).toBe(1);
    expect(ds.ds_select_dst!.run(b, 1, 10)).toBe(1);
    expect([a.dstUri, b.dstUri]).toEqual(["sip:10.0.0.1:5060", "sip:10.0.0.2:5060"]);
    expect(ds.ds_select_dst!.run(invite({ callId: "m3" }).ctx, 1, 10)).toBe(-1);
  });

  it("fails over with the call's load (ds_next_dst moves it), skipping full destinations in the records", () => {
    useList(LOADED, { ds_hash_size: 8, flags: 2 });
    const ctx = invite({ callId: "f1" }).ctx;
    expect(ds.ds_select_dst!.run(ctx, 1, 10)).toBe(1);
    expect(dispatcherRecords(ctx).dst.map((r) => r.dstid)).toEqual(["a", "b", "c"]);
    expect(ds.ds_next_dst!.run(ctx)).toBe(1);
    expect(ctx.dstUri).toBe("sip:10.0.0.2:5060");
    expect([load("a"), load("b"), load("c")]).toEqual([0, 1, 0]);
    // The failed INVITE's load goes with ds_load_unset; a second time there is nothing to unset.
    expect(ds.ds_load_unset!.run(ctx)).toBe(0);
    expect(load("b")).toBe(0);
    expect(ds.ds_load_unset!.run(ctx)).toBe(-1);
  });

  it("a call confirmed by a 2xx (ds_load_update in the reply route) outlives ds_hash_initexpire; an unanswered one does not", () => {
    useList(LOADED, { ds_hash_size: 8, ds_hash_initexpire: 10, ds_hash_expire: 100, ds_hash_check_interval: 1 });
    expect(ds.ds_select_dst!.run(invite({ callId: "answered" }).ctx, 1, 10)).toBe(1);
    expect(ds.ds_select_dst!.run(invite({ callId: "ringing" }).ctx, 1, 10)).toBe(1);
    expect(ds.ds_load_update!.run(reply(180, "answered"))).toBe(0);
    expect(ds.ds_load_update!.run(reply(200, "answered"))).toBe(0);
    expect([load("a", T0 + 11_000), load("b", T0 + 11_000)]).toEqual([1, 0]);
    expect(load("a", T0 + 101_000)).toBe(0);
  });

  it("without ds_hash_size, a duid or for other methods: the destination is chosen, the call not tracked (classic dispatching)", () => {
    useList(LOADED);
    const { ctx: untracked, host: untrackedHost } = invite({ callId: "u1" });
    expect(ds.ds_select_dst!.run(untracked, 1, 10)).toBe(1);
    expect(untracked.dstUri).toBe("sip:10.0.0.1:5060");
    expect(untrackedHost.logs.some((l) => l.text.includes("no call load table (set the ds_hash_size parameter)"))).toBe(true);
    expect(ds.ds_load_unset!.run(untracked)).toBe(0);
    useList("1 sip:10.0.0.1:5060\n", { ds_hash_size: 4 });
    const { ctx: noDuid, host: noDuidHost } = invite({ callId: "u2" });
    expect(ds.ds_select_dst!.run(noDuid, 1, 10)).toBe(1);
    expect(noDuidHost.logs.some((l) => l.text.includes("dst unique id not set for 1 (u2)"))).toBe(true);
    useList(LOADED, { ds_hash_size: 4 });
    const options = makeContext(request({ method: "OPTIONS" }), { tenant }).ctx;
    expect(ds.ds_select_dst!.run(options, 1, 10)).toBe(1);
    expect(options.dstUri).toBe("sip:10.0.0.1:5060");
    expect(dispatcherOf(TENANT)!.callLoad!.trackedCalls).toBe(0);
    // The same Call-ID twice: counted once.
    expect(ds.ds_select_dst!.run(invite({ callId: "dup" }).ctx, 1, 10)).toBe(1);
    const { ctx: again, host: againHost } = invite({ callId: "dup" });
    expect(ds.ds_select_dst!.run(again, 1, 10)).toBe(1);
    expect(againHost.logs.some((l) => l.text.includes("call-id already in hash table [dup]"))).toBe(true);
    expect(dispatcherOf(TENANT)!.callLoad!.trackedCalls).toBe(1);
  });
});
