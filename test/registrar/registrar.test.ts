/**
 * KSR.registrar: save/lookup/registered/unregister return codes, RFC 3261
 * §10.3 processing (expiry, wildcard, Call-ID/CSeq ordering), the 200 OK
 * binding list, q-ordered forking, Path, received, instance/reg-id, tenant
 * isolation.
 */
import { describe, expect, it } from "vitest";
import { registrarModule } from "../../host/modules/registrar.js";
import { appendBranch, appendedBranches } from "../../host/proxy/branch-set.js";
import { setReceivedFor } from "../../host/modules/nathelper.js";
import { makeRecordingHost } from "../helpers/context.js";
import { caller } from "../modules/call.js";
import { contextOn, invite, makeDataHost, register, replyHeader, replyHeaders, T0, type DataHost } from "./helpers.js";

const reg = caller(registrarModule);

function save(host: DataHost, text: string, flags = 0, tenantId = "t1") {
  const { ctx } = contextOn(host, text, tenantId);
  const code = reg("save", ctx, "location", flags);
  return { code, ctx, reply: host.replies.at(-1) };
}

function bindingsOf(host: DataHost, aor = "alice", tenantId = "t1") {
  return host.data.locations.bindings(tenantId, "location", aor);
}

describe("save", () => {
  it("inserts a binding and answers 200 listing it with its expires", () => {
    const host = makeDataHost();
    const r = save(host, register());
    expect(r.code).toBe(1);
    expect(r.reply?.status).toBe(200);
    expect(replyHeader(r.reply!.headers, "Contact")).toBe("<sip:alice@10.0.0.1:5070>;expires=3600");
    expect(bindingsOf(host)).toHaveLength(1);
    expect(bindingsOf(host)[0]!.expires).toBe(T0 + 3600_000);
    // The registrar's lines do not stay behind for a later reply of the script.
    expect(r.ctx.replyHeaders).toEqual([]);
  });

  it("takes expires from the Contact parameter, else the Expires header, else 3600", () => {
    const host = makeDataHost();
    save(host, register({ contacts: ["<sip:a@10.0.0.1>;expires=120", "<sip:b@10.0.0.1>"], expires: 600 }));
    const byContact = new Map(bindingsOf(host).map((b) => [b.contact, (b.expires - T0) / 1000]));
    expect(byContact.get("sip:a@10.0.0.1")).toBe(120);
    expect(byContact.get("sip:b@10.0.0.1")).toBe(600);
  });

  it("raises an expires below min_expires to 60 by default (Kamailio min_expires_mode 0)", () => {
    const host = makeDataHost();
    const r = save(host, register({ expires: 30 }));
    expect(r.code).toBe(1);
    expect(replyHeader(r.reply!.headers, "Contact")).toContain(";expires=60");
  });

  it("rejects a too brief interval with 423 and Min-Expires when configured to (RFC 3261 §10.3 step 7)", () => {
    const host = makeDataHost({ registrar: { minExpiresMode: "reject", minExpires: 300 } });
    const r = save(host, register({ expires: 30 }));
    expect(r.code).toBe(-1);
    expect(r.reply?.status).toBe(423);
    expect(r.reply?.reason).toBe("Interval Too Brief");
    expect(replyHeader(r.reply!.headers, "Min-Expires")).toBe("300");
    expect(r.ctx.lastError).toEqual({ status: 423, reason: "Interval Too Brief" });
    expect(bindingsOf(host)).toHaveLength(0);
  });

  it("caps expires at max_expires and clamps delta-seconds beyond 2^32-1", () => {
    const capped = makeDataHost({ registrar: { maxExpires: 1000 } });
    expect(replyHeader(save(capped, register({ expires: 7200 })).reply!.headers, "Contact")).toContain(";expires=1000");
    const huge = makeDataHost();
    save(huge, register({ expires: "99999999999" }));
    expect(bindingsOf(huge)[0]!.expires).toBe(T0 + 0xffffffff * 1000);
  });

  it("lists every binding with its remaining time (RFC 3261 §10.3 step 8)", () => {
    const host = makeDataHost();
    save(host, register({ contacts: ["<sip:a@10.0.0.1>"], callId: "c1" }));
    host.clock.ms += 100_500;
    const r = save(host, register({ contacts: ["<sip:b@10.0.0.2>;expires=300"], callId: "c2" }));
    expect(r.code).toBe(1);
    const contact = replyHeader(r.reply!.headers, "Contact")!;
    expect(contact).toContain("<sip:a@10.0.0.1>;expires=3500");
    expect(contact).toContain("<sip:b@10.0.0.2>;expires=300");
  });

  it("refreshes with a higher CSeq (2) and refuses a lower one with 400 (step 7)", () => {
    const host = makeDataHost();
    save(host, register({ cseq: 5 }));
    host.clock.ms += 1000;
    const refresh = save(host, register({ cseq: 6, expires: 900 }));
    expect(refresh.code).toBe(2);
    expect(bindingsOf(host)[0]!.expires).toBe(T0 + 1000 + 900_000);
    const older = save(host, register({ cseq: 4 }));
    expect(older.code).toBe(-1);
    expect(older.reply?.status).toBe(400);
    expect(replyHeader(older.reply!.headers, "P-Registrar-Error")).toBe("Invalid CSeq number");
    expect(bindingsOf(host)[0]!.cseq).toBe(6);
  });

  it("treats the same Call-ID and CSeq as a retransmission for 20 s, then refuses it", () => {
    const host = makeDataHost();
    save(host, register({ cseq: 7, expires: 600 }));
    host.clock.ms += 5_000;
    const again = save(host, register({ cseq: 7, expires: 900 }));
    expect(again.code).toBe(1);
    expect(again.reply?.status).toBe(200);
    expect(bindingsOf(host)[0]!.expires).toBe(T0 + 600_000); // not updated
    host.clock.ms += 30_000;
    expect(save(host, register({ cseq: 7 })).reply?.status).toBe(400);
  });

  it("replaces the binding's Call-ID when another call registers the same contact", () => {
    const host = makeDataHost();
    save(host, register({ callId: "first", cseq: 50 }));
    const r = save(host, register({ callId: "second", cseq: 1 }));
    expect(r.code).toBe(2);
    expect(bindingsOf(host)).toHaveLength(1);
    expect(bindingsOf(host)[0]!.callId).toBe("second");
  });

  it("removes one binding with expires=0 (3) and all with Contact: * and Expires: 0 (3)", () => {
    const host = makeDataHost();
    save(host, register({ contacts: ["<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"], cseq: 1 }));
    const one = save(host, register({ contacts: ["<sip:a@10.0.0.1>;expires=0"], cseq: 2 }));
    expect(one.code).toBe(3);
    expect(bindingsOf(host).map((b) => b.contact)).toEqual(["sip:b@10.0.0.2"]);
    const all = save(host, register({ contacts: ["*"], expires: 0, cseq: 3 }));
    expect(all.code).toBe(3);
    expect(all.reply?.status).toBe(200);
    expect(replyHeader(all.reply!.headers, "Contact")).toBeUndefined();
    expect(bindingsOf(host)).toHaveLength(0);
  });

  it("answers 400 to Contact: * without Expires: 0 or next to other contacts (RFC 3261 §10.3 step 6)", () => {
    const host = makeDataHost();
    save(host, register());
    const noExpires = save(host, register({ contacts: ["*"], cseq: 2 }));
    expect(noExpires.code).toBe(-1);
    expect(noExpires.reply?.status).toBe(400);
    expect(replyHeader(noExpires.reply!.headers, "P-Registrar-Error")).toBe("* used in contact and expires is not zero");
    const mixed = save(host, register({ contacts: ["*", "<sip:x@10.0.0.3>"], expires: 0, cseq: 3 }));
    expect(mixed.reply?.status).toBe(400);
    expect(replyHeader(mixed.reply!.headers, "P-Registrar-Error")).toBe("* used in contact and more than 1 contact");
    expect(bindingsOf(host)).toHaveLength(1);
  });

  it("returns 4 with the current bindings for a REGISTER without Contact (a query)", () => {
    const host = makeDataHost();
    save(host, register());
    const q = save(host, register({ contacts: [], cseq: 2 }));
    expect(q.code).toBe(4);
    expect(replyHeader(q.reply!.headers, "Contact")).toBe("<sip:alice@10.0.0.1:5070>;expires=3600");
  });

  it("refuses malformed Expires headers, contacts and q-values with 400", () => {
    const host = makeDataHost();
    expect(save(host, register({ expires: "soon" })).reply?.status).toBe(400);
    expect(save(host, register({ contacts: ["<sip:a@10.0.0.1>;q=2"] })).reply?.status).toBe(400);
    expect(save(host, register({ contacts: ["<not a uri>"] })).reply?.status).toBe(400);
    expect(bindingsOf(host)).toHaveLength(0);
  });

  it("keeps +sip.instance and reg-id (RFC 5626) and matches by them", () => {
    const host = makeDataHost();
    const instance = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"';
    const first = save(host, register({ contacts: [`<sip:a@10.0.0.1:5070>;+sip.instance=${instance};reg-id=1`], headers: ["Supported: outbound"] }));
    expect(first.code).toBe(1);
    expect(replyHeader(first.reply!.headers, "Contact")).toBe(
      `<sip:a@10.0.0.1:5070>;expires=3600;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1`,
    );
    // The same flow from a new address updates the binding instead of adding one.
    const moved = save(host, register({ contacts: [`<sip:a@10.0.0.7:5070>;+sip.instance=${instance};reg-id=1`], headers: ["Supported: outbound"], cseq: 2 }));
    expect(moved.code).toBe(2);
    expect(bindingsOf(host).map((b) => [b.contact, b.regId])).toEqual([["sip:a@10.0.0.7:5070", 1]]);
  });

  it("flag 0x02 sends no reply; reg_send_reply sends the prepared 200", () => {
    const host = makeDataHost();
    const r = save(host, register(), 0x02);
    expect(r.code).toBe(1);
    expect(host.replies).toHaveLength(0);
    expect(reg("reg_send_reply", r.ctx)).toBe(1);
    expect(host.replies[0]!.status).toBe(200);
    expect(replyHeader(host.replies[0]!.headers, "Contact")).toContain("sip:alice@10.0.0.1:5070");
    expect(reg("reg_send_reply", r.ctx)).toBe(-1);
  });

  it("flags 0x02|0x10 leave the Contact lines for the script's own reply", () => {
    const host = makeDataHost();
    const r = save(host, register(), 0x12);
    expect(host.replies).toHaveLength(0);
    expect(r.ctx.replyHeaders.some((l) => l.startsWith("Contact: <sip:alice@10.0.0.1:5070>"))).toBe(true);
  });

  it("flag 0x04 keeps one contact per AoR", () => {
    const host = makeDataHost();
    save(host, register({ contacts: ["<sip:a@10.0.0.1>"], callId: "x1" }));
    const r = save(host, register({ contacts: ["<sip:b@10.0.0.2>"], callId: "x2" }), 0x04);
    expect(r.code).toBe(1);
    expect(bindingsOf(host).map((b) => b.contact)).toEqual(["sip:b@10.0.0.2"]);
  });

  it("refuses more contacts than max_contacts with 503 and -2", () => {
    const host = makeDataHost({ registrar: { maxContacts: 2 } });
    save(host, register({ contacts: ["<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"] }));
    const r = save(host, register({ contacts: ["<sip:c@10.0.0.3>"], callId: "other" }));
    expect(r.code).toBe(-2);
    expect(r.reply?.status).toBe(503);
    expect(bindingsOf(host)).toHaveLength(2);
  });

  it("stores Path and echoes it only to UAs that support it (RFC 3327 §5.3)", () => {
    const host = makeDataHost();
    const path = "<sip:edge.example.net;lr>";
    const silent = save(host, register({ headers: [`Path: ${path}`] }));
    expect(replyHeader(silent.reply!.headers, "Path")).toBeUndefined();
    expect(bindingsOf(host)[0]!.path).toBe(path);
    const echoed = save(host, register({ headers: [`Path: ${path}`, "Supported: path"], cseq: 2 }));
    expect(replyHeader(echoed.reply!.headers, "Path")).toBe(path);
    const strict = makeDataHost({ registrar: { pathMode: "strict" } });
    const refused = save(strict, register({ headers: [`Path: ${path}`] }));
    expect(refused.reply?.status).toBe(420);
    expect(replyHeader(refused.reply!.headers, "Unsupported")).toBe("path");
  });

  it("fails with -1 and sends nothing without a database", () => {
    const host = makeRecordingHost();
    const { ctx } = contextOn(host, register());
    expect(reg("save", ctx, "location", 0)).toBe(-1);
    expect(host.replies).toHaveLength(0);
  });
});

