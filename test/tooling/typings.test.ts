import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { generateKsrDts } from "../../host/cli/typings.js";
import { KEMI_MODULES } from "../../host/modules/index.js";
import type { KemiModule } from "../../host/modules/types.js";
import { ROOT } from "./cli.js";

const DTS_PATH = path.join(ROOT, "runtime/ksr.d.ts");

/** Type-checks a script against typings text; returns the error messages as "line: text". */
function typeErrors(script: string, dts: string): string[] {
  const files = new Map([
    ["/ksr.d.ts", dts],
    ["/script.ts", script],
  ]);
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, lib: ["lib.es2022.d.ts"], types: [] };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => files.get(name) ?? readFile(name);
  host.fileExists = (name) => files.has(name) || fileExists(name);
  host.getSourceFile = (name, version) => {
    const text = files.get(name);
    return text !== undefined ? ts.createSourceFile(name, text, version) : getSourceFile(name, version);
  };
  const program = ts.createProgram(["/ksr.d.ts", "/script.ts"], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    return `${line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

describe("runtime/ksr.d.ts", { timeout: 60_000 }, () => {
  it("is what the export tables generate now (run `npm run build` when this fails)", () => {
    expect(readFileSync(DTS_PATH, "utf8")).toBe(generateKsrDts(KEMI_MODULES));
  });

  // CI runs `npm run build`, which rewrites the working copy before the
  // tests run; there the committed version is what must be fresh.
  it.runIf(process.env.CI === "true")("is committed fresh (CI)", () => {
    const committed = spawnSync("git", ["show", "HEAD:runtime/ksr.d.ts"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    expect(committed.status, committed.stderr).toBe(0);
    expect(committed.stdout).toBe(generateKsrDts(KEMI_MODULES));
  });

  it("passes scripts/gen-dts.mjs --check", () => {
    const r = spawnSync(process.execPath, ["scripts/gen-dts.mjs", "--check"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("declares every exported function with its parameter and return types", () => {
    const dts = generateKsrDts(KEMI_MODULES);
    const returnType = { int: "number", bool: "boolean", xval: "string | number | null", none: "void" } as const;
    for (const mod of KEMI_MODULES) {
      for (const [name, fn] of Object.entries(mod.functions)) {
        const params = fn.params.map((p, i) => `p${i + 1}: ${p === "int" ? "number" : "string"}`).join(", ");
        expect(dts, `${mod.name}.${name}`).toContain(`    ${name}(${params}): ${returnType[fn.returns]};\n`);
      }
    }
  });

  it("type-checks correct KSR calls and rejects wrong ones", () => {
    const dts = generateKsrDts(KEMI_MODULES);
    const good = [
      "function ksr_request_route(): void {",
      '  if (KSR.sl.sl_send_reply(200, "OK") < 0) KSR.err("failed\\n");',
      "  const ua: string | number | null = KSR.kx.get_ua();",
      "  const invite: boolean = KSR.is_INVITE();",
      '  const n: number = KSR.x.modf("sl_send_reply", "200", "OK");',
      "  if (!invite && ua === null && n > 0) KSR.x.drop();",
      "  KSR.x.exit();",
      "}",
    ].join("\n");
    expect(typeErrors(good, dts)).toEqual([]);

    const bad = [
      "function ksr_request_route(): void {",
      '  KSR.sl.sl_send_reply("200", "OK");',
      "  KSR.sl.sl_send_reply(200);",
      "  KSR.sl.no_such_function();",
      "  const s: string = KSR.kx.get_ua();",
      "}",
    ].join("\n");
    const errors = typeErrors(bad, dts);
    expect(errors.map((e) => e.split(":")[0])).toEqual(["2", "3", "4", "5"]);
    expect(errors[2]).toContain("no_such_function");
  });

  it("types KSR.x.exit() and drop() as never, so code after them is known unreachable", () => {
    const dts = generateKsrDts(KEMI_MODULES);
    const script = [
      "function pick(user: string | null): string {",
      "  if (user === null) KSR.x.exit();",
      "  return user;", // narrowed to string only because exit() returns never
      "}",
    ].join("\n");
    expect(typeErrors(script, dts)).toEqual([]);
  });

  it("marks functions a module lists as unavailable @deprecated, with the reason", () => {
    const rtpproxy: KemiModule = {
      name: "rtpproxy",
      kamailioModule: "rtpproxy",
      functions: {},
      unavailable: { rtpproxy_manage: { params: ["str"], returns: "int", reason: "no RTP proxy is configured" } },
    };
    const dts = generateKsrDts([...KEMI_MODULES.filter((m) => m.name !== "rtpproxy"), rtpproxy]);
    expect(dts).toContain(
      "    /** @deprecated Not available here: no RTP proxy is configured. Logs an error and returns a failure value. */\n    rtpproxy_manage(p1: string): number;\n",
    );
    expect(dts).toContain("    readonly rtpproxy: RtpproxyModule;\n");
  });

  it("the TypeScript example type-checks against the committed typings", () => {
    // The example finds the typings through its own /// <reference path>.
    const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, lib: ["lib.es2022.d.ts"], types: [] };
    const program = ts.createProgram([path.join(ROOT, "examples/typescript-proxy.ts")], options);
    expect(program.getSourceFiles().map((f) => path.resolve(f.fileName))).toContain(DTS_PATH);
    expect(ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).toEqual([]);
  });
});
