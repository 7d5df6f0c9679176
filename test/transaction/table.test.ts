import { describe, expect, it } from "vitest";
import type { SipMessage } from "../../host/sip/message.js";
import { TransactionTable, isReliableTransport, isRfc3261Branch, MAGIC_COOKIE } from "../../host/transaction/table.js";
import { InviteServerTransaction } from "../../host/transaction/invite-server.js";
import { NonInviteServerTransaction } from "../../host/transaction/non-invite-server.js";
import { InviteClientTransaction } from "../../host/transaction/invite-client.js";
import { NonInviteClientTransaction } from "../../host/transaction/non-invite-client.js";
import { buildAckForNonSuccess, buildCancel } from "../../host/transaction/requests.js";
import { FakeClock } from "../../host/transaction/timers.js";
import { parse, Recorder, request, requestText, response, responseText, type RequestSpec } from "./fixtures.js";

function serverFor(rec: Recorder, req: SipMessage, reliable = false) {
  const opts = { timers: rec.clock, send: rec.send, reliable, user: rec.serverUser };
  return req.method === "INVITE" ? new InviteServerTransaction(req, opts) : new NonInviteServerTransaction(req, opts);
}

const RFC2543: RequestSpec = { via: "SIP/2.0/UDP 192.0.2.30:5060;received=192.0.2.30;branch=1234abc" };

describe("server transaction matching with the magic cookie (RFC 3261 §17.2.3)", () => {
  it("matches retransmissions by branch, sent-by and method, and lets the transaction absorb them", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const invite = request();
    const tx = serverFor(rec, invite) as InviteServerTransaction;
    expect(table.addServer(tx)).toBe(true);
    tx.respond(180, responseText(invite, 180, "Ringing"));
    expect(table.receiveRequest(request())).toBe(tx);
    expect(rec.sent.map((s) => parse(s.data).status)).toEqual([180, 180]);
    // via-params other than branch do not take part
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKclient1;rport" }))).toBe(tx);
  });

  it("does not match another branch, another sent-by or another method", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const tx = serverFor(rec, request({ via: "SIP/2.0/UDP uac.example.com:5060;branch=z9hG4bKaaa" }));
    table.addServer(tx);
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP UAC.Example.COM:5060;branch=z9hG4bKaaa" }))).toBe(tx);
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP uac.example.com:5060;branch=z9hG4bKaab" }))).toBeUndefined();
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP uac.example.com:5070;branch=z9hG4bKaaa" }))).toBeUndefined();
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP uac.example.com;branch=z9hG4bKaaa" }))).toBeUndefined();
    expect(table.matchRequest(request({ via: "SIP/2.0/UDP other.example.com:5060;branch=z9hG4bKaaa" }))).toBeUndefined();
    expect(
      table.matchRequest(request({ method: "OPTIONS", via: "SIP/2.0/UDP uac.example.com:5060;branch=z9hG4bKaaa" })),
    ).toBeUndefined();
    expect(table.matchRequest(response(request(), 200, "OK"))).toBeUndefined();
  });

  it("matches the ACK for a non-2xx final to the INVITE (hop by hop) but not the ACK for a 2xx", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const invite = request();
    const tx = serverFor(rec, invite) as InviteServerTransaction;
    table.addServer(tx);
    const busy = responseText(invite, 486, "Busy Here");
    tx.respond(486, busy);
    const ack = parse(buildAckForNonSuccess(invite, parse(busy)));
    expect(table.receiveRequest(ack)).toBe(tx);
    expect(tx.state).toBe("confirmed");
    // an end-to-end ACK for a 2xx carries a new branch
    const e2eAck = request({ method: "ACK", via: "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnewack" });
    expect(table.matchRequest(e2eAck)).toBeUndefined();
  });

  it("keeps CANCEL apart from the INVITE and finds the INVITE for it (§9.2)", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const invite = request();
    const inviteTx = serverFor(rec, invite) as InviteServerTransaction;
    table.addServer(inviteTx);
    const cancel = parse(buildCancel(invite));
    expect(table.matchRequest(cancel)).toBeUndefined(); // a new request: it gets its own transaction
    expect(table.findInviteForCancel(cancel)).toBe(inviteTx);
    const cancelTx = serverFor(rec, cancel);
    expect(table.addServer(cancelTx)).toBe(true);
    expect(table.matchRequest(cancel)).toBe(cancelTx);
    expect(table.findInviteForCancel(cancel)).toBe(inviteTx);
    const otherBranch = request({ method: "CANCEL", via: "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKother" });
    expect(table.findInviteForCancel(otherBranch)).toBeUndefined();
  });

  it("finds no INVITE for a CANCEL whose branch belongs to a non-INVITE transaction", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const options = request({ method: "OPTIONS" });
    table.addServer(serverFor(rec, options));
    expect(table.findInviteForCancel(parse(buildCancel(options)))).toBeUndefined();
  });
});

