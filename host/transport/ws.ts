/**
 * SIP over WebSocket (RFC 7118), for browsers: `ws:` listen sockets over
 * plain TCP, `wss:` over TLS with the certificate of the tls sockets
 * (tls.ts). The WebSocket protocol itself (RFC 6455 framing, masking,
 * close handshake) is the `ws` package's; this file decides who may
 * connect and carries SIP messages.
 *
 * - Handshake (RFC 7118 §4): the client must offer the `sip` subprotocol
 *   in Sec-WebSocket-Protocol, and the server answers with it; a handshake
 *   without it is refused (400). Like Kamailio's xhttp event route calling
 *   ws_handle_handshake() after checking the path and Origin, the request
 *   path and the Origin header can be limited to lists (`allowedPaths`,
 *   `allowedOrigins`): another path is refused with 404, another Origin (or
 *   none, when origins are listed) with 403. A plain HTTP request without
 *   Upgrade gets 426.
 * - Messages (RFC 7118 §5): each WebSocket message is one SIP message,
 *   text or binary; no Content-Length framing. We send text frames when the
 *   message is valid UTF-8, else binary ones (§5). A message larger than
 *   the parser's limit closes the connection (1009, "message too big").
 *   A message of CRLFs only is a keep-alive ping (RFC 5626 §3.5.1 style,
 *   as SIP.js sends over WebSocket) and is answered with CRLF.
 * - Connections are only ever opened by the client: a message for a
 *   WebSocket peer goes down the connection it opened (found by id, or by
 *   its address), and when that connection is gone the send fails; we
 *   never connect out (RFC 7118 §6: the WebSocket server cannot open a
 *   connection to a client).
 * - Keep-alive: a WebSocket ping every `pingIntervalMs`; a connection
 *   whose pong has not come `pongTimeoutMs` later is closed (counted as
 *   closed-pong-timeout). A pong counts as activity for the idle timeout,
 *   so a registered browser that answers pings stays connected. Pings from
 *   the peer are answered (by `ws`) at the keep-alive rate the policy
 *   allows; more close the connection.
 * - Limits: the stream connection policy (connection-policy.ts), with
 *   WebSocket connections counted apart from TCP and TLS ones: admission
 *   (inbound, per address) from the first byte, the handshake (TLS and
 *   HTTP upgrade together) within the handshake timeout, idle timeout,
 *   output cap. The message deadline does not apply: `ws` assembles
 *   frames itself and its payload limit bounds what a slow frame holds.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { isUtf8 } from "node:buffer";
import { WebSocketServer, type WebSocket } from "ws";
import type { ListenSocket, ReceiveInfo, TlsConnectionInfo } from "../core/context.js";
import { log } from "../core/log.js";
import type { ParseLimits } from "../sip/parser.js";
import type { SendFlags } from "../modules/sendopts.js";
import { ConnectionPolicy, takeConnectionId, type ConnectionGuard } from "./connection-policy.js";
import { formatHostPort, formatListenSocket, listenStream, normalizeIp } from "./listen-socket.js";
import { connectionInfo, type TlsCredentials } from "./tls.js";
import type { MessageHandler } from "./udp.js";
import type { TcpConnectionEntry } from "./tcp.js";

/** The subprotocol RFC 7118 §4 registers for SIP. */
export const SIP_SUBPROTOCOL = "sip";

export interface WebSocketSettings {
  /** Request paths a handshake may ask for ("/", "/ws"); any path when empty or absent. */
  readonly allowedPaths?: readonly string[];
  /** Origin header values allowed ("https://app.example.com"); any Origin (or none) when empty or absent. */
  readonly allowedOrigins?: readonly string[];
  /** Send a WebSocket ping this often (ms). */
  readonly pingIntervalMs?: number;
  /** Close a connection whose pong has not come this long after the ping (ms). */
  readonly pongTimeoutMs?: number;
}

/**
 * Defaults. Kamailio's websocket module pings a connection idle for
 * keepalive_timeout (180 s); browsers do not send SIP keep-alives, so the
 * ping must come before the idle timeout (120 s) would close a registered
 * client: every 30 s, pong within 10 s.
 */
