/**
 * The dispatcher's string hash (Kamailio dispatch.c ds_get_hash), so that
 * algorithms 0, 1, 2, 3 and 7 pick the same destination index as Kamailio
 * for the same Call-ID / URI / value. Arithmetic is unsigned 32-bit; bytes
 * are C `char`, signed on the platforms Kamailio is built for (x86, arm64
 * Debian builds use signed char on x86 only; Debian's amd64 package is what
 * this is compared with).
 */

/** One byte as Kamailio's `char` on x86: 0x80..0xff are negative. */
function sbyte(s: string, i: number): number {
  const b = s.charCodeAt(i) & 0xff;
  return b >= 0x80 ? b - 0x100 : b;
}

function addPart(h: number, x: string): number {
  let p = 0;
  const n = x.length;
  let v: number;
  if (n >= 4) {
    for (; p <= n - 4; p += 4) {
      v = ((sbyte(x, p) << 24) + (sbyte(x, p + 1) << 16) + (sbyte(x, p + 2) << 8) + sbyte(x, p + 3)) >>> 0;
      h = (h + ((v ^ (v >>> 3)) >>> 0)) >>> 0;
    }
  }
  v = 0;
  for (; p < n; p++) v = ((v << 8) + sbyte(x, p)) >>> 0;
  return (h + ((v ^ (v >>> 3)) >>> 0)) >>> 0;
}

/** ds_get_hash(x, y): y undefined for one-part keys. Never 0 (Kamailio returns 1 then). */
export function dispatcherHash(x: string | undefined, y?: string): number {
  if (x === undefined && y === undefined) return 0;
  let h = 0;
  if (x !== undefined) h = addPart(h, x);
  if (y !== undefined) h = addPart(h, y);
  h = (h + (h >>> 11) + ((h >>> 13) + (h >>> 23))) >>> 0;
  return h === 0 ? 1 : h;
}
