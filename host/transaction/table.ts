/**
 * Finding the transaction a message belongs to: requests to server
 * transactions (RFC 3261 §17.2.3, CANCEL per §9.2), responses to client
 * transactions (§17.1.3).
 *
 * Memory: one Map entry per transaction (two for an RFC 2543 INVITE server
 * transaction, whose ACK is matched by a second key), keyed by a computed
 * string: ~60-120 bytes for an RFC 3261 key, a few hundred for an RFC 2543
 * one. The transaction itself holds the parsed request (about 2-3 times its
 * wire size), the last provisional and the last final response texts and at
 * most three timer handles: roughly 3-8 KB for a typical 1 KB INVITE. The
 * table is bounded by `maxTransactions` transactions still waiting for
 * their final response; a full table refuses new transactions (the caller
 * answers 503 or drops) instead of growing. Settled transactions (final
 * response passed on, waiting out timers D, I, J, K, L, M: up to 32 s over
 * UDP) do not count: at 1 000 calls/s they alone are ~100 000. They are
 * bounded separately by `maxSettled`; past it the oldest settled one is
 * ended early, which only means that a very late retransmission of its
 * request or response is no longer absorbed here.
 * Entries leave the table the instant their transaction terminates.
 *
 * Compaction: once the TU no longer needs a settled transaction (the proxy,
 * after its wait time), {@link TransactionTable.compact} puts a small
 * record in its place (settled.ts: the method, final status, deadline, the
 * one message it may resend and how to send it: 0.7 KB on average with
 * what only it holds, measured in a relay at 600 calls/s) that absorbs retransmissions exactly as the machine would until the
 * deadline of its wait timer. The records of a table share one timer (a
 * deadline heap) instead of one each.
 */
import { ownCopy, type SipMessage } from "../sip/message.js";
import { fromHeader, toHeader, topVia } from "../sip/parser.js";
import { headerParam } from "../sip/nameaddr.js";
import type { Via } from "../sip/via.js";
import type { ClientTransaction } from "./client.js";
import { InviteServerTransaction } from "./invite-server.js";
import { SettledClient, SettledServer, type SettledRecord } from "./settled.js";
import { DeadlineQueue, type TimerService } from "./timers.js";
import { isRfc3261Branch, Transaction, type SendFunction } from "./transaction.js";

export { MAGIC_COOKIE, isRfc3261Branch } from "./transaction.js";
import type { ServerTransaction } from "./server.js";


export const DEFAULT_MAX_TRANSACTIONS = 65_536;

/** Settled transactions kept per unsettled one allowed, by default. */
const DEFAULT_SETTLED_FACTOR = 8;

export interface TransactionTableOptions {
  /** Upper bound on transactions waiting for their final response, client and server together. Default 65 536. */
  readonly maxTransactions?: number;
  /** Upper bound on settled transactions kept for retransmissions. Default 8 × maxTransactions. */
  readonly maxSettled?: number;
  /** The clock of compacted transactions' deadlines; without it {@link TransactionTable.compact} compacts nothing. */
  readonly timers?: TimerService;
}

/** What the table matches a request to: a server transaction, or the record a compacted one left. */
export type ServerEntry = ServerTransaction | SettledServer;
/** What the table matches a response to: a client transaction, or the record a compacted one left. */
export type ClientEntry = ClientTransaction | SettledClient;

export interface CompactOptions {
  /** What the record sends through (default: the transaction's own send function, which may keep its TU alive). */
  readonly send?: SendFunction;
  /** Called once when the record leaves the table (deadline, or ended early to respect maxSettled). */
  readonly onEnd?: () => void;
}

/** Field separator of computed keys: never part of an (unfolded) header value or a Request-URI. */
const SEP = "\n";


/**
 * Whether a Via transport is reliable in the sense of §17 (no
 * retransmissions, zero wait timers): everything but UDP. Unknown
 * transports count as unreliable, which only costs retransmissions.
 */
export function isReliableTransport(transport: string): boolean {
  switch (transport.toUpperCase()) {
    case "TCP":
    case "TLS":
    case "SCTP":
    case "TLS-SCTP":
    case "WS":
    case "WSS":
      return true;
    default:
      return false;
  }
}

/** sent-by (§18.2.2 / §17.2.3): host compared case-insensitively, port as written. */
function sentByKey(via: Via): string {
  return via.host.toLowerCase() + ":" + (via.port === undefined ? "" : String(via.port));
}

/**
 * A whole top Via for the RFC 2543 rules, which compare the field: equal
 * sent-protocol, sent-by and parameter set (§20.42), so parameters are
 * sorted by lowercased name.
 */
