/**
 * What the four RFC 3261 §17 state machines share: states, options, the
 * send/transport-error plumbing, named timers and termination.
 */
import type { SipMessage } from "../sip/message.js";
import { parseMessage, topVia } from "../sip/parser.js";
import { serializeMessage } from "../sip/serialize.js";
import { DEFAULT_TIMER_CONFIG, type TimerConfig, type TimerHandle, type TimerService } from "./timers.js";

/**
 * States of the machines: "calling" (INVITE client), "trying" (non-INVITE
 * client and server), "proceeding", "completed", "confirmed" (INVITE
 * server), "accepted" (both INVITE machines, RFC 6026 §7), "terminated".
 */
export type TransactionState = "calling" | "trying" | "proceeding" | "completed" | "confirmed" | "accepted" | "terminated";

/**
 * Hands one message (a binary/latin1 string) to the transport for the
 * transaction's fixed destination. Returning `false` (or throwing) means the
 * transport could not send it: a transport error (§17.1.4, §17.2.4). Errors
 * noticed later (a TCP connect failing) are reported through
 * {@link Transaction.transportError}.
 */
export type SendFunction = (data: string) => boolean | void;

export interface TransactionOptions {
  readonly timers: TimerService;
  readonly send: SendFunction;
  /**
   * The transport is reliable (TCP, TLS, SCTP, WS): no retransmission
   * timers (A, E, G) and zero wait timers (D, I, J, K), per the timer table
   * of RFC 3261 Appendix A.
   */
  readonly reliable: boolean;
  /** Base timers; {@link DEFAULT_TIMER_CONFIG} when omitted. Build one with resolveTimerConfig. */
  readonly config?: TimerConfig;
}

/** Timer names used by the machines; "trying100" is the 200 ms provisional-response timer of §17.2.1. */
export type TimerName = "A" | "B" | "D" | "E" | "F" | "G" | "H" | "I" | "J" | "K" | "L" | "M" | "trying100";

interface RunningTimer {
  readonly name: TimerName;
  readonly handle: TimerHandle;
}

/**
 * Common base. A transaction is destroyed (all timers cleared, table entry
 * removed) the instant it enters "terminated" (§17.1.1.2, §17.2.1).
 */
export abstract class Transaction {
  /** Method of the request that created the transaction. */
  readonly method: string;
  /** Branch of the top Via of that request ("" when it has none). */
  readonly branch: string;
  readonly reliable: boolean;
  protected readonly timers: TimerService;
  protected readonly config: TimerConfig;
  private readonly sendFn: SendFunction;
  private stateValue: TransactionState;
  /** Running timers. At most three at a time, so a plain array beats a Map in memory. */
  private running: RunningTimer[] = [];
  /**
   * Set by the {@link TransactionTable} that holds the transaction, to drop
   * its entries on termination.
   * @internal
   */
  detach: (() => void) | undefined;

  protected constructor(
    readonly request: SipMessage,
    options: TransactionOptions,
    initial: TransactionState,
  ) {
    this.method = request.method;
    this.branch = topVia(request)?.branch ?? "";
    this.reliable = options.reliable;
    this.timers = options.timers;
    this.config = options.config ?? DEFAULT_TIMER_CONFIG;
    this.sendFn = options.send;
    this.stateValue = initial;
  }

  get state(): TransactionState {
    return this.stateValue;
  }

  get terminated(): boolean {
    return this.stateValue === "terminated";
  }

  /** Names of the timers currently running (for diagnostics and tests). */
  get runningTimers(): TimerName[] {
    return this.running.map((t) => t.name);
  }

  /**
   * The transport reported a failure after the fact (e.g. a TCP connection
   * could not be set up). Handled like a failed send (§17.1.4, §17.2.4).
   */
  transportError(): void {
    if (this.stateValue !== "terminated") this.onTransportFailure();
  }

  /** What a transport error does in this machine. */
  protected abstract onTransportFailure(): void;

  /** The TU's termination hook. */
  protected abstract notifyTerminated(): void;

  protected setState(next: TransactionState): void {
    this.stateValue = next;
  }

  /** Pass a message to the transport; false on a transport error (the caller decides what follows). */
  protected transmit(data: string): boolean {
    try {
      return this.sendFn(data) !== false;
    } catch {
      return false;
    }
  }

  /** Start (or restart) a named timer. */
  protected startTimer(name: TimerName, ms: number, fire: () => void): void {
    this.stopTimer(name);
    const handle = this.timers.setTimer(ms, () => {
      const i = this.running.indexOf(entry);
      if (i === -1) return; // cleared meanwhile
      this.running.splice(i, 1);
      fire();
    });
    const entry: RunningTimer = { name, handle };
    this.running.push(entry);
  }

  protected stopTimer(name: TimerName): void {
    const i = this.running.findIndex((t) => t.name === name);
    if (i === -1) return;
    this.timers.clearTimer(this.running[i]!.handle);
    this.running.splice(i, 1);
  }

  protected isRunning(name: TimerName): boolean {
    return this.running.some((t) => t.name === name);
  }

  /**
   * Enter "terminated": clear every timer, leave the table, tell the TU.
   * Idempotent.
   */
  protected terminate(): void {
    if (this.stateValue === "terminated") return;
    this.stateValue = "terminated";
    for (const t of this.running) this.timers.clearTimer(t.handle);
    this.running = [];
    const detach = this.detach;
    this.detach = undefined;
    detach?.();
    this.notifyTerminated();
  }
}

/** The request of a client transaction as given: wire text (parsed here) or an already parsed message. */
export type OutgoingRequest = string | SipMessage;

/** Parse an outgoing request given as text; a request we built ourselves must parse. */
export function outgoingRequest(request: OutgoingRequest): { message: SipMessage; data: string } {
  if (typeof request !== "string") return { message: request, data: serializeMessage(request) };
  const parsed = parseMessage(request);
  if (!parsed.ok) throw new TypeError(`client transaction request does not parse: ${parsed.error}`);
  if (parsed.message.kind !== "request") throw new TypeError("client transaction needs a request, got a response");
  return { message: parsed.message, data: request };
}

/** Whether a status code is a valid SIP status (§7.2, §21: 100-699). */
export function assertStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new RangeError(`invalid SIP status code ${status}`);
}
