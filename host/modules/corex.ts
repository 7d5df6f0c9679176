/**
 * KSR.corex (Kamailio corex module): the functions that only look at the
 * message or at per-message state. Extended flags are 64 per message
 * (0..63), kept beside the message context; the stateful proxy code can
 * read them with xflagsOf().
 *
 * append_branch* add to the destination set of the stateful proxy
 * (host/proxy/branch-set.ts). Not provided here: send_data/sendx (raw sends), set_*_socket*, set_source_address,
 * via_* (Via building options), file_read/file_write (a tenant script must
 * not reach the host file system).
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import type { KemiModule } from "./types.js";
import { currentRuri, firstHeaderOf } from "./msgutil.js";
import { appendBranch } from "../proxy/branch-set.js";

/** Kamailio allows append_branch in request and failure routes only. */
function appendBranchIn(ctx: MessageContext, uri: string | undefined, q: string | undefined): number {
  if (!ctx.isRequest || (ctx.routeType !== "request" && ctx.routeType !== "failure")) {
    ctx.host.log("err", "append_branch: only in request and failure routes\n", ctx);
    return -1;
  }
  return appendBranch(ctx, uri, q) ? 1 : -1;
}

const xflags = new ContextSlot<bigint>("corex.xflags");
const MAX_XFLAG = 63;

/** The extended flags of ctx as a 64-bit mask. */
export function xflagsOf(ctx: MessageContext): bigint {
  return xflags.get(ctx) ?? 0n;
}

function xflagValid(f: number): boolean {
  return Number.isInteger(f) && f >= 0 && f <= MAX_XFLAG;
}

export const corexModule: KemiModule = {
  name: "corex",
  kamailioModule: "corex",
  functions: {
    has_ruri_user: {
      params: [],
      returns: "int",
      doc: "1 if the R-URI has a user part, -1 otherwise (also for replies).",
      run(ctx) {
        const u = currentRuri(ctx);
        return u !== null && u.user !== undefined && u.user.length > 0 ? 1 : -1;
      },
    },
    has_user_agent: {
      params: [],
      returns: "int",
      doc: "1 if a non-empty User-Agent header is present, -1 otherwise.",
      run(ctx) {
        const h = firstHeaderOf(ctx.msg, "user-agent");
        return h !== undefined && h.value.length > 0 ? 1 : -1;
      },
    },
    setxflag: {
      params: ["int"],
      returns: "int",
      doc: "Set extended flag f (0..63). 1 ok, -1 if out of range.",
      run(ctx, f: number) {
        if (!xflagValid(f)) return -1;
        xflags.set(ctx, xflagsOf(ctx) | (1n << BigInt(f)));
        return 1;
      },
    },
    resetxflag: {
      params: ["int"],
      returns: "int",
      doc: "Reset extended flag f (0..63). 1 ok, -1 if out of range.",
      run(ctx, f: number) {
        if (!xflagValid(f)) return -1;
        xflags.set(ctx, xflagsOf(ctx) & ~(1n << BigInt(f)));
        return 1;
      },
    },
    isxflagset: {
      params: ["int"],
      returns: "int",
      doc: "1 if extended flag f is set, -1 if not or out of range.",
      run: (ctx, f: number) => (xflagValid(f) && (xflagsOf(ctx) >> BigInt(f)) & 1n ? 1 : -1),
    },
    append_branch: {
      params: [],
      returns: "int",
      doc: "Move the R-URI branch (with $du, $fs and its branch flags) into the destination set. 1 ok, -1 error (set full).",
      run: (ctx) => appendBranchIn(ctx, undefined, undefined),
    },
    append_branch_uri: {
      params: ["str"],
      returns: "int",
      doc: "Add a branch to the URI (inheriting $du, $fs and the R-URI branch flags); \"\" = append_branch(). 1 ok, -1 error.",
      run: (ctx, uri: string) => appendBranchIn(ctx, uri, undefined),
    },
    append_branch_uri_q: {
      params: ["str", "str"],
      returns: "int",
      doc: "Like append_branch_uri with a q-value (\"0.5\"). 1 ok, -1 error (bad q, set full).",
      run: (ctx, uri: string, q: string) => appendBranchIn(ctx, uri, q),
    },
    is_faked_msg: {
      params: [],
      returns: "int",
      doc: "1 for the faked request of an event route (kemi.event_route_callback), -1 otherwise. Failure routes answer -1, as in Kamailio (tm's copy of the request is not that message).",
      run: (ctx) => (ctx.faked ? 1 : -1),
    },
  },
  // Native functions (Kamailio corex cmd exports) for KSR.x.modf.
  native: [
    { name: "append_branch", params: [], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "append_branch" },
    { name: "append_branch", params: ["str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "append_branch_uri" },
    { name: "append_branch", params: ["str", "str"], routes: ["REQUEST_ROUTE", "FAILURE_ROUTE"], kemi: "append_branch_uri_q" },
    { name: "setxflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "setxflag" },
    { name: "resetxflag", params: ["int"], routes: ["ANY_ROUTE"], kemi: "resetxflag" },
    { name: "isxflagset", params: ["int"], routes: ["ANY_ROUTE"], kemi: "isxflagset" },
    { name: "is_faked_msg", params: [], routes: ["ANY_ROUTE"], kemi: "is_faked_msg" },
  ],
};
