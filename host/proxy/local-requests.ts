/**
 * Requests this server originates itself (the dispatcher's OPTIONS pings):
 * a small user agent client. Each request is a non-INVITE client
 * transaction (RFC 3261 §17.1.2, timers E and F) in a table of its own,
 * sent from the tenant's socket with our Via and a fresh branch (§8.1.1.7),
 * and held to the tenant's egress policy by the host's send. Its final
 * response, or 408 when timer F fires (§17.1.2.2), or 503 when the
 * transport fails (§17.1.4; an egress refusal is one), goes to a callback.
 *
 * Responses to these requests are never a script's business: their branch
 * starts with LOCAL_BRANCH_PREFIX, and the server hands any response whose
 * top Via carries it here before a reply route could run; a response
 * matching no transaction any more (a late retransmission) is dropped.
 */
import type { ListenSocket } from "../core/context.js";
import { nextHopOf, ourViaLine, type Destination } from "../core/outbound.js";
import type { SipMessage } from "../sip/message.js";
import { topVia } from "../sip/parser.js";
import { generateBranch, generateTag } from "../sip/serialize.js";
import { NonInviteClientTransaction, TransactionTable, resolveTimerConfig, type TimerConfig, type TimerService } from "../transaction/index.js";
import { parseListenSocket } from "../transport/listen-socket.js";

/** The magic cookie (§8.1.1.7) and a mark that tells our own requests' responses from those of forwarded ones. */
export const LOCAL_BRANCH_PREFIX = "z9hG4bKksrlocal";

/** What the server lends the user agent client: the same sending as the tenant's proxy. */
export interface LocalRequestHost {
  readonly timers: TimerService;
  readonly aliases: readonly string[];
  /** ";name=value" parameters of our Via (the tenant the response belongs to). */
  readonly viaParams?: string;
  socketFor(proto: Destination["proto"], host: string, forced: ListenSocket | undefined): ListenSocket | undefined;
  /** Send a request (held to the tenant's egress policy); false when it cannot go. */
  send(dest: Destination, data: string, from: ListenSocket | undefined, what: string): boolean;
}

export interface LocalRequest {
  readonly method: string;
  /** Request-URI and To URI. */
  readonly uri: string;
  readonly from: string;
  /** "udp:IP:PORT" to send from (a dispatcher destination's socket attribute); the socket for the next hop otherwise. */
  readonly socket?: string;
  /** Where to send instead of the Request-URI (a dispatcher destination's obproxy), as t_request's outbound proxy. */
  readonly outboundProxy?: string;
}

/** Why a request got no response from its peer: the status stands for it (408 timer F, 503 not sent). */
export type LocalResult = { readonly status: number; readonly reason: string };

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;

/** Whether a response answers a request the server sent itself (its top Via branch is one of ours). */
export function isLocalResponse(msg: SipMessage): boolean {
  try {
    return topVia(msg)?.branch?.startsWith(LOCAL_BRANCH_PREFIX) === true;
  } catch {
    return false;
  }
}

export class LocalRequests {
  private readonly table: TransactionTable;
  private readonly config: TimerConfig;
  private cseq = 0;

  constructor(
    private readonly host: LocalRequestHost,
    private readonly options: {
      readonly timerConfig?: TimerConfig;
      readonly maxTransactions?: number;
      /**
       * Whether a Call-ID may be used: in a pool of worker processes the
       * front hands a response to the worker its Call-ID hashes to
       * (host/tenants/affinity.ts), so a worker only uses Call-IDs of its own.
       */
      readonly callIdAccepted?: (callId: string) => boolean;
    } = {},
  ) {
    this.config = options.timerConfig ?? resolveTimerConfig();
    this.table = new TransactionTable({ maxTransactions: options.maxTransactions ?? 10_000 });
  }

