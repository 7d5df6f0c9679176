/**
 * The per-test fixtures of the end-to-end suites: captured log lines, the
 * server under test and the peers talking to it, all released after each
 * test (peers and other closers last-opened first, then the server). Call
 * once at the top of a test file; it registers the beforeEach/afterEach.
 */
import { afterEach, beforeEach } from "vitest";
import { LogCapture } from "./harness.js";
import { TcpPeer, UdpPeer } from "./sip-client.js";

interface Stoppable {
  stop(): Promise<void>;
}

export interface Testbed {
  readonly logs: LogCapture;
  /** Stops `server` after the test (only the last one given); returns it. */
  serve<T extends Stoppable>(server: T): T;
  /** Stops the server now, for tests of stopping itself: nothing is left to stop after the test. */
  stopServer(): Promise<void>;
  /** A UDP peer on 127.0.0.1, closed after the test. */
  udpPeer(): Promise<UdpPeer>;
  /** A TCP connection to 127.0.0.1:port, closed after the test. */
  tcpPeer(port: number): Promise<TcpPeer>;
  /** Runs `close` after the test, before the server stops. */
  closeAfter(close: () => unknown): void;
}

export function testbed(): Testbed {
  const logs = new LogCapture();
  const closers: (() => unknown)[] = [];
  let server: Stoppable | undefined;
  beforeEach(() => logs.install());
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await server?.stop();
    server = undefined;
    logs.uninstall();
  });
  const closeAfter = (close: () => unknown): void => {
    closers.push(close);
  };
  return {
    logs,
    serve(s) {
      server = s;
      return s;
    },
    async stopServer() {
      await server?.stop();
      server = undefined;
    },
    async udpPeer() {
      const p = await UdpPeer.open();
      closeAfter(() => p.close());
      return p;
    },
    async tcpPeer(port) {
      const p = await TcpPeer.connect(port);
      closeAfter(() => p.close());
      return p;
    },
    closeAfter,
  };
}
