/**
 * What a stream connection (TCP, TLS, WebSocket) may cost
 * the server, whoever is at the other end: the limits, who may connect,
 * and the guard each connection carries. The transport only reports events
 * (bytes framed, a message, a ping, a write); this layer decides when a
 * connection has had enough and says why, so that every stream transport
 * enforces the same rules with the same log lines and counters.
 *
 * - Admission: inbound and outbound connections are counted apart, so that
 *   peers connecting to us can never use up the connections the proxy
 *   needs to reach its next hops; inbound ones are also limited per source
 *   address.
 * - Back-pressure: a peer that does not read makes our output queue grow;
 *   past `maxOutputBytes` the message that does not fit is dropped
 *   (counted, logged) and the connection closed.
 * - Slow senders (slowloris): once the first byte of a message has arrived
 *   the whole message must follow within `messageDeadlineMs` (Kamailio
 *   5.6, our reference, has no such limit; later releases added
 *   tcp_msg_read_timeout and a per-address accept limit for the same ends).
 * - Idle: only a whole message, in either direction, or an answered
 *   keep-alive ping counts as activity, so bytes trickling in one at a time
 *   keep nothing open: they are a message in progress (deadline) or stray
 *   CRLFs (not activity).
 * - Keep-alive pings (RFC 5626 §3.5.1, CRLFCRLF answered with CRLF) are
 *   answered up to `maxKeepalivesPerMinute`; a peer pinging faster is
 *   flooding and its connection is closed. RFC 5626 §4.4.1 has clients ping
 *   every 95-120 s, so the default leaves a wide margin.
 */
import { log } from "../core/log.js";

let nextConnectionId = 1;

/**
 * A new connection id, unique across every stream transport (TCP, TLS,
 * WebSocket) of the process, so that an id in ReceiveInfo, a Via or a
 * location binding names one connection whatever its transport.
 */
export function takeConnectionId(): number {
  return nextConnectionId++;
}

export interface StreamConnectionLimits {
  /** Close a connection after this long without a message or an answered ping (ms). */
  readonly idleTimeoutMs: number;
  /** A message must be complete this long after its first byte (ms). */
  readonly messageDeadlineMs: number;
  /** Bytes queued for a peer that is not reading before its connection is closed. */
  readonly maxOutputBytes: number;
  /** Keep-alive pings answered per connection and minute; more close the connection. */
  readonly maxKeepalivesPerMinute: number;
  /** Connections peers open to us, all sources together. */
  readonly maxInboundConnections: number;
  /** Connections peers open to us from one IP address. */
  readonly maxInboundPerIp: number;
  /** Connections we open (to next hops, or back to a client), counted apart from inbound ones. */
  readonly maxOutboundConnections: number;
  /** TLS: the handshake must be done this long after the connection opened (ms). */
  readonly handshakeTimeoutMs: number;
}

/**
 * Defaults. Idle 120 s and 2048 inbound connections are Kamailio's
 * tcp_connection_lifetime and tcp_max_connections; 20 s for a message is
 * ample for any client on a working network (a message is one write). 256
 * KiB of output is four messages of the
 * largest size we accept (65 535 bytes) queued behind what the kernel
 * buffers already hold. 10 s for a TLS handshake is Kamailio's
 * tcp_connect_timeout, the time it gives a connection to come up.
 */
export const DEFAULT_STREAM_LIMITS: StreamConnectionLimits = Object.freeze({
  idleTimeoutMs: 120_000,
  messageDeadlineMs: 20_000,
  maxOutputBytes: 256 * 1024,
  maxKeepalivesPerMinute: 60,
  maxInboundConnections: 2048,
  maxInboundPerIp: 256,
  maxOutboundConnections: 1024,
  handshakeTimeoutMs: 10_000,
});

/** Defaults overridden by `given`; throws naming the field when a value is not a positive integer. */
export function streamLimits(given: Partial<StreamConnectionLimits> = {}): StreamConnectionLimits {
  const limits = { ...DEFAULT_STREAM_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new Error(`stream connection limit ${name} must be a positive integer, not ${String(value)}`);
    }
  }
  return limits;
}

/** Why the policy closed a connection or refused one; the keys of the counters. */
export type PolicyEvent =
  | "refusedInbound"
  | "refusedPerIp"
  | "refusedOutbound"
  | "closedIdle"
  | "closedSlowMessage"
  | "closedOutputFull"
  | "closedKeepaliveFlood"
  | "closedHandshakeTimeout"
  | "failedHandshake"
  | "closedPongTimeout"
  | "droppedMessages";

