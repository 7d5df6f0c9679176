/**
 * What a settled transaction leaves in its table once its owner (the TU)
 * no longer needs it: a compact record that matches and absorbs
 * retransmissions for the rest of the wait timer (RFC 3261 §17: J, I, D, K;
 * RFC 6026 §7: L) and nothing more. A transaction in "completed" or
 * "accepted" is otherwise a state machine with its request, its callbacks
 * into the TU (which keep the TU's whole per-request state alive), a timer
 * object and closures; at hundreds of calls per second these 32 s of
 * settled transactions were most of the heap. The record keeps the method,
 * the final status, the deadline, the one message it may still send and
 * the function that sends it. Its table keys are the ones the transaction
 * had (strings the table owns). It has no TU: nothing it absorbs is
 * reported, and a failed send is not reported either (a non-INVITE server
 * transaction would terminate on it, §17.2.4; the record keeps absorbing
 * until its deadline, which only means a few more absorbed
 * retransmissions).
 *
 * Made by TransactionTable.compact(); see there.
 */
import type { SipMessage } from "../sip/message.js";
import type { SendFunction } from "./transaction.js";

/** The server side of a compacted transaction. */
export class SettledServer {
  /** The deadline passed (or the table made room): the record left the table. */
  ended = false;
  /** @internal The table keys it is stored under. */
  key = "";
  /** @internal Second key of an RFC 2543 INVITE (its ACK, §17.2.3). */
  ackKey: string | undefined;
  /** @internal Called once when the record leaves the table. */
  onEnd: (() => void) | undefined;

  constructor(
    /** Method of the request that created the transaction. */
    readonly method: string,
    /** Status of the final response sent. */
    readonly finalStatus: number,
    /**
     * "accepted" (INVITE, 2xx sent: RFC 6026 §7.1, until timer L): INVITE
     * retransmissions are absorbed, every further 2xx from the TU is sent;
     * "confirmed" (INVITE, ACK received for a non-2xx: §17.2.1, until timer
     * I) absorbs INVITE and ACK; "completed" (non-INVITE: §17.2.2, until
     * timer J) answers each retransmission with the final response.
     */
    readonly state: "accepted" | "confirmed" | "completed",
    /** When the wait timer ends it (timer-service time). */
    readonly due: number,
    /** Resent for each retransmission of the request ("completed" only). */
    private readonly response: string | undefined,
    /** To tag of the final response, for an RFC 2543 ACK (§17.2.3); undefined with a magic-cookie branch. */
    private readonly toTag: string | undefined,
    private readonly send: SendFunction | undefined,
  ) {}

  get terminated(): boolean {
    return this.ended;
  }

  get settled(): boolean {
    return !this.ended;
  }

  /** A request the table matched to it: a retransmission (answered in "completed", else absorbed) or an ACK (absorbed). */
  receiveRequest(request: SipMessage): void {
    if (this.ended || this.response === undefined || request.method !== this.method) return;
    this.transmit(this.response);
  }

  /** RFC 6026 §7.1: in "accepted" every 2xx from the TU is sent; nothing else is, in any state. */
  respond(status: number, data: string): boolean {
    if (this.ended || this.state !== "accepted" || status < 200 || status > 299) return false;
    this.transmit(data);
    return true;
  }

  finalResponseToTag(): string | undefined {
    return this.toTag;
  }

  private transmit(data: string): void {
    try {
      this.send?.(data);
    } catch {
      // no TU to report to: see the module comment
    }
  }
}

/** The client side of a compacted transaction ("completed": INVITE until timer D, non-INVITE until timer K). */
export class SettledClient {
  ended = false;
  /** @internal */
  key = "";
  /** @internal */
  onEnd: (() => void) | undefined;

  constructor(
    readonly method: string,
    readonly due: number,
    /** INVITE: the ACK of the non-2xx final response, resent for each retransmission of it (§17.1.1.2). */
    private readonly ack: string | undefined,
    private readonly send: SendFunction | undefined,
  ) {}

  get terminated(): boolean {
    return this.ended;
  }

  get settled(): boolean {
    return !this.ended;
  }

  get state(): "completed" | "terminated" {
    return this.ended ? "terminated" : "completed";
  }

  /** A response the table matched to it: a retransmitted final response, absorbed (INVITE 300-699: the ACK is resent). */
  receiveResponse(response: SipMessage): void {
    if (this.ended || this.ack === undefined || response.kind !== "response" || response.status < 300) return;
    try {
      this.send?.(this.ack);
    } catch {
      // no TU to report to
    }
  }
}

export type SettledRecord = SettledServer | SettledClient;
