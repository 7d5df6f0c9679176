import { describe, expect, it } from "vitest";
import { TransactionTable } from "../../host/transaction/table.js";
import { InviteServerTransaction } from "../../host/transaction/invite-server.js";
import { NonInviteServerTransaction } from "../../host/transaction/non-invite-server.js";
import { InviteClientTransaction } from "../../host/transaction/invite-client.js";
import { NonInviteClientTransaction } from "../../host/transaction/non-invite-client.js";
import { buildAckForNonSuccess, buildCancel } from "../../host/transaction/requests.js";
import { SettledClient, SettledServer } from "../../host/transaction/settled.js";
import { DeadlineQueue, FakeClock } from "../../host/transaction/timers.js";
import { parse, Recorder, request, requestText, response, responseText } from "./fixtures.js";

/** A table on the recorder's clock, and a second send function that records what records send. */
function setup(options: { maxSettled?: number } = {}) {
  const rec = new Recorder();
  const table = new TransactionTable({ timers: rec.clock, maxSettled: options.maxSettled });
  const recordSent: { at: number; data: string }[] = [];
  const recordSend = (data: string) => void recordSent.push({ at: rec.clock.now(), data });
  const serverOptions = { timers: rec.clock, send: rec.send, reliable: false, user: rec.serverUser };
  const clientOptions = { timers: rec.clock, send: rec.send, reliable: false, user: rec.clientUser };
  return { rec, table, recordSent, recordSend, serverOptions, clientOptions };
}

const statusOf = (data: string) => parse(data).status;
const methodOf = (data: string) => parse(data).method;

