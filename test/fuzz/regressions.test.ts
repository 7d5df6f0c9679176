/**
 * Every fuzz target on its seeds and on every input kept in
 * test/fuzz/regressions/<target>/: scripts/fuzz.mjs writes each failing
 * input it finds there, so it fails here until the code is fixed, and stays
 * as a regression test afterwards.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TARGETS } from "./targets.js";

const REGRESSIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), "regressions");

function keptInputs(target: string): { name: string; data: Buffer }[] {
  const dir = path.join(REGRESSIONS, target);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith("."))
    .sort()
    .map((f) => ({ name: f, data: fs.readFileSync(path.join(dir, f)) }));
}

describe("fuzz targets", () => {
  it("every directory under test/fuzz/regressions names a target", () => {
    const dirs = fs.existsSync(REGRESSIONS) ? fs.readdirSync(REGRESSIONS).filter((d) => fs.statSync(path.join(REGRESSIONS, d)).isDirectory()) : [];
    for (const d of dirs) expect(Object.keys(TARGETS), d).toContain(d);
  });

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: holds on its seeds and on every kept input (${target.about})`, () => {
      const seeds = target.seeds();
      expect(seeds.length).toBeGreaterThan(0);
      for (const [i, seed] of seeds.entries()) expect(() => target.run(seed), `${name} seed ${i}`).not.toThrow();
      for (const kept of keptInputs(name)) expect(() => target.run(kept.data), `${name} regression ${kept.name}`).not.toThrow();
    });
  }

});
