/**
 * KSR.hdr: header manipulation (Kamailio core kemi "hdr" module).
 *
 * Changes are lumps (ctx.edits): they show in what is sent, never in later
 * reads of the same message — hdr.get and $hdr keep returning the received
 * headers, as in Kamailio. Header names match case-insensitively and by
 * compact form ("f" = "From"), Kamailio's match by header type.
 *
 * Text arguments must be complete header lines ending in CRLF. Kamailio
 * inserts them verbatim; here a missing final CRLF is added (see
 * normalizeHeaderText) so that a forgotten "\r\n" cannot merge two headers.
 */
import { chargeEdit } from "../core/quota.js";
import type { MessageContext } from "../core/context.js";
import type { KemiFunction, KemiModule, KemiValue } from "./types.js";
import { headerIndexes, headerKeyFor, normalizeHeaderText, xvalNull, type NullMode } from "./msgutil.js";

function pushTo(map: Map<number, string[]>, index: number, line: string): void {
  if (line.length === 0) return;
  const list = map.get(index);
  if (list === undefined) map.set(index, [line]);
  else list.push(line);
}

/** Resolve a header name or log an error; null when invalid. */
function keyOrLog(ctx: MessageContext, name: string): string | null {
  const key = headerKeyFor(name);
  if (key === null) ctx.host.log("err", `error parsing header name [${name}]\n`, ctx);
  return key;
}

function append(ctx: MessageContext, text: string): number {
  const line = normalizeHeaderText(text);
  if (!chargeEdit(ctx, line.length, "KSR.hdr.append")) return -1;
  if (line.length > 0) ctx.edits.appended.push(line);
  return 1;
}

function insert(ctx: MessageContext, text: string): number {
  if (ctx.msg.headers.length === 0) return -1;
  const line = normalizeHeaderText(text);
  if (!chargeEdit(ctx, line.length, "KSR.hdr.insert")) return -1;
  if (line.length > 0) ctx.edits.prepended.push(line);
  return 1;
}

/** Remove every header with that name; 1 even when there was none. */
function remove(ctx: MessageContext, name: string): number {
  const key = keyOrLog(ctx, name);
  if (key === null) return -1;
  for (const i of headerIndexes(ctx.msg, key)) ctx.edits.replaced.set(i, "");
  return 1;
}

function getIdx(ctx: MessageContext, name: string, idx: number, mode: NullMode): KemiValue {
  const key = keyOrLog(ctx, name);
  if (key === null) return xvalNull(mode);
  const found = headerIndexes(ctx.msg, key);
  const k = idx < 0 ? found.length + idx : idx;
  if (k < 0 || k >= found.length) return xvalNull(mode);
  return ctx.msg.headers[found[k]!]!.value;
}

function getter(mode: NullMode, withIndex: boolean): KemiFunction {
  const missing = mode === "null" ? "null" : mode === "empty" ? '""' : '"<null>"';
  return withIndex
    ? {
        params: ["str", "int"],
        returns: "xval",
        doc: `Body of the idx-th header with that name (0 = first, -1 = last), ${missing} if none.`,
        run: (ctx, name: string, idx: number) => getIdx(ctx, name, idx, mode),
      }
    : {
        params: ["str"],
        returns: "xval",
        doc: `Body of the first header with that name as received, ${missing} if none.`,
        run: (ctx, name: string) => getIdx(ctx, name, 0, mode),
      };
}

/**
 * hdr.match_content(name, op, value, idxmode): op eq/ne/sw/in compare the
 * trimmed body case-insensitively; idxmode f = first header only, l = last,
 * a = all must match, o = at least one. "re" exists in Kamailio but is not
 * implemented there either (false with an error).
 */
function matchContent(ctx: MessageContext, name: string, op: string, value: string, idxMode: string): boolean {
  const key = keyOrLog(ctx, name);
  if (key === null) return false;
  const ops = ["eq", "ne", "sw", "in"];
  const o = op.toLowerCase();
  if (op.length !== 2 || !ops.includes(o)) {
    ctx.host.log("err", o === "re" ? `operator not implemented: ${op}\n` : `invalid operator: ${op}\n`, ctx);
    return false;
  }
  const mode = idxMode.length > 0 ? idxMode[0]!.toLowerCase() : "";
  if (!["f", "l", "a", "o"].includes(mode)) {
    ctx.host.log("err", `invalid header index: ${idxMode}\n`, ctx);
    return false;
  }
  const want = value.toLowerCase();
  let matched = false;
  for (const i of headerIndexes(ctx.msg, key)) {
    const body = ctx.msg.headers[i]!.value.trim().toLowerCase();
    switch (o) {
      case "eq":
        matched = body === want;
        break;
      case "ne":
        matched = body !== want;
        break;
      case "sw":
        matched = body.startsWith(want);
        break;
      case "in":
        matched = body.includes(want);
        break;
    }
    if (mode === "f") return matched;
    if (mode === "a" && !matched) return false;
    if (mode === "o" && matched) return true;
  }
  // "l" (last) and "a" (all): the outcome of the last header seen.
  return matched;
}

