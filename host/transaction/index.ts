/**
 * The RFC 3261 §17 transaction layer: four state machines, a table that
 * matches messages to them, and the timers they run on. Transport-agnostic:
 * a transaction sends through a callback bound to one destination and
 * reports to its owner (the transaction user, TU: the proxy core or a UA)
 * through callbacks. Nothing here touches sockets or the real clock unless
 * given RealTimerService.
 *
 * ## Time
 *
 *   interface TimerService { now(): number; setTimer(ms, fn): TimerHandle; clearTimer(h): void }
 *   new RealTimerService()            setTimeout-based, unref'd
 *   new FakeClock(startMs = 0)        tests: clock.advance(ms) runs due timers in order
 *   resolveTimerConfig({ T1?, T2?, T4?, timerC? }) → TimerConfig   (defaults 500, 4000, 5000, 181 000 ms)
 *   new TimerC(timers, config.timerC, onFire)  start() / reset() / stop() — the proxy's
 *                                     per-branch INVITE timeout (§16.6 step 11, §16.8)
 *
 * ## Common options (every transaction)
 *
 *   { timers: TimerService,
 *     send: (data: string) => boolean | void,   // binary string; false/throw = transport error
 *     reliable: boolean,                        // TCP/TLS/SCTP/WS: no retransmissions, zero wait timers
 *     config?: TimerConfig,
 *     user: ClientTransactionUser | ServerTransactionUser }
 *
 * `send` is bound by the TU to the destination (client: the next hop;
 * server: where responses go per §18.2.2). An error detected later (TCP
 * connect failure) is reported with `tx.transportError()`.
 *
 * ## Client side (the TU sends a request)
 *
 *   const tx = new InviteClientTransaction(requestTextOrMessage, { ...common, user })
 *   // or new NonInviteClientTransaction(...) for anything but INVITE and ACK
 *   table.addClient(tx); tx.start();          // start() sends and arms the timers
 *   table.receiveResponse(response)           // matches (§17.1.3) and feeds the machine
 *
 *   ClientTransactionUser {
 *     onResponse(response, tx)   // 1xx and the first final; INVITE "accepted": every 2xx (RFC 6026 §7.2)
 *     onTimeout?(tx)             // timer B / F
 *     onTransportError?(tx)
 *     onTerminated?(tx)
 *   }
 *
 * The INVITE client sends the ACK for 300-699 itself (§17.1.1.3,
 * buildAckForNonSuccess) and resends it for each retransmitted final
 * response. The ACK for a 2xx is the TU's (end to end). For CANCEL the TU
 * creates a NonInviteClientTransaction with buildCancel(inviteTx.request)
 * once the INVITE branch has had a provisional response (§9.1).
 *
 * ## Server side (a request arrives)
 *
 *   const tx = table.receiveRequest(request)  // a retransmission or ACK: absorbed, tx returned
 *   if (tx === undefined && request.method !== "ACK") {
 *     const stx = request.method === "INVITE"
 *       ? new InviteServerTransaction(request, { ...common, user, trying100: "immediately" })
 *       : new NonInviteServerTransaction(request, { ...common, user });
 *     table.addServer(stx);                   // false: table full (answer 503) or duplicate
 *     ... stx.respond(status, responseText)   // false when discarded in the current state
 *   }
 *   // an ACK that matched nothing (ACK for a 2xx) is the TU's to forward
 *   table.findInviteForCancel(cancel)         // §9.2: the INVITE server transaction a CANCEL targets
 *
 * ## Compaction
 *
 *   new TransactionTable({ timers })           // needed for compaction
 *   table.compact(tx, { send?, onEnd? })       // a settled tx the TU is done with → a compact record
 *
 * A compacted transaction is retired (terminated, no callbacks) and a
 * SettledServer / SettledClient record (settled.ts) takes its table
 * entries: it absorbs retransmissions (resending the non-INVITE final
 * response or the non-2xx ACK, sending further 2xx in "accepted") until
 * its wait timer's deadline, on one shared timer. matchRequest /
 * matchResponse may therefore return a record instead of a transaction.
 *
 *   ServerTransactionUser {
 *     onAck?(ack, tx)            // ACK matching an INVITE in "accepted" (RFC 6026 §7.1)
 *     onTimeout?(tx)             // timer H: no ACK for the non-2xx final
 *     onTransportError?(tx)      // INVITE: state kept (RFC 6026 §8.8); non-INVITE: terminated
 *     onTerminated?(tx)
 *   }
 *
 * Server transactions start at construction: the INVITE one sends 100
 * Trying after 200 ms unless the TU responded first, or at once with
 * `trying100: "immediately"`.
 *
 * ## RFC 6026
 *
 * INVITE server: a 2xx from the TU is sent once and the machine enters
 * "accepted" for timer L = 64*T1; there INVITE retransmissions are absorbed
 * (not answered: the 2xx is retransmitted by its UAS and forwarded by the
 * proxy), every further 2xx from the TU is sent, and an ACK goes to the TU.
 * INVITE client: a 2xx enters "accepted" for timer M = 64*T1, and every
 * 2xx received there goes to the TU, so a proxy can forward 2xx
 * retransmissions and 2xx from other forks.
 *
 * A 2xx that arrives after the server transaction sent a non-2xx final
 * response ("completed"/"confirmed") is refused by respond() (false): §17.2.1
 * has no such transition. A proxy that must still forward it (§16.7 step 5)
 * sends it through its transport directly.
 *
 * ## Callbacks
 *
 * Callbacks run synchronously inside the call that caused them (start,
 * receiveResponse, receiveRequest, respond, a timer). On reliable
 * transports the zero-duration timers D, I, J, K are not scheduled: the
 * transaction terminates right after the triggering event (after the TU
 * has seen the response). Callbacks must not throw.
 */
export {
  type TimerHandle,
  type TimerService,
  RealTimerService,
  FakeClock,
  type TimerConfig,
  DEFAULT_TIMER_CONFIG,
  resolveTimerConfig,
  timerDFor,
  TimerC,
  DeadlineQueue,
} from "./timers.js";
export {
  Transaction,
  type TransactionState,
  type TransactionOptions,
  type SendFunction,
  type TimerName,
  type OutgoingRequest,
} from "./transaction.js";
export { ClientTransaction, type ClientTransactionUser, type ClientTransactionOptions } from "./client.js";
export { ServerTransaction, type ServerTransactionUser, type ServerTransactionOptions } from "./server.js";
export { InviteClientTransaction, type InviteClientState } from "./invite-client.js";
export { NonInviteClientTransaction, type NonInviteClientState } from "./non-invite-client.js";
export {
  InviteServerTransaction,
  type InviteServerState,
  type InviteServerTransactionOptions,
  TRYING_DELAY_MS,
} from "./invite-server.js";
export { NonInviteServerTransaction, type NonInviteServerState } from "./non-invite-server.js";
export { buildAckForNonSuccess, buildCancel } from "./requests.js";
export { SettledServer, SettledClient, type SettledRecord } from "./settled.js";
export {
  TransactionTable,
  type TransactionTableOptions,
  type ServerEntry,
  type ClientEntry,
  type CompactOptions,
  DEFAULT_MAX_TRANSACTIONS,
  MAGIC_COOKIE,
  isRfc3261Branch,
  isReliableTransport,
} from "./table.js";
