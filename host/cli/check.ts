/**
 * `ksr check <script>...`: static checks of a routing script against the
 * export tables, without running it.
 *
 * The script is compiled exactly as `ksr run` compiles it (sandbox/compile.ts:
 * syntax errors come out as file:line:col), then the compiled JavaScript is
 * parsed with acorn and every member chain rooted at the global `KSR` is
 * looked up in the same BridgeTable the isolate facade is built from:
 *
 *  - `KSR.<name>` / `KSR.<module>.<name>` that no module provides;
 *  - functions a module lists as `unavailable` ("not available here: why");
 *  - direct calls with fewer arguments than declared parameters (the facade
 *    then passes undefined → 0 / "undefined", or refuses a call without
 *    arguments) and with more (extra arguments are silently ignored);
 *  - KSR.x.modf("name", ...) with a literal name: unknown or unavailable
 *    native names, and a parameter count other than declared (the bridge
 *    refuses the call then);
 *  - a script without a global ksr_request_route (Kamailio logs an error
 *    for every request then).
 *
 * For TypeScript, positions are mapped back through esbuild's source map,
 * and when the `typescript` package is installed the script is also
 * type-checked (strict) against typings generated from the same export
 * tables (or the ksr.d.ts it references itself); a type error on a line
 * that already has a KSR finding is left out as the same problem.
 * A script that shadows `KSR` with a local binding is not recognised as such.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse, type Node as AcornNode } from "acorn";
import { KEMI_MODULES } from "../modules/index.js";
import type { KemiModule, KemiParamType } from "../modules/types.js";
import { BridgeTable, type BridgeEntry, type NativeEntry } from "../../sandbox/bridge.js";
import { compileScript, compileSource, ScriptLoadError, type CompiledScript } from "../../sandbox/compile.js";
import { generateKsrDts } from "./typings.js";
import {
  KSR_X,
  REQUEST_ROUTE,
  ROUTE_ENTRY_POINTS,
  routeAllows,
  routeEntryPoint,
  routeFlags,
  type KsrXFunction,
  type RouteFlagName,
  type RouteKind,
} from "../../runtime/interpreter.js";

export interface CheckFinding {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  readonly message: string;
  /**
   * load: the script does not compile or cannot be read; api: a KSR call or
   * route problem; route: a call in a route Kamailio does not allow it in
   * (route flags); type: a TypeScript type error.
   */
  readonly kind: "load" | "api" | "route" | "type";
}

/** Loosely typed ESTree node: the walker only reads the fields it needs. */
interface EsNode extends AcornNode {
  [key: string]: unknown;
}

