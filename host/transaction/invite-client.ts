/**
 * INVITE client transaction: RFC 3261 §17.1.1 (figure 5) as corrected by
 * RFC 6026 §7.2 (the "accepted" state and timer M).
 *
 *                  start(): send INVITE; A (unreliable), B
 *                                 |
 *       A fires: resend ------ Calling ------ B fires: onTimeout --> Terminated
 *                                 |  1xx: to TU
 *                                 v
 *        1xx: to TU ------- Proceeding
 *                          /            \
 *     300-699: ACK, to TU /              \ 2xx: to TU
 *                        v                v
 *  300-699: resend ACK Completed       Accepted  2xx: to TU
 *                        | D fires        | M fires
 *                        v                v
 *                        +--> Terminated <+
 *
 * (Calling goes straight to Completed or Accepted on a final response.)
 */
import type { SipMessage } from "../sip/message.js";
import { ClientTransaction, type ClientTransactionOptions } from "./client.js";
import { buildAckForNonSuccess } from "./requests.js";
import { timerDFor } from "./timers.js";
import { outgoingRequest, type OutgoingRequest, type SendFunction } from "./transaction.js";
import { SettledClient } from "./settled.js";
import { ownCopy } from "../sip/message.js";

export type InviteClientState = "calling" | "proceeding" | "completed" | "accepted" | "terminated";

export class InviteClientTransaction extends ClientTransaction {
  /** Current timer A interval: T1, doubling on every retransmission (§17.1.1.2). */
  private timerAInterval = 0;
  /** The ACK sent for the non-2xx final response, resent for each retransmission of it (§17.1.1.2). */
  private ack: string | undefined;

  constructor(request: OutgoingRequest, options: ClientTransactionOptions) {
    super(outgoingRequest(request), options, "calling");
    if (this.method !== "INVITE") throw new TypeError(`InviteClientTransaction needs an INVITE, got ${this.method}`);
  }

  override get state(): InviteClientState {
    return super.state as InviteClientState;
  }

  /** The ACK generated for a non-2xx final response, once there is one. */
  get ackData(): string | undefined {
    return this.ack;
  }

  /**
   * §17.1.1.2: the "calling" state is entered, the INVITE passed to the
   * transport, timer A started at T1 for an unreliable transport (never for
   * a reliable one), and timer B at 64*T1 for any transport.
   */
  protected begin(): void {
    if (!this.reliable) {
      this.timerAInterval = this.config.T1;
      this.startTimer("A", this.timerAInterval, () => this.timerAFired());
    }
    this.startTimer("B", 64 * this.config.T1, () => this.timerBFired());
    if (!this.transmit(this.requestData)) this.onTransportFailure();
  }

  receiveResponse(response: SipMessage): void {
    if (response.kind !== "response") return;
    const status = response.status;
    switch (this.state) {
      case "calling":
      case "proceeding":
        if (status < 200) {
          // §17.1.1.2: a provisional response moves "calling" to
          // "proceeding" (retransmissions stop: timer A only runs in
          // "calling", and timer B only bounds "calling"); provisional
          // responses are passed to the TU in both states.
          this.stopTimer("A");
          this.stopTimer("B");
          this.setState("proceeding");
          this.user.onResponse(response, this);
        } else if (status < 300) {
          // RFC 6026 §7.2: a 2xx moves "calling"/"proceeding" to "accepted"
          // and starts timer M = 64*T1; the 2xx goes to the TU, which ACKs
          // it end to end (or, in a proxy, forwards it).
          this.stopTimer("A");
          this.stopTimer("B");
          this.setState("accepted");
          this.startTimer("M", 64 * this.config.T1, () => this.terminate());
          this.user.onResponse(response, this);
        } else {
          this.enterCompleted(response);
        }
        return;
      case "completed":
        // §17.1.1.2: any retransmission of the final response received in
        // "completed" makes the ACK be resent, and is not passed to the TU.
        if (status >= 300 && this.ack !== undefined) {
          if (!this.transmit(this.ack)) this.onTransportFailure();
        }
        return;
      case "accepted":
        // RFC 6026 §7.2: every 2xx received in "accepted" goes to the TU.
        // Other responses have no transition there and are discarded.
        if (status >= 200 && status < 300) this.user.onResponse(response, this);
        return;
      case "terminated":
        return;
    }
  }

  /**
   * §17.1.1.2: a 300-699 response in "calling" or "proceeding": enter
   * "completed", pass the response to the TU, send the ACK (§17.1.1.3) and
   * start timer D (at least 32 s unreliable, zero reliable: the transaction
   * then terminates right after the TU has seen the response).
   */
  private enterCompleted(response: SipMessage): void {
    this.stopTimer("A");
    this.stopTimer("B");
    // Built before "completed", which releases the INVITE (releaseOnSettle).
    this.ack = buildAckForNonSuccess(this.request, response);
    this.setState("completed");
    const timerD = timerDFor(this.config, this.reliable);
    if (timerD > 0) this.startTimer("D", timerD, () => this.terminate());
    const sent = this.transmit(this.ack);
    this.user.onResponse(response, this);
    if (this.state !== "completed") return; // the TU reported a transport error meanwhile
    if (!sent) this.onTransportFailure();
    else if (timerD === 0) this.terminate();
  }

  /**
   * "completed" until timer D (§17.1.1.2) only resends the ACK for each
   * retransmission of the final response: a record with the ACK does that.
   * "accepted" passes every 2xx to the TU (RFC 6026 §7.2) and stays a machine.
   * @internal
   */
  settledRecord(send: SendFunction = this.sendFunction): SettledClient | undefined {
    const due = this.state === "completed" ? this.timerDue("D") : undefined;
    if (due === undefined || this.ack === undefined) return undefined;
    return new SettledClient("INVITE", due, ownCopy(this.ack), send);
  }

  /**
   * §17.1.1.2: when timer A fires in "calling" the INVITE is retransmitted
   * and timer A restarted with twice its previous value (no T2 cap for
   * INVITE: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s with the default T1).
   */
  private timerAFired(): void {
    if (this.state !== "calling") return;
    if (!this.transmit(this.requestData)) {
      this.onTransportFailure();
      return;
    }
    this.timerAInterval *= 2;
    this.startTimer("A", this.timerAInterval, () => this.timerAFired());
  }

  /** §17.1.1.2: timer B firing in "calling" means a timeout: inform the TU, enter "terminated". */
  private timerBFired(): void {
    if (this.state !== "calling") return;
    this.user.onTimeout?.(this);
    this.terminate();
  }
}
