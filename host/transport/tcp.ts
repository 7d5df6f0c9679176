/**
 * TCP listeners and the connection table.
 *
 * - Every connection, accepted or opened by us, gets a numeric id that
 *   travels in ReceiveInfo.connectionId, so that a response goes back on the
 *   connection its request arrived on (RFC 3261 §18.2.2).
 * - Outgoing messages to ip:port reuse any open connection whose remote end
 *   is that address (accepted or opened), else a new connection is opened
 *   (RFC 3261 §18.1.1 "SHOULD use an existing connection").
 * - Each connection has its own StreamFramer (RFC 3261 §18.3: Content-Length
 *   frames messages on a stream). A framing error leaves the stream position
 *   unknown, so the connection is closed.
 * - A CRLFCRLF ping is answered with a single CRLF pong (RFC 5626 §3.5.1).
 * - What a connection may cost (idle and message deadlines, output queue,
 *   keep-alive rate, inbound / per-address / outbound connection counts) is
 *   decided by the stream connection policy (connection-policy.ts), which
 *   every stream transport shares; this file only reports to it.
 * - TLS (RFC 3261 §26.2.1) is this same transport over a TLS socket
 *   (`proto: "tls"`, credentials from tls.ts): an accepted connection is
 *   counted and guarded from its first byte, and one whose handshake has
 *   not finished within the policy's handshake timeout is closed, so a
 *   client that never completes it holds nothing for long.
 */
import type { SendFlags } from "../modules/sendopts.js";
import net from "node:net";
import tls from "node:tls";
import type { ListenSocket, ReceiveInfo, TlsConnectionInfo } from "../core/context.js";
import { log } from "../core/log.js";
import { StreamFramer } from "../sip/framing.js";
import type { ParseLimits } from "../sip/parser.js";
import { formatHostPort, formatListenSocket, isWildcardIp, listenStream, normalizeIp } from "./listen-socket.js";
import type { MessageHandler } from "./udp.js";
import { ConnectionPolicy, takeConnectionId, type ConnectionGuard } from "./connection-policy.js";
import { connectionInfo, type TlsCredentials } from "./tls.js";

export interface TcpOptions {
  /** The limits every connection is held to. */
  readonly policy: ConnectionPolicy;
  /** Message size limit the framer enforces per connection. */
  readonly limits: ParseLimits;
  /** TLS: the certificate presented and the peers trusted; plain TCP without. */
  readonly credentials?: TlsCredentials;
}

/** An accepted TLS connection whose handshake is under way. */
interface PendingHandshake {
  readonly raw: net.Socket;
  /** The socket the guard measures and closes: the raw one, the TLS one once the handshake is done. */
  guarded: net.Socket;
  readonly id: number;
  readonly description: string;
  readonly guard: ConnectionGuard;
  readonly local: ListenSocket;
  readonly remoteIp: string;
  readonly remotePort: number;
}

/** An open connection as `ksr ctl tcp list` shows it. */
export interface TcpConnectionEntry {
  readonly id: number;
  /** ip:port of the peer. */
  readonly remote: string;
  /** The listen socket it belongs to, tcp:ip:port. */
  readonly local: string;
  readonly direction: "inbound" | "outbound";
}

interface TcpConnection {
  readonly id: number;
  readonly socket: net.Socket;
  readonly framer: StreamFramer;
  readonly remoteIp: string;
  readonly remotePort: number;
  /** The listen socket this connection belongs to (accepted on it, or opened on its behalf). */
  readonly local: ListenSocket;
  readonly outbound: boolean;
  readonly guard: ConnectionGuard;
  /** TLS: set once the handshake is done; messages are delivered only after it. */
  tls?: TlsConnectionInfo;
}


function addressKey(ip: string, port: number): string {
  return `${normalizeIp(ip)}|${port}`;
}

