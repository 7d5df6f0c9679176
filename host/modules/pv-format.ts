/**
 * Kamailio's "pv format": literal text with embedded pseudo-variables
 * ("ip-$si", "sip:$rU@$rd", "$var(k)", "$(hdr(X)[1])"), as htable keys and
 * the spve fixups of native functions (KSR.x.modf) take them. Parsed once
 * into parts, printed for a message with a PV without a value as "<null>".
 * The PV lookup is passed in, so that pv.ts and the modules it reaches
 * (htable's $sht) can both use this without importing each other.
 */
import type { MessageContext } from "../core/context.js";
import type { PvAccessor } from "./pv.js";

export type LookupPv = (name: string) => PvAccessor | null;
export type PvFormatPart = string | PvAccessor;

/** Index just past the ")" matching the "(" at `open`, or -1. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return i + 1;
  }
  return -1;
}

const PV_CLASS_CHAR = /[A-Za-z0-9_.]/;

/** The parts of a pv format; null when a pseudo-variable in it is malformed or unknown. */
export function parsePvFormat(text: string, lookupPv: LookupPv): PvFormatPart[] | null {
  const parts: PvFormatPart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    if (text[i] !== "$") {
      literal += text[i++];
      continue;
    }
    let end: number;
    if (text[i + 1] === "(") {
      end = closingParen(text, i + 1);
    } else {
      end = i + 1;
      while (end < text.length && PV_CLASS_CHAR.test(text[end]!)) end++;
      if (end === i + 1) return null;
      if (text[end] === "(") end = closingParen(text, end);
    }
    if (end === -1) return null;
    const accessor = lookupPv(text.slice(i, end));
    if (accessor === null) return null;
    if (literal.length > 0) parts.push(literal);
    literal = "";
    parts.push(accessor);
    i = end;
  }
  if (literal.length > 0) parts.push(literal);
  return parts;
}

/** The text of parsed parts for a message. */
export function formatPvParts(ctx: MessageContext, parts: readonly PvFormatPart[]): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else {
      const v = p.get(ctx);
      out += v === null ? "<null>" : String(v);
    }
  }
  return out;
}
