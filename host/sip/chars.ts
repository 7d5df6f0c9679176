/**
 * Character classes of the SIP grammar (RFC 3261 §25.1), as one lookup table
 * of bit flags so that validation is a table read per byte, no regex.
 */

export const C_ALPHANUM = 1;
/** token (RFC 3261 §25.1): alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
export const C_TOKEN = 2;
/** unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
export const C_UNRESERVED = 4;
/** user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/" */
export const C_USER_UNRESERVED = 8;
/** password extra chars: "&" / "=" / "+" / "$" / "," */
export const C_PASSWORD_EXTRA = 16;
/** param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$" (also RFC 3966 §3) */
export const C_PARAM_UNRESERVED = 32;
/** hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$" */
export const C_HNV_UNRESERVED = 64;
/** Characters of a host name (alphanum, "-", "."); "_" tolerated, see uri.ts. */
export const C_HOSTNAME = 128;

export const CHAR_CLASS: Uint8Array = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(256);
  const add = (chars: string, flag: number): void => {
    for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)]! |= flag;
  };
  const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  add(alnum, C_ALPHANUM | C_TOKEN | C_UNRESERVED | C_HOSTNAME);
  add("-.!%*_+`'~", C_TOKEN);
  add("-_.!~*'()", C_UNRESERVED);
  add("&=+$,;?/", C_USER_UNRESERVED);
  add("&=+$,", C_PASSWORD_EXTRA);
  add("[]/:&+$", C_PARAM_UNRESERVED);
  add("[]/?:+$", C_HNV_UNRESERVED);
  add("-._", C_HOSTNAME);
  return t;
}

export function isTokenChar(c: number): boolean {
  return c < 256 && (CHAR_CLASS[c]! & C_TOKEN) !== 0;
}

/** Whether s is a non-empty RFC 3261 token. */
export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 256 || (CHAR_CLASS[c]! & C_TOKEN) === 0) return false;
  }
  return true;
}

export function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Whether s[from, to) consists only of chars in `flags` or %HH escapes
 * (RFC 3261 §25.1 "escaped"). Empty ranges are accepted; callers check length.
 */
export function isEscapedRun(s: string, from: number, to: number, flags: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */) {
      if (i + 2 >= to) return false;
      if (!isHexDigit(s.charCodeAt(i + 1)) || !isHexDigit(s.charCodeAt(i + 2))) return false;
      i += 2;
      continue;
    }
    if (c >= 256 || (CHAR_CLASS[c]! & flags) === 0) return false;
  }
  return true;
}

/** Whether s is a decimal number without sign, with at most maxDigits digits. */
export function isDigits(s: string, maxDigits: number): boolean {
  const n = s.length;
  if (n === 0 || n > maxDigits) return false;
  for (let i = 0; i < n; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/**
 * Value of a 1*DIGIT field, leading zeros allowed ("0068" is 68); -1 when
 * not all digits or longer than 10 significant digits (larger than any
 * limit these fields can have).
 */
export function decimalValue(s: string): number {
  const n = s.length;
  if (n === 0) return -1;
  let i = 0;
  while (i < n - 1 && s.charCodeAt(i) === 0x30) i++;
  if (n - i > 10) return -1;
  let v = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** Whether c is SP or HTAB (RFC 3261 §25.1 WSP). */
export function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Index of the first non-WSP char at or after i (bounded by end). */
export function skipWsp(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09) break;
    i++;
  }
  return i;
}

/** Index just past the last non-WSP char before end (bounded by start). */
export function trimWspEnd(s: string, start: number, end: number): number {
  while (end > start) {
    const c = s.charCodeAt(end - 1);
    if (c !== 0x20 && c !== 0x09) break;
    end--;
  }
  return end;
}

/** s trimmed of SP/HTAB/CR/LF on both sides, without allocating when nothing to trim. */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isLwsChar(s.charCodeAt(a))) a++;
  while (b > a && isLwsChar(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function isLwsChar(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Validate an IPv6 address (RFC 4291 §2.2 text forms, as used by RFC 3261
 * §25.1 IPv6address): eight 16-bit hex groups, one "::" allowed, optional
 * trailing dotted IPv4.
 */
export function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const dbl = s.indexOf("::");
  if (dbl !== -1 && s.indexOf("::", dbl + 1) !== -1) return false;
  const parts: string[] = [];
  if (dbl === -1) {
    parts.push(...s.split(":"));
  } else {
    const head = s.slice(0, dbl);
    const tail = s.slice(dbl + 2);
    if (head !== "") parts.push(...head.split(":"));
    if (tail !== "") parts.push(...tail.split(":"));
  }
  let groups = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i === parts.length - 1 && p.indexOf(".") !== -1) {
      if (!isIPv4(p)) return false;
      groups += 2;
      continue;
    }
    if (p.length === 0 || p.length > 4) return false;
    for (let j = 0; j < p.length; j++) if (!isHexDigit(p.charCodeAt(j))) return false;
    groups++;
  }
  return dbl === -1 ? groups === 8 : groups < 8;
}

/** Dotted-quad IPv4 address, each part 0-255 (RFC 3261 §25.1 IPv4address). */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (const p of parts) {
    if (!isDigits(p, 3) || Number(p) > 255) return false;
  }
  return true;
}

/**
 * Host per RFC 3261 §25.1: hostname / IPv4address / IPv6reference.
 * Hostnames are checked loosely (labels of alphanum, "-" and "_", separated
 * by single dots, optional trailing dot): "_" is not in the RFC grammar but
 * appears in deployed SRV-style names, and a strict toplabel rule would reject
 * numeric names that are harmless to carry.
 */
export function isHost(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    return n > 2 && s.charCodeAt(n - 1) === 0x5d && isIPv6(s.slice(1, n - 1));
  }
  let prevDot = true; // a host must not start with "."
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 256 || (CHAR_CLASS[c]! & C_HOSTNAME) === 0) return false;
    if (c === 0x2e) {
      if (prevDot) return false;
      prevDot = true;
    } else {
      prevDot = false;
    }
  }
  return true;
}

/**
 * End (index after the closing DQUOTE) of the quoted-string opening at
 * `open`, or -1 when it is not closed before `end` or holds a bare CR/LF or
 * a quoted-pair outside %x00-7F except CR/LF (RFC 3261 §25.1).
 */
export function quotedStringEnd(s: string, open: number, end: number): number {
  for (let i = open + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      if (i + 1 >= end) return -1;
      const next = s.charCodeAt(i + 1);
      if (next === 0x0a || next === 0x0d || next > 0x7f) return -1;
      i++;
    } else if (c === 0x22) {
      return i + 1;
    } else if (c === 0x0a || c === 0x0d) {
      return -1;
    }
  }
  return -1;
}

/**
 * End of a header parameter's gen-value starting at `i` (RFC 3261 §25.1:
 * token / host / quoted-string; a host's IPv6 reference adds ":" "[" "]"),
 * or -1 for an unclosed or invalid quoted-string. An empty value ends at `i`.
 */
export function genValueEnd(s: string, i: number, end: number): number {
  if (i < end && s.charCodeAt(i) === 0x22) return quotedStringEnd(s, i, end);
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c < 0x80 && ((CHAR_CLASS[c]! & C_TOKEN) !== 0 || c === 0x3a || c === 0x5b || c === 0x5d)) i++;
    else break;
  }
  return i;
}