describe("lookup", () => {
  function registerThree(host: DataHost): void {
    save(host, register({ contacts: ["<sip:low@10.0.0.1>;q=0.1", "<sip:high@10.0.0.2>;q=1.0", "<sip:mid@10.0.0.3>;q=0.5", "<sip:none@10.0.0.4>"] }));
  }

  it("sets the R-URI to the highest q and appends the others as branches in q order", () => {
    const host = makeDataHost();
    registerThree(host);
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup", ctx, "location")).toBe(1);
    expect(ctx.requestUri).toBe("sip:high@10.0.0.2");
    expect(appendedBranches(ctx).map((b) => [b.uri, b.q])).toEqual([
      ["sip:mid@10.0.0.3", 500],
      ["sip:low@10.0.0.1", 100],
      ["sip:none@10.0.0.4", -1],
    ]);
  });

  it("does not append branches when append_branches is off", () => {
    const host = makeDataHost({ registrar: { appendBranches: false } });
    registerThree(host);
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup", ctx, "location")).toBe(1);
    expect(appendedBranches(ctx)).toHaveLength(0);
  });

  it("returns -1 for an unknown AoR and once the binding expired", () => {
    const host = makeDataHost();
    save(host, register({ expires: 120 }));
    expect(reg("lookup", contextOn(host, invite("sip:bob@example.com")).ctx, "location")).toBe(-1);
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(1);
    host.clock.ms += 120_000;
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(-1);
  });

  it("returns -2 when method filtering finds no contact that allows the method", () => {
    const host = makeDataHost({ registrar: { methodFiltering: true } });
    save(host, register({ headers: ["Allow: INVITE, ACK, BYE"] }));
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com", { method: "MESSAGE" })).ctx, "location")).toBe(-2);
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(1);
  });

  it("returns -3 for an R-URI that is no SIP URI and without a database", () => {
    const host = makeDataHost();
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup_uri", ctx, "location", "not a uri")).toBe(-3);
    expect(reg("lookup", contextOn(makeRecordingHost(), invite("sip:alice@example.com")).ctx, "location")).toBe(-3);
  });

  it("sends to the received address, restores the socket and branch flags", () => {
    const host = makeDataHost();
    const r = contextOn(host, register(), "t1", { localIp: "127.0.0.1", localPort: 5060, proto: "udp" });
    r.ctx.branchFlags[0] = 1 << 6;
    // What nathelper's fix_nated_register records for the REGISTER.
    setReceivedFor(r.ctx, "sip:203.0.113.7:40000");
    expect(reg("save", r.ctx, "location", 0)).toBe(1);
    expect(replyHeader(host.replies[0]!.headers, "Contact")).toBe('<sip:alice@10.0.0.1:5070>;expires=3600;received="sip:203.0.113.7:40000"');
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup", ctx, "location")).toBe(1);
    expect(ctx.requestUri).toBe("sip:alice@10.0.0.1:5070");
    expect(ctx.dstUri).toBe("sip:203.0.113.7:40000");
    expect(ctx.sendSocket).toBe("udp:127.0.0.1:5060");
    expect(ctx.branchFlags[0]).toBe(1 << 6);
  });

  it("routes through the stored Path: first hop as $du, Path as Route (RFC 3327 §5.3)", () => {
    const host = makeDataHost();
    save(host, register({ headers: ["Path: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>"] }));
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup", ctx, "location")).toBe(1);
    expect(ctx.dstUri).toBe("sip:edge1.example.net;lr");
    const viaIndex = ctx.msg.headers.findIndex((h) => h.key === "via");
    expect(ctx.edits.insertedAfter.get(viaIndex)).toEqual(["Route: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>\r\n"]);
    // A second lookup replaces the Route it added instead of stacking another.
    expect(reg("lookup", ctx, "location")).toBe(1);
    expect(ctx.edits.insertedAfter.get(viaIndex)).toHaveLength(1);
  });

  it("lookup_to_dset appends every binding and leaves the R-URI", () => {
    const host = makeDataHost();
    registerThree(host);
    const { ctx } = contextOn(host, invite("sip:alice@example.com"));
    expect(reg("lookup_to_dset", ctx, "location", "")).toBe(1);
    expect(ctx.requestUri).toBe("sip:alice@example.com");
    expect(appendedBranches(ctx).map((b) => b.uri)).toEqual(["sip:high@10.0.0.2", "sip:mid@10.0.0.3", "sip:low@10.0.0.1", "sip:none@10.0.0.4"]);
  });

  it("lookup_branches resolves the R-URI and the plain appended branches", () => {
    const host = makeDataHost();
    save(host, register({ aor: "sip:alice@example.com", contacts: ["<sip:alice@10.0.0.1>"] }));
    save(host, register({ aor: "sip:bob@example.com", contacts: ["<sip:bob@10.0.0.2>;q=0.9", "<sip:bob@10.0.0.3>;q=0.2"], callId: "bob" }));
    const { ctx: c2 } = contextOn(host, invite("sip:alice@example.com"));
    // A plain branch for bob, as KSR.corex.append_branch("sip:bob@example.com") adds it,
    // and one with a next hop of its own, which lookup_branches leaves alone.
    appendBranch(c2, "sip:bob@example.com", undefined);
    c2.dstUri = "sip:10.9.9.9";
    appendBranch(c2, "sip:bob@example.com", undefined);
    c2.dstUri = undefined;
    expect(reg("lookup_branches", c2, "location")).toBe(1);
    expect(c2.requestUri).toBe("sip:alice@10.0.0.1");
    expect(appendedBranches(c2).map((b) => [b.uri, b.dstUri])).toEqual([
      ["sip:bob@10.0.0.2", undefined],
      ["sip:bob@example.com", "sip:10.9.9.9"],
      ["sip:bob@10.0.0.3", undefined],
    ]);
  });
});

