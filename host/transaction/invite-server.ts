/**
 * INVITE server transaction: RFC 3261 §17.2.1 (figure 7) as corrected by
 * RFC 6026 §7.1 (the "accepted" state and timer L; transport errors leave
 * the state unchanged, RFC 6026 §8.8).
 *
 *        created for an INVITE: 100 Trying after 200 ms (or at once)
 *                               |
 *    INVITE: resend last 1xx  Proceeding  1xx from TU: send
 *                         /               \
 *   300-699 from TU: send /                 \ 2xx from TU: send
 *      G (unreliable), H v                   v L
 *  INVITE: resend final Completed          Accepted   INVITE: absorbed
 *  G fires: resend final  |   \ H fires:      |       2xx from TU: send
 *                    ACK  |    \ onTimeout    |       ACK: to TU (onAck)
 *                         v     \             |
 *       ACK: absorbed Confirmed  \            | L fires
 *                         | I     v           v
 *                         +----> Terminated <-+
 */
import type { SipMessage } from "../sip/message.js";
import { buildResponse } from "../sip/serialize.js";
import { ownCopy } from "../sip/message.js";
import { ServerTransaction, type ServerTransactionOptions } from "./server.js";
import { SettledServer } from "./settled.js";
import { assertStatus, isRfc3261Branch, type SendFunction } from "./transaction.js";

export type InviteServerState = "proceeding" | "completed" | "confirmed" | "accepted" | "terminated";

/**
 * §17.2.1: the server transaction MUST generate a 100 (Trying) "if there's
 * a chance the TU won't generate a provisional response within 200 ms".
 */
export const TRYING_DELAY_MS = 200;

export interface InviteServerTransactionOptions extends ServerTransactionOptions {
  /**
   * When the automatic 100 Trying goes out: "after-200ms" (default, §17.2.1:
   * only if the TU has not responded by then) or "immediately" (what
   * Kamailio's tm does when it relays an INVITE statefully).
   */
  readonly trying100?: "after-200ms" | "immediately";
  /**
   * Builds the 100 Trying. Default: buildResponse(request, 100, "Trying"),
   * i.e. the request's Via fields as received. A proxy that stamps
   * received/rport (RFC 3581) passes a builder using its Via lines.
   */
  readonly buildTrying?: (request: SipMessage) => string;
}

export class InviteServerTransaction extends ServerTransaction {
  /** Most recent provisional response, resent on INVITE retransmissions in "proceeding" (§17.2.1). */
  private lastProvisional: string | undefined;
  /** Current timer G interval (§17.2.1). */
  private timerGInterval = 0;
  private readonly buildTrying: (request: SipMessage) => string;

  constructor(request: SipMessage, options: InviteServerTransactionOptions) {
    super(request, options, "proceeding");
    if (this.method !== "INVITE") throw new TypeError(`InviteServerTransaction needs an INVITE, got ${this.method}`);
    this.buildTrying = options.buildTrying ?? ((r) => buildResponse(r, 100, "Trying"));
    // §17.2.1: "proceeding" is entered on construction. The 100 Trying is
    // sent at once when configured, otherwise after 200 ms unless the TU
    // has passed a response by then.
    if (options.trying100 === "immediately") this.sendTrying();
    else this.startTimer("trying100", TRYING_DELAY_MS, () => this.sendTrying());
  }

  override get state(): InviteServerState {
    return super.state as InviteServerState;
  }

  receiveRequest(request: SipMessage): void {
    if (request.method === "INVITE") this.receiveRetransmission();
    else if (request.method === "ACK") this.receiveAck(request);
  }

  respond(status: number, data: string): boolean {
    assertStatus(status);
    switch (this.state) {
      case "proceeding":
        // The TU answered: no automatic 100 any more.
        this.stopTimer("trying100");
        if (status < 200) {
          // §17.2.1: in "proceeding" every provisional response from the TU
          // is passed to the transport; it is not retransmitted by the
          // transaction and does not change the state.
          this.lastProvisional = data;
          this.send(data);
        } else if (status < 300) {
          // RFC 6026 §7.1: a 2xx is sent once (its retransmissions are the
          // TU's business) and the machine enters "accepted" with timer L
          // = 64*T1 for any transport.
          this.recordFinal(status, data);
          this.lastProvisional = undefined;
          this.setState("accepted");
          this.startTimer("L", 64 * this.config.T1, () => this.terminate());
          this.send(data);
        } else {
          // §17.2.1: a 300-699 is sent, the machine enters "completed",
          // timer G = T1 starts for unreliable transports and timer H =
          // 64*T1 for any transport.
          this.recordFinal(status, data);
          this.lastProvisional = undefined;
          this.setState("completed");
          if (!this.reliable) {
            this.timerGInterval = this.config.T1;
            this.startTimer("G", this.timerGInterval, () => this.timerGFired());
          }
          this.startTimer("H", 64 * this.config.T1, () => this.timerHFired());
          this.send(data);
        }
        return true;
      case "accepted":
        // RFC 6026 §7.1: in "accepted" every 2xx from the TU (its own
        // retransmissions, or in a proxy 2xx from other branches) is passed
        // to the transport. Nothing else is.
        if (status >= 200 && status < 300) {
          this.send(data);
          return true;
        }
        return false;
      default:
        // "completed", "confirmed", "terminated": the final response has
        // been sent; further responses have no transition and are dropped.
        return false;
    }
  }

