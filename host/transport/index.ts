/**
 * The transport layer: every UDP, TCP, TLS and WebSocket listen socket behind one
 * `send(proto, ip, port, data)` and one message hook. It only moves bytes;
 * addressing (Via, rport, maddr) is the SIP core's business.
 */
import type { SendFlags } from "../modules/sendopts.js";
import { isIP } from "node:net";
import type { ListenSocket, ReceiveInfo, TransportProto } from "../core/context.js";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "../sip/parser.js";
import { formatListenSocket, isWildcardIp, sameIp } from "./listen-socket.js";
import { TcpTransport, type TcpConnectionEntry } from "./tcp.js";
import { TlsCredentials, type TlsSettings } from "./tls.js";
import { log } from "../core/log.js";
import { UdpListener, MAX_UDP_PAYLOAD } from "./udp.js";
import { ConnectionPolicy, type PolicyCounters, type StreamConnectionLimits } from "./connection-policy.js";
import { WsTransport, type WebSocketSettings } from "./ws.js";

export { parseListenSocket, formatListenSocket, formatHostPort, sameIp, normalizeIp, unbracket, isWildcardIp } from "./listen-socket.js";
export { DEFAULT_STREAM_LIMITS, streamLimits, type StreamConnectionLimits, type PolicyCounters } from "./connection-policy.js";
export { MAX_UDP_PAYLOAD } from "./udp.js";
export { TLS_CLIENT_VERIFICATIONS, TLS_MIN_VERSIONS, type TlsSettings, type TlsClientVerification, type TlsMinVersion, type TlsServerName } from "./tls.js";
export { DEFAULT_WEBSOCKET_SETTINGS, type WebSocketSettings } from "./ws.js";

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
  /** Certificate, key and verification of the tls and wss listen sockets; required when there is one. */
  readonly tls?: TlsSettings;
  /** Handshake checks (path, Origin) and keep-alive of the ws/wss listen sockets. */
  readonly webSocket?: WebSocketSettings;
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
  /** TLS listen sockets and connections: set up in start(), where their files are read. */
  private tls: TcpTransport | undefined;
  private tlsCredentials: TlsCredentials | undefined;
  /** TLS connections are limited and counted apart from plain TCP ones (Kamailio: tls_max_connections). */
  private readonly tlsPolicy: ConnectionPolicy;
  /** ws and wss listen sockets and their connections (wss set up with TLS, in start()). */
  private readonly ws: WsTransport | undefined;
  private wss: WsTransport | undefined;
  /** WebSocket connections, ws and wss together, are limited and counted apart from TCP and TLS ones. */
  private readonly wsPolicy: ConnectionPolicy;
  private readonly reloadOnHangup = () => this.reloadTlsOnSignal();
  private started = false;

  constructor(private readonly options: TransportOptions) {
    const deliver = (data: string, rcv: ReceiveInfo) => this.options.onMessage(data, rcv);
    const limits = options.parseLimits ?? DEFAULT_PARSE_LIMITS;
    const maxUdp = Math.min(limits.maxMessageBytes, MAX_UDP_PAYLOAD);
    this.udp = options.listen.filter((s) => s.proto === "udp").map((s) => new UdpListener(s, maxUdp, deliver));
    this.tcpPolicy = new ConnectionPolicy(options.streamLimits);
    this.tcp = new TcpTransport(options.listen.filter((s) => s.proto === "tcp"), { policy: this.tcpPolicy, limits }, deliver);
    this.tlsPolicy = new ConnectionPolicy(options.streamLimits);
    this.wsPolicy = new ConnectionPolicy(options.streamLimits);
    const wsListen = options.listen.filter((s) => s.proto === "ws");
    this.ws = wsListen.length === 0 ? undefined : new WsTransport(wsListen, { policy: this.wsPolicy, limits, settings: options.webSocket ?? {} }, deliver);
  }

  /** The TLS transport, when a tls listen socket is configured; throws when its certificate files cannot be used. */
  private setUpTls(): void {
    const listen = this.options.listen.filter((s) => s.proto === "tls");
    const wssListen = this.options.listen.filter((s) => s.proto === "wss");
    if ((listen.length === 0 && wssListen.length === 0) || this.tlsCredentials !== undefined) return;
    if (this.options.tls === undefined) throw new Error(`a ${listen.length > 0 ? "tls" : "wss"} listen socket needs a certificate and key (--tls-cert, --tls-key)`);
    this.tlsCredentials = new TlsCredentials(this.options.tls);
    const deliver = (data: string, rcv: ReceiveInfo) => this.options.onMessage(data, rcv);
    const limits = this.options.parseLimits ?? DEFAULT_PARSE_LIMITS;
    if (listen.length > 0) this.tls = new TcpTransport(listen, { policy: this.tlsPolicy, limits, credentials: this.tlsCredentials }, deliver);
    if (wssListen.length > 0) {
      this.wss = new WsTransport(wssListen, { policy: this.wsPolicy, limits, settings: this.options.webSocket ?? {}, credentials: this.tlsCredentials }, deliver);
    }
  }

  /**
   * Read the TLS certificate, key and CA files again: connections opened
   * afterwards use them. Returns an error text, the previous credentials
   * staying in use, when they cannot be used.
   */
  reloadTls(): string | undefined {
    if (this.tlsCredentials === undefined) return "no tls listen socket";
    try {
      this.tlsCredentials.reload();
      this.wss?.credentialsReloaded();
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private reloadTlsOnSignal(): void {
    const problem = this.reloadTls();
    if (problem === undefined) log("notice", "transport", `SIGHUP: TLS certificate ${this.options.tls?.certFile} reloaded; new connections use it`);
    else log("err", "transport", `SIGHUP: TLS certificate not reloaded, the previous one stays in use: ${problem}`);
  }

  /** Bind every listen socket. Rejects (after closing what was opened) if one cannot be bound. */
  async start(): Promise<ListenSocket[]> {
    try {
      for (const u of this.udp) await u.start();
      await this.tcp.start();
      this.setUpTls();
      if (this.tls !== undefined) await this.tls.start();
      if (this.ws !== undefined) await this.ws.start();
      if (this.wss !== undefined) await this.wss.start();
      if (this.tlsCredentials !== undefined) process.on("SIGHUP", this.reloadOnHangup);
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
    process.off("SIGHUP", this.reloadOnHangup);
    await Promise.all([...this.udp.map((u) => u.stop()), this.tcp.stop(), ...[this.tls, this.ws, this.wss].map((t) => t?.stop())]);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** The listen sockets as bound (ports chosen by the OS filled in), in configuration order per transport. */
  get bound(): ListenSocket[] {
    return [...this.udp.map((u) => u.bound), ...this.tcp.bound, ...(this.tls?.bound ?? []), ...(this.ws?.bound ?? []), ...(this.wss?.bound ?? [])];
  }

  /** Remote IP of an open TCP, TLS or WebSocket connection (their ids do not overlap), or undefined when it is gone. */
  tcpConnectionRemoteIp(connectionId: number): string | undefined {
    return (
      this.tcp.connectionInfo(connectionId) ??
      this.tls?.connectionInfo(connectionId) ??
      this.ws?.connectionInfo(connectionId) ??
      this.wss?.connectionInfo(connectionId)
    )?.remoteIp;
  }

  /** Open WebSocket connections, ws and wss, those in their handshake included. */
  get wsConnectionCount(): number {
    return (this.ws?.connectionCount ?? 0) + (this.wss?.connectionCount ?? 0);
  }

  /** What the WebSocket connection policy refused and closed so far (refused handshakes, pong timeouts included). */
  get wsPolicyCounters(): Readonly<PolicyCounters> {
    return this.wsPolicy.counters;
  }

  get tlsConnectionCount(): number {
    return this.tls?.connectionCount ?? 0;
  }

  /** What the TLS connection policy refused and closed so far (handshake timeouts and failures included). */
  get tlsPolicyCounters(): Readonly<PolicyCounters> {
    return this.tlsPolicy.counters;
  }

  /** The open TCP connections and, as Kamailio's tcp list shows them too, the WebSocket ones (`ksr ctl tcp list`). */
  tcpConnections(): TcpConnectionEntry[] {
    return [...this.tcp.connectionList(), ...(this.ws?.connectionList() ?? []), ...(this.wss?.connectionList() ?? [])];
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
    let line = this.tcpPolicy.counterLine("tcp");
    if (this.tls !== undefined) line += `; ${this.tlsPolicy.counterLine("tls")}`;
    if (this.ws !== undefined || this.wss !== undefined) line += `; ${this.wsPolicy.counterLine("ws")}`;
    return line;
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
   * could not be handed to the OS. `_onFailedLater` is for transports that
   * learn of a failure after returning (a worker's, host/tenants/worker.ts);
   * this one always knows at once.
   */
  send(proto: TransportProto, ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket, flags?: SendFlags, _onFailedLater?: () => void): boolean {
    if (proto === "tcp") return this.tcp.send(ip, port, data, connectionId, from, flags);
    if (proto === "tls") return this.tls?.send(ip, port, data, connectionId, from, flags) ?? false;
    if (proto === "ws") return this.ws?.send(ip, port, data, connectionId, from, flags) ?? false;
    if (proto === "wss") return this.wss?.send(ip, port, data, connectionId, from, flags) ?? false;
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