export class TcpTransport {
  /** "tcp", or "tls" when the options carry credentials. */
  private readonly proto: "tcp" | "tls";
  private readonly servers: { server: net.Server; bound: ListenSocket }[] = [];
  private readonly connections = new Map<number, TcpConnection>();
  private readonly byAddress = new Map<string, TcpConnection>();
  private stopping = false;
  /** Accepted TLS connections still in their handshake, by remote address. */
  private readonly handshaking = new Map<string, PendingHandshake>();
  private tlsServer: tls.Server | undefined;
  private tlsServerGeneration = -1;

  constructor(
    private readonly listen: readonly ListenSocket[],
    private readonly options: TcpOptions,
    private readonly deliver: MessageHandler,
  ) {
    this.proto = options.credentials !== undefined ? "tls" : "tcp";
  }

  get bound(): ListenSocket[] {
    return this.servers.map((s) => s.bound);
  }

  /** Open connections, TLS ones still in their handshake included. */
  get connectionCount(): number {
    return this.connections.size + this.handshaking.size;
  }

  /** The open connections (`ksr ctl tcp list`). */
  connectionList(): TcpConnectionEntry[] {
    return [...this.connections.values()]
      .filter((c) => !c.socket.destroyed)
      .map((c) => ({ id: c.id, remote: `${formatHostPort(c.remoteIp, c.remotePort)}`, local: formatListenSocket(c.local), direction: c.outbound ? "outbound" : "inbound" }));
  }

  /** Remote address of an open connection, or undefined. */
  connectionInfo(id: number): { remoteIp: string; remotePort: number; local: ListenSocket } | undefined {
    const c = this.connections.get(id);
    return c && !c.socket.destroyed ? { remoteIp: c.remoteIp, remotePort: c.remotePort, local: c.local } : undefined;
  }

  async start(): Promise<ListenSocket[]> {
    for (const config of this.listen) {
      const server = net.createServer((socket) => this.accept(socket, entry.bound));
      const entry = { server, bound: config };
      server.on("error", (err) => log("err", "transport", `${this.proto} ${formatListenSocket(entry.bound)}: ${err.message}`));
      entry.bound = await listenStream(server, config, this.proto);
      this.servers.push(entry);
    }
    return this.bound;
  }

  /**
   * Write a message. `connectionId` names the connection to use first
   * (the one a request came in on); if it is gone, an open connection to
   * ip:port is used, else one is opened from `from` (or the first listen
   * socket of the destination's family). Returns false when no connection
   * can be had; errors after that point are logged. `flags.noConnect`: no
   * new connection is opened (Kamailio SND_F_FORCE_CON_REUSE), the send
   * fails instead; `flags.close`: the connection is ended once the message
   * is written (SND_F_CON_CLOSE); `flags.onConnectFailed`: told when a
   * connection opened for this message fails before it is established.
   */
  send(ip: string, port: number, data: string, connectionId?: number, from?: ListenSocket, flags?: SendFlags): boolean {
    if (this.stopping) return false;
    let conn = connectionId !== undefined && connectionId >= 0 ? this.connections.get(connectionId) : undefined;
    if (conn && !isWritable(conn)) conn = undefined;
    if (!conn) {
      const known = this.byAddress.get(addressKey(ip, port));
      if (known && isWritable(known)) conn = known;
    }
    if (!conn && flags?.noConnect === true) {
      log("info", "transport", `${this.proto}: no open connection to ${formatHostPort(ip, port)} and the message may not open one: not sent`);
      return false;
    }
    if (!conn) {
      conn = this.connect(ip, port, from);
      if (conn && flags?.onConnectFailed !== undefined) this.reportConnectFailure(conn.socket, flags.onConnectFailed);
    }
    if (!conn) return false;
    const bytes = Buffer.from(data, "latin1");
    if (!conn.guard.admitOutput(bytes.length, "message")) return false;
    conn.socket.write(bytes);
    conn.guard.onMessage();
    // end(): the queued bytes are flushed first, then our side closes.
    if (flags?.close === true) conn.socket.end();
    return true;
  }

