/**
 * Answering requests the parser rejected. Such a request has no SipMessage,
 * only the header fields the parser could split, so the 400 is assembled
 * here from those (RFC 3261 §8.2.6.2: Via, From, To, Call-ID and CSeq are
 * copied; the To gets a tag).
 */
import type { Header } from "../sip/message.js";
import type { Via } from "../sip/via.js";
import { formatVia, parseVia } from "../sip/via.js";
import { parseNameAddr, headerParam } from "../sip/nameaddr.js";

/**
 * A reason phrase made from a parser error text: printable characters only
 * (no CR/LF can reach the status line, RFC 3261 §25.1 Reason-Phrase) and at
 * most 120 of them.
 */
export function reasonFromError(error: string): string {
  const clean = error.replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 120);
  return clean === "" ? "Bad Request" : clean;
}

/** The Via header fields of a header list, and the first via-parm parsed (undefined when unparsable). */
export function topViaOf(headers: readonly Header[]): { viaHeaders: Header[]; vias: Via[] } | undefined {
  const viaHeaders = headers.filter((h) => h.key === "via");
  if (viaHeaders.length === 0) return undefined;
  const vias = parseVia(viaHeaders[0]!.value);
  if (vias.length === 0) return undefined;
  return { viaHeaders, vias };
}

/**
 * The Via lines of a response: the stamped top via-parm, the rest of the
 * first Via header field's values, then every other Via field unchanged
 * (§8.2.6.2 copies them all in order). Each line ends in CRLF.
 */
export function responseViaLines(viaHeaders: readonly Header[], firstFieldVias: readonly Via[], stampedTop: Via): string[] {
  const lines = [`Via: ${formatVia(stampedTop)}\r\n`];
  for (let i = 1; i < firstFieldVias.length; i++) lines.push(`Via: ${formatVia(firstFieldVias[i]!)}\r\n`);
  for (let i = 1; i < viaHeaders.length; i++) lines.push(withCrlf(viaHeaders[i]!.raw));
  return lines;
}

/** True when a To (or From) value carries a tag parameter. */
export function hasTag(value: string): boolean {
  const na = parseNameAddr(value);
  return na !== null && headerParam(na, "tag") !== undefined;
}

/**
 * A 400 (or 505) response to a request that failed to parse, built from what parsed.
 * `viaLines` are the response's Via lines (stamped top first).
 */
export function buildMalformedReply(
  headers: readonly Header[],
  viaLines: readonly string[],
  status: number,
  reason: string,
  toTag: string,
): string {
  let out = `SIP/2.0 ${status} ${reason}\r\n` + viaLines.join("");
  for (const key of ["from", "to", "call-id", "cseq"]) {
    const h = headers.find((x) => x.key === key);
    if (!h) continue;
    if (key === "to" && !hasTag(h.value)) {
      out += `To: ${h.value};tag=${toTag}\r\n`;
    } else {
      out += withCrlf(h.raw);
    }
  }
  return out + "Content-Length: 0\r\n\r\n";
}

function withCrlf(raw: string): string {
  return raw.endsWith("\r\n") ? raw : raw.replace(/[\r\n]*$/, "") + "\r\n";
}
