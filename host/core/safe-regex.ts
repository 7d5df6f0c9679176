/**
 * Regular expressions that come from routing scripts, matched against text
 * that comes from the network (e.g. `KSR.rr.check_route_param(re)` against
 * a Route header's parameters).
 *
 * JavaScript's regex engine backtracks: a pattern such as `(a+)+$` takes
 * exponential time on a crafted subject of a few dozen characters. Run on
 * the host, one such match would stall every tenant, outside any route
 * time limit. So these matches run in a small isolate of their own with a
 * time limit; a match that runs out of time counts as an error, logged by
 * the caller, and the host carries on.
 */
import type ivm from "isolated-vm";
import isolatedVm from "../../sandbox/isolated-vm.js";

/** Time one match may take. Ordinary patterns take microseconds. */
const MATCH_TIMEOUT_MS = 20;
const HEAP_MB = 16;

/** Compiled patterns kept in the isolate; cleared when full. */
const CACHE_LIMIT = 256;

const MATCHER_SOURCE = `
const cache = new Map();
function regexTest(pattern, flags, subject) {
  const key = flags + "/" + pattern;
  let re = cache.get(key);
  if (re === undefined) {
    re = new RegExp(pattern, flags);
    if (cache.size >= ${CACHE_LIMIT}) cache.clear();
    cache.set(key, re);
  }
  re.lastIndex = 0;
  return re.test(subject);
}
`;

export type RegexResult = { readonly ok: true; readonly matched: boolean } | { readonly ok: false; readonly error: string };

class RegexSandbox {
  private isolate: ivm.Isolate | undefined;
  private matcher: ivm.Reference<(pattern: string, flags: string, subject: string) => boolean> | undefined;

  test(pattern: string, flags: string, subject: string): RegexResult {
    try {
      const matched = this.ensureMatcher().applySync(undefined, [pattern, flags, subject], {
        timeout: MATCH_TIMEOUT_MS,
      }) as boolean;
      return { ok: true, matched };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.isolate?.isDisposed) this.reset();
      if (/timed out/i.test(message)) return { ok: false, error: `regular expression '${pattern}' took longer than ${MATCH_TIMEOUT_MS} ms` };
      return { ok: false, error: `bad regular expression '${pattern}': ${message}` };
    }
  }

  private ensureMatcher(): ivm.Reference<(pattern: string, flags: string, subject: string) => boolean> {
    if (this.matcher && this.isolate && !this.isolate.isDisposed) return this.matcher;
    this.isolate = new isolatedVm.Isolate({ memoryLimit: HEAP_MB });
    const context = this.isolate.createContextSync();
    context.evalSync(MATCHER_SOURCE);
    this.matcher = context.global.getSync("regexTest", { reference: true }) as ivm.Reference<
      (pattern: string, flags: string, subject: string) => boolean
    >;
    return this.matcher;
  }

  private reset(): void {
    this.matcher = undefined;
    this.isolate = undefined;
  }
}

const sandbox = new RegexSandbox();

/**
 * Patterns of characters that match only themselves (no regex syntax
 * character: `\ ^ $ . | ? * + ( ) [ ] { }`), such as the "nat=yes" of
 * Kamailio's example script. Matching them is a substring search, which
 * cannot backtrack: done on the host, without the isolate round trip.
 */
const LITERAL_PATTERN = /^[A-Za-z0-9 !"#%&',\-/:;<=>@_`~]*$/;

/** ASCII letters folded to lower case; every other code unit as it is. */
function foldAscii(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/**
 * Whether `literal` (ASCII, see LITERAL_PATTERN) occurs in `subject`. With
 * ignoreCase only ASCII letters fold: without the u flag a JavaScript
 * RegExp never matches an ASCII pattern character with a non-ASCII one
 * (ECMA-262 Canonicalize), so neither does this.
 */
function containsLiteral(subject: string, literal: string, ignoreCase: boolean): boolean {
  if (!ignoreCase) return subject.includes(literal);
  const last = subject.length - literal.length;
  outer: for (let start = 0; start <= last; start++) {
    for (let i = 0; i < literal.length; i++) {
      if (foldAscii(subject.charCodeAt(start + i)) !== foldAscii(literal.charCodeAt(i))) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * Test `subject` against a script-supplied pattern, bounded in time.
 * Invalid patterns and timeouts come back as errors for the caller to log.
 */
export function safeRegexTest(pattern: string, flags: string, subject: string): RegexResult {
  if ((flags === "" || flags === "i") && LITERAL_PATTERN.test(pattern)) {
    return { ok: true, matched: containsLiteral(subject, pattern, flags === "i") };
  }
  return sandbox.test(pattern, flags, subject);
}