function viaFieldKey(via: Via): string {
  const params = via.params.map((p) => p.name.toLowerCase() + (p.value === undefined ? "" : "=" + p.value)).sort();
  return via.protocol.toUpperCase() + "/" + via.transport + " " + sentByKey(via) + ";" + params.join(";");
}

function tagOf(kind: "from" | "to", msg: SipMessage): string {
  return headerParam(kind === "from" ? fromHeader(msg) : toHeader(msg), "tag") ?? "";
}

/**
 * §17.2.3 with a magic-cookie branch: the branch, the top Via sent-by and
 * the method, where an ACK counts as the INVITE it acknowledges.
 */
function rfc3261ServerKey(branch: string, via: Via, method: string): string {
  return branch + SEP + sentByKey(via) + SEP + method;
}

/**
 * §17.2.3 for a branch without the cookie (RFC 2543): Request-URI, To tag,
 * From tag, Call-ID, CSeq (number and method) and top Via of the request
 * that created the transaction. CANCEL matching (§9.2) uses the same
 * fields with the method INVITE.
 */
function rfc2543ServerKey(request: SipMessage, via: Via, method: string): string {
  return (
    request.requestUri + SEP + tagOf("to", request) + SEP + tagOf("from", request) + SEP +
    request.callId + SEP + request.cseq.seq + SEP + method + SEP + viaFieldKey(via)
  );
}

/**
 * §17.2.3, RFC 2543 ACK: Request-URI, From tag, Call-ID, CSeq number and
 * top Via of the INVITE; the To tag is checked against the response sent.
 */
function rfc2543AckKey(request: SipMessage, via: Via): string {
  return (
    request.requestUri + SEP + tagOf("from", request) + SEP + request.callId + SEP +
    request.cseq.seq + SEP + viaFieldKey(via)
  );
}

function safeTopVia(msg: SipMessage): Via | undefined {
  try {
    return topVia(msg);
  } catch {
    return undefined; // a hand-built message without valid From/To: matches nothing
  }
}

export class TransactionTable {
  readonly maxTransactions: number;
  readonly maxSettled: number;
  private readonly servers = new Map<string, ServerEntry>();
  /** Second key of RFC 2543 INVITE server transactions, for their ACK. */
  private readonly rfc2543Acks = new Map<string, InviteServerTransaction | SettledServer>();
  private readonly clients = new Map<string, ClientEntry>();
  /** Settled transactions and records in the table, oldest first (a Set keeps insertion order). */
  private readonly settledInTable = new Set<ServerTransaction | ClientTransaction | SettledRecord>();
  /** Deadlines of the compacted transactions' records. */
  private readonly deadlines: DeadlineQueue<SettledRecord> | undefined;
  /** Records of compacted transactions in the table. */
  private records = 0;
  /** Settled transactions ended early to stay within maxSettled. */
  expiredEarly = 0;

