/**
 * The destination set of one route execution (Kamailio's "dset"): the
 * branches a script adds with KSR.corex.append_branch* next to the R-URI
 * branch, which t_relay forks to in parallel (RFC 3261 §16.5, §16.6).
 *
 * Branch i of the set has index i+1 in ctx.branchFlags (index 0 is the
 * R-URI branch), so setbiflag/isbiflagset address appended branches as in
 * Kamailio.
 *
 * Kamailio also tracks whether the R-URI is still "new", i.e. usable as a
 * branch of its own (ctx.ruriConsumed, inverted): a relay consumes it, and
 * in a failure route it starts consumed; any R-URI assignment (the same
 * value included) or a $du assignment through the PV makes it new again
 * (MessageContext.setRequestUri). KEMI's corex.append_branch() without a
 * URI copies the R-URI into the set without consuming it (corex_lib.c,
 * unlike the native cfg append_branch()).
 */
import type { MessageContext } from "../core/context.js";
import { ContextSlot } from "../core/context.js";
import { pathRouteOf, setPathRoute } from "./path-route.js";

/** Kamailio's MAX_BRANCHES: a destination set holds at most this many branches, R-URI included. */
export const MAX_BRANCHES = 12;

/** One appended branch. Its branch flags live in ctx.branchFlags[index + 1]. */
export interface BranchTarget {
  readonly uri: string;
  /** Next hop ($du of the branch), undefined when the URI itself is the next hop. */
  readonly dstUri: string | undefined;
  /** q-value in thousandths (RFC 3261 §20.10), -1 when unspecified. */
  readonly q: number;
  /** Forced send socket ($fs) of the branch. */
  readonly sendSocket: string | undefined;
  /** Path vector written as the branch's Route (host/proxy/path-route.ts); "" for none. */
  readonly path: string;
}

interface DestinationSet {
  readonly branches: BranchTarget[];
}

const sets = new ContextSlot<DestinationSet>("tm.destinationSet");

function setOf(ctx: MessageContext): DestinationSet {
  let s = sets.get(ctx);
  if (s === undefined) {
    s = { branches: [] };
    sets.set(ctx, s);
  }
  return s;
}

/** The appended branches, in order. */
export function appendedBranches(ctx: MessageContext): readonly BranchTarget[] {
  return sets.get(ctx)?.branches ?? [];
}

/**
 * Parse a q-value (RFC 3261 §25.1: "0" ["." up to 3 digits] or "1" ["." up
 * to 3 zeros]) into thousandths; undefined when malformed.
 */
export function parseQValue(text: string): number | undefined {
  const m = /^\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$/.exec(text);
  if (m === null) return undefined;
  return Math.round(Number(m[1]) * 1000);
}

/**
 * Kamailio append_branch semantics (corex): with a URI, a branch to that
 * URI that inherits $du, the forced socket and the branch flags of the
 * R-URI branch; without one, a copy of the R-URI branch: its $du, socket
 * and branch flags go with it and are reset on the message. The R-URI is
 * not consumed (corex_lib.c): in a request route a t_relay() then sends
 * both, as Kamailio 5.6 does (seen on loopback: two INVITEs to the same
 * URI); in a failure route, where the R-URI starts consumed, only the copy.
 * The branch carries the R-URI branch's Path as Kamailio's append_branch
 * carries the message's path vector (a copy of the R-URI branch takes it
 * away from the R-URI), unless `path` gives the branch its own (a binding's,
 * registrar lookup). Returns false when the set is full or the q-value is
 * malformed.
 */
export function appendBranch(ctx: MessageContext, uri: string | undefined, qText: string | undefined, path?: string): boolean {
  let q = -1;
  if (qText !== undefined && qText.length > 0) {
    const parsed = parseQValue(qText);
    if (parsed === undefined) {
      ctx.host.log("err", "cannot parse the Q parameter\n", ctx);
      return false;
    }
    q = parsed;
  }
  const set = setOf(ctx);
  if (set.branches.length + 1 >= MAX_BRANCHES) {
    ctx.host.log("err", `max nr of branches exceeded\n`, ctx);
    return false;
  }
  const useRuri = uri === undefined || uri.length === 0;
  set.branches.push({
    uri: useRuri ? ctx.requestUri : uri,
    dstUri: ctx.dstUri,
    q,
    sendSocket: ctx.sendSocket,
    path: path ?? pathRouteOf(ctx),
  });
  ctx.branchFlags.push(ctx.branchFlags[0] ?? 0);
  if (useRuri) {
    ctx.sendSocket = undefined;
    ctx.branchFlags[0] = 0;
    ctx.dstUri = undefined;
    setPathRoute(ctx, "");
  }
  return true;
}

/** Empty the set (after a relay used it), keeping only the R-URI branch flags. */
export function clearBranches(ctx: MessageContext): void {
  const set = sets.get(ctx);
  if (set !== undefined) set.branches.length = 0;
  ctx.branchFlags.length = 1;
}

/** The R-URI was used for a branch: not to be used again unless assigned. */
export function markRuriConsumed(ctx: MessageContext): void {
  ctx.ruriConsumed = true;
}

/** Whether the R-URI is available as a branch of its own. */
export function ruriIsNew(ctx: MessageContext): boolean {
  return !ctx.ruriConsumed;
}
