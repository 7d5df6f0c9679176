/**
 * The client side (RFC 3261 §17.1): the part shared by the INVITE and
 * non-INVITE client transactions.
 */
import type { SipMessage } from "../sip/message.js";
import { Transaction, type PreparedRequest, type SendFunction, type TransactionOptions, type TransactionState } from "./transaction.js";
import type { SettledClient } from "./settled.js";

/** How a client transaction reports to its owner, the transaction user (TU). */
export interface ClientTransactionUser {
  /**
   * A response the state machine passes up: provisional and final responses
   * in "calling"/"trying"/"proceeding" (§17.1.1.2, §17.1.2.2), and every 2xx
   * in the INVITE client's "accepted" state (RFC 6026 §7.2: retransmissions
   * and 2xx from other forks, which a proxy must forward). Retransmitted
   * non-2xx final responses are absorbed and never reach the TU.
   */
  onResponse(response: SipMessage, tx: ClientTransaction): void;
  /** Timer B (INVITE, §17.1.1.2) or timer F (non-INVITE, §17.1.2.2) fired: no final response. */
  onTimeout?(tx: ClientTransaction): void;
  /** The transport failed to send the request, a retransmission or the ACK (§17.1.4). */
  onTransportError?(tx: ClientTransaction): void;
  /** The transaction entered "terminated" and left its table. Called once. */
  onTerminated?(tx: ClientTransaction): void;
}

export interface ClientTransactionOptions extends TransactionOptions {
  readonly user: ClientTransactionUser;
}

/**
 * A client transaction. Construct it with the request as it goes on the
 * wire, register it in the table, then call {@link start} to send it.
 */
export abstract class ClientTransaction extends Transaction {
  protected readonly user: ClientTransactionUser;
  private requestDataValue: string;
  private started = false;

  protected constructor(prepared: PreparedRequest, options: ClientTransactionOptions, initial: TransactionState) {
    super(prepared, options, initial);
    this.requestDataValue = prepared.data;
    this.user = options.user;
  }

  /**
   * The request as passed to the transport (retransmissions resend exactly
   * these bytes); "" once a final response has settled the transaction,
   * which then never sends the request again.
   */
  get requestData(): string {
    return this.requestDataValue;
  }

  /** A settled client transaction keeps neither its request's text nor its parsed form: its timers (D, K, M) only absorb. */
  protected override releaseOnSettle(): void {
    this.requestDataValue = "";
    this.releaseRequest();
  }

  /** @internal See Transaction.settledRecord. */
  abstract override settledRecord(send?: SendFunction): SettledClient | undefined;

  /** Send the request and start the machine's timers. Once only. */
  start(): void {
    if (this.started) throw new Error("client transaction already started");
    this.started = true;
    this.begin();
  }

  /** A response matched to this transaction by the table (§17.1.3). */
  abstract receiveResponse(response: SipMessage): void;

  protected abstract begin(): void;

  /**
   * §17.1.4: on a transport failure the client transaction informs the TU
   * and moves directly to "terminated" (figures 5 and 6).
   */
  protected onTransportFailure(): void {
    this.user.onTransportError?.(this);
    this.terminate();
  }

  protected notifyTerminated(): void {
    this.user.onTerminated?.(this);
  }
}
