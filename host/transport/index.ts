/**
 * The transport layer: every UDP and TCP listen socket behind one
 * `send(proto, ip, port, data)` and one message hook. It only moves bytes;
 * addressing (Via, rport, maddr) is the SIP core's business.
 */
import type { SendFlags } from "../modules/sendopts.js";
import { isIP } from "node:net";
import type { ListenSocket, ReceiveInfo, TransportProto } from "../core/context.js";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "../sip/parser.js";
import { formatListenSocket, isWildcardIp, sameIp } from "./listen-socket.js";
import { TcpTransport, type TcpConnectionEntry } from "./tcp.js";
import { UdpListener, MAX_UDP_PAYLOAD } from "./udp.js";
import { ConnectionPolicy, type PolicyCounters, type StreamConnectionLimits } from "./connection-policy.js";

export { parseListenSocket, formatListenSocket, formatHostPort, sameIp, normalizeIp, unbracket, isWildcardIp } from "./listen-socket.js";
export { DEFAULT_STREAM_LIMITS, streamLimits, type StreamConnectionLimits, type PolicyCounters } from "./connection-policy.js";
export { MAX_UDP_PAYLOAD } from "./udp.js";

export interface TransportOptions {
  readonly listen: readonly ListenSocket[];
  /** Called for every received message (a binary/latin1 string). Must not throw; errors are logged if it does. */
  readonly onMessage: (data: string, rcv: ReceiveInfo) => void;
  /**
   * Message size limits: larger UDP datagrams are dropped unparsed, a TCP
   * stream announcing a larger message is closed. Default DEFAULT_PARSE_LIMITS.
   */
  readonly parseLimits?: ParseLimits;
  /** What a TCP connection may cost (host/transport/connection-policy.ts); DEFAULT_STREAM_LIMITS where not given. */
  readonly streamLimits?: Partial<StreamConnectionLimits>;
}

/**
 * Of the sockets `bound`, the one a message to `dstIp` over `proto` leaves
 * from: the forced one if it is among them, else the first of the
 * destination's address family (a specific address before a wildcard).
 */
export function pickSendingSocket(
  bound: readonly ListenSocket[],
  proto: TransportProto,
  dstIp: string,
  forced?: ListenSocket,
): ListenSocket | undefined {
  const family = isIP(dstIp);
  const candidates = bound.filter((b) => b.proto === proto);
  if (forced) {
    const match = candidates.find((b) => b.port === forced.port && sameIp(b.ip, forced.ip));
    if (match) return match;
  }
  return (
    candidates.find((b) => isIP(b.ip) === family && !isWildcardIp(b.ip)) ??
    candidates.find((b) => isIP(b.ip) === family)
  );
}

export class TransportLayer {
  private readonly udp: UdpListener[];
  private readonly tcp: TcpTransport;
  private readonly tcpPolicy: ConnectionPolicy;
  private started = false;

  constructor(private readonly options: TransportOptions) {
    const deliver = (data: string, rcv: ReceiveInfo) => this.options.onMessage(data, rcv);
    const limits = options.parseLimits ?? DEFAULT_PARSE_LIMITS;
    const maxUdp = Math.min(limits.maxMessageBytes, MAX_UDP_PAYLOAD);
    this.udp = options.listen.filter((s) => s.proto === "udp").map((s) => new UdpListener(s, maxUdp, deliver));
    this.tcpPolicy = new ConnectionPolicy(options.streamLimits);
    this.tcp = new TcpTransport(options.listen.filter((s) => s.proto === "tcp"), { policy: this.tcpPolicy, limits }, deliver);
  }

  /** Bind every listen socket. Rejects (after closing what was opened) if one cannot be bound. */
  async start(): Promise<ListenSocket[]> {
    try {
      for (const u of this.udp) await u.start();
      await this.tcp.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.started = true;
    return this.bound;
  }

  /** Close every socket and connection; resolves when all are closed. */
  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.udp.map((u) => u.stop()), this.tcp.stop()]);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** The listen sockets as bound (ports chosen by the OS filled in), in configuration order per transport. */
  get bound(): ListenSocket[] {
    return [...this.udp.map((u) => u.bound), ...this.tcp.bound];
  }

  /** Remote IP of an open TCP connection, or undefined when it is gone. */
  tcpConnectionRemoteIp(connectionId: number): string | undefined {
    return this.tcp.connectionInfo(connectionId)?.remoteIp;
  }

  /** The open TCP connections (`ksr ctl tcp list`). */
  tcpConnections(): TcpConnectionEntry[] {
    return this.tcp.connectionList();
  }

  get tcpConnectionCount(): number {
    return this.tcp.connectionCount;
  }

  /** What the TCP connection policy refused and closed so far, and why. */
  get tcpPolicyCounters(): Readonly<PolicyCounters> {
    return this.tcpPolicy.counters;
  }

  /** The TCP policy's counters as one log line (SIGUSR2). */
  tcpCounterLine(): string {
    return this.tcpPolicy.counterLine("tcp");
  }

  /**
   * The listen socket a message to `dstIp` over `proto` leaves from: the
   * forced one if it is ours, else the first of the destination's family.
   */
  socketFor(proto: TransportProto, dstIp: string, forced?: ListenSocket): ListenSocket | undefined {
    return pickSendingSocket(this.bound, proto, dstIp, forced);
  }

  /**
   * Send one message. `connectionId` (TCP) prefers that connection; `from`
   * picks the local socket (UDP: the socket the datagram leaves from; TCP:
   * the address a new connection binds to). `ip` must be an IP literal.
   * `flags` (TCP only): close the connection once the message is written,
   * or send only over an open connection. Returns false when the message
   * could not be handed to the OS.
   */
  send(proto: TransportProto, ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket, flags?: SendFlags): boolean {
    if (proto === "tcp") return this.tcp.send(ip, port, data, connectionId, from, flags);
    const family = isIP(ip);
    if (family === 0) return false;
    let listener: UdpListener | undefined;
    if (from) listener = this.udp.find((u) => u.bound.port === from.port && sameIp(u.bound.ip, from.ip));
    if (!listener || listener.family !== family) listener = this.udp.find((u) => u.family === family);
    return listener ? listener.send(ip, port, data) : false;
  }

  describe(): string {
    return this.bound.map(formatListenSocket).join(", ");
  }
}
