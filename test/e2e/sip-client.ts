/**
 * A small SIP test peer for end-to-end tests: UDP and TCP, sends raw text,
 * awaits messages with a timeout. It frames TCP by Content-Length itself
 * (independently of the server's framer) and reads messages with plain
 * string operations, so that tests do not check the server with its own code.
 * Everything binds to 127.0.0.1.
 */
import dgram from "node:dgram";
import net from "node:net";
import { randomBytes } from "node:crypto";

export const LOCALHOST = "127.0.0.1";
export const DEFAULT_WAIT_MS = 2000;

export interface Received {
  readonly data: string;
  readonly fromIp: string;
  readonly fromPort: number;
}

/** Queue of received items with promise-based waiting. */
class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(timeoutMs: number, what: string): Promise<T> {
    const ready = this.items.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<T>((resolve, reject) => {
      const waiter = (item: T) => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves with what arrives within `ms`, or undefined. */
  async poll(ms: number): Promise<T | undefined> {
    try {
      return await this.next(ms, "item");
    } catch {
      return undefined;
    }
  }

  get pending(): number {
    return this.items.length;
  }
}

export class UdpPeer {
  private readonly inbox = new Inbox<Received>();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {
    socket.on("message", (buf, rinfo) => this.inbox.push({ data: buf.toString("latin1"), fromIp: rinfo.address, fromPort: rinfo.port }));
  }

  static open(): Promise<UdpPeer> {
    const socket = dgram.createSocket("udp4");
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, LOCALHOST, () => resolve(new UdpPeer(socket, socket.address().port)));
    });
  }

  readonly ip = LOCALHOST;

  send(text: string, port: number, ip = LOCALHOST): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(Buffer.from(text, "latin1"), port, ip, (err) => (err ? reject(err) : resolve())),
    );
  }

  next(timeoutMs = DEFAULT_WAIT_MS): Promise<Received> {
    return this.inbox.next(timeoutMs, `UDP message on port ${this.port}`);
  }

  /** What arrives within `ms`, or undefined (to assert that nothing was sent). */
  poll(ms: number): Promise<Received | undefined> {
    return this.inbox.poll(ms);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Splits a byte stream into SIP messages by Content-Length; bare CRLFs are reported as "\r\n" items. */
class TestStreamFramer {
  private buffer = "";

  push(chunk: string): string[] {
    this.buffer += chunk;
    const out: string[] = [];
    for (let guard = 0; guard < 10_000; guard++) {
      if (this.buffer.startsWith("\r\n")) {
        out.push("\r\n");
        this.buffer = this.buffer.slice(2);
        continue;
      }
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) break;
      const head = this.buffer.slice(0, end);
      const m = /\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (this.buffer.length < total) break;
      out.push(this.buffer.slice(0, total));
      this.buffer = this.buffer.slice(total);
    }
    return out;
  }
}

export class TcpPeer {
  private readonly inbox = new Inbox<string>();
  private readonly framer = new TestStreamFramer();
  closed = false;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk) => {
      for (const item of this.framer.push(chunk.toString("latin1"))) this.inbox.push(item);
    });
    socket.on("error", () => {});
    this.closedPromise = new Promise((resolve) =>
      socket.on("close", () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  /** Connect to a server. */
  static connect(port: number, ip = LOCALHOST): Promise<TcpPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: ip, port }, () => resolve(new TcpPeer(socket)));
      socket.once("error", reject);
    });
  }

  /** Wrap an accepted socket (see TcpListenerPeer). */
  static wrap(socket: net.Socket): TcpPeer {
    return new TcpPeer(socket);
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(Buffer.from(text, "latin1"), (err) => (err ? reject(err) : resolve())));
  }

  /** Next SIP message or CRLF item. */
  next(timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    return this.inbox.next(timeoutMs, "TCP message");
  }

  poll(ms: number): Promise<string | undefined> {
    return this.inbox.poll(ms);
  }

  /** Resolves when the server closed the connection; rejects after timeoutMs. */
  waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error("connection still open")), timeoutMs)),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A TCP listening peer, for requests the server forwards over TCP. */
export class TcpListenerPeer {
  private readonly accepted = new Inbox<TcpPeer>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static open(): Promise<TcpListenerPeer> {
    return new Promise((resolve, reject) => {
      let peer: TcpListenerPeer | undefined;
      const server = net.createServer((socket) => peer?.accepted.push(TcpPeer.wrap(socket)));
      server.once("error", reject);
      server.listen(0, LOCALHOST, () => {
        peer = new TcpListenerPeer(server, (server.address() as net.AddressInfo).port);
        resolve(peer);
      });
    });
  }

