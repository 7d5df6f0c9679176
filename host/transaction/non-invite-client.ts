/**
 * Non-INVITE client transaction: RFC 3261 §17.1.2 (figure 6).
 *
 *             start(): send request; E (unreliable), F
 *                              |
 *   E fires: resend,      Trying ------- F fires: onTimeout --> Terminated
 *   E = min(2E, T2)        |    \ 1xx: to TU
 *                          |     v
 *                          |   Proceeding   E fires: resend, E = T2
 *          200-699: to TU  |    / 200-699: to TU    F fires: onTimeout --> Terminated
 *                          v   v
 *                        Completed   (responses absorbed)
 *                          | K fires (T4 unreliable, 0 reliable)
 *                          v
 *                        Terminated
 */
import type { SipMessage } from "../sip/message.js";
import { ClientTransaction, type ClientTransactionOptions } from "./client.js";
import { outgoingRequest, type OutgoingRequest, type SendFunction } from "./transaction.js";
import { SettledClient } from "./settled.js";

export type NonInviteClientState = "trying" | "proceeding" | "completed" | "terminated";

export class NonInviteClientTransaction extends ClientTransaction {
  /** Current timer E interval (§17.1.2.2). */
  private timerEInterval = 0;

  constructor(request: OutgoingRequest, options: ClientTransactionOptions) {
    super(outgoingRequest(request), options, "trying");
    // ACK never forms a transaction (§17): an ACK for a 2xx is its own
    // end-to-end message, an ACK for a non-2xx belongs to the INVITE's.
    if (this.method === "INVITE" || this.method === "ACK") {
      throw new TypeError(`NonInviteClientTransaction cannot carry ${this.method}`);
    }
  }

  override get state(): NonInviteClientState {
    return super.state as NonInviteClientState;
  }

  /**
   * §17.1.2.2: "trying" is entered, the request passed to the transport,
   * timer F set to 64*T1 and, for an unreliable transport only, timer E to T1.
   */
  protected begin(): void {
    if (!this.reliable) {
      this.timerEInterval = this.config.T1;
      this.startTimer("E", this.timerEInterval, () => this.timerEFired());
    }
    this.startTimer("F", 64 * this.config.T1, () => this.timerFFired());
    if (!this.transmit(this.requestData)) this.onTransportFailure();
  }

  receiveResponse(response: SipMessage): void {
    if (response.kind !== "response") return;
    const status = response.status;
    switch (this.state) {
      case "trying":
      case "proceeding":
        if (status < 200) {
          // §17.1.2.2: a provisional response moves "trying" to
          // "proceeding"; provisional responses go to the TU in both states.
          this.setState("proceeding");
          this.user.onResponse(response, this);
          return;
        }
        // §17.1.2.2: a final response (200-699) in "trying" or "proceeding"
        // goes to the TU and the machine enters "completed", where timer K
        // (T4 unreliable, zero reliable) buffers response retransmissions.
        this.stopTimer("E");
        this.stopTimer("F");
        this.setState("completed");
        if (!this.reliable) this.startTimer("K", this.config.T4, () => this.terminate());
        this.user.onResponse(response, this);
        if (this.reliable) this.terminate();
        return;
      case "completed":
      case "terminated":
        // §17.1.2.2: in "completed" retransmitted responses are absorbed.
        return;
    }
  }

  /**
   * "completed" until timer K (§17.1.2.2) absorbs response retransmissions:
   * a record does that, sending nothing.
   * @internal
   */
  settledRecord(send?: SendFunction): SettledClient | undefined {
    const due = this.state === "completed" ? this.timerDue("K") : undefined;
    return due === undefined ? undefined : new SettledClient(this.method, due, undefined, send);
  }

  /**
   * §17.1.2.2: timer E in "trying" retransmits and doubles, capped at T2
   * (0.5, 1.5, 3.5, 7.5, 11.5 ... s with defaults); in "proceeding" it
   * retransmits and resets to T2.
   */
  private timerEFired(): void {
    const state = this.state;
    if (state !== "trying" && state !== "proceeding") return;
    if (!this.transmit(this.requestData)) {
      this.onTransportFailure();
      return;
    }
    this.timerEInterval = state === "trying" ? Math.min(2 * this.timerEInterval, this.config.T2) : this.config.T2;
    this.startTimer("E", this.timerEInterval, () => this.timerEFired());
  }

  /** §17.1.2.2: timer F firing in "trying" or "proceeding" is a timeout: inform the TU, enter "terminated". */
  private timerFFired(): void {
    if (this.state !== "trying" && this.state !== "proceeding") return;
    this.user.onTimeout?.(this);
    this.terminate();
  }
}