const appendFn: KemiFunction = {
  params: ["str"],
  returns: "int",
  doc: "Add header line(s) after the last header. 1 ok.",
  run: (ctx, text: string) => append(ctx, text),
};

export const hdrModule: KemiModule = {
  name: "hdr",
  kamailioModule: "core",
  functions: {
    append: appendFn,
    append_hf: {
      ...appendFn,
      doc: "Alias of hdr.append (not in Kamailio's KEMI list, but its JS example calls it).",
    },
    append_after: {
      params: ["str", "str"],
      returns: "int",
      doc: "Add header line(s) after the first header named hname (at the end if there is none). 1 ok.",
      run(ctx, text: string, name: string) {
        const key = keyOrLog(ctx, name);
        if (key === null) return -1;
        const i = headerIndexes(ctx.msg, key)[0];
        if (i === undefined) return append(ctx, text);
        pushTo(ctx.edits.insertedAfter, i, normalizeHeaderText(text));
        return 1;
      },
    },
    insert: {
      params: ["str"],
      returns: "int",
      doc: "Add header line(s) before the first header. 1 ok.",
      run: (ctx, text: string) => insert(ctx, text),
    },
    insert_before: {
      params: ["str", "str"],
      returns: "int",
      doc: "Add header line(s) before the first header named hname (at the top if there is none). 1 ok.",
      run(ctx, text: string, name: string) {
        const key = keyOrLog(ctx, name);
        if (key === null) return -1;
        const i = headerIndexes(ctx.msg, key)[0];
        if (i === undefined) return insert(ctx, text);
        const line = normalizeHeaderText(text);
        if (!chargeEdit(ctx, line.length, "KSR.hdr.insert_before")) return -1;
        pushTo(ctx.edits.insertedBefore, i, line);
        return 1;
      },
    },
    remove: {
      params: ["str"],
      returns: "int",
      doc: "Remove all headers with that name (compact forms match). 1 even when none existed; -1 on a bad name.",
      run: (ctx, name: string) => remove(ctx, name),
    },
    rmappend: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove headers named hrm, then append the text.",
      run(ctx, name: string, text: string) {
        const r = remove(ctx, name);
        return r < 0 ? r : append(ctx, text);
      },
    },
    rminsert: {
      params: ["str", "str"],
      returns: "int",
      doc: "Remove headers named hrm, then insert the text at the top.",
      run(ctx, name: string, text: string) {
        const r = remove(ctx, name);
        return r < 0 ? r : insert(ctx, text);
      },
    },
    is_present: {
      params: ["str"],
      returns: "int",
      doc: "1 if a header with that name is present, -1 if not.",
      run(ctx, name: string) {
        const key = keyOrLog(ctx, name);
        if (key === null) return -1;
        return headerIndexes(ctx.msg, key).length > 0 ? 1 : -1;
      },
    },
    append_to_reply: {
      params: ["str"],
      returns: "int",
      doc: "Add header line(s) to the reply this server generates for the message (sl/tm). 1 ok.",
      run(ctx, text: string) {
        const line = normalizeHeaderText(text);
        if (!chargeEdit(ctx, line.length, "KSR.hdr.append_to_reply")) return -1;
        if (line.length > 0) ctx.replyHeaders.push(line);
        return 1;
      },
    },
    get: getter("null", false),
    gete: getter("empty", false),
    getw: getter("print", false),
    get_idx: getter("null", true),
    gete_idx: getter("empty", true),
    getw_idx: getter("print", true),
    match_content: {
      params: ["str", "str", "str", "str"],
      returns: "bool",
      doc: "Compare header bodies: op eq|ne|sw|in (case-insensitive), idxmode f(irst)|l(ast)|a(ll)|o(ne).",
      run: (ctx, name: string, op: string, value: string, idxMode: string) => matchContent(ctx, name, op, value, idxMode),
    },
  },
};
