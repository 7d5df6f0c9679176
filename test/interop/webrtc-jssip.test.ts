/**
 * A real WebRTC SIP client against `ksr run examples/webrtc-registrar.js`:
 * JsSIP (npm `jssip`) in headless Chromium (Debian `chromium`), driven over
 * the DevTools protocol by puppeteer-core. Two pages, alice and bob, each a
 * JsSIP user agent connected over WebSocket to ksr; the page and JsSIP's
 * bundle come from a loopback HTTP server this test starts, and ksr only
 * accepts WebSocket handshakes for that page's Origin and the path /sip.
 *
 * - both register (REGISTER over WS, fix_nated_register);
 * - bob calls alice: the INVITE reaches alice down her own WebSocket
 *   connection (the registrar's received address), she answers, the call is
 *   confirmed (ACK through ksr by the Record-Route and her Contact's alias)
 *   and bob hangs up (BYE the same way); signalling only, media comes from
 *   Chromium's fake devices;
 * - while both are connected, ksr's metrics count two WebSocket
 *   connections;
 * - the same in one process and with `--workers 2` (the front process owns
 *   the connections, the workers run the script);
 * - alice's page is closed without unregistering (her connection is gone,
 *   her binding stays): bob's next call fails at once with 480, since
 *   nobody can open a WebSocket connection to a browser.
 *
 * Chromium must be installed (.ci/run installs the Debian package); the
 * suite fails without it rather than pass unseen.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, findFreePort, startKsr, type KsrProcess } from "../../bench/lib/sipp.mjs";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHROMIUM = process.env.KSR_CHROMIUM ?? "/usr/bin/chromium";
const WS_PATH = "/sip";

/** JsSIP's CommonJS sources bundled for a browser page (window.JsSIP). */
async function jssipBundle(): Promise<string> {
  const out = await build({
    entryPoints: [path.join(REPO, "node_modules", "jssip", "lib", "JsSIP.js")],
    bundle: true,
    format: "iife",
    globalName: "JsSIP",
    platform: "browser",
    write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0]!.text;
}

/** The page both users load: JsSIP and a small driver the test calls through page.evaluate. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><script src="/jssip.js"></script><script>
window.events = [];
window.record = (what) => window.events.push(what);
window.startUa = (wsUrl, user) => new Promise((resolve, reject) => {
  const socket = new JsSIP.WebSocketInterface(wsUrl);
  const ua = new JsSIP.UA({ sockets: [socket], uri: "sip:" + user + "@127.0.0.1", register: true, session_timers: false, register_expires: 600 });
  window.ua = ua;
  ua.on("registered", () => { record("registered"); resolve("registered"); });
  ua.on("registrationFailed", (e) => { record("registrationFailed:" + e.cause); reject(new Error("registration failed: " + e.cause)); });
  ua.on("newRTCSession", (e) => {
    const session = e.session;
    window.session = session;
    session.on("accepted", () => record(e.originator + ":accepted"));
    session.on("confirmed", () => record(e.originator + ":confirmed"));
    session.on("ended", (x) => record(e.originator + ":ended:" + x.originator + ":" + x.cause));
    session.on("failed", (x) => record(e.originator + ":failed:" + x.originator + ":" + x.cause + ":" + (x.message && x.message.status_code)));
    if (e.originator === "remote") {
      record("remote:incoming:" + e.request.from.uri.user);
      session.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } });
    }
  });
  ua.start();
});
window.call = (target) => {
  window.ua.call(target, { mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } });
};
</script></head><body>ksr webrtc test</body></html>`;

function startPageServer(bundle: string): Promise<{ server: http.Server; origin: string }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/") res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    else if (req.url === "/jssip.js") res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    else res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` })),
  );
}

/** Polls the page's event list until `wanted` is in it (bounded: 200 polls). */
async function waitForEvent(page: Page, wanted: string | RegExp, what: string): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const events = await page.evaluate(() => (window as unknown as { events: string[] }).events.slice());
    if (events.some((e) => (typeof wanted === "string" ? e === wanted : wanted.test(e)))) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
  const events = await page.evaluate(() => (window as unknown as { events: string[] }).events.slice());
  throw new Error(`${what}: no event ${String(wanted)} in ${JSON.stringify(events)}`);
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

describe.each([
  { mode: "one process", args: [] as string[] },
  // The front owns the WebSocket connections, the workers run the script.
  { mode: "--workers 2", args: ["--workers", "2"] },
])("JsSIP in headless Chromium over WebSocket to examples/webrtc-registrar.js ($mode)", ({ args }) => {
  let ksr: KsrProcess | undefined;
  let browser: Browser | undefined;
  let pages: { server: http.Server; origin: string } | undefined;
  let dir: string;
  let wsPort: number;
  let metricsPort: number;

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Chromium (Debian: apt-get install -y chromium; .ci/run does) or set KSR_CHROMIUM`);
    ensureBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ksr-webrtc-"));
    pages = await startPageServer(await jssipBundle());
    const [sipPort, ws, metrics] = [await findFreePort(), await findFreePort(), await findFreePort()];
    wsPort = ws;
    metricsPort = metrics;
    ksr = await startKsr({
      script: path.join(REPO, "examples", "webrtc-registrar.js"),
      port: sipPort,
      logLevel: "info",
      extraArgs: [
        "--listen", `ws:127.0.0.1:${wsPort}`,
        "--ws-path", WS_PATH,
        "--ws-origin", pages.origin,
        "--db", path.join(dir, "ksr.sqlite"),
        "--metrics", `127.0.0.1:${metricsPort}`,
        "--no-supervise",
        ...args,
      ],
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--disable-gpu"],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await ksr?.stop();
    pages?.server.close();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function userPage(user: string): Promise<Page> {
    const page = await browser!.newPage();
    await page.goto(`${pages!.origin}/`);
    await page.evaluate((url: string, u: string) => (window as unknown as { startUa: (a: string, b: string) => Promise<string> }).startUa(url, u), `ws://127.0.0.1:${wsPort}${WS_PATH}`, user);
    return page;
  }

  it("registers two browsers, calls from one to the other, answers and hangs up; a call to a browser whose connection is gone gets 480", async () => {
    const alice = await userPage("alice");
    const bob = await userPage("bob");
    expect(await alice.evaluate(() => (window as unknown as { events: string[] }).events)).toContain("registered");
    expect(await bob.evaluate(() => (window as unknown as { events: string[] }).events)).toContain("registered");

    const metrics = await scrape(metricsPort);
    expect(metrics, metrics).toMatch(/^ksr_ws_connections 2$/m);

    await bob.evaluate(() => (window as unknown as { call: (t: string) => void }).call("sip:alice@127.0.0.1"));
    await waitForEvent(alice, "remote:incoming:bob", "alice is called");
    await waitForEvent(bob, "local:confirmed", "bob's call is confirmed");
    await waitForEvent(alice, "remote:confirmed", "alice's side is confirmed by the ACK");
    await bob.evaluate(() => (window as unknown as { session: { terminate: () => void } }).session.terminate());
    const aliceEvents = await waitForEvent(alice, /^remote:ended:/, "alice sees the BYE");
    expect(aliceEvents).toContain("remote:ended:remote:Terminated");
    const bobEvents = await waitForEvent(bob, /^local:ended:/, "bob's call ends");
    expect(bobEvents).toContain("local:ended:local:Terminated");
    expect(bobEvents.filter((e) => e.includes("failed"))).toEqual([]);

    // Alice's connection goes away without unregistering: her binding stays, her connection does not.
    await alice.close();
    await bob.evaluate(() => (window as unknown as { call: (t: string) => void }).call("sip:alice@127.0.0.1"));
    const failed = await waitForEvent(bob, /^local:failed:/, "bob's call to alice without a connection");
    expect(failed).toContain("local:failed:remote:Unavailable:480");
    expect(ksr!.output()).toMatch(/no open WebSocket connection from 127\.0\.0\.1:\d+: not sent/);
  });
});