  /**
   * Send `req` and call `done` once with its final status (its reason
   * phrase, or why there was none). `done` may run before this returns
   * (the request could not be built or sent).
   */
  send(req: LocalRequest, done: (result: LocalResult) => void): void {
    let finished = false;
    const finish = (status: number, reason: string): void => {
      if (finished) return;
      finished = true;
      done({ status, reason });
    };
    if (!TOKEN.test(req.method) || req.method === "INVITE" || req.method === "ACK") {
      finish(503, `method "${req.method}" cannot be sent as a non-INVITE request`);
      return;
    }
    // CR or LF in a URI would write headers of its own.
    if (/[\r\n]/.test(req.uri + req.from + (req.outboundProxy ?? ""))) {
      finish(503, "line break in a URI");
      return;
    }
    const hop = nextHopOf(req.outboundProxy ?? req.uri);
    if (typeof hop === "string") {
      finish(503, hop);
      return;
    }
    let forced: ListenSocket | undefined;
    if (req.socket !== undefined) {
      try {
        forced = parseListenSocket(req.socket);
      } catch (e) {
        finish(503, `socket ${req.socket}: ${(e as Error).message}`);
        return;
      }
    }
    const socket = this.host.socketFor(hop.proto, hop.host, forced);
    if (socket === undefined) {
      finish(503, `no ${hop.proto} socket to reach ${hop.host}`);
      return;
    }
    const branch = LOCAL_BRANCH_PREFIX + generateBranch().slice("z9hG4bK".length);
    const via = ourViaLine({
      socket,
      aliases: this.host.aliases,
      branch,
      rport: false,
      params: this.host.viaParams,
      inbound: { proto: socket.proto, srcIp: socket.ip, srcPort: socket.port, localIp: socket.ip, localPort: socket.port, connectionId: -1 },
    });
    this.cseq = (this.cseq % 0x7fffffff) + 1;
    const host = socket.ip.includes(":") ? `[${socket.ip}]` : socket.ip;
    // §8.1.1: the headers a UAC must put in every request.
    const text =
      `${req.method} ${req.uri} SIP/2.0\r\n` +
      via +
      "Max-Forwards: 70\r\n" +
      `From: <${req.from}>;tag=${generateTag()}\r\n` +
      `To: <${req.uri}>\r\n` +
      `Call-ID: ${this.newCallId(host)}\r\n` +
      `CSeq: ${this.cseq} ${req.method}\r\n` +
      "Content-Length: 0\r\n\r\n";
    const dest: Destination = { proto: hop.proto, host: hop.host, port: hop.port };
    let tx: NonInviteClientTransaction;
    try {
      tx = new NonInviteClientTransaction(text, {
        timers: this.host.timers,
        config: this.config,
        reliable: hop.proto === "tcp",
        send: (data) => this.host.send(dest, data, socket, `${req.method} request`),
        user: {
          onResponse: (response) => {
            if (response.kind === "response" && response.status >= 200) finish(response.status, response.reason);
          },
          onTimeout: () => finish(408, "no final response (timer F)"),
          onTransportError: () => finish(503, `sending to ${hop.proto}:${hop.host}:${hop.port} failed`),
        },
      });
    } catch (e) {
      finish(503, (e as Error).message);
      return;
    }
    if (!this.table.addClient(tx)) {
      finish(503, "too many requests of our own in progress");
      return;
    }
    tx.start();
  }

  /** A random Call-ID (§8.1.1.4) the callIdAccepted option allows; with a pool of N, about N tries. */
  private newCallId(host: string): string {
    const accepted = this.options.callIdAccepted;
    let callId = `${generateBranch().slice("z9hG4bK".length)}@${host}`;
    // Bounded: 1000 tries miss a 1-in-N lane with probability (1-1/N)^1000, negligible for any pool size allowed.
    for (let tries = 0; accepted !== undefined && !accepted(callId) && tries < 1000; tries++) {
      callId = `${generateBranch().slice("z9hG4bK".length)}@${host}`;
    }
    return callId;
  }

  /**
   * A response whose top Via is one of ours: handed to its transaction
   * (§17.1.3 matching) and true, so that no route runs for it; false for
   * any other response.
   */
  receiveResponse(msg: SipMessage): boolean {
    if (!isLocalResponse(msg)) return false;
    this.table.receiveResponse(msg);
    return true;
  }

  /** Transactions in progress or settling (tests, statistics). */
  get size(): number {
    return this.table.size;
  }
}
