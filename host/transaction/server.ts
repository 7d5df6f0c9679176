/**
 * The server side (RFC 3261 §17.2): the part shared by the INVITE and
 * non-INVITE server transactions.
 */
import type { SipMessage } from "../sip/message.js";
import { parseMessage, toHeader } from "../sip/parser.js";
import { headerParam } from "../sip/nameaddr.js";
import { Transaction, type SendFunction, type TransactionOptions, type TransactionState } from "./transaction.js";
import type { SettledServer } from "./settled.js";

/** How a server transaction reports to its owner, the transaction user (TU). */
export interface ServerTransactionUser {
  /**
   * An ACK matched an INVITE server transaction in the "accepted" state
   * (RFC 6026 §7.1: passed to the TU, which treats it as the ACK for its
   * 2xx). An ACK for a non-2xx final response is absorbed hop by hop
   * (§17.2.1) and never reported.
   */
  onAck?(ack: SipMessage, tx: ServerTransaction): void;
  /** Timer H fired: no ACK for a non-2xx final response of an INVITE (§17.2.1). */
  onTimeout?(tx: ServerTransaction): void;
  /** The transport could not send a response (§17.2.4, RFC 6026 §8.8). */
  onTransportError?(tx: ServerTransaction): void;
  /** The transaction entered "terminated" and left its table. Called once. */
  onTerminated?(tx: ServerTransaction): void;
}

export interface ServerTransactionOptions extends TransactionOptions {
  readonly user: ServerTransactionUser;
}

/**
 * A server transaction. It is created for a request that matched no
 * existing transaction (the table says so), starts working at
 * construction, absorbs retransmissions of that request itself and sends
 * what the TU passes to {@link respond}.
 */
export abstract class ServerTransaction extends Transaction {
  protected readonly user: ServerTransactionUser;
  /** Last final response passed to the transport (retransmitted on request retransmissions). */
  protected lastFinal: string | undefined;
  private finalStatusValue = 0;
  private toTagCache: string | null | undefined;

  protected constructor(request: SipMessage, options: ServerTransactionOptions, initial: TransactionState) {
    if (request.kind !== "request") throw new TypeError("a server transaction needs a request");
    super(request, options, initial);
    this.user = options.user;
  }

  /** Status of the final response sent, 0 while none has been. */
  get finalStatus(): number {
    return this.finalStatusValue;
  }

  /**
   * A request matched to this transaction by the table (§17.2.3): a
   * retransmission of the request, or for INVITE an ACK. Handled inside the
   * machine; the TU only hears of an ACK in "accepted".
   */
  abstract receiveRequest(request: SipMessage): void;

  /**
   * The TU passes a response (its wire text and status code). Returns
   * false when the machine discards it in its current state (e.g. a second
   * final response), true when it was passed to the transport.
   */
  abstract respond(status: number, data: string): boolean;

  /** @internal See Transaction.settledRecord. */
  abstract override settledRecord(send?: SendFunction): SettledServer | undefined;

  /**
   * The To tag of the final response sent, used to match an ACK whose
   * branch lacks the RFC 3261 magic cookie (§17.2.3). Parsed on first use
   * only: RFC 2543 peers are rare.
   */
  finalResponseToTag(): string | undefined {
    if (this.toTagCache === undefined && this.lastFinal !== undefined) {
      const parsed = parseMessage(this.lastFinal);
      this.toTagCache = parsed.ok ? (headerParam(toHeader(parsed.message), "tag") ?? null) : null;
    }
    return this.toTagCache ?? undefined;
  }

  protected recordFinal(status: number, data: string): void {
    this.lastFinal = data;
    this.finalStatusValue = status;
    this.toTagCache = undefined;
  }

  protected notifyTerminated(): void {
    this.user.onTerminated?.(this);
  }
}
