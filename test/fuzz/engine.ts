/**
 * A small coverage-guided fuzzer (the loop of libFuzzer/AFL, in-process):
 * inputs are mutated from a corpus; an input that makes the target run
 * code blocks (or block hit counts, in powers of two) not seen before joins
 * the corpus; an input that makes the target throw is a failure. Coverage
 * is V8's own precise block coverage, read through the inspector after
 * every run (node:inspector, same thread: the calls are synchronous).
 *
 * Jazzer.js would be the usual choice; its prebuilt binary needs glibc 2.38,
 * newer than this project's Debian 12 machines have, and it cannot be built
 * here without network access to its sources.
 */
import { createHash } from "node:crypto";
import { Session } from "node:inspector";

export interface FuzzOptions {
  /** Stop after this many runs of the target. */
  readonly maxRuns: number;
  /** Stop after this many milliseconds (wall clock). */
  readonly maxMs: number;
  /** PRNG seed, so a run can be repeated. */
  readonly seed: number;
  /** Largest input tried, in bytes. */
  readonly maxLength: number;
  /** Only code of scripts whose URL contains this is counted as coverage (the bundle of the target). */
  readonly coverageUrl: string;
}

export interface FuzzFailure {
  readonly input: Buffer;
  readonly error: string;
}

export interface FuzzReport {
  readonly runs: number;
  readonly corpus: number;
  /** Distinct coverage features seen (block × hit-count bucket). */
  readonly features: number;
  readonly failure: FuzzFailure | undefined;
  readonly ms: number;
}

/** Byte strings that tend to sit on grammar boundaries of SIP, URIs and SDP. */
const DICTIONARY = [
  "\r\n", "\r\n\r\n", ":", ";", ",", "<", ">", '"', "\\", "=", "?", "&", "@", "%", "%00", "%25", " ", "\t", "/",
  "SIP/2.0", "SIP/2.0/UDP ", "SIP/2.0/TCP ", "sip:", "sips:", "tel:", "Via: ", "v: ", "From: ", "To: ", "Call-ID: ",
  "CSeq: 1 INVITE", "Content-Length: ", "l: ", "Contact: ", "branch=z9hG4bK", ";tag=", ";lr", ";rport", "[::1]",
  "INVITE ", "ACK ", "REGISTER ", "c=IN IP4 ", "m=audio ", "Digest ", "username=", "nonce=", "realm=", "0", "65535", "-1",
].map((s) => Buffer.from(s, "latin1"));

/** Seeded PRNG (mulberry32): rand(n) is an integer in [0, n), so a run can be repeated. */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return n <= 0 ? 0 : (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}

function mutate(input: Buffer, corpus: readonly Buffer[], rand: (n: number) => number, maxLength: number): Buffer {
  let b = Buffer.from(input);
  const steps = 1 + rand(4);
  for (let k = 0; k < steps; k++) {
    const pos = rand(b.length + 1);
    switch (rand(9)) {
      case 0: // flip a bit
        if (b.length > 0) b[pos % b.length]! ^= 1 << rand(8);
        break;
      case 1: // a random byte
        if (b.length > 0) b[pos % b.length] = rand(256);
        break;
      case 2: // insert a dictionary token
        b = Buffer.concat([b.subarray(0, pos), DICTIONARY[rand(DICTIONARY.length)]!, b.subarray(pos)]);
        break;
      case 3: // overwrite with a dictionary token
      {
        const t = DICTIONARY[rand(DICTIONARY.length)]!;
        b = Buffer.concat([b.subarray(0, pos), t, b.subarray(Math.min(b.length, pos + t.length))]);
        break;
      }
      case 4: // delete a range
        b = Buffer.concat([b.subarray(0, pos), b.subarray(Math.min(b.length, pos + 1 + rand(16)))]);
        break;
      case 5: // duplicate a range
      {
        const len = 1 + rand(32);
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos, pos + len), b.subarray(pos)]);
        break;
      }
      case 6: // splice in a piece of another corpus entry
      {
        const other = corpus[rand(corpus.length)]!;
        const from = rand(other.length);
        b = Buffer.concat([b.subarray(0, pos), other.subarray(from, from + 1 + rand(64)), b.subarray(pos)]);
        break;
      }
      case 7: // truncate
        b = b.subarray(0, pos);
        break;
      default: // a digit run: numbers are where limits live
        b = Buffer.concat([b.subarray(0, pos), Buffer.from(String(rand(2) === 0 ? rand(100) : 2 ** rand(64)), "latin1"), b.subarray(pos)]);
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b;
}

/** Hit-count bucket as AFL counts them: 0, 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface CoverageResult {
  result: { url: string; functions: { ranges: CoverageRange[] }[] }[];
}

/** Runs `target` on mutations of `seeds` until a failure or a limit; the corpus grows in place. */
export function fuzz(target: (data: Buffer) => void, seeds: readonly Buffer[], options: FuzzOptions): FuzzReport {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object): T => {
    let out: T | undefined;
    let error: Error | null = null;
    session.post(method, params ?? {}, (err, res) => {
      error = err;
      out = res as T;
    });
    if (error) throw error;
    return out!;
  };
  post("Profiler.enable");
  post("Profiler.startPreciseCoverage", { callCount: true, detailed: true });

  const seen = new Set<string>();
  const newFeatures = (): number => {
    const cov = post<CoverageResult>("Profiler.takePreciseCoverage");
    let added = 0;
    for (const script of cov.result) {
      if (!script.url.includes(options.coverageUrl)) continue;
      for (const fn of script.functions) {
        // V8 reports a function's range and then only the blocks whose
        // count differs from their parent's: an unexecuted block is a range
        // with count 0, and which block that is tells how deep a run got.
        for (const r of fn.ranges) {
          const key = `${r.startOffset}:${r.endOffset}:${bucket(r.count)}`;
          if (!seen.has(key)) {
            seen.add(key);
            added++;
          }
        }
      }
    }
    return added;
  };

  const started = Date.now();
  const rand = prng(options.seed);
  const corpus: Buffer[] = [];
  let runs = 0;
  let failure: FuzzFailure | undefined;
  const tryInput = (input: Buffer): boolean => {
    runs++;
    try {
      target(input);
    } catch (e) {
      failure = { input, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
      return true;
    }
    if (newFeatures() > 0) corpus.push(input);
    return false;
  };
  try {
    newFeatures(); // what ran before the first input is not the target's
    for (const s of seeds) if (tryInput(s.length > options.maxLength ? s.subarray(0, options.maxLength) : s)) break;
    if (corpus.length === 0) corpus.push(Buffer.alloc(0));
    while (failure === undefined && runs < options.maxRuns && Date.now() - started < options.maxMs) {
      // Recent finds first: they are where coverage is still growing.
      const base = corpus[rand(2) === 0 ? corpus.length - 1 - rand(Math.min(corpus.length, 16)) : rand(corpus.length)]!;
      if (tryInput(mutate(base, corpus, rand, options.maxLength))) break;
    }
  } finally {
    post("Profiler.stopPreciseCoverage");
    post("Profiler.disable");
    session.disconnect();
  }
  return { runs, corpus: corpus.length, features: seen.size, failure, ms: Date.now() - started };
}

/** A stable file name for a failing input. */
export function inputName(input: Buffer): string {
  return `crash-${createHash("sha1").update(input).digest("hex").slice(0, 16)}`;
}
