/**
 * Script-supplied regular expressions run time-bounded in their own isolate
 * (host/core/safe-regex.ts), so a backtracking pattern cannot stall the host.
 */
import { describe, expect, it } from "vitest";
import { safeRegexTest } from "../../host/core/safe-regex.js";

describe("safeRegexTest", () => {
  it("matches and fails to match like RegExp.test, with flags", () => {
    expect(safeRegexTest("nat=yes", "i", ";lr;NAT=YES")).toEqual({ ok: true, matched: true });
    expect(safeRegexTest("^;lr", "", ";ftag=1;lr")).toEqual({ ok: true, matched: false });
  });

  it("matches literal patterns (searched on the host) exactly as RegExp does", () => {
    const patterns = ["nat=yes", "NAT=yes", "lr", ";ftag=a1-b2", "a b", "x/y:z@w", "", "k", "i", "s"];
    const subjects = [";lr;nat=yes", ";LR;Nat=Yes", ";ftag=A1-B2;lr", "", "a  b", "a b", "x/y:z@w", "\u212a", "\u0130", "\u017f", "K", "nat=ye"];
    for (const pattern of patterns) {
      for (const flags of ["", "i"]) {
        for (const subject of subjects) {
          expect(safeRegexTest(pattern, flags, subject), `/${pattern}/${flags} on ${JSON.stringify(subject)}`).toEqual({
            ok: true,
            matched: new RegExp(pattern, flags).test(subject),
          });
        }
      }
    }
  });

  it("reports a pattern that does not compile", () => {
    const r = safeRegexTest("(unclosed", "", "x");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/^bad regular expression '\(unclosed'/);
  });

  it("stops a catastrophically backtracking match and keeps working afterwards", () => {
    const r = safeRegexTest("^(a+)+$", "", "a".repeat(40) + "!");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/took longer than \d+ ms/);
    expect(safeRegexTest("^(a+)+$", "", "aaa")).toEqual({ ok: true, matched: true });
  });
});
