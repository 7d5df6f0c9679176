/**
 * Non-INVITE server transaction: RFC 3261 §17.2.2 (figure 8).
 *
 *          created for a request
 *                  |
 *   request: -   Trying
 *                /     \ 1xx from TU: send
 *               /       v
 *              /     Proceeding   request: resend last 1xx
 *  200-699 from TU:     |         1xx from TU: send
 *  send                 | 200-699 from TU: send
 *              \        v
 *               +--> Completed    request: resend final; other finals from TU dropped
 *                       | J fires (64*T1 unreliable, 0 reliable)
 *                       v
 *                   Terminated
 *
 * A transport error informs the TU and terminates (§17.2.4, figure 8).
 */
import type { SipMessage } from "../sip/message.js";
import { ownCopy } from "../sip/message.js";
import { ServerTransaction, type ServerTransactionOptions } from "./server.js";
import { SettledServer } from "./settled.js";
import { assertStatus, type SendFunction } from "./transaction.js";

export type NonInviteServerState = "trying" | "proceeding" | "completed" | "terminated";

export class NonInviteServerTransaction extends ServerTransaction {
  /** Most recently sent provisional response (§17.2.2), dropped once a final one is sent. */
  private lastProvisional: string | undefined;

  constructor(request: SipMessage, options: ServerTransactionOptions) {
    super(request, options, "trying");
    if (this.method === "INVITE" || this.method === "ACK") {
      throw new TypeError(`NonInviteServerTransaction cannot carry ${this.method}`);
    }
  }

  override get state(): NonInviteServerState {
    return super.state as NonInviteServerState;
  }

  /**
   * A retransmission of the request (§17.2.2): discarded in "trying",
   * answered with the last provisional response in "proceeding" and with
   * the final response in "completed".
   */
  receiveRequest(request: SipMessage): void {
    if (request.method !== this.method) return;
    if (this.state === "proceeding" && this.lastProvisional !== undefined) this.send(this.lastProvisional);
    else if (this.state === "completed" && this.lastFinal !== undefined) this.send(this.lastFinal);
  }

  respond(status: number, data: string): boolean {
    assertStatus(status);
    const state = this.state;
    if (state !== "trying" && state !== "proceeding") {
      // §17.2.2: "Any other final responses passed by the TU to the server
      // transaction MUST be discarded while in the 'Completed' state."
      return false;
    }
    if (status < 200) {
      // §17.2.2: a provisional response from the TU moves "trying" to
      // "proceeding" and is passed to the transport, as are further ones.
      this.lastProvisional = data;
      this.setState("proceeding");
      this.send(data);
      return true;
    }
    // §17.2.2: a final response enters "completed" and is passed to the
    // transport; timer J = 64*T1 for unreliable transports, zero (terminate
    // at once) for reliable ones.
    this.recordFinal(status, data);
    this.lastProvisional = undefined;
    this.setState("completed");
    if (!this.reliable) this.startTimer("J", 64 * this.config.T1, () => this.terminate());
    this.send(data);
    if (this.reliable) this.terminate();
    return true;
  }

  /**
   * "completed" until timer J (§17.2.2) answers each retransmission with
   * the final response: a record with that response does the same. Its
   * text is copied flat, so that it pins no received message.
   * @internal
   */
  settledRecord(send: SendFunction = this.sendFunction): SettledServer | undefined {
    const due = this.state === "completed" ? this.timerDue("J") : undefined;
    if (due === undefined || this.lastFinal === undefined) return undefined;
    return new SettledServer(this.method, this.finalStatus, "completed", due, ownCopy(this.lastFinal), undefined, send);
  }

  private send(data: string): void {
    if (!this.transmit(data)) this.onTransportFailure();
  }

  /** §17.2.4 and figure 8: inform the TU, then "terminated". */
  protected onTransportFailure(): void {
    this.user.onTransportError?.(this);
    this.terminate();
  }
}
