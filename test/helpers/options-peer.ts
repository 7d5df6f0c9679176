/**
 * A UDP peer on 127.0.0.1 that answers every OPTIONS with 200, standing in
 * for a dispatcher destination in probing tests, and a bounded wait.
 */
import dgram from "node:dgram";

/** A UDP peer answering every OPTIONS with 200 (RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq copied). */
export async function optionsPeer(port = 0): Promise<{ socket: dgram.Socket; port: number; /** Distinct OPTIONS requests received. */ received: () => number }> {
  const socket = dgram.createSocket("udp4");
  // Distinct requests by Call-ID: a retransmission (timer E) is not another ping.
  const callIds = new Set<string>();
  socket.on("message", (data, rinfo) => {
    const text = data.toString("latin1");
    if (!text.startsWith("OPTIONS ")) return;
    const lines = text.split("\r\n");
    const callId = lines.find((l) => /^Call-ID:/i.test(l));
    if (callId !== undefined) callIds.add(callId);
    const copied = lines.filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l)).map((l) => (/^To:/i.test(l) ? `${l};tag=peer` : l));
    socket.send(["SIP/2.0 200 OK", ...copied, "Content-Length: 0", "", ""].join("\r\n"), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, "127.0.0.1", () => resolve());
  });
  return { socket, port: socket.address().port, received: () => callIds.size };
}

/** Polls (bounded) until `check` is true; the bound only ends a test that would otherwise hang. */
export async function until(what: string, check: () => boolean, boundMs = 20_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
