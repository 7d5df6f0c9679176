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
 */
import type { SendFlags } from "../modules/sendopts.js";
import net from "node:net";
import type { ListenSocket, ReceiveInfo } from "../core/context.js";
import { log } from "../core/log.js";
import { StreamFramer } from "../sip/framing.js";
import type { ParseLimits } from "../sip/parser.js";
import { formatHostPort, formatListenSocket, isWildcardIp, normalizeIp } from "./listen-socket.js";
import type { MessageHandler } from "./udp.js";
import { ConnectionPolicy, type ConnectionGuard } from "./connection-policy.js";

export interface TcpOptions {
  /** The limits every connection is held to. */
  readonly policy: ConnectionPolicy;
  /** Message size limit the framer enforces per connection. */
  readonly limits: ParseLimits;
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
}

let nextConnectionId = 1;

function addressKey(ip: string, port: number): string {
  return `${normalizeIp(ip)}|${port}`;
}

export class TcpTransport {
  private readonly servers: { server: net.Server; bound: ListenSocket }[] = [];
  private readonly connections = new Map<number, TcpConnection>();
  private readonly byAddress = new Map<string, TcpConnection>();
  private stopping = false;

  constructor(
    private readonly listen: readonly ListenSocket[],
    private readonly options: TcpOptions,
    private readonly deliver: MessageHandler,
  ) {}

  get bound(): ListenSocket[] {
    return this.servers.map((s) => s.bound);
  }

  get connectionCount(): number {
    return this.connections.size;
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
      server.on("error", (err) => log("err", "transport", `tcp ${formatListenSocket(entry.bound)}: ${err.message}`));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: config.ip, port: config.port, ipv6Only: config.ip === "::" ? false : undefined }, () => {
          server.off("error", reject);
          const addr = server.address() as net.AddressInfo;
          entry.bound = { proto: "tcp", ip: config.ip, port: addr.port };
          resolve();
        });
      });
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
   * is written (SND_F_CON_CLOSE).
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
      log("info", "transport", `tcp: no open connection to ${formatHostPort(ip, port)} and the message may not open one: not sent`);
      return false;
    }
    if (!conn) conn = this.connect(ip, port, from);
    if (!conn) return false;
    const bytes = Buffer.from(data, "latin1");
    if (!conn.guard.admitOutput(bytes.length, "message")) return false;
    conn.socket.write(bytes);
    conn.guard.onMessage();
    // end(): the queued bytes are flushed first, then our side closes.
    if (flags?.close === true) conn.socket.end();
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.connections.values()) {
      c.socket.destroy();
      c.guard.release();
    }
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
    if (!this.options.policy.admitInbound(remoteIp, `tcp ${formatListenSocket(local)}`)) {
      // An error after the reset is of no interest; without a listener it would be thrown.
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    this.register(socket, remoteIp, socket.remotePort, local, false);
  }

  private connect(ip: string, port: number, from?: ListenSocket): TcpConnection | undefined {
    const family = net.isIP(ip);
    if (family === 0) return undefined;
    const local = from ?? this.bound.find((b) => net.isIP(b.ip) === family || isWildcardIp(b.ip));
    if (!local) {
      log("err", "transport", `tcp: no tcp listen socket for IPv${family} destination ${formatHostPort(ip, port)}`);
      return undefined;
    }
    if (!this.options.policy.admitOutbound(`tcp:${formatHostPort(ip, port)}`)) return undefined;
    // Bind the outgoing side to the listen address so the peer sees the
    // address our Via names (the port stays ephemeral; replies come back on
    // this connection, RFC 3261 §18.2.2).
    const socket = net.connect({
      host: ip,
      port,
      localAddress: isWildcardIp(local.ip) ? undefined : local.ip,
    });
    socket.on("error", (err) => log("warn", "transport", `tcp connection to ${formatHostPort(ip, port)}: ${err.message}`));
    return this.register(socket, normalizeIp(ip), port, local, true);
  }

  private register(socket: net.Socket, remoteIp: string, remotePort: number, local: ListenSocket, outbound: boolean): TcpConnection {
    const id = nextConnectionId++;
    const description = `tcp connection ${id} ${outbound ? "to" : "from"} ${formatHostPort(remoteIp, remotePort)}`;
    const guard = this.options.policy.guard(
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
    if (!outbound) {
      socket.on("error", (err) => log("dbg", "transport", `${description}: ${err.message}`));
    }
    socket.on("close", () => {
      guard.release();
      this.connections.delete(conn.id);
      if (this.byAddress.get(key) === conn) this.byAddress.delete(key);
    });
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    return conn;
  }

  private onData(conn: TcpConnection, chunk: Buffer): void {
    let items;
    try {
      items = conn.framer.push(chunk);
    } catch (err) {
      log("err", "transport", `tcp connection ${conn.id}: framer failed: ${(err as Error)?.message ?? String(err)}; closing`);
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
          log("warn", "transport", `tcp connection ${conn.id} from ${formatHostPort(conn.remoteIp, conn.remotePort)}: ${item.error}; closing`);
          conn.socket.destroy();
          return;
        case "message": {
          completedMessage = true;
          conn.guard.onMessage();
          const rcv: ReceiveInfo = {
            proto: "tcp",
            srcIp: conn.remoteIp,
            srcPort: conn.remotePort,
            localIp: conn.local.ip,
            localPort: conn.local.port,
            connectionId: conn.id,
          };
          try {
            this.deliver(item.data, rcv);
          } catch (err) {
            log("err", "transport", `tcp: message handler failed: ${(err as Error)?.message ?? String(err)}`);
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
