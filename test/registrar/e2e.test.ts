/**
 * Registrar and digest authentication end to end over real UDP on
 * 127.0.0.1: a script shaped like Kamailio's basic one runs in an isolate;
 * REGISTER is challenged (401), registered with credentials (200 listing
 * the contact), an INVITE to the user is relayed to the registered contact
 * and answered, an unknown user gets 404, and a restart of the server on
 * the same database file keeps the registration.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { LogCapture, startServer, TEST_LIMITS, type RunningServer } from "../e2e/harness.js";
import { UdpPeer, buildResponseTo, headerValue, randomToken, startLineOf, statusOf, type Received } from "../e2e/sip-client.js";
import { ScriptRunner } from "../../sandbox/runner.js";
import { openDataServices, type DataServices } from "../../host/storage/index.js";
import { subscriberRow } from "../../host/cli/db-commands.js";
import { answer, parseChallenge } from "./digest-client.js";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "scripts", "registrar-auth.js");
const IP = "127.0.0.1";
const DOMAIN = "example.test";
const TENANT = "reg-e2e";

const logs = new LogCapture();
const peers: UdpPeer[] = [];
let running: RunningServer | undefined;
let data: DataServices | undefined;
let dir: string;

beforeEach(() => {
  logs.install();
  dir = mkdtempSync(path.join(tmpdir(), "ksr-reg-e2e-"));
});

afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
  await running?.stop();
  running = undefined;
  data?.close();
  data = undefined;
  logs.uninstall();
  rmSync(dir, { recursive: true, force: true });
});

async function startOn(file: string): Promise<number> {
  data = openDataServices({ file });
  const runner = ScriptRunner.load(SCRIPT, { limits: TEST_LIMITS, tenant: TENANT });
  running = await startServer(runner, { tenantId: TENANT, data });
  return running.udpPort;
}

async function peer(): Promise<UdpPeer> {
  const p = await UdpPeer.open();
  peers.push(p);
  return p;
}

function registerRequest(ua: UdpPeer, cseq: number, callId: string, authorization?: string): string {
  return (
    [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${IP}:${ua.port};branch=z9hG4bK${randomToken()}`,
      "Max-Forwards: 70",
      `From: <sip:alice@${DOMAIN}>;tag=${randomToken()}`,
      `To: <sip:alice@${DOMAIN}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:alice@${IP}:${ua.port}>`,
      "Expires: 3600",
      ...(authorization === undefined ? [] : [`Authorization: ${authorization}`]),
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

function inviteRequest(from: UdpPeer, user: string): string {
  return (
    [
      `INVITE sip:${user}@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${IP}:${from.port};branch=z9hG4bK${randomToken()}`,
      "Max-Forwards: 70",
      `From: <sip:carol@elsewhere.test>;tag=${randomToken()}`,
      `To: <sip:${user}@${DOMAIN}>`,
      `Call-ID: ${randomToken()}@caller`,
      "CSeq: 1 INVITE",
      `Contact: <sip:carol@${IP}:${from.port}>`,
      "Content-Length: 0",
    ].join("\r\n") + "\r\n\r\n"
  );
}

/** The next response that is not provisional (bounded: a few messages). */
async function nextFinal(p: UdpPeer): Promise<Received> {
  for (let i = 0; i < 5; i++) {
    const m = await p.next();
    if (statusOf(m.data) >= 200) return m;
  }
  throw new Error("no final response among 5 messages");
}

/** REGISTER, answer the 401, expect the 200 and return its Contact value. */
async function registerAlice(ua: UdpPeer, port: number): Promise<string> {
  const callId = `${randomToken()}@alice`;
  await ua.send(registerRequest(ua, 1, callId), port);
  const challenge = await ua.next();
  expect(statusOf(challenge.data)).toBe(401);
  const ch = parseChallenge(headerValue(challenge.data, "www-authenticate")!);
  expect(ch.realm).toBe(DOMAIN);
  const creds = answer(ch, { username: "alice", password: "secret", method: "REGISTER", uri: `sip:${DOMAIN}` });
  await ua.send(registerRequest(ua, 2, callId, creds), port);
  const ok = await ua.next();
  expect(statusOf(ok.data)).toBe(200);
  return headerValue(ok.data, "contact")!;
}

describe("registrar over UDP", () => {
  test("401, 200 with the contact, INVITE relayed to it and answered, 404 for unknown users", async () => {
    const file = path.join(dir, "ksr.sqlite");
    const port = await startOn(file);
    data!.subscribers.put(TENANT, subscriberRow(`alice@${DOMAIN}`, "secret"));
    const alice = await peer();
    const caller = await peer();

    expect(await registerAlice(alice, port)).toBe(`<sip:alice@${IP}:${alice.port}>;expires=3600`);

    await caller.send(inviteRequest(caller, "alice"), port);
    const relayed = await alice.next();
    expect(startLineOf(relayed.data)).toBe(`INVITE sip:alice@${IP}:${alice.port} SIP/2.0`);
    await alice.send(buildResponseTo(relayed.data, 200, "OK"), port);
    const answered = await nextFinal(caller);
    expect(statusOf(answered.data)).toBe(200);

    await caller.send(inviteRequest(caller, "bob"), port);
    expect(statusOf((await nextFinal(caller)).data)).toBe(404);
  });

  test("a wrong password is challenged again and nothing is registered", async () => {
    const port = await startOn(path.join(dir, "ksr.sqlite"));
    data!.subscribers.put(TENANT, subscriberRow(`alice@${DOMAIN}`, "secret"));
    const alice = await peer();
    const callId = `${randomToken()}@alice`;
    await alice.send(registerRequest(alice, 1, callId), port);
    const ch = parseChallenge(headerValue((await alice.next()).data, "www-authenticate")!);
    const wrong = answer(ch, { username: "alice", password: "guess", method: "REGISTER", uri: `sip:${DOMAIN}` });
    await alice.send(registerRequest(alice, 2, callId, wrong), port);
    expect(statusOf((await alice.next()).data)).toBe(401);
    expect(data!.locations.bindings(TENANT, "location", "alice")).toHaveLength(0);
  });

  test("a restart on the same database file keeps the registration", async () => {
    const file = path.join(dir, "ksr.sqlite");
    const port = await startOn(file);
    data!.subscribers.put(TENANT, subscriberRow(`alice@${DOMAIN}`, "secret"));
    const alice = await peer();
    await registerAlice(alice, port);
    await running!.stop();
    running = undefined;
    data!.close();
    data = undefined;

    const port2 = await startOn(file);
    const caller = await peer();
    await caller.send(inviteRequest(caller, "alice"), port2);
    const relayed = await alice.next();
    expect(startLineOf(relayed.data)).toBe(`INVITE sip:alice@${IP}:${alice.port} SIP/2.0`);
    await alice.send(buildResponseTo(relayed.data, 486, "Busy Here"), port2);
    expect(statusOf((await nextFinal(caller)).data)).toBe(486);
  });
});