function isNode(value: unknown): value is EsNode {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

/** Name of a non-computed member (`a.b`) or a computed string literal member (`a["b"]`). */
function memberName(node: EsNode): string | undefined {
  const property = node.property as EsNode;
  if (!node.computed && property.type === "Identifier") return property.name as string;
  if (node.computed && property.type === "Literal" && typeof property.value === "string") return property.value;
  return undefined;
}

/** ["sl", "sl_send_reply"] for `KSR.sl.sl_send_reply`; undefined when the chain is not rooted at KSR or has dynamic parts. */
function ksrPath(node: EsNode): string[] | undefined {
  if (node.type !== "MemberExpression" || node.optional === true) return undefined;
  const object = node.object as EsNode;
  const name = memberName(node);
  if (name === undefined) return undefined;
  if (object.type === "Identifier" && object.name === "KSR") return [name];
  const prefix = ksrPath(object);
  return prefix === undefined ? undefined : [...prefix, name];
}

/** String value of a literal or an expression-free template literal. */
function staticString(node: EsNode): string | undefined {
  if (node.type === "Literal" && typeof node.value === "string") return node.value;
  if (node.type === "TemplateLiteral" && (node.expressions as unknown[]).length === 0) {
    const quasi = (node.quasis as EsNode[])[0];
    const cooked = (quasi?.value as { cooked?: string } | undefined)?.cooked;
    return typeof cooked === "string" ? cooked : undefined;
  }
  return undefined;
}

function describeParams(params: readonly KemiParamType[]): string {
  return params.length === 0 ? "none" : params.join(", ");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** What a KSR path names. */
type Resolved =
  | { readonly kind: "function"; readonly entry: BridgeEntry }
  | { readonly kind: "special"; readonly fn: KsrXFunction }
  | { readonly kind: "namespace" }
  | { readonly kind: "unknown"; readonly message: string };

class ApiIndex {
  private readonly table: BridgeTable;
  private readonly byQualifiedName = new Map<string, BridgeEntry>();
  private readonly moduleNames = new Set<string>();

  constructor(modules: readonly KemiModule[]) {
    this.table = new BridgeTable(modules);
    for (const entry of this.table.entries) this.byQualifiedName.set(entry.qualifiedName, entry);
    for (const mod of modules) if (mod.name !== "") this.moduleNames.add(mod.name);
  }

  /** Resolves the first one or two names of a KSR path (anything after a function is a property of it). */
  resolve(path: readonly string[]): Resolved {
    const [first, second] = path;
    const core = this.byQualifiedName.get(`KSR.${first}`);
    if (core !== undefined) return { kind: "function", entry: core };
    if (first === "x") {
      if (second === undefined) return { kind: "namespace" };
      const special = KSR_X.find((fn) => fn.name === second);
      if (special !== undefined) return { kind: "special", fn: special };
      return { kind: "unknown", message: `KSR.x.${second} does not exist (KSR.x has ${KSR_X.map((fn) => fn.name).join(", ")})` };
    }
    if (!this.moduleNames.has(first!)) {
      return { kind: "unknown", message: `KSR.${first} is not provided by any module` };
    }
    if (second === undefined) return { kind: "namespace" };
    const entry = this.byQualifiedName.get(`KSR.${first}.${second}`);
    if (entry !== undefined) return { kind: "function", entry };
    return { kind: "unknown", message: `KSR.${first}.${second} is not provided by module ${first}` };
  }

  modfVariants(nativeName: string): readonly NativeEntry[] {
    return this.table.nativeVariants(nativeName);
  }
}

/** Statically checks compiled script code; positions are mapped back for TypeScript. */
function checkCompiled(compiled: CompiledScript, api: ApiIndex): CheckFinding[] {
  const { filename, sourceMap } = compiled;
  const findings: CheckFinding[] = [];
  const at = (node: AcornNode, message: string, kind: CheckFinding["kind"] = "api"): void => {
    const start = node.loc!.start;
    // acorn: 1-based line, 0-based column; findings are 1-based both.
    const mapped = sourceMap?.lookup(start.line, start.column + 1);
    findings.push({
      file: filename,
      line: mapped?.line ?? start.line,
      column: mapped?.column ?? start.column + 1,
      message,
      kind,
    });
  };

  let program: EsNode;
  try {
    program = parse(compiled.code, { ecmaVersion: "latest", sourceType: "script", locations: true }) as unknown as EsNode;
  } catch (e) {
    const loc = (e as { loc?: { line: number; column: number } }).loc;
    const text = e instanceof Error ? e.message.replace(/ \(\d+:\d+\)$/, "") : String(e);
    if (loc === undefined) return [{ file: filename, line: 1, column: 1, message: `SyntaxError: ${text}`, kind: "load" }];
    const mapped = sourceMap?.lookup(loc.line, loc.column + 1);
    return [{ file: filename, line: mapped?.line ?? loc.line, column: mapped?.column ?? loc.column + 1, message: `SyntaxError: ${text}`, kind: "load" }];
  }

  const checkCall = (call: EsNode, resolved: Resolved, chain: EsNode, path: readonly string[]): void => {
    const args = call.arguments as EsNode[];
    // A spread hides the count: nothing can be said about it statically.
    if (args.some((a) => a.type === "SpreadElement")) return;
    if (resolved.kind === "function" && path.length <= 2) {
      const { entry } = resolved;
      if (entry.fn === undefined) return; // reported as unavailable already
      const want = entry.params.length;
      if (args.length < want) {
        at(chain, `${entry.qualifiedName} takes ${plural(want, "argument")} (${describeParams(entry.params)}), ${args.length} given`);
      } else if (args.length > want) {
        at(chain, `${entry.qualifiedName} takes ${plural(want, "argument")} (${describeParams(entry.params)}), ${args.length} given; the extra ones are ignored`);
      }
      return;
    }
    if (resolved.kind === "special" && path.length === 2) {
      if (resolved.fn.name === "modf") checkModf(call, chain, args);
      else if (args.length < resolved.fn.minArgs) at(chain, `KSR.x.${resolved.fn.name} takes at least ${plural(resolved.fn.minArgs, "argument")}, ${args.length} given`);
    }
  };

  const checkModf = (call: EsNode, chain: EsNode, args: EsNode[]): void => {
    if (args.length === 0) {
      at(chain, "KSR.x.modf needs the name of a module function");
      return;
    }
    const name = staticString(args[0]!);
    if (name === undefined) return; // computed at run time
    const variants = api.modfVariants(name);
    if (variants.length === 0) {
      at(call, `KSR.x.modf("${name}"): no native module function of that name is provided (KSR.x.modf reaches native kamailio.cfg functions only, not KEMI-only ones; it answers -1)`);
      return;
    }
    const given = args.length - 1;
    const native = variants.find((v) => v.params.length === given);
    if (native === undefined) {
      const counts = variants.map((v) => String(v.params.length));
      const list = counts.length === 1 ? counts[0]! : `${counts.slice(0, -1).join(", ")} or ${counts[counts.length - 1]}`;
      at(call, `KSR.x.modf("${name}") takes ${list} parameter${list === "1" ? "" : "s"}, ${given} given (it answers -1)`);
      return;
    }
    const target = native.call !== undefined && "entry" in native.call ? native.call.entry : undefined;
    if (target !== undefined && target.fn === undefined) {
      at(call, `KSR.x.modf("${name}") (${target.qualifiedName}): not available here: ${target.unavailableReason ?? "not supported"}`);
      return;
    }
    if (native.refused !== undefined) {
      const instead = native.kemiName !== undefined ? `; call ${native.kemiName} instead` : "";
      at(call, `KSR.x.modf("${name}") with ${plural(given, "parameter")}: Kamailio 5.6 refuses it (${native.refused}; it answers -1)${instead}`);
    }
  };

  /** Visits a maximal KSR member chain (one not extended by its parent). */
  const checkChain = (chain: EsNode, path: string[], parent: EsNode | undefined): void => {
    const resolved = api.resolve(path);
    if (resolved.kind === "unknown") {
      at(chain, resolved.message);
      return;
    }
    if (resolved.kind === "function" && resolved.entry.fn === undefined) {
      at(chain, `${resolved.entry.qualifiedName}: not available here: ${resolved.entry.unavailableReason ?? "not supported"}`);
      return;
    }
    if (parent !== undefined && parent.type === "CallExpression" && parent.callee === chain) {
      checkCall(parent, resolved, chain, path);
    }
  };

  // Iterative walk (no recursion limit on deeply nested scripts); parents tracked per node.
  const stack: { node: EsNode; parent: EsNode | undefined }[] = [{ node: program, parent: undefined }];
  while (stack.length > 0) {
    const { node, parent } = stack.pop()!;
    if (node.type === "MemberExpression") {
      const path = ksrPath(node);
      if (path !== undefined) {
        const extended = parent !== undefined && parent.type === "MemberExpression" && parent.object === node && ksrPath(parent) !== undefined;
        if (!extended) checkChain(node, path, parent);
        // The inner links of a chain are names only: nothing below needs a visit.
        continue;
      }
    }
    const children = childrenOf(node);
    // Reverse so findings come out in source order.
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, parent: node });
  }

  reportRouteTypes(program, api, (node, message) => at(node, message, "route"));

  if (!definesGlobalFunction(program, REQUEST_ROUTE)) {
    findings.push({
      file: filename,
      line: 1,
      column: 1,
      message: `missing ${REQUEST_ROUTE}(): every request would be logged as unhandled`,
      kind: "api",
    });
  }

  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  return findings;
}