export type PolicyCounters = Record<PolicyEvent, number>;

function zeroCounters(): PolicyCounters {
  return {
    refusedInbound: 0,
    refusedPerIp: 0,
    refusedOutbound: 0,
    closedIdle: 0,
    closedSlowMessage: 0,
    closedOutputFull: 0,
    closedKeepaliveFlood: 0,
    closedHandshakeTimeout: 0,
    failedHandshake: 0,
    closedPongTimeout: 0,
    droppedMessages: 0,
  };
}

/** What the guard needs of a connection. */
export interface GuardedConnection {
  /** "tcp connection 7 from 127.0.0.1:40000", for log lines. */
  describe(): string;
  /** Bytes written but not yet handed to the kernel. */
  queuedOutputBytes(): number;
  /** Close at once. */
  destroy(): void;
}

/**
 * Log lines about refused connections would themselves be a flood: the
 * first of each kind is logged, then at most one line a second saying how
 * many more there were.
 */
class ThrottledLog {
  private lastAt = new Map<string, number>();
  private suppressed = new Map<string, number>();

  write(kind: string, text: string, now = Date.now()): void {
    const last = this.lastAt.get(kind);
    if (last !== undefined && now - last < 1000) {
      this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
      return;
    }
    const more = this.suppressed.get(kind) ?? 0;
    this.suppressed.delete(kind);
    this.lastAt.set(kind, now);
    log("warn", "transport", more > 0 ? `${text} (and ${more} more like it in the last second)` : text);
  }
}

export class ConnectionPolicy {
  readonly limits: StreamConnectionLimits;
  readonly counters: PolicyCounters = zeroCounters();
  private inbound = 0;
  private outbound = 0;
  private readonly inboundByIp = new Map<string, number>();
  private readonly throttled = new ThrottledLog();

  constructor(limits: Partial<StreamConnectionLimits> = {}) {
    this.limits = streamLimits(limits);
  }

  get inboundCount(): number {
    return this.inbound;
  }

  get outboundCount(): number {
    return this.outbound;
  }

  /**
   * May a peer at `remoteIp` open one more connection to us? On yes the
   * connection is counted until its guard is released; on no the refusal
   * is counted and logged (throttled) and the caller closes the socket.
   */
  admitInbound(remoteIp: string, where: string): boolean {
    if (this.inbound >= this.limits.maxInboundConnections) {
      this.counters.refusedInbound++;
      this.throttled.write("inbound", `${where}: refused connection from ${remoteIp} (limit ${this.limits.maxInboundConnections} inbound connections)`);
      return false;
    }
    const fromIp = this.inboundByIp.get(remoteIp) ?? 0;
    if (fromIp >= this.limits.maxInboundPerIp) {
      this.counters.refusedPerIp++;
      this.throttled.write("per-ip", `${where}: refused connection from ${remoteIp} (limit ${this.limits.maxInboundPerIp} connections per address)`);
      return false;
    }
    this.inbound++;
    this.inboundByIp.set(remoteIp, fromIp + 1);
    return true;
  }

  /** May we open one more connection? Inbound connections do not count against this. */
  admitOutbound(destination: string): boolean {
    if (this.outbound >= this.limits.maxOutboundConnections) {
      this.counters.refusedOutbound++;
      this.throttled.write("outbound", `cannot connect to ${destination}: limit of ${this.limits.maxOutboundConnections} outbound connections reached`);
      return false;
    }
    this.outbound++;
    return true;
  }

  /** The guard of an admitted connection; `remoteIp` only for inbound ones (per-address count). */
  guard(conn: GuardedConnection, direction: "inbound" | "outbound", remoteIp: string): ConnectionGuard {
    return new ConnectionGuard(this, conn, () => this.release(direction, remoteIp));
  }

  /** One line for the counters dump (SIGUSR2). */
  counterLine(protoName: string): string {
    const c = this.counters;
    return (
      `${protoName}: inbound=${this.inbound} outbound=${this.outbound} refused-inbound=${c.refusedInbound} refused-per-ip=${c.refusedPerIp} ` +
      `refused-outbound=${c.refusedOutbound} closed-idle=${c.closedIdle} closed-slow-message=${c.closedSlowMessage} ` +
      `closed-output-full=${c.closedOutputFull} closed-keepalive-flood=${c.closedKeepaliveFlood} closed-handshake-timeout=${c.closedHandshakeTimeout} failed-handshake=${c.failedHandshake} closed-pong-timeout=${c.closedPongTimeout} dropped-messages=${c.droppedMessages}`
    );
  }