export const DEFAULT_WEBSOCKET_SETTINGS = Object.freeze({ pingIntervalMs: 30_000, pongTimeoutMs: 10_000 });

export interface WsOptions {
  readonly policy: ConnectionPolicy;
  readonly limits: ParseLimits;
  readonly settings: WebSocketSettings;
  /** wss: the TLS certificate and verification of the tls sockets; ws without. */
  readonly credentials?: TlsCredentials;
}

/** A refused handshake: the HTTP status and why (for the log line). */
export interface HandshakeRefusal {
  readonly status: number;
  readonly reason: string;
}

/**
 * Whether an upgrade request may become a SIP WebSocket connection: its
 * path and Origin against the lists, its subprotocols against RFC 7118.
 */
export function handshakeRefusal(req: Pick<http.IncomingMessage, "url" | "headers">, settings: WebSocketSettings): HandshakeRefusal | undefined {
  const paths = settings.allowedPaths ?? [];
  if (paths.length > 0) {
    let path: string;
    try {
      path = new URL(req.url ?? "/", "http://localhost").pathname;
    } catch {
      return { status: 400, reason: `request target ${JSON.stringify(req.url)} does not parse` };
    }
    if (!paths.includes(path)) return { status: 404, reason: `path ${JSON.stringify(path)} is not one of ${paths.join(", ")}` };
  }
  const origins = settings.allowedOrigins ?? [];
  if (origins.length > 0) {
    const origin = req.headers.origin;
    if (origin === undefined) return { status: 403, reason: "no Origin header (allowed origins are configured)" };
    if (!origins.includes(origin)) return { status: 403, reason: `Origin ${JSON.stringify(origin)} is not allowed` };
  }
  const offered = (req.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p !== "");
  if (!offered.includes(SIP_SUBPROTOCOL)) {
    return { status: 400, reason: offered.length === 0 ? "no Sec-WebSocket-Protocol (RFC 7118 §4 requires \"sip\")" : `subprotocol ${offered.join(", ")} offered, not "sip" (RFC 7118 §4)` };
  }
  return undefined;
}

/** An accepted TCP connection to a ws/wss socket, before its upgrade. */
interface Accepted {
  readonly raw: net.Socket;
  readonly id: number;
  readonly description: string;
  readonly guard: ConnectionGuard;
  readonly local: ListenSocket;
  readonly remoteIp: string;
  readonly remotePort: number;
  readonly handshakeTimer: NodeJS.Timeout;
  /** Set once the upgrade is done. */
  conn?: WsConnection;
  /** A failed or timed-out handshake was reported: the TLS layer and our own timer must not both count it. */
  handshakeReported?: boolean;
}

interface WsConnection {
  readonly id: number;
  readonly ws: WebSocket;
  readonly accepted: Accepted;
  readonly tls?: TlsConnectionInfo;
  pingTimer?: NodeJS.Timeout;
  pongTimer?: NodeJS.Timeout;
}

function addressKey(ip: string, port: number): string {
  return `${normalizeIp(ip)}|${port}`;
}

const CRLF_ONLY = /^(?:\r\n)+$/;

export class WsTransport {
  private readonly proto: "ws" | "wss";
  private readonly servers: { server: http.Server; bound: ListenSocket }[] = [];
  private readonly wsServer: WebSocketServer;
  /** Accepted TCP connections by remote address, upgraded or not. */
  private readonly accepted = new Map<string, Accepted>();
  private readonly connections = new Map<number, WsConnection>();
  private stopping = false;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;