  constructor(options: TransactionTableOptions = {}) {
    const max = options.maxTransactions ?? DEFAULT_MAX_TRANSACTIONS;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxTransactions must be a positive integer, got ${max}`);
    this.maxTransactions = max;
    const maxSettled = options.maxSettled ?? DEFAULT_SETTLED_FACTOR * max;
    if (!Number.isInteger(maxSettled) || maxSettled < 1) throw new RangeError(`maxSettled must be a positive integer, got ${maxSettled}`);
    this.maxSettled = maxSettled;
    this.deadlines = options.timers === undefined ? undefined : new DeadlineQueue(options.timers, (record) => this.endRecord(record));
  }

  /** Server transactions added since the table was made (metrics: Kamailio's tm stats "created"). */
  serversAdded = 0;
  /** Client transactions (branches) added since the table was made. */
  clientsAdded = 0;
  /** Server transactions settled, by the class of their final response: index status / 100 (1..6). */
  readonly serverFinalsByClass = new Float64Array(7);

  /** Transactions in the table, client and server, settled ones included. */
  get size(): number {
    return this.servers.size + this.clients.size;
  }

  /** Transactions in the table still waiting for their final response. */
  get unsettledCount(): number {
    return this.size - this.settledInTable.size;
  }

  get settledCount(): number {
    return this.settledInTable.size;
  }

  get serverCount(): number {
    return this.servers.size;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get isFull(): boolean {
    return this.unsettledCount >= this.maxTransactions;
  }

  /** Transactions compacted into records still in the table. */
  get compactedCount(): number {
    return this.records;
  }

  /**
   * Track a transaction of the table: counted as settled from its final
   * response on, forgotten on termination. `swap` takes its entries out of
   * the maps, or puts a record in their place.
   */
  private track(tx: ServerTransaction | ClientTransaction, swap: (replacement: SettledRecord | undefined) => void): void {
    tx.detach = (replacement) => {
      swap(replacement);
      this.settledInTable.delete(tx);
      if (replacement !== undefined) this.settledInTable.add(replacement);
    };
    const settle = (): void => {
      // Only a server transaction has a final status of its own (what it answered, RFC 3261 §17.2).
      const status = (tx as { finalStatus?: number }).finalStatus;
      if (status !== undefined) this.serverFinalsByClass[status >= 100 && status < 700 ? (status / 100) | 0 : 0]!++;
      this.settledInTable.add(tx);
      if (this.settledInTable.size > this.maxSettled) {
        const oldest = this.settledInTable.values().next().value!;
        this.expiredEarly++;
        if (oldest instanceof Transaction) oldest.expire();
        else this.endRecord(oldest);
      }
    };
    if (tx.settled) settle();
    else tx.onSettled = settle;
  }

  /**
   * Register a server transaction under the key of the request that
   * created it. False when the table is full, the transaction already
   * terminated, or another live transaction has that key (the request
   * should have matched it: see {@link matchRequest}).
   */
  addServer(tx: ServerTransaction): boolean {
    if (tx.detach !== undefined) throw new Error("transaction is already in a table");
    if (tx.terminated || this.isFull) return false;
    const request = tx.request;
    const via = safeTopVia(request);
    if (via === undefined) return false;
    const cookie = isRfc3261Branch(via.branch);
    // Stored keys are own copies: a key concatenated from slices of the request would keep it alive for the timers' 32 s.
    const key = ownCopy(cookie ? rfc3261ServerKey(via.branch!, via, request.method) : rfc2543ServerKey(request, via, request.method));
    if (this.servers.has(key)) return false;
    this.servers.set(key, tx);
    this.serversAdded++;
    let ackKey: string | undefined;
    if (!cookie && tx instanceof InviteServerTransaction) {
      ackKey = ownCopy(rfc2543AckKey(request, via));
      if (this.rfc2543Acks.has(ackKey)) ackKey = undefined; // first one keeps the ACK key
      else this.rfc2543Acks.set(ackKey, tx);
    }
    this.track(tx, (replacement) => {
      const record = replacement as SettledServer | undefined;
      if (this.servers.get(key) === tx) {
        if (record === undefined) this.servers.delete(key);
        else this.servers.set(key, record);
      }
      if (ackKey !== undefined && this.rfc2543Acks.get(ackKey) === tx) {
        if (record === undefined) this.rfc2543Acks.delete(ackKey);
        else this.rfc2543Acks.set(ackKey, record);
      }
      if (record !== undefined) {
        record.key = key;
        record.ackKey = ackKey;
      }
    });
    return true;
  }

  /**
   * Register a client transaction under its branch and method (§17.1.3).
   * False when the table is full, the transaction already terminated, its
   * request has no branch, or the key is taken.
   */
  addClient(tx: ClientTransaction): boolean {
    if (tx.detach !== undefined) throw new Error("transaction is already in a table");
    if (tx.terminated || this.isFull || tx.branch === "") return false;
    const key = tx.branch + SEP + tx.method;
    if (this.clients.has(key)) return false;
    this.clients.set(key, tx);
    this.clientsAdded++;
    this.track(tx, (replacement) => {
      const record = replacement as SettledClient | undefined;
      if (this.clients.get(key) !== tx) return;
      if (record === undefined) {
        this.clients.delete(key);
      } else {
        this.clients.set(key, record);
        record.key = key;
      }
    });
    return true;
  }

  /**
   * Put a compact record in the place of a settled transaction whose TU no
   * longer needs it (see settled.ts): from now on the record matches and
   * absorbs retransmissions for the rest of the transaction's wait timer,
   * as the transaction would have, and the transaction is retired
   * (terminated without callbacks; the TU must not use it again). False,
   * with nothing changed, when the transaction is not in this table, has
   * work of its own left (see Transaction.settledRecord) or the table has
   * no timer service.
   */
  compact(tx: ServerTransaction | ClientTransaction, options: CompactOptions = {}): boolean {
    const detach = tx.detach;
    if (this.deadlines === undefined || detach === undefined || !tx.settled) return false;
    const record = tx.settledRecord(options.send);
    if (record === undefined) return false;
    record.onEnd = options.onEnd;
    tx.retire();
    detach(record);
    this.records++;
    this.deadlines.add(record);
    return true;
  }

  /** A record's deadline passed, or it is ended early: it leaves the table. */
  private endRecord(record: SettledRecord): void {
    if (record.ended) return;
    record.ended = true;
    this.records--;
    if (record instanceof SettledServer) {
      if (this.servers.get(record.key) === record) this.servers.delete(record.key);
      if (record.ackKey !== undefined && this.rfc2543Acks.get(record.ackKey) === record) this.rfc2543Acks.delete(record.ackKey);
    } else if (this.clients.get(record.key) === record) {
      this.clients.delete(record.key);
    }
    this.settledInTable.delete(record);
    const onEnd = record.onEnd;
    record.onEnd = undefined;
    onEnd?.();
  }

  /** Drop a transaction from the table without terminating it. */
  remove(tx: ServerTransaction | ClientTransaction): void {
    const detach = tx.detach;
    tx.detach = undefined;
    tx.onSettled = undefined;
    detach?.();
  }

  /**
   * The server transaction a request belongs to (§17.2.3), or undefined for
   * a new request. With a magic-cookie branch: same branch, same top Via
   * sent-by, same method, ACK matching the INVITE. Without (RFC 2543):
   * Request-URI, To tag, From tag, Call-ID, CSeq and top Via of the
   * creating request; an ACK matches an INVITE on Request-URI, From tag,
   * Call-ID, CSeq number and top Via, and its To tag must equal the To tag
   * of the final response the transaction sent. An ACK for a 2xx carries a
   * new branch and so matches nothing: it is forwarded by the TU.
   * A CANCEL matches only its own transaction; see {@link findInviteForCancel}.
   */
  matchRequest(request: SipMessage): ServerEntry | undefined {
    if (request.kind !== "request") return undefined;
    const via = safeTopVia(request);
    if (via === undefined) return undefined;
    const isAck = request.method === "ACK";
    if (isRfc3261Branch(via.branch)) {
      return this.servers.get(rfc3261ServerKey(via.branch, via, isAck ? "INVITE" : request.method));
    }
    if (isAck) {
      const tx = this.rfc2543Acks.get(rfc2543AckKey(request, via));
      if (tx === undefined) return undefined;
      return (tx.finalResponseToTag() ?? "") === tagOf("to", request) ? tx : undefined;
    }
    return this.servers.get(rfc2543ServerKey(request, via, request.method));
  }

  /**
   * The INVITE server transaction a CANCEL refers to (§9.2): the
   * §17.2.3 rules applied to the CANCEL as if its method were INVITE. With
   * a magic cookie: branch and sent-by; without: Request-URI, To tag, From
   * tag, Call-ID, CSeq number and top Via. Whether the INVITE can still be
   * cancelled (no final response yet) is the TU's call: see its state.
   */
  findInviteForCancel(cancel: SipMessage): InviteServerTransaction | SettledServer | undefined {
    if (cancel.kind !== "request") return undefined;
    const via = safeTopVia(cancel);
    if (via === undefined) return undefined;
    const key = isRfc3261Branch(via.branch)
      ? rfc3261ServerKey(via.branch, via, "INVITE")
      : rfc2543ServerKey(cancel, via, "INVITE");
    const tx = this.servers.get(key);
    return tx instanceof InviteServerTransaction || (tx instanceof SettledServer && tx.method === "INVITE") ? tx : undefined;
  }

  /**
   * The client transaction a response belongs to (§17.1.3): the branch of
   * its top Via and the method of its CSeq (so the response to a CANCEL
   * never matches the INVITE it cancels).
   */
  matchResponse(response: SipMessage): ClientEntry | undefined {
    if (response.kind !== "response") return undefined;
    const branch = safeTopVia(response)?.branch;
    if (branch === undefined || branch === "") return undefined;
    return this.clients.get(branch + SEP + response.cseq.method);
  }

  /**
   * Match a request and hand it to its transaction (which absorbs the
   * retransmission or ACK). Returns the transaction, or undefined when the
   * request is new (the TU then creates a server transaction for it, except
   * for ACK, which never creates one).
   */
  receiveRequest(request: SipMessage): ServerEntry | undefined {
    const tx = this.matchRequest(request);
    tx?.receiveRequest(request);
    return tx;
  }

  /**
   * Match a response and hand it to its client transaction. Returns the
   * transaction, or undefined when none matches; what happens to such a
   * response is the TU's decision (RFC 3261 §16.7 step 1 as revised by
   * RFC 6026 for unmatched responses at a proxy).
   */
  receiveResponse(response: SipMessage): ClientEntry | undefined {
    const tx = this.matchResponse(response);
    tx?.receiveResponse(response);
    return tx;
  }
}