  /**
   * A guard closed a connection or dropped a message: counted, and logged
   * (throttled: a flood of bad connections must not become a flood of log
   * lines). Idle closes are routine and logged at dbg only.
   */
  report(event: PolicyEvent, text: string): void {
    this.counters[event]++;
    if (event === "closedIdle") log("dbg", "transport", text);
    else this.throttled.write(event, text);
  }

  private release(direction: "inbound" | "outbound", remoteIp: string): void {
    if (direction === "outbound") {
      this.outbound--;
      return;
    }
    this.inbound--;
    const left = (this.inboundByIp.get(remoteIp) ?? 1) - 1;
    if (left > 0) this.inboundByIp.set(remoteIp, left);
    else this.inboundByIp.delete(remoteIp);
  }
}

/**
 * The limits applied to one connection. The transport calls the on*
 * methods as things happen and `release()` once the connection is closed.
 */
export class ConnectionGuard {
  private idleTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private keepaliveWindowStart = 0;
  private keepalivesInWindow = 0;
  private released = false;

  constructor(
    private readonly policy: ConnectionPolicy,
    private readonly conn: GuardedConnection,
    private readonly onRelease: () => void,
  ) {
    this.idleTimer = setTimeout(() => this.close("closedIdle", `no message for ${policy.limits.idleTimeoutMs} ms`), policy.limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  /**
   * After each chunk is framed: `partialBytes` of a message are held;
   * `completedMessage` when a message ended in this chunk, so what is
   * held now began in it. Starts, keeps or clears the message deadline.
   */
  onFramed(partialBytes: number, completedMessage: boolean): void {
    if (this.released) return;
    if (partialBytes === 0) {
      this.clearDeadline();
      return;
    }
    if (this.deadlineTimer !== undefined && !completedMessage) return;
    this.clearDeadline();
    const ms = this.policy.limits.messageDeadlineMs;
    this.deadlineTimer = setTimeout(() => this.close("closedSlowMessage", `message not complete ${ms} ms after its first byte`), ms);
    this.deadlineTimer.unref();
  }

  /** A whole message arrived or was sent: the connection is in use. */
  onMessage(): void {
    this.idleTimer?.refresh();
  }

  /**
   * A keep-alive ping arrived: true when it is to be answered (and counts
   * as activity); false when the connection was closed for pinging faster
   * than the limit.
   */
  onKeepalive(now = Date.now()): boolean {
    if (this.released) return false;
    if (now - this.keepaliveWindowStart >= 60_000) {
      this.keepaliveWindowStart = now;
      this.keepalivesInWindow = 0;
    }
    if (++this.keepalivesInWindow > this.policy.limits.maxKeepalivesPerMinute) {
      this.close("closedKeepaliveFlood", `more than ${this.policy.limits.maxKeepalivesPerMinute} keep-alive pings in a minute`);
      return false;
    }
    this.idleTimer?.refresh();
    return true;
  }

  /**
   * May `bytes` more be queued for this peer? When not, the message is
   * dropped (counted) and the connection closed: a peer that does not read
   * its messages cannot make us hold more of them.
   */
  admitOutput(bytes: number, what: string): boolean {
    if (this.released) return false;
    const queued = this.conn.queuedOutputBytes();
    if (queued + bytes <= this.policy.limits.maxOutputBytes) return true;
    this.policy.counters.droppedMessages++;
    this.close("closedOutputFull", `peer is not reading: ${queued} bytes queued, ${what} of ${bytes} bytes dropped (limit ${this.policy.limits.maxOutputBytes})`);
    return false;
  }

  /** The connection is closed (by anyone): stop the timers and give back its admission. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.idleTimer);
    this.clearDeadline();
    this.onRelease();
  }

  private clearDeadline(): void {
    if (this.deadlineTimer === undefined) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }

  private close(reason: PolicyEvent, why: string): void {
    if (this.released) return;
    this.policy.report(reason, `${this.conn.describe()}: ${why}; closing`);
    this.conn.destroy();
    this.release();
  }
}
