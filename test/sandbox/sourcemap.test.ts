import { transformSync } from "esbuild";
import { describe, expect, test } from "vitest";
import { firstScriptPosition, remapPositions, SourceMapIndex } from "../../sandbox/sourcemap.js";

function map(mappings: string, sources = ["a.ts"]) {
  return SourceMapIndex.parse({ version: 3, sources, mappings });
}

describe("VLQ mappings", () => {
  test("decodes single- and multi-digit, positive and negative fields", () => {
    // 0-based [genCol, source, line, col]. Line 1: [0,0,0,0], then [4,0,0,4] ("IAAI" = +4,0,0,+4).
    // Line 2: [0,0,1,0] ("AACJ": line +1, column -4). Line 3: [2,0,17,1] ("EAgBC": column +2, line +16, column +1).
    const m = map("AAAA,IAAI;AACJ;EAgBC");
    expect(m.lookup(1, 1)).toEqual({ source: "a.ts", line: 1, column: 1 });
    expect(m.lookup(1, 5)).toEqual({ source: "a.ts", line: 1, column: 5 });
    expect(m.lookup(1, 99)).toEqual({ source: "a.ts", line: 1, column: 5 });
    expect(m.lookup(2, 1)).toEqual({ source: "a.ts", line: 2, column: 1 });
    // "gB": 'g' (32) is a continuation digit carrying 0, 'B' adds 1 << 5; 32 with sign bit 0 is +16.
    expect(m.lookup(3, 3)).toEqual({ source: "a.ts", line: 18, column: 2 });
    expect(m.lookup(4, 1)).toBeUndefined();
  });

  test("a column before the first segment uses the line's first segment", () => {
    const m = map("IAAI");
    expect(m.lookup(1, 1)).toEqual({ source: "a.ts", line: 1, column: 5 });
  });

  test("one-field segments (no source) are skipped; source indexes accumulate across lines", () => {
    const m = map("A,EAAA;ACAA", ["a.ts", "b.ts"]);
    expect(m.lookup(1, 3)?.source).toBe("a.ts");
    expect(m.lookup(2, 1)).toEqual({ source: "b.ts", line: 1, column: 1 });
  });

  test("rejects invalid input", () => {
    expect(() => map("A!AA")).toThrow(/invalid base64/);
    expect(() => map("g")).toThrow(/truncated/);
    expect(() => SourceMapIndex.parse({ version: 2, sources: [], mappings: "" })).toThrow(/version/);
  });

  test("agrees with esbuild's own map for every marked statement", () => {
    const lines = [
      "type T = { a: number };",
      "interface U {",
      "  b: string;",
      "}",
      "function first(t: T): number { return t.a; }",
      "",
      "const second = (u: U): string =>",
      "  u.b;",
      "class K {",
      "  private readonly v: number = 1;",
      "  third(): number { return this.v; }",
      "}",
    ];
    const out = transformSync(lines.join("\n"), { loader: "ts", sourcefile: "x.ts", sourcemap: "external", sourcesContent: false });
    const m = SourceMapIndex.parse(out.map);
    const generated = out.code.split("\n");
    for (const [needle, sourceLine] of [["return t.a", 5], ["u.b", 8], ["return this.v", 11]] as const) {
      const genLine = generated.findIndex((l) => l.includes(needle));
      expect(genLine).toBeGreaterThanOrEqual(0);
      const col = generated[genLine]!.indexOf(needle) + 1;
      expect(m.lookup(genLine + 1, col)?.line).toBe(sourceLine);
    }
  });
});

describe("stack rewriting", () => {
  const m = map("AAAA;AACA;AAEA");
  test("rewrites positions of the script file only", () => {
    const stack = "Error: x\n    at f (/s/a.ts:3:1)\n    at g (/s/other.ts:3:1)\n    at /s/a.ts:2:1";
    expect(remapPositions(stack, "/s/a.ts", m)).toBe("Error: x\n    at f (/s/a.ts:4:1)\n    at g (/s/other.ts:3:1)\n    at /s/a.ts:2:1");
    expect(firstScriptPosition(stack, "/s/a.ts", m)).toEqual({ line: 4, column: 1 });
    expect(firstScriptPosition(stack, "/s/none.ts", m)).toBeUndefined();
  });

  test("filenames with regex characters are matched literally", () => {
    expect(firstScriptPosition("at (/s/a+b(1).js:7:2)", "/s/a+b(1).js", undefined)).toEqual({ line: 7, column: 2 });
    expect(firstScriptPosition("at (/s/aab(1).js:7:2)", "/s/a+b(1).js", undefined)).toBeUndefined();
  });
});
