/**
 * The state a stateful proxy keeps per received request (Kamailio's tm
 * "cell"): the server transaction facing upstream, the branches (one
 * client transaction each) facing downstream, the routes armed for it,
 * and the request as the script left it when it relayed (RFC 3261 §16.2:
 * "a stateful proxy ... maintains ... a response context").
 */
import { ownCopy, type MessageEdits, type SipMessage } from "../sip/message.js";
import { carryMessageState, MessageContext } from "../core/context.js";
import type { ListenSocket, ReceiveInfo } from "../core/context.js";
import type { SendFlags } from "../modules/sendopts.js";
import type { AvpStore } from "../modules/pv.js";
import type { ClientTransaction, ServerTransaction, TimerHandle } from "../transaction/index.js";
import type { NextHop, Upstream } from "../core/outbound.js";
import { copyEdits } from "./messages.js";
import type { RelayOverride, TransactionRoutes } from "./proxy.js";
import type { Target } from "../dns/rfc3263.js";

/** Per-transaction switches a script sets with t_on_* / t_set_* (before or after the transaction exists). */
export interface TmSettings {
  onBranch: string;
  onFailure: string;
  onReply: string;
  onBranchFailure: string;
  /** fr_timer for this transaction in ms (0 = the proxy default). */
  frTimerMs: number;
  /** fr_inv_timer for this transaction in ms (0 = the proxy default). */
  frInvTimerMs: number;
  /** t_set_disable_6xx: a 6xx does not cancel the other branches. */
  disable6xx: boolean;
}

export function defaultSettings(): TmSettings {
  return { onBranch: "", onFailure: "", onReply: "", onBranchFailure: "", frTimerMs: 0, frInvTimerMs: 0, disable6xx: false };
}

/** The request as the script left it at t_relay time: what failure routes start from. */
export interface SavedRequest {
  /** A detached context holding the per-message state carried into failure routes (carryMessageState). */
  readonly moduleState: MessageContext;
  readonly requestUri: string | undefined;
  readonly dstUri: string | undefined;
  readonly sendSocket: string | undefined;
  readonly edits: MessageEdits;
  readonly forceRport: boolean;
  readonly addLocalRport: boolean;
}

export function saveRequest(ctx: MessageContext): SavedRequest {
  const moduleState = new MessageContext(ctx.msg, ctx.rcv, ctx.routeType, ctx.tenant, ctx.host);
  carryMessageState(ctx, moduleState, "failure");
  return {
    moduleState,
    requestUri: ctx.newRequestUri,
    dstUri: ctx.dstUri,
    sendSocket: ctx.sendSocket,
    edits: copyEdits(ctx.edits),
    forceRport: ctx.forceRport,
    addLocalRport: ctx.addLocalRport,
  };
}

/** A final outcome of a branch: a received response, or one this proxy stands in for (408 timeout, 503 transport error). */
export interface BranchFinal {
  readonly status: number;
  readonly reason: string;
  /** The response as received; undefined for a locally generated outcome, and for a 2xx (relayed at once, never read again). */
  readonly reply: SipMessage | undefined;
  /** Edits the reply routes made to it (applied when it is relayed). */
  readonly edits: MessageEdits | undefined;
}

/** One outgoing branch (RFC 3261 §16.6): a target and its client transaction. */
export class ProxyBranch {
  /** Highest provisional status received (0: none), for §9.1 CANCEL and §16.8 timer handling. */
  provisional = 0;
  final: BranchFinal | undefined;
  /** The fr timer (Kamailio fr_timer / fr_inv_timer, RFC timer C for INVITE) ran out. */
  timedOut = false;
  /** A CANCEL is wanted but waits for a provisional response (§9.1). */
  cancelRequested = false;
  cancelSent = false;
  /** Request retransmissions are no longer sent (the branch was given up without a CANCEL, §16.8). */
  retransmissionsStopped = false;
  frTimer: TimerHandle | undefined;
  client: ClientTransaction | undefined;
  /** Reason header lines (RFC 3326) to put in a CANCEL sent later. */
  cancelReason: readonly string[] = [];
  /** The targets left of this branch's RFC 3263 resolution, with what rebuilds the request for them (§4.3 failover). */
  failover: { readonly targets: readonly Target[]; readonly bctx: MessageContext; readonly override: RelayOverride } | undefined;

  constructor(
    readonly index: number,
    /** Request-URI sent on this branch. */
    readonly uri: string,
    /** $du of the branch. */
    readonly dstUri: string | undefined,
    /** Branch flags. */
    public flags: number,
    readonly hop: NextHop,
    readonly socket: ListenSocket,
  ) {}

  get completed(): boolean {
    return this.final !== undefined;
  }

  /** Whether any response (provisional or final, not one stood in for) was received. */
  get replied(): boolean {
    // A 2xx final is always a received one (none is stood in for) and is not kept (see StatefulProxy.onSuccess).
    return this.provisional > 0 || (this.final !== undefined && (this.final.reply !== undefined || (this.final.status >= 200 && this.final.status < 300)));
  }
}

