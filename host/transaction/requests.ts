/**
 * Requests the transaction layer (and the proxy's client side) derive from
 * a request already sent: the ACK for a non-2xx final response
 * (§17.1.1.3) and CANCEL (§9.1). Both are built from the request as it was
 * sent on the wire, so they carry exactly its Request-URI, top Via and
 * Route set.
 */
import type { SipMessage } from "../sip/message.js";
import { firstHeader, headersByKey, topVia } from "../sip/parser.js";
import { formatVia } from "../sip/via.js";

/**
 * The ACK for a 300-699 response to an INVITE client transaction
 * (§17.1.1.3): same Request-URI, Call-ID and From as the INVITE, CSeq with
 * the INVITE's number and method ACK, the To of the response (it carries
 * the tag of the responding UAS), only the INVITE's top Via (so it matches
 * the downstream server transaction, §17.2.3), and the INVITE's Route
 * header fields. Max-Forwards is the INVITE's (§8.1.1.6 requires one; the
 * ACK travels the INVITE's path), 70 if it had none. No body.
 */
export function buildAckForNonSuccess(invite: SipMessage, response: SipMessage): string {
  const to = firstHeader(response, "to");
  if (to === undefined) throw new TypeError("response has no To header");
  return buildDerivedRequest(invite, "ACK", to.raw, []);
}

/**
 * A CANCEL for `request` (§9.1): Request-URI, Call-ID, To, From and the
 * CSeq number identical to the request (tags included), method CANCEL,
 * a single Via equal to the request's top Via, and its Route header
 * fields. `extraHeaders` (raw lines, e.g. a Reason header of RFC 3326) are
 * added before Content-Length.
 */
export function buildCancel(request: SipMessage, extraHeaders: readonly string[] = []): string {
  const to = firstHeader(request, "to");
  if (to === undefined) throw new TypeError("request has no To header");
  return buildDerivedRequest(request, "CANCEL", to.raw, extraHeaders);
}

function buildDerivedRequest(original: SipMessage, method: string, toLine: string, extraHeaders: readonly string[]): string {
  if (original.kind !== "request") throw new TypeError(`${method} must be built from a request`);
  const via = topVia(original);
  if (via === undefined) throw new TypeError("request has no Via");
  const from = firstHeader(original, "from");
  const callId = firstHeader(original, "call-id");
  if (from === undefined || callId === undefined) throw new TypeError("request lacks From or Call-ID");
  const maxForwards = firstHeader(original, "max-forwards")?.value ?? "70";

  let out = method + " " + original.requestUri + " SIP/2.0\r\n";
  out += "Via: " + formatVia(via) + "\r\n";
  for (const route of headersByKey(original, "route")) out += route.raw;
  out += "Max-Forwards: " + maxForwards + "\r\n";
  out += from.raw;
  out += withCrlf(toLine);
  out += callId.raw;
  out += "CSeq: " + original.cseq.seq + " " + method + "\r\n";
  for (const line of extraHeaders) out += withCrlf(line);
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

function withCrlf(line: string): string {
  return line.endsWith("\r\n") ? line : line + "\r\n";
}