describe("compacting settled transactions (TransactionTable.compact)", () => {
  it("a non-INVITE server in Completed: the record resends the final response to each retransmission until timer J, then leaves", () => {
    const { rec, table, recordSent, recordSend, serverOptions } = setup();
    const options = request({ method: "OPTIONS" });
    const tx = new NonInviteServerTransaction(options, serverOptions);
    expect(table.addServer(tx)).toBe(true);
    rec.clock.advance(10);
    tx.respond(200, responseText(options, 200, "OK"));
    rec.clock.advance(5_000);
    let ended = 0;
    expect(table.compact(tx, { send: recordSend, onEnd: () => void ended++ })).toBe(true);
    // The machine is retired silently: terminated, no callback to its TU, no timer left.
    expect(tx.state).toBe("terminated");
    expect(rec.events).toEqual([]);
    expect([table.size, table.settledCount, table.compactedCount, rec.clock.pendingTimers]).toEqual([1, 1, 1, 1]);
    const record = table.receiveRequest(request({ method: "OPTIONS" }));
    expect(record).toBeInstanceOf(SettledServer);
    expect(recordSent.map((s) => statusOf(s.data))).toEqual([200]);
    expect(recordSent[0]!.data).toBe(responseText(options, 200, "OK"));
    // Timer J = 64*T1 from the final response at 10 ms.
    rec.clock.advance(32_010 - rec.clock.now() - 1);
    expect([table.size, ended]).toEqual([1, 0]);
    rec.clock.advance(1);
    expect([table.size, table.settledCount, table.compactedCount, ended]).toEqual([0, 0, 0, 1]);
    expect(table.receiveRequest(request({ method: "OPTIONS" }))).toBeUndefined();
    expect(recordSent).toHaveLength(1);
    expect(rec.clock.pendingTimers).toBe(0);
  });

  it("an INVITE server in Accepted: the record absorbs INVITE retransmissions, sends further 2xx only, is found by a CANCEL, and ends at timer L", () => {
    const { rec, table, recordSent, recordSend, serverOptions } = setup();
    const invite = request();
    const tx = new InviteServerTransaction(invite, serverOptions);
    table.addServer(tx);
    tx.respond(200, responseText(invite, 200, "OK"));
    rec.clock.advance(5_000);
    expect(table.compact(tx, { send: recordSend })).toBe(true);
    const record = table.receiveRequest(request()) as SettledServer;
    expect(record).toBeInstanceOf(SettledServer);
    expect([record.state, record.finalStatus, recordSent.length]).toEqual(["accepted", 200, 0]);
    expect(table.findInviteForCancel(request({ method: "CANCEL" }))).toBe(record);
    expect(record.respond(486, responseText(invite, 486, "Busy Here"))).toBe(false);
    expect(record.respond(200, responseText(invite, 200, "OK", "other-fork"))).toBe(true);
    expect(recordSent.map((s) => statusOf(s.data))).toEqual([200]);
    rec.clock.advance(32_000 - 5_000);
    expect(table.size).toBe(0);
    expect(record.respond(200, responseText(invite, 200, "OK"))).toBe(false);
  });

  it("an INVITE server in Completed keeps retransmitting its final response (timer G) and is not compacted; once Confirmed, it is, until timer I", () => {
    const { rec, table, recordSent, recordSend, serverOptions } = setup();
    const invite = request();
    const tx = new InviteServerTransaction(invite, serverOptions);
    table.addServer(tx);
    const busy = responseText(invite, 486, "Busy Here");
    tx.respond(486, busy);
    expect(table.compact(tx, { send: recordSend })).toBe(false);
    expect(tx.state).toBe("completed");
    rec.clock.advance(1_000);
    table.receiveRequest(parse(buildAckForNonSuccess(invite, parse(busy))));
    expect(tx.state).toBe("confirmed");
    expect(table.compact(tx, { send: recordSend })).toBe(true);
    // Confirmed absorbs INVITE and ACK alike, sending nothing.
    expect(table.receiveRequest(request())).toBeInstanceOf(SettledServer);
    expect(table.receiveRequest(parse(buildAckForNonSuccess(invite, parse(busy))))).toBeInstanceOf(SettledServer);
    expect(recordSent).toEqual([]);
    rec.clock.advance(5_000); // timer I = T4 from the ACK
    expect(table.size).toBe(0);
  });

  it("an RFC 2543 INVITE server: the record still matches the ACK by the To tag of the final response it sent", () => {
    const { rec, table, recordSend, serverOptions } = setup();
    const spec = { via: "SIP/2.0/UDP 192.0.2.30:5060;branch=1234abc" };
    const invite = request(spec);
    const tx = new InviteServerTransaction(invite, serverOptions);
    table.addServer(tx);
    tx.respond(200, responseText(invite, 200, "OK", "t-200"));
    rec.clock.advance(5_000);
    expect(table.compact(tx, { send: recordSend })).toBe(true);
    const ack = (toTag: string) =>
      request({ ...spec, method: "ACK", to: `Bob <sip:bob@biloxi.example.com>;tag=${toTag}` });
    expect(table.matchRequest(ack("t-200"))).toBeInstanceOf(SettledServer);
    expect(table.matchRequest(ack("t-other"))).toBeUndefined();
    expect(table.matchRequest(request(spec))).toBeInstanceOf(SettledServer);
    rec.clock.advance(27_000);
    expect(table.matchRequest(ack("t-200"))).toBeUndefined();
  });

  it("an INVITE client in Completed: the record resends the ACK for each retransmitted non-2xx until timer D", () => {
    const { rec, table, recordSent, recordSend, clientOptions } = setup();
    const tx = new InviteClientTransaction(requestText(), clientOptions);
    table.addClient(tx);
    tx.start();
    const busy = response(tx.request, 486, "Busy Here");
    table.receiveResponse(busy);
    const ackSent = rec.sent.filter((s) => methodOf(s.data) === "ACK").map((s) => s.data);
    expect(ackSent).toHaveLength(1);
    rec.clock.advance(5_000);
    expect(table.compact(tx, { send: recordSend })).toBe(true);
    expect(table.receiveResponse(busy)).toBeInstanceOf(SettledClient);
    expect(recordSent.map((s) => s.data)).toEqual(ackSent);
    // Any other response (a late 2xx) is absorbed by Completed.
    table.receiveResponse(response(parse(requestText()), 200, "OK"));
    expect(recordSent).toHaveLength(1);
    rec.clock.advance(32_000 - 5_000);
    expect(table.size).toBe(0);
  });

  it("an INVITE client in Accepted passes every 2xx to its TU (RFC 6026 §7.2): not compacted", () => {
    const { table, recordSend, clientOptions } = setup();
    const tx = new InviteClientTransaction(requestText(), clientOptions);
    table.addClient(tx);
    tx.start();
    table.receiveResponse(response(parse(requestText()), 200, "OK"));
    expect(tx.state).toBe("accepted");
    expect(table.compact(tx, { send: recordSend })).toBe(false);
    expect(table.matchResponse(response(parse(requestText()), 200, "OK"))).toBe(tx);
  });

  it("a non-INVITE client in Completed: the record absorbs response retransmissions until timer K; a CANCEL's own key stays apart", () => {
    const { rec, table, clientOptions } = setup();
    const invite = new InviteClientTransaction(requestText(), clientOptions);
    table.addClient(invite);
    invite.start();
    table.receiveResponse(response(invite.request, 180, "Ringing"));
    const cancel = new NonInviteClientTransaction(buildCancel(invite.request), clientOptions);
    table.addClient(cancel);
    cancel.start();
    const ok = response(parse(buildCancel(invite.request)), 200, "OK");
    table.receiveResponse(ok);
    expect(cancel.state).toBe("completed");
    expect(table.compact(cancel)).toBe(true);
    const before = rec.sent.length;
    expect(table.receiveResponse(ok)).toBeInstanceOf(SettledClient);
    expect(rec.sent).toHaveLength(before);
    // The INVITE, still proceeding, is matched by its own responses.
    expect(table.matchResponse(response(invite.request, 487, "Request Terminated"))).toBe(invite);
    rec.clock.advance(5_000); // timer K = T4
    expect(table.matchResponse(ok)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  it("refuses transactions still waiting for their final response, ones not in the table, and tables without a clock", () => {
    const { table, serverOptions, rec } = setup();
    const pending = new NonInviteServerTransaction(request({ method: "OPTIONS" }), serverOptions);
    table.addServer(pending);
    expect(table.compact(pending)).toBe(false);
    const outside = new NonInviteServerTransaction(request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKout" }), serverOptions);
    outside.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(table.compact(outside)).toBe(false);
    const clockless = new TransactionTable();
    const settled = new NonInviteServerTransaction(request({ method: "OPTIONS", via: "SIP/2.0/UDP h.example.com;branch=z9hG4bKnc" }), serverOptions);
    clockless.addServer(settled);
    settled.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(clockless.compact(settled)).toBe(false);
    expect(settled.state).toBe("completed");
    expect(rec.events).toEqual([]);
  });

  it("records count against maxSettled: past it the oldest is ended early, its onEnd called", () => {
    const { table, serverOptions } = setup({ maxSettled: 2 });
    const ended: string[] = [];
    const txs = ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"].map((branch) => {
      const tx = new NonInviteServerTransaction(request({ method: "OPTIONS", via: `SIP/2.0/UDP h.example.com;branch=${branch}` }), serverOptions);
      table.addServer(tx);
      return tx;
    });
    txs[0]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(table.compact(txs[0]!, { onEnd: () => void ended.push("1") })).toBe(true);
    txs[1]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    txs[2]!.respond(200, "SIP/2.0 200 OK\r\n\r\n");
    expect(ended).toEqual(["1"]);
    expect([table.settledCount, table.compactedCount, table.expiredEarly, table.size]).toEqual([2, 0, 1, 2]);
  });
});

describe("DeadlineQueue", () => {
  it("delivers items at their due time, ties in insertion order, on one timer", () => {
    const clock = new FakeClock(1_000);
    const log: string[] = [];
    const queue = new DeadlineQueue<{ due: number; name: string }>(clock, (item) => log.push(`${item.name}@${clock.now()}`));
    queue.add({ due: 1_300, name: "c" });
    queue.add({ due: 1_100, name: "a" });
    queue.add({ due: 1_300, name: "d" });
    queue.add({ due: 1_200, name: "b" });
    expect(clock.pendingTimers).toBe(1);
    clock.advance(250);
    expect(log).toEqual(["a@1100", "b@1200"]);
    clock.advance(50);
    expect(log).toEqual(["a@1100", "b@1200", "c@1300", "d@1300"]);
    expect([queue.size, clock.pendingTimers]).toEqual([0, 0]);
  });

  it("re-arms for an item due earlier than the armed one, and for items added while delivering", () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const queue: DeadlineQueue<{ due: number; name: string }> = new DeadlineQueue(clock, (item) => {
      log.push(`${item.name}@${clock.now()}`);
      if (item.name === "a") queue.add({ due: clock.now() + 50, name: "a2" });
    });
    queue.add({ due: 500, name: "b" });
    queue.add({ due: 100, name: "a" });
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1_000);
    expect(log).toEqual(["a@100", "a2@150", "b@500"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("orders thousands of deadlines", () => {
    const clock = new FakeClock();
    const out: number[] = [];
    const queue = new DeadlineQueue<{ due: number }>(clock, (item) => out.push(item.due));
    // A fixed permutation of 0..4999 (7919 is prime, coprime with 5000).
    for (let i = 0; i < 5_000; i++) queue.add({ due: ((i * 7919) % 5_000) + 1 });
    clock.advance(5_000);
    expect(out).toEqual(Array.from({ length: 5_000 }, (_, i) => i + 1));
  });
});