describe("server transaction matching without the cookie (RFC 2543 fallback, §17.2.3)", () => {
  it("matches on Request-URI, To tag, From tag, Call-ID, CSeq and top Via", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const tx = serverFor(rec, request({ ...RFC2543, method: "OPTIONS" }));
    table.addServer(tx);
    expect(table.matchRequest(request({ ...RFC2543, method: "OPTIONS" }))).toBe(tx);
    // parameter order in the Via does not matter (§20.42 compares the parameter set)
    expect(
      table.matchRequest(request({ method: "OPTIONS", via: "SIP/2.0/UDP 192.0.2.30:5060;branch=1234abc;received=192.0.2.30" })),
    ).toBe(tx);
    const variants: RequestSpec[] = [
      { uri: "sip:carol@biloxi.example.com" },
      { to: "Bob <sip:bob@biloxi.example.com>;tag=zz" },
      { from: "Alice <sip:alice@atlanta.example.com>;tag=other" },
      { callId: "different@host" },
      { cseq: 314160 },
      { via: "SIP/2.0/UDP 192.0.2.30:5060;received=192.0.2.31;branch=1234abc" },
      { via: "SIP/2.0/UDP 192.0.2.30:5060;branch=1234abc" },
    ];
    for (const v of variants) expect(table.matchRequest(request({ ...RFC2543, method: "OPTIONS", ...v }))).toBeUndefined();
    expect(table.matchRequest(request({ ...RFC2543, method: "INFO" }))).toBeUndefined();
  });

  it("also handles a top Via without any branch", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const spec = { method: "OPTIONS", via: "SIP/2.0/UDP 192.0.2.30:5060" };
    const tx = serverFor(rec, request(spec));
    table.addServer(tx);
    expect(table.matchRequest(request(spec))).toBe(tx);
  });

  it("matches an ACK to the INVITE only when its To tag is the one of the final response sent", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const invite = request(RFC2543);
    const tx = serverFor(rec, invite) as InviteServerTransaction;
    table.addServer(tx);
    const ackWith = (toTag: string) =>
      request({ ...RFC2543, method: "ACK", to: `Bob <sip:bob@biloxi.example.com>;tag=${toTag}` });
    // no final response yet: nothing to acknowledge
    expect(table.matchRequest(ackWith("srv-tag"))).toBeUndefined();
    tx.respond(404, responseText(invite, 404, "Not Found", "srv-tag"));
    expect(tx.finalResponseToTag()).toBe("srv-tag");
    expect(table.matchRequest(ackWith("other-tag"))).toBeUndefined();
    expect(table.matchRequest(request({ ...RFC2543, method: "ACK", cseq: 1 }))).toBeUndefined();
    expect(table.receiveRequest(ackWith("srv-tag"))).toBe(tx);
    expect(tx.state).toBe("confirmed");
    // the INVITE's retransmissions still match by the full key
    expect(table.matchRequest(request(RFC2543))).toBe(tx);
  });

  it("finds the INVITE for a CANCEL by Request-URI, tags, Call-ID, CSeq number and top Via (§9.2)", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const invite = request(RFC2543);
    const tx = serverFor(rec, invite) as InviteServerTransaction;
    table.addServer(tx);
    expect(table.findInviteForCancel(parse(buildCancel(invite)))).toBe(tx);
    expect(table.findInviteForCancel(request({ ...RFC2543, method: "CANCEL" }))).toBe(tx);
    expect(table.findInviteForCancel(request({ ...RFC2543, method: "CANCEL", cseq: 2 }))).toBeUndefined();
    expect(table.findInviteForCancel(request({ ...RFC2543, method: "CANCEL", uri: "sip:x@y.example.com" }))).toBeUndefined();
  });
});

