/**
 * The OPTIONS a test sends after a message whose effect it wants to see
 * (test/rfc4475/torture.ts, bench/rfc4475-compare.mjs): with rport, from the
 * same socket, so its answer comes back to the sender; a server that
 * handles datagrams in order has finished with the message before it once
 * this is answered.
 */

/** Call-IDs of barriers start with this; n follows. */
export const BARRIER_CALL_ID_PREFIX = "rfc4475-barrier-";

/** Barrier number n from 127.0.0.1:port over proto ("UDP" or "TCP"). */
export function barrierOptions(n, port, proto = "UDP") {
  return [
    "OPTIONS sip:barrier@127.0.0.1 SIP/2.0",
    `Via: SIP/2.0/${proto} 127.0.0.1:${port};rport;branch=z9hG4bK-barrier-${n}`,
    "From: <sip:barrier@127.0.0.1>;tag=barrier",
    "To: <sip:barrier@127.0.0.1>",
    `Call-ID: ${BARRIER_CALL_ID_PREFIX}${n}`,
    `CSeq: ${n} OPTIONS`,
    "Max-Forwards: 70",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}