  /** Calls `failed` once if `socket` errs before it is connected (and, for TLS, before its handshake is done). */
  private reportConnectFailure(socket: net.Socket, failed: () => void): void {
    const established = this.options.credentials === undefined ? "connect" : "secureConnect";
    const onError = (): void => {
      socket.off(established, onEstablished);
      failed();
    };
    const onEstablished = (): void => {
      socket.off("error", onError);
    };
    socket.once("error", onError);
    socket.once(established, onEstablished);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.connections.values()) {
      c.socket.destroy();
      c.guard.release();
    }
    for (const p of this.handshaking.values()) {
      p.raw.destroy();
      p.guard.release();
    }
    this.handshaking.clear();
    this.connections.clear();
    this.byAddress.clear();
    await Promise.all(
      this.servers.map((s) => new Promise<void>((resolve) => s.server.close(() => resolve()))),
    );
    this.servers.length = 0;
  }

  private accept(socket: net.Socket, local: ListenSocket): void {
    if (this.stopping || socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy();
      return;
    }
    const remoteIp = normalizeIp(socket.remoteAddress);
    if (!this.options.policy.admitInbound(remoteIp, `${this.proto} ${formatListenSocket(local)}`)) {
      // An error after the reset is of no interest; without a listener it would be thrown.
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    if (this.options.credentials === undefined) {
      this.register(socket, remoteIp, socket.remotePort, local, false);
      return;
    }
    this.startHandshake(socket, remoteIp, socket.remotePort, local);
  }

  /**
   * An admitted connection to a TLS listen socket: counted and guarded from
   * its first byte, its handshake run by a tls.Server that never listens
   * itself (it is handed the socket). Only once the handshake is done (and
   * the client certificate accepted, in "require" mode) does it become a
   * connection messages are read from.
   */
  private startHandshake(raw: net.Socket, remoteIp: string, remotePort: number, local: ListenSocket): void {
    const id = takeConnectionId();
    const description = `tls connection ${id} from ${formatHostPort(remoteIp, remotePort)}`;
    // Declared before the guard, which reaches it only once it fires (a timer).
    let pending: PendingHandshake;
    const guard = this.options.policy.guard(
      { describe: () => description, queuedOutputBytes: () => pending.guarded.writableLength, destroy: () => pending.guarded.destroy() },
      "inbound",
      remoteIp,
    );
    const key = addressKey(remoteIp, remotePort);
    pending = { raw, guarded: raw, id, description, guard, local, remoteIp, remotePort };
    this.handshaking.set(key, pending);
    raw.on("error", () => {});
    raw.once("close", () => {
      if (this.handshaking.get(key) === pending) {
        log("dbg", "transport", `${description}: closed by the peer during the TLS handshake`);
        this.handshaking.delete(key);
        guard.release();
      }
    });
    this.handshakeServer().emit("connection", raw);
  }

  /** The tls.Server of the current credentials (rebuilt after a reload: new connections get the new certificate). */
  private handshakeServer(): tls.Server {
    const credentials = this.options.credentials!;
    if (this.tlsServer !== undefined && this.tlsServerGeneration === credentials.generation) return this.tlsServer;
    const server = tls.createServer(credentials.serverOptions(this.options.policy.limits.handshakeTimeoutMs));
    server.on("secureConnection", (socket) => this.handshakeDone(socket));
    server.on("tlsClientError", (err: Error & { code?: string }, socket) => {
      const pending = this.takePending(socket);
      socket.destroy();
      // Already gone: the peer closed the connection during the handshake (logged then).
      if (pending === undefined) return;
      const what = pending.description;
      if (err.code === "ERR_TLS_HANDSHAKE_TIMEOUT") {
        this.options.policy.report("closedHandshakeTimeout", `${what}: TLS handshake not finished within ${this.options.policy.limits.handshakeTimeoutMs} ms; closing`);
      } else {
        this.options.policy.report("failedHandshake", `${what}: TLS handshake failed: ${err.message.trim()}; closing`);
      }
      pending.guard.release();
    });
    this.tlsServer = server;
    this.tlsServerGeneration = credentials.generation;
    return server;
  }

  private takePending(socket: tls.TLSSocket): PendingHandshake | undefined {
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) return undefined;
    const key = addressKey(socket.remoteAddress, socket.remotePort);
    const pending = this.handshaking.get(key);
    this.handshaking.delete(key);
    return pending;
  }

  private handshakeDone(socket: tls.TLSSocket): void {
    const pending = this.takePending(socket);
    if (pending === undefined || this.stopping) {
      socket.destroy();
      pending?.guard.release();
      return;
    }
    // What the peer sent must never end the process: anything here that
    // fails closes its connection only.
    let refusal: string | undefined;
    let info: TlsConnectionInfo | undefined;
    try {
      refusal = this.options.credentials!.refusal(socket);
      if (refusal === undefined) info = connectionInfo(socket, this.options.credentials!.localCertificateFor(socket.servername));
    } catch (err) {
      refusal = `connection details not readable: ${(err as Error)?.message ?? String(err)}`;
    }
    if (refusal !== undefined || info === undefined) {
      this.options.policy.report("failedHandshake", `${pending.description}: TLS handshake failed: ${refusal}; closing`);
      socket.destroy();
      pending.guard.release();
      return;
    }
    // From now on the guard measures what is queued on the TLS socket (what we write) and closes that.
    pending.guarded = socket;
    const conn = this.register(socket, pending.remoteIp, pending.remotePort, pending.local, false, pending);
    conn.tls = info;
    this.logNegotiated(conn);
  }

  private logNegotiated(conn: TcpConnection): void {
    const t = conn.tls!;
    const peer = t.peer === undefined ? "peer without certificate" : `peer ${t.peer.subject} (${t.peerVerified ? "verified" : "not verified"})`;
    log("dbg", "transport", `tls connection ${conn.id}: ${t.version} ${t.cipher}, ${peer}`);
  }

  private connect(ip: string, port: number, from?: ListenSocket): TcpConnection | undefined {
    const family = net.isIP(ip);
    if (family === 0) return undefined;
    const local = from ?? this.bound.find((b) => net.isIP(b.ip) === family || isWildcardIp(b.ip));
    if (!local) {
      log("err", "transport", `${this.proto}: no ${this.proto} listen socket for IPv${family} destination ${formatHostPort(ip, port)}`);
      return undefined;
    }
    if (!this.options.policy.admitOutbound(`${this.proto}:${formatHostPort(ip, port)}`)) return undefined;
    // Bind the outgoing side to the listen address so the peer sees the
    // address our Via names (the port stays ephemeral; replies come back on
    // this connection, RFC 3261 §18.2.2).
    const localAddress = isWildcardIp(local.ip) ? undefined : local.ip;
    const credentials = this.options.credentials;
    const socket =
      credentials === undefined
        ? net.connect({ host: ip, port, localAddress })
        : // tls.connect takes socket.connect()'s options too (localAddress), which its typings omit.
          tls.connect({ ...credentials.clientOptions(ip, port), localAddress } as tls.ConnectionOptions);
    socket.on("error", (err) => log("warn", "transport", `${this.proto} connection to ${formatHostPort(ip, port)}: ${err.message}`));
    return this.register(socket, normalizeIp(ip), port, local, true);
  }

  /** `handshake`: an accepted TLS connection keeps the id and guard it had during its handshake. */
  private register(socket: net.Socket, remoteIp: string, remotePort: number, local: ListenSocket, outbound: boolean, handshake?: PendingHandshake): TcpConnection {
    const id = handshake?.id ?? takeConnectionId();
    const description = handshake?.description ?? `${this.proto} connection ${id} ${outbound ? "to" : "from"} ${formatHostPort(remoteIp, remotePort)}`;
    const guard =
      handshake?.guard ??
      this.options.policy.guard(
        {
          describe: () => description,
          queuedOutputBytes: () => socket.writableLength,
          destroy: () => socket.destroy(),
        },
        outbound ? "outbound" : "inbound",
        remoteIp,
      );
    const conn: TcpConnection = {
      id,
      socket,
      framer: new StreamFramer(this.options.limits),
      remoteIp,
      remotePort,
      local,
      outbound,
      guard,
    };
    const key = addressKey(remoteIp, remotePort);
    this.connections.set(conn.id, conn);
    this.byAddress.set(key, conn);
    socket.setNoDelay(true);
    if (outbound && socket instanceof tls.TLSSocket) this.watchOutboundHandshake(conn, socket, description);
    else if (!outbound) socket.on("error", (err) => log("dbg", "transport", `${description}: ${err.message}`));
    socket.on("close", () => {
      guard.release();
      this.connections.delete(conn.id);
      if (this.byAddress.get(key) === conn) this.byAddress.delete(key);
    });
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    return conn;
  }

  /**
   * A connection we open to a TLS next hop must finish its handshake within
   * the policy's handshake timeout. A refused one (the next hop's
   * certificate expired, untrusted, for another name) is logged where the
   * connection is opened, with the reason, and closed; messages written
   * before the handshake was done are dropped with it.
   */
  private watchOutboundHandshake(conn: TcpConnection, socket: tls.TLSSocket, description: string): void {
    const ms = this.options.policy.limits.handshakeTimeoutMs;
    const timer = setTimeout(() => {
      this.options.policy.report("closedHandshakeTimeout", `${description}: TLS handshake not finished within ${ms} ms; closing`);
      socket.destroy();
    }, ms);
    timer.unref();
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      try {
        conn.tls = connectionInfo(socket, this.options.credentials?.localCertificate);
      } catch (err) {
        // The next hop's certificate must not end the process.
        log("warn", "transport", `${description}: connection details not readable: ${(err as Error)?.message ?? String(err)}; closing`);
        socket.destroy();
        return;
      }
      this.logNegotiated(conn);
    });
    socket.once("close", () => clearTimeout(timer));
    socket.once("error", () => {
      if (conn.tls === undefined) this.options.policy.counters.failedHandshake++;
    });
  }

  private onData(conn: TcpConnection, chunk: Buffer): void {
    let items;
    try {
      items = conn.framer.push(chunk);
    } catch (err) {
      log("err", "transport", `${this.proto} connection ${conn.id}: framer failed: ${(err as Error)?.message ?? String(err)}; closing`);
      conn.socket.destroy();
      return;
    }
    let completedMessage = false;
    for (const item of items) {
      if (conn.socket.destroyed) return;
      switch (item.kind) {
        case "keepalive":
          // RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong, as
          // often as the policy allows (a ping flood closes the connection).
          if (conn.guard.onKeepalive() && conn.guard.admitOutput(2, "keep-alive pong")) conn.socket.write("\r\n");
          break;
        case "error":
          log("warn", "transport", `${this.proto} connection ${conn.id} from ${formatHostPort(conn.remoteIp, conn.remotePort)}: ${item.error}; closing`);
          conn.socket.destroy();
          return;
        case "message": {
          completedMessage = true;
          conn.guard.onMessage();
          const rcv: ReceiveInfo = {
            proto: this.proto,
            srcIp: conn.remoteIp,
            srcPort: conn.remotePort,
            localIp: conn.local.ip,
            localPort: conn.local.port,
            connectionId: conn.id,
            ...(conn.tls !== undefined ? { tls: conn.tls } : {}),
          };
          try {
            this.deliver(item.data, rcv);
          } catch (err) {
            log("err", "transport", `${this.proto}: message handler failed: ${(err as Error)?.message ?? String(err)}`);
          }
          break;
        }
      }
    }
    if (!conn.socket.destroyed) conn.guard.onFramed(conn.framer.partialBytes, completedMessage);
  }
}

function isWritable(c: TcpConnection): boolean {
  return !c.socket.destroyed && c.socket.writable;
}