  nextConnection(timeoutMs = DEFAULT_WAIT_MS): Promise<TcpPeer> {
    return this.accepted.next(timeoutMs, "TCP connection");
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------- messages

export function randomToken(): string {
  return randomBytes(6).toString("hex");
}

export interface RequestSpec {
  method?: string;
  uri?: string;
  /** Transport in the Via (UDP/TCP). */
  transport?: "UDP" | "TCP";
  /** sent-by host and port of the top Via. */
  viaHost?: string;
  viaPort?: number;
  /** Extra Via params, e.g. ";rport". */
  viaParams?: string;
  branch?: string;
  callId?: string;
  cseq?: number;
  toTag?: string;
  maxForwards?: number;
  /** Extra header lines without CRLF. */
  headers?: string[];
  body?: string;
}

export function buildRequest(spec: RequestSpec = {}): string {
  const method = spec.method ?? "OPTIONS";
  const body = spec.body ?? "";
  const lines = [
    `${method} ${spec.uri ?? "sip:service@127.0.0.1"} SIP/2.0`,
    `Via: SIP/2.0/${spec.transport ?? "UDP"} ${spec.viaHost ?? LOCALHOST}:${spec.viaPort ?? 5999};branch=${spec.branch ?? "z9hG4bK" + randomToken()}${spec.viaParams ?? ""}`,
    `Max-Forwards: ${spec.maxForwards ?? 70}`,
    `From: <sip:alice@example.test>;tag=${randomToken()}`,
    `To: <sip:service@example.test>${spec.toTag ? `;tag=${spec.toTag}` : ""}`,
    `Call-ID: ${spec.callId ?? randomToken() + "@test"}`,
    `CSeq: ${spec.cseq ?? 1} ${method}`,
    ...(spec.headers ?? []),
    `Content-Length: ${Buffer.byteLength(body, "latin1")}`,
  ];
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

/** Status code of a response text, or 0 for a request. */
export function statusOf(text: string): number {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(text);
  return m ? Number(m[1]) : 0;
}

export function reasonOf(text: string): string {
  const m = /^SIP\/2\.0 \d{3} ([^\r\n]*)\r\n/.exec(text);
  return m ? m[1]! : "";
}

export function startLineOf(text: string): string {
  return text.slice(0, text.indexOf("\r\n"));
}

/** Values of every header field with this name (full name, case-insensitive), in order. */
export function headerValues(text: string, name: string): string[] {
  const head = text.slice(0, text.indexOf("\r\n\r\n"));
  const out: string[] = [];
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name.toLowerCase()) out.push(line.slice(colon + 1).trim());
  }
  return out;
}

export function headerValue(text: string, name: string): string | undefined {
  return headerValues(text, name)[0];
}

/** Build a response to a request text: its Vias (all), From, To (+tag), Call-ID, CSeq. */
export function buildResponseTo(request: string, status: number, reason: string, extraVias: string[] = []): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of extraVias) lines.push(`Via: ${v}`);
  for (const v of headerValues(request, "via")) lines.push(`Via: ${v}`);
  lines.push(`From: ${headerValue(request, "from")}`);
  const to = headerValue(request, "to")!;
  lines.push(`To: ${to.includes(";tag=") ? to : to + ";tag=" + randomToken()}`);
  lines.push(`Call-ID: ${headerValue(request, "call-id")}`);
  lines.push(`CSeq: ${headerValue(request, "cseq")}`);
  lines.push("Content-Length: 0");
  return lines.join("\r\n") + "\r\n\r\n";
}

/**
 * A UDP peer that answers every OPTIONS with 200 (RFC 3261 §8.2.6), standing
 * in for a dispatcher destination in probing tests. `received` counts
 * distinct requests by Call-ID: a retransmission (timer E) is not another ping.
 */
export async function optionsPeer(port = 0): Promise<{ socket: dgram.Socket; port: number; received: () => number }> {
  const socket = dgram.createSocket("udp4");
  const callIds = new Set<string>();
  socket.on("message", (data, rinfo) => {
    const text = data.toString("latin1");
    if (!text.startsWith("OPTIONS ")) return;
    callIds.add(headerValue(text, "call-id") ?? "");
    socket.send(buildResponseTo(text, 200, "OK"), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, LOCALHOST, () => resolve());
  });
  return { socket, port: socket.address().port, received: () => callIds.size };
}

/**
 * A TCP peer that answers every OPTIONS on its connections with 200 (a
 * dispatcher destination with ;transport=tcp); `close()` stops listening
 * and drops its connections, so that a new connection is refused.
 */
export async function tcpOptionsPeer(port = 0): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  const callIds = new Set<string>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = "";
    socket.on("data", (chunk) => {
      pending += chunk.toString("latin1");
      // The pings carry no body: each message ends at its blank line.
      for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
        const text = pending.slice(0, end + 4);
        pending = pending.slice(end + 4);
        if (!text.startsWith("OPTIONS ")) continue;
        callIds.add(headerValue(text, "call-id") ?? "");
        socket.write(buildResponseTo(text, 200, "OK"));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, LOCALHOST, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => callIds.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Polls (bounded) until `done` holds; throws naming `what` otherwise. The bound only ends a test that would hang. */
export async function until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
