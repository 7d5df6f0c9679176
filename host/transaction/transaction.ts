/**
 * What the four RFC 3261 §17 state machines share: states, options, the
 * send/transport-error plumbing, named timers and termination.
 */
import { ownCopy, type SipMessage } from "../sip/message.js";
import { parseMessage, topVia } from "../sip/parser.js";
import { serializeMessage } from "../sip/serialize.js";
import { canonicalHeaderKey } from "../sip/headers.js";
import { parseVia } from "../sip/via.js";
import { DEFAULT_TIMER_CONFIG, type TimerConfig, type TimerHandle, type TimerService } from "./timers.js";
import type { SettledRecord } from "./settled.js";

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
  /** When it fires (timer-service time): a compacted transaction's deadline (see settledRecord). */
  readonly due: number;
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
   * its entries on termination, or to put a compact record in their place
   * (TransactionTable.compact).
   * @internal
   */
  detach: ((replacement?: SettledRecord) => void) | undefined;
  /**
   * Set by the {@link TransactionTable}: called once when the machine has
   * handed its final response on and only waits out its timers.
   * @internal
   */
  onSettled: (() => void) | undefined;

  /** The request, parsed; undefined until first asked for when it came as wire text (see PreparedRequest). */
  private requestValue: SipMessage | undefined;
  /** Wire text of a request not parsed yet. */
  private requestText: string | undefined;

  protected constructor(
    request: SipMessage | PreparedRequest,
    options: TransactionOptions,
    initial: TransactionState,
  ) {
    if (isPrepared(request)) {
      this.method = request.method;
      this.branch = ownCopy(request.branch);
      this.requestValue = request.message;
      this.requestText = request.message === undefined ? request.data : undefined;
    } else {
      this.method = request.method;
      // Kept for the whole life of the transaction, the request's only until it is released.
      this.branch = ownCopy(topVia(request)?.branch ?? "");
      this.requestValue = request;
    }
    this.reliable = options.reliable;
    this.timers = options.timers;
    this.config = options.config ?? DEFAULT_TIMER_CONFIG;
    this.sendFn = options.send;
    this.stateValue = initial;
  }

  /**
   * The request that created the transaction. A client transaction's own
   * request is parsed only when something needs more than its method and
   * branch (the ACK of a non-2xx response, a CANCEL): most never do.
   */
  get request(): SipMessage {
    if (this.requestValue === undefined) {
      if (this.requestText === undefined) throw new Error(`${this.method} transaction ${this.branch}: its request was released`);
      const parsed = parseMessage(this.requestText);
      if (!parsed.ok || parsed.message.kind !== "request") throw new TypeError(`transaction request does not parse: ${parsed.ok ? "a response" : parsed.error}`);
      this.requestValue = parsed.message;
      this.requestText = undefined;
    }
    return this.requestValue;
  }

  /**
   * Drop the request once its owner no longer needs it (a proxy
   * transaction past its wait time): the table matches by keys computed
   * when the transaction was added, and what is still sent is kept as text.
   */
  releaseRequest(): void {
    this.requestValue = undefined;
    this.requestText = undefined;
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
    const wasSettled = isSettledState(this.stateValue);
    this.stateValue = next;
    if (!wasSettled && isSettledState(next)) {
      this.releaseOnSettle();
      const settled = this.onSettled;
      this.onSettled = undefined;
      settled?.();
    }
  }

  /** What the machine no longer needs once its final response is through; it lives on for its timers. */
  protected releaseOnSettle(): void {}

  /** Whether the final response has been handed on: the machine only waits out its timers (see isSettledState). */
  get settled(): boolean {
    return isSettledState(this.stateValue);
  }

  /**
   * End a settled transaction before its timers do (the table makes room
   * under load): it stops absorbing retransmissions, nothing else changes
   * for either side. Refused for a transaction still waiting for its final
   * response.
   */
  expire(): void {
    if (!this.settled) throw new Error(`cannot expire a ${this.stateValue} transaction`);
    this.terminate();
  }

  /**
   * The compact record that can stand in for this settled transaction in
   * its table (see settled.ts), sending through `send` (default: the
   * transaction's own send function); undefined in a state that still has
   * work of its own (an INVITE server retransmitting a non-2xx final until
   * its ACK, §17.2.1) or holds the TU's interest (an INVITE client in
   * "accepted" passes every 2xx up, RFC 6026 §7.2).
   * @internal
   */
  abstract settledRecord(send?: SendFunction): SettledRecord | undefined;

  /** The function messages are sent through. */
  protected get sendFunction(): SendFunction {
    return this.sendFn;
  }

  /** Due time of a running timer, undefined when it is not running. */
  protected timerDue(name: TimerName): number | undefined {
    return this.running.find((t) => t.name === name)?.due;
  }

  /**
   * Stop as a state machine without telling anyone: timers cleared, state
   * "terminated", out of the table's reach. Only for the table, which has
   * just put the transaction's compact record in its place.
   * @internal
   */
  retire(): void {
    this.stateValue = "terminated";
    for (const t of this.running) this.timers.clearTimer(t.handle);
    this.running = [];
    this.detach = undefined;
    this.onSettled = undefined;
    this.requestValue = undefined;
    this.requestText = undefined;
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
    const entry: RunningTimer = { name, handle, due: this.timers.now() + Math.max(0, ms) };
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

/** The RFC 3261 branch prefix (§8.1.1.7); branches without it come from RFC 2543 elements. */
export const MAGIC_COOKIE = "z9hG4bK";

/** Whether a branch carries the RFC 3261 magic cookie (§17.2.3). */
export function isRfc3261Branch(branch: string | undefined): branch is string {
  return branch !== undefined && branch.startsWith(MAGIC_COOKIE);
}

/**
 * States in which the final response has been passed on and the machine
 * only absorbs retransmissions (and, for an INVITE, the ACK or further 2xx)
 * until a timer ends it: completed, confirmed, accepted (RFC 3261 §17,
 * RFC 6026 §7).
 */
export function isSettledState(state: TransactionState): boolean {
  return state === "completed" || state === "confirmed" || state === "accepted";
}

/** The request of a client transaction as given: wire text or an already parsed message. */
export type OutgoingRequest = string | SipMessage;

/** A request as a client transaction keeps it: the wire text, what matching needs, and the parsed form if there is one. */
export interface PreparedRequest {
  readonly data: string;
  readonly method: string;
  /** Branch of the top Via (§17.1.3 matching key with the method). */
  readonly branch: string;
  readonly message: SipMessage | undefined;
}

function isPrepared(request: SipMessage | PreparedRequest): request is PreparedRequest {
  return (request as Partial<PreparedRequest>).data !== undefined && (request as Partial<SipMessage>).kind === undefined;
}

/** RFC 3261 §7.1 Request-Line: Method SP Request-URI SP SIP-Version. */
const REQUEST_LINE = /^([!%'*+\-.0-9A-Z_`a-z~]+) \S+ SIP\/2\.0$/;

/**
 * An outgoing request given as text, prepared without a full parse: the
 * method from the request line and the branch from the top Via, which is
 * all that sending and response matching (§17.1.3) need. The rest is
 * parsed on demand (see Transaction.request). A request without a
 * Request-Line or a Via is refused here, as a full parse would refuse it.
 */
export function outgoingRequest(request: OutgoingRequest): PreparedRequest {
  if (typeof request !== "string") {
    return { data: serializeMessage(request), method: request.method, branch: topVia(request)?.branch ?? "", message: request };
  }
  const lineEnd = request.indexOf("\r\n");
  const requestLine = REQUEST_LINE.exec(lineEnd < 0 ? request : request.slice(0, lineEnd));
  if (requestLine === null) throw new TypeError("client transaction needs a request: no SIP/2.0 Request-Line");
  const via = topViaValue(request, lineEnd + 2);
  const top = via === undefined ? undefined : parseVia(via)[0];
  if (top === undefined) throw new TypeError("client transaction request has no usable Via");
  return { data: request, method: requestLine[1]!, branch: top.branch ?? "", message: undefined };
}

/** The value of the first Via (or compact v) header field of a request's header section, folded lines joined. */
function topViaValue(text: string, from: number): string | undefined {
  let at = from;
  while (at < text.length) {
    const end = text.indexOf("\r\n", at);
    const line = end < 0 ? text.slice(at) : text.slice(at, end);
    if (line === "") return undefined; // end of the header section
    const colon = line.indexOf(":");
    if (colon > 0 && canonicalHeaderKey(line.slice(0, colon).trim()) === "via") {
      let value = line.slice(colon + 1);
      let next = end < 0 ? text.length : end + 2;
      // RFC 3261 §7.3.1: a line starting with whitespace continues the field.
      while (next < text.length && (text[next] === " " || text[next] === "\t")) {
        const e = text.indexOf("\r\n", next);
        value += " " + (e < 0 ? text.slice(next) : text.slice(next, e)).trim();
        next = e < 0 ? text.length : e + 2;
      }
      return value.trim();
    }
    if (end < 0) return undefined;
    at = end + 2;
  }
  return undefined;
}

/** Whether a status code is a valid SIP status (§7.2, §21: 100-699). */
export function assertStatus(status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new RangeError(`invalid SIP status code ${status}`);
}
