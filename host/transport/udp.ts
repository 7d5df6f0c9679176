/**
 * One UDP listen socket. A datagram is one SIP message (RFC 3261 §18.3 does
 * not apply to UDP: the datagram boundary frames the message).
 */
import dgram from "node:dgram";
import { lookup, type LookupOneOptions } from "node:dns";
import { isIP } from "node:net";
import type { ListenSocket, ReceiveInfo } from "../core/context.js";
import { log } from "../core/log.js";
import { formatListenSocket, formatHostPort, normalizeIp } from "./listen-socket.js";

/** Receive buffer asked for each UDP socket (see enlargeReceiveBuffer). */
const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/** Largest UDP payload over IPv4 (65535 − 8 byte UDP header − 20 byte IP header). */
export const MAX_UDP_PAYLOAD = 65507;

export type MessageHandler = (data: string, rcv: ReceiveInfo) => void;

export class UdpListener {
  private readonly socket: dgram.Socket;
  private boundSocket: ListenSocket;
  private closed = false;

  constructor(
    config: ListenSocket,
    private readonly maxMessageBytes: number,
    private readonly deliver: MessageHandler,
  ) {
    this.boundSocket = config;
    this.socket = dgram.createSocket({ type: isIP(config.ip) === 6 ? "udp6" : "udp4", lookup: literalLookup });
    this.socket.on("message", (buf, rinfo) => this.onDatagram(buf, rinfo));
    this.socket.on("error", (err) => log("err", "transport", `udp ${formatListenSocket(this.boundSocket)}: ${err.message}`));
  }

  /** The socket as bound (port 0 replaced by the port the OS chose). */
  get bound(): ListenSocket {
    return this.boundSocket;
  }

  /** IP family of this socket: 4 or 6. */
  get family(): number {
    return isIP(this.boundSocket.ip);
  }

  start(): Promise<ListenSocket> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.socket.once("error", onError);
      this.socket.bind(this.boundSocket.port, this.boundSocket.ip, () => {
        this.socket.off("error", onError);
        this.enlargeReceiveBuffer();
        this.boundSocket = { proto: "udp", ip: this.boundSocket.ip, port: this.socket.address().port };
        resolve(this.boundSocket);
      });
    });
  }

  /**
   * A burst of datagrams arriving while the main thread runs a route waits
   * in the kernel's receive buffer; the default (~200 KB) overflows at a
   * few thousand requests per second and every overflow costs a
   * retransmission (measured with sipp: retransmissions equalled receive
   * buffer errors). Ask for 4 MiB; the kernel caps it at net.core.rmem_max.
   */
  private enlargeReceiveBuffer(): void {
    try {
      this.socket.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
    } catch (err) {
      log("warn", "transport", `udp ${formatListenSocket(this.boundSocket)}: cannot enlarge receive buffer: ${(err as Error).message}`);
    }
  }

  /**
   * Queue one datagram. Returns false when it cannot be sent at all (closed
   * socket, not an IP literal of this socket's family, larger than a UDP
   * payload can be); asynchronous send errors are logged.
   *
   * RFC 3261 §18.1.1 asks a client to switch to a congestion-controlled
   * transport for requests larger than the path MTU minus 200 bytes (1300
   * bytes when the MTU is unknown). Changing the transport of a statelessly
   * forwarded request would also change the Via we add and the transport the
   * next hop sees, so, like Kamailio with its default `udp_mtu = 0`, we send
   * large requests and replies over UDP as they are (IP fragmentation
   * carries them) and only refuse what no datagram can hold.
   */
  send(ip: string, port: number, data: string): boolean {
    if (this.closed) return false;
    if (isIP(ip) !== this.family) return false;
    const buf = Buffer.from(data, "latin1");
    if (buf.length > MAX_UDP_PAYLOAD) {
      log("err", "transport", `udp: ${buf.length} bytes to ${formatHostPort(ip, port)} exceed a UDP datagram; not sent`);
      return false;
    }
    this.socket.send(buf, port, ip, afterSend);
    return true;
  }

  stop(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onDatagram(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (buf.length > this.maxMessageBytes) {
      log("warn", "transport", `udp: dropped ${buf.length}-byte datagram from ${formatHostPort(rinfo.address, rinfo.port)} (limit ${this.maxMessageBytes})`);
      return;
    }
    if (isKeepalive(buf)) return;
    if (buf[0]! <= 3) {
      // STUN (RFC 5389) keepalives of RFC 5626 §4.4.1 share the port; RFC 7983
      // demultiplexes them by a first byte of 0..3. We do not run STUN.
      log("dbg", "transport", `udp: ignored non-SIP datagram from ${formatHostPort(rinfo.address, rinfo.port)}`);
      return;
    }
    const rcv: ReceiveInfo = {
      proto: "udp",
      srcIp: normalizeIp(rinfo.address),
      srcPort: rinfo.port,
      localIp: this.boundSocket.ip,
      localPort: this.boundSocket.port,
      connectionId: -1,
    };
    try {
      this.deliver(buf.toString("latin1"), rcv);
    } catch (err) {
      log("err", "transport", `udp: message handler failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

/**
 * The address lookup of our sockets. send() only takes IP literals (checked
 * above), and Node's default lookup answers those through dns.lookup and a
 * process.nextTick per datagram; this answers them at once, so the
 * datagram is handed to the kernel inside send(). Anything else (never
 * passed by this module) still goes to dns.lookup.
 */
function literalLookup(
  address: string,
  options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const literal = isIP(address);
  if (literal !== 0) {
    callback(null, address, literal);
    return;
  }
  lookup(address, typeof options === "number" ? { family: options } : options, callback);
}

/** One callback for every send (no closure per datagram); Node's error message names the destination ("send EPERM 192.0.2.1:5060"). */
function afterSend(err: Error | null): void {
  if (err) log("warn", "transport", `udp send failed: ${err.message}`);
}

/** Datagrams of only CR/LF/space: the CRLF pings many user agents send over UDP. */
function isKeepalive(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b !== 0x0d && b !== 0x0a && b !== 0x20) return false;
  }
  return true;
}
