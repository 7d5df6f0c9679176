/** Helpers to write SIP test messages readably: lines joined with CRLF. */

/** Join start line and header lines with CRLF, add the empty line and the body. */
export function sipText(lines: readonly string[], body = ""): string {
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

export const INVITE_LINES: readonly string[] = [
  "INVITE sip:bob@biloxi.example.com SIP/2.0",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport",
  "Max-Forwards: 70",
  'To: "Bob" <sip:bob@biloxi.example.com>',
  'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
  "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
  "CSeq: 314159 INVITE",
  "Contact: <sip:alice@pc33.atlanta.example.com>",
  "Content-Type: application/sdp",
];

export const SDP_BODY =
  "v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\ns=-\r\n" +
  "c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/** A complete INVITE with an SDP body and a correct Content-Length. */
export function inviteText(body = SDP_BODY): string {
  return sipText([...INVITE_LINES, `Content-Length: ${body.length}`], body);
}

/** Replace (or with `undefined` remove) the first line starting with `prefix`. */
export function withLine(lines: readonly string[], prefix: string, replacement: string | undefined): string[] {
  const idx = lines.findIndex((l) => l.startsWith(prefix));
  if (idx === -1) throw new Error(`no line starting with ${prefix}`);
  const copy = lines.slice();
  if (replacement === undefined) copy.splice(idx, 1);
  else copy[idx] = replacement;
  return copy;
}

/** Minimal valid request of a given method (no body). */
export function requestLines(method: string, uri = "sip:bob@example.com"): string[] {
  return [
    `${method} ${uri} SIP/2.0`,
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc123",
    "Max-Forwards: 70",
    "From: <sip:alice@example.com>;tag=aaa",
    "To: <sip:bob@example.com>",
    "Call-ID: call-1@192.0.2.1",
    `CSeq: 1 ${method}`,
    "Content-Length: 0",
  ];
}