describe("client transaction matching (RFC 3261 §17.1.3)", () => {
  it("matches a response by top Via branch and CSeq method", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
    const invite = request({ via: "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKout1" });
    const inviteTx = new InviteClientTransaction(invite, opts);
    const cancelTx = new NonInviteClientTransaction(buildCancel(invite), opts);
    expect(table.addClient(inviteTx)).toBe(true);
    expect(table.addClient(cancelTx)).toBe(true);
    expect(table.clientCount).toBe(2);
    inviteTx.start();
    cancelTx.start();

    const cancelOk = response(cancelTx.request, 200, "OK");
    expect(table.matchResponse(cancelOk)).toBe(cancelTx);
    expect(table.receiveResponse(response(invite, 180, "Ringing"))).toBe(inviteTx);
    expect(inviteTx.state).toBe("proceeding");
    const otherBranch = response(request({ via: "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKout2" }), 180, "Ringing");
    expect(table.matchResponse(otherBranch)).toBeUndefined();
    expect(table.matchResponse(invite)).toBeUndefined(); // a request is not a response
  });

  it("refuses a request without a branch, a duplicate key and a second table", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
    expect(table.addClient(new NonInviteClientTransaction(requestText({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com" }), opts))).toBe(false);
    const a = new NonInviteClientTransaction(requestText({ method: "OPTIONS" }), opts);
    expect(table.addClient(a)).toBe(true);
    expect(table.addClient(new NonInviteClientTransaction(requestText({ method: "OPTIONS" }), opts))).toBe(false);
    expect(() => new TransactionTable().addClient(a)).toThrow(/already in a table/);
  });
});

describe("table lifetime and bounds", () => {
  it("removes transactions the instant they terminate", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const opts = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
    const req = request({ method: "OPTIONS" });
    const stx = serverFor(rec, req) as NonInviteServerTransaction;
    const ctx = new NonInviteClientTransaction(request({ method: "OPTIONS", via: "SIP/2.0/UDP p.example.com;branch=z9hG4bKc" }), opts);
    table.addServer(stx);
    table.addClient(ctx);
    ctx.start();
    expect(table.size).toBe(2);
    stx.respond(200, responseText(req, 200, "OK"));
    rec.clock.advance(31_999);
    expect(table.serverCount).toBe(1);
    rec.clock.advance(1); // timer J and timer F both at 32 s
    expect(table.size).toBe(0);
    expect(table.matchRequest(req)).toBeUndefined();
    expect(table.matchResponse(response(ctx.request, 200, "OK"))).toBeUndefined();
  });

  it("remove() drops a live transaction without terminating it", () => {
    const rec = new Recorder();
    const table = new TransactionTable();
    const tx = serverFor(rec, request());
    table.addServer(tx);
    table.remove(tx);
    expect(table.size).toBe(0);
    expect(tx.state).toBe("proceeding");
    expect(new TransactionTable().addServer(tx)).toBe(true);
  });

  it("refuses new transactions when full, duplicates, and terminated ones", () => {
    const rec = new Recorder();
    const table = new TransactionTable({ maxTransactions: 2 });
    const a = serverFor(rec, request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKa" }));
    const b = serverFor(rec, request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKb" }));
    const c = serverFor(rec, request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKc" }));
    const dup = serverFor(rec, request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKa" }));
    expect(table.addServer(a)).toBe(true);
    expect(table.addServer(dup)).toBe(false);
    expect(table.addServer(b)).toBe(true);
    expect(table.isFull).toBe(true);
    expect(table.addServer(c)).toBe(false);
    const dead = serverFor(rec, request({ method: "OPTIONS", via: "SIP/2.0/TCP h.example.com;branch=z9hG4bKd" }), true);
    (dead as NonInviteServerTransaction).respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(dead.terminated).toBe(true);
    expect(new TransactionTable().addServer(dead)).toBe(false);
    expect(() => new TransactionTable({ maxTransactions: 0 })).toThrow(RangeError);
  });

  it("counts only transactions still waiting for their final response against maxTransactions; settled ones wait out timer J beside them", () => {
    const rec = new Recorder();
    const table = new TransactionTable({ maxTransactions: 2 });
    const options = (branch: string) => request({ method: "OPTIONS", via: `SIP/2.0/UDP h.example.com;branch=${branch}` });
    const a = serverFor(rec, options("z9hG4bKa")) as NonInviteServerTransaction;
    const b = serverFor(rec, options("z9hG4bKb")) as NonInviteServerTransaction;
    expect(table.addServer(a) && table.addServer(b)).toBe(true);
    expect(table.isFull).toBe(true);
    a.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(a.state).toBe("completed");
    expect([table.unsettledCount, table.settledCount, table.isFull]).toEqual([1, 1, false]);
    expect(table.addServer(serverFor(rec, options("z9hG4bKc")))).toBe(true);
    // The settled one still absorbs its retransmission (resends its 200) until timer J.
    expect(table.matchRequest(options("z9hG4bKa"))).toBe(a);
    rec.clock.advance(32_000);
    expect(a.terminated).toBe(true);
    expect([table.unsettledCount, table.settledCount]).toEqual([2, 0]);
  });

  it("past maxSettled the oldest settled transaction is ended early", () => {
    const rec = new Recorder();
    const table = new TransactionTable({ maxTransactions: 10, maxSettled: 2 });
    const txs = ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"].map((branch) => {
      const tx = serverFor(rec, request({ method: "OPTIONS", via: `SIP/2.0/UDP h.example.com;branch=${branch}` })) as NonInviteServerTransaction;
      expect(table.addServer(tx)).toBe(true);
      return tx;
    });
    txs[0]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    txs[1]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(txs.map((t) => t.terminated)).toEqual([false, false, false]);
    txs[2]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(txs.map((t) => t.terminated)).toEqual([true, false, false]);
    expect([table.settledCount, table.expiredEarly, table.size]).toEqual([2, 1, 2]);
    expect(() => serverFor(rec, request({ method: "OPTIONS" })).expire()).toThrow(/cannot expire a trying transaction/);
  });
});

describe("helpers", () => {
  it("recognises RFC 3261 branches and reliable transports", () => {
    expect(MAGIC_COOKIE).toBe("z9hG4bK");
    expect(isRfc3261Branch("z9hG4bK776asdhds")).toBe(true);
    expect(isRfc3261Branch("776asdhds")).toBe(false);
    expect(isRfc3261Branch(undefined)).toBe(false);
    expect(["UDP", "udp"].map(isReliableTransport)).toEqual([false, false]);
    expect(["TCP", "tls", "SCTP", "WS", "WSS"].map(isReliableTransport)).toEqual([true, true, true, true, true]);
  });
});

describe("client and server machines across a lossy link", () => {
  it("an INVITE lost twice is retransmitted, rejected, and the rejection ACKed hop by hop", () => {
    const clock = new FakeClock();
    const serverTable = new TransactionTable();
    const events: string[] = [];
    let dropUpstream = 2; // lose the first two INVITE transmissions
    let serverTx: InviteServerTransaction | undefined;

    const deliverToServer = (data: string) => {
      if (dropUpstream > 0) {
        dropUpstream--;
        return;
      }
      const msg = parse(data);
      const matched = serverTable.receiveRequest(msg);
      events.push(`server got ${msg.method}${matched ? " (matched)" : ""} @${clock.now()}`);
      if (matched === undefined && msg.method === "INVITE") {
        serverTx = new InviteServerTransaction(msg, {
          timers: clock,
          reliable: false,
          send: (resp) => void clock.setTimer(10, () => client.receiveResponse(parse(resp))),
          user: { onTerminated: () => void events.push(`server terminated @${clock.now()}`) },
        });
        serverTable.addServer(serverTx);
        serverTx.respond(486, responseText(msg, 486, "Busy Here"));
      }
    };
    const client = new InviteClientTransaction(requestText(), {
      timers: clock,
      reliable: false,
      send: (data) => void clock.setTimer(10, () => deliverToServer(data)),
      user: {
        onResponse: (r) => void events.push(`client got ${r.status} @${clock.now()}`),
        onTerminated: () => void events.push(`client terminated @${clock.now()}`),
      },
    });
    client.start();
    clock.advance(60_000);
    expect(events).toEqual([
      "server got INVITE @1510", // sent at 0 and 500 were lost; the retransmission at 1500 arrives
      "client got 486 @1520",
      "server got ACK (matched) @1530",
      "server terminated @6530", // timer I = T4 after the ACK
      "client terminated @33520", // timer D = 32 s
    ]);
    expect(serverTx!.state).toBe("terminated");
    expect(serverTable.size).toBe(0);
  });
});
