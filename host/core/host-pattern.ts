/**
 * Host name patterns, as the tenants file's `domains` and the TLS server
 * names use them: a name matches itself, compared case-insensitively
 * (RFC 3261 §19.1.4; DNS names are case-insensitive, RFC 4343);
 * "*.example.com" matches any subdomain but not example.com itself; "*"
 * matches any host.
 */

export interface HostPatterns {
  /** Lowercase names matched exactly. */
  readonly exact: ReadonlySet<string>;
  /** Suffixes with their leading dot: "*.example.com" → ".example.com". */
  readonly suffixes: readonly string[];
  /** "*" was among the patterns. */
  readonly any: boolean;
}

/** Lowercase host without IPv6 brackets or a trailing dot, as the patterns are written. */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.startsWith("[") && lower.endsWith("]") ? lower.slice(1, -1) : lower.replace(/\.$/, "");
}

export function compileHostPatterns(patterns: readonly string[]): HostPatterns {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const p of patterns) {
    if (p === "*") any = true;
    else if (p.startsWith("*.")) suffixes.push(normalizeHost(p.slice(1)));
    else exact.add(normalizeHost(p));
  }
  return { exact, suffixes, any };
}

/** Whether `host` (already normalized) matches one of the patterns. */
export function hostMatches(patterns: HostPatterns, host: string): boolean {
  if (patterns.any || patterns.exact.has(host)) return true;
  for (const suffix of patterns.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return true;
  return false;
}