  /**
   * A retransmitted INVITE: §17.2.1 "proceeding" resends the most recent
   * provisional response, "completed" resends the final response; RFC 6026
   * §7.1 "accepted" absorbs it without sending (the TU retransmits the 2xx);
   * "confirmed" absorbs it too.
   */
  private receiveRetransmission(): void {
    if (this.state === "proceeding") {
      if (this.lastProvisional !== undefined) this.send(this.lastProvisional);
    } else if (this.state === "completed") {
      if (this.lastFinal !== undefined) this.send(this.lastFinal);
    }
  }

  /**
   * RFC 6026 §7.1: "accepted" never sends its 2xx again (the TU does), so
   * the text goes; an RFC 2543 transaction keeps it for the To tag its ACK
   * is matched by (§17.2.3).
   */
  protected override releaseOnSettle(): void {
    if (this.state === "accepted" && isRfc3261Branch(this.branch)) this.lastFinal = undefined;
  }

  /**
   * "accepted" until timer L (RFC 6026 §7.1) and "confirmed" until timer I
   * (§17.2.1) only absorb, and "accepted" sends the TU's further 2xx:
   * a record does that. "completed" still retransmits its final response
   * (timer G) until the ACK comes, so it stays a machine.
   * @internal
   */
  settledRecord(send: SendFunction = this.sendFunction): SettledServer | undefined {
    const state = this.state;
    if (state !== "accepted" && state !== "confirmed") return undefined;
    const due = this.timerDue(state === "accepted" ? "L" : "I");
    if (due === undefined) return undefined;
    const toTag = isRfc3261Branch(this.branch) ? undefined : this.finalResponseToTag();
    return new SettledServer("INVITE", this.finalStatus, state, due, undefined, toTag === undefined ? undefined : ownCopy(toTag), send);
  }

  private receiveAck(ack: SipMessage): void {
    switch (this.state) {
      case "completed":
        // §17.2.1: an ACK in "completed" (for the non-2xx final response)
        // moves to "confirmed", where timer I = T4 (unreliable) or zero
        // (reliable) absorbs further ACKs; G and H stop.
        this.stopTimer("G");
        this.stopTimer("H");
        this.setState("confirmed");
        if (this.reliable) this.terminate();
        else this.startTimer("I", this.config.T4, () => this.terminate());
        return;
      case "accepted":
        // RFC 6026 §7.1: an ACK matching in "accepted" is passed to the TU.
        this.user.onAck?.(ack, this);
        return;
      default:
        // "confirmed" absorbs ACK retransmissions (§17.2.1); in
        // "proceeding" an ACK has no transition (no final response yet).
        return;
    }
  }

  /** The automatic 100 Trying (§17.2.1), unless a provisional response already went out. */
  private sendTrying(): void {
    if (this.state !== "proceeding" || this.lastProvisional !== undefined) return;
    const trying = this.buildTrying(this.request);
    this.lastProvisional = trying;
    this.send(trying);
  }

  /**
   * §17.2.1: timer G resends the final response and doubles, capped at T2
   * (0.5, 1.5, 3.5, 7.5, 11.5 ... s with defaults), until an ACK arrives or
   * timer H fires.
   */
  private timerGFired(): void {
    if (this.state !== "completed" || this.lastFinal === undefined) return;
    this.timerGInterval = Math.min(2 * this.timerGInterval, this.config.T2);
    this.startTimer("G", this.timerGInterval, () => this.timerGFired());
    this.send(this.lastFinal);
  }

  /** §17.2.1: timer H firing in "completed" means the ACK never came: inform the TU, enter "terminated". */
  private timerHFired(): void {
    if (this.state !== "completed") return;
    this.user.onTimeout?.(this);
    this.terminate();
  }

  private send(data: string): void {
    if (!this.transmit(data)) this.onTransportFailure();
  }

  /**
   * RFC 6026 §8.8 (updating §17.2.4): after a transport failure the server
   * transaction informs the TU and MUST remain in its current state; its
   * timers end it as usual.
   */
  protected onTransportFailure(): void {
    this.user.onTransportError?.(this);
  }
}
