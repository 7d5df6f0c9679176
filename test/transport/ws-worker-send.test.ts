/**
 * A worker process's transport and WebSocket clients: only the front holds
 * a client's connection, so a request to a ws/wss address carries a ref,
 * and the front's report on it either forgets the failure callback (sent)
 * or calls it (the connection was gone), which fails the branch.
 */
import { describe, expect, it } from "vitest";
import { IpcTransport } from "../../host/tenants/worker.js";
import type { SendItem } from "../../host/tenants/worker-protocol.js";
import type { ListenSocket } from "../../host/core/context.js";

const LISTEN: ListenSocket[] = [
  { proto: "udp", ip: "127.0.0.1", port: 5060 },
  { proto: "ws", ip: "127.0.0.1", port: 8080 },
];

function transport(): { ipc: IpcTransport; items: SendItem[] } {
  const items: SendItem[] = [];
  return { ipc: new IpcTransport(LISTEN, { send: (item) => items.push(item) }), items };
}

describe("IpcTransport and WebSocket destinations", () => {
  it("asks the front about a ws send and calls back when the front reports it failed", () => {
    const { ipc, items } = transport();
    let failures = 0;
    expect(ipc.send("ws", "127.0.0.1", 50001, "INVITE ...", undefined, undefined, undefined, () => failures++)).toBe(true);
    const ref = items[0]!.ref;
    expect(ref).toBeGreaterThan(0);
    ipc.sendResults([], [ref!]);
    expect(failures).toBe(1);
    // Reported once: a repeated report calls nothing.
    ipc.sendResults([], [ref!]);
    expect(failures).toBe(1);
  });

  it("forgets the callback of a send the front made", () => {
    const { ipc, items } = transport();
    let failures = 0;
    ipc.send("wss", "127.0.0.1", 50002, "BYE ...", undefined, undefined, undefined, () => failures++);
    const ref = items[0]!.ref!;
    ipc.sendResults([ref], []);
    ipc.sendResults([], [ref]);
    expect(failures).toBe(0);
  });

  it("asks nothing for other transports or without a callback", () => {
    const { ipc, items } = transport();
    ipc.send("udp", "127.0.0.1", 5070, "INVITE ...", undefined, undefined, undefined, () => {});
    ipc.send("ws", "127.0.0.1", 50001, "SIP/2.0 200 OK ...");
    expect(items.map((i) => i.ref)).toEqual([undefined, undefined]);
  });
});