/** The child nodes of an ESTree node, in source order. */
function childrenOf(node: EsNode): EsNode[] {
  const children: EsNode[] = [];
  for (const key of Object.keys(node)) {
    if (key === "loc") continue;
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) children.push(item);
    } else if (isNode(value)) {
      children.push(value);
    }
  }
  return children;
}

/** Every node under `root` (iteratively), root included. */
function* descendants(root: EsNode): Generator<EsNode> {
  const stack: EsNode[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    const children = childrenOf(node);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

/** The script's top-level functions by name: declarations and `var f = function/arrow`. */
function topLevelFunctions(program: EsNode): Map<string, EsNode> {
  const out = new Map<string, EsNode>();
  for (const statement of program.body as EsNode[]) {
    if (statement.type === "FunctionDeclaration" && statement.id !== null) out.set((statement.id as EsNode).name as string, statement);
    if (statement.type === "VariableDeclaration") {
      for (const d of statement.declarations as EsNode[]) {
        const init = d.init as EsNode | null;
        if ((d.id as EsNode).type === "Identifier" && init !== null && (init.type === "FunctionExpression" || init.type === "ArrowFunctionExpression")) {
          out.set((d.id as EsNode).name as string, init);
        }
      }
    }
  }
  return out;
}

/** A KSR call whose routes are known, inside one top-level function. */
interface RoutedCall {
  readonly node: EsNode;
  /** "KSR.sl.sl_send_reply", or `KSR.x.modf("sl_send_reply")`. */
  readonly label: string;
  readonly routes: readonly RouteFlagName[];
}

/**
 * Route flags, statically: the body of each route function of the script
 * (the request route, the reply and onsend routes under their default
 * names, and every function a literal KSR.tm.t_on_failure("name") and the
 * like names) is searched for KSR calls whose routes do not include the
 * route's type. KEMI does not check route flags at run time (Kamailio's
 * sr_kemi_t has none, and KSR.x.modf looks natives up with no flags), so
 * such a call runs; Kamailio's cfg parser would refuse the same native
 * function in that route block. Helpers the route calls are not followed:
 * the cfg parser checks a sub-route (`route(NAME)`) as a request route
 * whoever calls it, and scripts guard such calls at run time
 * (Kamailio's basic KEMI example calls rr.add_rr_param in a helper shared
 * by its request, failure and onreply routes, under is_request()).
 */
function reportRouteTypes(program: EsNode, api: ApiIndex, at: (node: AcornNode, message: string) => void): void {
  const functions = topLevelFunctions(program);
  const routeKinds = new Map<string, Set<RouteKind>>();
  const addRoute = (name: string, kind: RouteKind): void => {
    if (!functions.has(name)) return;
    const kinds = routeKinds.get(name) ?? new Set<RouteKind>();
    kinds.add(kind);
    routeKinds.set(name, kinds);
  };
  const namedBy = new Map<string, RouteKind>();
  for (const route of ROUTE_ENTRY_POINTS) {
    const naming = route.naming;
    if (naming.by === "fixed") addRoute(naming.name, route.kind);
    else if (naming.by === "setting" && naming.defaultName !== "") addRoute(naming.defaultName, route.kind);
    else if (naming.by === "script") namedBy.set(naming.call, route.kind);
  }
  const calls = new Map<string, RoutedCall[]>();
  for (const [name, fn] of functions) {
    const own: RoutedCall[] = [];
    for (const node of descendants(fn)) {
      if (node.type !== "CallExpression") continue;
      const callee = node.callee as EsNode;
      const args = node.arguments as EsNode[];
      const path = ksrPath(callee);
      if (path === undefined) continue;
      const qualified = `KSR.${path.join(".")}`;
      const kind = namedBy.get(qualified);
      const first = args[0] === undefined ? undefined : staticString(args[0]);
      if (kind !== undefined && first !== undefined) addRoute(first, kind);
      const resolved = api.resolve(path);
      if (resolved.kind === "function" && path.length <= 2 && resolved.entry.routes !== undefined) {
        own.push({ node: callee, label: resolved.entry.qualifiedName, routes: resolved.entry.routes });
      } else if (resolved.kind === "special" && resolved.fn.name === "modf" && first !== undefined) {
        const native = api.modfVariants(first).find((v) => v.params.length === args.length - 1);
        if (native !== undefined) own.push({ node: callee, label: `KSR.x.modf("${first}")`, routes: native.routes });
      }
    }
    calls.set(name, own);
  }
  for (const [routeName, kinds] of routeKinds) {
    for (const kind of kinds) {
      const entry = routeEntryPoint(kind);
      for (const call of calls.get(routeName) ?? []) {
        if (routeAllows(routeFlags(call.routes), kind)) continue;
        at(call.node, `${call.label} in ${routeName}() (${kind} route, ${entry.flag}): Kamailio 5.6 allows it in ${call.routes.join(", ")} only; KEMI does not check, the call runs`);
      }
    }
  }
}

/** True when the script's top level declares `name` (function declaration, var, or globalThis.name = ...). */
function definesGlobalFunction(program: EsNode, name: string): boolean {
  for (const statement of program.body as EsNode[]) {
    if (statement.type === "FunctionDeclaration" && (statement.id as EsNode | null)?.name === name) return true;
    if (statement.type === "VariableDeclaration") {
      for (const d of statement.declarations as EsNode[]) {
        if ((d.id as EsNode).type === "Identifier" && (d.id as EsNode).name === name && d.init !== null) return true;
      }
    }
    if (statement.type === "ExpressionStatement" && (statement.expression as EsNode).type === "AssignmentExpression") {
      const target = (statement.expression as EsNode).left as EsNode;
      if (target.type === "Identifier" && target.name === name) return true;
      if (
        target.type === "MemberExpression" &&
        (target.object as EsNode).type === "Identifier" &&
        ["globalThis", "self"].includes((target.object as EsNode).name as string) &&
        memberName(target) === name
      ) {
        return true;
      }
    }
  }
  return false;
}

function loadErrorFinding(e: ScriptLoadError): CheckFinding {
  const prefix = e.line === undefined ? `${e.file}: ` : e.column === undefined ? `${e.file}:${e.line}: ` : `${e.file}:${e.line}:${e.column}: `;
  const text = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  return { file: e.file, line: e.line ?? 1, column: e.column ?? 1, message: text, kind: "load" };
}

/** Checks script text that stands for `filename` (its extension decides JS or TS). */
export function checkSource(source: string, filename: string, modules: readonly KemiModule[] = KEMI_MODULES): CheckFinding[] {
  let compiled: CompiledScript;
  try {
    compiled = compileSource(source, filename);
  } catch (e) {
    if (e instanceof ScriptLoadError) return [loadErrorFinding(e)];
    throw e;
  }
  return checkCompiled(compiled, new ApiIndex(modules));
}

/** Checks a script file. */
export function checkScript(path: string, modules: readonly KemiModule[] = KEMI_MODULES): CheckFinding[] {
  let compiled: CompiledScript;
  try {
    compiled = compileScript(path);
  } catch (e) {
    if (e instanceof ScriptLoadError) return [loadErrorFinding(e)];
    throw e;
  }
  return checkCompiled(compiled, new ApiIndex(modules));
}

/** `file:line:col: message`. */
export function formatFinding(f: CheckFinding): string {
  return `${f.file}:${f.line}:${f.column}: ${f.message}`;
}

/** The closing line of `ksr check`. */
export function formatCheckSummary(problems: number, files: number): string {
  return problems === 0
    ? `no problems found in ${plural(files, "file")}`
    : `${plural(problems, "problem")} found in ${plural(files, "file")}`;
}

type TypeScriptApi = typeof import("typescript");

/** The typescript package when it is installed (it is a development tool, not a dependency). */
async function loadTypeScript(): Promise<TypeScriptApi | undefined> {
  try {
    const mod = (await import("typescript")) as TypeScriptApi & { default?: TypeScriptApi };
    return mod.default ?? mod;
  } catch {
    return undefined;
  }
}

const GENERATED_TYPINGS = "/__ksr_check__/ksr.d.ts";

/** Type errors of a TypeScript script against the KSR typings of `modules`. */
export function typeCheckScript(ts: TypeScriptApi, file: string, modules: readonly KemiModule[] = KEMI_MODULES): CheckFinding[] {
  const options: import("typescript").CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const typings = generateKsrDts(modules);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, version, onError, create) =>
    name === GENERATED_TYPINGS ? ts.createSourceFile(name, typings, version) : getSourceFile(name, version, onError, create);
  host.fileExists = (name) => name === GENERATED_TYPINGS || fileExists(name);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return []; // reported by checkScript already
  }
  // A script that references typings of its own gets those, not a second copy.
  const ownTypings = ts.preProcessFile(text).referencedFiles.some((r) => /(^|\/)ksr\.d\.ts$/.test(r.fileName));
  const program = ts.createProgram(ownTypings ? [file] : [file, GENERATED_TYPINGS], options, host);
  const findings: CheckFinding[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (d.category !== ts.DiagnosticCategory.Error) continue;
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n").replace(/\n\s*/g, " ");
    if (d.file === undefined || d.start === undefined) {
      findings.push({ file, line: 1, column: 1, message: `type error: ${message}`, kind: "type" });
      continue;
    }
    if (path.resolve(d.file.fileName) !== path.resolve(file)) continue;
    const pos = d.file.getLineAndCharacterOfPosition(d.start);
    findings.push({ file, line: pos.line + 1, column: pos.character + 1, message: `type error TS${d.code}: ${message}`, kind: "type" });
  }
  return findings;
}