describe("registered / unregister", () => {
  it("registered is 1 for an AoR with a valid binding, -1 otherwise", () => {
    const host = makeDataHost();
    save(host, register());
    expect(reg("registered", contextOn(host, invite("sip:alice@example.com")).ctx, "location")).toBe(1);
    expect(reg("registered", contextOn(host, invite("sip:bob@example.com")).ctx, "location")).toBe(-1);
    expect(reg("registered_uri", contextOn(host, invite("sip:bob@example.com")).ctx, "location", "sip:alice@example.com")).toBe(1);
  });

  it("unregister removes every binding (1); unregister_ruid one (1) or -3", () => {
    const host = makeDataHost();
    save(host, register({ contacts: ["<sip:a@10.0.0.1>", "<sip:b@10.0.0.2>"] }));
    const ruid = bindingsOf(host)[0]!.ruid;
    const { ctx } = contextOn(host, invite("sip:carol@example.com"));
    expect(reg("unregister_ruid", ctx, "location", "sip:alice@example.com", "no-such-ruid")).toBe(-3);
    expect(reg("unregister_ruid", ctx, "location", "", ruid)).toBe(1);
    expect(bindingsOf(host)).toHaveLength(1);
    expect(reg("unregister", ctx, "location", "sip:alice@example.com")).toBe(1);
    expect(reg("registered_uri", ctx, "location", "sip:alice@example.com")).toBe(-1);
    expect(reg("unregister", ctx, "location", "::bad::")).toBe(-1);
  });
});

describe("tenant isolation", () => {
  it("a tenant neither sees nor changes another tenant's bindings", () => {
    const host = makeDataHost();
    save(host, register(), 0, "acme");
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com"), "globex").ctx, "location")).toBe(-1);
    expect(reg("registered", contextOn(host, invite("sip:alice@example.com"), "globex").ctx, "location")).toBe(-1);
    // A wildcard removal in the other tenant leaves acme's binding alone.
    save(host, register({ contacts: ["*"], expires: 0, cseq: 2 }), 0, "globex");
    expect(reg("lookup", contextOn(host, invite("sip:alice@example.com"), "acme").ctx, "location")).toBe(1);
    const ruid = bindingsOf(host, "alice", "acme")[0]!.ruid;
    expect(reg("unregister_ruid", contextOn(host, invite("sip:x@example.com"), "globex").ctx, "location", "", ruid)).toBe(-3);
    expect(bindingsOf(host, "alice", "acme")).toHaveLength(1);
  });
});