  constructor(
    private readonly listen: readonly ListenSocket[],
    private readonly options: WsOptions,
    private readonly deliver: MessageHandler,
  ) {
    this.proto = options.credentials !== undefined ? "wss" : "ws";
    this.pingIntervalMs = options.settings.pingIntervalMs ?? DEFAULT_WEBSOCKET_SETTINGS.pingIntervalMs;
    this.pongTimeoutMs = options.settings.pongTimeoutMs ?? DEFAULT_WEBSOCKET_SETTINGS.pongTimeoutMs;
    this.wsServer = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.limits.maxMessageBytes,
      handleProtocols: (offered) => (offered.has(SIP_SUBPROTOCOL) ? SIP_SUBPROTOCOL : false),
    });
  }

  get bound(): ListenSocket[] {
    return this.servers.map((s) => s.bound);
  }

  /** Open connections, those still in their handshake included. */
  get connectionCount(): number {
    return this.accepted.size;
  }

  /** The upgraded connections (`ksr ctl tcp list`). */
  connectionList(): TcpConnectionEntry[] {
    return [...this.connections.values()].map((c) => ({
      id: c.id,
      remote: formatHostPort(c.accepted.remoteIp, c.accepted.remotePort),
      local: formatListenSocket(c.accepted.local),
      direction: "inbound" as const,
    }));
  }

  connectionInfo(id: number): { remoteIp: string; remotePort: number; local: ListenSocket } | undefined {
    const c = this.connections.get(id);
    return c !== undefined && isOpen(c) ? { remoteIp: c.accepted.remoteIp, remotePort: c.accepted.remotePort, local: c.accepted.local } : undefined;
  }

  async start(): Promise<ListenSocket[]> {
    for (const config of this.listen) {
      const server = this.createHttpServer();
      const entry = { server, bound: config };
      server.on("connection", (socket: net.Socket) => this.accept(socket, entry.bound));
      server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head));
      // A request that is not an upgrade: this server speaks WebSocket only.
      server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
        res.writeHead(426, { Connection: "close", Upgrade: "websocket", "Sec-WebSocket-Version": "13" }).end();
      });
      server.on("clientError", (err: Error, socket: net.Socket) => {
        log("dbg", "transport", `${this.proto} ${formatListenSocket(entry.bound)}: bad HTTP from ${socket.remoteAddress ?? "?"}: ${err.message}`);
        socket.destroy();
      });
      server.on("error", (err) => log("err", "transport", `${this.proto} ${formatListenSocket(entry.bound)}: ${err.message}`));
      entry.bound = await listenStream(server, config, this.proto);
      this.servers.push(entry);
    }
    return this.bound;
  }

  /** wss: new connections present the reloaded certificate (tls.Server.setSecureContext); open ones keep theirs. */
  credentialsReloaded(): void {
    if (this.options.credentials === undefined) return;
    const o = this.options.credentials.serverOptions(this.options.policy.limits.handshakeTimeoutMs);
    for (const s of this.servers) (s.server as https.Server).setSecureContext({ cert: o.cert, key: o.key, ca: o.ca });
  }

  private createHttpServer(): http.Server {
    const common = { requestTimeout: this.options.policy.limits.handshakeTimeoutMs, maxHeaderSize: 16 * 1024 };
    if (this.options.credentials === undefined) return http.createServer(common);
    const server = https.createServer({ ...common, ...this.options.credentials.serverOptions(this.options.policy.limits.handshakeTimeoutMs) });
    server.on("tlsClientError", (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      const a = socket.remoteAddress !== undefined && socket.remotePort !== undefined ? this.accepted.get(addressKey(socket.remoteAddress, socket.remotePort)) : undefined;
      socket.destroy();
      if (a === undefined || a.handshakeReported === true) return;
      a.handshakeReported = true;
      if (err.code === "ERR_TLS_HANDSHAKE_TIMEOUT") this.options.policy.report("closedHandshakeTimeout", `${a.description}: TLS handshake not finished within ${this.options.policy.limits.handshakeTimeoutMs} ms; closing`);
      else this.options.policy.report("failedHandshake", `${a.description}: TLS handshake failed: ${err.message.trim()}; closing`);
      a.raw.destroy();
    });
    return server as unknown as http.Server;
  }

  /**
   * Send one message down the connection `connectionId`, or the open one
   * from ip:port. Never connects: a WebSocket peer is reachable only over
   * the connection it opened. False when there is none.
   */
  send(ip: string, port: number, data: string, connectionId?: number, _from?: ListenSocket, flags?: SendFlags): boolean {
    if (this.stopping) return false;
    let conn = connectionId !== undefined && connectionId >= 0 ? this.connections.get(connectionId) : undefined;
    if (conn !== undefined && !isOpen(conn)) conn = undefined;
    if (conn === undefined) {
      const a = this.accepted.get(addressKey(ip, port))?.conn;
      if (a !== undefined && isOpen(a)) conn = a;
    }
    if (conn === undefined) {
      log("info", "transport", `${this.proto}: no open WebSocket connection from ${formatHostPort(ip, port)}: not sent (a WebSocket client is reached only over the connection it opened)`);
      return false;
    }
    const bytes = Buffer.from(data, "latin1");
    if (!conn.accepted.guard.admitOutput(bytes.length, "message")) return false;
    // RFC 7118 §5: text frames carry UTF-8; anything else goes as binary.
    conn.ws.send(bytes, { binary: !isUtf8(bytes) });
    conn.accepted.guard.onMessage();
    if (flags?.close === true) conn.ws.close(1000);
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const a of this.accepted.values()) this.destroy(a);
    this.accepted.clear();
    this.connections.clear();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.server.close(() => resolve());
            s.server.closeAllConnections();
          }),
      ),
    );
    this.servers.length = 0;
    this.wsServer.close();
  }

  /** A TCP connection to a ws/wss socket: admitted (or refused) and guarded from its first byte. */
  private accept(raw: net.Socket, local: ListenSocket): void {
    if (this.stopping || raw.remoteAddress === undefined || raw.remotePort === undefined) {
      raw.destroy();
      return;
    }
    const remoteIp = normalizeIp(raw.remoteAddress);
    const remotePort = raw.remotePort;
    raw.on("error", (err) => log("dbg", "transport", `${this.proto} connection from ${formatHostPort(remoteIp, remotePort)}: ${err.message}`));
    if (!this.options.policy.admitInbound(remoteIp, `${this.proto} ${formatListenSocket(local)}`)) {
      raw.destroy();
      return;
    }
    const id = takeConnectionId();
    const description = `${this.proto} connection ${id} from ${formatHostPort(remoteIp, remotePort)}`;
    const key = addressKey(remoteIp, remotePort);
    // Declared before the guard, which reaches it only from a timer.
    let accepted: Accepted;
    const guard = this.options.policy.guard(
      {
        describe: () => description,
        queuedOutputBytes: () => (accepted.conn !== undefined ? accepted.conn.ws.bufferedAmount : raw.writableLength),
        destroy: () => this.destroy(accepted),
      },
      "inbound",
      remoteIp,
    );
    const ms = this.options.policy.limits.handshakeTimeoutMs;
    const handshakeTimer = setTimeout(() => {
      if (accepted.conn !== undefined || accepted.handshakeReported === true) return;
      accepted.handshakeReported = true;
      this.options.policy.report("closedHandshakeTimeout", `${description}: WebSocket handshake not done within ${ms} ms; closing`);
      raw.destroy();
    }, ms);
    handshakeTimer.unref();
    accepted = { raw, id, description, guard, local, remoteIp, remotePort, handshakeTimer };
    this.accepted.set(key, accepted);
    raw.once("close", () => {
      clearTimeout(handshakeTimer);
      guard.release();
      if (this.accepted.get(key) === accepted) this.accepted.delete(key);
      const conn = accepted.conn;
      if (conn !== undefined) {
        clearInterval(conn.pingTimer);
        clearTimeout(conn.pongTimer);
        this.connections.delete(conn.id);
        log("dbg", "transport", `${description}: closed`);
      }
    });
  }

  private destroy(a: Accepted): void {
    a.conn?.ws.terminate();
    a.raw.destroy();
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const a = socket.remoteAddress !== undefined && socket.remotePort !== undefined ? this.accepted.get(addressKey(socket.remoteAddress, socket.remotePort)) : undefined;
    if (a === undefined || a.conn !== undefined || this.stopping) {
      socket.destroy();
      return;
    }
    let refusal = handshakeRefusal(req, this.options.settings);
    let tlsInfo: TlsConnectionInfo | undefined;
    if (refusal === undefined && socket instanceof tls.TLSSocket && this.options.credentials !== undefined) {
      try {
        const certificateRefusal = this.options.credentials.refusal(socket);
        if (certificateRefusal !== undefined) refusal = { status: 403, reason: certificateRefusal };
        else tlsInfo = connectionInfo(socket, this.options.credentials.localCertificate);
      } catch (err) {
        refusal = { status: 400, reason: `connection details not readable: ${(err as Error)?.message ?? String(err)}` };
      }
    }
    if (refusal !== undefined) {
      a.handshakeReported = true;
      this.options.policy.report("failedHandshake", `${a.description}: WebSocket handshake refused with ${refusal.status}: ${refusal.reason}; closing`);
      const text = http.STATUS_CODES[refusal.status] ?? "Refused";
      socket.end(`HTTP/1.1 ${refusal.status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
      return;
    }
    this.wsServer.handleUpgrade(req, socket, head, (ws) => this.opened(a, ws, tlsInfo));
  }

  private opened(a: Accepted, ws: WebSocket, tlsInfo: TlsConnectionInfo | undefined): void {
    clearTimeout(a.handshakeTimer);
    if (this.stopping || a.raw.destroyed) {
      ws.terminate();
      return;
    }
    const conn: WsConnection = { id: a.id, ws, accepted: a, ...(tlsInfo !== undefined ? { tls: tlsInfo } : {}) };
    a.conn = conn;
    this.connections.set(conn.id, conn);
    a.guard.onMessage();
    log("dbg", "transport", `${a.description}: WebSocket open on ${formatListenSocket(a.local)}`);
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(conn, toBuffer(data), isBinary));
    ws.on("ping", () => {
      // `ws` answers the ping itself; a peer pinging too often is closed.
      a.guard.onKeepalive();
    });
    ws.on("pong", () => {
      clearTimeout(conn.pongTimer);
      conn.pongTimer = undefined;
      a.guard.onMessage();
    });
    ws.on("error", (err: Error & { code?: string }) => {
      // Protocol errors of the peer (a frame over maxPayload, a bad opcode, an unmasked frame): `ws` closes the connection.
      const what = err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? `message over ${this.options.limits.maxMessageBytes} bytes` : err.message;
      log("warn", "transport", `${a.description}: ${what}; closing`);
    });
    ws.on("close", () => a.raw.destroy());
    conn.pingTimer = setInterval(() => this.ping(conn), this.pingIntervalMs);
    conn.pingTimer.unref();
  }

  /** RFC 6455 §5.5.2: a ping the peer must answer with a pong within the timeout. */
  private ping(conn: WsConnection): void {
    if (!isOpen(conn) || conn.pongTimer !== undefined) return;
    conn.ws.ping();
    conn.pongTimer = setTimeout(() => {
      this.options.policy.report("closedPongTimeout", `${conn.accepted.description}: no pong within ${this.pongTimeoutMs} ms of a ping; closing`);
      this.destroy(conn.accepted);
    }, this.pongTimeoutMs);
    conn.pongTimer.unref();
  }

  private onMessage(conn: WsConnection, bytes: Buffer, _isBinary: boolean): void {
    const a = conn.accepted;
    const data = bytes.toString("latin1");
    if (CRLF_ONLY.test(data)) {
      // A CRLF keep-alive over WebSocket: answered with CRLF, rate-limited like a TCP one.
      if (a.guard.onKeepalive() && a.guard.admitOutput(2, "keep-alive pong")) conn.ws.send("\r\n");
      return;
    }
    a.guard.onMessage();
    const rcv: ReceiveInfo = {
      proto: this.proto,
      srcIp: a.remoteIp,
      srcPort: a.remotePort,
      localIp: a.local.ip,
      localPort: a.local.port,
      connectionId: conn.id,
      ...(conn.tls !== undefined ? { tls: conn.tls } : {}),
    };
    try {
      this.deliver(data, rcv);
    } catch (err) {
      log("err", "transport", `${this.proto}: message handler failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

function isOpen(c: WsConnection): boolean {
  return c.ws.readyState === c.ws.OPEN;
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