/** checkScript plus, for TypeScript when `ts` is given, the type errors not on a line already reported. */
export function checkScriptFully(file: string, modules: readonly KemiModule[], ts: TypeScriptApi | undefined): CheckFinding[] {
  const findings = checkScript(file, modules);
  if (ts === undefined || !/\.(ts|mts|cts)$/i.test(file)) return findings;
  // A script that does not compile has no types worth reporting.
  if (findings.some((f) => f.kind === "load")) return findings;
  const reportedLines = new Set(findings.map((f) => f.line));
  const typeFindings = typeCheckScript(ts, file, modules).filter((f) => !reportedLines.has(f.line));
  return [...findings, ...typeFindings].sort((a, b) => a.line - b.line || a.column - b.column);
}

/**
 * Runs `ksr check` over files, writing one line per finding and a summary
 * to `out`. Returns the process exit code: 1 when anything was found.
 */
export async function runCheck(files: readonly string[], out: (line: string) => void, modules: readonly KemiModule[] = KEMI_MODULES): Promise<number> {
  const ts = files.some((f) => /\.(ts|mts|cts)$/i.test(f)) ? await loadTypeScript() : undefined;
  let problems = 0;
  for (const file of files) {
    for (const finding of checkScriptFully(file, modules, ts)) {
      out(formatFinding(finding));
      problems++;
    }
  }
  out(formatCheckSummary(problems, files.length));
  return problems === 0 ? 0 : 1;
}
