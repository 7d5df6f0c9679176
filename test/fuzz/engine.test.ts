/**
 * The fuzz engine finds what coverage leads to: a planted bug behind four
 * nested conditions, each needing one more grammar token in the input.
 * Inserting one given token is about a 1 in 225 mutation; all four at once
 * from the seed, about 1 in 10^9. Following coverage, each condition passed
 * opens a new block and keeps the input, so the four are found one by one.
 */
import { describe, expect, it } from "vitest";
import { fuzz } from "./engine.js";

function planted(data: Buffer): void {
  const s = data.toString("latin1");
  if (s.includes("Via: ")) {
    if (s.includes(";tag=")) {
      if (s.includes("%00")) {
        if (s.includes("65535")) throw new Error("planted bug reached");
      }
    }
  }
}

describe("fuzz engine", () => {
  it("reaches a bug behind four nested conditions by following coverage (bounded by runs)", () => {
    const report = fuzz(planted, [Buffer.from("hello world")], {
      maxRuns: 50_000,
      maxMs: 300_000,
      seed: 1,
      maxLength: 256,
      coverageUrl: "engine.test.ts",
    });
    expect(report.failure?.error).toBe("Error: planted bug reached");
    const found = report.failure!.input.toString("latin1");
    for (const token of ["Via: ", ";tag=", "%00", "65535"]) expect(found).toContain(token);
    // The corpus kept an input for each condition passed on the way.
    expect(report.corpus).toBeGreaterThanOrEqual(4);
    // Bounded by its runs, not by time: the limit only ends a hang (50 000 runs take seconds on a loaded machine).
  }, 120_000);

  it("reports no failure when the target holds, after exactly the runs allowed", () => {
    const report = fuzz(() => undefined, [Buffer.from("x")], { maxRuns: 500, maxMs: 120_000, seed: 2, maxLength: 64, coverageUrl: "engine.test.ts" });
    expect(report.failure).toBeUndefined();
    expect(report.runs).toBe(500);
  });
});
