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
import ivm from "isolated-vm";

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
    this.isolate = new ivm.Isolate({ memoryLimit: HEAP_MB });
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
 * Test `subject` against a script-supplied pattern, bounded in time.
 * Invalid patterns and timeouts come back as errors for the caller to log.
 */
export function safeRegexTest(pattern: string, flags: string, subject: string): RegexResult {
  return sandbox.test(pattern, flags, subject);
}