/** The proxy's record of one received request and everything sent for it. */
export class ProxyTransaction implements TmSettings {
  onBranch = "";
  onFailure = "";
  onReply = "";
  onBranchFailure = "";
  frTimerMs = 0;
  frInvTimerMs = 0;
  disable6xx = false;
  /** How responses go upstream over a stream (KSR.set_reply_close / set_reply_no_connect when the request was taken or relayed). */
  replyFlags: SendFlags | undefined;

  readonly branches: ProxyBranch[] = [];
  /** Message flags of the request (updated by every route of the transaction). */
  flags: number;
  /** A CANCEL for this INVITE arrived (t_is_canceled). */
  canceled = false;
  /** Last status sent upstream (0 = none): t_get_status_code, $T_reply_code in request routes. */
  uasStatus = 0;
  /** A final response went upstream. */
  finalSent = false;
  /** A route of this transaction is running or branches are being created: completion is checked afterwards. */
  busy = false;
  /** The branch whose response was chosen (failure route), -1 before. */
  pickedBranch = -1;
  /** Branches waiting for their next hop's DNS resolution: the transaction is not complete while any is. */
  resolving = 0;
  /** At least one branch was sent (t_relay succeeded once). */
  relayed = false;
  /** The request route ended without relaying or answering statefully: the transaction only absorbs retransmissions until removed. */
  released = false;
  /** Key of this INVITE in the proxy's map of answered INVITEs (Call-ID, CSeq, From tag), once a 2xx was relayed. */
  answeredKey: string | undefined;
  /** To tags of the 2xx responses relayed upstream, for matching end-to-end ACKs. */
  readonly okToTags = new Set<string>();
  /** Work on this transaction waiting for an asynchronous route; later events queue behind it. */
  pendingWork: Promise<void> | undefined;
  /** The wait timer after the final response is armed (see StatefulProxy.armFinish). */
  finishArmed = false;
  /**
   * The wait time after the final response is over: the request, the saved
   * route state and the branches' responses are dropped, no route of the
   * transaction runs again, and what is left only absorbs retransmissions
   * until the RFC 3261 timers end the server and client transactions.
   */
  finished = false;
  /** Method of the request (kept after finish). */
  readonly method: string;
  /** Call-ID of the request, for log lines (kept after finish). */
  readonly callId: string;
  private requestValue: SipMessage | undefined;
  private savedValue: SavedRequest | undefined;

  constructor(
    readonly server: ServerTransaction,
    request: SipMessage,
    readonly rcv: ReceiveInfo,
    readonly upstream: Upstream,
    /** The routes of this transaction run in the script it started with. */
    readonly routes: TransactionRoutes,
    /** Shared $avp store: the transaction's AVPs, seen by all of its routes. */
    readonly avps: AvpStore,
    /** To tag of responses generated here (§8.2.6.2: one tag for all of them). */
    readonly localToTag: string,
    ctx: MessageContext,
  ) {
    this.flags = ctx.flags;
    this.method = request.method;
    this.callId = ownCopy(request.callId);
    this.requestValue = request;
    this.savedValue = saveRequest(ctx);
  }

  /** The received request. Not kept once finished: asking then is a bug of the caller. */
  get request(): SipMessage {
    if (this.requestValue === undefined) throw new Error(`transaction call-id=${this.callId} is finished: its request is no longer kept`);
    return this.requestValue;
  }

  /** The request state at the first relay; failure routes start from it. Not kept once finished. */
  get saved(): SavedRequest {
    if (this.savedValue === undefined) throw new Error(`transaction call-id=${this.callId} is finished: its saved request is no longer kept`);
    return this.savedValue;
  }

  set saved(value: SavedRequest) {
    this.savedValue = value;
  }

  get isInvite(): boolean {
    return this.method === "INVITE";
  }

  /**
   * Keep only what the rest of the transaction's life needs: the server
   * transaction's last response and keys, the upstream address, the To tags
   * of relayed 2xx (for the end-to-end ACK), branch statuses. What a route
   * could read (request, saved state, received responses) goes.
   */
  finish(): void {
    this.finished = true;
    this.requestValue = undefined;
    this.savedValue = undefined;
    for (const b of this.branches) {
      b.failover = undefined;
      if (b.final !== undefined) b.final = { status: b.final.status, reason: b.final.reason, reply: undefined, edits: undefined };
    }
  }

  applySettings(s: TmSettings): void {
    this.onBranch = s.onBranch;
    this.onFailure = s.onFailure;
    this.onReply = s.onReply;
    this.onBranchFailure = s.onBranchFailure;
    this.frTimerMs = s.frTimerMs;
    this.frInvTimerMs = s.frInvTimerMs;
    this.disable6xx = s.disable6xx;
  }

  pendingBranches(): ProxyBranch[] {
    return this.branches.filter((b) => !b.completed);
  }
}
